//! `fix` on images: outputs pass `check`, keep the displayed aspect, never touch the input, and
//! are written atomically.

use std::path::Path;

use wanprep::fix::{fix_file, plan, AspectMode, FixError, FixSpec};
use wanprep::{check, is_compliant, probe, Limits, Role};

use crate::util::{code, fixture, json, wanprep};

fn digest(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn displayed_aspect(p: &Path) -> f64 {
    let f = probe(p).unwrap();
    f64::from(f.display_width.unwrap()) / f64::from(f.display_height.unwrap())
}

/// Fixes a fixture into a temp dir; asserts the input is unchanged and the output is compliant.
fn fix_ok(rel: &str, out_name: &str, spec: &FixSpec) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let input = fixture(rel);
    let before = digest(&input);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(out_name);
    let outcome = fix_file(&input, &out, Some(Role::Image), spec, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(digest(&input), before, "{rel}: input modified");
    let facts = probe(&out).unwrap();
    assert!(is_compliant(&check(&facts, Role::Image, &Limits::default())), "{rel}: output not compliant");
    (dir, out, outcome.changes)
}

#[test]
fn too_big_too_small_wrong_format_and_rotated_images_are_fixed_keeping_their_aspect() {
    for (rel, out) in [
        ("image/dims_4097x1500.png", "a.png"),
        ("image/dims_1500x4097.png", "b.png"),
        ("image/dims_199x300.png", "c.png"),
        ("image/dims_300x199.png", "d.png"),
        ("image/not_accepted_300x300.gif", "e.png"),
        ("image/not_accepted_300x300.tif", "f.png"),
    ] {
        let input = fixture(rel);
        let (_d, out, changes) = fix_ok(rel, out, &FixSpec::default());
        let (a, b) = (displayed_aspect(&input), displayed_aspect(&out));
        assert!((a / b - 1.0).abs() < 0.01, "{rel}: aspect {a} -> {b}");
        assert!(!changes.is_empty());
    }
}

#[test]
fn exif_orientation_is_applied_when_pixels_are_rewritten() {
    // Force a rewrite (to PNG) of an EXIF-6 JPEG stored 800x600, displayed 600x800.
    let mut spec = FixSpec::default();
    spec.format = Some(wanprep::Format::Png);
    let (_d, out, changes) = fix_ok("image/exif_orient6_800x600.jpg", "o.png", &spec);
    let f = probe(&out).unwrap();
    assert_eq!((f.width, f.height, f.orientation), (Some(600), Some(800), None));
    assert!(changes.iter().any(|c| c.contains("orientation 6")), "{changes:?}");
}

#[test]
fn aspect_out_of_range_is_padded_or_cropped() {
    let (_d, out, _) = fix_ok("image/dims_601x200.png", "p.png", &FixSpec::default());
    let f = probe(&out).unwrap();
    assert_eq!((f.width, f.height), (Some(601), Some(201)));
    let mut spec = FixSpec::default();
    spec.aspect = AspectMode::Crop;
    let (_d, out, changes) = fix_ok("image/dims_601x200.png", "c.png", &spec);
    let f = probe(&out).unwrap();
    assert_eq!((f.width, f.height), (Some(600), Some(200)));
    assert!(changes[0].starts_with("cropped"));
}

#[test]
fn a_heavy_image_is_recompressed_before_it_is_scaled() {
    // 2600x2000 of noise as PNG is far over 5 MB; JPEG at some quality fits without scaling.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("noise.png");
    let mut rng = 0x1234_5678_9abc_def0u64;
    let img = image::RgbImage::from_fn(2600, 2000, |_, _| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        image::Rgb([rng as u8, (rng >> 8) as u8, (rng >> 16) as u8])
    });
    img.save(&input).unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() > 5_000_000);
    let out = dir.path().join("noise.jpg");
    let outcome = fix_file(&input, &out, None, &FixSpec::default(), false).unwrap();
    let f = probe(&out).unwrap();
    assert!(f.size_bytes <= 5_000_000);
    assert_eq!((f.width, f.height), (Some(2600), Some(2000)), "re-compressed, not scaled: {:?}", outcome.changes);
    assert!(outcome.changes.iter().any(|c| c.contains("q=")), "{:?}", outcome.changes);
}

#[test]
fn unfixable_inputs_exit_1_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    for rel in ["image/truncated_half.jpg", "other/heic_header.heic", "other/text.txt", "image/bomb_100000x100000.png"]
    {
        let out = dir.path().join("out.png");
        let o = wanprep(&["fix", fixture(rel).to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{rel}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!out.exists(), "{rel}: output written");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{rel}: temporary file left behind");
    }
}

#[test]
fn the_input_is_never_the_output_and_outputs_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    std::fs::copy(fixture("image/dims_199x300.png"), &input).unwrap();
    let before = digest(&input);
    let o = wanprep(&["fix", input.to_str().unwrap(), "-o", input.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let o = wanprep(&["fix", input.to_str().unwrap(), "-o", dir.path().join(".").join("in.png").to_str().unwrap()]);
    assert_eq!(code(&o), 2, "the same file by another name");
    assert_eq!(digest(&input), before);
    let out = dir.path().join("out.png");
    std::fs::write(&out, b"keep me").unwrap();
    assert_eq!(code(&wanprep(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap()])), 2);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(code(&wanprep(&["fix", "--force", input.to_str().unwrap(), "-o", out.to_str().unwrap()])), 0);
    assert!(is_compliant(&check(&probe(&out).unwrap(), Role::Image, &Limits::default())));
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let o = wanprep(&["fix", "--dry-run", "--json", "fixtures/image/dims_4097x1500.png", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    let ops: Vec<&str> = doc["plan"]["ops"].as_array().unwrap().iter().map(|o| o["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["decode", "scale", "encode"]);
    assert_eq!(doc["plan"]["ops"][1]["to"], serde_json::json!([4096, 1500]));
    assert!(!out.exists());
}

#[test]
fn fix_json_reports_changes_and_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.png");
    let o = wanprep(&["fix", "--json", "fixtures/image/dims_4097x1500.png", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    assert_eq!(doc["compliant"], true);
    assert_eq!(doc["changes"][0], "scaled 4097x1500 -> 4096x1500");
    assert_eq!(doc["media"]["width"], 4096);
}

#[test]
fn a_killed_fix_leaves_no_partial_output() {
    // A large noisy image keeps the encoder busy long enough to be killed mid-way.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.bmp");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    image::RgbImage::from_fn(6000, 4000, |_, _| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        image::Rgb([rng as u8, (rng >> 8) as u8, (rng >> 16) as u8])
    })
    .save(&input)
    .unwrap();
    let out = dir.path().join("big_fixed.jpg");
    let mut child = crate::util::spawn_quiet(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a partial output is visible");
}

#[test]
fn plans_are_pure_values_for_other_callers() {
    let facts = probe(fixture("image/dims_199x300.png")).unwrap();
    let p = plan(&facts, Role::Image, &FixSpec::default());
    assert!(p.unfixable.is_none());
    assert!(!p.is_copy());
    let facts = probe(fixture("image/ok_800x600.jpg")).unwrap();
    assert!(plan(&facts, Role::Image, &FixSpec::default()).is_copy());
    let facts = probe(fixture("image/truncated_half.jpg")).unwrap();
    assert!(plan(&facts, Role::Image, &FixSpec::default()).unfixable.is_some());
    assert!(matches!(
        fix_file(
            &fixture("image/truncated_half.jpg"),
            Path::new("/nonexistent-dir/x.png"),
            None,
            &FixSpec::default(),
            false
        ),
        Err(FixError::Io { .. }) | Err(FixError::Unfixable(_))
    ));
}

#[test]
fn h264_in_a_container_the_api_refuses_is_remuxed_to_faststart_mp4() {
    for rel in ["video/h264_640x360.mkv", "video/h264_320x240.flv", "video/h264_320x240.ts", "video/h264_320x240.3gp"] {
        let input = fixture(rel);
        let before = digest(&input);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.mp4");
        let outcome = fix_file(&input, &out, None, &FixSpec::default(), false).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(digest(&input), before, "{rel}: input modified");
        assert!(outcome.changes[0].starts_with("remuxed"), "{rel}: {:?}", outcome.changes);
        let f = probe(&out).unwrap();
        assert_eq!(f.format, wanprep::Format::Mp4);
        assert_eq!(f.video_codec.as_deref(), Some("h264"));
        assert_eq!(f.moov_before_mdat, Some(true), "{rel}: +faststart");
        assert!((f.duration_s.unwrap() - 2.5).abs() < 0.15, "{rel}: {:?}", f.duration_s);
        assert!(is_compliant(&check(&f, Role::Video, &Limits::default())));
    }
}

#[test]
fn videos_that_cannot_be_fixed_exit_1_with_the_reason_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, why) in [
        ("video/dur_1.9s_10fps.mp4", "shorter than 2 s"),
        ("video/truncated_moov_end.mp4", "damaged"),
        ("video/audio_only.mp4", "no video stream"),
    ] {
        let out = dir.path().join("out.mp4");
        let o = wanprep(&["fix", fixture(rel).to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{rel}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(why), "{rel}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{rel}: temporary file left behind");
    }
}

#[test]
fn a_long_clip_is_trimmed_by_stream_copy_to_at_most_30_s() {
    let dir = tempfile::tempdir().unwrap();
    // 40 s at 30 fps with AAC audio and B-frames, moov at the end.
    let input = dir.path().join("long.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=40"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=40"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-crf",
            "35",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&input)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let before = digest(&input);
    for (name, input) in [("long", input.clone()), ("dur_30.5", fixture("video/dur_30.5s_10fps.mp4"))] {
        let out = dir.path().join(format!("{name}_fixed.mp4"));
        let outcome =
            fix_file(&input, &out, None, &FixSpec::default(), false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(outcome.changes.iter().any(|c| c.starts_with("trimmed")), "{name}: {:?}", outcome.changes);
        let f = probe(&out).unwrap();
        let d = f.duration_s.unwrap();
        assert!((29.0..=30.0).contains(&d), "{name}: {d} s");
        assert!(is_compliant(&check(&f, Role::Video, &Limits::default())));
        if name == "long" {
            assert_eq!(f.audio_codec.as_deref(), Some("aac"), "audio kept");
        }
    }
    assert_eq!(digest(&input), before);
}

fn displayed(f: &wanprep::MediaFacts) -> f64 {
    f64::from(f.display_width.unwrap()) / f64::from(f.display_height.unwrap())
}

#[test]
fn videos_needing_pixels_changed_are_reencoded_to_square_unrotated_h264_that_displays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = FixSpec::default();
    let cases: Vec<(&str, Option<(&str, f64)>)> = vec![
        ("video/dims_2050x684.mp4", None),
        ("video/dims_198x300.mp4", None),
        ("video/sar1_2_1200x300.mp4", None),
        ("video/sar4_3_1600x900.mp4", None),
        ("video/mp4v_640x360.mp4", Some(("video.max_side", 600.0))),
        // A portrait phone clip (stored 1280x720, rotated 90) over a tighter limit.
        ("video/rot90_1280x720.mp4", Some(("video.max_side", 1000.0))),
    ];
    for (rel, limit) in cases {
        spec.limits = Limits::default();
        if let Some((name, v)) = limit {
            spec.limits.set(name, v).unwrap();
        }
        let input = fixture(rel);
        let before = digest(&input);
        let src = probe(&input).unwrap();
        let out = dir.path().join(format!("{}.mp4", rel.replace('/', "_")));
        let outcome = fix_file(&input, &out, Some(Role::Video), &spec, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(digest(&input), before, "{rel}: input modified");
        assert!(outcome.changes[0].starts_with("re-encoded"), "{rel}: {:?}", outcome.changes);
        let f = probe(&out).unwrap();
        assert!(
            is_compliant(&check(&f, Role::Video, &spec.limits)),
            "{rel}: {:?}",
            check(&f, Role::Video, &spec.limits)
        );
        assert_eq!(f.video_codec.as_deref(), Some("h264"));
        assert_eq!((f.rotation, f.sample_aspect_ratio), (Some(0), None), "{rel}: square pixels, no rotation flag");
        assert!(
            (displayed(&f) / displayed(&src) - 1.0).abs() < 0.01,
            "{rel}: {} vs {}",
            displayed(&f),
            displayed(&src)
        );
        assert!((f.duration_s.unwrap() - src.duration_s.unwrap()).abs() < 0.1, "{rel}: {:?}", f.duration_s);
        assert_eq!(f.frame_rate, src.frame_rate, "{rel}: frame rate kept");
    }
}

#[test]
fn a_video_with_its_aspect_out_of_range_is_padded_or_cropped_when_reencoded() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, want) in [(AspectMode::Pad, [602, 202]), (AspectMode::Crop, [600, 200])] {
        let mut spec = FixSpec::default();
        spec.aspect = mode;
        let out = dir.path().join(format!("{mode:?}.mp4"));
        fix_file(&fixture("video/dims_602x200.mp4"), &out, None, &spec, false).unwrap();
        let f = probe(&out).unwrap();
        assert_eq!([f.width.unwrap(), f.height.unwrap()], want, "{mode:?}");
    }
}

#[test]
fn start_and_duration_choose_the_part_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mp4");
    let o = wanprep(&[
        "fix",
        "--json",
        "fixtures/video/dur_30.0s_10fps.mp4",
        "--duration",
        "10",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(json(&o)["plan"]["ops"][1]["op"], "trim", "a cut from the start is a stream copy");
    let d = probe(&out).unwrap().duration_s.unwrap();
    assert!((9.5..=10.0).contains(&d), "{d}");
    let out = dir.path().join("b.mp4");
    let o = wanprep(&[
        "fix",
        "--json",
        "fixtures/video/dur_30.5s_10fps.mp4",
        "--start",
        "5",
        "--duration",
        "12",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["plan"]["ops"][0]["op"], "reencode", "a later start re-encodes");
    let d = probe(&out).unwrap().duration_s.unwrap();
    assert!((11.5..=12.0).contains(&d), "{d}");
    let out = dir.path().join("c.mp4");
    let o = wanprep(&["fix", "fixtures/video/ok_640x360_3s.mp4", "--start", "2.5", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "the part left is under 2 s");
    assert!(!out.exists());
    assert_eq!(
        code(&wanprep(&["fix", "fixtures/video/ok_640x360_3s.mp4", "--start", "-1", "-o", out.to_str().unwrap()])),
        2
    );
}

#[test]
fn a_killed_video_fix_stops_the_ffmpeg_helper_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.mp4");
    // 4:1 needs padding, so a re-encode that runs for seconds.
    crate::util::make_clip(&input, "2400x600", 30, 20, &[]);
    let out = dir.path().join("fixed.mp4");
    let mut child = crate::util::spawn_quiet(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let temp_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p != &input && p != &out)
            .collect()
    };
    let start = std::time::Instant::now();
    while !temp_files().iter().any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0)) {
        assert!(start.elapsed().as_secs() < 60, "the encode never started writing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: wanprep cannot clean up; the helper must notice.
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while !temp_files().is_empty() {
        assert!(start.elapsed().as_secs() < 10, "the helper kept writing: {:?}", temp_files());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!out.exists(), "a partial output is visible");
}

#[test]
fn only_the_helper_links_ffmpeg() {
    let ldd =
        |exe: &str| String::from_utf8(std::process::Command::new("ldd").arg(exe).output().unwrap().stdout).unwrap();
    assert!(!ldd(env!("CARGO_BIN_EXE_wanprep")).contains("libavcodec"), "wanprep should start without FFmpeg");
    assert!(ldd(env!("CARGO_BIN_EXE_wanprep-av")).contains("libavcodec"));
}

#[test]
fn the_helper_refuses_what_is_not_a_request() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wanprep-av"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{\"op\": \"format_disk\"}").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a request"));
}

#[test]
fn extend_loop_makes_a_short_clip_long_enough_and_loops_its_audio_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("short.mp4");
    crate::util::make_clip(
        &input,
        "320x240",
        25,
        1,
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-shortest"],
    );
    let out = dir.path().join("long.mp4");
    let refused = wanprep(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&refused), 1);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--extend loop"));
    assert!(!out.exists());

    let o = wanprep(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--extend", "loop", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    let d = doc["media"]["duration_s"].as_f64().unwrap();
    assert!((2.0..=2.3).contains(&d), "duration {d}");
    let changes = doc["changes"].to_string();
    assert!(changes.contains("looped"), "{changes}");
    // Both streams run the whole length (the audio was looped with the video).
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "csv=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    let audio: f64 = text
        .lines()
        .find(|l| l.starts_with("audio"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no audio stream: {text}"));
    assert!(audio > 1.8, "audio lasts {audio} s: {text}");
}

/// `codec,duration` of the audio stream of `path`, by ffprobe.
fn audio_stream(path: &Path) -> Option<(String, f64)> {
    let o = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name,duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut it = text.trim().split(',');
    Some((it.next()?.to_string(), it.next()?.parse().ok()?))
}

#[test]
fn audio_mp4_cannot_carry_is_re_encoded_to_aac_in_a_remux_and_in_a_re_encode() {
    let dir = tempfile::tempdir().unwrap();
    // Remux path: H.264 + Opus in MKV.
    let mkv = dir.path().join("opus.mkv");
    crate::util::make_clip(&mkv, "320x240", 25, 3, &["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "libopus"]);
    // Re-encode path: MJPEG + 22.05 kHz PCM in AVI, too wide.
    let avi = dir.path().join("pcm.avi");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=2400x600:rate=25:duration=3",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3:sample_rate=22050",
            "-ac",
            "1",
            "-c:v",
            "mjpeg",
            "-c:a",
            "pcm_s16le",
        ])
        .arg(&avi)
        .status()
        .unwrap();
    assert!(status.success());
    for (input, source) in [(&mkv, "opus"), (&avi, "pcm_s16le")] {
        let out = dir.path().join(format!("{source}.mp4"));
        let o = wanprep(&["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--json"]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
        let doc = json(&o);
        let changes = doc["changes"].to_string();
        assert!(changes.contains(&format!("re-encoded {source} audio -> AAC")), "{changes}");
        let (codec, secs) = audio_stream(&out).expect("an audio stream");
        assert_eq!(codec, "aac");
        assert!((secs - 3.0).abs() < 0.1, "audio lasts {secs} s");
    }
}

#[test]
fn a_container_the_probe_does_not_read_is_measured_by_ffmpeg_and_re_encoded_when_the_codec_cannot_be_copied() {
    let dir = tempfile::tempdir().unwrap();
    // VP9 in WebM: MP4 cannot take the codec as the API wants it, so a re-encode, sized from
    // what FFmpeg's demuxer reports (wanprep's own probe does not read WebM).
    let out = dir.path().join("vp9.mp4");
    let o =
        wanprep(&["fix", fixture("video/vp9_320x240.webm").to_str().unwrap(), "-o", out.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let doc = json(&o);
    assert!(doc["changes"][0].as_str().unwrap().starts_with("re-encoded vp9 -> H.264, 320x240"), "{doc}");
    assert_eq!(doc["media"]["video_codec"], "h264");
    // H.264 in MKV that is also too large for a lowered limit: a plain remux would not do.
    let out = dir.path().join("mkv.mp4");
    let o = wanprep(&[
        "fix",
        fixture("video/h264_640x360.mkv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--limit",
        "video.max_side=400",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let doc = json(&o);
    assert_eq!(doc["media"]["width"].as_u64(), Some(400));
    assert!((224..=226).contains(&doc["media"]["height"].as_u64().unwrap()), "{doc}");
}
