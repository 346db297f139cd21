//! `batch`: flags → a folder or manifest run → progress, summary, report, exit code.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use wanprep::batch::manifest::{run_manifest, ManifestOptions, ManifestReport, PairStatus};
use wanprep::batch::{run_dir, BatchEvent, BatchOptions, BatchReport, ItemStatus};
use wanprep::client::Config;
use wanprep::fix::{AspectMode, FixSpec};

use super::args::{AspectArg, BatchArgs, ExtendArg};
use super::render::sanitize;
use super::{parse_limits, Outcome};

fn parse_shard(s: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("--shard takes K/N with 1 <= K <= N (e.g. 1/4), got '{s}'");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn fix_spec(a: &BatchArgs) -> anyhow::Result<FixSpec> {
    let mut spec = FixSpec::default();
    spec.limits = parse_limits(&a.limit)?;
    if a.submit {
        // What is sent must meet the API's documented limits, whatever --limit loosened.
        spec.limits = spec.limits.within_api();
    }
    spec.aspect = match a.aspect {
        AspectArg::Pad => AspectMode::Pad,
        AspectArg::Crop => AspectMode::Crop,
    };
    spec.anchor = a.anchor.into();
    spec.background = Some(super::parse_hex_color(&a.background, "--background")?);
    spec.extend_loop = a.extend == Some(ExtendArg::Loop);
    spec.max_decode_bytes = Some(a.max_decode_memory);
    Ok(spec)
}

fn write_report(dest: &Path, doc: &impl serde::Serialize) -> anyhow::Result<()> {
    if dest == Path::new("-") {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, doc)?;
        writeln!(out)?;
        return Ok(());
    }
    // Written whole, then renamed: a reader never sees half a report.
    let mut text = serde_json::to_vec_pretty(doc)?;
    text.push(b'\n');
    wanprep::write_atomic(dest, &text)?;
    Ok(())
}

pub fn run(a: BatchArgs) -> anyhow::Result<Outcome> {
    let cancel = super::remote::interrupt_flag();
    if let Some(manifest) = a.manifest.clone() {
        return run_pairs(&a, &manifest, &cancel);
    }
    let dir = a.dir.clone().expect("clap requires DIR without --manifest");
    let opts = BatchOptions {
        jobs: a.jobs,
        dry_run: a.dry_run,
        link: a.link,
        hidden: a.hidden,
        shard: a.shard.as_deref().map(parse_shard).transpose()?,
        fix: fix_spec(&a)?,
        max_memory: a.max_memory,
    };
    let quiet_stdout = a.json.as_deref() == Some(Path::new("-"));
    let display = Display::new(!quiet_stdout && io::stderr().is_terminal());
    let report = match run_dir(&dir, &a.output, &opts, &cancel, &|e| display.on(e)) {
        Ok(r) => r,
        Err(wanprep::batch::BatchError::Usage(m)) => {
            display.finish();
            eprintln!("wanprep batch: {}", sanitize(&m));
            return Ok(Outcome::Unusable);
        }
        Err(e) => {
            display.finish();
            eprintln!("wanprep batch: {}", sanitize(&e.to_string()));
            return Ok(Outcome::Unusable);
        }
    };
    display.finish();
    if let Some(dest) = &a.json {
        write_report(dest, &report)?;
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

/// Progress on a terminal: an overall bar and a line per running job.
struct Display {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    workers: Mutex<Vec<ProgressBar>>,
}

impl Display {
    fn new(enabled: bool) -> Display {
        if !enabled {
            return Display { multi: None, overall: None, workers: Mutex::new(Vec::new()) };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{wide_bar} {pos}/{len} files [{elapsed} < {eta}]").expect("valid template"),
        );
        Display { multi: Some(multi), overall: Some(overall), workers: Mutex::new(Vec::new()) }
    }

    fn worker(&self, i: usize) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut w = self.workers.lock().ok()?;
        while w.len() <= i {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(150));
            w.push(b);
        }
        Some(w[i].clone())
    }

    fn on(&self, e: BatchEvent<'_>) {
        match e {
            BatchEvent::Listed { total } => {
                if let Some(o) = &self.overall {
                    o.set_length(total as u64);
                }
            }
            BatchEvent::Started { worker, input } => {
                if let Some(b) = self.worker(worker) {
                    b.set_message(sanitize(&input.display().to_string()));
                }
            }
            BatchEvent::Progress { worker, progress } => {
                if let (Some(b), Some(t)) = (self.worker(worker), progress.total_s) {
                    let msg = b.message();
                    let base = msg.split(" · ").next().unwrap_or("").to_string();
                    b.set_message(format!("{base} · {:.0}%", (progress.done_s / t * 100.0).clamp(0.0, 100.0)));
                }
            }
            BatchEvent::Finished { worker, item } => {
                if let Some(o) = &self.overall {
                    o.inc(1);
                }
                if let Some(b) = self.worker(worker) {
                    b.set_message("");
                }
                if self.multi.is_none() {
                    return;
                }
                if matches!(item.status, ItemStatus::Unfixable | ItemStatus::Failed | ItemStatus::NotMedia) {
                    if let Some(m) = &self.multi {
                        let _ = m.println(format!(
                            "{:?} {}: {}",
                            item.status,
                            sanitize(&item.input.display().to_string()),
                            sanitize(item.reason.as_deref().unwrap_or(""))
                        ));
                    }
                }
            }
        }
    }

    fn finish(&self) {
        if let Ok(w) = self.workers.lock() {
            for b in w.iter() {
                b.finish_and_clear();
            }
        }
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
    }
}

fn print_summary(r: &BatchReport) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for it in &r.items {
        let what = match it.status {
            ItemStatus::Compliant | ItemStatus::Fixed | ItemStatus::Planned if it.skipped => "done earlier",
            ItemStatus::Compliant => "compliant",
            ItemStatus::Fixed => "fixed",
            ItemStatus::Unfixable => "UNFIXABLE",
            ItemStatus::NotMedia => "NOT MEDIA",
            ItemStatus::Failed => "FAILED",
            ItemStatus::Planned => "plan",
            ItemStatus::Cancelled => "cancelled",
        };
        let detail = match (&it.output, &it.reason) {
            (_, Some(r)) => r.clone(),
            (Some(o), None) if !it.changes.is_empty() => format!("-> {} ({})", o.display(), it.changes.join("; ")),
            (Some(o), None) => format!("-> {}", o.display()),
            _ => String::new(),
        };
        writeln!(out, "{what:>12}  {}  {}", sanitize(&it.input.display().to_string()), sanitize(&detail))?;
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
    manifest: &Path,
    cancel: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Outcome> {
    if !(a.poll_interval.is_finite() && a.poll_interval > 0.0) {
        anyhow::bail!("--poll-interval takes a positive number of seconds");
    }
    let opts = ManifestOptions {
        jobs: a.jobs,
        fix: fix_spec(a)?,
        max_in_flight: a.max_in_flight.max(1),
        poll_interval: Duration::from_secs_f64(a.poll_interval),
        force: a.force,
    };
    let mut client = if a.submit {
        let config = Config::from_env(&super::remote::overrides(&a.service))?;
        Some(super::remote::open_client(config, &a.service)?)
    } else {
        None
    };
    let quiet_stdout = a.json.as_deref() == Some(Path::new("-"));
    let mut on = |p: &wanprep::batch::manifest::PairReport| {
        if !quiet_stdout {
            eprintln!(
                "line {}: {:?} {}{}",
                p.pair.line,
                p.status,
                p.task_id.as_deref().map(sanitize).unwrap_or_default(),
                p.error.as_deref().map(|e| format!(" ({})", sanitize(e))).unwrap_or_default()
            );
        }
    };
    let report = match run_manifest(manifest, &a.output, &opts, client.as_mut(), cancel, &mut on) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wanprep batch: {}", sanitize(&e.to_string()));
            return Ok(Outcome::Unusable);
        }
    };
    if let Some(dest) = &a.json {
        write_report(dest, &report)?;
    }
    if !quiet_stdout {
        print_pairs(&report)?;
    }
    let interrupted = cancel.load(Ordering::SeqCst);
    Ok(if interrupted {
        Outcome::Unusable
    } else if report.all_done(a.submit) {
        Outcome::Ok
    } else {
        Outcome::NonCompliant
    })
}

fn print_pairs(r: &ManifestReport) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for p in &r.pairs {
        let status = match p.status {
            PairStatus::Ready => "ready",
            PairStatus::Unfixable => "UNFIXABLE",
            PairStatus::Submitted => "submitted",
            PairStatus::Downloaded => "downloaded",
            PairStatus::Failed => "FAILED",
        };
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
    Ok(())
}
