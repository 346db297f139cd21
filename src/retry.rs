//! The one retry policy: exponential backoff from a base, jittered by a factor in [0.5, 1.5)
//! so many clients spread apart, capped; a server's `Retry-After` wins (floored at 100 ms and
//! held to a maximum). Each caller names its policy here, so they are compared in one place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A backoff policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest computed delay.
    pub cap: Duration,
    /// The longest a server's `Retry-After` is obeyed.
    pub max_wait: Duration,
}

impl Backoff {
    /// `base`, doubling per attempt, capped at `cap` (and `Retry-After` at `cap` too).
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap, max_wait: cap }
    }

    /// Obeys a server's `Retry-After` up to `max_wait` instead of `cap`.
    pub const fn retry_after_up_to(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The delay before retry `attempt` (0-based): the server's `Retry-After` if it sent one,
    /// else `base * 2^attempt`, jittered, capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.max(Duration::from_millis(100)).min(self.max_wait),
            None => self.base.saturating_mul(1 << attempt.min(16)).mul_f64(crate::net::jitter()).min(self.cap),
        }
    }
}

/// Remote probing: 200 ms (or `--retries`' base), at most 2 s; the URL's deadline cuts it shorter.
pub const PROBE: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
/// A task query that failed transiently: 1, 2, 4 … 60 s; `Retry-After` obeyed as sent.
pub const POLL: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).retry_after_up_to(Duration::MAX);
/// A throttled create (no task was made): as a poll, `Retry-After` obeyed up to 60 s.
pub const CREATE: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// An upload the storage refused for now: 0.5, 1, 2 … 30 s.
pub const UPLOAD: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
/// A result download that broke off: 0.6, 1.2 … 10 s between resumes.
pub const DOWNLOAD: Backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(10));

/// Sleeps `d`, waking early when `cancel` is set; returns false when cancelled.
pub fn sleep(d: Duration, cancel: Option<&AtomicBool>) -> bool {
    let until = Instant::now() + d;
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_its_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d = b.delay(0, None);
        assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(150), "{d:?}");
        let d = b.delay(3, None);
        assert!(d >= Duration::from_millis(400) && d < Duration::from_millis(1200), "{d:?}");
        assert!(b.delay(40, None) <= Duration::from_secs(2));
    }

    #[test]
    fn retry_after_wins_within_its_bounds() {
        assert_eq!(CREATE.delay(0, Some(Duration::from_secs(5))), Duration::from_secs(5));
        assert_eq!(CREATE.delay(0, Some(Duration::from_secs(600))), Duration::from_secs(60));
        assert_eq!(POLL.delay(0, Some(Duration::from_secs(600))), Duration::from_secs(600));
        assert_eq!(UPLOAD.delay(0, Some(Duration::ZERO)), Duration::from_millis(100));
    }

    #[test]
    fn a_cancelled_sleep_returns_at_once() {
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        assert!(!sleep(Duration::from_secs(10), Some(&stop)));
        assert!(t.elapsed() < Duration::from_millis(100));
        assert!(sleep(Duration::from_millis(30), None));
    }
}
