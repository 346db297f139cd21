//! Micro-benchmarks of the probe, one per format, on the committed fixtures (see
//! benches/README.md). End-to-end comparisons with ffprobe/MediaInfo live in scripts/bench-probe.

use std::path::PathBuf;

fn main() {
    divan::main();
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

const FILES: &[&str] = &[
    "image/ok_800x600.jpg",
    "image/ok_progressive_800x600.jpg",
    "image/ok_800x600.png",
    "image/ok_320x240.bmp",
    "image/ok_lossy_800x600.webp",
    "video/ok_640x360_3s.mp4",
    "video/ok_moov_end_640x360_3s.mp4",
    "video/ok_640x360_3s.mov",
    "video/ok_640x360_3s.avi",
    "video/hevc_hvc1_640x360.mp4",
];

/// Probe from a file (open + positioned reads + parse + integrity walk).
#[divan::bench(args = FILES)]
fn probe_file(bencher: divan::Bencher, file: &str) {
    let path = fixture(file);
    bencher.bench(|| wanprep::probe(divan::black_box(&path)).unwrap());
}

/// Probe from memory: parser cost alone.
#[divan::bench(args = FILES)]
fn probe_memory(bencher: divan::Bencher, file: &str) {
    let data = std::fs::read(fixture(file)).unwrap();
    bencher.bench(|| wanprep::probe_bytes(divan::black_box(&data)));
}

/// Probe and check: what `wanprep check` does per file.
#[divan::bench(args = FILES)]
fn probe_and_check(bencher: divan::Bencher, file: &str) {
    let path = fixture(file);
    let limits = wanprep::Limits::default();
    bencher.bench(|| {
        let facts = wanprep::probe(&path).unwrap();
        wanprep::check(&facts, wanprep::Role::for_kind(facts.kind), &limits)
    });
}
