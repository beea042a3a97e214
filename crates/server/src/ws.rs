//! The plain WebSocket JSON front at `/ws`, for native peers and the web
//! app. One JSON object per text frame, tagged by `type`; see
//! `docs/signaling.md` for the protocol.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures_util::SinkExt;
use realtimer_signaling::{SignalingEvent, SignalingRequest};
use tracing::debug;

use crate::hub::{Hub, Outbound, Relayed};
use crate::now;
use crate::rooms::RoomError;

/// Largest WebSocket message read; larger ones close the connection (the
/// rooms core's smaller relay limit gives a clear `error` below this).
pub const MAX_FRAME: usize = 1024 * 1024;

/// Initial WebSocket read buffer per client, on both fronts. Small: idle
/// clients are the many, and the buffer grows to fit a larger frame (an
/// SDP) when one comes. tungstenite's default (128 KiB, zero-filled before
/// each read) cost 135 KiB of RSS per `/ws` client; engineioxide's 4 KiB
/// cost 40 MB at 10,000 Socket.IO clients.
pub const READ_BUFFER: usize = 1024;

/// Outgoing frames collect in tungstenite's write buffer until it holds
/// this much, then go to the socket (and at the end of each batch of
/// queued events). Bounds the buffer, which never shrinks, per client;
/// tungstenite's default is 128 KiB.
pub const WRITE_BUFFER: usize = 8 * 1024;

/// `GET /ws`: upgrades to a WebSocket speaking the JSON protocol.
/// With the forwarding unit's service (an extension the server adds when
/// it runs one), the connection also takes group calls' `sfu-...` frames.
pub async fn handler(
    State(hub): State<Hub>,
    sfu: Option<Extension<crate::sfu::SfuService>>,
    placement: Option<Extension<crate::sfu::placement::Placement>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let sfu = sfu.map(|Extension(s)| s);
    let placement = placement.map(|Extension(p)| p);
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(socket, hub, sfu, placement))
}

fn encode(event: &SignalingEvent<Relayed>) -> Message {
    // Serializing these types cannot fail (string keys, JSON values).
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

fn encode_sfu(frame: &realtimer_signaling::sfu::SfuEvent) -> Message {
    Message::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

async fn serve(
    mut socket: WebSocket,
    hub: Hub,
    sfu: Option<crate::sfu::SfuService>,
    placement: Option<crate::sfu::placement::Placement>,
) {
    let mut call = crate::sfu::ws::SfuCall::new(sfu).with_placement(placement);
    let (id, name, mut outbound) = match hub.connect(None, now()) {
        Ok(registered) => registered,
        Err(e) => {
            let _ = socket
                .send(encode(&SignalingEvent::Error {
                    code: e.code(),
                    message: e.to_string(),
                }))
                .await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1013,
                    reason: Utf8Bytes::from_static("server full"),
                })))
                .await;
            return;
        }
    };
    if socket
        .send(encode(&SignalingEvent::Welcome { id: name.clone() }))
        .await
        .is_err()
    {
        hub.disconnect(id);
        return;
    }
    // When the relayed messages of a batch were received, for the latency.
    let mut relayed = Vec::new();
    loop {
        tokio::select! {
            event = outbound.recv() => {
                let Some(event) = event else {
                    // The hub dropped this client (its queue overflowed).
                    let _ = socket.send(Message::Close(Some(CloseFrame {
                        code: 1008,
                        reason: Utf8Bytes::from_static("too slow"),
                    }))).await;
                    break;
                };
                if write_queued(&mut socket, event, &mut outbound, &hub, &mut relayed)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            frame = call.next() => {
                if socket.send(encode_sfu(&frame)).await.is_err() {
                    break;
                }
            }
            frame = socket.recv() => {
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(request) = crate::sfu::ws::parse(text.as_str()) {
                            if !hub.admit(id, now()) {
                                continue;
                            }
                            let reply = match request {
                                Ok(request) => call.handle(request).await,
                                Err(refused) => Some(refused),
                            };
                            if let Some(reply) = reply {
                                if socket.send(encode_sfu(&reply)).await.is_err() {
                                    break;
                                }
                            }
                        } else if handle_text(&hub, id, text.as_str()) {
                            let _ = socket.send(encode(&SignalingEvent::Pong)).await;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => hub.reject(
                        id,
                        RoomError::Malformed("binary frames are not part of the protocol".into()),
                        now(),
                    ),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        debug!(client = %name, "WebSocket error: {e}");
                        break;
                    }
                }
            }
        }
    }
    call.close().await;
    hub.disconnect(id);
}

/// Writes `first` and every event queued behind it, then flushes once: a
/// burst of relayed messages costs one write, not one per message.
async fn write_queued(
    socket: &mut WebSocket,
    first: Outbound,
    outbound: &mut tokio::sync::mpsc::Receiver<Outbound>,
    hub: &Hub,
    relayed: &mut Vec<std::time::Instant>,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    while let Some(event) = next {
        // The codelab's console lines are for Socket.IO clients only.
        if let Outbound::Event(event) = event {
            socket.feed(encode(&event)).await?;
            if let SignalingEvent::Message { data, .. } = event {
                relayed.push(data.received);
            }
        }
        next = outbound.try_recv().ok();
    }
    socket.flush().await?;
    let written = now();
    for received in relayed.drain(..) {
        hub.relayed(received, written);
    }
    Ok(())
}

/// Handles one text frame from client `id`: a JSON request, or an `error`
/// to the client (charged to its rate limit) if it is not one. True if it
/// was a ping to answer. Public for the `signaling_frames` fuzz target.
pub fn handle_text(hub: &Hub, id: crate::rooms::ClientId, text: &str) -> bool {
    let request: SignalingRequest = match serde_json::from_str(text) {
        Ok(request) => request,
        Err(e) => {
            hub.reject(
                id,
                RoomError::Malformed(format!("not a valid request: {e}")),
                now(),
            );
            return false;
        }
    };
    match request {
        SignalingRequest::Join { room } => hub.create_or_join(id, &room, now()),
        SignalingRequest::Message { data } => {
            // The frame's length bounds the message's; cheaper than re-encoding.
            hub.message(id, data, text.len(), false, now());
        }
        SignalingRequest::Leave => hub.leave(id, now()),
        SignalingRequest::Ping => return hub.admit(id, now()),
    }
    false
}
