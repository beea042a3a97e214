//! Child processes of a test: started, optionally with their stderr read
//! line by line, and killed when the test ends, pass or fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its stderr, line by line, when [`spawn`] piped it.
    stderr_lines: Option<mpsc::Receiver<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.crash();
    }
}

impl Running {
    /// Takes charge of `child` (its stderr is not read).
    pub fn new(child: Child) -> Running {
        Running {
            child,
            stderr_lines: None,
        }
    }

    /// Waits (20 s at most) for a stderr line containing `needle` and
    /// returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let lines = self.lines();
        loop {
            match lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {needle:?}: {e}"),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line received so far.
    pub fn drain(&self) -> Vec<String> {
        self.lines().try_iter().collect()
    }

    /// Kills it now, as a crash would: no clean-up runs.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn lines(&self) -> &mpsc::Receiver<String> {
        self.stderr_lines
            .as_ref()
            .expect("stderr is read only for processes started by spawn")
    }
}

/// Starts `program` with `args` and extra environment variables; its
/// stdout goes nowhere, its stderr is read for [`Running::wait_for_line`].
pub fn spawn(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e} (scripts/test installs it)"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        stderr_lines: Some(rx),
    }
}
