//! Waiting for a task: a polling schedule that starts at a few seconds and grows to the
//! documented 15 s, transient failures retried with jittered backoff (never abandoning a live
//! task because of them), terminal states, a timeout and cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::{TaskResponse, TaskStatus};
use super::transport::TransportError;

/// How to wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The steady polling interval (the schedule grows to it); default 15 s as documented.
    pub poll_interval: Duration,
    /// Give up waiting (the task keeps running) after this long.
    pub timeout: Option<Duration>,
    /// Set from a Ctrl-C handler: stop waiting, leave the task running.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Wait one interval before the first query (the task was just created).
    pub delay_first: bool,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions { poll_interval: Duration::from_secs(15), timeout: None, cancel: None, delay_first: false }
    }
}

/// Why waiting stopped before a terminal state.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// `--timeout` passed; the task is still running.
    #[error("stopped waiting after {elapsed:.0?}; the task is still {last}")]
    Timeout {
        /// The last status seen.
        last: String,
        /// Time waited.
        elapsed: Duration,
    },
    /// Cancelled (Ctrl-C); the task is still running.
    #[error("interrupted; the task is still {last}")]
    Interrupted {
        /// The last status seen.
        last: String,
    },
    /// A failure that waiting cannot fix (bad key, unknown endpoint).
    #[error("{0}")]
    Fatal(TransportError),
}

/// The delay before query `n` (0-based, after the first): 2 s, 4 s, … up to `cap`.
/// With the default cap of 15 s an hour costs 243 queries.
pub fn poll_delay(n: u32, cap: Duration) -> Duration {
    Duration::from_secs(2 * (u64::from(n.min(1000)) + 1)).min(cap)
}

/// The delay after the `n`-th consecutive transient failure: the server's `Retry-After`, else
/// 1, 2, 4 … 60 s, jittered.
pub fn failure_delay(n: u32, retry_after: Option<Duration>) -> Duration {
    crate::retry::POLL.delay(n, retry_after)
}

/// What the loop reports as it goes.
#[derive(Debug)]
pub enum PollEvent<'a> {
    /// A status was read.
    Status(TaskStatus, &'a TaskResponse),
    /// A query failed transiently; the next one comes after `delay`.
    Retrying(&'a TransportError, Duration),
}

/// What one query of one task came to.
#[derive(Debug)]
pub enum Step {
    /// A status was read; the task stays tracked unless it is terminal.
    Status(TaskStatus, Box<TaskResponse>),
    /// The query failed transiently; the task is asked again after the delay.
    Retrying(TransportError, Duration),
    /// The query failed for good (bad key, wrong task, …); the task is no longer tracked.
    Fatal(TransportError),
}

struct Tracked {
    id: String,
    polls: u32,
    failures: u32,
    due: Instant,
}

/// The one poller: it tracks any number of tasks, each on its own schedule — 2, 4, 6 … s up to
/// the steady interval between statuses, the [`crate::retry::POLL`] backoff (or the server's
/// `Retry-After`) after transient failures, which never drop a live task. `wait` tracks one
/// task, a manifest run many; both fold answers in the same way.
pub struct Poller {
    interval: Duration,
    tasks: Vec<Tracked>,
}

impl Poller {
    /// A poller with the steady interval `interval`.
    pub fn new(interval: Duration) -> Poller {
        Poller { interval, tasks: Vec::new() }
    }

    /// Starts tracking `id`: asked at once, or after one first delay when it was just created.
    pub fn add(&mut self, id: &str, delay_first: bool) {
        let due = Instant::now() + if delay_first { poll_delay(0, self.interval) } else { Duration::ZERO };
        self.tasks.push(Tracked { id: id.to_string(), polls: u32::from(delay_first), failures: 0, due });
    }

    /// How many tasks are tracked.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is tracked.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// When the next task is due (`None` with none tracked).
    pub fn next_due(&self) -> Option<Instant> {
        self.tasks.iter().map(|t| t.due).min()
    }

    /// Queries every task that is due and returns what each came to; terminal and fatal ones
    /// are no longer tracked.
    pub fn poll_due(
        &mut self,
        mut query: impl FnMut(&str) -> Result<TaskResponse, TransportError>,
    ) -> Vec<(String, Step)> {
        let now = Instant::now();
        let answers: Vec<_> = self.tasks.iter().filter(|t| t.due <= now).map(|t| query(&t.id)).collect();
        self.fold(now, answers)
    }

    /// As [`Poller::poll_due`], with up to `parallel` queries at once (each still takes its slot
    /// of the process's rate limiter): a round of many tasks costs a few round trips, not one
    /// per task.
    pub fn poll_due_parallel(
        &mut self,
        parallel: usize,
        query: impl Fn(&str) -> Result<TaskResponse, TransportError> + Sync,
    ) -> Vec<(String, Step)> {
        let now = Instant::now();
        let due: Vec<&str> = self.tasks.iter().filter(|t| t.due <= now).map(|t| t.id.as_str()).collect();
        let answers = crate::pool::map(&due, parallel, |_, _, id| query(id));
        self.fold(now, answers)
    }

    /// Folds the answers of the tasks due at `now` (in their order) into their schedules.
    fn fold(&mut self, now: Instant, answers: Vec<Result<TaskResponse, TransportError>>) -> Vec<(String, Step)> {
        let mut answers = answers.into_iter();
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for mut t in std::mem::take(&mut self.tasks) {
            if t.due > now {
                keep.push(t);
                continue;
            }
            let Some(answer) = answers.next() else {
                keep.push(t);
                continue;
            };
            match answer {
                Ok(resp) => {
                    let status = resp.status();
                    t.failures = 0;
                    t.due = Instant::now() + poll_delay(t.polls, self.interval);
                    t.polls += 1;
                    let id = t.id.clone();
                    if !status.is_terminal() {
                        keep.push(t);
                    }
                    out.push((id, Step::Status(status, Box::new(resp))));
                }
                Err(e) if e.is_transient() => {
                    let delay = failure_delay(t.failures, e.retry_after());
                    t.failures += 1;
                    t.due = Instant::now() + delay;
                    out.push((t.id.clone(), Step::Retrying(e, delay)));
                    keep.push(t);
                }
                Err(e) => out.push((t.id, Step::Fatal(e))),
            }
        }
        self.tasks = keep;
        out
    }
}

/// Sleeps until `until`, in short slices so Ctrl-C and the timeout are honoured promptly.
fn sleep_until(until: Instant, opts: &WaitOptions, start: Instant, last: &str) -> Result<(), WaitError> {
    loop {
        if opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(WaitError::Interrupted { last: last.to_string() });
        }
        if let Some(t) = opts.timeout {
            if start.elapsed() >= t {
                return Err(WaitError::Timeout { last: last.to_string(), elapsed: start.elapsed() });
            }
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// Polls one task with `query` until a terminal status, the timeout or cancellation.
pub fn wait_with(
    mut query: impl FnMut() -> Result<TaskResponse, TransportError>,
    opts: &WaitOptions,
    mut on: impl FnMut(PollEvent<'_>),
) -> Result<TaskResponse, WaitError> {
    let start = Instant::now();
    let mut last = String::from("PENDING");
    let mut poller = Poller::new(opts.poll_interval);
    poller.add("task", opts.delay_first);
    loop {
        let due = poller.next_due().unwrap_or_else(Instant::now);
        sleep_until(due, opts, start, &last)?;
        for (_, step) in poller.poll_due(|_| query()) {
            match step {
                Step::Status(status, resp) => {
                    last = status.to_string();
                    on(PollEvent::Status(status, &resp));
                    if status.is_terminal() {
                        return Ok(*resp);
                    }
                }
                Step::Retrying(e, delay) => on(PollEvent::Retrying(&e, delay)),
                Step::Fatal(e) => return Err(WaitError::Fatal(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::api::ApiError;

    #[test]
    fn an_hour_of_polling_stays_under_250_queries() {
        let cap = Duration::from_secs(15);
        let (mut t, mut n) = (Duration::ZERO, 1u32);
        while t < Duration::from_secs(3600) {
            t += poll_delay(n - 1, cap);
            n += 1;
        }
        assert!(n <= 250, "{n} queries");
        assert_eq!(poll_delay(0, cap), Duration::from_secs(2));
        assert_eq!(poll_delay(50, cap), cap);
        assert_eq!(poll_delay(0, Duration::from_millis(100)), Duration::from_millis(100));
    }

    #[test]
    fn transient_errors_never_end_the_wait() {
        let mut calls = 0;
        let opts = WaitOptions { poll_interval: Duration::from_millis(1), ..Default::default() };
        let resp = |s: &str| -> TaskResponse {
            serde_json::from_value(serde_json::json!({"output": {"task_id": "t", "task_status": s}})).unwrap()
        };
        let r = wait_with(
            || {
                calls += 1;
                match calls {
                    1 => Ok(resp("RUNNING")),
                    2 => Err(TransportError::Api {
                        error: ApiError::from_body(429, b"{}", None),
                        retry_after: Some(Duration::from_millis(1)),
                    }),
                    3 => Err(TransportError::Network { message: "reset".into(), maybe_delivered: true }),
                    _ => Ok(resp("SUCCEEDED")),
                }
            },
            &opts,
            |_| {},
        )
        .unwrap();
        assert_eq!(r.status(), TaskStatus::Succeeded);
        assert_eq!(calls, 4);
        let fatal = wait_with(
            || Err(TransportError::Api { error: ApiError::from_body(401, b"{}", None), retry_after: None }),
            &opts,
            |_| {},
        );
        assert!(matches!(fatal, Err(WaitError::Fatal(_))));
    }
}

#[cfg(test)]
mod poller_tests {
    use super::*;

    fn resp(id: &str, s: &str) -> TaskResponse {
        serde_json::from_value(serde_json::json!({"output": {"task_id": id, "task_status": s}})).unwrap()
    }

    #[test]
    fn each_task_keeps_its_own_schedule_and_finished_ones_drop_out() {
        let mut p = Poller::new(Duration::from_millis(1));
        p.add("a", false);
        p.add("b", false);
        let mut asked = Vec::new();
        let steps = p.poll_due(|id| {
            asked.push(id.to_string());
            Ok(resp(id, if id == "a" { "SUCCEEDED" } else { "RUNNING" }))
        });
        assert_eq!(asked, ["a", "b"]);
        assert_eq!(steps.len(), 2);
        assert_eq!(p.len(), 1, "a finished");
        std::thread::sleep(Duration::from_millis(5));
        let steps =
            p.poll_due(|id| Err(TransportError::Network { message: format!("{id} reset"), maybe_delivered: true }));
        assert!(matches!(steps[0].1, Step::Retrying(..)));
        assert_eq!(p.len(), 1, "a transient failure never drops a task");
        assert!(p.next_due().unwrap() > Instant::now(), "backed off");
    }
}
