//! Manifest runs: pairs of (image, video) from a CSV (`image,video[,mode,watermark,output]`) or
//! JSON-lines file; each pair is checked, its local inputs fixed when needed, and — with
//! `submit` — the compliant pairs are submitted through the client's journal with at most
//! `max_in_flight` tasks running, all polled from one loop, results downloaded into the output
//! folder. A killed and restarted run resumes every task from the journal: no duplicate task,
//! every result downloaded once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::BatchError;
use crate::client::poll::{Poller, Step};
use crate::client::{Client, Job, Mode, Submitted, TaskStatus};
use crate::fix::{self, Control, FixSpec};
use crate::inspect::{check_input, CheckOptions, InputSpec};
use crate::probe::looks_like_url;
use crate::report::InputReport;
use crate::rules::Role;

/// One pair from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    /// Line in the manifest (1-based, the header is line 1 in a CSV).
    pub line: usize,
    /// Image path (relative to the manifest's folder) or URL.
    pub image: String,
    /// Video path or URL.
    pub video: String,
    /// Mode.
    pub mode: Mode,
    /// Watermark.
    pub watermark: bool,
    /// Result file, relative to the output folder.
    pub output: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Row {
    image: String,
    video: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, deserialize_with = "flexible_bool")]
    watermark: Option<bool>,
    #[serde(default)]
    output: Option<String>,
}

fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!("watermark '{other}' is not true/false"))),
        },
        Some(other) => Err(serde::de::Error::custom(format!("watermark {other} is not true/false"))),
    }
}

/// Reads a manifest: JSON lines when the first non-blank character is `{`, else CSV with a
/// header naming at least `image` and `video`. Relative paths are taken from the manifest's
/// folder.
pub fn read_manifest(path: &Path) -> Result<Vec<Pair>, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BatchError::Io(format!("{}: {e}", path.display())))?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let bad = |line: usize, why: String| BatchError::Usage(format!("{}:{line}: {why}", path.display()));
    let mut rows: Vec<(usize, Row)> = Vec::new();
    if text.trim_start().starts_with('{') {
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            rows.push((i + 1, serde_json::from_str(l).map_err(|e| bad(i + 1, e.to_string()))?));
        }
    } else {
        let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        for (i, rec) in r.deserialize::<Row>().enumerate() {
            rows.push((i + 2, rec.map_err(|e| bad(i + 2, e.to_string()))?));
        }
    }
    let resolve = |s: &str| {
        if looks_like_url(s) || s.starts_with("oss://") || Path::new(s).is_absolute() {
            s.to_string()
        } else {
            base.join(s).display().to_string()
        }
    };
    rows.into_iter()
        .map(|(line, r)| {
            let mode = match r.mode.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
                None => Mode::Std,
                Some(m) => Mode::parse(m).ok_or_else(|| bad(line, format!("mode '{m}' is not wan-std or wan-pro")))?,
            };
            if r.image.trim().is_empty() || r.video.trim().is_empty() {
                return Err(bad(line, "image and video are both required".into()));
            }
            let output = r.output.map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).map(PathBuf::from);
            if let Some(o) = &output {
                if o.is_absolute() || o.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                    return Err(bad(line, format!("output '{}' must stay inside the output folder", o.display())));
                }
            }
            Ok(Pair {
                line,
                image: resolve(r.image.trim()),
                video: resolve(r.video.trim()),
                mode,
                watermark: r.watermark.unwrap_or(false),
                output,
            })
        })
        .collect()
}

/// What became of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairStatus {
    /// Both inputs are (or were made) compliant; not submitted.
    Ready,
    /// An input cannot be made compliant (or cannot be read).
    Unfixable,
    /// Submitted; the task had not ended when the run stopped.
    Submitted,
    /// The task succeeded and its result is saved.
    Downloaded,
    /// The task failed, or submitting or downloading failed.
    Failed,
}

/// One pair's entry in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// The pair.
    pub pair: Pair,
    /// The image's check.
    pub image: InputReport,
    /// The video's check.
    pub video: InputReport,
    /// Fixes made, for people.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// What was (or would be) sent: the inputs after fixing.
    pub image_used: String,
    /// See `image_used`.
    pub video_used: String,
    /// Outcome.
    pub status: PairStatus,
    /// The task, once submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Its last status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_status: Option<String>,
    /// Whether the task was resumed from the journal.
    pub resumed: bool,
    /// Result file, relative to the output folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Why it failed or is unfixable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Settings of a manifest run.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// Worker threads for checks and fixes.
    pub jobs: usize,
    /// How to fix.
    pub fix: FixSpec,
    /// Most tasks running at once.
    pub max_in_flight: usize,
    /// Polling interval of the one loop that watches every task.
    pub poll_interval: Duration,
    /// Replace result files that exist already (other than this job's own earlier result).
    pub force: bool,
}

/// Counts of a manifest run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManifestSummary {
    /// Pairs.
    pub pairs: usize,
    /// Compliant, not submitted.
    pub ready: usize,
    /// Unfixable.
    pub unfixable: usize,
    /// Submitted (created or resumed).
    pub submitted: usize,
    /// Results saved.
    pub downloaded: usize,
    /// Failed.
    pub failed: usize,
}

/// The report of a manifest run.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestReport {
    /// Counts.
    pub summary: ManifestSummary,
    /// Wall time.
    pub elapsed_s: f64,
    /// One entry per pair.
    pub pairs: Vec<PairReport>,
}

impl ManifestReport {
    /// Every pair ended ready (or downloaded, when submitting).
    pub fn all_done(&self, submitted: bool) -> bool {
        let s = &self.summary;
        s.unfixable == 0 && s.failed == 0 && (!submitted || s.downloaded == s.pairs)
    }
}

/// Checks (and fixes) every pair in parallel; the fixed inputs go to `outdir/inputs/`.
pub fn prepare(pairs: &[Pair], outdir: &Path, opts: &ManifestOptions, cancel: &AtomicBool) -> Vec<PairReport> {
    crate::pool::map(pairs, opts.jobs, |_, i, p| prepare_pair(p, i, outdir, opts, cancel))
}

fn prepare_pair(p: &Pair, index: usize, outdir: &Path, opts: &ManifestOptions, cancel: &AtomicBool) -> PairReport {
    let copts = CheckOptions { limits: opts.fix.limits.clone(), jobs: 1, ..CheckOptions::default() };
    let image = check_input(&InputSpec::new(p.image.clone(), Some(Role::Image)), &copts);
    let video = check_input(&InputSpec::new(p.video.clone(), Some(Role::Video)), &copts);
    let mut r = PairReport {
        pair: p.clone(),
        image_used: p.image.clone(),
        video_used: p.video.clone(),
        image,
        video,
        changes: Vec::new(),
        status: PairStatus::Ready,
        task_id: None,
        task_status: None,
        resumed: false,
        output: None,
        error: None,
    };
    for (role, rep) in [(Role::Image, r.image.clone()), (Role::Video, r.video.clone())] {
        if rep.compliant {
            continue;
        }
        let src = if role == Role::Image { &p.image } else { &p.video };
        if looks_like_url(src) || rep.media.is_none() {
            r.status = PairStatus::Unfixable;
            r.error = Some(format!("{src}: {}", rep.error.clone().unwrap_or_else(|| first_error(&rep))));
            return r;
        }
        // Planned once, from the facts the check found; executed as planned.
        let facts = rep.media.clone().unwrap_or_else(|| crate::MediaFacts::new(crate::Format::Unknown, 0));
        let planned = fix::Planned::new(Path::new(src), facts, role, &opts.fix);
        if let Some(why) = &planned.plan.unfixable {
            r.status = PairStatus::Unfixable;
            r.error = Some(format!("{src}: {why}"));
            return r;
        }
        let name = Path::new(src).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let rel = super::output_rel(Path::new(&name), &planned.plan, Path::new(&name).file_stem().unwrap_or_default());
        let dst = outdir.join("inputs").join(format!("{}-{}", index + 1, rel.display()));
        if let Some(d) = dst.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let ctl = Control { progress: None, cancel: Some(cancel) };
        match fix::execute(&planned, &dst, true, ctl) {
            Ok(o) => {
                r.changes.extend(o.changes.into_iter().map(|c| format!("{name}: {c}")));
                if role == Role::Image {
                    r.image_used = dst.display().to_string();
                } else {
                    r.video_used = dst.display().to_string();
                }
            }
            Err(e) => {
                r.status = PairStatus::Unfixable;
                r.error = Some(format!("{src}: {e}"));
                return r;
            }
        }
    }
    r
}

impl PairReport {
    /// The job this pair submits: the inputs after fixing.
    pub fn job(&self) -> Job {
        Job {
            image: self.image_used.clone(),
            video: self.video_used.clone(),
            mode: self.pair.mode,
            watermark: self.pair.watermark,
            check_image: true,
        }
    }
}

fn first_error(r: &InputReport) -> String {
    r.findings.iter().find(|f| f.is_error()).map(|f| format!("{}: {}", f.rule, f.message)).unwrap_or_default()
}

/// Submits every ready pair through `client` (at most `max_in_flight` running), polls them all
/// from one loop, and downloads each result into `outdir`. Stops submitting when `cancel` is
/// set; tasks already running keep running and a re-run resumes them.
pub fn submit_all(
    reports: &mut [PairReport],
    client: &mut Client,
    outdir: &Path,
    opts: &ManifestOptions,
    cancel: &AtomicBool,
    on: &mut dyn FnMut(&PairReport),
) {
    let mut queue: std::collections::VecDeque<usize> =
        (0..reports.len()).filter(|i| reports[*i].status == PairStatus::Ready).collect();
    // The one poller (as `wait` uses), and which pairs wait on each task.
    let mut poller = Poller::new(opts.poll_interval);
    let mut waiting: Vec<(String, Vec<usize>)> = Vec::new();
    let max = opts.max_in_flight.max(1);
    loop {
        while poller.len() < max && !cancel.load(Ordering::SeqCst) {
            let Some(i) = queue.pop_front() else { break };
            let r = &mut reports[i];
            let job = r.job();
            let out = outdir.join(r.output.clone().unwrap_or_else(|| job.default_output()));
            match client.submit(&job, false, &mut |_| {}) {
                Ok(s) => {
                    r.resumed = matches!(s, Submitted::Resumed(_));
                    let id = s.task_id().to_string();
                    r.task_id = Some(id.clone());
                    r.status = PairStatus::Submitted;
                    if client.recorded_output(&id).is_none() {
                        let _ = client.plan_output(&id, &out);
                    }
                    if client.saved_output(&id).is_some_and(|p| p == out) {
                        r.status = PairStatus::Downloaded;
                        r.task_status = Some("SUCCEEDED".into());
                        on(r);
                    } else if let Some((_, pairs)) = waiting.iter_mut().find(|(t, _)| *t == id) {
                        // Another row of the same job: one task, its result saved for both.
                        pairs.push(i);
                    } else {
                        poller.add(&id, !r.resumed);
                        waiting.push((id, vec![i]));
                    }
                }
                Err(e) => {
                    r.status = PairStatus::Failed;
                    r.error = Some(e.to_string());
                    on(r);
                }
            }
        }
        if poller.is_empty() || cancel.load(Ordering::SeqCst) {
            break;
        }
        let due = poller.next_due().unwrap_or_else(Instant::now);
        while Instant::now() < due && !cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        for (id, step) in poller.poll_due(|id| client.query(id).map(|(r, _)| r)) {
            let pairs = match &step {
                Step::Status(s, _) if !s.is_terminal() => {
                    waiting.iter().find(|(t, _)| *t == id).map(|(_, p)| p.clone()).unwrap_or_default()
                }
                Step::Retrying(..) => continue,
                _ => waiting.iter().position(|(t, _)| *t == id).map(|k| waiting.remove(k).1).unwrap_or_default(),
            };
            match step {
                Step::Status(status, resp) => {
                    client.record_status(&id, &resp);
                    for &i in &pairs {
                        reports[i].task_status = Some(status.to_string());
                    }
                    if !status.is_terminal() {
                        continue;
                    }
                    for i in pairs {
                        let r = &mut reports[i];
                        if status == TaskStatus::Succeeded {
                            let out = outdir.join(r.output.clone().unwrap_or_else(|| format!("{id}.mp4").into()));
                            match client.download(&id, &resp, &out, Some(cancel), &mut |_| {}) {
                                Ok(_) => r.status = PairStatus::Downloaded,
                                Err(e) => {
                                    r.status = PairStatus::Failed;
                                    r.error = Some(e.to_string());
                                }
                            }
                        } else {
                            r.status = PairStatus::Failed;
                            r.error = Some(format!(
                                "task {status}: {} {}",
                                resp.output.code.as_deref().unwrap_or(""),
                                resp.output.message.as_deref().unwrap_or("")
                            ));
                        }
                        on(r);
                    }
                }
                Step::Fatal(e) => {
                    for i in pairs {
                        reports[i].status = PairStatus::Failed;
                        reports[i].error = Some(e.to_string());
                        on(&reports[i]);
                    }
                }
                Step::Retrying(..) => {}
            }
        }
    }
}

/// Counts for a finished run.
pub fn summarize(pairs: &[PairReport]) -> ManifestSummary {
    let mut s = ManifestSummary { pairs: pairs.len(), ..Default::default() };
    for p in pairs {
        match p.status {
            PairStatus::Ready => s.ready += 1,
            PairStatus::Unfixable => s.unfixable += 1,
            PairStatus::Submitted => s.submitted += 1,
            PairStatus::Downloaded => {
                s.downloaded += 1;
                s.submitted += 1;
            }
            PairStatus::Failed => s.failed += 1,
        }
    }
    s
}

/// Where each pair's result goes (relative to the output folder), decided for the whole
/// manifest before anything is uploaded or created: an `output` given in the manifest must
/// differ from every other (after normalisation, case-insensitively, so two rows never pay
/// for one file) and stay out of `inputs/`, where fixed inputs go; a default name
/// (`IMAGE_VIDEO.mp4`) taken by another row gets its line number (`cat_dance.line3.mp4`).
pub fn plan_outputs(pairs: &[Pair]) -> Result<Vec<PathBuf>, BatchError> {
    use std::collections::HashMap;
    let normal =
        |p: &Path| -> PathBuf { p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect() };
    let key = |p: &Path| p.to_string_lossy().to_lowercase();
    let mut claimed: HashMap<String, usize> = HashMap::new();
    for p in pairs {
        let Some(o) = &p.output else { continue };
        let o = normal(o);
        if o.as_os_str().is_empty() {
            return Err(BatchError::Usage(format!("line {}: the output names no file", p.line)));
        }
        if o.components().next().is_some_and(|c| c.as_os_str().eq_ignore_ascii_case("inputs")) {
            return Err(BatchError::Usage(format!(
                "line {}: output '{}' is inside inputs/, where fixed inputs are written: name another",
                p.line,
                o.display()
            )));
        }
        if let Some(other) = claimed.insert(key(&o), p.line) {
            return Err(BatchError::Usage(format!(
                "lines {other} and {} both name the output '{}': two tasks would be paid for one file",
                p.line,
                o.display()
            )));
        }
    }
    let defaults: Vec<Option<PathBuf>> = pairs
        .iter()
        .map(|p| p.output.is_none().then(|| Job::new(p.image.clone(), p.video.clone(), p.mode).default_output()))
        .collect();
    let mut uses: HashMap<String, usize> = HashMap::new();
    for d in defaults.iter().flatten() {
        *uses.entry(key(d)).or_default() += 1;
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (p, d) in pairs.iter().zip(defaults) {
        let o = match (&p.output, d) {
            (Some(o), _) => normal(o),
            (None, Some(d)) => {
                if uses[&key(&d)] > 1 || claimed.contains_key(&key(&d)) {
                    let stem = d.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                    let named = PathBuf::from(format!("{stem}.line{}.mp4", p.line));
                    if claimed.contains_key(&key(&named)) {
                        return Err(BatchError::Usage(format!(
                            "line {}: the output names '{}', which line {} needs: name another",
                            claimed[&key(&named)],
                            named.display(),
                            p.line
                        )));
                    }
                    named
                } else {
                    d
                }
            }
            (None, None) => unreachable!("a pair without an output has a default"),
        };
        out.push(o);
    }
    Ok(out)
}

/// Checks, before any upload or create, that every ready pair's result can be written: its
/// folder exists or is made, and the file is not there already — unless `force`, or it is this
/// very job's saved result (a re-run then downloads nothing).
fn check_output_files(
    reports: &[PairReport],
    client: &mut Client,
    outdir: &Path,
    force: bool,
) -> Result<(), BatchError> {
    for r in reports.iter().filter(|r| r.status == PairStatus::Ready) {
        let Some(out) = &r.output else { continue };
        let out = outdir.join(out);
        let dir = crate::fsutil::parent_dir(&out);
        std::fs::create_dir_all(dir).map_err(|e| {
            BatchError::Usage(format!("line {}: cannot create the folder {}: {e}", r.pair.line, dir.display()))
        })?;
        if std::fs::symlink_metadata(&out).is_err() || force {
            continue;
        }
        let job = r.job();
        let own = client
            .existing(&job)
            .ok()
            .flatten()
            .and_then(|e| e.task_id)
            .is_some_and(|id| client.saved_output(&id).as_deref() == Some(out.as_path()));
        if !own {
            return Err(BatchError::Usage(format!(
                "line {}: {} exists and is not this job's result: pass --force to replace it, or name another output",
                r.pair.line,
                out.display()
            )));
        }
    }
    Ok(())
}

/// Reads, prepares and (with a client) submits a manifest.
pub fn run_manifest(
    manifest: &Path,
    outdir: &Path,
    opts: &ManifestOptions,
    client: Option<&mut Client>,
    cancel: &AtomicBool,
    on: &mut dyn FnMut(&PairReport),
) -> Result<ManifestReport, BatchError> {
    let start = Instant::now();
    let pairs = read_manifest(manifest)?;
    // Every output is decided and checked for clashes before any work, upload or payment.
    let outputs = plan_outputs(&pairs)?;
    std::fs::create_dir_all(outdir).map_err(|e| BatchError::Io(format!("creating {}: {e}", outdir.display())))?;
    let mut reports = prepare(&pairs, outdir, opts, cancel);
    for (r, o) in reports.iter_mut().zip(outputs) {
        r.output = Some(o);
    }
    if let Some(c) = client {
        check_output_files(&reports, c, outdir, opts.force)?;
        submit_all(&mut reports, c, outdir, opts, cancel, on);
    }
    Ok(ManifestReport { summary: summarize(&reports), elapsed_s: start.elapsed().as_secs_f64(), pairs: reports })
}
