//! Network namespaces for tests that need a network of their own: created
//! by the test, deleted (with whatever still runs in them) on drop, even
//! when the test fails. Needs root.

use std::process::Command;

/// Runs `ip args`, failing the test with its error output.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Namespaces made by the test; dropping kills what is left in them and
/// deletes them (their links go with them).
#[derive(Debug)]
pub struct Namespaces {
    /// Their names, as `ip netns` knows them.
    pub names: Vec<String>,
}

impl Namespaces {
    /// `names`, each created with its loopback up.
    pub fn create(names: &[String]) -> Namespaces {
        let mut ns = Namespaces { names: Vec::new() };
        for n in names {
            ip(&["netns", "add", n]);
            ns.names.push(n.clone());
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", n]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
