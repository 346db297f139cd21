//! `submit`, `status`, `wait` and `tasks`: flags → client calls → messages and exit codes.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use wanprep::client::{
    self, Client, Config, ConfigOverrides, DownloadError, Event, Job, Mode, SubmitError, Submitted, TaskResponse,
    TaskStatus, TransportError, WaitError, WaitOptions,
};
use wanprep::{CheckOptions, ProbeOptions};

use super::args::{PollArgs, ServiceArgs, StatusArgs, SubmitArgs, TasksArgs, WaitArgs};
use super::render::sanitize;
use super::{parse_limits, Outcome};

pub(crate) fn overrides(s: &ServiceArgs) -> ConfigOverrides {
    ConfigOverrides {
        api_key_file: s.api_key_file.clone(),
        region: s.region.clone(),
        workspace: s.workspace.clone(),
        state_dir: s.state_dir.clone(),
    }
}

fn wait_options(p: &PollArgs, cancel: Arc<AtomicBool>, delay_first: bool) -> anyhow::Result<WaitOptions> {
    if !(p.poll_interval.is_finite() && p.poll_interval > 0.0 && p.poll_interval <= 3600.0) {
        anyhow::bail!("--poll-interval takes seconds in (0, 3600], got {}", p.poll_interval);
    }
    if let Some(t) = p.timeout {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--timeout takes a positive number of seconds, got {t}");
        }
    }
    Ok(WaitOptions {
        poll_interval: Duration::from_secs_f64(p.poll_interval),
        timeout: p.timeout.map(Duration::from_secs_f64),
        cancel: Some(cancel),
        delay_first,
    })
}

/// First Ctrl-C: stop waiting (the task keeps running). Second: leave at once.
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        flag
    })
    .clone()
}

/// Progress on stderr: a spinner on a terminal, one line per change otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    last_status: Option<TaskStatus>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress { bar, start: Instant::now(), last_status: None, quiet }
    }

    fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }

    fn on(&mut self, ev: Event<'_>) {
        match ev {
            Event::UploadReused { path, .. } => self.line(&format!("reusing the earlier upload of {}", sanitize(path))),
            Event::Uploading { path } => self.set(&format!("uploading {}", sanitize(path))),
            Event::Uploaded { path, url } => self.line(&format!("uploaded {} -> {}", sanitize(path), sanitize(url))),
            Event::Throttled { error, delay } => self.line(&format!(
                "throttled ({}), sending again in {:.1} s",
                sanitize(&error.code),
                delay.as_secs_f64()
            )),
            Event::Created { task_id } => self.line(&format!("created task {}", sanitize(task_id))),
            Event::Resumed { entry } => self.line(&format!(
                "resuming task {} (submitted earlier for the same inputs; --new creates another)",
                sanitize(entry.task_id.as_deref().unwrap_or("?"))
            )),
            Event::Status { task_id, status } => {
                if self.last_status != Some(status) {
                    self.last_status = Some(status);
                    let msg = format!("task {} {status}", sanitize(task_id));
                    match &self.bar {
                        Some(b) => b.set_message(msg),
                        None if !self.quiet => {
                            eprintln!("{msg} after {:.0} s", self.start.elapsed().as_secs_f64())
                        }
                        None => {}
                    }
                }
            }
            Event::Retrying { error, delay } => self.line(&format!(
                "query failed ({}), retrying in {:.1} s",
                sanitize(&error.to_string()),
                delay.as_secs_f64()
            )),
            Event::Downloading { done, total } => {
                if let Some(b) = &self.bar {
                    let t = total.map(|t| format!(" of {:.1} MB", t as f64 / 1e6)).unwrap_or_default();
                    b.set_message(format!("downloading {:.1} MB{t}", done as f64 / 1e6));
                }
            }
        }
    }

    fn set(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => self.line(msg),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Opens the client. When the default journal folder cannot be used (a read-only HOME, say) and
/// none was asked for, the journal goes to the temporary folder, with a warning: a submit with
/// a journal that may not survive beats no submit at all.
pub(crate) fn open_client(config: Config, service: &ServiceArgs) -> anyhow::Result<Client> {
    let mut client = open_journal(config, service.state_dir.is_some())?;
    client.set_max_download(service.max_download);
    Ok(client)
}

fn open_journal(config: Config, explicit_state_dir: bool) -> anyhow::Result<Client> {
    match Client::new(config.clone()) {
        Ok(c) => Ok(c),
        Err(SubmitError::Journal(e)) if !explicit_state_dir => {
            // A private folder of this user's (0700, owned by them): one another user made
            // first, or opened to others, is refused rather than used.
            let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0);
            let fallback =
                wanprep::private_dir(&std::env::temp_dir().join(format!("wanprep-state-{uid}"))).map_err(|why| {
                    anyhow::anyhow!("{e}; the fallback journal folder is unusable: {why} (pass --state-dir)")
                })?;
            eprintln!(
                "wanprep: warning: {} ({}); using {} for the task journal (pass --state-dir to choose)",
                sanitize(&config.state_dir.display().to_string()),
                sanitize(&e.to_string()),
                sanitize(&fallback.display().to_string())
            );
            Ok(Client::new(Config { state_dir: fallback, ..config })?)
        }
        Err(e) => Err(e.into()),
    }
}

fn transport_outcome(e: &TransportError) -> Outcome {
    match e {
        TransportError::Api { error, .. } if error.http_status == 400 => Outcome::NonCompliant,
        _ => Outcome::Unusable,
    }
}

fn print_api_error(prefix: &str, e: &client::ApiError) {
    eprintln!("{prefix}: {}", sanitize(&e.to_string()));
    if let Some(h) = e.hint() {
        eprintln!("  hint: {h}");
    }
}

fn emit_json(doc: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)?;
    writeln!(out)?;
    Ok(())
}

/// An existing OUTPUT is only replaced with --force, or when the journal says it is this task's.
fn output_free(client: &Client, out: &Path, task_id: Option<&str>, force: bool) -> anyhow::Result<()> {
    if force || !out.exists() {
        return Ok(());
    }
    if let Some(t) = task_id {
        if client.saved_output(t).as_deref() == Some(out) {
            return Ok(());
        }
    }
    anyhow::bail!("{} exists; pass --force to replace it, or -o another path", out.display())
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<Outcome> {
    let config = Config::from_env(&overrides(&a.service))?;
    let cancel = interrupt_flag();
    let wait_opts = wait_options(&a.poll, cancel.clone(), true)?;
    // Whatever --limit loosened, nothing is sent that breaks the API's documented limits.
    let limits = parse_limits(&a.limit)?.within_api();
    let mode = Mode::parse(&a.mode).ok_or_else(|| anyhow::anyhow!("--mode is wan-std or wan-pro"))?;
    let job = Job {
        image: a.image.clone(),
        video: a.video.clone(),
        mode,
        watermark: a.watermark,
        check_image: !a.no_check_image,
    };
    let out = a.output.clone().unwrap_or_else(|| job.default_output());

    let report = client::preflight(
        &job,
        &CheckOptions { probe: ProbeOptions::new(), limits, jobs: 2, http: Default::default() },
    );
    if !report.compliant {
        if a.json {
            emit_json(&json!({"submitted": false, "check": report}))?;
        } else {
            eprintln!("wanprep submit: not sent; the inputs would be rejected:");
            super::render::check_report(&mut io::stderr().lock(), &report, false)?;
        }
        return Ok(if report.any_unreadable() { Outcome::Unusable } else { Outcome::NonCompliant });
    }

    let mut client = open_client(config, &a.service)?;
    if a.wait && !a.new {
        // Refuse before paying for a task whose result could not be saved — unless OUTPUT is
        // the saved result of the very task this run resumes.
        let resumed = client.existing(&job)?.and_then(|e| e.task_id);
        output_free(&client, &out, resumed.as_deref(), a.force)?;
    } else if a.wait {
        output_free(&client, &out, None, a.force)?;
    }
    let mut progress = Progress::new(a.json);
    let submitted = match client.submit(&job, a.new, &mut |e| progress.on(e)) {
        Ok(s) => s,
        Err(e) => {
            progress.finish();
            let outcome = match &e {
                SubmitError::Refused(api) => {
                    print_api_error("wanprep submit: the service refused the task", api);
                    if api.http_status == 400 {
                        Outcome::NonCompliant
                    } else {
                        Outcome::Unusable
                    }
                }
                other => {
                    eprintln!("wanprep submit: {}", sanitize(&other.to_string()));
                    if let Some(h) = other.api_error().and_then(|e| e.hint()) {
                        eprintln!("  hint: {h}");
                    }
                    Outcome::Unusable
                }
            };
            if a.json {
                emit_json(&json!({"submitted": false, "error": e.to_string()}))?;
            }
            return Ok(outcome);
        }
    };
    let task_id = submitted.task_id().to_string();
    let resumed = matches!(submitted, Submitted::Resumed(_));
    if client.recorded_output(&task_id).is_none() {
        let _ = client.plan_output(&task_id, &out);
    }
    if !a.wait {
        progress.finish();
        if a.json {
            emit_json(&json!({"submitted": true, "task_id": task_id, "resumed": resumed}))?;
        } else {
            println!("task {} {}", sanitize(&task_id), if resumed { "resumed (already submitted)" } else { "created" });
            println!(
                "wait for it with: wanprep wait {} -o {}",
                sanitize(&task_id),
                sanitize(&out.display().to_string())
            );
        }
        return Ok(Outcome::Ok);
    }
    finish_task(&mut client, &task_id, &out, a.force, &wait_opts, &cancel, progress, a.json, resumed)
}

#[allow(clippy::too_many_arguments)]
fn finish_task(
    client: &mut Client,
    task_id: &str,
    out: &Path,
    force: bool,
    wait_opts: &WaitOptions,
    cancel: &Arc<AtomicBool>,
    mut progress: Progress,
    json: bool,
    resumed: bool,
) -> anyhow::Result<Outcome> {
    if let Some(saved) = client.saved_output(task_id) {
        progress.finish();
        if json {
            emit_json(
                &json!({"task_id": task_id, "status": "SUCCEEDED", "output": saved, "downloaded": false, "resumed": resumed}),
            )?;
        } else {
            println!(
                "task {} SUCCEEDED; result already saved at {}",
                sanitize(task_id),
                sanitize(&saved.display().to_string())
            );
        }
        return Ok(Outcome::Ok);
    }
    let resp = match client.wait(task_id, wait_opts, &mut |e| progress.on(e)) {
        Ok(r) => r,
        Err(e) => {
            progress.finish();
            let outcome = match &e {
                WaitError::Interrupted { .. } | WaitError::Timeout { .. } => {
                    eprintln!("wanprep: {}", sanitize(&e.to_string()));
                    eprintln!(
                        "resume with: wanprep wait {} -o {}",
                        sanitize(task_id),
                        sanitize(&out.display().to_string())
                    );
                    Outcome::Unusable
                }
                WaitError::Fatal(t) => {
                    match t {
                        TransportError::Api { error, .. } => {
                            print_api_error("wanprep: querying the task failed", error)
                        }
                        other => eprintln!("wanprep: querying the task failed: {}", sanitize(&other.to_string())),
                    }
                    transport_outcome(t)
                }
            };
            if json {
                emit_json(&json!({"task_id": task_id, "error": e.to_string()}))?;
            }
            return Ok(outcome);
        }
    };
    let status = resp.status();
    if status != TaskStatus::Succeeded {
        progress.finish();
        report_unsuccessful(task_id, &resp, json)?;
        return Ok(Outcome::NonCompliant);
    }
    output_free(client, out, Some(task_id), force)?;
    let dl = client.download(task_id, &resp, out, Some(&**cancel), &mut |e| progress.on(e));
    progress.finish();
    match dl {
        Ok(d) => {
            if json {
                emit_json(&json!({
                    "task_id": task_id, "status": "SUCCEEDED", "output": d.path, "bytes": d.bytes,
                    "downloaded": true, "resumed": resumed, "usage": resp.usage, "media": d.facts,
                }))?;
            } else {
                let f = &d.facts;
                println!(
                    "task {} SUCCEEDED; saved {} ({:.1} MB, {}x{}, {:.1} s)",
                    sanitize(task_id),
                    sanitize(&d.path.display().to_string()),
                    d.bytes as f64 / 1e6,
                    f.display_width.unwrap_or(0),
                    f.display_height.unwrap_or(0),
                    f.duration_s.unwrap_or(0.0)
                );
            }
            Ok(Outcome::Ok)
        }
        Err(e) => {
            eprintln!("wanprep: {}", sanitize(&e.to_string()));
            if matches!(e, DownloadError::Interrupted | DownloadError::Network(_)) {
                eprintln!(
                    "resume with: wanprep wait {} -o {}",
                    sanitize(task_id),
                    sanitize(&out.display().to_string())
                );
            }
            if json {
                emit_json(&json!({"task_id": task_id, "status": "SUCCEEDED", "error": e.to_string()}))?;
            }
            Ok(Outcome::Unusable)
        }
    }
}

fn report_unsuccessful(task_id: &str, resp: &TaskResponse, json: bool) -> anyhow::Result<()> {
    let status = resp.status();
    let code = resp.output.code.clone().unwrap_or_default();
    let message = resp.output.message.clone().unwrap_or_default();
    if json {
        return emit_json(&json!({
            "task_id": task_id, "status": status, "code": code, "message": message, "request_id": resp.request_id,
        }));
    }
    eprintln!("task {} {status}", sanitize(task_id));
    if !code.is_empty() || !message.is_empty() {
        let e = client::ApiError { http_status: 200, code, message, request_id: resp.request_id.clone() };
        print_api_error("  reason", &e);
    }
    if status == TaskStatus::Unknown {
        eprintln!("  the task does not exist, or it expired (task ids live 24 h)");
    }
    Ok(())
}

pub fn status(a: StatusArgs) -> anyhow::Result<Outcome> {
    let client = open_client(Config::from_env(&overrides(&a.service))?, &a.service)?;
    match client.query(&a.task_id) {
        Ok((resp, raw)) => {
            if a.json {
                let mut out = io::stdout().lock();
                out.write_all(&raw)?;
                if !raw.ends_with(b"\n") {
                    writeln!(out)?;
                }
            } else {
                let o = &resp.output;
                println!("task {}: {}", sanitize(&a.task_id), resp.status());
                for (k, v) in [("submitted", &o.submit_time), ("scheduled", &o.scheduled_time), ("ended", &o.end_time)]
                {
                    if let Some(v) = v {
                        println!("  {k}: {} (UTC+8)", sanitize(v));
                    }
                }
                if let Some(url) = resp.video_url() {
                    println!("  result: {}", sanitize(&url));
                }
                if let Some(c) = &o.code {
                    let e = client::ApiError {
                        http_status: 200,
                        code: c.clone(),
                        message: o.message.clone().unwrap_or_default(),
                        request_id: resp.request_id.clone(),
                    };
                    print_api_error("  reason", &e);
                }
                if let Some(u) = &resp.usage {
                    println!("  usage: {}", sanitize(&u.to_string()));
                }
            }
            Ok(match resp.status() {
                TaskStatus::Failed | TaskStatus::Canceled | TaskStatus::Unknown => Outcome::NonCompliant,
                _ => Outcome::Ok,
            })
        }
        Err(e) => {
            match &e {
                TransportError::Api { error, .. } => print_api_error("wanprep status", error),
                other => eprintln!("wanprep status: {}", sanitize(&other.to_string())),
            }
            Ok(transport_outcome(&e))
        }
    }
}

pub fn wait(a: WaitArgs) -> anyhow::Result<Outcome> {
    let mut client = open_client(Config::from_env(&overrides(&a.service))?, &a.service)?;
    let cancel = interrupt_flag();
    let opts = wait_options(&a.poll, cancel.clone(), false)?;
    let out: PathBuf = a
        .output
        .clone()
        .or_else(|| client.recorded_output(&a.task_id))
        .unwrap_or_else(|| PathBuf::from(format!("{}.mp4", sanitize_file(&a.task_id))));
    let progress = Progress::new(a.json);
    finish_task(&mut client, &a.task_id, &out, a.force, &opts, &cancel, progress, a.json, true)
}

fn sanitize_file(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(80).collect()
}

pub fn tasks(a: TasksArgs) -> anyhow::Result<Outcome> {
    let dir = Config::state_dir_from_env(&ConfigOverrides { state_dir: a.state_dir.clone(), ..Default::default() })?;
    let entries = if dir.join("journal.sqlite3").exists() { client::Journal::open(&dir)?.list()? } else { Vec::new() };
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &json!({"journal": dir.join("journal.sqlite3"), "tasks": entries}))?;
        writeln!(out)?;
        return Ok(Outcome::Ok);
    }
    if entries.is_empty() {
        writeln!(out, "no tasks in {}", sanitize(&dir.display().to_string()))?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "{:<38} {:<10} {:<10} {:<8} {:<24} INPUTS -> OUTPUT",
        "TASK", "STATE", "STATUS", "MODE", "RECORDED (UTC)"
    )?;
    for e in &entries {
        let inputs =
            if e.image.is_empty() { "(added by wait)".to_string() } else { format!("{} + {}", e.image, e.video) };
        let output = e.output_path.as_deref().map(|p| format!(" -> {p}")).unwrap_or_default();
        writeln!(
            out,
            "{:<38} {:<10} {:<10} {:<8} {:<24} {}",
            sanitize(e.task_id.as_deref().unwrap_or("-")),
            format!("{:?}", e.state).to_lowercase(),
            sanitize(e.task_status.as_deref().unwrap_or("-")),
            sanitize(&e.mode),
            wanprep::dates::utc(e.created_at),
            sanitize(&format!("{inputs}{output}"))
        )?;
    }
    Ok(Outcome::Ok)
}
