//! Warnings about the image and the video together.

use serde_json::json;

use super::{Finding, RuleId};
use crate::probe::MediaFacts;

/// Pair warnings for an image and a video that will be used together.
///
/// ```
/// use wanprep::{pair_findings, probe_bytes};
/// // A landscape GIF-sized header is enough to show the shape of the call.
/// let image = probe_bytes(b"GIF89a\x20\x03\x58\x02\0\0\0");
/// let video = image.clone();
/// assert!(pair_findings(&image, &video).is_empty());
/// ```
pub fn pair_findings(image: &MediaFacts, video: &MediaFacts) -> Vec<Finding> {
    let shape = |f: &MediaFacts| -> Option<&'static str> {
        let (w, h) = (f.display_width?, f.display_height?);
        Some(if w > h {
            "landscape"
        } else if h > w {
            "portrait"
        } else {
            "square"
        })
    };
    match (shape(image), shape(video)) {
        (Some(a), Some(b)) if a != b && a != "square" && b != "square" => vec![Finding::warning(
            RuleId::PairOrientation,
            format!(
                "the image is {a} but the video is {b}: the character will be fitted to the video's frame; \
                 use the same orientation for both"
            ),
            json!(a),
            json!(b),
        )],
        _ => Vec::new(),
    }
}
