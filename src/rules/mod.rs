//! The API's input rules: one table of rules ([`RuleId`]) and one of limits ([`Limits`]), and
//! a pure [`check`] that turns [`MediaFacts`] into [`Finding`]s. No I/O here.
//!
//! Limits are inclusive: a 200 px side, a 3:1 aspect ratio, a 30.0 s clip and a file of exactly
//! 5,000,000 bytes all pass. "MB" is 10^6 bytes, the conservative reading.

mod image;
mod limits;
mod pair;
mod url;
mod video;

use serde::Serialize;
use serde_json::{json, Value};

use crate::probe::{Format, Kind, MediaFacts};

pub use limits::{LimitInfo, Limits, LIMITS};
pub use pair::pair_findings;
pub use url::check_url_syntax;
pub(crate) use url::{check_remote, unreachable};

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
    /// Information (e.g. the quality advisor could not compare something): never makes an
    /// input non-compliant and asks for nothing.
    Note,
    /// Advice: never makes an input non-compliant.
    Warning,
    /// The service would reject the input.
    Error,
}

impl Severity {
    /// The name in reports and JSON: `note`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing the rules found about one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Rule id from the contract, e.g. `video.duration`.
    pub rule: RuleId,
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
    pub(crate) fn error(rule: RuleId, message: String, actual: Value, limit: Value, fixable: bool) -> Self {
        Finding { rule, severity: Severity::Error, message, actual, limit, fixable }
    }

    pub(crate) fn warning(rule: RuleId, message: String, actual: Value, limit: Value) -> Self {
        Finding { rule, severity: Severity::Warning, message, actual, limit, fixable: false }
    }

    pub(crate) fn note(rule: RuleId, message: String) -> Self {
        Finding { rule, severity: Severity::Note, message, actual: Value::Null, limit: Value::Null, fixable: false }
    }

    /// Whether this finding makes the input non-compliant.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppliesTo {
    /// The character image.
    Image,
    /// The reference video.
    Video,
    /// A URL input.
    Url,
    /// The image and video together.
    Pair,
}

impl AppliesTo {
    /// The lower-case name (`image`, `video`, `url`, `pair`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppliesTo::Image => "image",
            AppliesTo::Video => "video",
            AppliesTo::Url => "url",
            AppliesTo::Pair => "pair",
        }
    }
}

/// The one table of rules: each line gives a rule's variant, its id from the contract, what
/// it applies to, its severity and what it requires under the limits. It generates
/// [`RuleId`] and everything that describes a rule (`wanprep rules`, the table in docs/usage.md, help
/// text), so an id is written once — in the manner of mp4parse-rust's `box_database!`.
macro_rules! rule_table {
    ($( $variant:ident = $id:literal, $to:ident, $sev:ident, $req:expr; )*) => {
        /// A rule, by the id the contract gives it (`video.duration`…). Serialised as that id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum RuleId {
            $( #[doc = concat!("`", $id, "`")] $variant, )*
        }

        impl RuleId {
            /// Every rule, errors first, in the order of the contract.
            pub const ALL: &'static [RuleId] = &[$( RuleId::$variant, )*];

            /// The id (`video.duration`).
            pub fn as_str(self) -> &'static str {
                match self { $( RuleId::$variant => $id, )* }
            }

            /// What it applies to.
            pub fn applies_to(self) -> AppliesTo {
                match self { $( RuleId::$variant => AppliesTo::$to, )* }
            }

            /// Error rules make an input non-compliant; warning rules never do.
            pub fn severity(self) -> Severity {
                match self { $( RuleId::$variant => Severity::$sev, )* }
            }

            /// The requirement in words, with the limits `l`.
            pub fn requirement(self, l: &Limits) -> String {
                match self {
                    $( RuleId::$variant => {
                        let f: fn(&Limits) -> String = $req;
                        f(l)
                    } )*
                }
            }
        }
    };
}

rule_table! {
    ImageFormat = "image.format", Image, Error, |_| "JPEG, PNG, BMP or WEBP, judged by content".into();
    ImageIntegrity = "image.integrity", Image, Error, |_| "an intact file: structure complete, CRCs valid".into();
    ImageDimensions = "image.dimensions", Image, Error, |l| format!(
        "width and height each in [{}, {}] px",
        l.image_min_side, l.image_max_side
    );
    ImageAspectRatio = "image.aspect_ratio", Image, Error, |l| format!("width/height in [1/{0}, {0}]", l.max_aspect);
    ImageFileSize = "image.file_size", Image, Error, |l| format!("at most {} bytes", thousands(l.image_max_bytes));
    VideoFormat = "video.format", Video, Error, |_| "MP4, AVI or MOV holding a video stream, judged by content".into();
    VideoIntegrity = "video.integrity", Video, Error, |_| {
        "an intact, unencrypted file: index present, samples inside the file".into()
    };
    VideoDuration = "video.duration", Video, Error, |l| format!(
        "{} to {} s",
        secs(l.video_min_duration_s),
        secs(l.video_max_duration_s)
    );
    VideoDimensions = "video.dimensions", Video, Error, |l| format!(
        "width and height each in [{}, {}] px, stored and displayed",
        l.video_min_side, l.video_max_side
    );
    VideoAspectRatio = "video.aspect_ratio", Video, Error, |l| format!(
        "width/height in [1/{0}, {0}], stored and displayed",
        l.max_aspect
    );
    VideoFileSize = "video.file_size", Video, Error, |l| format!("at most {} bytes", thousands(l.video_max_bytes));
    UrlScheme = "url.scheme", Url, Error, |_| {
        "http or https (`ftp:`, `file:`, `data:`, `s3://`, `oss://`… are errors, each with the reason)".into()
    };
    UrlEncoding = "url.encoding", Url, Error, |_| {
        "no raw non-ASCII or space characters (the message shows the percent-encoded URL)".into()
    };
    UrlReachable = "url.reachable", Url, Error, |_| "answers HEAD/GET with 2xx (4xx/5xx, redirect loops: errors)".into();
    ImageResolution = "image.resolution", Image, Warning, |l| format!(
        "shorter side at least {} px for good results",
        l.image_recommended_min_side
    );
    ImageExtension = "image.extension", Image, Warning, |_| "file extension matches the content".into();
    ImageAnimated = "image.animated", Image, Warning, |_| {
        "a still image (only the first frame of an animation is used)".into()
    };
    VideoResolution = "video.resolution", Video, Warning, |l| format!(
        "shorter side at least {} px for good results",
        l.video_recommended_min_side
    );
    VideoFrameRate = "video.frame_rate", Video, Warning, |l| format!(
        "at least {} fps for smooth motion",
        l.video_recommended_min_fps
    );
    VideoCodec = "video.codec", Video, Warning, |_| "H.264 or H.265, which the service decodes".into();
    VideoExtension = "video.extension", Video, Warning, |_| "file extension matches the content".into();
    PairOrientation = "pair.orientation", Pair, Warning, |_| "image and video both portrait or both landscape".into();
    ImageSharpness = "image.sharpness", Image, Warning, |_| format!(
        "`--quality`: variance of the Laplacian at {} px at least {}",
        crate::quality::WORK_SIDE,
        crate::quality::SHARPNESS_MIN
    );
    ImageExposure = "image.exposure", Image, Warning, |_| {
        "`--quality`: not mostly black or blown out (mean brightness and its spread)".into()
    };
    VideoSharpness = "video.sharpness", Video, Warning, |_| format!(
        "`--quality`: median over {} sampled frames of the variance of the Laplacian at least {}",
        crate::quality::VIDEO_FRAMES,
        crate::quality::SHARPNESS_MIN
    );
    VideoExposure = "video.exposure", Video, Warning, |_| {
        "`--quality`: the median sampled frame not mostly black or blown out".into()
    };
    VideoSceneCut = "video.scene_cut", Video, Warning, |_| format!(
        "`--quality`: one shot (no jump of the colour histogram of {} or more between frames)",
        crate::quality::CUT_THRESHOLD
    );
    PairFraming = "pair.framing", Pair, Warning, |_| format!(
        "`--quality`: the face fills a similar share of the frame height in the image and the video (within {}×; \
         a note when no face is found)",
        crate::quality::FRAMING_RATIO
    );
    UrlPublic = "url.public", Url, Warning, |_| {
        "every host on the way (redirects too) resolves to a public address the service can reach".into()
    };
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for RuleId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::str::FromStr for RuleId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL.iter().copied().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown rule '{s}'"))
    }
}

/// The rules as docs/usage.md's Markdown table, with the limits `l` (a test keeps that
/// copy equal to this).
pub fn markdown_table(l: &Limits) -> String {
    let mut out = String::from("| rule | applies to | severity | requirement |\n|---|---|---|---|\n");
    for r in RuleId::ALL {
        let sev = r.severity().as_str();
        out.push_str(&format!("| `{}` | {} | {sev} | {} |\n", r, r.applies_to().as_str(), r.requirement(l)));
    }
    out
}

/// A whole number with thousands separators (`5,000,000`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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
        Role::Image => image::check_image(facts, limits),
        Role::Video => video::check_video(facts, limits),
    }
}

/// Whether a list of findings has no error.
pub fn is_compliant(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::is_error)
}

/// Each side of the stored frame, and of the displayed frame when it differs, in [min, max].
pub(crate) fn dimension_finding(
    rule: RuleId,
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
pub(crate) fn aspect_finding(rule: RuleId, w: u32, h: u32, display: Option<(u32, u32)>, max: f64) -> Option<Finding> {
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

pub(crate) fn extension_warning(f: &MediaFacts, rule: RuleId, out: &mut Vec<Finding>) {
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

pub(crate) fn upper(f: Format) -> String {
    f.name().to_ascii_uppercase()
}

pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub(crate) fn fmt_ratio(r: f64) -> String {
    if r >= 1.0 {
        format!("{:.3}:1", r)
    } else {
        format!("1:{:.3}", 1.0 / r)
    }
}

pub(crate) fn secs(s: f64) -> String {
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
