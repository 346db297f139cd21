//! `batch`: check and fix a whole folder (or, in [`manifest`], submit many pairs), in parallel,
//! resumably, with a report.
//!
//! A folder run walks the input folder, takes a deterministic shard of it if asked,
//! and for every file: probes and checks it; copies (or hard-links) a compliant one, fixes a
//! non-compliant one with [`crate::fix`], lists an unfixable or non-media one — writing into the
//! output folder under the same relative path, and never writing into the input folder. Each
//! finished input is recorded in a state file so a re-run skips it.

mod budget;
pub mod manifest;
pub(crate) mod naming;
mod run;
mod state;
mod walk;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fix::{self, FixSpec};
use crate::probe::Kind;
use crate::rules::Finding;

pub use budget::default_max_memory;

/// Settings of a folder run.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Worker threads (0 = one per core).
    pub jobs: usize,
    /// Only probe, check and plan: write nothing.
    pub dry_run: bool,
    /// Hard-link compliant inputs instead of copying them.
    pub link: bool,
    /// Include hidden files and folders.
    pub hidden: bool,
    /// Process only shard `k` of `n` (1-based).
    pub shard: Option<(u32, u32)>,
    /// How to fix.
    pub fix: FixSpec,
    /// The most memory the fixes running at once may take together, in bytes (`None`: half of
    /// the machine's RAM): a worker waits until its fix fits, so `jobs` cannot multiply a
    /// decompression bomb.
    pub max_memory: Option<u64>,
    /// Add the quality advisor's warnings for every input (`--quality`).
    pub quality: bool,
}

/// What becomes of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Already compliant: copied or linked.
    Compliant,
    /// Fixed into a compliant file.
    Fixed,
    /// Media that cannot be made compliant.
    Unfixable,
    /// Not an image or video.
    NotMedia,
    /// Reading or writing failed.
    Failed,
    /// Dry run: what would be done is in `plan`.
    Planned,
    /// Stopped before it finished (Ctrl-C).
    Cancelled,
}

/// Hex of bytes (for names that are not UTF-8).
pub(crate) fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from hex, if it is hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A path for people and JSON: as text, with U+FFFD where its bytes are not UTF-8.
fn lossy<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn lossy_opt<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.to_string_lossy()),
        None => s.serialize_none(),
    }
}

/// The exact bytes of a path that is not UTF-8, as hex (`None` for a UTF-8 path).
pub(crate) fn path_bytes(p: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    p.to_str().is_none().then(|| hex_bytes(p.as_os_str().as_bytes()))
}

/// One input's entry in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    /// Path relative to the input folder (lossy when the name is not UTF-8: see `path_bytes`).
    #[serde(serialize_with = "lossy")]
    pub input: PathBuf,
    /// The input path's exact bytes as hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// What the content is.
    pub kind: Kind,
    /// What became of it.
    pub status: ItemStatus,
    /// Whether this run skipped it because an earlier run finished it.
    pub skipped: bool,
    /// Findings on the input.
    pub findings: Vec<Finding>,
    /// Changes made (fixed inputs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The planned operations (dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<fix::FixPlan>,
    /// Output path relative to the output folder (lossy: see `output_path_bytes`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_opt")]
    pub output: Option<PathBuf>,
    /// The output path's exact bytes as hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_path_bytes: Option<String>,
    /// Why it is unfixable or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Input size.
    pub input_bytes: u64,
    /// Output size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

/// Counts for the summary table.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Inputs considered (after sharding).
    pub inputs: usize,
    /// Already compliant.
    pub compliant: usize,
    /// Fixed.
    pub fixed: usize,
    /// Cannot be fixed.
    pub unfixable: usize,
    /// Not media.
    pub not_media: usize,
    /// I/O failures.
    pub failed: usize,
    /// Planned (dry run).
    pub planned: usize,
    /// Stopped by Ctrl-C.
    pub cancelled: usize,
    /// Skipped because an earlier run finished them.
    pub skipped: usize,
    /// Bytes read as inputs.
    pub bytes_in: u64,
    /// Bytes written as outputs.
    pub bytes_out: u64,
}

/// The report of a folder run.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// The input folder.
    #[serde(serialize_with = "lossy")]
    pub input_dir: PathBuf,
    /// The output folder.
    #[serde(serialize_with = "lossy")]
    pub output_dir: PathBuf,
    /// Counts.
    pub summary: Summary,
    /// Wall time.
    pub elapsed_s: f64,
    /// One entry per input, in path order.
    pub inputs: Vec<ItemReport>,
}

impl BatchReport {
    /// Whether every input ended compliant (copied, fixed, or planned to be).
    pub fn all_compliant(&self) -> bool {
        let s = &self.summary;
        s.unfixable == 0 && s.not_media == 0 && s.failed == 0 && s.cancelled == 0
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The folders are not usable.
    #[error("{0}")]
    Usage(String),
    /// Reading the manifest, listing or creating folders failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest row names an output that exists and is not its job's saved result.
    #[error("line {line}: {} exists and is not this job's result", .path.display())]
    OutputExists {
        /// The manifest line.
        line: usize,
        /// The existing file.
        path: PathBuf,
    },
}

impl BatchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> BatchError {
        BatchError::Io { context: context.into(), source }
    }
}

/// Progress of a run, for displays.
#[derive(Debug)]
pub enum BatchEvent<'a> {
    /// The inputs were listed.
    Listed {
        /// How many will be processed.
        total: usize,
    },
    /// Work on an input started.
    Started {
        /// Worker number.
        worker: usize,
        /// The input.
        input: &'a Path,
    },
    /// Video work on an input advanced.
    Progress {
        /// Worker number.
        worker: usize,
        /// How far.
        progress: fix::Progress,
    },
    /// An input is finished.
    Finished {
        /// Worker number.
        worker: usize,
        /// Its entry.
        item: &'a ItemReport,
    },
}

pub use run::run_dir;
