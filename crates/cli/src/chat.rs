//! `realtimer chat --room R`: each line of stdin is a text message on the
//! room's data channel (label `chat`), and each message that arrives is
//! printed as a line on stdout. The web app's chat page (`web/chat.html`)
//! is the other end just as well. At the end of stdin the channel is
//! closed once what was typed has been delivered, and the peer hangs up.

use clap::Args;
use realtimer::ChannelData;
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::info;

use crate::peer::{close_channel, ctrl_c, Ended, Peer, PeerArgs, PeerError};

/// The data channel's label, as the chat page names it.
const LABEL: &str = "chat";

/// `realtimer chat` options.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    peer: PeerArgs,
}

/// Runs `realtimer chat`.
pub(crate) async fn run(args: ChatArgs) -> Result<(), PeerError> {
    let mut peer = Peer::join(&args.peer, LABEL).await?;
    info!("waiting for the other side of room {:?}", args.peer.room);
    let ended = peer.ended();
    // Biased: what the work already has (a receipt, a last line) is
    // taken before the other side's hang-up, which may overtake it.
    let result = tokio::select! {
        biased;
        result = async {
            let channel = match peer.channel().await {
                Ok(channel) => channel,
                // Leaving is how a chat ends, whenever it happens.
                Err(PeerError::Incomplete { .. }) => {
                    info!("the other side left");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            info!("connected: type lines to send them; end with Ctrl-D");
            chat(&channel).await
        } => result,
        ended = ended.wait() => match ended {
            Ended::Left => {
                info!("the other side left");
                Ok(())
            }
            Ended::Failed => Err(PeerError::ConnectionFailed { reason: "the connection failed".into() }),
            Ended::SignalingClosed => Err(PeerError::Signaling(realtimer_signaling::ClientError::Closed)),
        },
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    peer.hang_up().await;
    result
}

async fn chat(channel: &realtimer::DataChannel) -> Result<(), PeerError> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                match line.map_err(PeerError::io("reading stdin"))? {
                    Some(line) => channel.send_text(line).await?,
                    None => {
                        close_channel(channel).await;
                        return Ok(());
                    }
                }
            }
            message = channel.recv() => match message {
                Some(ChannelData::Text(text)) => println!("{text}"),
                Some(ChannelData::Binary(bytes)) => println!("[{} bytes of binary data]", bytes.len()),
                None => {
                    info!("the other side closed the chat");
                    return Ok(());
                }
            },
        }
    }
}
