//! The whole submit flow as one call: pre-flight check → journal lookup → output check →
//! upload and create (or resume) → output recorded → wait → download. `wanprep submit`,
//! `wanprep wait`, manifest runs and any binding call these functions and only render the
//! [`Event`]s and the result.

use std::path::{Path, PathBuf};

use super::{
    ApiError, Client, DownloadError, Downloaded, Event, Job, SubmitError, Submitted, TaskResponse, TaskStatus,
    TransportError,
};
use super::{WaitError, WaitOptions};
use crate::inspect::{CheckOptions, CheckReport};

/// How [`Client::run`] runs a job.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The pre-flight check (probing and limits; callers should pass limits
    /// [`within_api`](crate::Limits::within_api)).
    pub check: CheckOptions,
    /// Where the result goes (default [`Job::default_output`]).
    pub output: Option<PathBuf>,
    /// Create another task even if the journal holds one for this job.
    pub new_task: bool,
    /// Wait for the task and download its result; `None` returns once the task exists.
    pub wait: Option<WaitOptions>,
    /// Replace an existing output file that is not this task's saved result.
    pub replace_output: bool,
}

/// What a run came to (all of these are answers, not failures of wanprep).
#[derive(Debug)]
pub enum RunResult {
    /// Not sent: the inputs would be rejected. The report says why.
    NotSent(Box<CheckReport>),
    /// The task exists (created now or resumed); nobody waited for it.
    Submitted(Started),
    /// The task reached a terminal status.
    Finished(Finished),
}

/// A task that exists for a job, with the output it is meant for.
#[derive(Debug, Clone)]
pub struct Started {
    /// The task id.
    pub task_id: String,
    /// The journal held it already (no task was created now).
    pub resumed: bool,
    /// Where its result goes.
    pub output: PathBuf,
    /// The result is already saved there (an earlier run downloaded it).
    pub already_saved: bool,
}

/// A task at a terminal status, and what became of its result.
#[derive(Debug)]
pub struct Finished {
    /// The task id.
    pub task_id: String,
    /// The task was not created by this run.
    pub resumed: bool,
    /// Where its result goes.
    pub output: PathBuf,
    /// What happened.
    pub end: TaskEnd,
}

/// How a task ended.
#[derive(Debug)]
pub enum TaskEnd {
    /// SUCCEEDED, and an earlier run already saved the result at the output.
    AlreadySaved,
    /// SUCCEEDED, and the result was downloaded and probed.
    Downloaded {
        /// The file and its facts.
        file: Box<Downloaded>,
        /// The service's usage figures.
        usage: Option<serde_json::Value>,
    },
    /// FAILED, CANCELED or UNKNOWN: the final answer (code and message in `output`).
    Unsuccessful(Box<TaskResponse>),
}

/// Why a run stopped without an answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The output exists and is not this task's saved result; nothing was paid for (or, after
    /// the task succeeded, nothing was downloaded).
    #[error("{} exists and is not this task's result", .path.display())]
    OutputExists {
        /// The existing file.
        path: PathBuf,
        /// The task, when one exists.
        task_id: Option<String>,
    },
    /// No task was created or resumed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The task exists, but waiting for it stopped (timeout, interruption, a fatal answer).
    #[error("{source}")]
    Wait {
        /// The task, which may still be running.
        task_id: String,
        /// Where its result was to go.
        output: PathBuf,
        /// Why waiting stopped.
        #[source]
        source: Box<WaitError>,
    },
    /// The task succeeded, but its result could not be saved.
    #[error("{source}")]
    Download {
        /// The task.
        task_id: String,
        /// Where its result was to go.
        output: PathBuf,
        /// Why.
        #[source]
        source: Box<DownloadError>,
    },
}

impl RunError {
    /// The task this failure concerns, when one exists (so the caller can say how to resume).
    pub fn task_id(&self) -> Option<&str> {
        match self {
            RunError::Wait { task_id, .. } | RunError::Download { task_id, .. } => Some(task_id),
            RunError::Submit(SubmitError::NotRecorded { task_id, .. }) => Some(task_id),
            RunError::OutputExists { task_id, .. } => task_id.as_deref(),
            RunError::Submit(_) => None,
        }
    }

    /// The service's error answer behind this failure, if there was one (for hints).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            RunError::Submit(e) => e.api_error(),
            RunError::Wait { source, .. } => match &**source {
                WaitError::Fatal(TransportError::Api { error, .. }) => Some(error),
                _ => None,
            },
            _ => None,
        }
    }

    /// What to do next: chosen by what the journal knows (while a task may exist, never a new
    /// create), else the service's hint for its error code.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Submit(e) => e.hint(),
            RunError::Download { task_id, source, .. } => match &**source {
                DownloadError::Expired => Some(format!(
                    "the result link expired: `wanprep wait {task_id}` fetches a fresh one while the task is \
                     younger than 24 h"
                )),
                _ => None,
            },
            _ => self.api_error().and_then(ApiError::hint).map(Into::into),
        }
    }

    /// Whether running again (or `wait`) can finish the job: the task exists and is fine.
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            RunError::Wait { source, .. } if matches!(**source, WaitError::Interrupted { .. } | WaitError::Timeout { .. })
        ) || matches!(
            self,
            RunError::Download { source, .. } if matches!(**source, DownloadError::Interrupted | DownloadError::Network(_))
        )
    }
}

impl Client {
    /// Runs a job end to end: checks both inputs (nothing is sent when either would be
    /// rejected), refuses an output it may not replace before paying for a task, creates the
    /// task or resumes the journal's, and — with [`RunOptions::wait`] — waits and downloads.
    pub fn run(&mut self, job: &Job, opts: &RunOptions, on: &mut dyn FnMut(Event<'_>)) -> Result<RunResult, RunError> {
        // A job the journal already holds is resumed, not paid for again: the quality advisor
        // (which decodes pictures and samples frames) has nothing left to warn about.
        let resuming = !opts.new_task && opts.check.quality && self.existing(job).ok().flatten().is_some();
        let check = CheckOptions { quality: opts.check.quality && !resuming, ..opts.check.clone() };
        let report = super::preflight(job, &check);
        if !report.compliant {
            return Ok(RunResult::NotSent(Box::new(report)));
        }
        on(Event::Checked { report: &report });
        let output = opts.output.clone().unwrap_or_else(|| job.default_output());
        if opts.wait.is_some() {
            // Refuse before paying for a task whose result could not be saved — unless the
            // output is the saved result of the very task this run resumes.
            let resumed = if opts.new_task { None } else { self.existing(job)?.and_then(|e| e.task_id) };
            self.output_free(&output, resumed.as_deref(), opts.replace_output)?;
        }
        let started = self.start(job, &output, opts.new_task, on)?;
        match &opts.wait {
            None => Ok(RunResult::Submitted(started)),
            Some(w) => Ok(RunResult::Finished(self.finish(&started, w, opts.replace_output, on)?)),
        }
    }

    /// Creates or resumes the job's task and records the output its result is meant for
    /// (unless one is recorded already). Says whether that result is already saved there.
    pub fn start(
        &mut self,
        job: &Job,
        output: &Path,
        new_task: bool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Started, SubmitError> {
        let submitted = self.submit(job, new_task, on)?;
        let task_id = submitted.task_id().to_string();
        if self.recorded_output(&task_id).is_none() {
            // Best effort: the output is only a default for a later `wait`.
            let _ = self.plan_output(&task_id, output);
        }
        let already_saved = self.saved_output(&task_id).is_some_and(|p| p == output);
        Ok(Started {
            task_id,
            resumed: matches!(submitted, Submitted::Resumed(_)),
            output: output.to_path_buf(),
            already_saved,
        })
    }

    /// Waits for a started task and saves its result at `started.output` (replacing another
    /// file there only with `replace_output`). A result already saved there is not fetched again.
    pub fn finish(
        &mut self,
        started: &Started,
        wait: &WaitOptions,
        replace_output: bool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Finished, RunError> {
        let Started { task_id, resumed, output, .. } = started;
        let done = |end| Finished { task_id: task_id.clone(), resumed: *resumed, output: output.clone(), end };
        if let Some(saved) = self.saved_output(task_id) {
            return Ok(Finished { output: saved, ..done(TaskEnd::AlreadySaved) });
        }
        let resp = self.wait(task_id, wait, on).map_err(|source| RunError::Wait {
            task_id: task_id.clone(),
            output: output.clone(),
            source: Box::new(source),
        })?;
        if resp.status() != TaskStatus::Succeeded {
            return Ok(done(TaskEnd::Unsuccessful(Box::new(resp))));
        }
        self.output_free(output, Some(task_id), replace_output)?;
        let file = self.download(task_id, &resp, output, wait.cancel.as_deref(), on).map_err(|source| {
            RunError::Download { task_id: task_id.clone(), output: output.clone(), source: Box::new(source) }
        })?;
        Ok(done(TaskEnd::Downloaded { file: Box::new(file), usage: resp.usage }))
    }

    /// An existing output is only replaced when asked, or when the journal says it is this
    /// task's saved result.
    fn output_free(&self, out: &Path, task_id: Option<&str>, replace: bool) -> Result<(), RunError> {
        if replace || !out.exists() {
            return Ok(());
        }
        if task_id.is_some_and(|t| self.saved_output(t).as_deref() == Some(out)) {
            return Ok(());
        }
        Err(RunError::OutputExists { path: out.to_path_buf(), task_id: task_id.map(str::to_string) })
    }
}
