//! The native half of the `wanprep` Python package: thin calls into the Rust library that
//! answer JSON text (the CLI's `--json` documents; `wanprep/__init__.py` turns them into dicts).
//! Every call runs off the GIL in a thread of its own, and a Ctrl-C raises KeyboardInterrupt
//! at once (a fix in progress is cancelled; nothing is written).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use wanprep::client::{Config, ConfigOverrides, Job, Mode, RunOptions, WaitOptions};
use wanprep::fix::{AspectMode, FixError, FixSpec};
use wanprep::report::{FixReport, RulesReport, TaskReport, TasksReport};
use wanprep::{CheckOptions, InputSpec, Limits, ProbeOptions, Role};

create_exception!(_wanprep, WanprepError, PyException, "Base class of wanprep's errors.");
create_exception!(_wanprep, InputError, WanprepError, "An input cannot be read, checked or fixed.");
create_exception!(_wanprep, UsageError, WanprepError, "A bad argument, or an output that exists.");
create_exception!(_wanprep, SetupError, WanprepError, "Something wanprep needs is missing (the FFmpeg helper).");
create_exception!(_wanprep, NetworkError, WanprepError, "The service could not be reached or answered an error.");
create_exception!(_wanprep, AuthError, WanprepError, "No API key, or the service refused it.");

/// Runs `work` in a thread with the GIL released; a pending signal (Ctrl-C) sets `cancel` and
/// raises at once.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    cancel: Arc<AtomicBool>,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    // The receiver moves into each wait (it is Send, not Sync) and comes back with the answer.
    let mut rx = Some(rx);
    loop {
        let r = rx.take().ok_or_else(|| WanprepError::new_err("no receiver"))?;
        let (got, r) = py.allow_threads(move || {
            let got = r.recv_timeout(Duration::from_millis(50));
            (got, r)
        });
        rx = Some(r);
        match got {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    cancel.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(WanprepError::new_err("wanprep stopped (a bug: it panicked)"))
            }
        }
    }
}

fn json<T: serde::Serialize>(doc: &T) -> PyResult<String> {
    serde_json::to_string(doc).map_err(|e| WanprepError::new_err(e.to_string()))
}

fn role(name: Option<&str>) -> PyResult<Option<Role>> {
    match name {
        None => Ok(None),
        Some("image") => Ok(Some(Role::Image)),
        Some("video") => Ok(Some(Role::Video)),
        Some(other) => Err(UsageError::new_err(format!("role is 'image' or 'video', not {other:?}"))),
    }
}

fn limits(overrides: Vec<(String, f64)>) -> PyResult<Limits> {
    let mut l = Limits::default();
    for (name, value) in overrides {
        l.set(&name, value).map_err(UsageError::new_err)?;
    }
    l.validate().map_err(UsageError::new_err)?;
    Ok(l)
}

/// Checks inputs, each `(path or URL, role or None)`: the `check --json` document.
#[pyfunction]
#[pyo3(signature = (inputs, deep=false, limit=Vec::new(), quality=false))]
fn check(
    py: Python<'_>,
    inputs: Vec<(String, Option<String>)>,
    deep: bool,
    limit: Vec<(String, f64)>,
    quality: bool,
) -> PyResult<String> {
    let specs = inputs
        .into_iter()
        .map(|(input, r)| Ok(InputSpec::new(input, role(r.as_deref())?)))
        .collect::<PyResult<Vec<_>>>()?;
    let opts = CheckOptions {
        probe: ProbeOptions::new().deep(deep),
        limits: limits(limit)?,
        quality,
        ..CheckOptions::default()
    };
    let report = interruptible(py, Arc::new(AtomicBool::new(false)), move || wanprep::check_inputs(&specs, &opts))?;
    json(&report)
}

/// The rules and limits: the `rules --json` document.
#[pyfunction]
fn rules() -> PyResult<String> {
    json(&RulesReport::new(&Limits::default()))
}

fn fix_error(e: &FixError) -> PyErr {
    let text = e.to_string();
    match e {
        FixError::OutputExists(_) => UsageError::new_err(format!("{text}: pass force=True to replace it")),
        FixError::OutputIsInput | FixError::UnknownExtension(_) => UsageError::new_err(text),
        FixError::Setup(_) => SetupError::new_err(text),
        _ if e.is_verdict() => InputError::new_err(text),
        _ => WanprepError::new_err(text),
    }
}

/// Fixes (or with `dry_run` plans) `input` into `output`: the `fix --json` document.
#[pyfunction]
#[pyo3(signature = (input, output, dry_run=false, force=false, aspect=None, start=None, duration=None, limit=Vec::new(), match_framing=None))]
#[allow(clippy::too_many_arguments)]
fn fix(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    dry_run: bool,
    force: bool,
    aspect: Option<String>,
    start: Option<f64>,
    duration: Option<f64>,
    limit: Vec<(String, f64)>,
    match_framing: Option<PathBuf>,
) -> PyResult<String> {
    let mut spec = FixSpec::default();
    spec.limits = limits(limit)?;
    spec.aspect = match aspect.as_deref() {
        None | Some("pad") => AspectMode::Pad,
        Some("crop") => AspectMode::Crop,
        Some(other) => return Err(UsageError::new_err(format!("aspect is 'pad' or 'crop', not {other:?}"))),
    };
    spec.start_s = start;
    spec.duration_s = duration;
    spec.format = wanprep::fix::format_named_by(&output).map_err(|e| fix_error(&e))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let result = interruptible(py, cancel, move || -> Result<FixReport, FixError> {
        if let Some(video) = match_framing {
            spec.match_framing = Some(wanprep::fix::framing_match(&input, &video)?);
        }
        if dry_run {
            let planned = wanprep::fix::prepare(&input, &output, None, &spec)?;
            return Ok(FixReport::dry_run(&i, &o, &planned.plan));
        }
        let ctl = wanprep::fix::Control { progress: None, cancel: Some(&flag) };
        let outcome = wanprep::fix::fix_file_with(&input, &output, None, &spec, force, ctl)?;
        Ok(FixReport::written(&i, &o, &outcome))
    })?;
    json(&result.map_err(|e| fix_error(&e))?)
}

fn client_error(e: impl std::fmt::Display, auth: bool) -> PyErr {
    if auth {
        AuthError::new_err(e.to_string())
    } else {
        NetworkError::new_err(e.to_string())
    }
}

/// A DashScope client with its task journal (see `wanprep.Client`).
#[pyclass(module = "wanprep._wanprep")]
struct Client {
    inner: Arc<Mutex<wanprep::client::Client>>,
    state_dir: PathBuf,
}

impl Client {
    fn call<T: Send + 'static>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut wanprep::client::Client, Arc<AtomicBool>) -> T + Send + 'static,
    ) -> PyResult<T> {
        let inner = Arc::clone(&self.inner);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        interruptible(py, cancel, move || {
            let mut c = inner.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut c, flag)
        })
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (api_key=None, region=None, state_dir=None))]
    fn new(api_key: Option<String>, region: Option<String>, state_dir: Option<PathBuf>) -> PyResult<Client> {
        let o = ConfigOverrides { api_key, region, state_dir, ..ConfigOverrides::default() };
        let config = Config::from_env(&o).map_err(|e| AuthError::new_err(e.to_string()))?;
        let state_dir = config.state_dir.clone();
        let client = wanprep::client::Client::new(config).map_err(|e| client_error(e, false))?;
        Ok(Client { inner: Arc::new(Mutex::new(client)), state_dir })
    }

    /// Checks the pair, uploads local files, creates (or resumes) the task; with `wait`, polls
    /// it and downloads the result to `output`. The `submit --json` document.
    #[pyo3(signature = (image, video, mode="wan-std", wait=false, output=None, new=false, quality=true, poll_interval=15.0, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        py: Python<'_>,
        image: String,
        video: String,
        mode: &str,
        wait: bool,
        output: Option<PathBuf>,
        new: bool,
        quality: bool,
        poll_interval: f64,
        timeout: Option<f64>,
    ) -> PyResult<String> {
        let mode = Mode::parse(mode)
            .ok_or_else(|| UsageError::new_err(format!("mode is 'wan-std' or 'wan-pro', not {mode:?}")))?;
        if !(poll_interval.is_finite() && poll_interval > 0.0) {
            return Err(UsageError::new_err("poll_interval is seconds > 0"));
        }
        let job = Job::new(image, video, mode);
        let report = self.call(py, move |c, cancel| {
            let opts = RunOptions {
                check: CheckOptions { quality, limits: Limits::default().within_api(), ..CheckOptions::default() },
                output,
                new_task: new,
                wait: wait.then(|| WaitOptions {
                    poll_interval: Duration::from_secs_f64(poll_interval),
                    timeout: timeout.map(Duration::from_secs_f64),
                    cancel: Some(cancel),
                    ..WaitOptions::default()
                }),
                replace_output: false,
            };
            let mut warnings = Vec::new();
            let result = c.run(&job, &opts, &mut |e| {
                if let wanprep::client::Event::Checked { report } = &e {
                    warnings = wanprep::report::InputWarning::from_check(report);
                }
            });
            result.map(|r| TaskReport { warnings, ..TaskReport::from_run(&r) }).map_err(|e| {
                let auth = matches!(&e, wanprep::client::RunError::Submit(s) if s.to_string().contains("API-key"));
                client_error(e, auth)
            })
        })??;
        json(&report)
    }

    /// Polls a task until it ends and downloads its result to `output` (default: where the
    /// journal says, else `TASK_ID.mp4`). The `wait --json` document.
    #[pyo3(signature = (task_id, output=None, poll_interval=15.0, timeout=None, force=false))]
    fn wait(
        &self,
        py: Python<'_>,
        task_id: String,
        output: Option<PathBuf>,
        poll_interval: f64,
        timeout: Option<f64>,
        force: bool,
    ) -> PyResult<String> {
        if !(poll_interval.is_finite() && poll_interval > 0.0) {
            return Err(UsageError::new_err("poll_interval is seconds > 0"));
        }
        if output.is_none() && !task_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(UsageError::new_err("this task id cannot name a file: pass output="));
        }
        let report = self.call(py, move |c, cancel| {
            let output = output
                .or_else(|| c.recorded_output(&task_id))
                .unwrap_or_else(|| PathBuf::from(format!("{task_id}.mp4")));
            let started = wanprep::client::Started { task_id, resumed: true, output, already_saved: false };
            let opts = WaitOptions {
                poll_interval: Duration::from_secs_f64(poll_interval),
                timeout: timeout.map(Duration::from_secs_f64),
                cancel: Some(cancel),
                ..WaitOptions::default()
            };
            c.finish(&started, &opts, force, &mut |_| {})
                .map(|f| TaskReport::from_run(&wanprep::client::RunResult::Finished(f)))
                .map_err(|e| client_error(e, false))
        })??;
        json(&report)
    }

    /// The task as the service reports it now (its JSON answer).
    fn status(&self, py: Python<'_>, task_id: String) -> PyResult<String> {
        let (_, raw) = self.call(py, move |c, _| c.query(&task_id))?.map_err(|e| client_error(e, false))?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// Cancels a PENDING task: `{"task_id", "canceled", "status"}`.
    fn cancel(&self, py: Python<'_>, task_id: String) -> PyResult<String> {
        let id = task_id.clone();
        let outcome = self.call(py, move |c, _| c.cancel(&id))?.map_err(|e| client_error(e, false))?;
        let (canceled, status) = match outcome {
            wanprep::client::CancelOutcome::Canceled => (true, "CANCELED".to_string()),
            wanprep::client::CancelOutcome::Refused { status, .. } => {
                (false, status.map_or_else(|| "unknown".to_string(), |s| s.as_str().to_string()))
            }
        };
        Ok(serde_json::json!({"task_id": task_id, "canceled": canceled, "status": status}).to_string())
    }

    /// The journal's tasks: the `tasks --json` document.
    fn tasks(&self) -> PyResult<String> {
        let entries = wanprep::client::list_tasks(&self.state_dir).map_err(|e| WanprepError::new_err(e.to_string()))?;
        json(&TasksReport::new(self.state_dir.join("journal.sqlite3"), entries, None))
    }
}

#[pymodule]
fn _wanprep(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(rules, m)?)?;
    m.add_function(wrap_pyfunction!(fix, m)?)?;
    m.add_class::<Client>()?;
    let py = m.py();
    for (name, ty) in [
        ("WanprepError", py.get_type::<WanprepError>()),
        ("InputError", py.get_type::<InputError>()),
        ("UsageError", py.get_type::<UsageError>()),
        ("SetupError", py.get_type::<SetupError>()),
        ("NetworkError", py.get_type::<NetworkError>()),
        ("AuthError", py.get_type::<AuthError>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}
