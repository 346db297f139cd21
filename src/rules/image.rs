//! The character image's rules.

use serde_json::{json, Value};

use super::{aspect_finding, dimension_finding, extension_warning, human_bytes, upper, Finding, Limits, RuleId};
use crate::probe::{Format, Kind, MediaFacts};

pub(super) fn check_image(f: &MediaFacts, l: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    let accepted = matches!(f.format, Format::Jpeg | Format::Png | Format::Bmp | Format::Webp);
    if !accepted {
        let (message, fixable) = match f.kind {
            Kind::Image => {
                let fixable = matches!(f.format, Format::Gif | Format::Tiff);
                let how = if fixable {
                    "convert it to PNG or JPEG"
                } else {
                    "convert it to PNG or JPEG with an editor that reads it"
                };
                (format!("content is {}, which the API does not accept: {how}", upper(f.format)), fixable)
            }
            Kind::Video => {
                (format!("content is a {} video, not an image: pass a JPEG, PNG, BMP or WEBP", upper(f.format)), false)
            }
            Kind::Unknown if f.size_bytes == 0 => ("the file is empty (0 bytes)".to_string(), false),
            Kind::Unknown => {
                ("content is neither an image nor a video: pass a JPEG, PNG, BMP or WEBP".to_string(), false)
            }
        };
        out.push(Finding::error(
            RuleId::ImageFormat,
            message,
            json!(f.format.name()),
            json!("jpeg|png|bmp|webp"),
            fixable,
        ));
        if f.kind != Kind::Image {
            return out;
        }
    }
    if let Some(problem) = &f.integrity_problem {
        out.push(Finding::error(
            RuleId::ImageIntegrity,
            format!("the image is damaged: {problem}; re-export or re-download it"),
            json!(problem),
            Value::Null,
            false,
        ));
    }
    if let (Some(w), Some(h)) = (f.width, f.height) {
        if let Some(x) = dimension_finding(RuleId::ImageDimensions, w, h, None, l.image_min_side, l.image_max_side) {
            out.push(x);
        }
        if let Some(x) = aspect_finding(RuleId::ImageAspectRatio, w, h, None, l.max_aspect) {
            out.push(x);
        }
        let short = w.min(h);
        if short >= l.image_min_side && short < l.image_recommended_min_side {
            out.push(Finding::warning(
                RuleId::ImageResolution,
                format!(
                    "shorter side is {short} px: accepted, but below {} px the result looks soft",
                    l.image_recommended_min_side
                ),
                json!(short),
                json!(l.image_recommended_min_side),
            ));
        }
    }
    if f.size_bytes > l.image_max_bytes {
        out.push(Finding::error(
            RuleId::ImageFileSize,
            format!(
                "{} is larger than {}: re-compress it (lower JPEG quality or more PNG compression)",
                human_bytes(f.size_bytes),
                human_bytes(l.image_max_bytes)
            ),
            json!(f.size_bytes),
            json!(l.image_max_bytes),
            true,
        ));
    }
    if f.animated == Some(true) {
        out.push(Finding::warning(
            RuleId::ImageAnimated,
            "the image is animated: only one frame is used as the character".into(),
            json!(true),
            json!(false),
        ));
    }
    extension_warning(f, RuleId::ImageExtension, &mut out);
    out
}
