//! The API's input rules: one table of limits, one pure [`check`] that turns [`MediaFacts`]
//! into [`Finding`]s. No I/O here.
//!
//! Limits are inclusive: a 200 px side, a 3:1 aspect ratio, a 30.0 s clip and a file of exactly
//! 5,000,000 bytes all pass. "MB" is 10^6 bytes, the conservative reading.

use serde::Serialize;
use serde_json::{json, Value};

use crate::probe::http::{is_non_public, RemoteFacts};
use crate::probe::{Format, Kind, MediaFacts};

/// The role an input plays in a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The character image (`image_url`).
    Image,
    /// The reference video (`video_url`).
    Video,
}

impl Role {
    /// The role an input with no explicit role is judged in, from its content alone: a video
    /// container is judged as a video, anything else as an image.
    pub fn for_kind(kind: Kind) -> Role {
        if kind == Kind::Video {
            Role::Video
        } else {
            Role::Image
        }
    }

    /// The role an input with no explicit role is judged in: what its content is, and for
    /// content that is neither an image nor a video, what its name suggests (a text file named
    /// `clip.mp4` was meant as a video).
    pub fn for_facts(facts: &MediaFacts) -> Role {
        let named_video =
            || facts.extension.as_deref().and_then(Format::from_extension).is_some_and(|f| f.kind() == Kind::Video);
        if facts.kind == Kind::Video || (facts.kind == Kind::Unknown && named_video()) {
            Role::Video
        } else {
            Role::Image
        }
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Advice: never makes an input non-compliant.
    Warning,
    /// The service would reject the input.
    Error,
}

/// One thing the rules found about one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Rule id from the contract, e.g. `video.duration`.
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what to do, for a person.
    pub message: String,
    /// The measured value (number or text), `null` when not applicable.
    pub actual: Value,
    /// The limit that was broken, `null` when not applicable.
    pub limit: Value,
    /// Whether the problem can be repaired by converting, scaling, padding, trimming or
    /// re-encoding (what `wanprep fix` will do), as opposed to needing a different source.
    pub fixable: bool,
}

impl Finding {
    fn error(rule: &'static str, message: String, actual: Value, limit: Value, fixable: bool) -> Self {
        Finding { rule, severity: Severity::Error, message, actual, limit, fixable }
    }

    fn warning(rule: &'static str, message: String, actual: Value, limit: Value) -> Self {
        Finding { rule, severity: Severity::Warning, message, actual, limit, fixable: false }
    }

    /// Whether this finding makes the input non-compliant.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The limits the rules check against. [`Limits::default`] is the API's documented set.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// Smallest image side in pixels.
    pub image_min_side: u32,
    /// Largest image side in pixels.
    pub image_max_side: u32,
    /// Largest image file in bytes.
    pub image_max_bytes: u64,
    /// Largest ratio of the longer to the shorter side (images and videos).
    pub max_aspect: f64,
    /// Smallest video side in pixels.
    pub video_min_side: u32,
    /// Largest video side in pixels.
    pub video_max_side: u32,
    /// Largest video file in bytes.
    pub video_max_bytes: u64,
    /// Shortest video in seconds.
    pub video_min_duration_s: f64,
    /// Longest video in seconds.
    pub video_max_duration_s: f64,
    /// Below this shorter side an image gets the `image.resolution` warning.
    pub image_recommended_min_side: u32,
    /// Below this shorter side a video gets the `video.resolution` warning.
    pub video_recommended_min_side: u32,
    /// Below this frame rate a video gets the `video.frame_rate` warning.
    pub video_recommended_min_fps: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            image_min_side: 200,
            image_max_side: 4096,
            image_max_bytes: 5_000_000,
            max_aspect: 3.0,
            video_min_side: 200,
            video_max_side: 2048,
            video_max_bytes: 200_000_000,
            video_min_duration_s: 2.0,
            video_max_duration_s: 30.0,
            image_recommended_min_side: 512,
            video_recommended_min_side: 480,
            video_recommended_min_fps: 20.0,
        }
    }
}

/// A named, settable limit (for `wanprep rules` and `--limit NAME=VALUE`).
pub struct LimitInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// What it limits.
    pub description: &'static str,
    get: fn(&Limits) -> f64,
    set: fn(&mut Limits, f64),
}

macro_rules! limit {
    ($name:literal, $field:ident, $t:ty, $desc:literal) => {
        LimitInfo { name: $name, description: $desc, get: |l| l.$field as f64, set: |l, v| l.$field = v as $t }
    };
}

/// Every limit, in the order `wanprep rules` prints them.
pub const LIMITS: &[LimitInfo] = &[
    limit!("image.min_side", image_min_side, u32, "smallest image width/height (px)"),
    limit!("image.max_side", image_max_side, u32, "largest image width/height (px)"),
    limit!("image.max_bytes", image_max_bytes, u64, "largest image file (bytes)"),
    limit!("max_aspect", max_aspect, f64, "largest longer:shorter side ratio (images and videos)"),
    limit!("video.min_side", video_min_side, u32, "smallest video width/height (px)"),
    limit!("video.max_side", video_max_side, u32, "largest video width/height (px)"),
    limit!("video.max_bytes", video_max_bytes, u64, "largest video file (bytes)"),
    limit!("video.min_duration_s", video_min_duration_s, f64, "shortest video (s)"),
    limit!("video.max_duration_s", video_max_duration_s, f64, "longest video (s)"),
    limit!("image.recommended_min_side", image_recommended_min_side, u32, "warn below this image side (px)"),
    limit!("video.recommended_min_side", video_recommended_min_side, u32, "warn below this video side (px)"),
    limit!("video.recommended_min_fps", video_recommended_min_fps, f64, "warn below this frame rate (fps)"),
];

impl LimitInfo {
    /// The limit's value in `limits`.
    pub fn get(&self, limits: &Limits) -> f64 {
        (self.get)(limits)
    }
}

impl Limits {
    /// Sets a limit by name (see [`LIMITS`]); the value must be a finite, non-negative number.
    pub fn set(&mut self, name: &str, value: f64) -> Result<(), String> {
        let info = LIMITS.iter().find(|l| l.name == name).ok_or_else(|| {
            let names: Vec<_> = LIMITS.iter().map(|l| l.name).collect();
            format!("unknown limit '{name}' (known: {})", names.join(", "))
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("limit '{name}' must be a non-negative number"));
        }
        // Values that make no sense (a side of a million pixels, an aspect limit under 1:1)
        // would make `fix` plan absurd sizes: refuse them here.
        let (lo, hi, whole) = match name {
            n if n.ends_with("_side") => (1.0, 65_535.0, true),
            "max_aspect" => (1.0, 1_000.0, false),
            n if n.ends_with("max_bytes") => (1.0, 1e12, true),
            n if n.ends_with("duration_s") => (0.0, 86_400.0, false),
            n if n.ends_with("fps") => (0.0, 1_000.0, false),
            _ => (0.0, f64::MAX, false),
        };
        if value < lo || value > hi || (whole && value.fract() != 0.0) {
            let kind = if whole { "a whole number" } else { "a number" };
            return Err(format!("limit '{name}' must be {kind} from {lo} to {hi}, got {value}"));
        }
        (info.set)(self, value);
        Ok(())
    }

    /// Checks that the limits make sense together (each minimum at most its maximum).
    pub fn validate(&self) -> Result<(), String> {
        let pairs = [
            ("image.min_side", f64::from(self.image_min_side), "image.max_side", f64::from(self.image_max_side)),
            ("video.min_side", f64::from(self.video_min_side), "video.max_side", f64::from(self.video_max_side)),
            ("video.min_duration_s", self.video_min_duration_s, "video.max_duration_s", self.video_max_duration_s),
        ];
        for (lo_name, lo, hi_name, hi) in pairs {
            if lo > hi {
                return Err(format!("limit '{lo_name}' ({lo}) is above '{hi_name}' ({hi})"));
            }
        }
        if self.max_aspect < 1.0 {
            return Err(format!("limit 'max_aspect' must be at least 1, got {}", self.max_aspect));
        }
        Ok(())
    }

    /// These limits, tightened where they are looser than the API's documented ones: what a
    /// job sent to the service must meet whatever `--limit` loosened for local checks.
    pub fn within_api(&self) -> Limits {
        let api = Limits::default();
        Limits {
            image_min_side: self.image_min_side.max(api.image_min_side),
            image_max_side: self.image_max_side.min(api.image_max_side),
            image_max_bytes: self.image_max_bytes.min(api.image_max_bytes),
            max_aspect: self.max_aspect.min(api.max_aspect),
            video_min_side: self.video_min_side.max(api.video_min_side),
            video_max_side: self.video_max_side.min(api.video_max_side),
            video_max_bytes: self.video_max_bytes.min(api.video_max_bytes),
            video_min_duration_s: self.video_min_duration_s.max(api.video_min_duration_s),
            video_max_duration_s: self.video_max_duration_s.min(api.video_max_duration_s),
            ..self.clone()
        }
    }
}

/// One rule: its id, what it applies to, and what it requires under `limits`.
pub struct RuleInfo {
    /// Rule id (stable, from the contract).
    pub id: &'static str,
    /// `image`, `video`, `url` or `pair`.
    pub applies_to: &'static str,
    /// Error rules make an input non-compliant; warning rules never do.
    pub severity: Severity,
    requirement: fn(&Limits) -> String,
}

impl RuleInfo {
    /// The requirement in words, with the current limits.
    pub fn requirement(&self, l: &Limits) -> String {
        (self.requirement)(l)
    }
}

macro_rules! rule {
    ($id:literal, $to:literal, $sev:ident, $req:expr) => {
        RuleInfo { id: $id, applies_to: $to, severity: Severity::$sev, requirement: $req }
    };
}

/// Every rule, errors first, in the order of the contract.
pub const RULES: &[RuleInfo] = &[
    rule!("image.format", "image", Error, |_| "JPEG, PNG, BMP or WEBP, judged by content".into()),
    rule!("image.integrity", "image", Error, |_| "an intact file: structure complete, CRCs valid".into()),
    rule!("image.dimensions", "image", Error, |l| format!(
        "width and height each in [{}, {}] px",
        l.image_min_side, l.image_max_side
    )),
    rule!("image.aspect_ratio", "image", Error, |l| format!("width/height in [1/{0}, {0}]", l.max_aspect)),
    rule!("image.file_size", "image", Error, |l| format!("at most {} bytes", l.image_max_bytes)),
    rule!("video.format", "video", Error, |_| "MP4, AVI or MOV holding a video stream, judged by content".into()),
    rule!("video.integrity", "video", Error, |_| "an intact file: index present, samples inside the file".into()),
    rule!("video.duration", "video", Error, |l| format!("{} to {} s", l.video_min_duration_s, l.video_max_duration_s)),
    rule!("video.dimensions", "video", Error, |l| format!(
        "width and height each in [{}, {}] px, stored and displayed",
        l.video_min_side, l.video_max_side
    )),
    rule!("video.aspect_ratio", "video", Error, |l| format!(
        "width/height in [1/{0}, {0}], stored and displayed",
        l.max_aspect
    )),
    rule!("video.file_size", "video", Error, |l| format!("at most {} bytes", l.video_max_bytes)),
    rule!("url.scheme", "url", Error, |_| "http or https".into()),
    rule!("url.encoding", "url", Error, |_| "no raw non-ASCII characters (percent-encode them)".into()),
    rule!("url.reachable", "url", Error, |_| "answers GET/HEAD with 2xx".into()),
    rule!("image.resolution", "image", Warning, |l| format!(
        "shorter side at least {} px for good results",
        l.image_recommended_min_side
    )),
    rule!("image.extension", "image", Warning, |_| "file extension matches the content".into()),
    rule!("image.animated", "image", Warning, |_| "a still image (only the first frame of an animation is used)"
        .into()),
    rule!("video.resolution", "video", Warning, |l| format!(
        "shorter side at least {} px for good results",
        l.video_recommended_min_side
    )),
    rule!("video.frame_rate", "video", Warning, |l| format!(
        "at least {} fps for smooth motion",
        l.video_recommended_min_fps
    )),
    rule!("video.codec", "video", Warning, |_| "H.264 or H.265, which the service decodes".into()),
    rule!("video.extension", "video", Warning, |_| "file extension matches the content".into()),
    rule!("pair.orientation", "pair", Warning, |_| "image and video both portrait or both landscape".into()),
    rule!("url.public", "url", Warning, |_| "a public host the service can reach".into()),
];

/// Checks one input's facts in a role against the limits. Pure: no I/O.
///
/// ```
/// use wanprep::{check, probe_bytes, Limits, Role};
/// let facts = probe_bytes(b"GIF89a\x20\x03\x58\x02\0\0\0");
/// let findings = check(&facts, Role::Image, &Limits::default());
/// assert_eq!(findings[0].rule, "image.format");
/// assert!(findings[0].fixable); // GIF converts to PNG
/// ```
pub fn check(facts: &MediaFacts, role: Role, limits: &Limits) -> Vec<Finding> {
    match role {
        Role::Image => check_image(facts, limits),
        Role::Video => check_video(facts, limits),
    }
}

/// Whether a list of findings has no error.
pub fn is_compliant(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::is_error)
}

fn check_image(f: &MediaFacts, l: &Limits) -> Vec<Finding> {
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
        out.push(Finding::error("image.format", message, json!(f.format.name()), json!("jpeg|png|bmp|webp"), fixable));
        if f.kind != Kind::Image {
            return out;
        }
    }
    if let Some(problem) = &f.integrity_problem {
        out.push(Finding::error(
            "image.integrity",
            format!("the image is damaged: {problem}; re-export or re-download it"),
            json!(problem),
            Value::Null,
            false,
        ));
    }
    if let (Some(w), Some(h)) = (f.width, f.height) {
        if let Some(x) = dimension_finding("image.dimensions", w, h, None, l.image_min_side, l.image_max_side) {
            out.push(x);
        }
        if let Some(x) = aspect_finding("image.aspect_ratio", w, h, None, l.max_aspect) {
            out.push(x);
        }
        let short = w.min(h);
        if short >= l.image_min_side && short < l.image_recommended_min_side {
            out.push(Finding::warning(
                "image.resolution",
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
            "image.file_size",
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
            "image.animated",
            "the image is animated: only one frame is used as the character".into(),
            json!(true),
            json!(false),
        ));
    }
    extension_warning(f, "image.extension", &mut out);
    out
}

fn check_video(f: &MediaFacts, l: &Limits) -> Vec<Finding> {
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
        out.push(Finding::error("video.format", message, json!(f.format.name()), json!("mp4|avi|mov"), fixable));
        // A video in another container is converted by `fix`: say now what else the conversion
        // must change (size, length…), so the check and the plan agree.
        if f.kind != Kind::Video {
            return out;
        }
    }
    if let Some(problem) = &f.integrity_problem {
        out.push(Finding::error(
            "video.integrity",
            format!("the video is damaged: {problem}; re-export or re-download it"),
            json!(problem),
            Value::Null,
            false,
        ));
    }
    if f.encrypted == Some(true) {
        let codec = f.video_codec.as_deref().unwrap_or("unknown codec");
        out.push(Finding::error(
            "video.integrity",
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
            "video.format",
            format!("the {} file {what}", upper(f.format)),
            json!("no video stream"),
            json!("a video stream"),
            false,
        ));
        return out;
    }
    if f.duration_s.is_none() && f.integrity_problem.is_none() && accepted && !f.headers_incomplete {
        out.push(Finding::error(
            "video.duration",
            "the duration could not be determined from the file's headers: re-export the video".into(),
            Value::Null,
            json!(l.video_max_duration_s),
            false,
        ));
    }
    if let Some(d) = f.duration_s {
        if d < l.video_min_duration_s {
            out.push(Finding::error(
                "video.duration",
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
                "video.duration",
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
        if let Some(x) = dimension_finding("video.dimensions", w, h, display, l.video_min_side, l.video_max_side) {
            out.push(x);
        }
        if let Some(x) = aspect_finding("video.aspect_ratio", w, h, display, l.max_aspect) {
            out.push(x);
        }
        let (dw, dh) = display.unwrap_or((w, h));
        let short = w.min(h).min(dw.min(dh));
        if short >= l.video_min_side && short < l.video_recommended_min_side {
            out.push(Finding::warning(
                "video.resolution",
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
            "video.file_size",
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
                "video.frame_rate",
                format!(
                    "{fps} fps is low: motion below {} fps comes out jerky; use a smoother source",
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
                "video.codec",
                format!("codec {codec} may not be decoded by the service: re-encode to H.264 to be safe"),
                json!(codec),
                json!("h264|hevc"),
            ));
        }
    }
    extension_warning(f, "video.extension", &mut out);
    out
}

/// Each side of the stored frame, and of the displayed frame when it differs, in [min, max].
fn dimension_finding(
    rule: &'static str,
    w: u32,
    h: u32,
    display: Option<(u32, u32)>,
    min: u32,
    max: u32,
) -> Option<Finding> {
    let mut frames = vec![("", w, h)];
    if let Some((dw, dh)) = display.filter(|&(dw, dh)| (dw, dh) != (w, h) && (dh, dw) != (w, h)) {
        frames.push(("displayed ", dw, dh));
    }
    for (label, w, h) in frames {
        let (side, value) = if w.max(h) > max {
            (if w >= h { "width" } else { "height" }, w.max(h))
        } else if w.min(h) < min {
            (if w <= h { "width" } else { "height" }, w.min(h))
        } else {
            continue;
        };
        let (limit, verb, fix) = if value > max {
            (max, "above the maximum", "scale it down")
        } else {
            (min, "below the minimum", "scale it up")
        };
        return Some(Finding::error(
            rule,
            format!("{label}{side} {value} px ({w}x{h}) is {verb} of {limit} px: {fix}"),
            json!(value),
            json!(limit),
            true,
        ));
    }
    None
}

/// Width/height of the stored frame, and of the displayed frame when it differs, within
/// [1/max, max]. Exactly `max` passes.
fn aspect_finding(rule: &'static str, w: u32, h: u32, display: Option<(u32, u32)>, max: f64) -> Option<Finding> {
    let mut frames = vec![("", w, h)];
    if let Some(d) = display.filter(|&(dw, dh)| u64::from(dw) * u64::from(h) != u64::from(dh) * u64::from(w)) {
        frames.push(("displayed ", d.0, d.1));
    }
    let has_display = frames.len() > 1;
    for (label, fw, fh) in frames {
        if fw == 0 || fh == 0 {
            continue;
        }
        let (long, short) = (f64::from(fw.max(fh)), f64::from(fw.min(fh)));
        if long <= max * short {
            continue;
        }
        let ratio = f64::from(fw) / f64::from(fh);
        let limit = if fw > fh { max } else { 1.0 / max };
        let shape = if fw > fh { "wider" } else { "taller" };
        let extra = if has_display && label.is_empty() {
            " in the stored frame (its pixels are not square: re-encoding to square pixels fixes it)"
        } else {
            ""
        };
        return Some(Finding::error(
            rule,
            format!(
                "{label}aspect ratio {} ({fw}x{fh}) is {shape} than {max}:1{extra}: pad or crop it",
                fmt_ratio(ratio)
            ),
            json!(round4(ratio)),
            json!(round4(limit)),
            true,
        ));
    }
    None
}

fn extension_warning(f: &MediaFacts, rule: &'static str, out: &mut Vec<Finding>) {
    let Some(ext) = &f.extension else { return };
    if f.format == Format::Unknown {
        return;
    }
    if f.format.matches_extension(ext) == Some(false) {
        out.push(Finding::warning(
            rule,
            format!("the name ends in .{ext} but the content is {}: rename it to avoid confusion", upper(f.format)),
            json!(ext),
            json!(f.format.name()),
        ));
    }
}

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
            "pair.orientation",
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

fn upper(f: Format) -> String {
    f.name().to_ascii_uppercase()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn fmt_ratio(r: f64) -> String {
    if r >= 1.0 {
        format!("{:.3}:1", r)
    } else {
        format!("1:{:.3}", 1.0 / r)
    }
}

fn secs(s: f64) -> String {
    let t = format!("{:.3}", s);
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Bytes for people: exact count plus decimal megabytes.
pub(crate) fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{n} bytes ({:.2} MB)", n as f64 / 1e6)
    } else {
        format!("{n} bytes")
    }
}

/// Rules on a URL's text, before anything is fetched: `url.scheme` and `url.encoding`.
///
/// ```
/// use wanprep::rules::check_url_syntax;
/// assert_eq!(check_url_syntax("ftp://host/a.mp4")[0].rule, "url.scheme");
/// let f = check_url_syntax("https://host/舞蹈.mp4");
/// assert_eq!(f[0].rule, "url.encoding");
/// assert!(f[0].message.contains("https://host/%E8%88%9E%E8%B9%88.mp4"));
/// assert!(check_url_syntax("https://host/a%20b.mp4").is_empty());
/// ```
pub fn check_url_syntax(raw: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let scheme = raw.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if !matches!(scheme.as_str(), "http" | "https") {
        let why = match scheme.as_str() {
            "ftp" | "ftps" | "sftp" => "the service fetches only over HTTP(S): serve the file over https",
            "file" => "a file: URL names a file on this machine, which the service cannot read: pass the path instead",
            "data" => "inline data: URLs are not accepted: serve the file over https",
            "oss" => "oss:// URLs are accepted only as produced by the upload step: pass the local file instead",
            "s3" | "gs" | "gcs" | "az" | "abfs" => {
                "an object-storage address is not a public URL: use a (presigned) https URL"
            }
            _ => "only http and https URLs are accepted",
        };
        out.push(Finding::error("url.scheme", format!("{scheme}: {why}"), json!(scheme), json!("http|https"), false));
        return out;
    }
    if raw.chars().any(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control()) {
        out.push(Finding::error(
            "url.encoding",
            format!("the URL has raw non-ASCII or space characters; send it percent-encoded: {}", percent_encode(raw)),
            json!(raw),
            json!(percent_encode(raw)),
            true,
        ));
    }
    out
}

/// Percent-encodes non-ASCII bytes, spaces and controls (leaves everything else as it is).
fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() && !c.is_ascii_whitespace() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Rules on what fetching a URL showed: `url.public` for every host on the way (redirects
/// included) that is, or resolves to, an address the service cannot reach.
pub fn check_remote(facts: &RemoteFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in &facts.hosts {
        if let Some(ip) = h.addresses.iter().find(|ip| is_non_public(**ip)) {
            let what = if h.host.trim_matches(['[', ']']) == ip.to_string() {
                format!("host {ip} is")
            } else {
                format!("host '{}' resolves to {ip},", h.host)
            };
            out.push(Finding::warning(
                "url.public",
                format!(
                    "{what} a loopback, private or link-local address: the service cannot fetch it; \
                     use a public URL (or a local path, which wanprep uploads)"
                ),
                json!(ip.to_string()),
                json!("a public address"),
            ));
        }
    }
    out
}

/// The `url.reachable` error for an answer that is not a success.
pub fn unreachable(reason: &str, status: u16) -> Finding {
    Finding::error(
        "url.reachable",
        format!("{reason}: the service would fail to fetch it; check the URL and that it is public"),
        if status == 0 { Value::Null } else { json!(status) },
        json!("2xx"),
        false,
    )
}
