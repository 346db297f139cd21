//! FFmpeg work (decoding frames for `--deep`, remux, trim, re-encode) runs in a helper process,
//! `wanprep-av`, installed beside `wanprep`.
//!
//! Why a separate process: Debian's FFmpeg pulls in about 160 shared libraries, and loading
//! them costs about 100 ms at every start (`scripts/bench-submit` measures it), which `check`,
//! `submit` and `status` never need. Out of process, FFmpeg's C code also cannot take the caller
//! down when a hostile file crashes it, its memory is returned when it ends, and cancelling an
//! encode is killing a process.
//!
//! The protocol is one JSON [`Envelope`] holding a [`Request`] on the helper's stdin and one
//! holding a [`Response`] on its stdout, both stamped with [`PROTOCOL`]: a helper from another
//! build (an old `wanprep-av` left on PATH) is refused with [`AvError::WrongProtocol`], never
//! misread. `wanprep-av --protocol` prints the version it speaks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The helper's file name.
pub const HELPER: &str = "wanprep-av";

/// The protocol version; raised whenever a request or response changes shape or meaning.
pub const PROTOCOL: u32 = 3;

/// A request or response with the protocol version it was written for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// [`PROTOCOL`] of the writer.
    pub protocol: u32,
    /// The request or response.
    pub body: T,
}

impl<T> Envelope<T> {
    /// `body` stamped with this build's protocol.
    pub fn new(body: T) -> Envelope<T> {
        Envelope { protocol: PROTOCOL, body }
    }
}

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
    /// Frames that would end after this time (s, from the start) are dropped, so the output
    /// lasts at most `end_s - start_s`.
    pub end_s: Option<f64>,
    /// Peak bitrate in bits/s so the file fits its size limit (None: quality-only).
    pub max_bitrate: Option<u64>,
    /// Play the kept part again from its start until the output lasts this long (s).
    #[serde(default)]
    pub loop_to_s: Option<f64>,
}

/// The containers a fix writes (both ISO-BMFF, written by FFmpeg's `mov` muxer family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// MPEG-4 Part 14.
    #[default]
    Mp4,
    /// QuickTime.
    Mov,
}

impl Container {
    /// FFmpeg's muxer name.
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
        }
    }
}

/// What a remux or re-encode did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remuxed {
    /// Duration of the source in seconds (container's view).
    pub source_duration_s: f64,
    /// With a cut: where the last video sample kept ends (s). A stream copy must keep every
    /// frame that a frame before the cut refers to, so this may lie up to a few frames after
    /// the cut; the caller then ends the presentation at the cut with an edit list.
    #[serde(default)]
    pub kept_end_s: Option<f64>,
    /// Codec of the source video stream.
    pub video_codec: String,
    /// Audio codec copied, if any.
    pub audio: Option<String>,
    /// Audio stream left out because MP4 cannot carry its codec, if any.
    pub dropped_audio: Option<String>,
}

/// What FFmpeg's demuxer says about a video, for containers wanprep's own probe does not read
/// (MKV, WebM, FLV, MPEG-TS, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Stored frame width.
    pub width: u32,
    /// Stored frame height.
    pub height: u32,
    /// Sample aspect ratio, when not square.
    pub sar: Option<[u32; 2]>,
    /// Degrees clockwise from stored to displayed.
    pub rotation: u16,
    /// Container duration.
    pub duration_s: Option<f64>,
    /// Video codec (FFmpeg's name, lower case).
    pub codec: String,
    /// Average frame rate.
    pub frame_rate: Option<f64>,
    /// Audio codec, if there is audio.
    pub audio_codec: Option<String>,
}

/// A decoded frame, small, as 8-bit RGB rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Seconds from the start of the video.
    pub time_s: f64,
    /// `width * height * 3` bytes (base64 in the protocol's JSON: a third of the size of a
    /// list of numbers).
    #[serde(with = "base64_bytes")]
    pub rgb: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Shot changes found in a video ([`Request::Cuts`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CutScan {
    /// Each cut: the time of the first frame of the new shot, and how different the frames on
    /// either side are (histogram distance, 0–1).
    pub cuts: Vec<Cut>,
    /// Keyframes compared.
    pub keyframes: u32,
    /// Frames decoded to place the cuts exactly.
    pub frames_decoded: u32,
    /// Changes between keyframes not placed to the frame because the decoding budget ran out:
    /// each is (start, end) of the span where the cut is.
    pub unplaced: Vec<[f64; 2]>,
}

/// One shot change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// Seconds from the start of the video: the first frame of the new shot.
    pub time_s: f64,
    /// Histogram distance between the frames on either side (0 = same, 1 = disjoint).
    pub distance: f64,
}

/// One job for the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Request {
    /// Read the best video stream's facts with FFmpeg's demuxer.
    Probe {
        /// The video.
        path: PathBuf,
    },
    /// Decode the first frame and the frames near the end.
    DecodeEnds {
        /// The video.
        path: PathBuf,
    },
    /// Decode `count` frames spread evenly through the video, each scaled down to at most
    /// `max_side` pixels (square pixels, before rotation), as RGB.
    Frames {
        /// The video.
        path: PathBuf,
        /// How many frames.
        count: u32,
        /// Longest side of each picture returned.
        max_side: u32,
        /// Take the keyframe at or before each time instead of decoding on to the time itself:
        /// a few frames' decoding instead of up to a whole group of pictures per sample.
        #[serde(default)]
        keyframes: bool,
    },
    /// Find shot changes: compare the keyframes' colour histograms, then decode only the
    /// spans between keyframes that differ to place each cut on its frame.
    Cuts {
        /// The video.
        path: PathBuf,
        /// Histogram distance (0–1) between consecutive frames that counts as a cut.
        threshold: f64,
        /// Most frames decoded to place cuts (a bound on the time taken).
        max_frames: u32,
    },
    /// Stream-copy H.264/H.265 into a faststart MP4 or MOV (display matrix and sample entry
    /// kept), cut at `end_s` when given.
    Remux {
        /// Source.
        input: PathBuf,
        /// Destination (a temporary file).
        output: PathBuf,
        /// What to write.
        #[serde(default)]
        container: Container,
        /// Refuse a source longer than this when not cutting.
        max_duration_s: f64,
        /// Cut time (s from the start): video samples decoded before it are kept (a frame
        /// shown before the cut may refer to one shown after it), audio packets ending after
        /// it are dropped.
        end_s: Option<f64>,
    },
    /// Re-encode to H.264 through a filter graph.
    Reencode {
        /// Source.
        input: PathBuf,
        /// Destination (a temporary file).
        output: PathBuf,
        /// What to write.
        #[serde(default)]
        container: Container,
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
    /// The facts of a [`Request::Probe`].
    Probed(StreamInfo),
    /// The pictures of a [`Request::Frames`].
    Frames(Vec<Picture>),
    /// The shot changes of a [`Request::Cuts`].
    Cuts(CutScan),
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
    /// The helper found is from another build and speaks another protocol.
    #[error(
        "the FFmpeg helper {path} is from another wanprep build ({found}; this wanprep speaks protocol {PROTOCOL}): \
         install wanprep and wanprep-av together"
    )]
    WrongProtocol {
        /// The helper.
        path: PathBuf,
        /// What it answered instead.
        found: String,
    },
}

/// Finds the helper: `$WANPREP_AV` when set (the Python package points it at the helper it
/// ships), beside the current executable, one directory up (test and bench binaries live in
/// `target/*/deps`), then on PATH.
pub fn helper_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WANPREP_AV").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
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

/// Runs one request in the helper. With `cancel`, the helper is killed as soon as it is set;
/// `progress` gets the seconds of output written so far, as the helper reports them.
pub fn run(req: &Request, cancel: Option<&AtomicBool>, progress: Option<&dyn Fn(f64)>) -> Result<Response, AvError> {
    let exe = helper_path().ok_or(AvError::Missing)?;
    let body = serde_json::to_vec(&Envelope::new(req))
        .map_err(|e| AvError::Crashed(format!("cannot encode the request: {e}")))?;
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
    // Read the pipes on threads so a chatty helper never blocks on a full pipe. Progress lines
    // on stderr come back through a channel; everything else is kept for error messages.
    let out = child.stdout.take().map(read_all);
    let (tx, rx) = std::sync::mpsc::channel::<f64>();
    let err = child.stderr.take().map(|e| read_stderr(e, tx));
    let report = |rx: &std::sync::mpsc::Receiver<f64>| {
        if let Some(p) = progress {
            if let Some(last) = rx.try_iter().last() {
                p(last);
            }
        }
    };
    let status = loop {
        report(&rx);
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
    decode_answer(&exe, &stdout, status.success().then_some(()).ok_or(status.code()), &stderr)
}

/// The helper's answer: its response, or why there is none. A helper that does not speak this
/// build's protocol — it answers in another envelope, or (older helpers) refuses the envelope
/// as "not a request" — is [`AvError::WrongProtocol`].
fn decode_answer(exe: &Path, stdout: &[u8], exit: Result<(), Option<i32>>, stderr: &[u8]) -> Result<Response, AvError> {
    let wrong = |found: String| AvError::WrongProtocol { path: exe.to_path_buf(), found };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(stdout) {
        match v.get("protocol").and_then(serde_json::Value::as_u64) {
            Some(p) if p == u64::from(PROTOCOL) => {}
            Some(p) => return Err(wrong(format!("protocol {p}"))),
            None => return Err(wrong("a response without a protocol version".into())),
        }
    }
    let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(500)..]).trim().to_string();
    match (serde_json::from_slice::<Envelope<Response>>(stdout), exit) {
        (Ok(e), Ok(())) => Ok(e.body),
        _ if tail.contains("not a request") => Err(wrong("it cannot read this request".into())),
        (_, exit) => {
            let how = match exit {
                Ok(()) => "an unreadable answer".to_string(),
                Err(Some(c)) => format!("exit status {c}"),
                Err(None) => "killed by a signal (a crash in FFmpeg)".to_string(),
            };
            Err(AvError::Crashed(if tail.is_empty() { how } else { format!("{how}: {tail}") }))
        }
    }
}

/// The helper's stderr: `progress SECONDS` lines go to `tx`, the rest is returned (bounded).
fn read_stderr<R: std::io::Read + Send + 'static>(
    r: R,
    tx: std::sync::mpsc::Sender<f64>,
) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::BufRead;
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in std::io::BufReader::new(r).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line);
            match text.strip_prefix(PROGRESS_PREFIX).and_then(|v| v.trim().parse::<f64>().ok()) {
                Some(secs) => {
                    let _ = tx.send(secs);
                }
                None if kept.len() < 64 * 1024 => {
                    kept.extend_from_slice(&line);
                    kept.push(b'\n');
                }
                None => {}
            }
        }
        kept
    })
}

/// What the helper prints on stderr before the seconds of output written so far.
pub const PROGRESS_PREFIX: &str = "progress ";

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
    match run(&Request::DecodeEnds { path: path.to_path_buf() }, None, None) {
        Ok(Response::Decoded) => Ok(None),
        Ok(Response::Failed(why)) => Ok(Some(why)),
        Ok(_) => Err(AvError::Crashed("unexpected answer".into())),
        Err(AvError::Crashed(why)) => Ok(Some(why)),
        Err(e) => Err(e),
    }
}

/// Decodes `count` frames spread through a video, in the helper (see [`Request::Frames`]).
pub fn frames(path: &Path, count: u32, max_side: u32) -> Result<Vec<Picture>, AvError> {
    frames_with(path, count, max_side, false)
}

/// Like [`frames`], taking the keyframe at or before each time (fast on long groups of
/// pictures; the pictures' times say where they are).
pub fn keyframes(path: &Path, count: u32, max_side: u32) -> Result<Vec<Picture>, AvError> {
    frames_with(path, count, max_side, true)
}

fn frames_with(path: &Path, count: u32, max_side: u32, keyframes: bool) -> Result<Vec<Picture>, AvError> {
    match run(&Request::Frames { path: path.to_path_buf(), count, max_side, keyframes }, None, None)? {
        Response::Frames(p) => Ok(p),
        Response::Failed(why) => Err(AvError::Crashed(why)),
        _ => Err(AvError::Crashed("unexpected answer".into())),
    }
}

/// What `wanprep-av --version` says (its protocol and the FFmpeg it runs on), or why it
/// cannot be asked.
pub fn helper_version() -> Result<String, AvError> {
    let path = helper_path().ok_or(AvError::Missing)?;
    let out = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| AvError::Crashed(e.to_string()))?;
    if !out.status.success() {
        return Err(AvError::Crashed(format!("{} --version failed", path.display())));
    }
    Ok(format!("{} ({})", String::from_utf8_lossy(&out.stdout).trim(), path.display()))
}

/// Finds the shot changes in a video, in the helper (see [`Request::Cuts`]).
pub fn cuts(path: &Path, threshold: f64, max_frames: u32) -> Result<CutScan, AvError> {
    match run(&Request::Cuts { path: path.to_path_buf(), threshold, max_frames }, None, None)? {
        Response::Cuts(scan) => Ok(scan),
        Response::Failed(why) => Err(AvError::Crashed(why)),
        _ => Err(AvError::Crashed("unexpected answer".into())),
    }
}

/// Reads a video's facts with FFmpeg, in the helper.
pub fn probe_stream(path: &Path) -> Result<StreamInfo, AvError> {
    match run(&Request::Probe { path: path.to_path_buf() }, None, None)? {
        Response::Probed(info) => Ok(info),
        Response::Failed(why) => Err(AvError::Crashed(why)),
        _ => Err(AvError::Crashed("unexpected answer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(stdout: &str, exit: Result<(), Option<i32>>, stderr: &str) -> Result<Response, AvError> {
        decode_answer(Path::new("/x/wanprep-av"), stdout.as_bytes(), exit, stderr.as_bytes())
    }

    #[test]
    fn only_this_builds_protocol_is_understood() {
        let ok = serde_json::to_string(&Envelope::new(Response::Decoded)).unwrap();
        assert!(matches!(decode(&ok, Ok(()), ""), Ok(Response::Decoded)));
        // An older helper answers a bare response, or refuses the envelope.
        assert!(matches!(decode(r#""decoded""#, Ok(()), ""), Err(AvError::WrongProtocol { .. })));
        assert!(matches!(
            decode("", Err(Some(2)), "wanprep-av: not a request (missing field `op`); this program is run by wanprep"),
            Err(AvError::WrongProtocol { .. })
        ));
        // A newer one stamps another number.
        let newer = r#"{"protocol": 99, "body": "decoded"}"#;
        let e = decode(newer, Ok(()), "").unwrap_err();
        assert!(e.to_string().contains("protocol 99") && e.to_string().contains("/x/wanprep-av"), "{e}");
        // A crash stays a crash.
        assert!(matches!(decode("", Err(None), "segfault"), Err(AvError::Crashed(_))));
    }
}
