//! `realtimer send FILE... --room R` and `realtimer recv --room R [DIR]`:
//! files over a data channel, in the web app's file page's format
//! (`web/files.html`), so either end may be the page:
//!
//! - a text message with the file's header, `{"name", "size", "type",
//!   "sha256"}` (`sha256` of the whole file, hex; the page's older
//!   headers lack it),
//! - then its bytes in binary messages of [`CHUNK`] bytes,
//! - and once the receiver has all `size` bytes, it answers with a text
//!   message `{"received": NAME, "size", "sha256", "ok"}`: the sender
//!   knows the file arrived whole and unchanged.
//!
//! The sender keeps at most [`HIGH_WATER`] bytes in the channel's buffer
//! (`bufferedAmount`, W3C webrtc-pc §6.2), so memory stays bounded
//! whatever the file's size; the receiver writes to disk as bytes come.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use realtimer::{ChannelData, DataChannel};
use ring::digest;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::peer::{close_channel, ctrl_c, rate, Peer, PeerArgs, PeerError};

/// Bytes per binary message: the page's size (browsers take 256 KiB).
pub(crate) const CHUNK: usize = 64 * 1024;
/// Wait when more than this is queued in the channel...
const HIGH_WATER: usize = 4 * 1024 * 1024;
/// ...until it falls to this.
const LOW_WATER: usize = 1024 * 1024;
/// The data channel's label, as the page names it.
pub(crate) const LABEL: &str = "files";

/// `realtimer send` options.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The files to send, in order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    peer: PeerArgs,
}

/// `realtimer recv` options.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// The folder to save the files in (created if missing).
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// Exit after this many files (default: when the other side leaves).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Replace files of the same name (default: save as NAME.1, NAME.2...).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    peer: PeerArgs,
}

/// A file's header message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    name: String,
    size: u64,
    #[serde(rename = "type", default)]
    mime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// The receiver's answer once a file is whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    received: String,
    size: u64,
    sha256: String,
    ok: bool,
}

/// A text message of the file protocol.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Control {
    Receipt(Receipt),
    Header(Header),
}

/// Lowercase hex of a digest.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A progress bar on stderr (bytes, rate, ETA); hidden when stderr is not
/// a terminal.
fn progress_bar(len: u64, name: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(name.to_owned());
    bar
}

/// SHA-256 and size of a file, reading it once before sending (the
/// header carries the digest, as the receiver checks it at the end).
async fn digest_file(path: &Path) -> Result<(String, u64), PeerError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(PeerError::io(format!("opening {}", path.display())))?;
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(PeerError::io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        context.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex(context.finish().as_ref()), size))
}

/// Runs `realtimer send`.
pub(crate) async fn send(args: SendArgs) -> Result<(), PeerError> {
    // Check every file before anyone waits on us.
    let mut files = Vec::new();
    for path in &args.files {
        let (sha256, size) = digest_file(path).await?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        files.push((
            path.clone(),
            Header {
                name,
                size,
                mime: String::new(),
                sha256: Some(sha256),
            },
        ));
    }
    let mut peer = Peer::join(&args.peer, LABEL).await?;
    let ended = peer.ended();
    // Biased: what the work already has (a receipt, a last line) is
    // taken before the other side's hang-up, which may overtake it.
    let result = tokio::select! {
        biased;
        result = async {
            let channel = peer.channel().await?;
            send_all(&channel, &files).await
        } => result,
        ended = ended.wait() => Err(PeerError::Incomplete {
            what: format!("the session ended ({ended:?}) before every file was received"),
        }),
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    peer.hang_up().await;
    result
}

async fn send_all(channel: &DataChannel, files: &[(PathBuf, Header)]) -> Result<(), PeerError> {
    for (path, header) in files {
        let started = Instant::now();
        send_file(channel, path, header).await?;
        // The receipt: the receiver has every byte and checked them.
        let receipt = loop {
            match channel.recv().await {
                Some(ChannelData::Text(text)) => match serde_json::from_str(&text) {
                    Ok(Control::Receipt(receipt)) => break receipt,
                    _ => warn!("unexpected message while waiting for a receipt: {text}"),
                },
                Some(ChannelData::Binary(_)) => {
                    return Err(PeerError::Protocol(
                        "bytes while waiting for a receipt".into(),
                    ))
                }
                None => {
                    return Err(PeerError::Incomplete {
                        what: format!("the channel closed before {} was confirmed", header.name),
                    })
                }
            }
        };
        let expected = header.sha256.clone().unwrap_or_default();
        if !receipt.ok || receipt.sha256 != expected || receipt.size != header.size {
            return Err(PeerError::Checksum {
                name: header.name.clone(),
                expected,
                got: receipt.sha256,
            });
        }
        let elapsed = started.elapsed();
        println!(
            "sent {} ({} bytes, SHA-256 {}) in {:.2} s, {:.1} MB/s: received and checked",
            header.name,
            header.size,
            expected,
            elapsed.as_secs_f64(),
            rate(header.size, elapsed)
        );
    }
    Ok(())
}

async fn send_file(channel: &DataChannel, path: &Path, header: &Header) -> Result<(), PeerError> {
    let text = serde_json::to_string(header).unwrap_or_default();
    channel.send_text(text).await?;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(PeerError::io(format!("opening {}", path.display())))?;
    let bar = progress_bar(header.size, &header.name);
    let mut sent = 0u64;
    while sent < header.size {
        let mut chunk = vec![0; CHUNK];
        let n = file
            .read(&mut chunk)
            .await
            .map_err(PeerError::io(format!("reading {}", path.display())))?;
        if n == 0 {
            return Err(PeerError::Io {
                what: format!("reading {}", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file shrank while being sent",
                ),
            });
        }
        chunk.truncate(n);
        if channel.buffered_amount() > HIGH_WATER {
            channel.wait_buffered_amount_at_most(LOW_WATER).await;
        }
        channel.send_binary(Bytes::from(chunk)).await?;
        sent += n as u64;
        bar.set_position(sent);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs `realtimer recv`.
pub(crate) async fn recv(args: RecvArgs) -> Result<(), PeerError> {
    tokio::fs::create_dir_all(&args.dir)
        .await
        .map_err(PeerError::io(format!("creating {}", args.dir.display())))?;
    let mut peer = Peer::join(&args.peer, LABEL).await?;
    let mut receiver = Receiver {
        dir: args.dir.clone(),
        overwrite: args.overwrite,
        incoming: None,
        done: 0,
    };
    let count = args.count;
    let ended = peer.ended();
    // Biased: what the work already has (a receipt, a last line) is
    // taken before the other side's hang-up, which may overtake it.
    let result = tokio::select! {
        biased;
        result = async {
            let channel = peer.channel().await?;
            let result = receiver.run(&channel, count).await;
            // The last receipt reaches the sender before our hang-up.
            close_channel(&channel).await;
            result
        } => result,
        _ = ended.wait() => Ok(()),
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    // A file begun and not finished is an incomplete transfer.
    let result = match (result, &receiver.incoming) {
        (Ok(()), Some(incoming)) => Err(PeerError::Incomplete {
            what: format!(
                "{}: {} of {} bytes",
                incoming.header.name, incoming.got, incoming.header.size
            ),
        }),
        (result, _) => result,
    };
    peer.hang_up().await;
    result
}

/// A file being received.
struct Incoming {
    header: Header,
    path: PathBuf,
    file: BufWriter<tokio::fs::File>,
    digest: digest::Context,
    got: u64,
    started: Instant,
    bar: ProgressBar,
}

struct Receiver {
    dir: PathBuf,
    overwrite: bool,
    incoming: Option<Incoming>,
    done: usize,
}

impl Receiver {
    async fn run(&mut self, channel: &DataChannel, count: Option<usize>) -> Result<(), PeerError> {
        while count.is_none_or(|n| self.done < n) {
            let Some(message) = channel.recv().await else {
                return Ok(());
            };
            match message {
                ChannelData::Text(text) => {
                    let header = match serde_json::from_str(&text) {
                        Ok(Control::Header(header)) => header,
                        _ => return Err(PeerError::Protocol(format!("not a file header: {text}"))),
                    };
                    if let Some(old) = &self.incoming {
                        return Err(PeerError::Incomplete {
                            what: format!(
                                "{}: a new file began after {} bytes",
                                old.header.name, old.got
                            ),
                        });
                    }
                    self.begin(header).await?;
                    if self.incoming.as_ref().is_some_and(|i| i.header.size == 0) {
                        self.finish(channel).await?;
                    }
                }
                ChannelData::Binary(bytes) => {
                    let Some(incoming) = self.incoming.as_mut() else {
                        return Err(PeerError::Protocol("bytes before a file header".into()));
                    };
                    if incoming.got + bytes.len() as u64 > incoming.header.size {
                        return Err(PeerError::Protocol(format!(
                            "{}: more bytes than its size, {}",
                            incoming.header.name, incoming.header.size
                        )));
                    }
                    incoming.digest.update(&bytes);
                    incoming
                        .file
                        .write_all(&bytes)
                        .await
                        .map_err(PeerError::io(format!(
                            "writing {}",
                            incoming.path.display()
                        )))?;
                    incoming.got += bytes.len() as u64;
                    incoming.bar.set_position(incoming.got);
                    if incoming.got == incoming.header.size {
                        self.finish(channel).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn begin(&mut self, header: Header) -> Result<(), PeerError> {
        let name = safe_name(&header.name);
        let path = if self.overwrite {
            self.dir.join(&name)
        } else {
            free_path(&self.dir, &name)
        };
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(PeerError::io(format!("creating {}", path.display())))?;
        info!(name = %header.name, size = header.size, path = %path.display(), "receiving");
        let bar = progress_bar(header.size, &header.name);
        self.incoming = Some(Incoming {
            header,
            path,
            file: BufWriter::with_capacity(256 * 1024, file),
            digest: digest::Context::new(&digest::SHA256),
            got: 0,
            started: Instant::now(),
            bar,
        });
        Ok(())
    }

    async fn finish(&mut self, channel: &DataChannel) -> Result<(), PeerError> {
        let Some(mut incoming) = self.incoming.take() else {
            return Ok(());
        };
        incoming.bar.finish_and_clear();
        let path = incoming.path.display().to_string();
        incoming
            .file
            .flush()
            .await
            .map_err(PeerError::io(format!("writing {path}")))?;
        incoming
            .file
            .into_inner()
            .sync_all()
            .await
            .map_err(PeerError::io(format!("writing {path}")))?;
        let got = hex(incoming.digest.finish().as_ref());
        let header = incoming.header;
        let ok = header
            .sha256
            .as_ref()
            .is_none_or(|expected| *expected == got);
        let receipt = Receipt {
            received: header.name.clone(),
            size: header.size,
            sha256: got.clone(),
            ok,
        };
        channel
            .send_text(serde_json::to_string(&receipt).unwrap_or_default())
            .await?;
        if !ok {
            return Err(PeerError::Checksum {
                name: header.name,
                expected: header.sha256.unwrap_or_default(),
                got,
            });
        }
        self.done += 1;
        let elapsed = incoming.started.elapsed();
        let checked = if header.sha256.is_some() {
            "checked"
        } else {
            "not checked: the sender gave no checksum"
        };
        println!(
            "received {} ({} bytes, SHA-256 {got}, {checked}) in {:.2} s, {:.1} MB/s: saved as {path}",
            header.name,
            header.size,
            elapsed.as_secs_f64(),
            rate(header.size, elapsed)
        );
        Ok(())
    }
}

/// The last component of a name the other side chose, so a file is never
/// written outside the folder (`../x`, `/etc/x`, `C:\x`).
fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let last: String = last.chars().filter(|c| !c.is_control()).collect();
    match last.as_str() {
        "" | "." | ".." => "file".into(),
        _ => last,
    }
}

/// `dir/name`, or `dir/name.1`, `dir/name.2`... if it exists.
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|i| dir.join(format!("{name}.{i}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_folder() {
        assert_eq!(safe_name("report.pdf"), "report.pdf");
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Users\\x.txt"), "x.txt");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("dir/"), "file");
        assert_eq!(safe_name("a\nb"), "ab");
    }

    #[test]
    fn the_pages_messages_parse() {
        let old: Control =
            serde_json::from_str(r#"{"name":"a.txt","size":3,"type":"text/plain"}"#).unwrap();
        assert!(matches!(
            old,
            Control::Header(Header {
                sha256: None,
                size: 3,
                ..
            })
        ));
        let receipt: Control =
            serde_json::from_str(r#"{"received":"a.txt","size":3,"sha256":"ab","ok":true}"#)
                .unwrap();
        assert!(matches!(
            receipt,
            Control::Receipt(Receipt { ok: true, .. })
        ));
    }
}
