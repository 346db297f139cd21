//! Creating a task exactly once: the journal consulted before and after the uploads, the
//! intent recorded before the create, throttling retried, and an unclear answer never retried
//! blindly.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::job::{digest_input, hex, job_key};
use super::resolve::Settled;
use super::{
    ApiError, Client, CreateRequest, Decision, Entry, EntryState, Event, Job, JournalError, ListedTask, TransportError,
    UploadError,
};
use crate::probe::looks_like_url;

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
    /// An earlier create for this job got no answer and the service's task list could not be
    /// read to find out whether it made a task. Not retried blindly.
    #[error(
        "an earlier submit of these inputs (journal entry {}, sent {}) may have created a task whose id never \
         arrived, and looking it up in the service's task list failed{}",
        .entry.id, .entry.recorded_utc(), .lookup.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    Uncertain {
        /// The journal's entry of that create.
        entry: Box<Entry>,
        /// Why the lookup failed.
        lookup: Option<String>,
    },
    /// An earlier create for this job got no answer, and the service lists several tasks of
    /// this model created then that no journal entry claims: the user picks.
    #[error(
        "an earlier submit of these inputs (journal entry {}, sent {}) got no answer, and the service lists {} \
         unclaimed tasks created then: {}",
        .entry.id, .entry.recorded_utc(), .candidates.len(),
        .candidates.iter().map(|c| format!("{} (created {}, {})", c.task_id, c.created_utc(),
            c.status.as_deref().unwrap_or("?"))).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        /// The journal's entry of that create.
        entry: Box<Entry>,
        /// The tasks it may have made.
        candidates: Vec<ListedTask>,
    },
    /// Another run is still sending this job's create (it did not finish in 10 minutes).
    #[error("another wanprep run (journal entry {}, started {}) is still sending this job's create", .0.id, .0.recorded_utc())]
    InFlight(Box<Entry>),
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
    /// A local file could not go to temporary storage in a region other than Beijing.
    #[error(
        "uploading {path} to temporary storage failed in region {region} ({source}); the service's temporary \
         storage for local files is documented for the Beijing region only"
    )]
    UploadOutsideBeijing {
        /// The local file.
        path: String,
        /// The region used.
        region: &'static str,
        /// The refusal.
        #[source]
        source: Box<UploadError>,
    },
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
    #[error("task {task_id} was created, but the journal could not record it ({error}): follow it by its id")]
    NotRecorded {
        /// The new task.
        task_id: String,
        /// The journal's failure.
        error: JournalError,
    },
}

impl SubmitError {
    /// The service's error answer behind this failure, if there was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            SubmitError::Refused(e) => Some(e),
            SubmitError::Network(TransportError::Api { error, .. })
            | SubmitError::Unanswered(TransportError::Api { error, .. })
            | SubmitError::Upload(UploadError::Policy(TransportError::Api { error, .. })) => Some(error),
            _ => None,
        }
    }

    /// What to do next, chosen by what the journal knows: while a task may exist, never a
    /// new create; otherwise the service's hint for its error code.
    pub fn hint(&self) -> Option<String> {
        const LOOK_UP: &str = "a task may exist: run the same command again; wanprep then looks for it in the \
                               service's task list, adopts it if it is there and creates the task only if it is not";
        match self {
            SubmitError::Unanswered(_) | SubmitError::BadAnswer(_) => Some(LOOK_UP.into()),
            SubmitError::Uncertain { entry, .. } => Some(format!(
                "a task may exist: run the same command again later, or, if the console shows the task this \
                 create made, name it with: wanprep adopt TASK_ID --image {} --video {}",
                entry.image, entry.video
            )),
            SubmitError::Ambiguous { entry, .. } => Some(format!(
                "pick the one that is this job's with: wanprep adopt TASK_ID --image {} --video {}",
                entry.image, entry.video
            )),
            SubmitError::InFlight(_) => Some("wait for the other run to end, then run this again".into()),
            SubmitError::NotRecorded { task_id, .. } => Some(format!("follow it with: wanprep wait {task_id}")),
            SubmitError::UploadOutsideBeijing { path, .. } => Some(format!(
                "give {path} as a public http(s) URL instead of a local file, or submit with a Beijing key \
                 (--region cn-beijing)"
            )),
            other => other.api_error().and_then(ApiError::hint).map(Into::into),
        }
    }
}

/// Times one submit settles an unfinished entry before giving up (each settle resolves one).
const MAX_SETTLES: usize = 4;

/// Attempts of a create refused with 429 (no task was made, so sending again is safe).
const CREATE_ATTEMPTS: u32 = 6;

impl Client {
    /// Creates the job's task, or resumes the one the journal holds for the same inputs and
    /// parameters. `force_new` creates another regardless. Inputs must have passed [`preflight`](super::preflight).
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
        // Look before uploading: a resumed job needs no upload. An unfinished earlier create is
        // settled first (adopted, waited for, or found not to have happened).
        if !force_new {
            for _ in 0..MAX_SETTLES {
                match self.journal.find_live(&key)? {
                    Some(e) if e.state == EntryState::Created => {
                        on(Event::Resumed { entry: &e });
                        return Ok(Submitted::Resumed(Box::new(e)));
                    }
                    Some(e) => match self.settle(e, on)? {
                        Settled::Resumed(e) => return Ok(Submitted::Resumed(e)),
                        Settled::Again => continue,
                    },
                    None => break,
                }
            }
        }
        let image_url = self.remote_url(&job.image, &image_digest, &key_tag, &endpoint, on)?;
        let video_url = self.remote_url(&job.video, &video_digest, &key_tag, &endpoint, on)?;
        // Decide again, atomically: a concurrent run may have created the task meanwhile, or
        // be sending it right now (then its outcome is waited for).
        let mut settles = 0;
        let id = loop {
            match self.journal.decide(&key, force_new)? {
                Decision::Create(id) => break id,
                Decision::Resume(e) => {
                    on(Event::Resumed { entry: &e });
                    return Ok(Submitted::Resumed(Box::new(e)));
                }
                Decision::Uncertain(e) if settles < MAX_SETTLES => {
                    settles += 1;
                    if let Settled::Resumed(e) = self.settle(e, on)? {
                        return Ok(Submitted::Resumed(e));
                    }
                }
                Decision::Uncertain(e) => return Err(SubmitError::Uncertain { entry: Box::new(e), lookup: None }),
            }
        };
        let body = CreateRequest::new(image_url, video_url, job.mode, job.watermark, job.check_image);
        let mut extra = vec![("X-DashScope-Async", "enable")];
        if body.needs_oss_resolve() {
            extra.push(("X-DashScope-OssResourceResolve", "enable"));
        }
        let mut attempt = 0;
        let answer = loop {
            // The attempt's window (for a later lookup in the task list) reaches this send.
            self.journal.touch(id)?;
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
        let created: super::api::CreateResponse = match serde_json::from_slice(&answer.body) {
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
    pub(super) fn fingerprint(&mut self, job: &Job) -> Result<(String, String, String), SubmitError> {
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
        Ok(self.journal.find_live(&key)?.filter(|e| e.state == EntryState::Created))
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
        let url = self.uploader.upload(&self.transport, Path::new(input), digest).map_err(|source| {
            match self.transport.config().region.filter(|r| *r != super::Region::CnBeijing) {
                Some(r) if source.is_refusal() => SubmitError::UploadOutsideBeijing {
                    path: input.to_string(),
                    region: r.as_str(),
                    source: Box::new(source),
                },
                _ => SubmitError::Upload(source),
            }
        })?;
        self.journal.uploaded(digest, key_tag, endpoint, &url)?;
        on(Event::Uploaded { path: input, url: &url });
        Ok(url)
    }
}
