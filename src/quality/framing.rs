//! `pair.framing`: how much of the frame the character fills in the image and in the video.
//!
//! The character is found by its face (the [`face`](super::face) detector): with the same
//! person and body proportions, the face's share of the frame height scales exactly as the
//! body's, so comparing faces compares framings. A character without a human face (a cat, a
//! robot, a drawing the detector does not know) gets a note, never a warning.

use image::{DynamicImage, GrayImage};
use serde::Serialize;
use serde_json::json;

use super::face::{Cascade, Face};
use crate::rules::{Finding, RuleId};

/// The framings differ when one face is this many times taller (share of the frame) than the
/// other.
pub const FRAMING_RATIO: f64 = 1.5;

/// Where the character is in a picture (or the typical one of a video's sampled frames).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Framing {
    /// The face's height as a share of the displayed frame's height (0–1); `None` when no
    /// face was found.
    pub face_height: Option<f64>,
    /// The face's centre as shares of the displayed frame's width and height.
    pub face_center: Option<[f64; 2]>,
    /// Pictures searched (1 for an image).
    pub pictures: u32,
    /// Pictures a face was found in.
    pub found_in: u32,
}

/// The largest face of each picture (displayed orientation), searched in parallel.
fn largest_faces(pictures: &[GrayImage]) -> Vec<Option<Face>> {
    let cascade = Cascade::frontal_face();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, pictures.len().max(1));
    let chunk = pictures.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = pictures
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|p| cascade.detect(p).first().copied()).collect::<Vec<_>>()))
            .collect();
        // A detector thread cannot panic on any input (checked arithmetic, bounded loops); if
        // one did, its pictures count as faceless.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// The framing of pictures shown as they are displayed. A face must be found in at least a
/// quarter of them (and once) to count; the result is the median over those.
pub fn framing_of(pictures: &[GrayImage]) -> Framing {
    let found: Vec<(Face, u32, u32)> = largest_faces(pictures)
        .into_iter()
        .zip(pictures)
        .filter_map(|(f, p)| Some((f?, p.width(), p.height())))
        .collect();
    let pictures_n = pictures.len() as u32;
    let mut framing = Framing { pictures: pictures_n, found_in: found.len() as u32, ..Framing::default() };
    if found.is_empty() || found.len() * 4 < pictures.len() {
        return framing;
    }
    let median = |f: &dyn Fn(&(Face, u32, u32)) -> f64| {
        let mut v: Vec<f64> = found.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    framing.face_height = Some(median(&|(f, _, h)| f.h / f64::from(*h)));
    framing.face_center = Some([
        median(&|(f, w, _)| (f.x + f.w / 2.0) / f64::from(*w)),
        median(&|(f, _, h)| (f.y + f.h / 2.0) / f64::from(*h)),
    ]);
    framing
}

/// A picture turned as it is displayed: `rotation` degrees clockwise (a video's display
/// matrix) or an EXIF `orientation` (1–8).
pub fn turned(picture: DynamicImage, rotation: u16, orientation: Option<u8>) -> DynamicImage {
    let mut img = match rotation {
        90 => picture.rotate90(),
        180 => picture.rotate180(),
        270 => picture.rotate270(),
        _ => picture,
    };
    if let Some(o) = orientation.and_then(image::metadata::Orientation::from_exif) {
        img.apply_orientation(o);
    }
    img
}

/// [`turned`], as luminance (what the face search reads).
pub fn displayed(picture: DynamicImage, rotation: u16, orientation: Option<u8>) -> GrayImage {
    turned(picture, rotation, orientation).to_luma8()
}

fn pct(v: f64) -> String {
    format!("{:.0} %", v * 100.0)
}

/// Where a face sits, in words.
fn place(c: [f64; 2]) -> String {
    let h = if c[0] < 0.4 {
        "left"
    } else if c[0] > 0.6 {
        "right"
    } else {
        "centre"
    };
    let v = if c[1] < 0.4 {
        "top"
    } else if c[1] > 0.6 {
        "bottom"
    } else {
        "middle"
    };
    format!("{v} {h}")
}

/// `pair.framing` for an image and a video (`image_arg` / `video_arg` name them in the advice).
pub fn pair_framing(image: &Framing, video: &Framing, image_arg: &str, video_arg: &str) -> Vec<Finding> {
    let (Some(ih), Some(vh)) = (image.face_height, video.face_height) else {
        let missing = match (image.face_height, video.face_height) {
            (None, None) => "in the image or the video".to_string(),
            (None, _) => "in the image".to_string(),
            _ => format!("in the video ({} sampled frames)", video.pictures),
        };
        return vec![Finding::note(
            RuleId::PairFraming,
            format!(
                "no human face found {missing}, so the framing was not compared (expected for a character that is \
                 not a person facing the camera)"
            ),
        )];
    };
    let ratio = ih / vh;
    if (1.0 / FRAMING_RATIO..=FRAMING_RATIO).contains(&ratio) {
        return Vec::new();
    }
    let (ic, vc) = (image.face_center.unwrap_or([0.5; 2]), video.face_center.unwrap_or([0.5; 2]));
    let (bigger, factor) = if ratio > 1.0 { ("larger", ratio) } else { ("smaller", 1.0 / ratio) };
    vec![Finding::warning(
        RuleId::PairFraming,
        format!(
            "the character is framed differently: the face is {} of the frame height in the image ({}) and {} in the \
             video ({}), {factor:.1}× {bigger} in the image; the result copies the video's framing and distorts \
             the body; make them alike: wanprep fix {} --match-framing {} -o OUT",
            pct(ih),
            place(ic),
            pct(vh),
            place(vc),
            crate::shellword::quote(image_arg),
            crate::shellword::quote(video_arg),
        ),
        json!((ratio * 100.0).round() / 100.0),
        json!(FRAMING_RATIO),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: f64) -> Framing {
        Framing { face_height: Some(h), face_center: Some([0.5, 0.3]), pictures: 1, found_in: 1 }
    }

    #[test]
    fn framing_differs_beyond_the_ratio_either_way_and_a_missing_face_is_a_note() {
        assert!(pair_framing(&at(0.10), &at(0.14), "a.jpg", "b.mp4").is_empty());
        let f = pair_framing(&at(0.30), &at(0.10), "a.jpg", "b.mp4");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, crate::Severity::Warning);
        assert!(f[0].message.contains("30 %") && f[0].message.contains("3.0× larger"), "{}", f[0].message);
        assert!(f[0].message.contains("wanprep fix a.jpg --match-framing b.mp4"));
        let f = pair_framing(&at(0.05), &at(0.10), "a.jpg", "b.mp4");
        assert!(f[0].message.contains("2.0× smaller"), "{}", f[0].message);
        let none = Framing { pictures: 8, ..Framing::default() };
        let f = pair_framing(&at(0.05), &none, "a.jpg", "b.mp4");
        assert_eq!((f.len(), f[0].severity), (1, crate::Severity::Note));
        assert!(f[0].message.contains("in the video (8 sampled frames)"));
    }
}
