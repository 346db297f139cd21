//! The reference video's rules.

use serde_json::{json, Value};

use super::{aspect_finding, dimension_finding, extension_warning, human_bytes, secs, upper, Finding, Limits, RuleId};
use crate::probe::{Format, Kind, MediaFacts};

pub(super) fn check_video(f: &MediaFacts, l: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    let accepted = matches!(f.format, Format::Mp4 | Format::Mov | Format::Avi);
    if !accepted {
        let (message, fixable) = match f.kind {
            Kind::Video => (
                format!("content is {}, which the API does not accept: remux or convert it to MP4", upper(f.format)),
                true,
            ),
            Kind::Image => {
                (format!("content is a {} image, not a video: pass an MP4, AVI or MOV", upper(f.format)), false)
            }
            Kind::Unknown if f.size_bytes == 0 => ("the file is empty (0 bytes)".to_string(), false),
            Kind::Unknown => ("content is neither an image nor a video: pass an MP4, AVI or MOV".to_string(), false),
        };
        out.push(Finding::error(RuleId::VideoFormat, message, json!(f.format.name()), json!("mp4|avi|mov"), fixable));
        // A video in another container is converted by `fix`: say now what else the conversion
        // must change (size, length…), so the check and the plan agree.
        if f.kind != Kind::Video {
            return out;
        }
    }
    if let Some(problem) = &f.integrity_problem {
        out.push(Finding::error(
            RuleId::VideoIntegrity,
            format!("the video is damaged: {problem}; re-export or re-download it"),
            json!(problem),
            Value::Null,
            false,
        ));
    }
    if f.encrypted == Some(true) {
        let codec = f.video_codec.as_deref().unwrap_or("unknown codec");
        out.push(Finding::error(
            RuleId::VideoIntegrity,
            format!(
                "the stream is encrypted ({codec} under CENC/CBCS protection): the service cannot decode it; \
                 use the unprotected source"
            ),
            json!("encrypted"),
            json!("unencrypted"),
            false,
        ));
    }
    if f.has_video == Some(false) {
        let what = if f.frame_count == Some(1) {
            "holds audio and a single still picture (cover art), not a video".to_string()
        } else {
            "holds no video stream (audio only?)".to_string()
        };
        out.push(Finding::error(
            RuleId::VideoFormat,
            format!("the {} file {what}", upper(f.format)),
            json!("no video stream"),
            json!("a video stream"),
            false,
        ));
        return out;
    }
    if f.duration_s.is_none() && f.integrity_problem.is_none() && accepted && !f.headers_incomplete {
        out.push(Finding::error(
            RuleId::VideoDuration,
            "the duration could not be determined from the file's headers: re-export the video".into(),
            Value::Null,
            json!(l.video_max_duration_s),
            false,
        ));
    }
    if let Some(d) = f.duration_s {
        if d < l.video_min_duration_s {
            out.push(Finding::error(
                RuleId::VideoDuration,
                format!(
                    "{} s is shorter than {} s: use a longer clip, or loop this one",
                    secs(d),
                    secs(l.video_min_duration_s)
                ),
                json!(d),
                json!(l.video_min_duration_s),
                false,
            ));
        } else if d > l.video_max_duration_s {
            out.push(Finding::error(
                RuleId::VideoDuration,
                format!(
                    "{} s is longer than {} s: trim it to at most {} s",
                    secs(d),
                    secs(l.video_max_duration_s),
                    secs(l.video_max_duration_s)
                ),
                json!(d),
                json!(l.video_max_duration_s),
                true,
            ));
        }
    }
    if let (Some(w), Some(h)) = (f.width, f.height) {
        let display = f.display_width.zip(f.display_height);
        if let Some(x) = dimension_finding(RuleId::VideoDimensions, w, h, display, l.video_min_side, l.video_max_side) {
            out.push(x);
        }
        if let Some(x) = aspect_finding(RuleId::VideoAspectRatio, w, h, display, l.max_aspect) {
            out.push(x);
        }
        let (dw, dh) = display.unwrap_or((w, h));
        let short = w.min(h).min(dw.min(dh));
        if short >= l.video_min_side && short < l.video_recommended_min_side {
            out.push(Finding::warning(
                RuleId::VideoResolution,
                format!(
                    "shorter side is {short} px: accepted, but below {} px motion is tracked less well",
                    l.video_recommended_min_side
                ),
                json!(short),
                json!(l.video_recommended_min_side),
            ));
        }
    }
    if f.size_bytes > l.video_max_bytes {
        out.push(Finding::error(
            RuleId::VideoFileSize,
            format!(
                "{} is larger than {}: re-encode it at a lower bitrate",
                human_bytes(f.size_bytes),
                human_bytes(l.video_max_bytes)
            ),
            json!(f.size_bytes),
            json!(l.video_max_bytes),
            true,
        ));
    }
    if let Some(fps) = f.frame_rate {
        if fps < l.video_recommended_min_fps {
            out.push(Finding::warning(
                RuleId::VideoFrameRate,
                format!(
                    "{fps} fps is low: motion below {} fps comes out jerky (the service generates 25 fps in wan-pro \
                     and 15 fps in wan-std, so a reference slower than that loses motion); use a smoother source",
                    l.video_recommended_min_fps
                ),
                json!(fps),
                json!(l.video_recommended_min_fps),
            ));
        }
    }
    if let Some(codec) = &f.video_codec {
        if !matches!(codec.as_str(), "h264" | "hevc") {
            out.push(Finding::warning(
                RuleId::VideoCodec,
                format!("codec {codec} may not be decoded by the service: re-encode to H.264 to be safe"),
                json!(codec),
                json!("h264|hevc"),
            ));
        }
    }
    extension_warning(f, RuleId::VideoExtension, &mut out);
    out
}
