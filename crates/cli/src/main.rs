//! The `realtimer` command: `serve` runs the server, `stun` asks a STUN
//! server for this host's reflexive address; the peers join a room of
//! `realtimer serve` like the web app's pages do: `echo` sends the other
//! side's media back, `send`/`recv` move files, `chat` moves lines of
//! text, `bench` measures a data channel, `play` and `record` stream
//! media files.
// A command-line tool prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod bench;
mod chat;
mod echo;
mod files;
mod ice_config;
mod media;
mod peer;
mod serve;
mod stun_client;
mod turn_http;
mod whip;

/// WebRTC for Rust, batteries included.
#[derive(Debug, Parser)]
#[command(name = "realtimer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: signaling (Socket.IO codelab protocol and WebSocket
    /// JSON), the web app on HTTP 8080, and STUN/TURN on UDP and TCP 3478
    /// (TURN over TLS on 5349 with --tls-cert).
    Serve(serve::ServeArgs),
    /// Send a STUN Binding request and print the mapped (reflexive) address.
    Stun(stun_client::StunArgs),
    /// Join a room of `realtimer serve` (the video call page's) and send
    /// the other side's audio and video back to it.
    Echo(echo::EchoArgs),
    /// Send files to the other side of a room (`realtimer recv`, or the
    /// web app's file page), each checked by SHA-256 at the end.
    #[command(after_help = SEND_HELP)]
    Send(files::SendArgs),
    /// Receive files from the other side of a room (`realtimer send`, or
    /// the web app's file page) into a folder.
    #[command(after_help = RECV_HELP)]
    Recv(files::RecvArgs),
    /// Chat: lines of stdin to the other side of a room (`realtimer
    /// chat`, or the web app's chat page), and its lines to stdout.
    #[command(after_help = CHAT_HELP)]
    Chat(chat::ChatArgs),
    /// Measure a data channel between two peers in a room: round-trip
    /// time and throughput, as a table.
    #[command(after_help = BENCH_HELP)]
    Bench(bench::BenchArgs),
    /// Play an IVF (VP8, VP9) and/or Ogg Opus file to the other side of a
    /// room (the web app's video call page), at the file's timing.
    #[command(after_help = PLAY_HELP)]
    Play(media::PlayArgs),
    /// Record the other side of a room (the video call page's camera and
    /// microphone) to IVF (video), Ogg (audio) or WebM (both).
    #[command(after_help = RECORD_HELP)]
    Record(media::RecordArgs),
    /// Publish media files to a WHIP endpoint (RFC 9725).
    #[command(after_help = WHIP_HELP)]
    Whip(whip::WhipArgs),
    /// Record what a WHEP endpoint plays into a file.
    #[command(after_help = WHEP_HELP)]
    Whep(whip::WhepArgs),
}

/// The peers' exit codes ([`peer::PeerError::exit_code`]), for their
/// `--help`.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0    done
  1    another error (a file, the peer connection, a bad option's value)
  2    bad usage (an unknown option, a missing argument)
  3    the server is unreachable, refused us, or signaling broke
  4    the room is full
  5    nobody came within --wait, or the connection failed
  6    the transfer is incomplete or a checksum does not match
  130  interrupted (Ctrl-C)"
    };
}

const SEND_HELP: &str = concat!(
    "Examples:
  realtimer recv --room r1 downloads/          # on one side
  realtimer send --room r1 report.pdf a.iso    # on the other
  realtimer send --server https://rtc.example.org --room r1 photo.jpg
      # to a browser showing https://rtc.example.org/files.html?room=r1

",
    exit_codes!()
);
const RECV_HELP: &str = concat!(
    "Examples:
  realtimer recv --room r1 downloads/             # until the sender leaves
  realtimer recv --room r1 --count 1 --wait 60 .  # one file; give up after 60 s alone

",
    exit_codes!()
);
const CHAT_HELP: &str = concat!(
    "Examples:
  realtimer chat --room r1                        # type lines; Ctrl-D or Ctrl-C ends
  echo 'build 1234 passed' | realtimer chat --room r1 --wait 30
  realtimer chat --server https://rtc.example.org --room r1
      # with a browser showing https://rtc.example.org/chat.html?room=r1

",
    exit_codes!()
);
const BENCH_HELP: &str = concat!(
    "Examples:
  realtimer bench --room b1                       # on one host: it measures
  realtimer bench --room b1                       # on another: it answers
  realtimer bench --room b1 --seconds 10 --message-size 16384

",
    exit_codes!()
);

const PLAY_HELP: &str = concat!(
    "Examples:
  realtimer play --room call1 movie.ivf sound.ogg   # to https://HOST/call.html?room=call1
  realtimer play --room call1 --loop clip.ivf
  ffmpeg -i in.mp4 -c:v libvpx -b:v 1M clip.ivf      # make a VP8 IVF file

",
    exit_codes!()
);
const RECORD_HELP: &str = concat!(
    "Examples:
  realtimer record --room call1 call.webm               # until the page hangs up
  realtimer record --room call1 --seconds 10 cam.ivf    # video only, 10 s
  realtimer record --room call1 mic.ogg                 # audio only

",
    exit_codes!()
);

const WHIP_HELP: &str = concat!(
    "Examples:
  realtimer whip http://HOST:8080/whip/stage clip.ivf tone.ogg   # into room stage
  realtimer whip --token s3cret --loop http://HOST:8080/whip/stage clip.ivf

",
    exit_codes!()
);
const WHEP_HELP: &str = concat!(
    "Examples:
  realtimer whep http://HOST:8080/whep/stage show.webm            # until the session ends
  realtimer whep --seconds 10 http://HOST:8080/whep/stage cam.ivf

",
    exit_codes!()
);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("REALTIMER_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let failure = |e: &dyn std::fmt::Display| (e.to_string(), ExitCode::FAILURE);
        let peer = |e: peer::PeerError| (e.to_string(), e.exit_code());
        match cli.command {
            Command::Serve(args) => serve::run(args).await.map_err(|e| failure(&e)),
            Command::Stun(args) => stun_client::run(args).await.map_err(|e| failure(&e)),
            Command::Echo(args) => echo::run(args).await.map_err(|e| failure(&e)),
            Command::Send(args) => files::send(args).await.map_err(peer),
            Command::Recv(args) => files::recv(args).await.map_err(peer),
            Command::Chat(args) => chat::run(args).await.map_err(peer),
            Command::Bench(args) => bench::run(args).await.map_err(peer),
            Command::Play(args) => media::play(args).await.map_err(peer),
            Command::Record(args) => media::record(args).await.map_err(peer),
            Command::Whip(args) => whip::whip(args).await.map_err(peer),
            Command::Whep(args) => whip::whep(args).await.map_err(peer),
        }
    });
    // The peers' tasks (signaling, the connection's driver) are not
    // waited for: the peer already hung up.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("error: {message}");
            code
        }
    }
}
