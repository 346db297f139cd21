//! Folder runs: every file of a folder probed, checked, and copied, fixed or listed into the
//! same tree in the output folder, in parallel and resumably.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::budget::{default_max_memory, MemoryBudget, VIDEO_FIX_MEMORY};
use super::naming::{conversion_stems, output_rel};
use super::state::{self, Done, State};
use super::{path_bytes, walk, BatchError, BatchEvent, BatchOptions, BatchReport, ItemReport, ItemStatus, Summary};
use crate::fix::{self, Control, FixError};
use crate::probe::{probe, Kind};
use crate::rules::{check, is_compliant, Role};

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
        walk::walk(&dir_c, opts.hidden).map_err(|e| BatchError::io(format!("listing {}", dir.display()), e))?;
    // Before sharding, so every shard names outputs the same way.
    let stems = conversion_stems(&files.iter().map(|f| f.rel.clone()).collect::<Vec<_>>());
    if let Some((k, n)) = opts.shard {
        files.retain(|f| walk::in_shard(&f.rel, k, n));
    }
    if !opts.dry_run {
        std::fs::create_dir_all(outdir).map_err(|e| BatchError::io(format!("creating {}", outdir.display()), e))?;
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
        inputs: items,
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
    if opts.quality {
        item.findings.extend(crate::inspect::quality_findings(path, &facts, role));
    }
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
