//! Uploads ahead of the creates: a manifest's local inputs go to temporary storage several at
//! once (each worker with its own credential and connection), so the one-by-one creates that
//! follow find them in the journal and wait on the network only for the create itself.

use std::path::Path;
use std::sync::Mutex;

use super::job::{digest_input, job_key};
use super::{Client, Event, Job, SubmitError, UploadError, Uploader};
use crate::probe::looks_like_url;

/// Uploads at once when the caller leaves it to wanprep (`jobs` = 0): the work waits on the
/// network, not on the cores.
pub const DEFAULT_PARALLEL_UPLOADS: usize = 4;

impl Client {
    /// Uploads the local inputs of `jobs` that temporary storage does not hold yet, `parallel`
    /// at a time (0: [`DEFAULT_PARALLEL_UPLOADS`]), and records each in the journal, where
    /// [`Client::start`] finds it. Inputs are hashed in parallel too. Jobs the journal already
    /// holds (a task to resume, a create to settle) need no upload and are skipped, unless
    /// `new_tasks` (they will be created again). A failed upload is only reported here:
    /// `start` tries it again and fails the job if it must.
    pub fn upload_ahead(
        &mut self,
        jobs: &[Job],
        parallel: usize,
        new_tasks: bool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<(String, UploadError)>, SubmitError> {
        let parallel = if parallel == 0 { DEFAULT_PARALLEL_UPLOADS } else { parallel };
        // Hash every input not hashed yet, in parallel (the fingerprints need them).
        let mut unhashed: Vec<String> = jobs
            .iter()
            .flat_map(|j| [j.image.clone(), j.video.clone()])
            .filter(|i| !self.digests.contains_key(i))
            .collect();
        unhashed.sort();
        unhashed.dedup();
        let hashed = crate::pool::map(&unhashed, parallel, |_, _, input| digest_input(input));
        for (input, digest) in unhashed.into_iter().zip(hashed) {
            self.digests.insert(input, digest?);
        }
        let endpoint = self.transport.config().base_url.to_string();
        let key_tag = self.key_tag();
        let mut wanted: Vec<(String, String)> = Vec::new();
        for job in jobs {
            let (fingerprint, image_digest, video_digest) = self.fingerprint(job)?;
            if !new_tasks && self.journal.find_live(&job_key(job, &fingerprint, &key_tag))?.is_some() {
                continue;
            }
            for (input, digest) in [(&job.image, image_digest), (&job.video, video_digest)] {
                let local = !(looks_like_url(input) || input.starts_with("oss://"));
                if local
                    && !wanted.iter().any(|(_, d)| *d == digest)
                    && self.journal.upload(&digest, &key_tag, &endpoint)?.is_none()
                {
                    wanted.push((input.clone(), digest));
                }
            }
        }
        let uploaders: Vec<Mutex<Uploader>> =
            (0..crate::pool::workers(parallel, wanted.len())).map(|_| Mutex::new(Uploader::new())).collect();
        let transport = &self.transport;
        let results = crate::pool::map(&wanted, parallel, |worker, _, (input, digest)| {
            let mut up = uploaders[worker].lock().unwrap_or_else(|e| e.into_inner());
            up.upload(transport, Path::new(input), digest)
        });
        let mut failed = Vec::new();
        for ((input, digest), result) in wanted.into_iter().zip(results) {
            match result {
                Ok(url) => {
                    self.journal.uploaded(&digest, &key_tag, &endpoint, &url)?;
                    on(Event::Uploaded { path: &input, url: &url });
                }
                Err(e) => failed.push((input, e)),
            }
        }
        Ok(failed)
    }
}
