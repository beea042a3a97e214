//! The `realtimer` command: `serve` runs the server, `stun` asks a STUN
//! server for this host's reflexive address, `echo` joins a room and sends
//! the other side's media back.
// A command-line tool prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod echo;
mod serve;
mod stun_client;
mod turn_http;

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
}

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
        match cli.command {
            Command::Serve(args) => serve::run(args).await.map_err(|e| e.to_string()),
            Command::Stun(args) => stun_client::run(args).await.map_err(|e| e.to_string()),
            Command::Echo(args) => echo::run(args).await.map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
