//! A client for the DashScope async API that never wastes a task.
//!
//! The flow is one call, [`Client::run`]: pre-flight ([`preflight`], the same probe and rules
//! as `check`) → uploads of local files to temporary storage → an intent recorded in the
//! journal → create → the task id recorded → polling → download → the result probed. A re-run
//! of the same job resumes the recorded task; a create whose outcome is unknown is never
//! retried blindly: the next run finds its task in the service's task list
//! ([`Client::list_created_between`]) and adopts it, creates the task when the list shows none,
//! or stops with the candidates for [`Client::adopt`]. [`Client::cancel`] stops a PENDING task.
//! Every API request of the process shares one rate limiter ([`Config::max_qps`]).
//! [`Client::start`] and [`Client::finish`] are its two halves, for callers that wait for many
//! tasks at once.
//!
//! ```no_run
//! use wanprep::client::{Client, Config, ConfigOverrides, Job, Mode, WaitOptions};
//!
//! use wanprep::client::{RunOptions, RunResult, TaskEnd};
//!
//! let mut client = Client::new(Config::from_env(&ConfigOverrides::default())?)?;
//! let job = Job::new("character.png", "dance.mp4", Mode::Std);
//! let opts = RunOptions { wait: Some(WaitOptions::default()), ..Default::default() };
//! match client.run(&job, &opts, &mut |event| eprintln!("{event:?}"))? {
//!     RunResult::NotSent(report) => eprintln!("fix the inputs first: {report:?}"),
//!     RunResult::Finished(f) => match f.end {
//!         TaskEnd::Downloaded { file, .. } => println!("saved {}", file.path.display()),
//!         other => eprintln!("task {} ended: {other:?}", f.task_id),
//!     },
//!     RunResult::Submitted(s) => println!("task {}", s.task_id),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ahead;
pub(crate) mod api;
mod config;
pub(crate) mod download;
mod flow;
mod job;
mod journal;
mod manage;
pub(crate) mod poll;
mod rate;
mod resolve;
mod submit;
mod transport;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use ahead::DEFAULT_PARALLEL_UPLOADS;
pub use api::{ApiError, Mode, TaskOutput, TaskResponse, TaskStatus};
pub use config::{ApiKey, Config, ConfigError, ConfigOverrides, Region, MODEL};
pub use download::{DownloadError, Downloaded, DEFAULT_MAX_DOWNLOAD};
pub use journal::{Entry, EntryState, JournalError};
pub use manage::{CancelOutcome, ListedTask};
pub use poll::{WaitError, WaitOptions};
pub use rate::DEFAULT_MAX_QPS;
pub use transport::TransportError;
pub use upload::UploadError;

use api::CreateRequest;
use journal::{Decision, Journal};
use transport::Transport;
use upload::Uploader;

pub use flow::{Finished, RunError, RunOptions, RunResult, Started, TaskEnd};
pub use job::{preflight, Job};
pub use resolve::{AdoptError, CLOCK_SKEW};
pub use submit::{SubmitError, Submitted};

/// The tasks recorded in the journal under `state_dir`, newest first (none when it has no
/// journal yet). Needs no API key.
pub fn list_tasks(state_dir: &Path) -> Result<Vec<Entry>, JournalError> {
    if !state_dir.join(journal::FILE_NAME).exists() {
        return Ok(Vec::new());
    }
    Journal::open(state_dir)?.list()
}

/// Something the client reports as it works (for progress displays).
#[derive(Debug)]
pub enum Event<'a> {
    /// The pre-flight check passed; its report (warnings included) before anything is sent.
    Checked {
        /// Both inputs' reports.
        report: &'a crate::inspect::CheckReport,
    },
    /// An earlier upload of this content is reused.
    UploadReused {
        /// The local file.
        path: &'a str,
        /// Its `oss://` URL.
        url: &'a str,
    },
    /// A local file is being uploaded.
    Uploading {
        /// The local file.
        path: &'a str,
    },
    /// A local file was uploaded.
    Uploaded {
        /// The local file.
        path: &'a str,
        /// Its `oss://` URL.
        url: &'a str,
    },
    /// The create was refused with a throttling answer and will be sent again.
    Throttled {
        /// The answer.
        error: &'a ApiError,
        /// Delay before the next attempt.
        delay: Duration,
    },
    /// A task was created.
    Created {
        /// Its id.
        task_id: &'a str,
    },
    /// A task recorded for this job is resumed instead of creating another.
    Resumed {
        /// The journal entry.
        entry: &'a Entry,
    },
    /// An earlier create of this job got no answer: the service's task list is consulted.
    LookingUp {
        /// The journal's entry of that create.
        entry: &'a Entry,
    },
    /// The lookup found the task that create made; it is adopted and resumed.
    Adopted {
        /// The entry, now holding the task (and how it was found).
        entry: &'a Entry,
    },
    /// The lookup found no task: that create did not happen, so the job is created now.
    NotCreated {
        /// The journal's entry of that create.
        entry: &'a Entry,
    },
    /// Another run is sending this job's create right now: its outcome is waited for.
    WaitingForOtherRun {
        /// Its journal entry.
        entry: &'a Entry,
    },
    /// A status was read.
    Status {
        /// The task.
        task_id: &'a str,
        /// Its status.
        status: TaskStatus,
    },
    /// A query failed transiently and will be retried.
    Retrying {
        /// What failed.
        error: &'a TransportError,
        /// Delay before the next query.
        delay: Duration,
    },
    /// Result bytes arrived.
    Downloading {
        /// Bytes in the file so far.
        done: u64,
        /// Total, when known.
        total: Option<u64>,
    },
}

/// Transport, journal and uploader together.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    journal: Journal,
    uploader: Uploader,
    /// Content digests by input, so a file is hashed once per process.
    digests: std::collections::HashMap<String, String>,
    /// Largest result downloaded.
    max_download: u64,
}

impl Client {
    /// Opens the journal in the configured state directory and sets up HTTP.
    pub fn new(config: Config) -> Result<Client, SubmitError> {
        let journal = Journal::open(&config.state_dir)?;
        let transport = Transport::new(config).map_err(SubmitError::Network)?;
        Ok(Client {
            transport,
            journal,
            uploader: Uploader::new(),
            digests: Default::default(),
            max_download: download::DEFAULT_MAX_DOWNLOAD,
        })
    }

    /// Sets the largest result [`Client::download`] accepts (default 2 GB).
    pub fn set_max_download(&mut self, bytes: u64) {
        self.max_download = bytes;
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The transport (for raw queries).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn key_tag(&self) -> String {
        self.transport.config().api_key.tag()
    }

    /// `GET /tasks/{id}`: the parsed answer and the raw body.
    pub fn query(&self, task_id: &str) -> Result<(TaskResponse, Vec<u8>), TransportError> {
        query_task(&self.transport, task_id)
    }

    /// Polls a task to a terminal status (recording each status in the journal).
    pub fn wait(
        &mut self,
        task_id: &str,
        opts: &WaitOptions,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<TaskResponse, WaitError> {
        let key_tag = self.key_tag();
        let _ = self.journal.adopt(task_id, &key_tag);
        let this = &*self;
        poll::wait_with(
            || this.query(task_id).map(|(r, _)| r),
            opts,
            |ev| match ev {
                poll::PollEvent::Status(status, resp) => {
                    this.record_status(task_id, resp);
                    on(Event::Status { task_id, status });
                }
                poll::PollEvent::Retrying(error, delay) => on(Event::Retrying { error, delay }),
            },
        )
    }

    /// Writes a task's status (and the service's error code and message, if any) to the
    /// journal: the one place statuses are recorded, for `wait` and for manifest runs.
    pub fn record_status(&self, task_id: &str, resp: &TaskResponse) {
        let err = resp.output.code.as_ref().map(|c| format!("{c}: {}", resp.output.message.as_deref().unwrap_or("")));
        let _ = self.journal.status(task_id, resp.status().as_str(), err.as_deref());
        let (duration, ratio) = (resp.video_duration(), resp.video_ratio());
        if duration.is_some() || ratio.is_some() {
            let _ = self.journal.usage(task_id, duration, ratio);
        }
    }

    /// Where the journal says this task's result already is (the file still there, same size).
    pub fn saved_output(&self, task_id: &str) -> Option<PathBuf> {
        let e = self.journal.by_task_id(task_id).ok()??;
        let path = PathBuf::from(e.output_path?);
        let len = std::fs::metadata(&path).ok()?.len();
        (Some(len as i64) == e.output_bytes).then_some(path)
    }

    /// The output path recorded for a task, if any (downloaded or not).
    pub fn recorded_output(&self, task_id: &str) -> Option<PathBuf> {
        self.journal.by_task_id(task_id).ok()??.output_path.map(PathBuf::from)
    }

    /// Downloads a succeeded task's result to `out` (resuming a partial download), probes it,
    /// and records it in the journal. A link that expired is fetched afresh once.
    pub fn download(
        &mut self,
        task_id: &str,
        resp: &TaskResponse,
        out: &Path,
        cancel: Option<&AtomicBool>,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Downloaded, DownloadError> {
        let d = fetch_result(&self.transport, self.max_download, task_id, resp, out, cancel, &mut |done, total| {
            on(Event::Downloading { done, total })
        })?;
        let _ = self.journal.output(task_id, &out.display().to_string(), d.bytes);
        Ok(d)
    }

    /// Downloads several succeeded tasks' results at once (`parallel` at a time), each as
    /// [`Client::download`] does. Results come back in the order of `items` (task id, its
    /// answer, the output).
    pub fn download_many(
        &mut self,
        items: &[(String, TaskResponse, PathBuf)],
        parallel: usize,
        cancel: Option<&AtomicBool>,
    ) -> Vec<Result<Downloaded, DownloadError>> {
        let (transport, max) = (&self.transport, self.max_download);
        let results = crate::pool::map(items, parallel, |_, _, (task_id, resp, out)| {
            fetch_result(transport, max, task_id, resp, out, cancel, &mut |_, _| {})
        });
        for ((task_id, _, out), r) in items.iter().zip(&results) {
            if let Ok(d) = r {
                let _ = self.journal.output(task_id, &out.display().to_string(), d.bytes);
            }
        }
        results
    }

    /// Records the output path a task's result is meant for (before it is downloaded).
    pub fn plan_output(&self, task_id: &str, out: &Path) -> Result<(), JournalError> {
        self.journal.output(task_id, &out.display().to_string(), 0)
    }
}

/// Downloads a succeeded task's result to `out` with the credential-free client (see
/// [`download::download`]). A link that answers 403 has expired: a fresh query of the task
/// carries a freshly signed one, which is tried once.
#[allow(clippy::too_many_arguments)]
fn fetch_result(
    transport: &Transport,
    max_bytes: u64,
    task_id: &str,
    resp: &TaskResponse,
    out: &Path,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, DownloadError> {
    let mut fetch = |resp: &TaskResponse| {
        let url = resp
            .video_url()
            .ok_or_else(|| DownloadError::NotVideo("the task answer has no results.video_url".into()))?;
        download::download(transport.plain(), &url, out, task_id, cancel, max_bytes, &mut *progress)
    };
    match fetch(resp) {
        Err(DownloadError::Expired) => match query_task(transport, task_id) {
            Ok((fresh, _)) => fetch(&fresh),
            Err(_) => Err(DownloadError::Expired),
        },
        other => other,
    }
}

/// `GET /tasks/{id}` through `transport` (shareable between threads, unlike the [`Client`]).
pub(crate) fn query_task(transport: &Transport, task_id: &str) -> Result<(TaskResponse, Vec<u8>), TransportError> {
    let path = format!("tasks/{}", url_segment(task_id));
    let answer = transport.get(&path, &[])?;
    let parsed: TaskResponse = serde_json::from_slice(&answer.body).map_err(|e| TransportError::Network {
        message: format!("the task answer could not be read: {e}"),
        maybe_delivered: true,
    })?;
    // An answer about another task (a broken proxy or cache, a hostile server) must never be
    // taken for this one's status or result.
    if let Some(other) = parsed.output.task_id.as_deref().filter(|id| *id != task_id) {
        return Err(TransportError::WrongTask { asked: task_id.to_string(), answered: other.to_string() });
    }
    Ok((parsed, answer.body))
}

/// A task id as one path segment: anything but unreserved characters is percent-encoded, so an
/// id can never change the path.
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_names() {
        let j = Job::new("dir/cat.png", "https://h/p/dance.mp4?sig=1", Mode::Std);
        assert_eq!(j.default_output(), PathBuf::from("cat_dance.mp4"));
        assert_eq!(url_segment("ab-1/../x"), "ab-1%2F..%2Fx");
    }
}
