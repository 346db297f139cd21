//! `batch`: flags → a folder or manifest run → progress, summary, report, exit code.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use wanprep::batch::manifest::{run_manifest, ManifestOptions, ManifestReport, PairStatus};
use wanprep::batch::{run_dir, BatchError, BatchEvent, BatchOptions, BatchReport, ItemStatus};

use super::args::BatchArgs;
use super::progress::{Progress, Style};
use super::render::{self, sanitize};
use super::{settings, signal, Outcome};

/// Where the report goes: `--report FILE`, `--json` (stdout), or the older `--json FILE`.
fn report_destination(a: &mut BatchArgs) -> anyhow::Result<Option<PathBuf>> {
    if let (Some(j), Some(_)) = (&a.json, &a.report) {
        if j.as_path() != Path::new("-") {
            anyhow::bail!("--json FILE and --report FILE both name a report file; use --report FILE");
        }
    }
    match a.json.take() {
        // `batch --json DIR -o OUT`: the folder was read as --json's value.
        Some(j) if a.dir.is_none() && a.manifest.is_none() && j.is_dir() => {
            a.dir = Some(j);
            a.json = Some(PathBuf::from("-"));
        }
        Some(j) if j.as_path() != Path::new("-") => {
            eprintln!(
                "wanprep: note: `--json FILE` is deprecated; use `--report FILE` (`--json` alone prints to stdout)"
            );
            a.report.get_or_insert(j);
        }
        other => a.json = other,
    }
    if a.dir.is_none() && a.manifest.is_none() {
        anyhow::bail!("batch: give a DIR to process, or --manifest PAIRS (see --help)");
    }
    Ok(match (&a.json, &a.report) {
        (Some(_), None) => Some(PathBuf::from("-")),
        (_, r) => r.clone(),
    })
}

fn write_report(dest: &Path, doc: &impl serde::Serialize) -> anyhow::Result<()> {
    if dest == Path::new("-") {
        return super::emit_json(doc);
    }
    // Written whole, then renamed: a reader never sees half a report.
    let mut text = serde_json::to_vec_pretty(doc)?;
    text.push(b'\n');
    wanprep::internals::write_atomic(dest, &text)?;
    Ok(())
}

pub fn run(mut a: BatchArgs) -> anyhow::Result<Outcome> {
    let report_to = report_destination(&mut a)?;
    let cancel = signal::interrupt_flag();
    let mut spec = settings::fix_spec(&a.fix)?;
    if a.submit {
        // What is sent must meet the API's documented limits, whatever --limit loosened.
        spec.limits = spec.limits.within_api();
    }
    if let Some(manifest) = a.manifest.clone() {
        return run_pairs(&a, spec, &manifest, report_to.as_deref(), &cancel);
    }
    let dir = a.dir.clone().expect("clap requires DIR without --manifest");
    let opts = BatchOptions {
        jobs: a.jobs,
        dry_run: a.dry_run,
        link: a.link,
        hidden: a.hidden,
        shard: a.shard.as_deref().map(settings::shard).transpose()?,
        fix: spec,
        max_memory: a.max_memory,
        quality: a.quality,
    };
    let quiet_stdout = report_to.as_deref() == Some(Path::new("-"));
    let progress = Progress::new(Style::Items("files"), quiet_stdout, false, None);
    let result = run_dir(&dir, &a.output, &opts, &cancel, &|e| on_event(&progress, e));
    progress.finish();
    let report = result.map_err(batch_error)?;
    if let Some(dest) = &report_to {
        write_report(dest, &report)?;
    }
    if let Some(dest) = &a.html {
        let thumbs = wanprep::report::html::batch_thumbnails(&report, a.jobs);
        wanprep::internals::write_atomic(dest, wanprep::report::html::batch_page(&report, &thumbs).as_bytes())?;
    }
    if !quiet_stdout {
        print_summary(&report)?;
    }
    Ok(if report.summary.failed > 0 || report.summary.cancelled > 0 {
        Outcome::Unusable
    } else if report.all_compliant() {
        Outcome::Ok
    } else {
        Outcome::NonCompliant
    })
}

/// The run's events, on the one progress display.
fn on_event(p: &Progress, e: BatchEvent<'_>) {
    match e {
        BatchEvent::Listed { total } => p.set_total(total as u64),
        BatchEvent::Started { worker, input } => p.worker(worker, |_| sanitize(&input.display().to_string())),
        BatchEvent::Progress { worker, progress } => {
            if let Some(t) = progress.total_s.filter(|t| *t > 0.0) {
                p.worker(worker, |msg| {
                    let base = msg.split(" · ").next().unwrap_or("");
                    format!("{base} · {:.0}%", (progress.done_s / t * 100.0).clamp(0.0, 100.0))
                });
            }
        }
        BatchEvent::Finished { worker, item } => {
            p.inc();
            p.worker(worker, |_| String::new());
            if p.is_live() && matches!(item.status, ItemStatus::Unfixable | ItemStatus::Failed | ItemStatus::NotMedia) {
                // The progress display is on stderr: coloured when stderr is a terminal.
                let st = render::Style::new(settings::color_for_stderr());
                p.line(&format!(
                    "{} {}: {}",
                    st.red(status_word(item)),
                    sanitize(&item.input.display().to_string()),
                    sanitize(item.reason.as_deref().unwrap_or(""))
                ));
            }
        }
    }
}

/// A run that could not start, for people: the library's sentence and the flag that changes it.
fn batch_error(e: BatchError) -> anyhow::Error {
    match &e {
        BatchError::OutputExists { .. } => {
            anyhow::anyhow!("batch: {e}: pass --force to replace it, or name another output")
        }
        _ => anyhow::anyhow!("batch: {e}"),
    }
}

/// An item's status in words.
fn status_word(it: &wanprep::batch::ItemReport) -> &'static str {
    match it.status {
        ItemStatus::Compliant | ItemStatus::Fixed | ItemStatus::Planned if it.skipped => "done earlier",
        ItemStatus::Compliant => "compliant",
        ItemStatus::Fixed => "fixed",
        ItemStatus::Unfixable => "UNFIXABLE",
        ItemStatus::NotMedia => "NOT MEDIA",
        ItemStatus::Failed => "FAILED",
        ItemStatus::Planned => "plan",
        ItemStatus::Cancelled => "cancelled",
    }
}

fn print_summary(r: &BatchReport) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let st = render::Style::new(settings::color());
    for it in &r.inputs {
        let word = status_word(it);
        let padded = format!("{word:>12}");
        let what = match it.status {
            ItemStatus::Unfixable | ItemStatus::NotMedia | ItemStatus::Failed => st.red(&padded),
            ItemStatus::Cancelled => st.yellow(&padded),
            ItemStatus::Planned => st.dim(&padded),
            _ => st.green(&padded),
        };
        let detail = match (&it.output, &it.reason) {
            (_, Some(r)) => r.clone(),
            (Some(o), None) if !it.changes.is_empty() => format!("-> {} ({})", o.display(), it.changes.join("; ")),
            (Some(o), None) => format!("-> {}", o.display()),
            _ => String::new(),
        };
        writeln!(out, "{what}  {}  {}", sanitize(&it.input.display().to_string()), sanitize(&detail))?;
    }
    let s = &r.summary;
    writeln!(out)?;
    writeln!(out, "  inputs      {:>7}", s.inputs)?;
    writeln!(out, "  compliant   {:>7}", s.compliant)?;
    writeln!(out, "  fixed       {:>7}", s.fixed)?;
    if s.planned > 0 {
        writeln!(out, "  planned     {:>7}   (dry run: nothing written)", s.planned)?;
    }
    writeln!(out, "  unfixable   {:>7}", s.unfixable)?;
    writeln!(out, "  not media   {:>7}", s.not_media)?;
    writeln!(out, "  failed      {:>7}", s.failed)?;
    if s.cancelled > 0 {
        writeln!(out, "  cancelled   {:>7}   (run the same command again to go on)", s.cancelled)?;
    }
    writeln!(out, "  skipped     {:>7}   (finished by an earlier run, outputs verified)", s.skipped)?;
    writeln!(
        out,
        "  time        {:>7.1} s, {:.1} MB in, {:.1} MB out",
        r.elapsed_s,
        s.bytes_in as f64 / 1e6,
        s.bytes_out as f64 / 1e6
    )?;
    Ok(())
}

fn run_pairs(
    a: &BatchArgs,
    fix: wanprep::fix::FixSpec,
    manifest: &Path,
    report_to: Option<&Path>,
    cancel: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Outcome> {
    if !(a.poll_interval.is_finite() && a.poll_interval > 0.0) {
        anyhow::bail!("--poll-interval takes a positive number of seconds");
    }
    let opts = ManifestOptions {
        jobs: a.jobs,
        fix,
        max_in_flight: a.max_in_flight.max(1),
        poll_interval: Duration::from_secs_f64(a.poll_interval),
        force: a.force,
        dry_run: a.dry_run,
        new_task: a.new,
        cancel_on_interrupt: a.cancel_on_interrupt,
        prices: settings::prices(a.price.as_deref())?,
        quality: a.quality,
    };
    let mut client = if a.submit && !a.dry_run { Some(super::submit::open_client(&a.service)?) } else { None };
    let state_dir = client.as_ref().and_then(|c| c.journal().path().parent().map(Path::to_path_buf));
    let quiet_stdout = report_to == Some(Path::new("-"));
    let mut on = |p: &wanprep::batch::manifest::PairReport| {
        if !quiet_stdout {
            eprintln!(
                "line {}: {} {}{}",
                p.pair.line,
                pair_word(p.status),
                p.task_id.as_deref().map(sanitize).unwrap_or_default(),
                p.error.as_deref().map(|e| format!(" ({})", sanitize(e))).unwrap_or_default()
            );
        }
    };
    let report = run_manifest(manifest, &a.output, &opts, client.as_mut(), cancel, &mut on).map_err(batch_error)?;
    if let Some(dest) = report_to {
        write_report(dest, &report)?;
    }
    if !quiet_stdout {
        print_pairs(&report, a.dry_run)?;
    }
    if !report.left_pending.is_empty() {
        // Asked nothing: the exact line that stops paying for what this run leaves queued.
        eprintln!(
            "wanprep: interrupted; {} task(s) are still queued (PENDING) and will run and be billed unless canceled:",
            report.left_pending.len()
        );
        let dir =
            state_dir.map(|d| format!(" --state-dir {}", shell_word(&d.display().to_string()))).unwrap_or_default();
        eprintln!(
            "  wanprep cancel{dir} {}",
            report.left_pending.iter().map(|t| shell_word(t)).collect::<Vec<_>>().join(" ")
        );
        eprintln!("  (running the same batch again instead resumes them and downloads their results)");
    }
    if !report.canceled.is_empty() {
        eprintln!(
            "wanprep: interrupted; canceled {} queued task(s): {}",
            report.canceled.len(),
            report.canceled.join(" ")
        );
    }
    let interrupted = cancel.load(Ordering::SeqCst);
    Ok(if interrupted {
        Outcome::Unusable
    } else if report.all_done(a.submit && !a.dry_run) {
        Outcome::Ok
    } else {
        Outcome::NonCompliant
    })
}

/// A word as the shell reads it, safe to print on a terminal.
fn shell_word(s: &str) -> String {
    sanitize(&wanprep::shellword::quote(s))
}

/// A pair's status in words.
fn pair_word(s: PairStatus) -> &'static str {
    match s {
        PairStatus::Ready => "ready",
        PairStatus::Unfixable => "UNFIXABLE",
        PairStatus::Submitted => "submitted",
        PairStatus::Downloaded => "downloaded",
        PairStatus::Failed => "FAILED",
    }
}

fn print_pairs(r: &ManifestReport, dry_run: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for p in &r.pairs {
        let status = pair_word(p.status);
        let detail =
            p.error.clone().or_else(|| p.output.as_ref().map(|o| format!("-> {}", o.display()))).unwrap_or_default();
        writeln!(
            out,
            "{status:>11}  line {}: {} + {}  {}{}",
            p.pair.line,
            sanitize(&p.pair.image),
            sanitize(&p.pair.video),
            p.task_id.as_deref().map(|t| format!("task {} ", sanitize(t))).unwrap_or_default(),
            sanitize(&detail)
        )?;
    }
    let s = &r.summary;
    writeln!(out)?;
    writeln!(
        out,
        "  pairs {}  ready {}  unfixable {}  submitted {}  downloaded {}  failed {}  ({:.1} s)",
        s.pairs, s.ready, s.unfixable, s.submitted, s.downloaded, s.failed, r.elapsed_s
    )?;
    if !r.estimate.modes.is_empty() {
        let what = if dry_run { "dry run, nothing sent" } else { "an estimate" };
        writeln!(
            out,
            "  estimate: {} of output ({what}: the output lasts as long as the reference video)",
            r.estimate.line()
        )?;
    }
    if !r.generated.modes.is_empty() {
        writeln!(out, "  generated: {} (the service's usage figures)", r.generated.line())?;
    }
    Ok(())
}
