//! The API for tokio services (feature `async`, on by default): an axum or actix handler can
//! check an upload or a URL, fix a file and submit a job without blocking the runtime.
//!
//! Every call runs the same code as the blocking API, on tokio's blocking pool
//! (`spawn_blocking`): one implementation, so the async API judges, fixes and pays exactly as
//! the CLI does. Dropping a future does not stop the work already started on the pool (a URL
//! check still ends at its `--url-timeout`; a fix still writes its output or nothing); use the
//! blocking API's [`Control`](crate::fix::Control) to cancel a fix.
//!
//! ```no_run
//! # async fn handler() {
//! use wanprep::{asynch, CheckOptions, Role};
//! let report = asynch::check_url("https://example.com/dance.mp4", Some(Role::Video), CheckOptions::default()).await;
//! println!("compliant: {}", report.compliant);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::client::{
    CancelOutcome, Config, Job, RunError, RunOptions, RunResult, SubmitError, TaskResponse, TransportError,
};
use crate::fix::{FixError, FixOutcome, FixSpec};
use crate::{CheckOptions, CheckReport, InputReport, InputSpec, Role};

/// Runs `f` on the blocking pool; a panic in it is resumed here, as if it ran inline.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("the tokio runtime shut down while wanprep was working"),
    }
}

/// [`crate::check_inputs`]: probes and checks every input (paths or URLs), with pair findings
/// when one image and one video role are given.
pub async fn check_inputs(inputs: Vec<InputSpec>, opts: CheckOptions) -> CheckReport {
    blocking(move || crate::check_inputs(&inputs, &opts)).await
}

/// Checks one http(s) URL (range requests; only the bytes the probe needs are fetched).
pub async fn check_url(url: impl Into<String>, role: Option<Role>, opts: CheckOptions) -> InputReport {
    let spec = InputSpec::new(url, role);
    blocking(move || crate::check_input(&spec, &opts)).await
}

/// Checks one local file, e.g. an upload a handler has just written to a temporary file.
pub async fn check_file(path: impl AsRef<Path>, role: Option<Role>, opts: CheckOptions) -> InputReport {
    let spec = InputSpec::new(path.as_ref().display().to_string(), role);
    blocking(move || crate::check_input(&spec, &opts)).await
}

/// [`crate::fix::fix_file`]: makes `input` compliant into `output` (never modifying `input`).
pub async fn fix_file(
    input: PathBuf,
    output: PathBuf,
    role: Option<Role>,
    spec: FixSpec,
    force: bool,
) -> Result<FixOutcome, FixError> {
    blocking(move || crate::fix::fix_file(&input, &output, role, &spec, force)).await
}

/// The blocking client, dropped off the runtime: its HTTP client owns a runtime of its own,
/// which may not be dropped inside an async context.
struct Inner(Option<crate::client::Client>);

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(c));
            }
        }
    }
}

/// An async [`crate::client::Client`]: cheap to clone and share between handlers; calls on
/// one client run one at a time (they share its journal), as the blocking client's do.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Mutex<Inner>>,
}

impl Client {
    /// Opens the journal and the HTTP client (see [`crate::client::Client::new`]).
    pub async fn new(config: Config) -> Result<Client, SubmitError> {
        let c = blocking(move || crate::client::Client::new(config)).await?;
        Ok(Client { inner: Arc::new(Mutex::new(Inner(Some(c)))) })
    }

    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut crate::client::Client) -> T + Send + 'static) -> T {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            // A panic in another call leaves the client usable: its journal is transactional.
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            let client = guard.0.as_mut().expect("the client is only taken when dropped");
            f(client)
        })
        .await
    }

    /// [`crate::client::Client::run`]: checks the job's inputs, uploads local files, creates
    /// the task (or resumes this job's task: a repeated call never pays twice), and with
    /// `opts.wait` polls it and downloads the result.
    pub async fn run(&self, job: Job, opts: RunOptions) -> Result<RunResult, RunError> {
        self.with(move |c| c.run(&job, &opts, &mut |_| {})).await
    }

    /// The task as the service reports it now.
    pub async fn status(&self, task_id: impl Into<String>) -> Result<TaskResponse, TransportError> {
        let id = task_id.into();
        self.with(move |c| c.query(&id).map(|(r, _)| r)).await
    }

    /// Cancels a task that is still PENDING (see [`crate::client::Client::cancel`]).
    pub async fn cancel(&self, task_id: impl Into<String>) -> Result<CancelOutcome, TransportError> {
        let id = task_id.into();
        self.with(move |c| c.cancel(&id)).await
    }
}
