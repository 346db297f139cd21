//! Saving a result: streamed into a partial file beside the output, resumed with `Range` after
//! an interruption, probed as a video, then renamed into place. No credentials are sent.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};

use crate::probe::{probe_path, Kind, MediaFacts};

/// Why a download did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Network trouble that retries did not cure; the partial file is kept for a resume.
    #[error("downloading the result failed: {0} (the partial file is kept; run the same command again to resume)")]
    Network(String),
    /// The result URL answered with an error.
    #[error("the result URL answered HTTP {0}{1}")]
    Http(u16, &'static str),
    /// The result URL answered 403: its signature expired (result links live 24 h).
    #[error("the result URL answered HTTP 403: the link expired")]
    Expired,
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// What arrived is not a readable video.
    #[error("the downloaded result is not a readable video: {0}")]
    NotVideo(String),
    /// Cancelled; the partial file is kept.
    #[error("interrupted; the partial download is kept and resumes on the next run")]
    Interrupted,
    /// The result is larger than the cap (`--max-download`); nothing is kept.
    #[error("the result is {0} bytes or more, over the {1}-byte cap (--max-download raises it)")]
    TooLarge(u64, u64),
    /// The partial file's path holds something that is not a partial file of ours (a symbolic
    /// link, another user's file, a folder): it is left alone.
    #[error("{0} exists and is not a partial download of ours; remove it to download again")]
    Foreign(String),
}

/// The largest result downloaded by default (2 GB; the service's results are far smaller).
pub const DEFAULT_MAX_DOWNLOAD: u64 = 2_000_000_000;

/// Opens (creating it if needed) the partial file without following a symbolic link at its
/// path, and resumes it only when it is a regular file of this user with no other name.
fn open_part(part: &Path) -> Result<File, DownloadError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let foreign = || DownloadError::Foreign(part.display().to_string());
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .read(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(part)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                foreign()
            } else {
                DownloadError::Io { path: part.display().to_string(), source: e }
            }
        })?;
    let meta = file.metadata().map_err(|e| DownloadError::Io { path: part.display().to_string(), source: e })?;
    // This process's user owns /proc/self (no unsafe getuid() needed).
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(meta.uid());
    if !meta.file_type().is_file() || meta.uid() != uid || meta.nlink() != 1 {
        return Err(foreign());
    }
    Ok(file)
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The output file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Bytes fetched by this call (less than `bytes` after a resume).
    pub fetched: u64,
    /// What the probe read from it.
    pub facts: MediaFacts,
}

/// The partial file for `out` and a task: hidden, beside the output (same file system, so the
/// rename is atomic), named after the task so two tasks never share one.
pub fn part_path(out: &Path, task_id: &str) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "result.mp4".into());
    let tag: String = task_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
    out.with_file_name(format!(".{name}.{tag}.part"))
}

const ATTEMPTS: u32 = 6;

/// Downloads `url` to `out` (through [`part_path`]) with the credential-free client.
pub fn download(
    client: &Client,
    url: &str,
    out: &Path,
    task_id: &str,
    cancel: Option<&AtomicBool>,
    max_bytes: u64,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Downloaded, DownloadError> {
    let part = part_path(out, task_id);
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| DownloadError::Io { path: p.clone(), source }
    };
    let mut file = open_part(&part)?;
    let mut have = file.seek(SeekFrom::End(0)).map_err(io(&part))?;
    if have > max_bytes {
        restart(&mut file, &mut have).map_err(io(&part))?;
    }
    let mut fetched = 0u64;
    let mut attempt = 0;
    loop {
        match fetch_once(client, url, &mut file, &mut have, &mut fetched, cancel, max_bytes, &mut progress, &part) {
            Ok(()) => break,
            Err(Fetch::Fatal(e @ DownloadError::TooLarge(..))) => {
                drop(file);
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            Err(Fetch::Transient(msg)) => {
                attempt += 1;
                if attempt >= ATTEMPTS {
                    return Err(DownloadError::Network(msg));
                }
                // Ctrl-C is not held up by a backoff.
                if !crate::retry::sleep(crate::retry::DOWNLOAD.delay(attempt, None), cancel) {
                    return Err(DownloadError::Interrupted);
                }
            }
            Err(Fetch::Fatal(e)) => return Err(e),
        }
    }
    file.sync_all().map_err(io(&part))?;
    drop(file);
    let facts = probe_path(&part, &Default::default()).map_err(|e| DownloadError::NotVideo(e.to_string()))?;
    if facts.kind != Kind::Video || facts.integrity_problem.is_some() {
        let why = facts.integrity_problem.clone().unwrap_or_else(|| format!("content is {}", facts.format.name()));
        // Keep nothing that looks like a result but is not one.
        let _ = std::fs::remove_file(&part);
        return Err(DownloadError::NotVideo(why));
    }
    std::fs::rename(&part, out).map_err(io(out))?;
    if let Some(dir) = out.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(Downloaded { path: out.to_path_buf(), bytes: have, fetched, facts })
}

enum Fetch {
    Transient(String),
    Fatal(DownloadError),
}

#[allow(clippy::too_many_arguments)]
fn fetch_once(
    client: &Client,
    url: &str,
    file: &mut File,
    have: &mut u64,
    fetched: &mut u64,
    cancel: Option<&AtomicBool>,
    max_bytes: u64,
    progress: &mut impl FnMut(u64, Option<u64>),
    part: &Path,
) -> Result<(), Fetch> {
    let ioerr = |source| Fetch::Fatal(DownloadError::Io { path: part.display().to_string(), source });
    let mut rb = client.get(url).timeout(Duration::from_secs(24 * 3600));
    if *have > 0 {
        rb = rb.header(RANGE, format!("bytes={have}-"));
    }
    let mut resp = rb.send().map_err(|e| Fetch::Transient(crate::net::chain(&e)))?;
    let status = resp.status().as_u16();
    let total = match status {
        206 => {
            let (start, total) = content_range(resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()))
                .ok_or_else(|| Fetch::Transient("206 without a usable Content-Range".into()))?;
            if start != *have {
                // Not what we asked for: start over rather than splice wrong bytes.
                restart(file, have).map_err(ioerr)?;
                return Err(Fetch::Transient(format!("server resumed at {start}, not {have}")));
            }
            total
        }
        200 => {
            if *have > 0 {
                restart(file, have).map_err(ioerr)?;
            }
            resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
        }
        416 => {
            let total = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|t| t.trim().parse::<u64>().ok());
            if total == Some(*have) {
                return Ok(());
            }
            restart(file, have).map_err(ioerr)?;
            return Err(Fetch::Transient("range not satisfiable; starting over".into()));
        }
        408 | 429 | 500..=599 => return Err(Fetch::Transient(format!("HTTP {status}"))),
        403 => return Err(Fetch::Fatal(DownloadError::Expired)),
        _ => return Err(Fetch::Fatal(DownloadError::Http(status, ""))),
    };
    // A declared length over the cap is refused before a byte is written.
    if let Some(t) = total.filter(|&t| t > max_bytes) {
        return Err(Fetch::Fatal(DownloadError::TooLarge(t, max_bytes)));
    }
    progress(*have, total);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            let _ = file.sync_data();
            return Err(Fetch::Fatal(DownloadError::Interrupted));
        }
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_data();
                return Err(Fetch::Transient(format!("connection lost after {have} bytes: {e}")));
            }
        };
        if *have + n as u64 > max_bytes {
            // An endless (or lying) stream: stop at the cap.
            return Err(Fetch::Fatal(DownloadError::TooLarge(*have + n as u64, max_bytes)));
        }
        file.write_all(&buf[..n]).map_err(ioerr)?;
        *have += n as u64;
        *fetched += n as u64;
        progress(*have, total);
    }
    match total {
        Some(t) if *have < t => Err(Fetch::Transient(format!("connection closed at {have} of {t} bytes"))),
        Some(t) if *have > t => {
            restart(file, have).map_err(ioerr)?;
            Err(Fetch::Transient(format!("received {have} bytes, more than the {t} announced")))
        }
        _ => Ok(()),
    }
}

fn restart(file: &mut File, have: &mut u64) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    *have = 0;
    Ok(())
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn content_range(v: Option<&str>) -> Option<(u64, Option<u64>)> {
    let rest = v?.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = if total.trim() == "*" { None } else { Some(total.trim().parse().ok()?) };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn content_range_never_panics(s in "\\PC{0,40}") {
            let _ = content_range(Some(&s));
        }

        #[test]
        fn content_range_round_trips(start in 0u64..u64::MAX / 2, len in 0u64..1 << 40, extra in 0u64..1 << 20) {
            let end = start + len;
            let total = end + 1 + extra;
            prop_assert_eq!(content_range(Some(&format!("bytes {start}-{end}/{total}"))), Some((start, Some(total))));
        }
    }

    #[test]
    fn content_range_forms() {
        assert_eq!(content_range(Some("bytes 100-199/1000")), Some((100, Some(1000))));
        assert_eq!(content_range(Some("bytes 0-9/*")), Some((0, None)));
        assert_eq!(content_range(Some("bytes 9-0/10")), None);
        assert_eq!(content_range(Some("items 0-1/2")), None);
        assert_eq!(content_range(None), None);
    }

    #[test]
    fn part_file_is_hidden_beside_the_output_and_names_the_task() {
        let p = part_path(Path::new("/out/result.mp4"), "ab-12/../x");
        assert_eq!(p, Path::new("/out/.result.mp4.ab-12x.part"));
    }
}
