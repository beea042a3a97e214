//! The Node scripts under `tests/browser/` (Chromium through
//! playwright-core, Socket.IO clients; npm packages installed by
//! `scripts/test`), run as a test's child process.

use std::path::PathBuf;
use std::process::Command;

/// The Node package with the browser and Socket.IO test scripts.
pub fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules").is_dir(),
        "{} has no node_modules: run scripts/test (or npm ci there)",
        dir.display()
    );
    dir
}

/// Runs `node SCRIPT ARGS...` in `tests/browser`, prints its output, and
/// asserts it exits 0 with a "N passed, 0 failed" line; returns stdout.
pub fn run_node(script: &str, args: &[&str]) -> String {
    run_node_with_env(script, args, &[])
}

/// [`run_node`] with extra environment variables.
pub fn run_node_with_env(script: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(browser_dir())
        .output()
        .expect("cannot run node (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "node {script} {args:?} failed: {}",
        output.status
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with(" passed, 0 failed") && !l.starts_with("0 passed")),
        "no passing summary line from {script}"
    );
    stdout
}
