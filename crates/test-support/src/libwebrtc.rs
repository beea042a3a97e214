//! Native peers for tests: a temp copy of tests/peers/js (libwebrtc through
//! @roamhq/wrtc, werift, the signaling relay) with its node_modules, made
//! by `npm ci`, and the Pion peer of tests/peers/pion built with Debian's
//! Go and Pion. Used by `realtimer`'s native-peer tests and the CLI's echo
//! test.

use std::path::{Path, PathBuf};

/// The JS peers' folder in the tree.
pub const PEER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/peers/js");
/// The Pion peer's GOPATH tree (its package is `pionpeer`).
pub const PION_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/peers/pion");

/// A copy of the peer folder with its node_modules, removed on drop.
#[derive(Debug)]
pub struct PeerDir(pub PathBuf);

impl Drop for PeerDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl PeerDir {
    /// Its node_modules, for `NODE_PATH`.
    pub fn node_modules(&self) -> PathBuf {
        self.0.join("node_modules")
    }
}

/// Copies the peer's files (not a node_modules a developer installed
/// there) to a temp dir and `npm ci`s it; `None` when there is no peer
/// folder.
pub fn install(tag: &str) -> Option<PeerDir> {
    if !Path::new(PEER_DIR).exists() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("realtimer-wrtc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = PeerDir(dir);
    for entry in std::fs::read_dir(PEER_DIR).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.0.join(entry.file_name())).unwrap();
        }
    }
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir.0)
        .status()
        .unwrap();
    assert!(npm.success(), "npm ci");
    Some(dir)
}

/// Builds the Pion peer to `out` in GOPATH mode (Debian installs Pion v3
/// under /usr/share/gocode without a /v3 folder; no module proxy).
pub fn build_pion(out: &Path) {
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(out)
        .arg("pionpeer")
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{PION_DIR}:/usr/share/gocode"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .status()
        .expect("go runs (scripts/test installs golang-go and Pion)");
    assert!(status.success(), "go build of the Pion peer");
}
