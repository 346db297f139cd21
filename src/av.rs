//! FFmpeg work (decoding frames for `--deep`, remux, trim, re-encode) runs in a helper process,
//! `wanprep-av`, installed beside `wanprep`.
//!
//! Why a separate process: Debian's FFmpeg pulls in about 160 shared libraries, and loading
//! them costs about 100 ms at every start (`scripts/bench-submit` measures it), which `check`,
//! `submit` and `status` never need. Out of process, FFmpeg's C code also cannot take the caller
//! down when a hostile file crashes it, its memory is returned when it ends, and cancelling an
//! encode is killing a process.
//!
//! The protocol is one JSON [`Request`] on the helper's stdin and one JSON [`Response`] on its
//! stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The helper's file name.
pub const HELPER: &str = "wanprep-av";

/// Settings for a re-encode, decided by the fix planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reencode {
    /// libavfilter graph from the decoded frame to the encoder's input (rotation, scale,
    /// square pixels, pad or crop, yuv420p).
    pub filter: String,
    /// Output frame width.
    pub width: u32,
    /// Output frame height.
    pub height: u32,
    /// Frames before this time (s, from the start) are dropped; the output starts there.
    pub start_s: f64,
    /// Frames at or after this time (s, from the start) are dropped.
    pub end_s: Option<f64>,
    /// Peak bitrate in bits/s so the file fits its size limit (None: quality-only).
    pub max_bitrate: Option<u64>,
}

/// What a remux or re-encode did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remuxed {
    /// Duration of the source in seconds (container's view).
    pub source_duration_s: f64,
    /// Codec of the source video stream.
    pub video_codec: String,
    /// Audio codec copied, if any.
    pub audio: Option<String>,
    /// Audio stream left out because MP4 cannot carry its codec, if any.
    pub dropped_audio: Option<String>,
}

/// One job for the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Request {
    /// Decode the first frame and the frames near the end.
    DecodeEnds {
        /// The video.
        path: PathBuf,
    },
    /// Stream-copy H.264/H.265 into a faststart MP4, cut at `end_s` when given.
    Remux {
        /// Source.
        input: PathBuf,
        /// Destination (a temporary file).
        output: PathBuf,
        /// Refuse a source longer than this when not cutting.
        max_duration_s: f64,
        /// Cut time.
        end_s: Option<f64>,
    },
    /// Re-encode to H.264 through a filter graph.
    Reencode {
        /// Source.
        input: PathBuf,
        /// Destination (a temporary file).
        output: PathBuf,
        /// How.
        spec: Reencode,
    },
}

/// The helper's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Decoded fine.
    Decoded,
    /// Remuxed or re-encoded.
    Written(Remuxed),
    /// FFmpeg refused or failed, with a reason for people.
    Failed(String),
}

/// Why the helper could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvError {
    /// No helper beside the executable or on PATH.
    #[error(
        "the FFmpeg helper `{HELPER}` is not installed beside wanprep or on PATH (build with the `ffmpeg` feature)"
    )]
    Missing,
    /// Cancelled: the helper was killed.
    #[error("cancelled")]
    Cancelled,
    /// It crashed or answered nonsense.
    #[error("the FFmpeg helper failed: {0}")]
    Crashed(String),
}

/// Finds the helper: beside the current executable, one directory up (test and bench binaries
/// live in `target/*/deps`), then on PATH.
pub fn helper_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join(HELPER);
        if p.is_file() {
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(HELPER)).find(|p| p.is_file())
}

/// Runs one request in the helper. With `cancel`, the helper is killed as soon as it is set.
pub fn run(req: &Request, cancel: Option<&AtomicBool>) -> Result<Response, AvError> {
    let exe = helper_path().ok_or(AvError::Missing)?;
    let body = serde_json::to_vec(req).map_err(|e| AvError::Crashed(format!("cannot encode the request: {e}")))?;
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AvError::Crashed(format!("cannot start {}: {e}", exe.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that died at once shows up in its exit status below.
        let _ = stdin.write_all(&body);
    }
    // Read the pipes on threads so a chatty helper never blocks on a full pipe.
    let out = child.stdout.take().map(read_all);
    let err = child.stderr.take().map(read_all);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| AvError::Crashed(e.to_string()))? {
            break s;
        }
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AvError::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    match serde_json::from_slice::<Response>(&stdout) {
        Ok(r) if status.success() => Ok(r),
        _ => {
            let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(500)..]).trim().to_string();
            let how = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal (a crash in FFmpeg)".to_string(),
            };
            Err(AvError::Crashed(if tail.is_empty() { how } else { format!("{how}: {tail}") }))
        }
    }
}

fn read_all<R: std::io::Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Decodes a video's first and last frames in the helper: `Ok(None)` when they decode,
/// `Ok(Some(reason))` when FFmpeg fails on them (or crashes), `Err` when there is no helper.
pub fn decode_ends(path: &Path) -> Result<Option<String>, AvError> {
    match run(&Request::DecodeEnds { path: path.to_path_buf() }, None) {
        Ok(Response::Decoded) => Ok(None),
        Ok(Response::Failed(why)) => Ok(Some(why)),
        Ok(Response::Written(_)) => Err(AvError::Crashed("unexpected answer".into())),
        Err(AvError::Crashed(why)) => Ok(Some(why)),
        Err(e) => Err(e),
    }
}
