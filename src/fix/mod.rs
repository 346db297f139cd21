//! `fix`: turn a non-compliant input into a compliant file with the fewest, cheapest changes.
//!
//! [`plan()`] (pure) decides the operations from the probe's facts; the executor carries them out
//! into a temporary file next to the output, which is probed and checked with the same code as
//! `wanprep check` before it is renamed into place. The input is only ever opened for reading.
//! Images are handled in process; video work (remux, trim, re-encode, loop, audio to AAC) runs in
//! the FFmpeg helper ([`crate::av`]).

pub(crate) mod encode;
mod geometry;
pub(crate) mod image;
mod mp4_edit;
mod plan;
mod saliency;
#[cfg(feature = "turbojpeg")]
mod turbo;
mod verify;
mod video;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use image::{decode_for_quality, fix_memory_estimate, DEFAULT_MAX_DECODE_BYTES};
pub use plan::{plan, Anchor, AspectMode, FixPlan, FixSpec, FramingMatch, Op};

use crate::av;
use crate::probe::{probe, Format, Kind, MediaFacts};
use crate::rules::{Finding, Role};
use verify::{write_checked, Expected};

/// Why a fix did not produce a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    /// Reading the input or writing the output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The output exists and replacing it was not allowed.
    #[error("{} exists", .0.display())]
    OutputExists(PathBuf),
    /// The output is the input: a fix never modifies its input.
    #[error("the output is the input: a fix never modifies its input")]
    OutputIsInput,
    /// The output's extension names no format wanprep writes.
    #[error(
        "the output's extension .{0} names no format: name it .png, .jpg, .webp or .bmp (images), .mp4 or .mov (videos)"
    )]
    UnknownExtension(String),
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
    /// Images: how many encodes of the whole picture fitting the size budget took.
    pub full_encodes: Option<u32>,
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

/// An input probed and planned: what [`execute`] carries out. Callers that have probed
/// already (a batch, a manifest run) make one with [`Planned::new`] — nothing is probed or
/// planned twice.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Planned {
    /// The input (only ever read).
    pub input: PathBuf,
    /// What the probe learned about it.
    pub facts: MediaFacts,
    /// The role it is fixed for.
    pub role: Role,
    /// How (with the output format decided).
    pub spec: FixSpec,
    /// What will be done.
    pub plan: FixPlan,
}

impl Planned {
    /// Plans a fix of `input` from facts already learned (pure: no I/O).
    pub fn new(input: &Path, facts: MediaFacts, role: Role, spec: &FixSpec) -> Planned {
        let plan = plan(&facts, role, spec);
        Planned { input: input.to_path_buf(), facts, role, spec: spec.clone(), plan }
    }
}

/// Probes and plans a fix of `input` into `output`: the format is `spec.format`, else the one
/// `output`'s extension names; `role` defaults to what the content is.
pub fn prepare(input: &Path, output: &Path, role: Option<Role>, spec: &FixSpec) -> Result<Planned, FixError> {
    let mut spec = spec.clone();
    if spec.format.is_none() {
        spec.format = format_named_by(output)?;
    }
    let facts = probe(input).map_err(|e| FixError::io(input.display().to_string(), e))?;
    if facts.kind == Kind::Video && facts.headers_incomplete {
        // Only FFmpeg reads this container, and its helper is not installed.
        return Err(setup_error(av::AvError::Missing));
    }
    let role = role.unwrap_or_else(|| Role::for_facts(&facts));
    Ok(Planned::new(input, facts, role, &spec))
}

/// Finds the character's face in `image` and in frames sampled from `video`, for
/// [`FixSpec::match_framing`]: an error (unfixable) when either has no face the detector finds,
/// or when the inputs are not an image and a video.
pub fn framing_match(image: &Path, video: &Path) -> Result<FramingMatch, FixError> {
    let facts = |p: &Path, kind: Kind| -> Result<crate::probe::MediaFacts, FixError> {
        let f = probe(p).map_err(|e| FixError::io(p.display().to_string(), e))?;
        if f.kind != kind || !f.is_intact() {
            let what = if kind == Kind::Image { "an intact image" } else { "an intact video" };
            return Err(FixError::Unfixable(format!("--match-framing needs {what}: {} is not", p.display())));
        }
        Ok(f)
    };
    let (ifacts, vfacts) = (facts(image, Kind::Image)?, facts(video, Kind::Video)?);
    if !crate::quality::supports_image(ifacts.format) {
        return Err(FixError::Unfixable(format!("{} cannot be decoded here", ifacts.format.name())));
    }
    let (_, im) = crate::quality::measure_image_file(image, &ifacts, true).map_err(FixError::Unfixable)?;
    let vm = crate::quality::video_framing(video, &vfacts).map_err(|e| {
        if crate::av::helper_path().is_none() {
            setup_error(av::AvError::Missing)
        } else {
            FixError::Unfixable(format!("cannot sample the video's frames: {e}"))
        }
    })?;
    let missing = match (im.face_height, vm.face_height) {
        (Some(_), Some(_)) => return Ok(FramingMatch { image: im, video: vm }),
        (None, None) => "the image or the video",
        (None, _) => "the image",
        _ => "the video",
    };
    Err(FixError::Unfixable(format!(
        "no human face found in {missing}: --match-framing measures the character by its face (a person facing the \
         camera)"
    )))
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
        None => Err(FixError::UnknownExtension(ext.to_string_lossy().into_owned())),
    }
}

/// [`fix_file`] with progress reports and cancellation: [`prepare`], then [`execute`].
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
        return Err(FixError::OutputExists(output.to_path_buf()));
    }
    execute(&prepare(input, output, role, spec)?, output, force, ctl)
}

/// Carries out a plan (see [`prepare`] and [`Planned::new`]): the work goes to a temporary file
/// beside `output`, which is probed, checked against the rules and against what the plan
/// promised (displayed size and orientation, duration, frame rate, format, transparency), and
/// only then renamed into place. The input is only ever read.
pub fn execute(planned: &Planned, output: &Path, force: bool, ctl: Control<'_>) -> Result<FixOutcome, FixError> {
    let Planned { input, facts, role, spec, plan } = planned;
    if let Some(why) = &plan.unfixable {
        return Err(FixError::Unfixable(why.clone()));
    }
    refuse_overwriting_input(input, output)?;
    if output.exists() && !force {
        return Err(FixError::OutputExists(output.to_path_buf()));
    }
    let input = input.as_path();
    let mut changes = Vec::new();
    let mut full_encodes = None;
    let mut expected = Expected::default();
    let (media, findings) = write_checked(output, *role, spec, force, &mut expected, |tmp: &Path, expected| {
        changes = match (&plan.ops[..], facts.kind) {
            ([Op::Copy], _) => {
                std::fs::copy(input, tmp).map_err(|e| FixError::io(format!("copying {}", input.display()), e))?;
                *expected = Expected::same_as(facts);
                vec!["copied (already compliant)".to_string()]
            }
            ([Op::Remux { from, to }], Kind::Video) => {
                video::remux(input, tmp, [*from, *to], None, facts, ctl, expected)?
            }
            ([Op::Remux { from, to }, Op::Trim { to_s, .. }], Kind::Video) => {
                video::remux(input, tmp, [*from, *to], Some(*to_s), facts, ctl, expected)?
            }
            ([op @ Op::Reencode { .. }], Kind::Video) => video::reencode(input, tmp, op, facts, spec, ctl, expected)?,
            (_, Kind::Image) => {
                let (encoded, changes) = image::run(input, facts, plan, spec)?;
                std::fs::write(tmp, &encoded.bytes)
                    .map_err(|e| FixError::io(format!("writing {}", tmp.display()), e))?;
                *expected = Expected::image(&encoded);
                full_encodes = Some(encoded.full_encodes);
                changes
            }
            _ => return Err(FixError::Unfixable("this input cannot be fixed by this build".into())),
        };
        Ok(())
    })?;
    Ok(FixOutcome { plan: plan.clone(), changes, output: output.to_path_buf(), media, findings, full_encodes })
}

impl FixError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> FixError {
        FixError::Io { context: context.into(), source }
    }

    /// Whether this is a verdict on the input (it cannot be made compliant, or the work on it
    /// failed) rather than a problem of the request, the machine or a cancellation.
    pub fn is_verdict(&self) -> bool {
        matches!(self, FixError::Unfixable(_) | FixError::Failed(_))
    }
}

pub(crate) fn setup_error(e: av::AvError) -> FixError {
    match e {
        av::AvError::Missing => FixError::Setup(format!(
            "{e}: install it with `cargo install --path .` (it installs both binaries) or put it on PATH"
        )),
        av::AvError::Cancelled => FixError::Cancelled,
        e @ av::AvError::WrongProtocol { .. } => FixError::Setup(e.to_string()),
        other => FixError::Failed(other.to_string()),
    }
}

fn refuse_overwriting_input(input: &Path, output: &Path) -> Result<(), FixError> {
    let canon_in = input.canonicalize().map_err(|e| FixError::io(input.display().to_string(), e))?;
    let canon_out = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let dir = parent.canonicalize().map_err(|e| FixError::io(parent.display().to_string(), e))?;
            dir.join(output.file_name().unwrap_or_default())
        }
    };
    if canon_in == canon_out {
        return Err(FixError::OutputIsInput);
    }
    Ok(())
}
