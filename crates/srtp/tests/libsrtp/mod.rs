//! Drives libsrtp (Debian's libsrtp2) through `srtp_tool.c`, compiled on
//! first use, for the interop tests and the benchmark.
// Each of the test and the bench uses part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use realtimer_srtp::ProtectionProfile;

/// The compiled tool.
pub(crate) struct LibSrtp {
    path: PathBuf,
}

/// The tool's name for a profile.
pub(crate) fn profile_name(profile: ProtectionProfile) -> &'static str {
    match profile {
        ProtectionProfile::Aes128CmHmacSha1_80 => "cm80",
        ProtectionProfile::Aes128CmHmacSha1_32 => "cm32",
        ProtectionProfile::AeadAes128Gcm => "gcm128",
        ProtectionProfile::AeadAes256Gcm => "gcm256",
        _ => unreachable!("a profile the tool does not know"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

impl LibSrtp {
    /// Compiles the tool with `cc` against libsrtp2. Fails loudly when the
    /// compiler or `libsrtp2-dev` is missing (scripts/test installs them).
    pub(crate) fn build() -> Self {
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        let path = BUILT.get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join("srtp_tool");
            let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libsrtp/srtp_tool.c");
            // Built under a name of its own, then renamed: other test
            // processes may be building it at the same time.
            let partial = dir.join(format!("srtp_tool.{}", std::process::id()));
            let output = Command::new("cc")
                .args(["-O2", "-o"])
                .arg(&partial)
                .arg(source)
                .arg("-lsrtp2")
                .output()
                .expect("no C compiler `cc`: install gcc (scripts/test does)");
            assert!(
                output.status.success(),
                "building srtp_tool against libsrtp2 failed (install libsrtp2-dev; scripts/test does):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::rename(&partial, &path).unwrap();
            path
        });
        Self { path: path.clone() }
    }

    /// Runs `mode` (protect-rtp, unprotect-rtp, protect-rtcp,
    /// unprotect-rtcp) over `packets` in one libsrtp session; each result
    /// is the packet or libsrtp's error status.
    pub(crate) fn run(
        &self,
        profile: ProtectionProfile,
        key_and_salt: &[u8],
        mode: &str,
        packets: &[Vec<u8>],
    ) -> Vec<Result<Vec<u8>, String>> {
        let mut child = Command::new(&self.path)
            .args([profile_name(profile), &hex(key_and_salt), mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input: String = packets.iter().map(|p| hex(p) + "\n").collect();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "srtp_tool failed");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with("ERR") {
                    Err(line.to_string())
                } else {
                    Ok(unhex(line))
                }
            })
            .collect()
    }

    /// Protects (or unprotects) `count` RTP packets of `size` payload bytes
    /// in libsrtp; returns the CPU nanoseconds spent and the payload bytes.
    pub(crate) fn bench(
        &self,
        profile: ProtectionProfile,
        key_and_salt: &[u8],
        unprotect: bool,
        count: u64,
        size: usize,
    ) -> (f64, u64) {
        let mode = if unprotect {
            "bench-unprotect"
        } else {
            "bench-protect"
        };
        let output = Command::new(&self.path)
            .args([
                profile_name(profile),
                &hex(key_and_salt),
                mode,
                &count.to_string(),
                &size.to_string(),
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "srtp_tool bench failed");
        let text = String::from_utf8(output.stdout).unwrap();
        let mut fields = text.split_whitespace();
        (
            fields.next().unwrap().parse().unwrap(),
            fields.next().unwrap().parse().unwrap(),
        )
    }
}
