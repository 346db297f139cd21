//! A client for the DashScope async API that never wastes a task.
//!
//! The flow: pre-flight ([`preflight`], the same probe and rules as `check`) → uploads of local
//! files to temporary storage ([`upload`]) → an intent recorded in the [`journal`] → create →
//! the task id recorded → [`poll`] → [`download`] → the result probed. A re-run of the same job
//! resumes the recorded task; a create whose outcome is unknown is never retried blindly.
//!
//! ```no_run
//! use wanprep::client::{Client, Config, ConfigOverrides, Job, Mode, WaitOptions};
//!
//! let mut client = Client::new(Config::from_env(&ConfigOverrides::default())?)?;
//! let job = Job::new("character.png", "dance.mp4", Mode::Std);
//! let report = wanprep::client::preflight(&job, &Default::default());
//! assert!(report.compliant, "fix the inputs first");
//! let task = client.submit(&job, false, &mut |_| {})?;
//! let done = client.wait(task.task_id(), &WaitOptions::default(), &mut |_| {})?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
pub mod config;
pub mod download;
pub mod journal;
pub mod poll;
pub mod transport;
pub mod upload;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use api::{ApiError, CreateRequest, Mode, TaskResponse, TaskStatus};
pub use config::{ApiKey, Config, ConfigError, ConfigOverrides, Region, MODEL};
pub use download::{DownloadError, Downloaded};
pub use journal::{Decision, Entry, EntryState, Journal, JournalError};
pub use poll::{WaitError, WaitOptions};
pub use transport::{Transport, TransportError};
pub use upload::{UploadError, Uploader};

use crate::inspect::{check_inputs, CheckOptions, InputSpec};
use crate::probe::looks_like_url;
use crate::report::CheckReport;
use crate::rules::Role;

/// One job: a character image and a reference video (paths or URLs) and the parameters.
#[derive(Debug, Clone)]
pub struct Job {
    /// Local path or http(s)/oss:// URL of the image.
    pub image: String,
    /// Local path or http(s)/oss:// URL of the video.
    pub video: String,
    /// `wan-std` or `wan-pro`.
    pub mode: Mode,
    /// Add the service's watermark.
    pub watermark: bool,
    /// Let the service validate the image (its default).
    pub check_image: bool,
}

impl Job {
    /// A job with the service's defaults (no watermark, image check on).
    pub fn new(image: impl Into<String>, video: impl Into<String>, mode: Mode) -> Job {
        Job { image: image.into(), video: video.into(), mode, watermark: false, check_image: true }
    }

    /// The default output name: `<image stem>_<video stem>.mp4`.
    pub fn default_output(&self) -> PathBuf {
        let stem = |s: &str| {
            let last = s.split(['?', '#']).next().unwrap_or(s).rsplit(['/', '\\']).next().unwrap_or(s);
            let stem = last.rsplit_once('.').map_or(last, |(a, _)| a);
            let clean: String = stem
                .chars()
                .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .take(60)
                .collect();
            if clean.is_empty() {
                "input".to_string()
            } else {
                clean
            }
        };
        PathBuf::from(format!("{}_{}.mp4", stem(&self.image), stem(&self.video)))
    }
}

/// Checks both inputs in their roles with the same code as `wanprep check` (URLs are probed
/// remotely). Nothing is sent to the service.
pub fn preflight(job: &Job, opts: &CheckOptions) -> CheckReport {
    // Inputs already in temporary storage cannot be probed from here; they came from our upload.
    let specs: Vec<InputSpec> = [(&job.image, Role::Image), (&job.video, Role::Video)]
        .into_iter()
        .filter(|(i, _)| !i.starts_with("oss://"))
        .map(|(i, r)| InputSpec::new(i.clone(), Some(r)))
        .collect();
    check_inputs(&specs, opts)
}

/// Something the client reports as it works (for progress displays).
#[derive(Debug)]
pub enum Event<'a> {
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

/// What `submit` produced.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// A new task.
    Created {
        /// Its id.
        task_id: String,
    },
    /// The job's existing task.
    Resumed(Box<Entry>),
}

impl Submitted {
    /// The task id.
    pub fn task_id(&self) -> &str {
        match self {
            Submitted::Created { task_id } => task_id,
            Submitted::Resumed(e) => e.task_id.as_deref().unwrap_or_default(),
        }
    }
}

/// Why `submit` created no task.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// An earlier create for this job got no answer: a task may exist. Not retried blindly.
    #[error(
        "an earlier submit of these inputs (journal entry {}, recorded at unix time {}) may have created a task whose id \
         never arrived{}; check the console before paying twice, or pass --new to create another",
        .0.id, .0.created_at, .0.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    Uncertain(Box<Entry>),
    /// This create reached the service but its outcome is unknown (timeout, reset, 5xx).
    #[error("the create request got no clear answer ({0}); a task may exist, so it is not sent again; recorded in the journal")]
    Unanswered(TransportError),
    /// The service refused the create: no task exists.
    #[error("the service refused the task: {0}")]
    Refused(ApiError),
    /// The service could not be reached at all.
    #[error("cannot reach the service: {0}")]
    Network(TransportError),
    /// Upload failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// An input could not be read for hashing.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The input.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The create answer could not be read.
    #[error("the create answer could not be read: {0}")]
    BadAnswer(String),
    /// The task was created but the journal could not record it.
    #[error("task {task_id} was created, but the journal could not record it ({error}): follow it with `wanprep wait {task_id}`")]
    NotRecorded {
        /// The new task.
        task_id: String,
        /// The journal's failure.
        error: JournalError,
    },
}

impl SubmitError {
    /// The service's error answer behind this failure, if there was one (for hints).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            SubmitError::Refused(e) => Some(e),
            SubmitError::Network(TransportError::Api { error, .. })
            | SubmitError::Unanswered(TransportError::Api { error, .. })
            | SubmitError::Upload(UploadError::Policy(TransportError::Api { error, .. })) => Some(error),
            _ => None,
        }
    }
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

/// Attempts of a create refused with 429 (no task was made, so sending again is safe).
const CREATE_ATTEMPTS: u32 = 6;

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

    /// Creates the job's task, or resumes the one the journal holds for the same inputs and
    /// parameters. `force_new` creates another regardless. Inputs must have passed [`preflight`].
    pub fn submit(
        &mut self,
        job: &Job,
        force_new: bool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Submitted, SubmitError> {
        let (fingerprint, image_digest, video_digest) = self.fingerprint(job)?;
        let endpoint = self.transport.config().base_url.to_string();
        let key_tag = self.key_tag();
        let key = job_key(job, &fingerprint, &key_tag);
        // Look before uploading: a resumed job needs no upload.
        if !force_new {
            if let Some(found) = self.journal_lookup(&key)? {
                return found;
            }
        }
        let image_url = self.remote_url(&job.image, &image_digest, &key_tag, &endpoint, on)?;
        let video_url = self.remote_url(&job.video, &video_digest, &key_tag, &endpoint, on)?;
        // Decide again, atomically: a concurrent run may have created the task meanwhile.
        let id = match self.journal.decide(&key, force_new)? {
            Decision::Create(id) => id,
            Decision::Resume(e) => {
                on(Event::Resumed { entry: &e });
                return Ok(Submitted::Resumed(Box::new(e)));
            }
            Decision::Uncertain(e) => return Err(SubmitError::Uncertain(Box::new(e))),
        };
        let body = CreateRequest::new(image_url, video_url, job.mode, job.watermark, job.check_image);
        let mut extra = vec![("X-DashScope-Async", "enable")];
        if body.needs_oss_resolve() {
            extra.push(("X-DashScope-OssResourceResolve", "enable"));
        }
        let mut attempt = 0;
        let answer = loop {
            match self.transport.post_json("services/aigc/image2video/video-synthesis", &body, &extra) {
                Ok(a) => break a,
                Err(TransportError::Api { error, retry_after }) if error.http_status == 429 => {
                    attempt += 1;
                    if attempt >= CREATE_ATTEMPTS {
                        self.journal.failed_create(id, EntryState::Rejected, &error.to_string())?;
                        return Err(SubmitError::Refused(error));
                    }
                    let delay = crate::retry::CREATE.delay(attempt, retry_after);
                    on(Event::Throttled { error: &error, delay });
                    std::thread::sleep(delay);
                }
                Err(e @ TransportError::Network { maybe_delivered: false, .. }) => {
                    // Never connected: the service cannot have seen it.
                    attempt += 1;
                    if attempt >= 3 {
                        self.journal.failed_create(id, EntryState::Rejected, &e.to_string())?;
                        return Err(SubmitError::Network(e));
                    }
                    std::thread::sleep(crate::retry::CREATE.delay(attempt, None));
                }
                Err(TransportError::Api { error, .. }) if error.http_status < 500 => {
                    self.journal.failed_create(id, EntryState::Rejected, &error.to_string())?;
                    return Err(SubmitError::Refused(error));
                }
                Err(e) => {
                    self.journal.failed_create(id, EntryState::Uncertain, &e.to_string())?;
                    return Err(SubmitError::Unanswered(e));
                }
            }
        };
        let created: api::CreateResponse = match serde_json::from_slice(&answer.body) {
            Ok(c) => c,
            Err(e) => {
                // A 2xx we cannot read may still mean a task exists.
                self.journal.failed_create(id, EntryState::Uncertain, &format!("unreadable answer: {e}"))?;
                return Err(SubmitError::BadAnswer(e.to_string()));
            }
        };
        let status = created.output.task_status.as_deref().unwrap_or("PENDING");
        if let Err(e) = self.journal.created(id, &created.output.task_id, status) {
            // The task exists: never let a journal failure hide its id.
            return Err(SubmitError::NotRecorded { task_id: created.output.task_id, error: e });
        }
        on(Event::Created { task_id: &created.output.task_id });
        Ok(Submitted::Created { task_id: created.output.task_id })
    }

    fn digest(&mut self, input: &str) -> Result<String, SubmitError> {
        if let Some(d) = self.digests.get(input) {
            return Ok(d.clone());
        }
        let d = digest_input(input)?;
        self.digests.insert(input.to_string(), d.clone());
        Ok(d)
    }

    /// The job's fingerprint (and the two input digests): contents, parameters, endpoint and
    /// account, so another account or endpoint never resumes this account's task.
    fn fingerprint(&mut self, job: &Job) -> Result<(String, String, String), SubmitError> {
        let image_digest = self.digest(&job.image)?;
        let video_digest = self.digest(&job.video)?;
        let fingerprint = hex(&Sha256::digest(
            format!(
                "wanprep-job-v1\n{image_digest}\n{video_digest}\n{}\n{}\n{}\n{}\n{}",
                job.mode.as_str(),
                job.watermark,
                job.check_image,
                self.transport.config().base_url,
                self.key_tag()
            )
            .as_bytes(),
        ));
        Ok((fingerprint, image_digest, video_digest))
    }

    /// The task a plain re-run of `submit` would resume, if any (nothing is sent).
    pub fn existing(&mut self, job: &Job) -> Result<Option<Entry>, SubmitError> {
        let (fingerprint, ..) = self.fingerprint(job)?;
        let key_tag = self.key_tag();
        let key = job_key(job, &fingerprint, &key_tag);
        Ok(match self.journal_lookup(&key)? {
            Some(Ok(Submitted::Resumed(e))) => Some(*e),
            _ => None,
        })
    }

    fn journal_lookup(
        &mut self,
        key: &journal::JobKey<'_>,
    ) -> Result<Option<Result<Submitted, SubmitError>>, SubmitError> {
        Ok(self.journal.find_live(key)?.map(|e| match e.state {
            EntryState::Created => Ok(Submitted::Resumed(Box::new(e))),
            _ => Err(SubmitError::Uncertain(Box::new(e))),
        }))
    }

    fn remote_url(
        &mut self,
        input: &str,
        digest: &str,
        key_tag: &str,
        endpoint: &str,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<String, SubmitError> {
        if looks_like_url(input) || input.starts_with("oss://") {
            return Ok(input.to_string());
        }
        if let Some(url) = self.journal.upload(digest, key_tag, endpoint)? {
            on(Event::UploadReused { path: input, url: &url });
            return Ok(url);
        }
        on(Event::Uploading { path: input });
        let url = self.uploader.upload(&self.transport, Path::new(input), digest)?;
        self.journal.uploaded(digest, key_tag, endpoint, &url)?;
        on(Event::Uploaded { path: input, url: &url });
        Ok(url)
    }

    /// `GET /tasks/{id}`: the parsed answer and the raw body.
    pub fn query(&self, task_id: &str) -> Result<(TaskResponse, Vec<u8>), TransportError> {
        let path = format!("tasks/{}", url_segment(task_id));
        let answer = self.transport.get(&path, &[])?;
        let parsed: TaskResponse = serde_json::from_slice(&answer.body).map_err(|e| TransportError::Network {
            message: format!("the task answer could not be read: {e}"),
            maybe_delivered: true,
        })?;
        // An answer about another task (a broken proxy or cache, a hostile server) must never
        // be taken for this one's status or result.
        if let Some(other) = parsed.output.task_id.as_deref().filter(|id| *id != task_id) {
            return Err(TransportError::WrongTask { asked: task_id.to_string(), answered: other.to_string() });
        }
        Ok((parsed, answer.body))
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
    /// and records it in the journal.
    pub fn download(
        &mut self,
        task_id: &str,
        resp: &TaskResponse,
        out: &Path,
        cancel: Option<&AtomicBool>,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Downloaded, DownloadError> {
        let url = resp
            .video_url()
            .ok_or_else(|| DownloadError::NotVideo("the task answer has no results.video_url".into()))?;
        let d = download::download(
            self.transport.plain(),
            &url,
            out,
            task_id,
            cancel,
            self.max_download,
            |done, total| on(Event::Downloading { done, total }),
        )?;
        let _ = self.journal.output(task_id, &out.display().to_string(), d.bytes);
        Ok(d)
    }

    /// Records the output path a task's result is meant for (before it is downloaded).
    pub fn plan_output(&self, task_id: &str, out: &Path) -> Result<(), JournalError> {
        self.journal.output(task_id, &out.display().to_string(), 0)
    }
}

/// The journal's key for a job.
fn job_key<'a>(job: &'a Job, fingerprint: &'a str, key_tag: &'a str) -> journal::JobKey<'a> {
    journal::JobKey {
        fingerprint,
        key_tag,
        image: &job.image,
        video: &job.video,
        mode: job.mode.as_str(),
        watermark: job.watermark,
    }
}

/// SHA-256 of a local file's content, or of the URL text for a URL.
fn digest_input(input: &str) -> Result<String, SubmitError> {
    if looks_like_url(input) || input.starts_with("oss://") {
        return Ok(hex(&Sha256::digest(format!("url:{input}").as_bytes())));
    }
    let io = |source| SubmitError::Io { path: input.to_string(), source };
    let mut f = crate::probe::open_regular(Path::new(input)).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
