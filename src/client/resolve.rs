//! Out of uncertainty: a create whose answer was lost (timeout, reset, 5xx, a killed process)
//! may or may not have made a task. The journal knows when the attempt was sent; the service's
//! task list knows which tasks of this model were created then. Exactly one that no journal
//! entry claims is adopted; none means the create did not happen, so the job may be created;
//! several are listed for the user to pick with `wanprep adopt`. A create still in flight in
//! another live run is waited for, never repeated.

use std::time::{Duration, Instant};

use super::journal::{self, Entry, EntryState};
use super::manage::ListedTask;
use super::{Client, Event, Job, SubmitError, TaskStatus, TransportError};

/// How far this machine's clock may differ from the service's when matching an attempt's
/// time to the creation time of a listed task.
pub const CLOCK_SKEW: Duration = Duration::from_secs(120);
/// The longest one create request can take (connect and answer timeouts, with a margin): a
/// sending entry of another host older than this has no live sender.
pub(crate) const CREATE_LEASE: Duration = Duration::from_secs(90);
/// How long after an attempt the list is trusted to show the task it made: a task created a
/// moment ago may not be listed yet.
const LIST_SETTLE: Duration = Duration::from_secs(3);
/// The longest a run waits for another run's create of the same job.
const MAX_WAIT_FOR_OTHER: Duration = Duration::from_secs(600);

/// What settling an unfinished entry came to.
pub(crate) enum Settled {
    /// The entry now holds its task (found in the list).
    Resumed(Box<Entry>),
    /// Decide again: the entry was resolved (no task was made, or another run finished).
    Again,
}

/// Why `wanprep adopt` refused.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The service does not know the task (wrong id, another account, or older than 24 h).
    #[error("the service does not know task {0} (a wrong id, another account or region, or older than 24 h)")]
    UnknownTask(String),
    /// The job already has another live task in the journal.
    #[error("this job already has task {0} in the journal; nothing was changed")]
    JobHasTask(String),
    /// Another job in the journal holds the task.
    #[error("task {0} already belongs to another job in the journal; nothing was changed")]
    TaskTaken(String),
    /// The service could not be asked.
    #[error("cannot query the task: {0}")]
    Query(#[from] TransportError),
    /// Reading the inputs or the journal failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl Client {
    /// Settles an entry that blocks a job without a task id: waits for a live sender, else
    /// looks the attempt up in the service's task list.
    pub(crate) fn settle(&mut self, e: Entry, on: &mut dyn FnMut(Event<'_>)) -> Result<Settled, SubmitError> {
        if e.sender_in_flight(CREATE_LEASE) {
            return self.wait_for_other(e, on);
        }
        // A task made a moment ago may not be listed yet.
        let settle_until = e.updated_at + LIST_SETTLE.as_secs() as i64;
        let early = settle_until - journal::now();
        if early > 0 {
            std::thread::sleep(Duration::from_secs(early as u64));
        }
        let sent_until = match e.state {
            // Killed while sending: the request may have been answered up to a timeout later.
            EntryState::Sending => e.updated_at + CREATE_LEASE.as_secs() as i64,
            _ => e.updated_at,
        };
        let skew = CLOCK_SKEW.as_secs() as i64;
        let (from, to) = (e.created_at - skew, (sent_until + skew).min(journal::now()));
        on(Event::LookingUp { entry: &e });
        let listed = self
            .list_created_between(from, to)
            .map_err(|err| SubmitError::Uncertain { entry: Box::new(e.clone()), lookup: Some(err.to_string()) })?;
        let ids: Vec<&str> = listed.iter().map(|t| t.task_id.as_str()).collect();
        let claimed = self.journal.claimed(&ids)?;
        let free: Vec<ListedTask> = listed.into_iter().filter(|t| !claimed.contains(&t.task_id)).collect();
        let window = format!("{} and {} UTC", crate::dates::utc(from), crate::dates::utc(to));
        match free.as_slice() {
            [] => {
                let why = format!(
                    "the create did not happen: the service lists no unclaimed {} task created between {window}",
                    super::MODEL
                );
                self.journal.resolve_none(e.id, &why)?;
                on(Event::NotCreated { entry: &e });
                Ok(Settled::Again)
            }
            [one] => {
                let how = format!(
                    "the only unclaimed {} task the service lists as created between {window} (its create answer was lost)",
                    super::MODEL
                );
                if !self.journal.resolve_adopted(e.id, &one.task_id, &how)? {
                    return Ok(Settled::Again);
                }
                let entry = self.journal.by_id(e.id)?.unwrap_or(e);
                on(Event::Adopted { entry: &entry });
                Ok(Settled::Resumed(Box::new(entry)))
            }
            _ => Err(SubmitError::Ambiguous { entry: Box::new(e), candidates: free }),
        }
    }

    /// Another live run is sending this job's create: wait until it records the outcome.
    fn wait_for_other(&mut self, e: Entry, on: &mut dyn FnMut(Event<'_>)) -> Result<Settled, SubmitError> {
        on(Event::WaitingForOtherRun { entry: &e });
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            match self.journal.by_id(e.id)? {
                Some(now) if now.sender_in_flight(CREATE_LEASE) => {
                    if start.elapsed() > MAX_WAIT_FOR_OTHER {
                        return Err(SubmitError::InFlight(Box::new(now)));
                    }
                }
                _ => return Ok(Settled::Again),
            }
        }
    }

    /// Names `task_id` as the task of `job` (after an ambiguous lookup, or for a task made
    /// elsewhere): the service must know the task, and no other job in the journal may hold
    /// it. A re-run of the job then resumes it.
    pub fn adopt(&mut self, job: &Job, task_id: &str) -> Result<Entry, AdoptError> {
        let (resp, _) = self.query(task_id)?;
        if resp.status() == TaskStatus::Unknown {
            return Err(AdoptError::UnknownTask(task_id.to_string()));
        }
        let (fingerprint, ..) = self.fingerprint(job)?;
        let key_tag = self.key_tag();
        let key = super::job::job_key(job, &fingerprint, &key_tag);
        match self.journal.adopt_for_job(&key, task_id).map_err(SubmitError::from)? {
            Some(entry) => {
                self.record_status(task_id, &resp);
                Ok(self.journal.by_task_id(task_id).map_err(SubmitError::from)?.unwrap_or(entry))
            }
            None => match self.journal.find_live(&key).map_err(SubmitError::from)? {
                Some(Entry { state: EntryState::Created, task_id: Some(t), .. }) if t != task_id => {
                    Err(AdoptError::JobHasTask(t))
                }
                _ => Err(AdoptError::TaskTaken(task_id.to_string())),
            },
        }
    }
}
