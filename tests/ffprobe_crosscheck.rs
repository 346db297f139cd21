//! wanprep's video facts agree with ffprobe's on every intact video fixture.
//! ffprobe is installed by scripts/setup; its rotation is counter-clockwise (-90 for a phone's
//! portrait clip), wanprep's clockwise (90), so they are compared as (360 - ffprobe) % 360.

use std::process::Command;

use serde_json::Value;
use wanprep::probe;

use crate::util::fixtures_in;

fn ffprobe(path: &std::path::Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_format", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (scripts/setup)");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ratio(s: &str) -> f64 {
    let (n, d) = s.split_once('/').or_else(|| s.split_once(':')).unwrap_or((s, "1"));
    n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
}

#[test]
fn duration_size_rotation_and_rate_agree_with_ffprobe() {
    let mut compared = 0;
    for path in fixtures_in("video") {
        let facts = probe(&path).unwrap();
        let accepted = matches!(facts.format.name(), "mp4" | "mov" | "avi");
        if !accepted || !facts.is_intact() || facts.has_video != Some(true) {
            continue;
        }
        let name = path.display().to_string();
        let fp = ffprobe(&path);
        let stream = fp["streams"].as_array().unwrap().iter().find(|s| s["codec_type"] == "video").unwrap();
        assert_eq!(facts.width, stream["width"].as_u64().map(|w| w as u32), "{name} width");
        assert_eq!(facts.height, stream["height"].as_u64().map(|h| h as u32), "{name} height");
        let ff_rotation = stream["side_data_list"]
            .as_array()
            .and_then(|l| l.iter().find_map(|sd| sd["rotation"].as_i64()))
            .unwrap_or(0);
        assert_eq!(i64::from(facts.rotation.unwrap()), (360 - ff_rotation).rem_euclid(360), "{name} rotation");
        let fps = ratio(stream["avg_frame_rate"].as_str().unwrap());
        assert!((facts.frame_rate.unwrap() - fps).abs() < 0.01, "{name} fps {:?} vs {fps}", facts.frame_rate);
        let dur: f64 = fp["format"]["duration"].as_str().unwrap().parse().unwrap();
        assert!((facts.duration_s.unwrap() - dur).abs() < 0.05, "{name} duration {:?} vs {dur}", facts.duration_s);
        if let Some(sar) = stream["sample_aspect_ratio"].as_str().filter(|s| *s != "0:1") {
            let ours = facts.sample_aspect_ratio.map_or(1.0, |[n, d]| f64::from(n) / f64::from(d));
            assert!((ours - ratio(sar)).abs() < 1e-6, "{name} SAR {ours} vs {sar}");
        }
        compared += 1;
    }
    assert!(compared >= 25, "compared only {compared} videos");
}
