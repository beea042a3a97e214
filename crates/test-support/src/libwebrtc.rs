//! libwebrtc for tests: a temp copy of /work/shared/interop/libwebrtc-peer
//! with its node_modules (@roamhq/wrtc, ws), made by `npm ci` (the shared
//! folder is read-only). Used by `realtimer`'s libwebrtc tests and the
//! CLI's echo test.

use std::path::{Path, PathBuf};

/// The peer folder on the test machines.
pub const PEER_DIR: &str = "/work/shared/interop/libwebrtc-peer";

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

/// Copies the peer to a temp dir and `npm ci`s it; `None` when there is
/// no peer folder on this machine.
pub fn install(tag: &str) -> Option<PeerDir> {
    if !Path::new(PEER_DIR).exists() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("realtimer-wrtc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = std::process::Command::new("cp")
        .args(["-r", PEER_DIR])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let dir = PeerDir(dir);
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir.0)
        .status()
        .unwrap();
    assert!(npm.success(), "npm ci");
    Some(dir)
}
