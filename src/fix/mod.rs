//! `fix`: turn a non-compliant input into a compliant file with the fewest, cheapest changes.
//!
//! [`plan()`] (pure) decides the operations from the probe's facts; the executor carries them out
//! into a temporary file next to the output, which is probed and checked with the same code as
//! `wanprep check` before it is renamed into place. The input is only ever opened for reading.
//! Images are handled in process; video work (remux, trim, re-encode, loop, audio to AAC) runs in
//! the FFmpeg helper ([`crate::av`]).

pub(crate) mod image;
mod mp4_edit;
pub mod plan;
mod saliency;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use image::{fix_memory_estimate, DEFAULT_MAX_DECODE_BYTES};
pub use plan::{fit, plan, Anchor, AspectMode, FixPlan, FixSpec, Geometry, Op};

use crate::av;
use crate::probe::{probe, Format, Kind, MediaFacts};
use crate::rules::{check, is_compliant, Finding, Role};

/// Why a fix did not produce a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    /// Reading the input or writing the output failed, or the request is not allowed
    /// (output = input, output exists without `--force`, an output name that names no format).
    #[error("{0}")]
    Io(String),
    /// The input cannot be made compliant (too short, not media, damaged, undecodable…), or
    /// not in the format the output's name asks for.
    #[error("{0}")]
    Unfixable(String),
    /// The work failed or its result did not pass the check.
    #[error("{0}")]
    Failed(String),
    /// Stopped through [`Control::cancel`]; nothing was written.
    #[error("cancelled")]
    Cancelled,
    /// Something wanprep needs is not installed (the FFmpeg helper): not a problem of the
    /// input.
    #[error("{0}")]
    Setup(String),
    /// The result passed the rules but is not what the plan said it would be (a different
    /// displayed size, orientation, length, frame rate, format or transparency): a bug in
    /// wanprep or FFmpeg. Nothing was written.
    #[error("internal error: {0} (nothing was written; please report this with the input)")]
    Internal(String),
}

/// What a fix did.
#[derive(Debug, Clone, Serialize)]
pub struct FixOutcome {
    /// The plan that ran.
    pub plan: FixPlan,
    /// Each change, for people (e.g. `scaled 5000x3000 -> 4096x2458`).
    pub changes: Vec<String>,
    /// Where the result is.
    pub output: PathBuf,
    /// The result's facts, from the same probe as `check`.
    pub media: MediaFacts,
    /// The result's findings (warnings only: errors would have stopped the fix).
    pub findings: Vec<Finding>,
}

/// How far a fix has come: seconds of video written of the total expected (videos only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Seconds of output written.
    pub done_s: f64,
    /// Seconds expected, when known.
    pub total_s: Option<f64>,
}

/// Watching and stopping a fix from outside: a progress callback and a cancel flag (a cancelled
/// video fix kills its FFmpeg helper; nothing is written).
#[derive(Default, Clone, Copy)]
pub struct Control<'a> {
    /// Called as video work advances.
    pub progress: Option<&'a dyn Fn(Progress)>,
    /// Set to stop.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Control<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("progress", &self.progress.is_some()).field("cancel", &self.cancel).finish()
    }
}

/// Fixes `input` into `output` (see the module docs). `role` defaults to what the content is.
/// The format written is `spec.format`, else the one `output`'s extension names, else the
/// input's own (or PNG / MP4 when the API does not accept it).
pub fn fix_file(
    input: &Path,
    output: &Path,
    role: Option<Role>,
    spec: &FixSpec,
    force: bool,
) -> Result<FixOutcome, FixError> {
    fix_file_with(input, output, role, spec, force, Control::default())
}

/// The format an output file's name asks for: `Ok(None)` without an extension, an error for
/// an extension that names no format wanprep writes.
pub fn format_named_by(output: &Path) -> Result<Option<Format>, FixError> {
    let Some(ext) = output.extension() else { return Ok(None) };
    match ext.to_str().and_then(Format::from_extension) {
        Some(f) => Ok(Some(f)),
        None => Err(FixError::Io(format!(
            "the output's extension .{} names no format: name it .png, .jpg, .webp or .bmp (images), \
             .mp4 or .mov (videos)",
            ext.to_string_lossy()
        ))),
    }
}

/// [`fix_file`] with progress reports and cancellation.
pub fn fix_file_with(
    input: &Path,
    output: &Path,
    role: Option<Role>,
    spec: &FixSpec,
    force: bool,
    ctl: Control<'_>,
) -> Result<FixOutcome, FixError> {
    refuse_overwriting_input(input, output)?;
    if output.exists() && !force {
        return Err(FixError::Io(format!("{} exists: pass --force to replace it", output.display())));
    }
    let mut spec = spec.clone();
    if spec.format.is_none() {
        spec.format = format_named_by(output)?;
    }
    let mut facts = probe(input).map_err(|e| FixError::Io(format!("{}: {e}", input.display())))?;
    complete_video_facts(input, &mut facts).map_err(setup_error)?;
    let role = role.unwrap_or_else(|| Role::for_facts(&facts));
    let plan = plan(&facts, role, &spec);
    if let Some(why) = &plan.unfixable {
        return Err(FixError::Unfixable(why.clone()));
    }
    execute(input, output, &facts, role, plan, &spec, force, ctl)
}

/// What the written file must show, from the input and the plan: checked after every write,
/// before the rename, besides the rules.
#[derive(Debug, Default)]
struct Expected {
    format: Option<Format>,
    /// Displayed width and height, and how far each may be off (a sample aspect ratio
    /// carried over by another container is rounded).
    display: Option<[u32; 2]>,
    display_slack: u32,
    rotation: Option<u16>,
    /// Duration and the tolerance either side.
    duration_s: Option<(f64, f64)>,
    frame_rate: Option<f64>,
    alpha: Option<bool>,
    codec_tag: Option<String>,
}

/// Carries out a plan made from `facts` (see [`plan()`]): the work goes to a temporary file
/// beside `output`, which is probed, checked against the rules and against what the plan
/// promised (displayed size and orientation, duration, frame rate, format, transparency), and
/// only then renamed into place.
#[allow(clippy::too_many_arguments)]
fn execute(
    input: &Path,
    output: &Path,
    facts: &MediaFacts,
    role: Role,
    plan: FixPlan,
    spec: &FixSpec,
    force: bool,
    ctl: Control<'_>,
) -> Result<FixOutcome, FixError> {
    let mut changes = Vec::new();
    let mut expected = Expected::default();
    let (media, findings) = write_checked(output, role, spec, force, &mut expected, |tmp: &Path, expected| {
        changes = match (&plan.ops[..], facts.kind) {
            ([Op::Copy], _) => {
                std::fs::copy(input, tmp).map_err(|e| FixError::Io(format!("copying {}: {e}", input.display())))?;
                *expected = Expected {
                    format: Some(facts.format),
                    display: facts.display_width.zip(facts.display_height).map(|(w, h)| [w, h]),
                    duration_s: facts.duration_s.map(|d| (d, 1e-3)),
                    ..Expected::default()
                };
                vec!["copied (already compliant)".to_string()]
            }
            ([Op::Remux { from, to }], Kind::Video) => remux(input, tmp, [from, to], None, facts, ctl, expected)?,
            ([Op::Remux { from, to }, Op::Trim { to_s, .. }], Kind::Video) => {
                remux(input, tmp, [from, to], Some(*to_s), facts, ctl, expected)?
            }
            ([op @ Op::Reencode { .. }], Kind::Video) => reencode(input, tmp, op, facts, spec, ctl, expected)?,
            (_, Kind::Image) => {
                let (encoded, changes) = image::run(input, facts, &plan, spec)?;
                std::fs::write(tmp, &encoded.bytes)
                    .map_err(|e| FixError::Io(format!("writing {}: {e}", tmp.display())))?;
                *expected = Expected {
                    format: Some(encoded.format),
                    display: Some([encoded.width, encoded.height]),
                    alpha: Some(encoded.alpha),
                    ..Expected::default()
                };
                changes
            }
            _ => return Err(FixError::Unfixable("this input cannot be fixed by this build".into())),
        };
        Ok(())
    })?;
    Ok(FixOutcome { plan, changes, output: output.to_path_buf(), media, findings })
}

fn setup_error(e: av::AvError) -> FixError {
    match e {
        av::AvError::Missing => FixError::Setup(format!(
            "{e}: install it with `cargo install --path .` (it installs both binaries) or put it on PATH"
        )),
        av::AvError::Cancelled => FixError::Cancelled,
        other => FixError::Failed(other.to_string()),
    }
}

fn container_of(name: &str) -> av::Container {
    if name == "mov" {
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
fn remux(
    input: &Path,
    tmp: &Path,
    [from, to]: [&str; 2],
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
        format: Format::from_extension(to),
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
        vec![format!("remuxed {} -> {} (stream copy of {})", from.to_uppercase(), to.to_uppercase(), r.video_codec)]
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
fn reencode(
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
        filter = plan::video_filter(dw, dh, facts.rotation.unwrap_or(0), g, AspectMode::Crop, at);
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
        container: container_of(container),
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
        format: Format::from_extension(container),
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

/// Containers wanprep's probe recognises but does not read (FLV, MPEG-TS…) leave the size,
/// duration and codec unknown; FFmpeg's demuxer fills them in so the plan can tell a remux
/// from a re-encode and size the output. Needs the FFmpeg helper only when something is
/// missing.
pub fn complete_video_facts(input: &Path, facts: &mut MediaFacts) -> Result<(), av::AvError> {
    // MP4/MOV/3GP/MJ2/AVI are read whole by the probe: what it did not find is not there.
    let own = matches!(facts.format, Format::Mp4 | Format::Mov | Format::ThreeGp | Format::Mj2 | Format::Avi);
    if facts.kind != Kind::Video || own || (facts.width.is_some() && facts.duration_s.is_some()) {
        return Ok(());
    }
    let info = match av::probe_stream(input) {
        Ok(info) => info,
        Err(e @ (av::AvError::Missing | av::AvError::Cancelled)) => return Err(e),
        // FFmpeg cannot read it either: the plan works with what the probe found.
        Err(av::AvError::Crashed(_)) => return Ok(()),
    };
    if facts.width.is_none() {
        facts.set_video_size(info.width, info.height, info.sar.map(|[n, d]| (n, d)), info.rotation);
    }
    facts.duration_s = facts.duration_s.or(info.duration_s);
    facts.video_codec = facts.video_codec.take().or(Some(info.codec));
    facts.frame_rate = facts.frame_rate.or(info.frame_rate);
    facts.audio_codec = facts.audio_codec.take().or(info.audio_codec);
    facts.has_video = Some(true);
    Ok(())
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
        Err(e @ (av::AvError::Missing | av::AvError::Cancelled)) => Err(AvFailure::Other(setup_error(e))),
        Err(e) => Err(AvFailure::Other(FixError::Failed(e.to_string()))),
    }
}

/// How the written file differs from what the plan promised, if it does.
fn mismatch(e: &Expected, got: &MediaFacts) -> Option<String> {
    if let Some(f) = e.format {
        if got.format != f {
            return Some(format!("the file holds {} where {} was planned", got.format.name(), f.name()));
        }
    }
    if let Some([w, h]) = e.display {
        let (gw, gh) = (got.display_width.unwrap_or(0), got.display_height.unwrap_or(0));
        let off = |a: u32, b: u32| a.abs_diff(b) > e.display_slack;
        if off(gw, w) || off(gh, h) || (gw > gh) != (w > h) {
            return Some(format!("it displays {gw}x{gh} where {w}x{h} was planned"));
        }
    }
    if let (Some(r), Some(g)) = (e.rotation, got.rotation) {
        if r != g {
            return Some(format!("its rotation is {g}° where {r}° was planned"));
        }
    }
    if let Some((d, tol)) = e.duration_s {
        match got.duration_s {
            Some(g) if (g - d).abs() <= tol => {}
            g => return Some(format!("it lasts {g:?} s where {d:.3} s (± {tol:.3}) was planned")),
        }
    }
    if let (Some(r), Some(g)) = (e.frame_rate, got.frame_rate) {
        if (g / r - 1.0).abs() > 0.02 {
            return Some(format!("its frame rate is {g} fps where {r} was kept"));
        }
    }
    if let Some(a) = e.alpha {
        if got.alpha.unwrap_or(false) != a {
            let what = if a { "lost its transparency" } else { "has transparency that was flattened" };
            return Some(format!("the picture {what}"));
        }
    }
    if let Some(tag) = &e.codec_tag {
        if got.codec_tag.as_ref() != Some(tag) {
            return Some(format!("its sample entry is {:?} where {tag} was kept", got.codec_tag));
        }
    }
    None
}

fn refuse_overwriting_input(input: &Path, output: &Path) -> Result<(), FixError> {
    let canon_in = input.canonicalize().map_err(|e| FixError::Io(format!("{}: {e}", input.display())))?;
    let canon_out = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let dir = parent.canonicalize().map_err(|e| FixError::Io(format!("{}: {e}", parent.display())))?;
            dir.join(output.file_name().unwrap_or_default())
        }
    };
    if canon_in == canon_out {
        return Err(FixError::Io("the output is the input: fix never modifies its input, choose another -o".into()));
    }
    Ok(())
}

/// Has `produce` write a temporary file beside `output` (and say what it must show), flushes it
/// to disk, checks it with the same probe and rules as `check` and against what was promised,
/// and only then renames it into place. On any failure the temporary file is removed and
/// `output` is untouched.
fn write_checked(
    output: &Path,
    role: Role,
    spec: &FixSpec,
    force: bool,
    expected: &mut Expected,
    produce: impl FnOnce(&Path, &mut Expected) -> Result<(), FixError>,
) -> Result<(MediaFacts, Vec<Finding>), FixError> {
    let io = |e: std::io::Error| FixError::Io(format!("writing {}: {e}", output.display()));
    // Random name, created exclusively, locked while it lives; leftovers of a killed run for
    // the same output are removed first.
    let tmp = crate::fsutil::temp_beside(output).map_err(io)?;
    produce(tmp.path(), expected)?;
    // Written by path (FFmpeg, fs::copy): reopen to flush what landed there.
    std::fs::File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(io)?;
    let mut media = probe(tmp.path()).map_err(io)?;
    media.extension = output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let findings = check(&media, role, &spec.limits);
    if !is_compliant(&findings) {
        let errors: Vec<_> = findings.iter().filter(|f| f.is_error()).map(|f| f.message.clone()).collect();
        return Err(FixError::Failed(format!("the result would still not be compliant: {}", errors.join("; "))));
    }
    if let Some(why) = mismatch(expected, &media) {
        return Err(FixError::Internal(why));
    }
    let persisted = if force { tmp.persist(output).map(|_| ()) } else { tmp.persist_noclobber(output).map(|_| ()) };
    persisted.map_err(|e| io(e.error))?;
    crate::fsutil::sync_dir(output);
    Ok((media, findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(w: u32, h: u32, rotation: u16, duration: f64) -> MediaFacts {
        let mut f = MediaFacts::new(Format::Mp4, 1000);
        f.set_video_size(w, h, None, rotation);
        f.duration_s = Some(duration);
        f.frame_rate = Some(30.0);
        f
    }

    #[test]
    fn a_result_that_lost_its_rotation_or_its_length_is_not_what_was_planned() {
        let src = video(640, 360, 90, 30.0);
        let planned = Expected {
            format: Some(Format::Mp4),
            display: Some([360, 640]),
            rotation: Some(90),
            duration_s: Some((30.0, 0.04)),
            frame_rate: Some(30.0),
            ..Expected::default()
        };
        assert_eq!(mismatch(&planned, &src), None);
        // The portrait clip turned landscape (the old stream copy dropped the display matrix).
        let why = mismatch(&planned, &video(640, 360, 0, 30.0)).unwrap();
        assert!(why.contains("displays 640x360"), "{why}");
        assert!(mismatch(&planned, &video(640, 360, 90, 29.9)).unwrap().contains("lasts"));
        let mut mov = src.clone();
        mov.format = Format::Mov;
        assert!(mismatch(&planned, &mov).unwrap().contains("holds mov"));
        let mut slow = src.clone();
        slow.frame_rate = Some(25.0);
        assert!(mismatch(&planned, &slow).unwrap().contains("frame rate"));
    }

    #[test]
    fn transparency_must_be_kept_or_flattened_as_reported() {
        let mut png = MediaFacts::new(Format::Png, 10);
        png.set_image_size(10, 10);
        png.alpha = Some(false);
        let kept = Expected { alpha: Some(true), ..Expected::default() };
        assert!(mismatch(&kept, &png).unwrap().contains("lost its transparency"));
        png.alpha = Some(true);
        assert_eq!(mismatch(&kept, &png), None);
        let flattened = Expected { alpha: Some(false), ..Expected::default() };
        assert!(mismatch(&flattened, &png).is_some());
    }
}
