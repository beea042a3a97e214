//! Runs the shell commands the guide shows, so that every one of them
//! works as written.
//!
//! In `docs/guide/**/*.md` and the README, each fenced block of shell
//! (```` ```sh ````) carries a tag after the language:
//! - `test`: run here, in order, one bash script per file, stopping at
//!   the first command that fails;
//! - `test background`: started in the background (a server the next
//!   blocks talk to) and killed when the file's commands are done;
//! - `long`: run only with `FULL=1` (benchmarks, release builds);
//! - `manual`: never run here, because it needs what a test machine lacks
//!   (a system service manager, a container engine) or is the test run
//!   itself; the test prints them.
//!
//! A shell block without a tag fails the test, so no command is skipped
//! by accident. Each file runs in a network namespace of its own (its
//! loopback, and a veth link with a default route so that `realtimer
//! serve` finds a relay address), so fixed ports such as 8080 are free
//! and nothing reaches the machine's network; `realtimer` is on `PATH`.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

use realtimer_test_support::serve::realtimer_binary;

/// How a block is to be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Test,
    Background,
    Long,
    Manual,
}

/// A shell block of a Markdown file.
#[derive(Debug)]
struct Block {
    line: usize,
    mode: Mode,
    script: String,
}

/// The shell blocks of `text`; an untagged one is an error naming its
/// line.
fn shell_blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let language = words.next().unwrap_or("");
        let tags: Vec<&str> = words.collect();
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.trim_start().starts_with("```"))
            .collect();
        if !matches!(language, "sh" | "bash" | "shell" | "console") {
            continue;
        }
        let mode = match tags.as_slice() {
            ["test"] => Mode::Test,
            ["test", "background"] => Mode::Background,
            ["long"] => Mode::Long,
            ["manual"] => Mode::Manual,
            _ => {
                return Err(format!(
                "line {}: shell block tagged {tags:?}: say test, test background, long or manual",
                n + 1
            ))
            }
        };
        blocks.push(Block {
            line: n + 1,
            mode,
            script: body.join("\n"),
        });
    }
    Ok(blocks)
}

/// The guide's pages this test runs: all but `cli.md`, whose blocks
/// `crates/cli/tests/peers.rs` runs against a serve of its own.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "cli.md") {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Runs `script` with bash in a fresh network namespace; returns whether
/// it succeeded and its output.
fn run_isolated(name: &str, script: &str) -> (bool, String) {
    let ns = format!("rt-guide-{}-{name}", std::process::id());
    let setup = [
        vec!["netns", "add", &ns],
        vec!["-n", &ns, "link", "set", "lo", "up"],
        vec![
            "-n", &ns, "link", "add", "guide0", "type", "veth", "peer", "name", "guide1",
        ],
        vec!["-n", &ns, "addr", "add", "10.89.2.1/24", "dev", "guide0"],
        vec!["-n", &ns, "link", "set", "guide0", "up"],
        vec!["-n", &ns, "link", "set", "guide1", "up"],
        vec!["-n", &ns, "route", "add", "default", "dev", "guide0"],
    ];
    for args in setup {
        let status = Command::new("ip")
            .args(&args)
            .status()
            .expect("ip (iproute2)");
        assert!(status.success(), "ip {args:?}");
    }
    let output = Command::new("timeout")
        .args(["300", "ip", "netns", "exec", &ns, "bash", "-c", script])
        .output()
        .expect("bash");
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_shell_block_is_tagged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs/guide"), &mut files);
    let mut errors = Vec::new();
    for file in &files {
        if let Err(e) = shell_blocks(&std::fs::read_to_string(file).unwrap()) {
            errors.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn guide_commands_run() {
    if !is_root() {
        println!("skipped: needs root for its network namespaces (scripts/test runs as root)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    // `scripts/test` builds it just before the tests and says where.
    let binary = std::env::var_os("REALTIMER_BIN").map_or_else(realtimer_binary, PathBuf::from);
    let bin_dir = binary.parent().unwrap().display().to_string();
    let full = std::env::var("FULL").is_ok_and(|v| v == "1");
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs/guide"), &mut files);
    files.sort();
    let (mut ran, mut manual) = (0, Vec::new());
    for (i, file) in files.iter().enumerate() {
        let blocks = shell_blocks(&std::fs::read_to_string(file).unwrap()).unwrap();
        let logs = std::env::temp_dir().join(format!("rt-guide-{}-{i}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let mut script = format!(
            "set -eu -o pipefail\nexport PATH={bin_dir}:$PATH\ncd {}\n\
             trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n",
            root.display()
        );
        let mut count = 0;
        for block in &blocks {
            let here = format!("{}:{}", file.display(), block.line);
            match block.mode {
                Mode::Manual => {
                    manual.push(here);
                    continue;
                }
                Mode::Long if !full => {
                    manual.push(format!("{here} (long: FULL=1 runs it)"));
                    continue;
                }
                Mode::Background => {
                    let log = logs.join(format!("background-{}.log", block.line));
                    script += &format!(
                        "echo '## {here} (background)'\n( set -x\n{}\n) > {} 2>&1 &\n",
                        block.script,
                        log.display()
                    );
                }
                Mode::Test | Mode::Long => {
                    script += &format!("echo '## {here}'\nset -x\n{}\nset +x\n", block.script);
                }
            }
            count += 1;
        }
        if count == 0 {
            continue;
        }
        let (ok, output) = run_isolated(&i.to_string(), &script);
        println!("{output}");
        if !ok {
            for entry in std::fs::read_dir(&logs).unwrap() {
                let path = entry.unwrap().path();
                println!(
                    "--- {}\n{}",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                );
            }
        }
        assert!(ok, "a command of {} failed (output above)", file.display());
        ran += count;
        let _ = std::fs::remove_dir_all(&logs);
    }
    println!("{ran} blocks ran; not run here:");
    for block in manual {
        println!("  {block}");
    }
    assert!(ran > 0);
}
