//! Manifest runs: pairs of (image, video) from a CSV (`image,video[,mode,watermark,output]`) or
//! JSON-lines file; each pair is checked, its local inputs fixed when needed, and — with
//! `submit` — the compliant pairs are submitted through the client's journal with at most
//! `max_in_flight` tasks running, all polled from one loop, results downloaded into the output
//! folder. A killed and restarted run resumes every task from the journal: no duplicate task,
//! every result downloaded once.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod outputs;
mod prepare;
mod submit;

pub(crate) use outputs::plan_outputs;
pub(crate) use prepare::prepare;
pub(crate) use submit::submit_all;

use super::BatchError;
use crate::client::{Client, Job, Mode};
use crate::fix::FixSpec;
use crate::inspect::InputReport;
use crate::probe::looks_like_url;

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
    let text = std::fs::read_to_string(path).map_err(|e| BatchError::io(path.display().to_string(), e))?;
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
    /// How long the video sent lasts (after fixing): the output lasts as long, so this is the
    /// estimate of the seconds billed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<f64>,
    /// Seconds the service generated (its usage figure), once the task succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_seconds: Option<f64>,
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
    /// Check and plan only: no fix is written, nothing is uploaded or created.
    pub dry_run: bool,
    /// Create new tasks even for jobs the journal holds (as `submit --new`).
    pub new_task: bool,
    /// When interrupted, cancel the tasks still PENDING (instead of listing them).
    pub cancel_on_interrupt: bool,
    /// Prices per generated second, to turn seconds into money in the report.
    pub prices: Option<crate::Prices>,
    /// Add the quality advisor's warnings for every input (`--quality`).
    pub quality: bool,
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
    /// Seconds the ready (or submitted) pairs would generate: an estimate, since the output
    /// lasts as long as the reference video.
    pub estimate: crate::Spend,
    /// Seconds the service generated for the tasks that succeeded (its usage figures).
    pub generated: crate::Spend,
    /// Tasks still PENDING when the run was interrupted (they will run and be billed unless
    /// canceled).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_pending: Vec<String>,
    /// Tasks this run canceled on interruption.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canceled: Vec<String>,
}

impl ManifestReport {
    /// Every pair ended ready (or downloaded, when submitting).
    pub fn all_done(&self, submitted: bool) -> bool {
        let s = &self.summary;
        s.unfixable == 0 && s.failed == 0 && (!submitted || s.downloaded == s.pairs)
    }
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

/// Counts for a finished run.
pub(crate) fn summarize(pairs: &[PairReport]) -> ManifestSummary {
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
    std::fs::create_dir_all(outdir).map_err(|e| BatchError::io(format!("creating {}", outdir.display()), e))?;
    let mut reports = prepare(&pairs, outdir, opts, cancel);
    for (r, o) in reports.iter_mut().zip(outputs) {
        r.output = Some(o);
    }
    let mut left = submit::Left::default();
    if let Some(c) = client.filter(|_| !opts.dry_run) {
        outputs::check_output_files(&reports, c, outdir, opts.force)?;
        left = submit_all(&mut reports, c, outdir, opts, cancel, on);
    }
    let prices = opts.prices.as_ref();
    let estimate = crate::Spend::sum(
        true,
        reports
            .iter()
            .filter(|r| r.status != PairStatus::Unfixable)
            .filter_map(|r| Some((r.pair.mode.as_str(), r.video_seconds?))),
        prices,
    );
    let generated = crate::Spend::sum(
        false,
        reports.iter().filter_map(|r| Some((r.pair.mode.as_str(), r.generated_seconds?))),
        prices,
    );
    Ok(ManifestReport {
        summary: summarize(&reports),
        elapsed_s: start.elapsed().as_secs_f64(),
        pairs: reports,
        estimate,
        generated,
        left_pending: left.pending,
        canceled: left.canceled,
    })
}
