//! Helpers shared by the tests and benchmarks of realtimer's crates, so
//! that no test includes another crate's files by `#[path]`: launching
//! coturn, the Node scripts that drive Chromium (`tests/browser`), the
//! libwebrtc peer (`/work/shared/interop/libwebrtc-peer`), `realtimer
//! serve` and Redis; network namespaces; test certificates; in-process
//! `PeerConnection` pairs and the signaling loops' rule (feature `pc`) and the signaling server in a
//! thread (feature `server`).
//!
//! A dev-dependency only (`publish = false`). Helpers panic with a message
//! that says what is missing (a program, root, a folder): a test that
//! cannot set up has failed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod certificate;
pub mod coturn;
pub mod libwebrtc;
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
