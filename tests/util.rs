//! Shared helpers: fixture paths and running the real CLI.

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

pub fn wanprep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .output()
        .expect("run wanprep")
}

/// Starts the real CLI in the background with its output discarded (for kill tests).
pub fn spawn_quiet(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start wanprep")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// Rule ids of the error findings of input `i`.
pub fn errors(doc: &serde_json::Value, i: usize) -> Vec<String> {
    rules_with(doc, i, "error")
}

/// Rule ids of the warning findings of input `i`.
pub fn warnings(doc: &serde_json::Value, i: usize) -> Vec<String> {
    rules_with(doc, i, "warning")
}

fn rules_with(doc: &serde_json::Value, i: usize, severity: &str) -> Vec<String> {
    doc["inputs"][i]["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["rule"].as_str().expect("rule id").to_string())
        .collect()
}

/// Every fixture file under a folder, sorted.
pub fn fixtures_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> =
        std::fs::read_dir(fixture(dir)).expect("fixture dir").map(|e| e.expect("entry").path()).collect();
    v.sort();
    v
}

/// CRC-32 (IEEE), as PNG chunks use it; written out so tests can build chunks by hand.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// Makes a test clip with the ffmpeg CLI (installed by scripts/setup): a lavfi test source of
/// `size` at `fps` for `secs`, H.264 (ultrafast) plus `extra` arguments, written to `out`.
pub fn make_clip(out: &std::path::Path, size: &str, fps: u32, secs: u32, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"])
        .arg("-i")
        .arg(format!("testsrc2=size={size}:rate={fps}:duration={secs}"))
        .args(extra)
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .expect("ffmpeg is installed (scripts/setup)");
    assert!(status.success(), "ffmpeg failed making {}", out.display());
}

/// Runs the ffmpeg CLI (installed by scripts/setup) quietly, overwriting, and asserts success.
pub fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg is installed (scripts/setup)");
    assert!(status.success(), "ffmpeg {args:?}");
}
