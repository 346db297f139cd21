//! `fix`: turn a non-compliant input into a compliant file with the fewest, cheapest changes.
//!
//! [`plan()`] (pure) decides the operations from the probe's facts; the executor carries them out
//! into a temporary file next to the output, which is probed and checked with the same code as
//! `wanprep check` before it is renamed into place. The input is only ever opened for reading.
//! Images are handled in process; video work (remux, trim, re-encode, loop, audio to AAC) runs in
//! the FFmpeg helper ([`crate::av`]).

mod image;
pub mod plan;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use plan::{fit, plan, AspectMode, FixPlan, FixSpec, Geometry, Op};

use crate::av;
use crate::probe::{probe, Kind, MediaFacts};
use crate::rules::{check, is_compliant, Finding, Role};

/// Why a fix did not produce a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    /// Reading the input or writing the output failed, or the request is not allowed
    /// (output = input, output exists without `--force`).
    #[error("{0}")]
    Io(String),
    /// The input cannot be made compliant (too short, not media, damaged, undecodable…).
    #[error("{0}")]
    Unfixable(String),
    /// The work failed or its result did not pass the check.
    #[error("{0}")]
    Failed(String),
    /// Stopped through [`Control::cancel`]; nothing was written.
    #[error("cancelled")]
    Cancelled,
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
pub fn fix_file(
    input: &Path,
    output: &Path,
    role: Option<Role>,
    spec: &FixSpec,
    force: bool,
) -> Result<FixOutcome, FixError> {
    fix_file_with(input, output, role, spec, force, Control::default())
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
    let mut facts = probe(input).map_err(|e| FixError::Io(format!("{}: {e}", input.display())))?;
    complete_video_facts(input, &mut facts);
    let role = role.unwrap_or_else(|| Role::for_kind(facts.kind));
    let plan = plan(&facts, role, spec);
    if let Some(why) = &plan.unfixable {
        return Err(FixError::Unfixable(why.clone()));
    }
    let mut changes = Vec::new();
    let (media, findings) = write_checked(output, role, spec, force, |tmp: &Path| {
        changes = match (&plan.ops[..], facts.kind) {
            ([Op::Copy], _) => {
                std::fs::copy(input, tmp).map_err(|e| FixError::Io(format!("copying {}: {e}", input.display())))?;
                vec!["copied (already compliant)".to_string()]
            }
            ([Op::Remux { from, to }], Kind::Video) => remux(input, tmp, from, to, None, spec, &facts, ctl)?,
            ([Op::Remux { from, to }, Op::Trim { to_s, .. }], Kind::Video) => {
                remux(input, tmp, from, to, Some(*to_s), spec, &facts, ctl)?
            }
            ([Op::Reencode { from, to, filter, start_s, trim_to_s, max_bitrate, loop_to_s }], Kind::Video) => {
                let total = loop_to_s.or(*trim_to_s).or(facts.duration_s.map(|d| d - start_s.unwrap_or(0.0)));
                reencode(
                    input,
                    tmp,
                    [*from, *to],
                    filter,
                    (*start_s, *trim_to_s, *loop_to_s),
                    *max_bitrate,
                    (ctl, total),
                )?
            }
            (_, Kind::Image) => {
                let (bytes, changes) = image::run(input, &plan, spec.pad_color)?;
                std::fs::write(tmp, bytes).map_err(|e| FixError::Io(format!("writing {}: {e}", tmp.display())))?;
                changes
            }
            _ => return Err(FixError::Unfixable("this input cannot be fixed by this build".into())),
        };
        Ok(())
    })?;
    Ok(FixOutcome { plan, changes, output: output.to_path_buf(), media, findings })
}

/// Stream copy into MP4, trimmed to `trim_to_s` when given. The cut is placed a little before
/// the limit (frames decoded before the cut may display just after it), and moved earlier if
/// the result still comes out long.
#[allow(clippy::too_many_arguments)]
fn remux(
    input: &Path,
    tmp: &Path,
    from: &str,
    to: &str,
    trim_to_s: Option<f64>,
    spec: &FixSpec,
    facts: &MediaFacts,
    ctl: Control<'_>,
) -> Result<Vec<String>, FixError> {
    let total = trim_to_s.or(facts.duration_s);
    let max = spec.limits.video_max_duration_s;
    let mut margin = 0.1;
    let (r, trimmed_to) = loop {
        let end = trim_to_s.map(|t| (t - margin).max(0.0));
        let r = run_av(
            &av::Request::Remux {
                input: input.to_path_buf(),
                output: tmp.to_path_buf(),
                max_duration_s: max,
                end_s: end,
            },
            ctl,
            total,
        )
        .map_err(|e| match e {
            AvFailure::Refused(why) => FixError::Unfixable(why),
            AvFailure::Other(e) => e,
        })?;
        let Some(t) = trim_to_s else { break (r, None) };
        let got = probe(tmp).ok().and_then(|f| f.duration_s).unwrap_or(0.0);
        if got <= t || margin > 1.0 {
            break (r, Some(got));
        }
        margin *= 3.0;
    };
    let mut changes = if from == to {
        Vec::new()
    } else {
        vec![format!("remuxed {} -> {} (stream copy of {})", from.to_uppercase(), to.to_uppercase(), r.video_codec)]
    };
    if let Some(got) = trimmed_to {
        changes.push(format!("trimmed {:.2} s -> {got:.2} s (stream copy of {})", r.source_duration_s, r.video_codec));
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

/// Re-encodes to H.264 through the planned filter graph (trimmed just under `trim_to_s`).
fn reencode(
    input: &Path,
    tmp: &Path,
    [from, to]: [[u32; 2]; 2],
    filter: &str,
    (start_s, trim_to_s, loop_to_s): (Option<f64>, Option<f64>, Option<f64>),
    max_bitrate: u64,
    (ctl, total): (Control<'_>, Option<f64>),
) -> Result<Vec<String>, FixError> {
    let spec = av::Reencode {
        filter: filter.to_string(),
        width: to[0],
        height: to[1],
        start_s: start_s.unwrap_or(0.0),
        end_s: trim_to_s.map(|t| start_s.unwrap_or(0.0) + (t - 0.05).max(0.0)),
        max_bitrate: Some(max_bitrate),
        loop_to_s,
    };
    let done =
        run_av(&av::Request::Reencode { input: input.to_path_buf(), output: tmp.to_path_buf(), spec }, ctl, total)
            .map_err(|e| match e {
                AvFailure::Refused(why) => FixError::Failed(why),
                AvFailure::Other(e) => e,
            })?;
    let mut changes = vec![format!(
        "re-encoded {} -> H.264, {}x{} (displayed) -> {}x{}, square pixels",
        done.video_codec, from[0], from[1], to[0], to[1]
    )];
    if let Some(t) = trim_to_s {
        let from = start_s.map(|s| format!(" from {s} s")).unwrap_or_default();
        changes.push(format!("trimmed {:.2} s -> at most {t} s{from}", done.source_duration_s));
    }
    if let Some(t) = loop_to_s {
        changes.push(format!("looped {:.2} s -> {t:.1} s (--extend loop)", done.source_duration_s));
    }
    audio_changes(&done, &mut changes);
    Ok(changes)
}

/// Containers wanprep's probe recognises but does not read (MKV, WebM, FLV, MPEG-TS…) leave the
/// size, duration and codec unknown; FFmpeg's demuxer fills them in so the plan can tell a
/// remux from a re-encode (VP9 in WebM cannot be copied into MP4) and size the output.
pub fn complete_video_facts(input: &Path, facts: &mut MediaFacts) {
    if facts.kind != Kind::Video || facts.width.is_some() {
        return;
    }
    let Ok(info) = av::probe_stream(input) else { return };
    facts.set_video_size(info.width, info.height, info.sar.map(|[n, d]| (n, d)), info.rotation);
    facts.duration_s = facts.duration_s.or(info.duration_s);
    facts.video_codec = facts.video_codec.take().or(Some(info.codec));
    facts.frame_rate = facts.frame_rate.or(info.frame_rate);
    facts.audio_codec = facts.audio_codec.take().or(info.audio_codec);
    facts.has_video = Some(true);
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
        Ok(av::Response::Decoded | av::Response::Probed(_)) => {
            Err(AvFailure::Other(FixError::Failed("unexpected answer from the FFmpeg helper".into())))
        }
        Err(e @ av::AvError::Missing) => Err(AvFailure::Other(FixError::Unfixable(e.to_string()))),
        Err(av::AvError::Cancelled) => Err(AvFailure::Other(FixError::Cancelled)),
        Err(e) => Err(AvFailure::Other(FixError::Failed(e.to_string()))),
    }
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

/// Has `produce` write a temporary file beside `output`, flushes it to disk, checks it with the
/// same probe and rules as `check`, and only then renames it into place. On any failure the
/// temporary file is removed and `output` is untouched.
fn write_checked(
    output: &Path,
    role: Role,
    spec: &FixSpec,
    force: bool,
    produce: impl FnOnce(&Path) -> Result<(), FixError>,
) -> Result<(MediaFacts, Vec<Finding>), FixError> {
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |e: std::io::Error| FixError::Io(format!("writing {}: {e}", output.display()));
    // Ordinary file permissions (tempfile's default is 0600); the umask still applies.
    let tmp = tempfile::Builder::new()
        .prefix(".wanprep-")
        .suffix(".part")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io)?;
    produce(tmp.path())?;
    // Written by path (FFmpeg, fs::copy): reopen to flush what landed there.
    std::fs::File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(io)?;
    let mut media = probe(tmp.path()).map_err(io)?;
    media.extension = output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let findings = check(&media, role, &spec.limits);
    if !is_compliant(&findings) {
        let errors: Vec<_> = findings.iter().filter(|f| f.is_error()).map(|f| f.message.clone()).collect();
        return Err(FixError::Failed(format!("the result would still not be compliant: {}", errors.join("; "))));
    }
    let persisted = if force { tmp.persist(output).map(|_| ()) } else { tmp.persist_noclobber(output).map(|_| ()) };
    persisted.map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((media, findings))
}
