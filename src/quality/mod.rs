//! The quality advisor (`check --quality`): what makes a generation come out badly although the
//! service accepts the inputs — a blurred picture, a picture that is mostly black or blown out.
//! Each finding is a warning (never an error) with the measured value and the threshold.
//!
//! Every metric is computed on the luminance scaled to [`WORK_SIDE`] pixels on its longest side,
//! so a score does not depend on the resolution: sharpness is the variance of the 4-neighbour
//! Laplacian (high for crisp edges and texture, low for blur), exposure the mean and spread of
//! the luminance. Videos are judged on frames sampled evenly through the clip (through the
//! FFmpeg helper). Local files only: a URL would have to be downloaded whole.

pub mod face;
pub mod framing;

use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GrayImage};
use serde_json::json;

pub use framing::{pair_framing, Framing, FRAMING_RATIO};

use crate::probe::{Format, MediaFacts};
use crate::rules::{Finding, RuleId};

/// Longest side of the luminance every metric is computed on.
pub const WORK_SIDE: u32 = 512;
/// Below this variance of the Laplacian (at [`WORK_SIDE`]) a picture reads as blurred. On the
/// calibration pictures (docs/quality.md has the curve) a Gaussian blur of radius 2 px at the
/// working size brings a sharp picture far below it (605 → 6.9), while soft but unblurred
/// pictures (a plasma fractal photo stand-in: 30–42) stay above: the advisor must not cry wolf.
pub const SHARPNESS_MIN: f64 = 25.0;
/// Mean luminance below which, with little spread, a picture is mostly black.
pub const DARK_MEAN: f64 = 25.0;
/// Mean luminance above which, with little spread, a picture is blown out.
pub const BRIGHT_MEAN: f64 = 230.0;
/// The spread (standard deviation) under which an extreme mean means the whole picture is
/// extreme: a character on a white background has a bright mean but a wide spread.
pub const FLAT_SPREAD: f64 = 25.0;
/// Frames sampled from a video.
pub const VIDEO_FRAMES: u32 = 8;
/// Longest side of the frames sampled from a video: faces are searched on them (a face
/// needs 24 px: 5.6 % of a landscape frame's height, 3.1 % of a portrait one's), the other
/// metrics on them shrunk to [`WORK_SIDE`].
pub const FRAME_SIDE: u32 = 768;
/// Colour-histogram distance (0–1) between consecutive frames that counts as a shot change.
/// Calibrated on constructed cuts (two sources joined: 0.5–0.9) against clean clips with
/// motion and pans (below 0.15 between frames); `scripts/quality-curve` prints both.
pub const CUT_THRESHOLD: f64 = 0.35;
/// Most frames the cut scan decodes to place cuts on their frame (about 2 s of decoding for
/// 1080p H.264 on two cores); beyond it a cut is reported with the keyframes around it.
pub const CUT_MAX_FRAMES: u32 = 600;

/// What the advisor measured on one picture.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measures {
    /// Variance of the Laplacian at the working size.
    pub sharpness: f64,
    /// Mean luminance (0–255).
    pub mean: f64,
    /// Standard deviation of the luminance.
    pub spread: f64,
}

/// Measures a picture (any size, any colour type).
pub fn measure(img: &DynamicImage) -> Measures {
    let luma = working_luma(img);
    measure_luma(&luma)
}

fn working_luma(img: &DynamicImage) -> GrayImage {
    let luma = img.to_luma8();
    let (w, h) = luma.dimensions();
    let s = f64::from(WORK_SIDE) / f64::from(w.max(h));
    if s >= 1.0 {
        return luma;
    }
    let (nw, nh) = (((f64::from(w) * s).round() as u32).max(3), ((f64::from(h) * s).round() as u32).max(3));
    let mut dst = GrayImage::new(nw, nh);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    // Both are 8-bit grey: the resampler cannot fail on them; fall back to the full size anyway.
    if Resizer::new().resize(&luma, &mut dst, &opts).is_err() {
        return luma;
    }
    dst
}

fn measure_luma(l: &GrayImage) -> Measures {
    let (w, h) = (l.width() as usize, l.height() as usize);
    let px = l.as_raw();
    let n = px.len().max(1) as f64;
    let mean = px.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
    let spread = (px.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mut sum = 0.0;
    let mut sum2 = 0.0;
    let mut count = 0.0;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let c = f64::from(px[y * w + x]);
            let lap = f64::from(px[(y - 1) * w + x])
                + f64::from(px[(y + 1) * w + x])
                + f64::from(px[y * w + x - 1])
                + f64::from(px[y * w + x + 1])
                - 4.0 * c;
            sum += lap;
            sum2 += lap * lap;
            count += 1.0;
        }
    }
    let sharpness = if count > 0.0 { sum2 / count - (sum / count).powi(2) } else { 0.0 };
    Measures { sharpness, mean, spread }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The image's quality warnings: `image.sharpness`, `image.exposure`.
pub fn image_findings(m: &Measures) -> Vec<Finding> {
    let mut out = Vec::new();
    if m.sharpness < SHARPNESS_MIN {
        out.push(Finding::warning(
            RuleId::ImageSharpness,
            format!(
                "the picture looks blurred (sharpness {:.1}, below {SHARPNESS_MIN}): the character's details come out \
                 soft; use a sharper photo",
                m.sharpness
            ),
            json!(round1(m.sharpness)),
            json!(SHARPNESS_MIN),
        ));
    }
    if let Some(f) = exposure(RuleId::ImageExposure, m, "the picture") {
        out.push(f);
    }
    out
}

fn exposure(rule: RuleId, m: &Measures, what: &str) -> Option<Finding> {
    let (problem, limit) = if m.mean < DARK_MEAN && m.spread < FLAT_SPREAD {
        ("mostly black", DARK_MEAN)
    } else if m.mean > BRIGHT_MEAN && m.spread < FLAT_SPREAD {
        ("blown out (mostly white)", BRIGHT_MEAN)
    } else {
        return None;
    };
    Some(Finding::warning(
        rule,
        format!(
            "{what} is {problem}: mean brightness {:.0} of 255 with little contrast (spread {:.0}); the service \
             cannot see the character or the motion in it",
            m.mean, m.spread
        ),
        json!(round1(m.mean)),
        json!(limit),
    ))
}

/// Measures a local image file (decoded under the fix's memory limits) and, with
/// `find_character`, finds where the character is in it (`Framing::default()` otherwise).
pub fn measure_image_file(
    path: &Path,
    facts: &MediaFacts,
    find_character: bool,
) -> Result<(Measures, Framing), String> {
    let budget = crate::fix::DEFAULT_MAX_DECODE_BYTES;
    let img = crate::fix::decode_for_quality(path, facts, budget, WORK_SIDE)?;
    let measures = measure(&img);
    if !find_character {
        return Ok((measures, Framing::default()));
    }
    Ok((measures, framing::framing_of(&[framing::displayed(img, 0, facts.orientation)])))
}

/// The video's quality warnings from frames sampled through it: `video.sharpness` (the median
/// frame, naming the blurriest frame's time), `video.exposure` (the median frame), and
/// `video.scene_cut` from a scan of the whole clip.
/// With `find_character`, the character's framing is measured too (`Framing::default()`
/// otherwise: it serves only a pair).
pub fn video_findings(
    path: &Path,
    facts: &MediaFacts,
    frames: u32,
    find_character: bool,
) -> Result<(Vec<Finding>, Framing), String> {
    let (mut out, framing) = sampled_findings(path, facts, frames, find_character)?;
    // The scan is advice too: a clip the helper cannot scan just gets no cut warning.
    if let Ok(scan) = crate::av::cuts(path, CUT_THRESHOLD, CUT_MAX_FRAMES) {
        out.extend(cut_findings(&scan, facts.duration_s.unwrap_or(0.0), path));
    }
    Ok((out, framing))
}

/// Where the character is in a video: its face on [`VIDEO_FRAMES`] sampled frames (see
/// [`framing`]).
pub fn video_framing(path: &Path, facts: &MediaFacts) -> Result<Framing, String> {
    sampled_findings(path, facts, VIDEO_FRAMES, true).map(|(_, framing)| framing)
}

/// The longest shot of a clip cut at `cuts` (times of the first frames of new shots): start
/// and length.
pub fn longest_shot(cuts: &[f64], duration: f64) -> (f64, f64) {
    let mut bounds = vec![0.0];
    bounds.extend(cuts.iter().copied().filter(|t| *t > 0.0 && *t < duration));
    bounds.push(duration);
    bounds.windows(2).map(|w| (w[0], w[1] - w[0])).fold((0.0, 0.0), |best, s| if s.1 > best.1 { s } else { best })
}

/// `video.scene_cut` for what a scan found.
pub fn cut_findings(scan: &crate::av::CutScan, duration: f64, path: &Path) -> Vec<Finding> {
    if scan.cuts.is_empty() && scan.unplaced.is_empty() {
        return Vec::new();
    }
    let mut times: Vec<String> = scan.cuts.iter().map(|c| format!("at {:.2} s", c.time_s)).collect();
    times.extend(scan.unplaced.iter().map(|[a, b]| format!("between {a:.2} and {b:.2} s")));
    let count = scan.cuts.len() + scan.unplaced.len();
    let cut_times: Vec<f64> = scan.cuts.iter().map(|c| c.time_s).collect();
    let (start, length) = longest_shot(&cut_times, duration);
    let advice = if scan.unplaced.is_empty() && length >= 2.0 {
        // Three decimals: the times are frame times. A trim keeps the frames that end by
        // start + duration, so the new shot's first frame is left out.
        format!(
            "; trim to the longest shot ({start:.3}–{:.3} s): wanprep fix {} --start {start:.3} --duration {:.3} -o \
             OUT.mp4",
            start + length,
            crate::shellword::quote(&path.to_string_lossy()),
            length,
        )
    } else {
        "; trim to one shot with wanprep fix --start/--duration".into()
    };
    vec![Finding::warning(
        RuleId::VideoSceneCut,
        format!(
            "the reference changes shot {count} time{} ({}): a cut makes the character jump{advice}",
            if count == 1 { "" } else { "s" },
            times.join(", ")
        ),
        json!(scan.cuts.iter().map(|c| (c.time_s * 1000.0).round() / 1000.0).collect::<Vec<_>>()),
        json!(0),
    )]
}

fn sampled_findings(
    path: &Path,
    facts: &MediaFacts,
    frames: u32,
    find_character: bool,
) -> Result<(Vec<Finding>, Framing), String> {
    // The keyframe at or before each sample time: decoding on to the exact time can cost a
    // whole group of pictures per sample (seconds on a long-GOP 1080p clip).
    let pics = crate::av::keyframes(path, frames.max(1), FRAME_SIDE).map_err(|e| e.to_string())?;
    let mut shown = Vec::new();
    let measured: Vec<(f64, Measures)> = pics
        .into_iter()
        .filter_map(|p| {
            let img = DynamicImage::ImageRgb8(image::RgbImage::from_raw(p.width, p.height, p.rgb)?);
            let m = measure(&img);
            if find_character {
                shown.push(framing::displayed(img, facts.rotation.unwrap_or(0), None));
            }
            Some((p.time_s, m))
        })
        .collect();
    let framing = if find_character { framing::framing_of(&shown) } else { Framing::default() };
    if measured.is_empty() {
        return Err("no frame could be decoded".into());
    }
    let median = |f: fn(&Measures) -> f64| {
        let mut v: Vec<f64> = measured.iter().map(|(_, m)| f(m)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let typical =
        Measures { sharpness: median(|m| m.sharpness), mean: median(|m| m.mean), spread: median(|m| m.spread) };
    let (worst_t, worst) = measured
        .iter()
        .min_by(|a, b| a.1.sharpness.total_cmp(&b.1.sharpness))
        .map(|(t, m)| (*t, *m))
        .unwrap_or_default();
    let mut out = Vec::new();
    if typical.sharpness < SHARPNESS_MIN {
        out.push(Finding::warning(
            RuleId::VideoSharpness,
            format!(
                "the frames look blurred (median sharpness {:.1} over {} frames, below {SHARPNESS_MIN}; the \
                 blurriest at {worst_t:.1} s: {:.1}): blurred motion spoils the generated movement; use a sharper \
                 clip (a faster shutter, less motion blur)",
                typical.sharpness,
                measured.len(),
                worst.sharpness
            ),
            json!(round1(typical.sharpness)),
            json!(SHARPNESS_MIN),
        ));
    }
    if let Some(f) = exposure(RuleId::VideoExposure, &typical, "the video") {
        out.push(f);
    }
    Ok((out, framing))
}

/// Whether the advisor can read this format's pixels.
pub fn supports_image(format: Format) -> bool {
    matches!(format, Format::Jpeg | Format::Png | Format::Bmp | Format::Webp | Format::Gif | Format::Tiff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
            let v = ((x / 7 + y / 5) % 2) * 120 + ((x * 31 + y * 17) % 97);
            image::Luma([v as u8])
        }))
    }

    #[test]
    fn blur_lowers_sharpness_monotonically_and_crosses_the_threshold() {
        let sharp = textured(1024, 768);
        let mut last = f64::MAX;
        for sigma in [0.0f32, 1.0, 2.0, 4.0] {
            let img = if sigma == 0.0 { sharp.clone() } else { sharp.blur(sigma * 2.0) };
            let m = measure(&img);
            assert!(m.sharpness < last, "sigma {sigma}: {} not below {last}", m.sharpness);
            last = m.sharpness;
        }
        assert!(measure(&sharp).sharpness > SHARPNESS_MIN * 5.0);
        assert!(measure(&sharp.blur(8.0)).sharpness < SHARPNESS_MIN, "a radius-2 blur at the working size");
        assert!(image_findings(&measure(&sharp)).is_empty(), "a sharp picture is not warned about");
    }

    #[test]
    fn exposure_is_judged_by_mean_and_spread() {
        let black = DynamicImage::ImageLuma8(GrayImage::from_fn(300, 300, |x, _| image::Luma([(x % 9) as u8])));
        let f = image_findings(&measure(&black));
        assert!(f.iter().any(|f| f.rule == RuleId::ImageExposure && f.message.contains("mostly black")), "{f:?}");
        let white = DynamicImage::ImageLuma8(GrayImage::from_fn(300, 300, |x, _| image::Luma([250 - (x % 7) as u8])));
        assert!(image_findings(&measure(&white)).iter().any(|f| f.message.contains("blown out")));
        // A dark character on a white background: bright on average, but not flat.
        let character = DynamicImage::ImageLuma8(GrayImage::from_fn(300, 300, |x, y| {
            image::Luma([if (100..200).contains(&x) && y > 50 { 20 } else { 252 }])
        }));
        assert!(image_findings(&measure(&character)).iter().all(|f| f.rule != RuleId::ImageExposure));
    }
}
