//! `batch`: check and fix a whole folder (or, in [`manifest`], submit many pairs), in parallel,
//! resumably, with a report.
//!
//! A folder run walks the input folder ([`walk`]), takes a deterministic shard of it if asked,
//! and for every file: probes and checks it; copies (or hard-links) a compliant one, fixes a
//! non-compliant one with [`crate::fix`], lists an unfixable or non-media one — writing into the
//! output folder under the same relative path, and never writing into the input folder. Each
//! finished input is recorded in [`state`] so a re-run skips it.

pub mod manifest;
pub mod state;
pub mod walk;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::fix::{self, Control, FixError, FixSpec, Op};
use crate::probe::{probe, Kind};
use crate::rules::{check, is_compliant, Finding, Role};
use state::{Done, State};

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
}

/// Half of the machine's memory (from `/proc/meminfo`), or 2 GiB when it cannot be read.
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    total.map_or(2 << 30, |t| t / 2)
}

/// Memory shared by the workers of a run: each fix reserves its estimate first.
struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: std::sync::Condvar,
}

/// A reservation, returned when dropped.
struct Reserved<'a>(&'a MemoryBudget, u64);

impl MemoryBudget {
    fn new(total: u64) -> Self {
        MemoryBudget { total, used: Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    /// Waits until `bytes` fit beside what other workers hold (one reservation alone always
    /// may start, so a fix larger than the total is refused by its own budget, not stuck).
    fn reserve(&self, bytes: u64) -> Reserved<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && used.saturating_add(bytes) > self.total {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used = used.saturating_add(bytes);
        Reserved(self, bytes)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(self.1);
        self.0.freed.notify_all();
    }
}

/// What a video fix takes in memory (the FFmpeg helper decoding, filtering and encoding 2048 px
/// frames): a reservation, not a cap.
const VIDEO_FIX_MEMORY: u64 = 320 << 20;

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
fn path_bytes(p: &Path) -> Option<String> {
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
    pub items: Vec<ItemReport>,
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
    /// Listing or creating folders failed.
    #[error("{0}")]
    Io(String),
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

/// Refuses an output folder inside the input folder (its outputs would become inputs), an
/// input folder inside the output folder (outputs would land on inputs), compared by real
/// path, and an input folder that is not one.
fn check_dirs(dir: &Path, outdir: &Path) -> Result<(PathBuf, PathBuf), BatchError> {
    let d = dir.canonicalize().map_err(|e| BatchError::Usage(format!("{}: {e}", dir.display())))?;
    if !d.is_dir() {
        return Err(BatchError::Usage(format!("{} is not a folder", dir.display())));
    }
    // The output folder may not exist yet: resolve its nearest existing ancestor.
    let mut probe_path = outdir.to_path_buf();
    let mut tail = Vec::new();
    let o = loop {
        match probe_path.canonicalize() {
            Ok(c) => break tail.iter().rev().fold(c, |acc: PathBuf, part: &std::ffi::OsString| acc.join(part)),
            Err(_) => match (probe_path.file_name(), probe_path.parent()) {
                (Some(name), Some(parent)) => {
                    tail.push(name.to_os_string());
                    probe_path = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
                }
                _ => return Err(BatchError::Usage(format!("{} is not a usable output folder", outdir.display()))),
            },
        }
    };
    if o.starts_with(&d) {
        return Err(BatchError::Usage(format!(
            "the output folder {} is inside the input folder {}: choose one outside it",
            outdir.display(),
            dir.display()
        )));
    }
    // The other way round, the tree written would reach back into the inputs
    // (`batch photos -o .` with `photos/photos/a.jpg` would write over `photos/a.jpg`).
    if d.starts_with(&o) {
        return Err(BatchError::Usage(format!(
            "the input folder {} is inside the output folder {}: choose an output folder outside it",
            dir.display(),
            outdir.display()
        )));
    }
    Ok((d, o))
}

/// The stem each input's output takes if its extension changes (a conversion), decided for a
/// whole listing at once — before sharding, so every shard agrees — such that no two outputs of
/// a folder can ever be the same file:
///
/// - a file whose extension stays keeps its own name;
/// - a file whose stem no other file of its folder has (case-insensitively) keeps its stem:
///   `clip.mkv` → `clip.mp4`;
/// - otherwise its whole name becomes the stem (`pic.gif` → `pic.gif.png` beside `pic.tif`),
///   or, when another file already has that stem (`pic.gif.png`), the first free `NAME~K`.
///
/// Every stem chosen is either the file's own stem, unique in the folder, or one no input has
/// and no other choice took, and outputs that keep their names have input stems: so the
/// mapping is injective (a proptest checks it).
pub fn conversion_stems(rels: &[PathBuf]) -> std::collections::HashMap<PathBuf, std::ffi::OsString> {
    use std::collections::{HashMap, HashSet};
    let key = |stem: &std::ffi::OsStr| stem.to_string_lossy().to_lowercase();
    let folder = |rel: &Path| rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut stems: HashMap<PathBuf, HashMap<String, usize>> = HashMap::new();
    for rel in rels {
        *stems.entry(folder(rel)).or_default().entry(key(rel.file_stem().unwrap_or_default())).or_default() += 1;
    }
    let mut sorted: Vec<&PathBuf> = rels.iter().collect();
    sorted.sort();
    let mut taken: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut out = HashMap::new();
    for rel in sorted {
        let dir = folder(rel);
        let counts = &stems[&dir];
        let taken = taken.entry(dir).or_default();
        let own = rel.file_stem().unwrap_or_default().to_os_string();
        let free = |k: &str, taken: &HashSet<String>| !counts.contains_key(k) && !taken.contains(k);
        let stem = if counts.get(&key(&own)) == Some(&1) {
            own
        } else {
            let name = rel.file_name().unwrap_or_default().to_os_string();
            let mut candidate = name.clone();
            let mut k = 1u32;
            while !free(&key(&candidate), taken) {
                candidate = name.clone();
                candidate.push(format!("~{k}"));
                k += 1;
            }
            taken.insert(key(&candidate));
            candidate
        };
        out.insert(rel.clone(), stem);
    }
    out
}

/// The extension of the file a plan writes, when it writes one.
fn planned_extension(plan: &fix::FixPlan) -> Option<&'static str> {
    plan.ops.iter().find_map(|op| match op {
        Op::Encode { format: crate::Format::Jpeg, .. } => Some("jpg"),
        Op::Encode { format, .. } | Op::Remux { to: format, .. } | Op::Reencode { container: format, .. } => {
            Some(format.name())
        }
        _ => None,
    })
}

/// The output's relative path: the input's own when the extension stays (`jpeg` and `jpg`
/// are one), else `conversion_stem` (see [`conversion_stems`]) with the new extension.
pub fn output_rel(rel: &Path, plan: &fix::FixPlan, conversion_stem: &std::ffi::OsStr) -> PathBuf {
    let Some(ext) = planned_extension(plan) else { return rel.to_path_buf() };
    let same = rel
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| x.eq_ignore_ascii_case(ext) || (ext == "jpg" && x.eq_ignore_ascii_case("jpeg")));
    if same {
        return rel.to_path_buf();
    }
    let mut name = conversion_stem.to_os_string();
    name.push(".");
    name.push(ext);
    rel.with_file_name(name)
}

/// Checks and fixes every file of `dir` into `outdir`. `cancel` stops the run between files
/// and kills running video work; `on` sees progress (from several threads).
pub fn run_dir(
    dir: &Path,
    outdir: &Path,
    opts: &BatchOptions,
    cancel: &AtomicBool,
    on: &(dyn Fn(BatchEvent<'_>) + Sync),
) -> Result<BatchReport, BatchError> {
    let start = Instant::now();
    let (dir_c, _) = check_dirs(dir, outdir)?;
    let mut files =
        walk::walk(&dir_c, opts.hidden).map_err(|e| BatchError::Io(format!("listing {}: {e}", dir.display())))?;
    // Before sharding, so every shard names outputs the same way.
    let stems = conversion_stems(&files.iter().map(|f| f.rel.clone()).collect::<Vec<_>>());
    if let Some((k, n)) = opts.shard {
        files.retain(|f| walk::in_shard(&f.rel, k, n));
    }
    if !opts.dry_run {
        std::fs::create_dir_all(outdir).map_err(|e| BatchError::Io(format!("creating {}: {e}", outdir.display())))?;
    }
    let state = State::load(outdir);
    let budget = MemoryBudget::new(opts.max_memory.unwrap_or_else(default_max_memory));
    on(BatchEvent::Listed { total: files.len() });
    let run = Run { outdir, opts, state: &state, budget: &budget };
    let mut items = crate::pool::map(&files, opts.jobs, |worker, _, f| {
        let item = if cancel.load(Ordering::SeqCst) {
            cancelled_item(&f.rel, &f.path)
        } else if let Some(problem) = &f.problem {
            // Listed, not read: a folder that cannot be listed fails (the run goes on), a
            // FIFO or socket is no media.
            let mut item = new_item(&f.rel, 0);
            item.reason = Some(problem.clone());
            if !problem.starts_with("cannot list") {
                item.status = ItemStatus::NotMedia;
            }
            item
        } else {
            on(BatchEvent::Started { worker, input: &f.rel });
            let progress = |p: fix::Progress| on(BatchEvent::Progress { worker, progress: p });
            let ctl = Control { progress: Some(&progress), cancel: Some(cancel) };
            let stem = stems.get(&f.rel).map(|s| s.as_os_str()).unwrap_or_default();
            process(&f.rel, &f.path, &run, ctl, stem)
        };
        on(BatchEvent::Finished { worker, item: &item });
        item
    });

    for it in &mut items {
        it.output_path_bytes = it.output.as_deref().and_then(path_bytes);
    }
    let mut summary = Summary { inputs: items.len(), ..Summary::default() };
    for it in &items {
        summary.bytes_in += it.input_bytes;
        summary.bytes_out += it.output_bytes.unwrap_or(0);
        summary.skipped += usize::from(it.skipped);
        match it.status {
            ItemStatus::Compliant => summary.compliant += 1,
            ItemStatus::Fixed => summary.fixed += 1,
            ItemStatus::Unfixable => summary.unfixable += 1,
            ItemStatus::NotMedia => summary.not_media += 1,
            ItemStatus::Failed => summary.failed += 1,
            ItemStatus::Planned => summary.planned += 1,
            ItemStatus::Cancelled => summary.cancelled += 1,
        }
    }
    Ok(BatchReport {
        input_dir: dir.to_path_buf(),
        output_dir: outdir.to_path_buf(),
        summary,
        elapsed_s: start.elapsed().as_secs_f64(),
        items,
    })
}

/// A fresh entry for `rel` (status `failed` until something better is known).
fn new_item(rel: &Path, input_bytes: u64) -> ItemReport {
    ItemReport {
        input: rel.to_path_buf(),
        path_bytes: path_bytes(rel),
        kind: Kind::Unknown,
        status: ItemStatus::Failed,
        skipped: false,
        findings: Vec::new(),
        changes: Vec::new(),
        plan: None,
        output: None,
        output_path_bytes: None,
        reason: None,
        input_bytes,
        output_bytes: None,
    }
}

fn cancelled_item(rel: &Path, path: &Path) -> ItemReport {
    let mut item = new_item(rel, std::fs::metadata(path).map_or(0, |m| m.len()));
    item.status = ItemStatus::Cancelled;
    item.reason = Some("stopped before it was done".into());
    item
}

impl ItemStatus {
    /// The name used in reports and the state file (the serde name, written once).
    fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// A finished status read back from the state file (`None` for one a re-run must redo).
    fn finished(name: &str) -> Option<ItemStatus> {
        let s: ItemStatus = serde_json::from_value(serde_json::Value::String(name.to_string())).ok()?;
        matches!(s, ItemStatus::Compliant | ItemStatus::Fixed | ItemStatus::Unfixable | ItemStatus::NotMedia)
            .then_some(s)
    }
}

/// What every input of a run shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    outdir: &'a Path,
    opts: &'a BatchOptions,
    state: &'a State,
    budget: &'a MemoryBudget,
}

/// One input: probe, check, then copy, fix or list it.
fn process(rel: &Path, path: &Path, run: &Run<'_>, ctl: Control<'_>, conversion_stem: &std::ffi::OsStr) -> ItemReport {
    let Run { outdir, opts, state, budget } = *run;
    let mut item = new_item(rel, std::fs::metadata(path).map_or(0, |m| m.len()));
    if !opts.dry_run {
        if let Some(done) = state.verified(rel, path, outdir) {
            if let Some(st) = ItemStatus::finished(&done.status) {
                item.status = st;
                item.skipped = true;
                item.output = done.output.clone();
                item.output_bytes = done.output_size;
                item.reason = done.reason.clone();
                item.changes = done.changes.clone();
                return item;
            }
        }
    }
    let facts = match probe(path) {
        Ok(f) => f,
        Err(e) => {
            item.reason = Some(format!("cannot read it: {e}"));
            return item;
        }
    };
    item.kind = facts.kind;
    if facts.kind == Kind::Unknown {
        item.status = ItemStatus::NotMedia;
        item.reason = Some(format!("content is {}, not an image or a video", facts.format.name()));
        item.findings = check(&facts, Role::Image, &opts.fix.limits);
        return finish(item, path, state, opts);
    }
    let role = Role::for_facts(&facts);
    item.findings = check(&facts, role, &opts.fix.limits);
    if is_compliant(&item.findings) {
        let out_rel = rel.to_path_buf();
        if opts.dry_run {
            item.status = ItemStatus::Planned;
            item.output = Some(out_rel);
            item.plan = Some(fix::plan(&facts, role, &opts.fix));
            return item;
        }
        match place_copy(path, &outdir.join(&out_rel), opts.link) {
            Ok(n) => {
                item.status = ItemStatus::Compliant;
                item.output = Some(out_rel);
                item.output_bytes = Some(n);
                item.changes.push(if opts.link { "hard-linked".into() } else { "copied".into() });
            }
            Err(e) => item.reason = Some(e),
        }
        return finish(item, path, state, opts);
    }
    if facts.kind == Kind::Video && facts.headers_incomplete {
        // Only FFmpeg reads this container, and its helper is missing. Not a verdict on the
        // input: the run ends with exit status 2 and the install hint.
        let hint = fix::FixError::Setup(crate::av::AvError::Missing.to_string());
        item.reason = Some(format!("cannot measure the video: {hint}: install it with `cargo install --path .`"));
        return item;
    }
    // Planned once, from the facts already probed; executed as planned.
    let planned = fix::Planned::new(path, facts, role, &opts.fix);
    let plan = &planned.plan;
    if let Some(why) = &plan.unfixable {
        item.status = ItemStatus::Unfixable;
        item.reason = Some(why.clone());
        return finish(item, path, state, opts);
    }
    let out_rel = output_rel(rel, plan, conversion_stem);
    if opts.dry_run {
        item.status = ItemStatus::Planned;
        item.output = Some(out_rel);
        item.plan = Some(planned.plan);
        return item;
    }
    let out = outdir.join(&out_rel);
    if let Some(parent) = out.parent() {
        if let Err(e) = std::fs::create_dir_all(parent) {
            item.reason = Some(format!("creating {}: {e}", parent.display()));
            return item;
        }
    }
    // Held while the fix runs: the estimate from the header (an image over its own budget is
    // refused by the fix itself, before it allocates).
    let need = match planned.facts.kind {
        Kind::Video => VIDEO_FIX_MEMORY,
        _ => fix::fix_memory_estimate(&planned.facts)
            .unwrap_or(0)
            .min(opts.fix.max_decode_bytes.unwrap_or(fix::DEFAULT_MAX_DECODE_BYTES)),
    };
    let _reserved = budget.reserve(need);
    match fix::execute(&planned, &out, true, ctl) {
        Ok(o) => {
            item.status = ItemStatus::Fixed;
            item.changes = o.changes;
            item.output_bytes = std::fs::metadata(&out).ok().map(|m| m.len());
            item.output = Some(out_rel);
        }
        Err(FixError::Cancelled) => {
            item.status = ItemStatus::Cancelled;
            item.reason = Some("stopped before it was done".into());
            return item;
        }
        Err(FixError::Unfixable(why)) => {
            item.status = ItemStatus::Unfixable;
            item.reason = Some(why);
        }
        Err(e) => item.reason = Some(e.to_string()),
    }
    finish(item, path, state, opts)
}

/// Records a finished input in the state file (not failures: they are tried again).
fn finish(item: ItemReport, path: &Path, state: &State, opts: &BatchOptions) -> ItemReport {
    if opts.dry_run || matches!(item.status, ItemStatus::Failed | ItemStatus::Cancelled | ItemStatus::Planned) {
        return item;
    }
    let Some((input_size, input_mtime_ns)) = state::input_stamp(path) else { return item };
    let out = item.output.as_ref().map(|o| state_out_path(state, o));
    let output_sha256 = out.as_ref().and_then(|p| state::sha256_file(p).ok());
    let done = Done {
        rel: item.input.clone(),
        input_size,
        input_mtime_ns,
        status: item.status.name(),
        output: item.output.clone(),
        output_size: item.output_bytes,
        output_sha256,
        reason: item.reason.clone(),
        changes: item.changes.clone(),
    };
    let _ = state.record(&done);
    item
}

fn state_out_path(state: &State, rel: &Path) -> PathBuf {
    state.outdir().join(rel)
}

/// Copies (or hard-links) `src` to `dst` through a temporary name beside it, so a half-copied
/// file never carries the final name.
fn place_copy(src: &Path, dst: &Path, link: bool) -> Result<u64, String> {
    let dir = crate::fsutil::parent_dir(dst);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = crate::fsutil::temp_beside(dst).map_err(|e| format!("writing in {}: {e}", dir.display()))?;
    let tmp_path = tmp.into_temp_path();
    if link {
        std::fs::remove_file(&tmp_path).map_err(|e| e.to_string())?;
        std::fs::hard_link(src, &tmp_path).map_err(|e| format!("hard-linking {}: {e}", src.display()))?;
    } else {
        std::fs::copy(src, &tmp_path).map_err(|e| format!("copying {}: {e}", src.display()))?;
        std::fs::File::open(&tmp_path).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    }
    tmp_path.persist(dst).map_err(|e| format!("writing {}: {}", dst.display(), e.error))?;
    std::fs::metadata(dst).map(|m| m.len()).map_err(|e| e.to_string())
}
