//! Video fixes, carried out in the FFmpeg helper: stream copies (remux, exact cuts) and
//! re-encodes, with what each written file must show.

use std::path::Path;

use super::geometry::{fit, video_filter, Geometry};
use super::verify::Expected;
use super::{mp4_edit, saliency, setup_error, Anchor, AspectMode, Control, FixError, FixSpec, Op, Progress};
use crate::av;
use crate::probe::{Format, MediaFacts};

fn container_of(f: Format) -> av::Container {
    if f == Format::Mov {
        av::Container::Mov
    } else {
        av::Container::Mp4
    }
}

/// A frame's length in seconds (a 25 fps guess when the rate is unknown).
fn frame_s(facts: &MediaFacts) -> f64 {
    1.0 / facts.frame_rate.filter(|&f| f > 0.0).unwrap_or(25.0)
}

/// Stream copy into MP4 or MOV (display matrix and sample entry kept), cut at `trim_to_s` when
/// given: the presentation then ends exactly there (see [`mp4_edit`]).
pub(super) fn remux(
    input: &Path,
    tmp: &Path,
    [from, to]: [Format; 2],
    trim_to_s: Option<f64>,
    facts: &MediaFacts,
    ctl: Control<'_>,
    expected: &mut Expected,
) -> Result<Vec<String>, FixError> {
    let total = trim_to_s.or(facts.duration_s);
    let req = av::Request::Remux {
        input: input.to_path_buf(),
        output: tmp.to_path_buf(),
        container: container_of(to),
        max_duration_s: f64::MAX,
        end_s: trim_to_s,
    };
    let r = run_av(&req, ctl, total).map_err(|e| match e {
        AvFailure::Refused(why) => FixError::Unfixable(why),
        AvFailure::Other(e) => e,
    })?;
    if let (Some(t), Some(kept)) = (trim_to_s, r.kept_end_s) {
        // Frames decoded before the cut but shown after it were kept for their references:
        // end the presentation at the cut.
        if kept > t + 1e-3 {
            mp4_edit::end_video_at(tmp, t)
                .map_err(|e| FixError::Failed(format!("cannot end the presentation at {t} s: {e}")))?;
        }
    }
    let frame = frame_s(facts);
    *expected = Expected {
        format: Some(to),
        display: facts.display_width.zip(facts.display_height).map(|(w, h)| [w, h]),
        // Another container's sample aspect ratio is carried over rounded (Matroska's display
        // size, FFmpeg's reduced ratios): a pixel or two.
        display_slack: if matches!(facts.format, Format::Mp4 | Format::Mov | Format::ThreeGp) { 0 } else { 2 },
        rotation: facts.rotation.filter(|_| matches!(facts.format, Format::Mp4 | Format::Mov | Format::ThreeGp)),
        duration_s: match trim_to_s {
            Some(t) => Some((t, frame + 2e-3)),
            // A container's duration may count a start offset or a longer audio track.
            None => facts.duration_s.map(|d| (d, (2.0 * frame).max(0.15))),
        },
        frame_rate: facts.frame_rate,
        codec_tag: facts.codec_tag.clone().filter(|t| t == "hvc1" || t == "avc1"),
        ..Expected::default()
    };
    let mut changes = if from == to {
        Vec::new()
    } else {
        vec![format!(
            "remuxed {} -> {} (stream copy of {})",
            from.name().to_uppercase(),
            to.name().to_uppercase(),
            r.video_codec
        )]
    };
    if let Some(rot) = facts.rotation.filter(|&r| r != 0) {
        changes.push(format!("kept the {rot}° display rotation"));
    }
    if let Some(t) = trim_to_s {
        changes.push(format!("trimmed {:.2} s -> {t:.3} s (stream copy of {})", r.source_duration_s, r.video_codec));
    }
    audio_changes(&r, &mut changes);
    Ok(changes)
}

/// What happened to the audio, for the change list.
fn audio_changes(r: &av::Remuxed, changes: &mut Vec<String>) {
    if let Some(a) = &r.audio {
        match a.strip_suffix(" -> aac (re-encoded)") {
            Some(src) => changes.push(format!("re-encoded {src} audio -> AAC (MP4 cannot carry {src})")),
            None => changes.push(format!("copied {a} audio")),
        }
    }
    if let Some(a) = &r.dropped_audio {
        changes.push(format!("dropped {a} audio (it could not be re-encoded to AAC)"));
    }
}

/// Frames sampled through a video to place an `--anchor auto` crop.
const CROP_SAMPLE_FRAMES: u32 = 6;

/// Re-encodes to H.264 through the planned filter graph (trimmed to `trim_to_s`). An
/// `--anchor auto` crop is placed first, from frames sampled through the clip.
pub(super) fn reencode(
    input: &Path,
    tmp: &Path,
    op: &Op,
    facts: &MediaFacts,
    spec: &FixSpec,
    ctl: Control<'_>,
    expected: &mut Expected,
) -> Result<Vec<String>, FixError> {
    let Op::Reencode { container, from, to, filter, anchor, start_s, trim_to_s, max_bitrate, loop_to_s } = op else {
        return Err(FixError::Failed("not a re-encode".into()));
    };
    let mut changes = Vec::new();
    let mut filter = filter.clone();
    if *anchor == Some(Anchor::Auto) {
        let [dw, dh] = *from;
        let l = &spec.limits;
        let g = fit(dw, dh, l.video_min_side, l.video_max_side, l.max_aspect, AspectMode::Crop, true);
        let at = video_subject_position(input, facts, g, [dw, dh])?;
        filter = video_filter(dw, dh, facts.rotation.unwrap_or(0), g, AspectMode::Crop, at);
        changes.push(format!(
            "placed the crop on the most salient part ({:.0} % along the cut side, from {CROP_SAMPLE_FRAMES} frames)",
            at * 100.0
        ));
    }
    let start = start_s.unwrap_or(0.0);
    let total = loop_to_s.or(*trim_to_s).or(facts.duration_s.map(|d| d - start));
    let req = av::Request::Reencode {
        input: input.to_path_buf(),
        output: tmp.to_path_buf(),
        container: container_of(*container),
        spec: av::Reencode {
            filter,
            width: to[0],
            height: to[1],
            start_s: start,
            end_s: trim_to_s.map(|t| start + t),
            max_bitrate: Some(*max_bitrate),
            loop_to_s: *loop_to_s,
        },
    };
    let done = run_av(&req, ctl, total).map_err(|e| match e {
        AvFailure::Refused(why) => FixError::Failed(why),
        AvFailure::Other(e) => e,
    })?;
    let frame = frame_s(facts);
    *expected = Expected {
        format: Some(*container),
        display: Some(*to),
        rotation: Some(0),
        duration_s: match (trim_to_s, loop_to_s) {
            // At most the time asked for, about a frame less (a frame and a half for a variable
            // frame rate, whose frames are not all as long as the average).
            (Some(t), _) => Some((t - frame * 0.75, frame * 0.75 + 2e-3)),
            (None, Some(l)) => Some((*l, 2.0 * frame + 0.05)),
            (None, None) => facts.duration_s.map(|d| (d - start, (2.0 * frame).max(0.15))),
        },
        frame_rate: facts.frame_rate,
        ..Expected::default()
    };
    changes.insert(
        0,
        format!(
            "re-encoded {} -> H.264, {}x{} (displayed) -> {}x{}, square pixels",
            done.video_codec, from[0], from[1], to[0], to[1]
        ),
    );
    if let Some(t) = trim_to_s {
        let from = start_s.map(|s| format!(" from {s} s")).unwrap_or_default();
        changes.push(format!("trimmed {:.2} s -> {t:.3} s{from}", done.source_duration_s));
    }
    if let Some(t) = loop_to_s {
        changes.push(format!("looped {:.2} s -> {t:.1} s (--extend loop)", done.source_duration_s));
    }
    audio_changes(&done, &mut changes);
    Ok(changes)
}

/// Where the subject of a video is along the side a crop to `g` cuts (0 = top/left, 1 =
/// bottom/right): the saliency of frames sampled through the clip, summed.
fn video_subject_position(input: &Path, facts: &MediaFacts, g: Geometry, [dw, dh]: [u32; 2]) -> Result<f64, FixError> {
    let pictures = av::frames(input, CROP_SAMPLE_FRAMES, saliency::WORK_SIDE).map_err(setup_error)?;
    let vertical = g.canvas[1] < dh;
    let kept = if vertical { f64::from(g.canvas[1]) / f64::from(dh) } else { f64::from(g.canvas[0]) / f64::from(dw) };
    let mut total: Vec<f64> = Vec::new();
    for p in &pictures {
        let (w, h) = (p.width as usize, p.height as usize);
        let rotated = rotate_rgb(&p.rgb, w, h, facts.rotation.unwrap_or(0));
        let (w, h) = if facts.rotation.unwrap_or(0) % 180 == 90 { (h, w) } else { (w, h) };
        let scores = saliency::scores(&saliency::Rgb { width: w, height: h, data: &rotated });
        let profile = saliency::profile(&scores, w, h, vertical);
        // Frames may differ by a pixel in size: resample each profile onto the first's length.
        if total.is_empty() {
            total = profile;
        } else {
            let n = total.len();
            for (i, t) in total.iter_mut().enumerate() {
                let j = (i * profile.len()) / n.max(1);
                *t += profile.get(j).copied().unwrap_or(0.0);
            }
        }
    }
    Ok(saliency::best_window(&total, kept))
}

/// RGB rows turned `rotation` degrees clockwise (as the display matrix says they are shown).
fn rotate_rgb(rgb: &[u8], w: usize, h: usize, rotation: u16) -> Vec<u8> {
    if rotation == 0 || rgb.len() < w * h * 3 {
        return rgb.to_vec();
    }
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (nx, ny, nw) = match rotation {
                90 => (h - 1 - y, x, h),
                180 => (w - 1 - x, h - 1 - y, w),
                _ => (y, w - 1 - x, h),
            };
            let (src, dst) = ((y * w + x) * 3, (ny * nw + nx) * 3);
            out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
        }
    }
    out
}

enum AvFailure {
    /// FFmpeg looked at the input and said no (or failed on it).
    Refused(String),
    /// No helper, a crash, cancellation.
    Other(FixError),
}

/// Runs a remux or re-encode in the FFmpeg helper.
fn run_av(req: &av::Request, ctl: Control<'_>, total_s: Option<f64>) -> Result<av::Remuxed, AvFailure> {
    let report = |done_s: f64| {
        if let Some(p) = ctl.progress {
            p(Progress { done_s, total_s });
        }
    };
    match av::run(req, ctl.cancel, Some(&report)) {
        Ok(av::Response::Written(r)) => Ok(r),
        Ok(av::Response::Failed(why)) => Err(AvFailure::Refused(why)),
        Ok(_) => Err(AvFailure::Other(FixError::Failed("unexpected answer from the FFmpeg helper".into()))),
        Err(e @ (av::AvError::Missing | av::AvError::Cancelled | av::AvError::WrongProtocol { .. })) => {
            Err(AvFailure::Other(setup_error(e)))
        }
        Err(e) => Err(AvFailure::Other(FixError::Failed(e.to_string()))),
    }
}
