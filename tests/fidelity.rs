//! Issue 10 — fidelity: a fix never harms the job, a check never cries wolf. Each test names
//! the item of the issue it covers; each failed before that item was done.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use wanprep::fix::{fix_file, FixSpec};
use wanprep::{check, check_input, is_compliant, probe, probe_bytes, CheckOptions, InputSpec, Limits, Role};

use crate::http_server::TestServer;
use crate::util::{code, ffmpeg, fixture, json, wanprep};

/// A clip of `secs` at `rate` from lavfi's testsrc2 with a tone, encoded by `codec_args`, with
/// B-frames (reordering: a stream-copy cut has frames decoded before the cut but shown after).
fn clip(out: &Path, size: &str, rate: &str, secs: u32, codec_args: &[&str]) {
    let src = format!("testsrc2=size={size}:rate={rate}:duration={secs}");
    let tone = format!("sine=frequency=440:duration={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-f", "lavfi", "-i", &tone];
    args.extend_from_slice(codec_args);
    args.extend_from_slice(&["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", "-shortest"]);
    let out = out.to_str().unwrap();
    args.push(out);
    ffmpeg(&args);
}

const H264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-bf", "3", "-crf", "36"];
const HEVC: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-crf",
    "40",
    "-tag:v",
    "hvc1",
    "-x265-params",
    "log-level=none:bframes=3",
];

/// `src` with a display matrix that turns it 90° (a phone's portrait clip), in the container
/// `out`'s extension names: ffmpeg 5.1 sets it on a stream copy only.
fn rotated(src: &Path, out: &Path) {
    ffmpeg(&["-i", src.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", out.to_str().unwrap()]);
}

fn ffprobe_duration(p: &Path) -> f64 {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// One decoded frame of a video (at `at` seconds) as an RGB picture, through the ffmpeg CLI
/// (autorotation off: the stored frame).
fn frame_at(video: &Path, at: f64, dir: &Path) -> image::RgbImage {
    let png = dir.join(format!("frame-{}.png", video.file_stem().unwrap().to_string_lossy()));
    ffmpeg(&["-ss", &at.to_string(), "-i", video.to_str().unwrap(), "-frames:v", "1", png.to_str().unwrap()]);
    image::open(&png).unwrap().to_rgb8()
}

fn near(p: [u8; 3], want: [u8; 3], tol: i32) -> bool {
    p.iter().zip(want).all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= tol)
}

const SKIN: [u8; 3] = [224, 172, 140];

#[test]
fn item1_rotation_and_the_hevc_sample_entry_survive_every_stream_copy() {
    let dir = tempfile::tempdir().unwrap();
    let portrait_image = fixture("image/dims_200x600.png");
    for (codec, args) in [("h264", H264), ("hevc", HEVC)] {
        let plain = dir.path().join(format!("{codec}.mp4"));
        clip(&plain, "640x360", "30", 32, args);
        for container in ["mov", "mp4"] {
            let input = dir.path().join(format!("phone_{codec}.{container}"));
            rotated(&plain, &input);
            let src = probe(&input).unwrap();
            assert_eq!((src.display_width, src.display_height), (Some(360), Some(640)), "{codec}.{container}");
            for out_ext in ["mp4", "mov"] {
                let out = dir.path().join(format!("fixed_{codec}_{container}.{out_ext}"));
                let o = fix_file(&input, &out, None, &FixSpec::default(), false)
                    .unwrap_or_else(|e| panic!("{codec}.{container} -> {out_ext}: {e}"));
                let what = format!("{codec}.{container} -> {out_ext}: {:?}", o.changes);
                assert!(o.changes.iter().any(|c| c.starts_with("trimmed")), "{what}");
                let f = probe(&out).unwrap();
                assert_eq!(
                    (f.display_width, f.display_height, f.rotation),
                    (Some(360), Some(640), src.rotation),
                    "{what}"
                );
                assert_eq!(f.codec_tag, src.codec_tag, "{what}: the sample entry is kept");
                let d = f.duration_s.unwrap();
                assert!((30.0 - 1.0 / 30.0 - 1e-3..=30.0).contains(&d), "{what}: {d} s");
                // The pair with a portrait character stays a portrait pair.
                let o = wanprep(&[
                    "check",
                    "--json",
                    "--image",
                    portrait_image.to_str().unwrap(),
                    "--video",
                    out.to_str().unwrap(),
                ]);
                let doc = json(&o);
                assert!(!crate::util::warnings(&doc, 1).contains(&"pair.orientation".to_string()), "{what}");
                assert_eq!(code(&o), 0, "{what}");
            }
        }
    }
}

#[test]
fn item2_transparency_is_flattened_onto_the_background_or_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("image/cutout_rgba_300x450.png");
    let src = image::open(&input).unwrap().to_rgba8();
    // A corner pixel is transparent, with a loud colour hidden under it.
    assert_eq!(src.get_pixel(2, 2).0[3], 0);
    assert!(!near([src.get_pixel(2, 2).0[0], src.get_pixel(2, 2).0[1], src.get_pixel(2, 2).0[2]], [255, 255, 255], 30));
    for (name, bg, want) in [("white.jpg", None, [255, 255, 255]), ("black.jpg", Some("000000"), [0, 0, 0])] {
        let out = dir.path().join(name);
        let mut args = vec!["fix", "--json", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        if let Some(bg) = bg {
            args.extend(["--background", bg]);
        }
        let o = wanprep(&args);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let doc = json(&o);
        assert!(doc["changes"].to_string().contains("flattened transparency"), "{doc}");
        let img = image::open(&out).unwrap().to_rgb8();
        for (x, y) in [(2, 2), (297, 447), (150, 5)] {
            assert!(near(img.get_pixel(x, y).0, want, 12), "{name} ({x},{y}): {:?}", img.get_pixel(x, y));
        }
        // The opaque middle is untouched (JPEG error aside).
        let (s, o) = (src.get_pixel(150, 225).0, img.get_pixel(150, 225).0);
        assert!(near(o, [s[0], s[1], s[2]], 40), "{name} middle: {s:?} -> {o:?}");
        assert_eq!(probe(&out).unwrap().alpha, Some(false));
    }
    for name in ["kept.png", "kept.webp"] {
        let out = dir.path().join(name);
        let o = fix_file(&input, &out, None, &FixSpec::default(), false).unwrap();
        assert!(!o.changes.iter().any(|c| c.contains("flattened")), "{name}: {:?}", o.changes);
        assert_eq!(probe(&out).unwrap().alpha, Some(true), "{name}");
        let img = image::open(&out).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(2, 2).0[3], 0, "{name}: still transparent");
        assert_eq!(img.get_pixel(150, 225).0[3], 255, "{name}: still opaque");
    }
}

/// A noisy 2000x2800 PNG of about 16 MB, far over the 5 MB limit.
fn heavy_png(dir: &Path) -> PathBuf {
    let input = dir.join("heavy.png");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let img = image::RgbImage::from_fn(2000, 2800, |x, y| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Noise over a gradient, so the picture has structure as well as grain.
        let g = ((x + y) / 19) as u8;
        image::Rgb([g.wrapping_add(rng as u8 >> 2), g.wrapping_add((rng >> 8) as u8 >> 2), (rng >> 16) as u8 >> 1])
    });
    img.save(&input).unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() > 5_000_000);
    input
}

#[test]
fn item3_and_4_the_output_holds_the_format_its_name_says_and_fills_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let heavy = heavy_png(dir.path());
    let out = dir.path().join("out.png");
    let o = wanprep(&["fix", "--json", heavy.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    let f = probe(&out).unwrap();
    assert_eq!(f.format, wanprep::Format::Png, "a .png holds PNG: {doc}");
    assert!(doc["findings"].as_array().unwrap().iter().all(|x| x["rule"] != "image.extension"), "{doc}");
    // Item 4: the largest size that fits, within 10 % of the budget, aspect kept.
    assert!((4_500_000..=5_000_000).contains(&f.size_bytes), "{} bytes: {doc}", f.size_bytes);
    let (w, h) = (f.width.unwrap(), f.height.unwrap());
    assert!((f64::from(w) / f64::from(h) - 2000.0 / 2800.0).abs() < 0.002, "{w}x{h}");

    // Every image format by name, from a JPEG.
    for (ext, format) in [
        ("png", wanprep::Format::Png),
        ("webp", wanprep::Format::Webp),
        ("bmp", wanprep::Format::Bmp),
        ("jpeg", wanprep::Format::Jpeg),
    ] {
        let out = dir.path().join(format!("photo.{ext}"));
        let o = wanprep(&["fix", "fixtures/image/ok_800x600.jpg", "-o", out.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{ext}");
        assert_eq!(probe(&out).unwrap().format, format, "{ext}");
    }
    // Containers by name: a compliant MOV into .mp4 is remuxed, an MP4 into .mov too.
    for (input, ext, format) in [
        ("fixtures/video/ok_640x360_3s.mov", "mp4", wanprep::Format::Mp4),
        ("fixtures/video/ok_640x360_3s.mp4", "mov", wanprep::Format::Mov),
    ] {
        let out = dir.path().join(format!("clip.{ext}"));
        let o = wanprep(&["fix", input, "-o", out.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{input} -> {ext}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(probe(&out).unwrap().format, format, "{input} -> {ext}");
    }
    // A name that asks for what the input cannot become: exit 1, naming what would work.
    for (input, name, hint) in [
        ("fixtures/image/animated_400x300.gif", "anim.mp4", ".png"),
        ("fixtures/video/ok_640x360_3s.mp4", "clip.png", ".mp4"),
        ("fixtures/image/ok_800x600.jpg", "photo.gif", ".png"),
    ] {
        let out = dir.path().join(name);
        let o = wanprep(&["fix", input, "-o", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 1, "{input} -> {name}: {err}");
        assert!(err.contains(hint), "{input} -> {name}: {err}");
        assert!(!out.exists());
    }
    // A name that names no format at all is a usage error.
    let o = wanprep(&["fix", "fixtures/image/dims_199x300.png", "-o", dir.path().join("x.xyz").to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains(".xyz"));
}

#[test]
fn item3_a_png_that_cannot_fit_even_at_the_smallest_size_names_the_format_that_would() {
    let dir = tempfile::tempdir().unwrap();
    let heavy = heavy_png(dir.path());
    let mut spec = FixSpec::default();
    spec.limits.set("image.max_bytes", 20_000.0).unwrap();
    let out = dir.path().join("tiny.png");
    match fix_file(&heavy, &out, None, &spec, false) {
        Err(wanprep::fix::FixError::Unfixable(why)) => assert!(why.contains(".jpg"), "{why}"),
        other => panic!("{:?}", other.map(|o| o.changes)),
    }
    assert!(!out.exists());
    // The same budget as a JPEG works (scaled as little as the budget allows).
    let out = dir.path().join("tiny.jpg");
    let o = fix_file(&heavy, &out, None, &spec, false).unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!((18_000..=20_000).contains(&size), "{size} bytes: {:?}", o.changes);
}

#[test]
fn item5_a_crop_keeps_the_character() {
    let dir = tempfile::tempdir().unwrap();
    let banner = fixture("image/banner_person_left_5000x1000.png");
    let figure = fixture("image/figure_head_top_900x3600.png");
    let crop = |input: &Path, anchor: Option<&str>, name: &str| -> image::RgbImage {
        let out = dir.path().join(name);
        let mut args = vec!["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--aspect", "crop"];
        if let Some(a) = anchor {
            args.extend(["--anchor", a]);
        }
        let o = wanprep(&args);
        assert_eq!(code(&o), 0, "{name}: {}", String::from_utf8_lossy(&o.stderr));
        image::open(&out).unwrap().to_rgb8()
    };
    // The banner's person (head at x 300..500, y 100..300) is kept by default (auto)...
    let img = crop(&banner, None, "banner_auto.png");
    assert_eq!(img.dimensions(), (3000, 1000));
    assert!(near(img.get_pixel(400, 200).0, SKIN, 8), "{:?}", img.get_pixel(400, 200));
    // ...and by `left`, but not by `right` or `centre` (what the old centre crop did).
    assert!(near(crop(&banner, Some("left"), "banner_left.png").get_pixel(400, 200).0, SKIN, 8));
    for a in ["right", "centre"] {
        let img = crop(&banner, Some(a), &format!("banner_{a}.png"));
        assert!(!img.pixels().any(|p| near(p.0, SKIN, 8)), "{a}: the person is cut away, as asked");
    }
    // The full-body figure keeps its head (y 100..330) by default and with `top`.
    for a in [None, Some("top")] {
        let img = crop(&figure, a, &format!("figure_{a:?}.png"));
        assert_eq!(img.dimensions(), (900, 2700));
        assert!(near(img.get_pixel(450, 215).0, SKIN, 8), "{a:?}: {:?}", img.get_pixel(450, 215));
    }
    let img = crop(&figure, Some("bottom"), "figure_bottom.png");
    assert!(!img.pixels().any(|p| near(p.0, SKIN, 8)), "bottom: the head is cut, as asked");
}

#[test]
fn item5_a_video_crop_keeps_the_character_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.mp4");
    // 4:1, a skin-coloured figure near the left edge.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0x466ea0:size=1600x400:rate=25:duration=3",
        "-vf",
        "drawbox=x=100:y=100:w=120:h=200:color=0xE0AC8C:t=fill",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        input.to_str().unwrap(),
    ]);
    for (anchor, kept) in [(None, true), (Some("left"), true), (Some("right"), false)] {
        let out = dir.path().join(format!("crop_{}.mp4", anchor.unwrap_or("auto")));
        let mut args = vec!["fix", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--aspect", "crop"];
        if let Some(a) = anchor {
            args.extend(["--anchor", a]);
        }
        let o = wanprep(&args);
        assert_eq!(code(&o), 0, "{anchor:?}: {}", String::from_utf8_lossy(&o.stderr));
        let f = probe(&out).unwrap();
        assert_eq!((f.width, f.height), (Some(1200), Some(400)), "{anchor:?}");
        let frame = frame_at(&out, 1.0, dir.path());
        let has_figure = frame.pixels().filter(|p| near(p.0, SKIN, 24)).count() > 1000;
        assert_eq!(has_figure, kept, "{anchor:?}");
    }
}

#[test]
fn item6_cuts_end_within_one_frame_of_what_was_asked_and_the_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, fps) in [("30", 30.0), ("30000/1001", 30000.0 / 1001.0)] {
        let input = dir.path().join(format!("long_{}.mp4", rate.replace('/', "_")));
        clip(&input, "320x240", rate, 32, H264);
        for (duration, start) in [(None, None), (Some("5"), None), (Some("4.99"), None), (Some("7"), Some("1.5"))] {
            let out = dir.path().join(format!("cut_{}_{duration:?}_{start:?}.mp4", rate.replace('/', "_")));
            let mut args = vec!["fix", "--json", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
            if let Some(d) = duration {
                args.extend(["--duration", d]);
            }
            if let Some(s) = start {
                args.extend(["--start", s]);
            }
            let o = wanprep(&args);
            assert_eq!(code(&o), 0, "{rate} {duration:?}: {}", String::from_utf8_lossy(&o.stderr));
            let doc = json(&o);
            let asked: f64 = duration.map_or(30.0, |d| d.parse().unwrap());
            let d = probe(&out).unwrap().duration_s.unwrap();
            let what = format!("{rate} fps, --duration {duration:?} --start {start:?}: {d} s, {}", doc["plan"]);
            assert!(d <= asked + 1e-3 && d >= asked - 1.0 / fps - 1e-3, "{what}");
            // The plan states what it produces, and ffprobe agrees.
            let op = doc["plan"]["ops"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["op"] == "trim" || o["op"] == "reencode")
                .unwrap();
            let planned = op["to_s"].as_f64().or(op["trim_to_s"].as_f64()).unwrap();
            assert!((planned - d).abs() <= 1.0 / fps + 1e-3, "{what}");
            assert!((ffprobe_duration(&out) - d).abs() < 2e-3, "{what}");
            assert_eq!(op["op"], if start.is_some() { "reencode" } else { "trim" }, "{what}");
        }
    }
}

/// Runs a copy of `wanprep` with no `wanprep-av` beside it or on PATH.
fn without_helper(dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("wanprep");
    if !exe.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_wanprep"), &exe).unwrap();
    }
    Command::new(&exe).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env("PATH", "/usr/bin:/bin").output().unwrap()
}

#[test]
fn item7_without_the_ffmpeg_helper_every_command_exits_2_with_an_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let hint = |o: &std::process::Output| {
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(all.contains("wanprep-av") && all.contains("install"), "{all}");
    };
    // --deep never reports a verdict it did not compute.
    let o = without_helper(dir.path(), &["check", "--deep", "fixtures/video/ok_640x360_3s.mp4"]);
    assert_eq!(code(&o), 2);
    hint(&o);
    let o = without_helper(dir.path(), &["check", "--deep", "fixtures/image/ok_800x600.jpg"]);
    assert_eq!(code(&o), 0, "images do not need the helper");
    // fix: a video that needs FFmpeg work.
    let out = dir.path().join("out.mp4");
    let o = without_helper(dir.path(), &["fix", "fixtures/video/h264_640x360.mkv", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    hint(&o);
    assert!(!out.exists());
    // batch: the video is FAILED (not UNFIXABLE), and the run exits 2.
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(fixture("video/h264_640x360.mkv"), input.join("clip.mkv")).unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), input.join("me.jpg")).unwrap();
    let report = dir.path().join("report.json");
    let o = without_helper(
        dir.path(),
        &[
            "batch",
            input.to_str().unwrap(),
            "-o",
            dir.path().join("out").to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let clip = doc["inputs"].as_array().unwrap().iter().find(|i| i["input"] == "clip.mkv").unwrap();
    assert_eq!(clip["status"], "failed", "{clip}");
    assert!(clip["reason"].as_str().unwrap().contains("wanprep-av"), "{clip}");
}

/// `base` with a stuffed 0xFF 0x00 of its entropy-coded data moved to offset `at` (the 0xFF
/// there), by COM segments and 0xFF fill bytes before the SOS marker.
fn stuffed_ff_at(base: &[u8], at: usize) -> Option<Vec<u8>> {
    let sos = base.windows(2).position(|w| w == [0xFF, 0xDA])?;
    let scan = sos + 2 + usize::from(u16::from_be_bytes([base[sos + 2], base[sos + 3]]));
    let stuffed = scan + base[scan..].windows(2).position(|w| w == [0xFF, 0x00])?;
    let mut pad = at.checked_sub(stuffed)?;
    let mut insert = Vec::new();
    while pad >= 4 {
        // A COM segment: marker, 16-bit length (itself included), payload.
        let n = pad.min(65_537);
        insert.extend_from_slice(&[0xFF, 0xFE]);
        insert.extend_from_slice(&((n - 2) as u16).to_be_bytes());
        insert.resize(insert.len() + n - 4, b'x');
        pad -= n;
    }
    // 0xFF fill bytes before the SOS marker: one byte each.
    insert.resize(insert.len() + pad, 0xFF);
    let mut out = base[..sos].to_vec();
    out.extend_from_slice(&insert);
    out.extend_from_slice(&base[sos..]);
    debug_assert_eq!(&out[at..at + 2], &[0xFF, 0x00]);
    Some(out)
}

fn jpeg_base() -> Vec<u8> {
    std::fs::read(fixture("image/ok_800x600.jpg")).unwrap()
}

#[test]
fn item8_a_stuffed_ff_on_a_64_kib_boundary_is_not_truncation_locally_or_over_http() {
    let server = TestServer::start();
    for spec in [
        InputSpec::new("fixtures/image/jpeg_stuffed_ff_at_64k_520x400.jpg", None),
        InputSpec::new(server.url("range/image/jpeg_stuffed_ff_at_64k_520x400.jpg"), None),
    ] {
        for deep in [false, true] {
            let opts = CheckOptions { probe: wanprep::ProbeOptions::new().deep(deep), ..CheckOptions::default() };
            let r = check_input(&spec, &opts);
            assert!(r.compliant, "{} deep={deep}: {:?}", spec.input, r.findings);
            assert_eq!(r.media.as_ref().unwrap().width, Some(520));
        }
    }
    // Around every block boundary of the first three blocks, over HTTP (where each block is
    // a range request) and from memory.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path().to_path_buf());
    let base = jpeg_base();
    for boundary in [65_536usize, 131_072, 196_608] {
        for at in boundary - 3..boundary + 2 {
            let data = stuffed_ff_at(&base, at).unwrap();
            assert!(probe_bytes(&data).is_intact(), "at {at}");
            let name = format!("at{at}.jpg");
            std::fs::write(dir.path().join(&name), &data).unwrap();
            let r = check_input(&InputSpec::new(server.url(&format!("range/{name}")), None), &CheckOptions::default());
            assert!(r.compliant, "http at {at}: {:?}", r.findings);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Item 8: wherever a stuffed 0xFF falls in the first three 64 KiB blocks, the JPEG is read
    /// to its EOI.
    #[test]
    fn item8_a_stuffed_ff_anywhere_in_the_first_three_blocks_is_read_to_the_end(at in 2_000usize..196_700) {
        let base = jpeg_base();
        if let Some(data) = stuffed_ff_at(&base, at) {
            let f = probe_bytes(&data);
            prop_assert!(f.is_intact(), "at {}: {:?}", at, f.integrity_problem);
            prop_assert_eq!(f.width, Some(800));
        }
    }
}

#[test]
fn item9_fragmented_files_last_as_long_as_their_samples() {
    let f = probe(fixture("video/frag_keyframe_320x240_4s.mp4")).unwrap();
    assert_eq!(f.duration_s, Some(4.0), "first samples in moov, the rest in fragments");
    assert_eq!(f.frame_count, Some(100));
    let f = probe(fixture("video/frag_640x360_3s.mp4")).unwrap();
    assert_eq!(f.duration_s, Some(3.0));
}

#[test]
fn item10_an_encrypted_stream_is_an_integrity_error_naming_the_codec_inside() {
    let o = wanprep(&["check", "--json", "fixtures/video/cenc_320x240.mp4"]);
    assert_eq!(code(&o), 1);
    let doc = json(&o);
    let media = &doc["inputs"][0]["media"];
    assert_eq!(media["video_codec"], "h264");
    assert_eq!(media["codec_tag"], "avc1", "never the wrapper name");
    assert_eq!(media["audio_codec"], "aac", "never 'enca'");
    assert_eq!(media["encrypted"], true);
    let finding =
        doc["inputs"][0]["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "video.integrity").unwrap();
    assert_eq!(finding["fixable"], false);
    assert!(finding["message"].as_str().unwrap().contains("encrypted"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    assert_eq!(code(&wanprep(&["fix", "fixtures/video/cenc_320x240.mp4", "-o", out.to_str().unwrap()])), 1);
}

#[test]
fn item11_structures_players_accept_are_judged_as_what_they_are() {
    // A lone DASH media segment (styp first): a video without its index.
    for args in [
        vec!["check", "--json", "fixtures/video/dash_segment_320x240.m4s"],
        vec!["check", "--json", "--video", "fixtures/video/dash_segment_320x240.m4s"],
    ] {
        let doc = json(&wanprep(&args));
        assert_eq!(doc["inputs"][0]["kind"], "video", "{args:?}");
        assert_eq!(crate::util::errors(&doc, 0), ["video.integrity"], "{args:?}");
    }
    // styp before ftyp, then a whole movie: an MP4.
    let mut joined = b"\0\0\0\x18stypmsdh\0\0\0\0msdhmsix".to_vec();
    joined.extend(std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("styp_first.mp4");
    // Chunk offsets move by the 24 bytes in front: shift them as a muxer would have.
    std::fs::write(&p, shift_chunk_offsets(&joined, 24)).unwrap();
    let f = probe(&p).unwrap();
    assert_eq!(f.format, wanprep::Format::Mp4);
    assert!(is_compliant(&check(&f, Role::Video, &Limits::default())), "{:?}", f.integrity_problem);
    // A second video track with no samples next to a playable one is not damage.
    let f = probe(fixture("video/empty_second_track_320x240.mp4")).unwrap();
    assert!(f.is_intact(), "{:?}", f.integrity_problem);
    assert_eq!((f.width, f.frame_count), (Some(320), Some(63)));
    // Motion JPEG 2000 is a video container the API does not take, not an image.
    let doc = json(&wanprep(&["check", "--json", "fixtures/video/mj2_320x240.mj2"]));
    assert_eq!(doc["inputs"][0]["kind"], "video");
    assert_eq!(crate::util::errors(&doc, 0), ["video.format"]);
    // Audio with a cover picture is not a video.
    let doc = json(&wanprep(&["check", "--json", "fixtures/video/audio_with_cover_art.mp4"]));
    assert_eq!(crate::util::errors(&doc, 0), ["video.format"]);
    assert!(doc["inputs"][0]["findings"][0]["message"].as_str().unwrap().contains("cover"));
}

/// Adds `by` to every `stco` entry of an MP4 held in memory.
fn shift_chunk_offsets(data: &[u8], by: u32) -> Vec<u8> {
    let mut out = data.to_vec();
    let i = out.windows(4).position(|w| w == b"stco").expect("stco");
    let n = u32::from_be_bytes(out[i + 8..i + 12].try_into().unwrap()) as usize;
    for k in 0..n {
        let at = i + 12 + 4 * k;
        let v = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) + by;
        out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[test]
fn item12_jpeg_header_oddities_libjpeg_reads_are_not_damage() {
    for rel in ["image/jpeg_fill_bytes_300x225.jpg", "image/jpeg_ff00_between_segments_300x225.jpg"] {
        let f = probe(fixture(rel)).unwrap();
        assert!(f.is_intact(), "{rel}: {:?}", f.integrity_problem);
        assert_eq!((f.width, f.height), (Some(300), Some(225)), "{rel}");
        // And the decoder (--deep) agrees.
        let o = wanprep(&["check", "--deep", "--json", fixture(rel).to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{rel}");
    }
}

#[test]
fn item14_check_tells_what_fix_will_do() {
    let dir = tempfile::tempdir().unwrap();
    // A Matroska clip too large for the API: the check names the size, and the plan re-encodes.
    let mkv = dir.path().join("big.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=2560x1440:rate=25:duration=2.5",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        mkv.to_str().unwrap(),
    ]);
    let doc = json(&wanprep(&["check", "--json", mkv.to_str().unwrap()]));
    let media = &doc["inputs"][0]["media"];
    assert_eq!((media["width"].as_u64(), media["height"].as_u64()), (Some(2560), Some(1440)));
    assert_eq!(media["video_codec"], "h264");
    assert!((media["duration_s"].as_f64().unwrap() - 2.5).abs() < 0.1);
    let errors = crate::util::errors(&doc, 0);
    assert!(
        errors.contains(&"video.format".to_string()) && errors.contains(&"video.dimensions".to_string()),
        "{errors:?}"
    );
    let plan = json(&wanprep(&["fix", "--dry-run", "--json", mkv.to_str().unwrap(), "-o", "x.mp4"]));
    assert_eq!(plan["plan"]["ops"][0]["op"], "reencode", "{plan}");
    // An H.264 MKV that only needs its container changed: check says so, the plan remuxes.
    let doc = json(&wanprep(&["check", "--json", "fixtures/video/h264_640x360.mkv"]));
    assert_eq!(crate::util::errors(&doc, 0), ["video.format"]);
    let plan = json(&wanprep(&["fix", "--dry-run", "--json", "fixtures/video/h264_640x360.mkv", "-o", "x.mp4"]));
    assert_eq!(plan["plan"]["ops"][0]["op"], "remux");
    // Animated images get a warning, and fix says which frame it kept.
    for rel in ["image/animated_400x300.gif", "image/animated_400x300.webp", "image/apng_400x300.png"] {
        let doc = json(&wanprep(&["check", "--json", fixture(rel).to_str().unwrap()]));
        assert!(crate::util::warnings(&doc, 0).contains(&"image.animated".to_string()), "{rel}");
    }
    let out = dir.path().join("first.png");
    let o = fix_file(&fixture("image/animated_400x300.gif"), &out, None, &FixSpec::default(), false).unwrap();
    assert!(o.changes.iter().any(|c| c.contains("first frame")), "{:?}", o.changes);
    // Content that is neither, named as a video, is judged as a video.
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"not a video at all\n").unwrap();
    let doc = json(&wanprep(&["check", "--json", text.to_str().unwrap()]));
    assert_eq!(crate::util::errors(&doc, 0), ["video.format"]);
    assert!(doc["inputs"][0]["findings"][0]["message"].as_str().unwrap().contains("neither an image nor a video"));
}
