//! Helpers shared by the tests and benchmarks of realtimer's crates, so
//! that no test includes another crate's files by `#[path]`: launching
//! coturn, the Node scripts that drive Chromium (`tests/browser`), the
//! libwebrtc peer (`/work/shared/interop/libwebrtc-peer`), `realtimer
//! serve` and Redis; network namespaces; test certificates; in-process
//! `PeerConnection` pairs and the signaling loops' rule (feature `pc`) and the signaling server in a
//! thread (feature `server`); drivers of arbitrary bytes into an ICE agent
//! or an SCTP association for property tests and fuzz targets (features
//! `ice`, `sctp`).
//!
//! A dev-dependency only (`publish = false`). Helpers panic with a message
//! that says what is missing (a program, root, a folder): a test that
//! cannot set up has failed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod certificate;
pub mod coturn;
pub mod cpu;
#[cfg(any(feature = "ice", feature = "sctp"))]
pub mod garbage;
#[cfg(feature = "pc")]
pub mod impaired_relay;
pub mod libwebrtc;
pub mod media;
pub mod netns;
pub mod node;
#[cfg(feature = "pc")]
pub mod pair;
pub mod ports;
pub mod process;
#[cfg(feature = "pc")]
pub mod relay_pair;
pub mod serve;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "pc")]
pub mod session;
pub mod turn_client;

/// Whether the slow half of the interop matrix runs: `FULL=1` (as
/// `FULL=1 scripts/test`). Otherwise prints that `test` was skipped, so a
/// default run keeps within the CI budget with every peer still in it at
/// least once.
pub fn full_matrix(test: &str) -> bool {
    let full = std::env::var("FULL").as_deref() == Ok("1");
    if !full {
        println!("skipped {test}: part of the slow half of the matrix, run with FULL=1");
    }
    full
}
