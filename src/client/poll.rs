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

/// Polls `query` until a terminal status, the timeout or cancellation.
pub fn wait_with(
    mut query: impl FnMut() -> Result<TaskResponse, TransportError>,
    opts: &WaitOptions,
    mut on: impl FnMut(PollEvent<'_>),
) -> Result<TaskResponse, WaitError> {
    let start = Instant::now();
    let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst));
    let mut last = String::from("PENDING");
    let mut polls = 0u32;
    let mut failures = 0u32;
    let mut next = if opts.delay_first { poll_delay(0, opts.poll_interval) } else { Duration::ZERO };
    loop {
        // Sleep in short slices so Ctrl-C and the timeout are honoured promptly.
        let until = Instant::now() + next;
        loop {
            if cancelled() {
                return Err(WaitError::Interrupted { last });
            }
            if let Some(t) = opts.timeout {
                if start.elapsed() >= t {
                    return Err(WaitError::Timeout { last, elapsed: start.elapsed() });
                }
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
        match query() {
            Ok(resp) => {
                failures = 0;
                let status = resp.status();
                last = status.to_string();
                on(PollEvent::Status(status, &resp));
                if status.is_terminal() {
                    return Ok(resp);
                }
                next = poll_delay(polls, opts.poll_interval);
                polls += 1;
            }
            Err(e) if e.is_transient() => {
                next = failure_delay(failures, e.retry_after());
                failures += 1;
                on(PollEvent::Retrying(&e, next));
            }
            Err(e) => return Err(WaitError::Fatal(e)),
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
