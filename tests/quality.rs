//! The quality advisor (`--quality`, issue 14 items 1, 2, 4): sharpness and exposure warnings on
//! pictures and sampled video frames made here with known blur and darkness, in `check`,
//! `batch` and `submit` (text and JSON); never an error, never on clean inputs.

use std::path::{Path, PathBuf};

use crate::submit::{text, Env};
use crate::util::{code, json, make_clip, wanprep};

/// A sharp, textured 1024x768 picture and the same blurred (Gaussian sigma 8 px, i.e. 4 px at
/// the advisor's 512 px working size), and a mostly black one.
fn pictures(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sharp = image::RgbImage::from_fn(1024, 768, |x, y| {
        let v = (((x / 9 + y / 7) % 2) * 110 + (x * 13 + y * 29) % 89) as u8;
        image::Rgb([v, v / 2 + 40, 255 - v])
    });
    let paths = (dir.join("sharp.png"), dir.join("blurred.png"), dir.join("dark.png"));
    sharp.save(&paths.0).unwrap();
    image::imageops::blur(&sharp, 8.0).save(&paths.1).unwrap();
    image::RgbImage::from_fn(1024, 768, |x, y| image::Rgb([((x + y) % 11) as u8, 3, 5])).save(&paths.2).unwrap();
    paths
}

fn rules(report: &serde_json::Value) -> Vec<String> {
    report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn blurred_and_dark_pictures_are_warned_about_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (sharp, blurred, dark) = pictures(dir.path());
    let args = |extra: &[&str]| {
        let mut v = vec!["check", "--json"];
        v.extend(extra);
        v.extend([sharp.to_str().unwrap(), blurred.to_str().unwrap(), dark.to_str().unwrap()]);
        wanprep(&v)
    };
    let o = args(&["--quality"]);
    assert_eq!(code(&o), 0, "warnings never make an input non-compliant: {}", text(&o));
    let doc = json(&o);
    let inputs = doc["inputs"].as_array().unwrap();
    assert!(!rules(&inputs[0]).iter().any(|r| r == "image.sharpness" || r == "image.exposure"), "{}", inputs[0]);
    let blur = inputs[1]["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "image.sharpness").unwrap();
    assert_eq!(blur["severity"], "warning");
    assert!(blur["actual"].as_f64().unwrap() < blur["limit"].as_f64().unwrap(), "{blur}");
    assert!(rules(&inputs[2]).contains(&"image.exposure".to_string()), "{}", inputs[2]);
    // Not asked: not measured.
    let plain = json(&args(&[]));
    assert!(plain["inputs"].as_array().unwrap().iter().all(|i| !rules(i).iter().any(|r| r.contains("sharpness"))));
}

#[test]
fn blurred_and_dark_videos_are_warned_about_from_sampled_frames() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.mp4");
    let blurred = dir.path().join("blurred.mp4");
    let dark = dir.path().join("dark.mp4");
    make_clip(&clean, "640x360", 25, 3, &[]);
    make_clip(&blurred, "640x360", 25, 3, &["-vf", "gblur=sigma=10"]);
    make_clip(&dark, "640x360", 25, 3, &["-vf", "lutyuv=y=val*0.04:u=128:v=128"]);
    let o = wanprep(&[
        "check",
        "--quality",
        "--json",
        clean.to_str().unwrap(),
        blurred.to_str().unwrap(),
        dark.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    let inputs = doc["inputs"].as_array().unwrap();
    assert!(!rules(&inputs[0]).iter().any(|r| r == "video.sharpness" || r == "video.exposure"), "{}", inputs[0]);
    let b = inputs[1]["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "video.sharpness").unwrap();
    assert!(b["message"].as_str().unwrap().contains("blurriest at"), "{b}");
    assert!(rules(&inputs[2]).contains(&"video.exposure".to_string()), "{}", inputs[2]);
}

#[test]
fn batch_and_submit_carry_the_warnings_and_submit_can_skip_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let (_, blurred, _) = pictures(&input);
    let out = dir.path().join("out");
    let o =
        wanprep(&["batch", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--dry-run", "--quality", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    let item = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["input"].as_str().unwrap().ends_with("blurred.png"))
        .unwrap();
    assert!(item.to_string().contains("image.sharpness"), "{item}");

    // submit checks quality by default (nothing is sent in a dry run).
    let env = Env::new();
    let args = |extra: &[&str]| {
        let mut a = env.submit_args(&["--dry-run", "--json"]);
        let i = a.iter().position(|s| s == "--image").unwrap();
        a[i + 1] = blurred.display().to_string();
        a.extend(extra.iter().map(|s| s.to_string()));
        env.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = args(&[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let w = json(&o)["warnings"].to_string();
    assert!(w.contains("image.sharpness") && w.contains("blurred.png"), "{w}");
    let o = args(&["--no-quality"]);
    assert!(!json(&o)["warnings"].to_string().contains("sharpness"), "{}", text(&o));
    assert!(env.stand.log().is_empty());
}
