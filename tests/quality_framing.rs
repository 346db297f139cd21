//! The quality advisor, issue 14 items 3, 5, 6: shot changes put into clips at known times, and
//! the character's framing on image/video pairs built from a real photograph (NASA's astronaut
//! portrait from scikit-image's wheel, `fixtures/people/`) at known scales, so the expected
//! ratio is known by construction.

use std::path::{Path, PathBuf};

use crate::submit::text;
use crate::util::{code, ffmpeg, fixture, json, wanprep};

fn findings<'a>(doc: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    let mut all: Vec<&serde_json::Value> = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["findings"].as_array().unwrap())
        .filter(|f| f["rule"] == rule)
        .collect();
    all.dedup();
    all
}

/// Joins `shots` (lavfi sources, `secs` each) into one 640x360 25 fps H.264 clip.
fn joined(out: &Path, shots: &[&str], secs: f64, x264: &str) {
    let mut args: Vec<String> = Vec::new();
    for s in shots {
        args.extend(["-f", "lavfi", "-i"].map(String::from));
        args.push(format!("{s}=size=640x360:rate=25,trim=duration={secs},setpts=PTS-STARTPTS"));
    }
    let inputs: String = (0..shots.len()).map(|i| format!("[{i}:v]")).collect();
    args.extend(["-filter_complex".into(), format!("{inputs}concat=n={}:v=1[v]", shots.len())]);
    args.extend(["-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"].map(String::from));
    args.extend(["-x264-params".into(), x264.into(), out.to_str().unwrap().into()]);
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn cut_times(path: &Path) -> (Vec<f64>, String) {
    let o = wanprep(&["check", "--quality", "--json", "--video", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "a cut is a warning, never an error: {}", text(&o));
    let doc = json(&o);
    match findings(&doc, "video.scene_cut").first() {
        Some(f) => {
            assert_eq!(f["severity"], "warning");
            let times = f["actual"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
            (times, f["message"].as_str().unwrap().to_string())
        }
        None => (Vec::new(), String::new()),
    }
}

#[test]
fn cuts_are_found_at_the_frame_they_were_put_and_the_advised_trim_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    // A cut in the middle of a long group of pictures (no keyframe at the cut, one keyframe in
    // the whole clip), and two cuts where x264 puts keyframes on them (its default scene-cut
    // detection, which the ultrafast preset turns off).
    joined(&d("mid_gop.mp4"), &["testsrc2", "mandelbrot"], 3.0, "keyint=250:scenecut=0");
    joined(&d("two.mp4"), &["mandelbrot", "testsrc2", "smptebars"], 2.4, "keyint=250:scenecut=40");
    // Short groups of pictures with the cut between keyframes.
    joined(&d("short_gop.mp4"), &["smptebars", "testsrc2"], 3.0, "keyint=20:scenecut=0");
    let near = |got: &[f64], want: &[f64]| {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 0.5 / 25.0)
    };
    let (t, msg) = cut_times(&d("mid_gop.mp4"));
    assert!(near(&t, &[3.0]), "{t:?} {msg}");
    let (t, _) = cut_times(&d("two.mp4"));
    assert!(near(&t, &[2.4, 4.8]), "{t:?}");
    let (t, _) = cut_times(&d("short_gop.mp4"));
    assert!(near(&t, &[3.0]), "{t:?}");

    // The advice names the longest shot exactly; following it leaves one shot.
    let (_, msg) = cut_times(&d("mid_gop.mp4"));
    let cmd = msg.split("wanprep fix ").nth(1).expect("the advice is a command");
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let arg = |flag: &str| words[words.iter().position(|w| *w == flag).unwrap() + 1];
    assert_eq!((arg("--start"), arg("--duration")), ("0.000", "3.000"), "{msg}");
    let out = d("one_shot.mp4");
    let o = wanprep(&[
        "fix",
        d("mid_gop.mp4").to_str().unwrap(),
        "--start",
        arg("--start"),
        "--duration",
        arg("--duration"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(cut_times(&out).0, Vec::<f64>::new(), "the trimmed clip is one shot");
}

#[test]
fn motion_pans_zooms_and_fades_are_not_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let photo = fixture("people/astronaut.jpg");
    let photo = photo.to_str().unwrap();
    // Moving test pattern, a continuous zoom, a pan over a photograph, a fade to black.
    joined(&d("motion.mp4"), &["testsrc2"], 6.0, "keyint=50");
    joined(&d("zoom.mp4"), &["mandelbrot"], 6.0, "keyint=250:scenecut=0");
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        photo,
        "-vf",
        "scale=1280:1280,crop=480:360:x='min(t*150,800)':y=300,fps=25,format=yuv420p",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        d("pan.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        photo,
        "-vf",
        "scale=480:480,fade=t=out:st=2:d=3,fps=25,format=yuv420p",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        d("fade.mp4").to_str().unwrap(),
    ]);
    for clip in ["motion.mp4", "zoom.mp4", "pan.mp4", "fade.mp4"] {
        let (t, msg) = cut_times(&d(clip));
        assert!(t.is_empty(), "{clip}: {t:?} {msg}");
    }
}

/// Where the astronaut is placed: the photo scaled to `size` px at (`x`, `y`).
#[derive(Clone, Copy)]
struct Placed {
    canvas: (u32, u32),
    size: u32,
    x: u32,
    y: u32,
}

impl Placed {
    fn share(&self) -> f64 {
        f64::from(self.size) / f64::from(self.canvas.1)
    }
}

fn make_image(out: &Path, p: Placed, seed: u32) {
    let photo = fixture("people/astronaut.jpg");
    let (w, h) = p.canvas;
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("gradients=s={w}x{h}:seed={seed}"),
        "-i",
        photo.to_str().unwrap(),
        "-filter_complex",
        &format!("[1]scale={0}:{0}[p];[0][p]overlay={1}:{2}", p.size, p.x, p.y),
        "-frames:v",
        "1",
        out.to_str().unwrap(),
    ]);
}

/// A 2 s clip of the astronaut swaying over a moving background; `rotate` stores it turned
/// (a phone clip: stored landscape, shown portrait through the display matrix).
fn make_video(out: &Path, p: Placed, seed: u32, rotate: bool) {
    let photo = fixture("people/astronaut.jpg");
    let (w, h) = p.canvas;
    let turn = if rotate { ",transpose=2" } else { "" };
    let mut args = vec![
        "-f".to_string(),
        "lavfi".into(),
        "-i".into(),
        format!("gradients=s={w}x{h}:d=2:r=25:speed=0.02:seed={seed}"),
        "-i".into(),
        photo.to_str().unwrap().into(),
        "-filter_complex".into(),
        format!("[1]scale={0}:{0}[p];[0][p]overlay=x='{1}+20*sin(3*t)':y={2},format=yuv420p{turn}", p.size, p.x, p.y),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "ultrafast".into(),
    ];
    args.push(out.to_str().unwrap().into());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    if rotate {
        turn_90(out);
    }
}

/// Writes a 90° clockwise display matrix into the clip's track header (FFmpeg 5.1's CLI cannot
/// set one when encoding), as `scripts/make-fixtures.py` does for the rotation fixtures.
fn turn_90(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.windows(4).position(|w| w == b"tkhd").unwrap();
    let at = i + 4 + 4 + if b[i + 4] == 1 { 32 } else { 20 } + 16;
    let one = 0x10000i32;
    for (k, v) in [0, one, 0, -one, 0, 0, 0, 0, 0x4000_0000].iter().enumerate() {
        b[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, b).unwrap();
}

struct Pair {
    image: PathBuf,
    video: PathBuf,
    /// The face's share of the height in the image over its share in the video.
    ratio: f64,
}

fn pairs(dir: &Path) -> Vec<Pair> {
    let p = |canvas, size, x, y| Placed { canvas, size, x, y };
    // (image placement, video placement, stored rotated)
    // Rotated clips are given as shown (portrait); they are stored turned.
    let cases = [
        (p((800, 1000), 700, 50, 200), p((720, 1280), 300, 200, 500), false), // 3.0x larger in the image
        (p((800, 1000), 400, 200, 300), p((720, 1280), 500, 100, 400), false), // 1.0x
        (p((1000, 1000), 250, 600, 500), p((1280, 720), 600, 300, 100), false), // 0.3x
        (p((1200, 600), 560, 300, 40), p((1280, 720), 300, 500, 200), false), // 2.2x
        (p((1200, 800), 450, 400, 200), p((1280, 720), 420, 400, 150), false), // 0.96x
        (p((900, 1200), 300, 300, 700), p((720, 1280), 800, 0, 300), false),  // 0.4x
        (p((800, 800), 600, 100, 100), p((360, 640), 200, 80, 200), true),    // rotated clip, 2.4x
        (p((700, 1000), 350, 150, 300), p((360, 640), 240, 60, 100), true),   // rotated clip, 0.93x
        (p((1000, 750), 600, 200, 100), p((960, 540), 200, 380, 250), false), // 2.2x
        (p((640, 960), 240, 200, 500), p((540, 960), 420, 60, 300), false),   // 0.57x
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, (img, vid, rotate))| {
            let image = dir.join(format!("image{i}.jpg"));
            let video = dir.join(format!("video{i}.mp4"));
            make_image(&image, *img, i as u32 + 1);
            make_video(&video, *vid, i as u32 + 20, *rotate);
            Pair { image, video, ratio: img.share() / vid.share() }
        })
        .collect()
}

fn framing_of(doc: &serde_json::Value, i: usize) -> f64 {
    doc["inputs"][i]["framing"]["face_height"].as_f64().unwrap_or_else(|| panic!("no face: {}", doc["inputs"][i]))
}

#[test]
fn framing_is_measured_within_15_percent_on_constructed_pairs_and_fixed_by_match_framing() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = pairs(dir.path());
    assert!(pairs.len() >= 10);
    for (i, p) in pairs.iter().enumerate() {
        let o = wanprep(&[
            "check",
            "--quality",
            "--json",
            "--image",
            p.image.to_str().unwrap(),
            "--video",
            p.video.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "pair {i}: {}", text(&o));
        let doc = json(&o);
        let rotated = doc["inputs"][1]["media"]["rotation"].as_u64().unwrap_or(0);
        assert_eq!(rotated == 90, (6..8).contains(&i), "pair {i} is stored turned as built");
        let measured = framing_of(&doc, 0) / framing_of(&doc, 1);
        eprintln!("pair {i}: constructed {:.3}, measured {measured:.3}", p.ratio);
        assert!(
            (measured / p.ratio - 1.0).abs() <= 0.15,
            "pair {i}: measured {measured:.3}, constructed {:.3}",
            p.ratio
        );
        let warned = findings(&doc, "pair.framing").iter().any(|f| f["severity"] == "warning");
        // Clear of the 1.5x boundary, the warning is there exactly when the framings differ.
        if !(1.3..1.7).contains(&p.ratio) && !(1.0 / 1.7..1.0 / 1.3).contains(&p.ratio) {
            assert_eq!(warned, p.ratio > 1.5 || p.ratio < 1.0 / 1.5, "pair {i}: ratio {:.2}", p.ratio);
        }
        if !warned {
            continue;
        }
        // Follow the advice: the fixed image matches the video within 15 %, and the change
        // list says by how much.
        let out = dir.path().join(format!("fixed{i}.jpg"));
        let o = wanprep(&[
            "fix",
            p.image.to_str().unwrap(),
            "--match-framing",
            p.video.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "pair {i}: {}", text(&o));
        assert!(text(&o).contains("to match the video's framing: the face goes from"), "{}", text(&o));
        let o = wanprep(&[
            "check",
            "--quality",
            "--json",
            "--image",
            out.to_str().unwrap(),
            "--video",
            p.video.to_str().unwrap(),
        ]);
        let doc = json(&o);
        let after = framing_of(&doc, 0) / framing_of(&doc, 1);
        eprintln!("pair {i}: after --match-framing {after:.3}");
        // A crop cannot go below 200 px: then the match is as close as the limits allow.
        let min_side = image::image_dimensions(&out).map(|(w, h)| w.min(h)).unwrap();
        if min_side > 200 {
            assert!((after - 1.0).abs() <= 0.15, "pair {i}: after the fix {after:.3}");
            assert!(findings(&doc, "pair.framing").is_empty(), "pair {i}");
        }
    }
}

#[test]
fn a_character_without_a_human_face_gets_a_note_and_match_framing_says_why_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    make_video(&video, Placed { canvas: (640, 360), size: 200, x: 200, y: 100 }, 3, false);
    let cat = fixture("people/chelsea.jpg");
    let o = wanprep(&[
        "check",
        "--quality",
        "--json",
        "--image",
        cat.to_str().unwrap(),
        "--video",
        video.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    let f = findings(&doc, "pair.framing");
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(f[0]["severity"], "note");
    assert!(f[0]["message"].as_str().unwrap().contains("no human face found in the image"), "{}", f[0]);
    let text_out =
        text(&wanprep(&["check", "--quality", "--image", cat.to_str().unwrap(), "--video", video.to_str().unwrap()]));
    assert!(text_out.contains("note  pair.framing"), "{text_out}");

    let out = dir.path().join("out.jpg");
    let o = wanprep(&[
        "fix",
        cat.to_str().unwrap(),
        "--match-framing",
        video.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "unfixable: {}", text(&o));
    assert!(text(&o).contains("no human face found in the image"), "{}", text(&o));
    assert!(!out.exists());
}

#[test]
fn batch_and_submit_carry_cuts_and_framing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("in");
    std::fs::create_dir(&folder).unwrap();
    joined(&folder.join("cut.mp4"), &["testsrc2", "mandelbrot"], 3.0, "keyint=250:scenecut=0");
    let out = dir.path().join("out");
    let o =
        wanprep(&["batch", folder.to_str().unwrap(), "-o", out.to_str().unwrap(), "--dry-run", "--quality", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(json(&o)["inputs"][0].to_string().contains("video.scene_cut"), "{}", text(&o));

    // submit's pre-flight check compares the pair's framing (a dry run sends nothing).
    let image = dir.path().join("close.jpg");
    let video = dir.path().join("wide.mp4");
    make_image(&image, Placed { canvas: (800, 1000), size: 700, x: 50, y: 200 }, 1);
    make_video(&video, Placed { canvas: (720, 1280), size: 300, x: 200, y: 500 }, 2, false);
    let env = crate::submit::Env::new();
    let mut args = env.submit_args(&["--dry-run", "--json"]);
    for (flag, path) in [("--image", &image), ("--video", &video)] {
        let i = args.iter().position(|s| s == flag).unwrap();
        args[i + 1] = path.display().to_string();
    }
    let o = env.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", text(&o));
    let warnings = json(&o)["warnings"].to_string();
    assert!(warnings.contains("pair.framing") && warnings.contains("--match-framing"), "{warnings}");
    assert!(env.stand.log().is_empty());
}
