//! What to change, decided in pure Rust from the probe's facts and the rules' findings: no I/O,
//! so `--dry-run` prints exactly what the executors would do, and batch runs reuse it.

use serde::Serialize;

use super::geometry::{fit, video_filter, whole_frames};
use crate::probe::{Format, Kind, MediaFacts};
use crate::rules::{check, Limits, Role, RuleId};

/// How to bring an aspect ratio into range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AspectMode {
    /// Add bars (the whole picture stays).
    #[default]
    Pad,
    /// Cut the long side, where [`Anchor`] says.
    Crop,
}

/// Where a crop keeps the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// The most salient part: edges, skin-like hues and saturated colour (as libvips'
    /// `attention` crop), so a character off-centre is kept.
    #[default]
    Auto,
    /// The middle.
    Centre,
    /// The top (a tall picture; a wide one is cut in the middle).
    Top,
    /// The bottom (a tall picture; a wide one is cut in the middle).
    Bottom,
    /// The left (a wide picture; a tall one is cut in the middle).
    Left,
    /// The right (a wide picture; a tall one is cut in the middle).
    Right,
}

impl Anchor {
    /// Offset of a `kept`-long window in a `full`-long side, for the fixed anchors (`Auto` is
    /// decided from the pixels; here it gives the middle). `vertical`: the cut is in height.
    pub fn offset(self, full: u32, kept: u32, vertical: bool) -> u32 {
        let spare = full.saturating_sub(kept);
        match (self, vertical) {
            (Anchor::Top, true) | (Anchor::Left, false) => 0,
            (Anchor::Bottom, true) | (Anchor::Right, false) => spare,
            _ => spare / 2,
        }
    }
}

/// What the user asked of a fix.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FixSpec {
    /// Limits the output must meet.
    pub limits: Limits,
    /// Pad or crop an aspect ratio out of range.
    pub aspect: AspectMode,
    /// Where a crop keeps the picture (images and videos).
    pub anchor: Anchor,
    /// Padding colour (RGB); `None` = a neutral colour matched to the picture's edges (or
    /// transparent bars for a picture with transparency written to a format that keeps it).
    pub pad_color: Option<[u8; 3]>,
    /// Colour transparency is flattened onto when the output format has no alpha channel
    /// (JPEG, BMP); `None` = white.
    pub background: Option<[u8; 3]>,
    /// The format to write (what the output file's extension names). `None` = the input's
    /// format when the API accepts it, else PNG (images) or MP4 (videos). Never changed
    /// silently: a format that cannot hold the result makes the input unfixable, with the
    /// reason naming one that can.
    pub format: Option<Format>,
    /// Video: where the kept part starts, in seconds (default 0).
    pub start_s: Option<f64>,
    /// Video: how long the kept part is, in seconds (default: up to the limit).
    pub duration_s: Option<f64>,
    /// Video: play a clip shorter than the minimum duration again from its start until it
    /// reaches it (`--extend loop`); without it such a clip cannot be fixed.
    pub extend_loop: bool,
    /// The most memory one image fix may take (decided from the header, before decoding);
    /// `None` = 1 GiB.
    pub max_decode_bytes: Option<u64>,
    /// Image: pad or crop so the character fills the share of the frame it fills in a video
    /// (`--match-framing VIDEO`; see [`framing_match`](super::framing_match)).
    pub match_framing: Option<FramingMatch>,
}

/// Where the character is in the image and in the video whose framing it should take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FramingMatch {
    /// The image's face height share and centre (displayed orientation).
    pub image: crate::quality::Framing,
    /// The video's.
    pub video: crate::quality::Framing,
}

/// One operation of a plan, in the order it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Copy the file as it is (already compliant).
    Copy,
    /// Decode the picture (the first frame of an animation).
    Decode {
        /// Source format.
        format: Format,
        /// The source is animated: only its first frame is kept.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        animated: bool,
    },
    /// Turn the pixels as the EXIF orientation says (the output carries no orientation).
    Orient {
        /// EXIF orientation 2–8.
        orientation: u8,
    },
    /// Add bars to bring the aspect ratio into range.
    Pad {
        /// Size before.
        from: [u32; 2],
        /// Size after.
        to: [u32; 2],
    },
    /// Cut the long side to bring the aspect ratio into range.
    Crop {
        /// Size before.
        from: [u32; 2],
        /// Size after.
        to: [u32; 2],
        /// Where the kept part sits (`auto`: decided from the picture).
        anchor: Anchor,
    },
    /// Place the picture (`from`) on a `to` canvas with its top-left corner at `at` (negative:
    /// the picture is cropped; bars fill what it does not cover) so the character takes the
    /// video's share of the frame (`--match-framing`).
    Reframe {
        /// Size before.
        from: [u32; 2],
        /// Size after.
        to: [u32; 2],
        /// Where the picture's top-left corner lands on the canvas.
        at: [i64; 2],
        /// Face height share before, and the share aimed at (the video's).
        face: [f64; 2],
    },
    /// Resample (Lanczos3).
    Scale {
        /// Size before.
        from: [u32; 2],
        /// Size after.
        to: [u32; 2],
    },
    /// Copy the video (and a copyable audio stream) into another container, no re-encoding.
    Remux {
        /// Source container.
        from: Format,
        /// Target container (MP4 or MOV).
        to: Format,
    },
    /// Keep the first `to_s` seconds, by stream copy (the start is a keyframe). Frames decoded
    /// before the cut are kept (a frame shown before it may refer to one shown after it), and
    /// an edit list ends the presentation at the cut.
    Trim {
        /// Duration before, in seconds.
        from_s: f64,
        /// Duration the output will have, in seconds: the time asked for (or the limit), down
        /// to the end of the last whole frame.
        to_s: f64,
    },
    /// Decode and re-encode the video as H.264 (yuv420p, square pixels, no rotation flag) through
    /// `filter`; AAC audio is copied.
    Reencode {
        /// Container written (MP4 or MOV).
        container: Format,
        /// Displayed size before.
        from: [u32; 2],
        /// Frame size after.
        to: [u32; 2],
        /// The libavfilter graph (rotation, scale, pad or crop).
        filter: String,
        /// Start the output this many seconds into the source.
        #[serde(skip_serializing_if = "Option::is_none")]
        start_s: Option<f64>,
        /// Keep only this many seconds (down to the end of the last whole frame).
        #[serde(skip_serializing_if = "Option::is_none")]
        trim_to_s: Option<f64>,
        /// Where a crop keeps the picture (present when the plan crops).
        #[serde(skip_serializing_if = "Option::is_none")]
        anchor: Option<Anchor>,
        /// Peak bitrate (bits/s) so the file fits the size limit.
        max_bitrate: u64,
        /// Play the kept part again from its start until the output lasts this long
        /// (`--extend loop` on a clip under the minimum duration).
        #[serde(skip_serializing_if = "Option::is_none")]
        loop_to_s: Option<f64>,
    },
    /// Encode in `format`. JPEG: the highest quality (92 down to 30) that fits the size limit;
    /// any format: only when that is not enough, the largest scale that fits (searched on the
    /// real encoder output, to within 10 % of the limit). Transparency is kept where the format
    /// holds it, else flattened onto the background colour.
    Encode {
        /// Output format.
        format: Format,
        /// Size limit in bytes.
        max_bytes: u64,
    },
}

/// A plan: the operations, or why the input cannot be fixed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixPlan {
    /// What the input is.
    pub kind: Kind,
    /// Operations in order (empty when unfixable).
    pub ops: Vec<Op>,
    /// Why the input cannot be fixed, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfixable: Option<String>,
}

impl FixPlan {
    fn unfixable(kind: Kind, why: impl Into<String>) -> Self {
        FixPlan { kind, ops: Vec::new(), unfixable: Some(why.into()) }
    }

    /// How long the output lasts, given the input's duration: what a trim or re-encode keeps.
    pub fn output_duration(&self, input_s: Option<f64>) -> Option<f64> {
        self.ops.iter().fold(input_s, |d, op| match op {
            Op::Trim { to_s, .. } => Some(*to_s),
            Op::Reencode { loop_to_s: Some(l), .. } => Some(*l),
            Op::Reencode { trim_to_s: Some(t), .. } => Some(*t),
            Op::Reencode { start_s: Some(s), .. } => d.map(|d| (d - s).max(0.0)),
            _ => d,
        })
    }

    /// Whether the plan only copies the input.
    pub fn is_copy(&self) -> bool {
        self.ops == [Op::Copy]
    }
}

/// Plans the cheapest fix for an input judged in `role`.
///
/// ```
/// use wanprep::fix::{plan, FixSpec, Op};
/// use wanprep::{probe, Role};
/// let facts = probe("fixtures/image/dims_4097x1500.png")?;
/// let p = plan(&facts, Role::Image, &FixSpec::default());
/// assert!(p.ops.contains(&Op::Scale { from: [4097, 1500], to: [4096, 1500] }));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn plan(facts: &MediaFacts, role: Role, spec: &FixSpec) -> FixPlan {
    if let Some(why) = unwritable(facts, role, spec.format) {
        return FixPlan::unfixable(facts.kind, why);
    }
    let findings = check(facts, role, &spec.limits);
    // A clip that is too short is fixable only by looping, when asked for.
    let loop_fixes = |f: &crate::Finding| spec.extend_loop && f.rule == RuleId::VideoDuration;
    if let Some(f) = findings.iter().find(|f| f.is_error() && !f.fixable && !loop_fixes(f)) {
        let how = if f.rule == RuleId::VideoDuration {
            " (--extend loop plays it again until it is long enough)"
        } else {
            ""
        };
        return FixPlan::unfixable(facts.kind, format!("{}: {}{how}", f.rule, f.message));
    }
    match role {
        Role::Image => plan_image(facts, spec, findings.iter().any(|f| f.is_error())),
        Role::Video => plan_video(facts, &findings, spec),
    }
}

/// Why the requested output format cannot hold this input in this role, naming the extension
/// that would.
fn unwritable(facts: &MediaFacts, role: Role, format: Option<Format>) -> Option<String> {
    let f = format?;
    let upper = f.name().to_ascii_uppercase();
    match role {
        Role::Image if f.kind() == Kind::Video => Some(format!(
            "the output's name asks for {upper}, a video container, but the input is {} image: \
             fix writes images as images; name the output .png (or .jpg, .webp, .bmp)",
            article(facts.format)
        )),
        Role::Image if !matches!(f, Format::Jpeg | Format::Png | Format::Bmp | Format::Webp) => Some(format!(
            "the output's name asks for {upper}, which the API does not accept: name the output .png (or .jpg, \
             .webp, .bmp)"
        )),
        Role::Video if f.kind() != Kind::Video => Some(format!(
            "the output's name asks for {upper}, an image format, but the input is a video: name the output .mp4 \
             (or .mov)"
        )),
        Role::Video if !matches!(f, Format::Mp4 | Format::Mov | Format::Avi) => Some(format!(
            "the output's name asks for {upper}, which the API does not accept: name the output .mp4 (or .mov)"
        )),
        _ => None,
    }
}

fn article(f: Format) -> String {
    let name = f.name().to_ascii_uppercase();
    match f.kind() {
        Kind::Unknown => "not an".to_string(),
        _ => format!("a {name}"),
    }
}

/// Videos: a copy when compliant (and already in the container asked for); a stream copy into
/// MP4 (or MOV) when only the container or the length is wrong and the codec is H.264/H.265;
/// otherwise a re-encode to H.264 that scales, pads or crops, squares the pixels and applies
/// the rotation.
fn plan_video(facts: &MediaFacts, findings: &[crate::Finding], spec: &FixSpec) -> FixPlan {
    let (limits, aspect) = (&spec.limits, spec.aspect);
    let kind = facts.kind;
    // The rules stop at a container the API does not take; what else the result must fix
    // (size, aspect, length) shows when the same facts are judged as an MP4.
    let beyond_container = if kind == Kind::Video && !matches!(facts.format, Format::Mp4 | Format::Mov | Format::Avi) {
        let mut as_mp4 = facts.clone();
        as_mp4.format = Format::Mp4;
        check(&as_mp4, Role::Video, limits)
    } else {
        Vec::new()
    };
    let errors: Vec<_> = findings.iter().chain(&beyond_container).filter(|f| f.is_error()).collect();
    let start = spec.start_s.filter(|&s| s > 0.0);
    // The part asked for, never longer than the limit.
    let wanted = spec.duration_s.map(|d| d.min(limits.video_max_duration_s));
    let cut = wanted.is_some() || start.is_some();
    let container = match spec.format {
        Some(Format::Mov) => Format::Mov,
        Some(Format::Avi) => Format::Avi,
        _ => Format::Mp4,
    };
    let same_container = spec.format.is_none_or(|f| f == facts.format);
    if errors.is_empty() && !cut && same_container {
        return FixPlan { kind, ops: vec![Op::Copy], unfixable: None };
    }
    if container == Format::Avi {
        return FixPlan::unfixable(kind, "fix writes MP4 or MOV, not AVI: name the output .mp4 (or .mov)".to_string());
    }
    if let (Some(s), Some(d)) = (start, facts.duration_s) {
        if s >= d {
            return FixPlan::unfixable(kind, format!("--start {s} is past the end of the {d} s video"));
        }
    }
    let remaining = facts.duration_s.map(|d| d - start.unwrap_or(0.0));
    let kept = match (wanted, remaining) {
        (Some(w), Some(r)) => Some(w.min(r)),
        (w, r) => w.or(r),
    };
    let too_short = kept.is_some_and(|k| k < limits.video_min_duration_s);
    if too_short && !spec.extend_loop {
        return FixPlan::unfixable(
            kind,
            format!(
                "the part kept would be shorter than {} s (--extend loop plays it again until it is long enough)",
                limits.video_min_duration_s
            ),
        );
    }
    if too_short && kept.is_some_and(|k| k <= 0.0) {
        return FixPlan::unfixable(kind, "the video has no duration to loop");
    }
    // Looped just past the minimum, so rounding of the last frame never lands under it.
    let loop_to_s = too_short.then_some(limits.video_min_duration_s + 0.1);
    // Where the kept part ends: what was asked for (or the limit), down to a whole frame.
    let trim_to = kept
        .filter(|&k| k < remaining.unwrap_or(f64::MAX) || k > limits.video_max_duration_s)
        .map(|k| whole_frames(k.min(limits.video_max_duration_s), facts.frame_rate));
    // Container and length are fixed by stream copy when the codec can be copied into MP4;
    // anything else needs a re-encode.
    let codec_copies = facts.video_codec.as_deref().is_none_or(|c| matches!(c, "h264" | "hevc"));
    // A stream copy can only start where the file starts (a keyframe): a later --start re-encodes.
    let copyable = codec_copies
        && start.is_none()
        && loop_to_s.is_none()
        && errors.iter().all(|f| matches!(f.rule, RuleId::VideoFormat | RuleId::VideoDuration));
    if kind == Kind::Video && copyable {
        let mut ops = vec![Op::Remux { from: facts.format, to: container }];
        if let Some(t) = trim_to {
            ops.push(Op::Trim { from_s: facts.duration_s.unwrap_or(t), to_s: t });
        }
        return FixPlan { kind, ops, unfixable: None };
    }
    let (Some(dw), Some(dh)) = (facts.display_width, facts.display_height) else {
        return FixPlan::unfixable(kind, "the video's size is unknown, so it cannot be re-encoded");
    };
    let l = limits;
    let g = fit(dw, dh, l.video_min_side, l.video_max_side, l.max_aspect, aspect, true);
    let crops = aspect == AspectMode::Crop && g.canvas != [dw, dh];
    let filter = video_filter(dw, dh, facts.rotation.unwrap_or(0), g, aspect, spec.anchor.fraction());
    let duration = facts.duration_s.unwrap_or(l.video_max_duration_s).min(l.video_max_duration_s).max(1.0);
    // 90% of the size limit over the duration, less 128 kb/s for audio; CRF 20 usually stays far below.
    // Capped at 200 Mb/s: libx264 keeps rates in 32-bit ints (its buffer is twice the rate).
    let max_bitrate =
        ((l.video_max_bytes as f64 * 8.0 * 0.9 / duration) as u64).saturating_sub(128_000).clamp(100_000, 200_000_000);
    let trim_to_s = trim_to.or_else(|| {
        remaining
            .filter(|&d| d > l.video_max_duration_s)
            .map(|_| whole_frames(l.video_max_duration_s, facts.frame_rate))
    });
    let trim_to_s = if loop_to_s.is_some() { None } else { trim_to_s };
    let op = Op::Reencode {
        container,
        from: [dw, dh],
        to: g.scaled,
        filter,
        anchor: crops.then_some(spec.anchor),
        start_s: start,
        trim_to_s,
        max_bitrate,
        loop_to_s,
    };
    FixPlan { kind, ops: vec![op], unfixable: None }
}

/// Formats the image decoder reads.
fn decodable(f: Format) -> bool {
    matches!(f, Format::Jpeg | Format::Png | Format::Bmp | Format::Webp | Format::Gif | Format::Tiff)
}

fn plan_image(facts: &MediaFacts, spec: &FixSpec, has_errors: bool) -> FixPlan {
    let kind = facts.kind;
    let format = spec.format.unwrap_or(match facts.format {
        f @ (Format::Jpeg | Format::Png | Format::Bmp | Format::Webp) => f,
        // GIF is palette art, TIFF may hold alpha: lossless PNG keeps both.
        _ => Format::Png,
    });
    if !has_errors && format == facts.format && spec.match_framing.is_none() {
        return FixPlan { kind, ops: vec![Op::Copy], unfixable: None };
    }
    if !decodable(facts.format) {
        return FixPlan::unfixable(kind, format!("{} cannot be decoded here", facts.format.name()));
    }
    let (Some(w), Some(h)) = (facts.width, facts.height) else {
        return FixPlan::unfixable(kind, "the image size is unknown");
    };
    let mut ops = vec![Op::Decode { format: facts.format, animated: facts.animated == Some(true) }];
    let (mut cw, mut ch) = (w, h);
    if let Some(o) = facts.orientation.filter(|&o| (2..=8).contains(&o)) {
        ops.push(Op::Orient { orientation: o });
        if o >= 5 {
            (cw, ch) = (ch, cw);
        }
    }
    let l = &spec.limits;
    if let Some(m) = &spec.match_framing {
        if let Some((scale, reframe)) = reframing(cw, ch, m, l.image_min_side, l.image_max_side) {
            if let Some(to) = scale {
                ops.push(Op::Scale { from: [cw, ch], to });
                [cw, ch] = to;
            }
            if let Op::Reframe { to, .. } = reframe {
                [cw, ch] = to;
            }
            ops.push(reframe);
        }
    }
    let geometry = fit(cw, ch, l.image_min_side, l.image_max_side, l.max_aspect, spec.aspect, false);
    if geometry.canvas != [cw, ch] {
        let op = match spec.aspect {
            AspectMode::Pad => Op::Pad { from: [cw, ch], to: geometry.canvas },
            AspectMode::Crop => Op::Crop { from: [cw, ch], to: geometry.canvas, anchor: spec.anchor },
        };
        ops.push(op);
    }
    if geometry.scaled != geometry.canvas {
        ops.push(Op::Scale { from: geometry.canvas, to: geometry.scaled });
    }
    ops.push(Op::Encode { format, max_bytes: l.image_max_bytes });
    FixPlan { kind, ops, unfixable: None }
}

/// The scale (when the canvas would pass `max_side`) and the reframe that give the image's
/// character the video's share of the frame height, its face placed where the video has it as
/// far as the picture allows (padding keeps the whole picture; cropping stays inside it). The
/// picture keeps its aspect ratio. `None` when the framings already agree within 2 %.
fn reframing(w: u32, h: u32, m: &FramingMatch, min_side: u32, max_side: u32) -> Option<(Option<[u32; 2]>, Op)> {
    let (fi, fv) = (m.image.face_height?, m.video.face_height?);
    let (ci, cv) = (m.image.face_center?, m.video.face_center?);
    if !(fi > 0.0 && fv > 0.0 && fi.is_finite() && fv.is_finite()) {
        return None;
    }
    // The canvas is k times the picture: the face's share of the height divides by k.
    let mut k = fi / fv;
    if (k - 1.0).abs() < 0.02 {
        return None;
    }
    // A crop may not go below the smallest side the service takes.
    k = k.max(f64::from(min_side) / f64::from(w.min(h)));
    let (mut pw, mut ph) = (f64::from(w), f64::from(h));
    let mut scale = None;
    if pw.max(ph) * k > f64::from(max_side) {
        // Shrink the picture first so the padded canvas fits: the shares are the same.
        let s = f64::from(max_side) / (pw.max(ph) * k);
        let to = [((pw * s).round() as u32).max(1), ((ph * s).round() as u32).max(1)];
        scale = Some(to);
        (pw, ph) = (f64::from(to[0]), f64::from(to[1]));
    }
    let (nw, nh) = ((pw * k).round().max(1.0), (ph * k).round().max(1.0));
    let place = |canvas: f64, side: f64, face_at: f64, wanted: f64| -> i64 {
        let ideal = wanted * canvas - face_at * side;
        let (lo, hi) = if canvas >= side { (0.0, canvas - side) } else { (canvas - side, 0.0) };
        ideal.clamp(lo, hi).round() as i64
    };
    let at = [place(nw, pw, ci[0], cv[0]), place(nh, ph, ci[1], cv[1])];
    let reframe = Op::Reframe { from: [pw as u32, ph as u32], to: [nw as u32, nh as u32], at, face: [fi, fi / k] };
    Some((scale, reframe))
}
