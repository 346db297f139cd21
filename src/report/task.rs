//! What happened to a task: `submit --json`, `wait --json`, `status --json`, `tasks --json`,
//! and the error document any `--json` command prints when it cannot run at all.

use std::path::PathBuf;

use serde::Serialize;

use crate::client::{ApiError, Entry, Finished, RunError, RunResult, TaskEnd, TaskResponse, TransportError, WaitError};
use crate::inspect::CheckReport;
use crate::probe::MediaFacts;
use crate::{Prices, Spend};

/// One job or task, however far it got: `submit --json` and `wait --json`.
#[derive(Debug, Default, Serialize)]
pub struct TaskReport {
    /// Whether a task exists for the job (created now or earlier).
    pub submitted: bool,
    /// Its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The task was not created by this run (the journal held it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    /// The last status seen (`PENDING` … `SUCCEEDED`, `FAILED`, `CANCELED`, `UNKNOWN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where the result is (or was to go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Whether this run downloaded the result (`false`: an earlier run saved it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloaded: Option<bool>,
    /// The result's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The service's usage figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<serde_json::Value>,
    /// The result's facts, from the same probe as `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaFacts>,
    /// The service's error code, for a task that did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The service's message with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The service's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why nothing was sent: the pre-flight check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about it, for the service's known error codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A dry run: nothing was uploaded or created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// The seconds the task would generate (an estimate: the output lasts as long as the
    /// reference video), and their cost when prices were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Spend>,
    /// The API endpoint used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Said about the endpoint's choice (a workspace id without a region means Beijing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_note: Option<String>,
    /// The pre-flight check's warnings (quality advisor included) on inputs that were sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<InputWarning>,
}

/// A warning about one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputWarning {
    /// The input as given.
    pub input: String,
    /// The finding.
    #[serde(flatten)]
    pub finding: crate::Finding,
}

impl InputWarning {
    /// The warnings of a check report.
    pub fn from_check(report: &CheckReport) -> Vec<InputWarning> {
        report
            .inputs
            .iter()
            .flat_map(|i| {
                i.findings
                    .iter()
                    .filter(|f| !f.is_error())
                    .map(|f| InputWarning { input: i.input.clone(), finding: f.clone() })
            })
            .collect()
    }
}

impl TaskReport {
    /// The report of a run that came to an answer.
    pub fn from_run(result: &RunResult) -> TaskReport {
        match result {
            RunResult::NotSent(check) => TaskReport { check: Some((**check).clone()), ..Default::default() },
            RunResult::Submitted(s) => TaskReport {
                submitted: true,
                task_id: Some(s.task_id.clone()),
                resumed: Some(s.resumed),
                output: Some(s.output.clone()),
                ..Default::default()
            },
            RunResult::Finished(f) => TaskReport::from_finished(f),
        }
    }

    /// The report of a task at a terminal status.
    pub fn from_finished(f: &Finished) -> TaskReport {
        let base = TaskReport {
            submitted: true,
            task_id: Some(f.task_id.clone()),
            resumed: Some(f.resumed),
            output: Some(f.output.clone()),
            ..Default::default()
        };
        match &f.end {
            TaskEnd::AlreadySaved => TaskReport { status: Some("SUCCEEDED".into()), downloaded: Some(false), ..base },
            TaskEnd::Downloaded { file, usage } => TaskReport {
                status: Some("SUCCEEDED".into()),
                output: Some(file.path.clone()),
                downloaded: Some(true),
                bytes: Some(file.bytes),
                usage: usage.clone(),
                media: Some(file.facts.clone()),
                ..base
            },
            TaskEnd::Unsuccessful(resp) => TaskReport {
                status: Some(resp.status().as_str().into()),
                code: resp.output.code.clone(),
                message: resp.output.message.clone(),
                request_id: resp.request_id.clone(),
                hint: resp.output.code.as_ref().and(resp.error()).and_then(|e| e.hint()).map(Into::into),
                ..base
            },
        }
    }

    /// The report of a run that stopped without an answer.
    pub fn from_error(e: &RunError) -> TaskReport {
        let task_id = e.task_id().map(str::to_string);
        let status = match e {
            RunError::Wait { source, .. } => match &**source {
                WaitError::Timeout { last, .. } | WaitError::Interrupted { last } => Some(last.clone()),
                WaitError::Fatal(_) => None,
            },
            RunError::Download { .. } => Some("SUCCEEDED".into()),
            _ => None,
        };
        let output = match e {
            RunError::Wait { output, .. } | RunError::Download { output, .. } => Some(output.clone()),
            RunError::OutputExists { path, .. } => Some(path.clone()),
            RunError::Submit(_) => None,
        };
        let api = e.api_error();
        TaskReport {
            submitted: task_id.is_some(),
            task_id,
            status,
            output,
            code: api.map(|a| a.code.clone()).filter(|c| !c.is_empty()),
            request_id: api.and_then(|a| a.request_id.clone()),
            error: Some(e.to_string()),
            hint: e.hint(),
            ..Default::default()
        }
    }
}

/// A task's status as the service reports it: `status --json`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The task asked about.
    pub task_id: String,
    /// Its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The service's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The service's `output` object as it came (times, results, code, message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// The service's usage figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<serde_json::Value>,
    /// Why the status could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about it, for the service's known error codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl StatusReport {
    /// The report of a query: the parsed answer and its raw body, or the failure.
    pub fn new(task_id: &str, answer: &Result<(TaskResponse, Vec<u8>), TransportError>) -> StatusReport {
        match answer {
            Ok((resp, raw)) => {
                let raw: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
                StatusReport {
                    task_id: task_id.to_string(),
                    status: Some(resp.status().as_str().into()),
                    request_id: resp.request_id.clone(),
                    output: raw.get("output").cloned(),
                    usage: resp.usage.clone(),
                    error: None,
                    hint: resp.output.code.as_ref().and(resp.error()).and_then(|e| e.hint()).map(Into::into),
                }
            }
            Err(e) => {
                let api = match e {
                    TransportError::Api { error, .. } => Some(error),
                    _ => None,
                };
                StatusReport {
                    task_id: task_id.to_string(),
                    status: None,
                    request_id: api.and_then(|a| a.request_id.clone()),
                    output: None,
                    usage: None,
                    error: Some(e.to_string()),
                    hint: api.and_then(ApiError::hint).map(Into::into),
                }
            }
        }
    }
}

/// The journal's tasks: `tasks --json`.
#[derive(Debug, Serialize)]
pub struct TasksReport {
    /// The journal file.
    pub journal: PathBuf,
    /// Its entries, newest first (each with `mode` and the generated `video_duration`).
    pub tasks: Vec<Entry>,
    /// Seconds generated per mode over the journal (the service's usage figures), and their
    /// cost when prices were given.
    pub totals: Spend,
}

impl TasksReport {
    /// The report of the journal's entries.
    pub fn new(journal: PathBuf, tasks: Vec<Entry>, prices: Option<&Prices>) -> TasksReport {
        let totals =
            Spend::sum(false, tasks.iter().filter_map(|e| Some((e.billed_mode()?, e.video_duration?))), prices);
        TasksReport { journal, tasks, totals }
    }
}

/// One task's cancel: `cancel --json` lists these as `tasks`.
#[derive(Debug, Serialize)]
pub struct CancelItem {
    /// The task.
    pub task_id: String,
    /// Whether it is now CANCELED.
    pub canceled: bool,
    /// Its status when the service refused (no longer PENDING).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The service's code, when it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The service's message, or why the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `cancel --json`.
#[derive(Debug, Serialize)]
pub struct CancelReport {
    /// Tasks canceled.
    pub canceled: usize,
    /// Tasks the service would not cancel (not PENDING).
    pub refused: usize,
    /// Tasks whose cancel could not be sent or answered.
    pub failed: usize,
    /// Each task.
    pub tasks: Vec<CancelItem>,
}

/// `adopt --json`.
#[derive(Debug, Serialize)]
pub struct AdoptReport {
    /// Whether the task is now the job's.
    pub adopted: bool,
    /// The task.
    pub task_id: String,
    /// Its status as the service reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What any `--json` command prints when it cannot run at all (a bad flag value, no API key,
/// an unusable folder): `{"error": "...", "hint": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// What went wrong.
    pub error: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}
