//! `submit`, `wait` and `status`: flags → the library's submit flow ([`Client::run`],
//! [`Client::finish`]) → its events and result, rendered. No step of the flow is decided here.

use std::path::PathBuf;

use wanprep::client::{
    self, Client, Config, Event, Job, RunError, RunOptions, RunResult, Started, SubmitError, TaskEnd, TaskStatus,
    TransportError,
};
use wanprep::report::{InputWarning, StatusReport, TaskReport};
use wanprep::{CheckOptions, ProbeOptions};

use super::args::{ServiceArgs, StatusArgs, SubmitArgs, WaitArgs};
use super::progress::{Progress, Style};
use super::render::sanitize;
use super::{emit_json, settings, signal, Outcome};

/// Opens the client. When the default journal folder cannot be used (a read-only HOME, say) and
/// none was asked for, the journal goes to a private folder under the temporary folder, with a
/// warning: a submit with a journal that may not survive beats no submit at all.
pub fn open_client(service: &ServiceArgs) -> anyhow::Result<Client> {
    let config = Config::from_env(&settings::overrides(service))?;
    let mut client = match Client::new(config.clone()) {
        Ok(c) => c,
        Err(SubmitError::Journal(e)) if service.state_dir.is_none() => {
            // A private folder of this user's (0700, owned by them): one another user made
            // first, or opened to others, is refused rather than used.
            let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0);
            let fallback = wanprep::internals::private_dir(&std::env::temp_dir().join(format!("wanprep-state-{uid}")))
                .map_err(|why| {
                    anyhow::anyhow!("{e}; the fallback journal folder is unusable: {why} (pass --state-dir)")
                })?;
            eprintln!(
                "wanprep: warning: {} ({}); using {} for the task journal (pass --state-dir to choose)",
                sanitize(&config.state_dir.display().to_string()),
                sanitize(&e.to_string()),
                sanitize(&fallback.display().to_string())
            );
            Client::new(Config { state_dir: fallback, ..config })?
        }
        Err(e) => return Err(e.into()),
    };
    client.set_max_download(service.max_download);
    if let Some(note) = &client.transport().config().endpoint_note {
        eprintln!("wanprep: note: {}", sanitize(note));
    }
    Ok(client)
}

/// Where requests go, for `--json`: the endpoint and the note about its choice.
fn endpoint_of(client: &Client) -> (Option<String>, Option<String>) {
    let c = client.transport().config();
    (Some(c.base_url.to_string()), c.endpoint_note.clone())
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<Outcome> {
    let cancel = signal::interrupt_flag();
    let wait = if a.wait { Some(settings::wait_options(&a.poll, cancel, true)?) } else { None };
    // Whatever --limit loosened, nothing is sent that breaks the API's documented limits.
    let limits = settings::limits(&a.limit)?.within_api();
    let job = settings::job(&a.job)?;
    let opts = RunOptions {
        check: CheckOptions {
            probe: ProbeOptions::new(),
            limits,
            jobs: 2,
            http: Default::default(),
            quality: !a.no_quality,
        },
        output: a.output.clone(),
        new_task: a.new,
        wait,
        replace_output: a.force,
    };
    if a.dry_run {
        return dry_run(&a, &job, &opts);
    }
    let mut client = open_client(&a.service)?;
    let progress = Progress::new(Style::Spinner, a.json, true, None);
    let mut last = None;
    let mut warnings = Vec::new();
    let result = client.run(&job, &opts, &mut |e| {
        if let Event::Checked { report } = &e {
            warnings = InputWarning::from_check(report);
        }
        on_event(&progress, &mut last, e)
    });
    progress.finish();
    finish_report(result, a.json, endpoint_of(&client), warnings)
}

/// `submit --dry-run`: the pre-flight check and the billable seconds it implies; nothing is
/// uploaded or created. With a key, also whether the journal already holds this job's task.
fn dry_run(a: &SubmitArgs, job: &Job, opts: &RunOptions) -> anyhow::Result<Outcome> {
    let prices = settings::prices(a.price.as_deref())?;
    let check = client::preflight(job, &opts.check);
    if !check.compliant {
        return finish_report(Ok(RunResult::NotSent(Box::new(check))), a.json, (None, None), Vec::new());
    }
    let seconds = check
        .inputs
        .iter()
        .find(|i| i.role == Some(wanprep::Role::Video))
        .and_then(|i| i.media.as_ref()?.duration_s)
        .unwrap_or(0.0);
    let estimate = wanprep::Spend::sum(true, [(job.mode.as_str(), seconds)], prices.as_ref());
    // Whether a real run would resume rather than pay: only knowable with the key (the journal
    // is keyed by account). No request is sent either way.
    let mut client = Config::from_env(&settings::overrides(&a.service)).ok().and_then(|c| Client::new(c).ok());
    let existing = client.as_mut().and_then(|c| c.existing(job).ok().flatten());
    let (endpoint, endpoint_note) = client.as_ref().map(endpoint_of).unwrap_or_default();
    if let Some(note) = &endpoint_note {
        eprintln!("wanprep: note: {}", sanitize(note));
    }
    let report = TaskReport {
        submitted: existing.is_some(),
        task_id: existing.as_ref().and_then(|e| e.task_id.clone()),
        resumed: existing.as_ref().map(|_| true),
        dry_run: Some(true),
        estimate: Some(estimate.clone()),
        endpoint,
        endpoint_note,
        warnings: InputWarning::from_check(&check),
        ..Default::default()
    };
    if a.json {
        emit_json(&report)?;
        return Ok(Outcome::Ok);
    }
    for w in &report.warnings {
        eprintln!(
            "{}: {}: {}: {}",
            w.finding.severity.as_str(),
            sanitize(&w.input),
            w.finding.rule,
            sanitize(&w.finding.message)
        );
    }
    outln!("dry run: both inputs pass the checks; nothing was uploaded or created");
    match &existing {
        Some(e) => outln!(
            "a real run resumes task {} (submitted earlier for these inputs): nothing new is paid",
            sanitize(e.task_id.as_deref().unwrap_or("?"))
        ),
        None => outln!(
            "estimate: {} of output (an estimate: the output lasts as long as the reference video)",
            estimate.line()
        ),
    }
    Ok(Outcome::Ok)
}

pub fn wait(a: WaitArgs) -> anyhow::Result<Outcome> {
    let mut client = open_client(&a.service)?;
    let opts = settings::wait_options(&a.poll, signal::interrupt_flag(), false)?;
    let output = a
        .output
        .clone()
        .or_else(|| client.recorded_output(&a.task_id))
        .unwrap_or_else(|| PathBuf::from(format!("{}.mp4", file_safe(&a.task_id))));
    let started = Started { task_id: a.task_id.clone(), resumed: true, output, already_saved: false };
    let progress = Progress::new(Style::Spinner, a.json, true, None);
    let mut last = None;
    let result = client.finish(&started, &opts, a.force, &mut |e| on_event(&progress, &mut last, e));
    progress.finish();
    finish_report(result.map(RunResult::Finished), a.json, endpoint_of(&client), Vec::new())
}

/// Renders what a run came to: JSON on stdout, or lines for people; and its exit code.
fn finish_report(
    result: Result<RunResult, RunError>,
    json: bool,
    (endpoint, endpoint_note): (Option<String>, Option<String>),
    warnings: Vec<InputWarning>,
) -> anyhow::Result<Outcome> {
    let outcome = match &result {
        Ok(r) => run_outcome(r),
        Err(e) => error_outcome(e),
    };
    if json {
        let report = match &result {
            Ok(r) => TaskReport::from_run(r),
            Err(e) => TaskReport::from_error(e),
        };
        emit_json(&TaskReport { endpoint, endpoint_note, warnings, ..report })?;
    }
    match &result {
        Ok(r) if !json => print_result(r)?,
        Ok(_) => {}
        Err(e) => print_error(e),
    }
    Ok(outcome)
}

fn run_outcome(r: &RunResult) -> Outcome {
    match r {
        RunResult::NotSent(report) if report.any_unreadable() => Outcome::Unusable,
        RunResult::NotSent(_) => Outcome::NonCompliant,
        RunResult::Submitted(_) => Outcome::Ok,
        RunResult::Finished(f) => match f.end {
            TaskEnd::Unsuccessful(_) => Outcome::NonCompliant,
            TaskEnd::AlreadySaved | TaskEnd::Downloaded { .. } => Outcome::Ok,
        },
    }
}

fn error_outcome(e: &RunError) -> Outcome {
    match e {
        // The service refused the inputs as they are: a verdict, like a failed check.
        RunError::Submit(SubmitError::Refused(api)) if api.http_status == 400 => Outcome::NonCompliant,
        RunError::Wait { source, .. } => match &**source {
            client::WaitError::Fatal(t) => transport_outcome(t),
            _ => Outcome::Unusable,
        },
        _ => Outcome::Unusable,
    }
}

fn transport_outcome(e: &TransportError) -> Outcome {
    match e {
        TransportError::Api { error, .. } if error.http_status == 400 => Outcome::NonCompliant,
        _ => Outcome::Unusable,
    }
}

fn print_result(r: &RunResult) -> anyhow::Result<()> {
    match r {
        RunResult::NotSent(report) => {
            eprintln!("wanprep submit: not sent; the inputs would be rejected:");
            super::render::check_report(&mut std::io::stderr().lock(), report, false)?;
        }
        RunResult::Submitted(s) => {
            let what = if s.resumed { "resumed (already submitted)" } else { "created" };
            outln!("task {} {what}", sanitize(&s.task_id));
            outln!(
                "wait for it with: wanprep wait {} -o {}",
                sanitize(&s.task_id),
                sanitize(&s.output.display().to_string())
            );
        }
        RunResult::Finished(f) => match &f.end {
            TaskEnd::AlreadySaved => outln!(
                "task {} SUCCEEDED; result already saved at {}",
                sanitize(&f.task_id),
                sanitize(&f.output.display().to_string())
            ),
            TaskEnd::Downloaded { file, .. } => {
                let m = &file.facts;
                outln!(
                    "task {} SUCCEEDED; saved {} ({:.1} MB, {}x{}, {:.1} s)",
                    sanitize(&f.task_id),
                    sanitize(&file.path.display().to_string()),
                    file.bytes as f64 / 1e6,
                    m.display_width.unwrap_or(0),
                    m.display_height.unwrap_or(0),
                    m.duration_s.unwrap_or(0.0)
                );
            }
            TaskEnd::Unsuccessful(resp) => {
                let status = resp.status();
                eprintln!("task {} {status}", sanitize(&f.task_id));
                if let Some(e) = resp.error() {
                    print_api_error("  reason", &e);
                }
                if status == TaskStatus::Unknown {
                    eprintln!("  the task does not exist, or it expired (task ids live 24 h)");
                }
            }
        },
    }
    Ok(())
}

/// A failure, for people: the library's sentence, the flag that changes it, how to resume.
fn print_error(e: &RunError) {
    match e {
        RunError::Submit(SubmitError::Refused(api)) => {
            print_api_error("wanprep submit: the service refused the task", api);
            return;
        }
        RunError::Wait { source, .. } => match &**source {
            client::WaitError::Fatal(TransportError::Api { error, .. }) => {
                print_api_error("wanprep: querying the task failed", error);
                return;
            }
            client::WaitError::Fatal(t) => {
                eprintln!("wanprep: querying the task failed: {}", sanitize(&t.to_string()));
                return;
            }
            _ => {}
        },
        _ => {}
    }
    eprintln!("wanprep: {}", sanitize(&e.to_string()));
    match e {
        RunError::OutputExists { .. } => eprintln!("  pass --force to replace it, or -o another path"),
        RunError::Submit(_) | RunError::Download { .. } if e.hint().is_some() => {
            eprintln!("  hint: {}", sanitize(&e.hint().unwrap_or_default()))
        }
        RunError::Wait { task_id, output, .. } | RunError::Download { task_id, output, .. } if e.resumable() => {
            eprintln!("resume with: wanprep wait {} -o {}", sanitize(task_id), sanitize(&output.display().to_string()));
        }
        _ => {}
    }
}

fn print_api_error(prefix: &str, e: &client::ApiError) {
    eprintln!("{prefix}: {}", sanitize(&e.to_string()));
    if let Some(h) = e.hint() {
        eprintln!("  hint: {h}");
    }
}

/// The client's events, on the one progress display.
fn on_event(p: &Progress, last: &mut Option<TaskStatus>, ev: Event<'_>) {
    match ev {
        Event::Checked { report } => {
            for w in InputWarning::from_check(report) {
                p.line(&format!(
                    "{}: {}: {}: {}",
                    w.finding.severity.as_str(),
                    sanitize(&w.input),
                    w.finding.rule,
                    sanitize(&w.finding.message)
                ));
            }
        }
        Event::UploadReused { path, .. } => p.line(&format!("reusing the earlier upload of {}", sanitize(path))),
        Event::Uploading { path } => p.message(format!("uploading {}", sanitize(path))),
        Event::Uploaded { path, url } => p.line(&format!("uploaded {} -> {}", sanitize(path), sanitize(url))),
        Event::Throttled { error, delay } => {
            p.line(&format!("throttled ({}), sending again in {:.1} s", sanitize(&error.code), delay.as_secs_f64()))
        }
        Event::Created { task_id } => p.line(&format!("created task {}", sanitize(task_id))),
        Event::Resumed { entry } => p.line(&format!(
            "resuming task {} (submitted earlier for the same inputs)",
            sanitize(entry.task_id.as_deref().unwrap_or("?"))
        )),
        Event::LookingUp { entry } => p.line(&format!(
            "an earlier submit of these inputs (sent {}) got no answer: looking for its task in the service's task list",
            entry.recorded_utc()
        )),
        Event::Adopted { entry } => p.line(&format!(
            "found it: task {} ({}); adopted",
            sanitize(entry.task_id.as_deref().unwrap_or("?")),
            sanitize(entry.adopted.as_deref().unwrap_or(""))
        )),
        Event::NotCreated { .. } => {
            p.line("the service lists no task from that attempt: it did not happen, so the task is created now")
        }
        Event::WaitingForOtherRun { entry } => p.line(&format!(
            "another wanprep run is sending this job's create (journal entry {}): waiting for its answer",
            entry.id
        )),
        Event::Status { task_id, status } => {
            if *last != Some(status) {
                *last = Some(status);
                p.timed_message(format!("task {} {status}", sanitize(task_id)));
            }
        }
        Event::Retrying { error, delay } => p.line(&format!(
            "query failed ({}), retrying in {:.1} s",
            sanitize(&error.to_string()),
            delay.as_secs_f64()
        )),
        Event::Downloading { done, total } => {
            if p.is_live() {
                let t = total.map(|t| format!(" of {:.1} MB", t as f64 / 1e6)).unwrap_or_default();
                p.message(format!("downloading {:.1} MB{t}", done as f64 / 1e6));
            }
        }
    }
}

pub fn status(a: StatusArgs) -> anyhow::Result<Outcome> {
    let client = open_client(&a.service)?;
    let answer = client.query(&a.task_id);
    if a.json {
        emit_json(&StatusReport::new(&a.task_id, &answer))?;
    }
    let (resp, _) = match answer {
        Ok(r) => r,
        Err(e) => {
            match &e {
                TransportError::Api { error, .. } => print_api_error("wanprep status", error),
                other => eprintln!("wanprep status: {}", sanitize(&other.to_string())),
            }
            return Ok(transport_outcome(&e));
        }
    };
    if !a.json {
        let o = &resp.output;
        outln!("task {}: {}", sanitize(&a.task_id), resp.status());
        for (k, v) in [("submitted", &o.submit_time), ("scheduled", &o.scheduled_time), ("ended", &o.end_time)] {
            if let Some(v) = v {
                outln!("  {k}: {} (UTC+8)", sanitize(v));
            }
        }
        if let Some(url) = resp.video_url() {
            outln!("  result: {}", sanitize(&url));
        }
        if let (Some(_), Some(e)) = (&o.code, resp.error()) {
            print_api_error("  reason", &e);
        }
        if let Some(u) = &resp.usage {
            outln!("  usage: {}", sanitize(&u.to_string()));
        }
    }
    Ok(match resp.status() {
        TaskStatus::Failed | TaskStatus::Canceled | TaskStatus::Unknown => Outcome::NonCompliant,
        _ => Outcome::Ok,
    })
}

/// A task id as a file name.
fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(80).collect()
}
