//! The one request-rate limiter of the process: every API request (create, poll, list, cancel,
//! upload credential) takes a slot first, so however many tasks a run tracks, the account never
//! sees more than N requests in any one-second window. The service's limits are per account
//! (20 task queries a second, a few creates), so one limiter for the whole process, not one per
//! task or per thread.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Requests per second when nothing else is asked for: half the documented 20 queries a second
/// per account, leaving room for another client on the same account.
pub const DEFAULT_MAX_QPS: u32 = 10;

/// The window slots are counted over. A little over a second, so requests spaced here still
/// arrive at most N a second when the network delays one more than the next.
const WINDOW: Duration = Duration::from_millis(1100);
/// The longest a throttling answer pauses every request (longer `Retry-After`s are left to the
/// caller's own backoff, which can be interrupted).
const MAX_HOLD: Duration = Duration::from_secs(10);

/// A sliding-window limiter: at most `per_second` slots in any [`WINDOW`].
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    per_second: u32,
    sent: VecDeque<Instant>,
    hold_until: Option<Instant>,
}

impl RateLimiter {
    /// A limiter of `per_second` requests (at least 1).
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            state: Mutex::new(State { per_second: per_second.max(1), sent: VecDeque::new(), hold_until: None }),
        }
    }

    /// Changes the rate (the newest configuration wins).
    pub fn set_rate(&self, per_second: u32) {
        self.lock().per_second = per_second.max(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a request may be sent, and takes its slot.
    pub fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                while s.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    s.sent.pop_front();
                }
                match s.hold_until {
                    Some(h) if h > now => h - now,
                    _ if s.sent.len() < s.per_second as usize => {
                        s.sent.push_back(now);
                        return;
                    }
                    // The oldest slot in the window frees first.
                    _ => (s.sent[0] + WINDOW).saturating_duration_since(now),
                }
            };
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
    }

    /// The service said slow down: no request leaves before `delay` has passed (at most 10 s).
    pub fn hold(&self, delay: Duration) {
        let until = Instant::now() + delay.min(MAX_HOLD);
        let mut s = self.lock();
        if s.hold_until.is_none_or(|h| h < until) {
            s.hold_until = Some(until);
        }
    }
}

/// The process's limiter.
pub fn global() -> &'static RateLimiter {
    static GLOBAL: OnceLock<RateLimiter> = OnceLock::new();
    GLOBAL.get_or_init(|| RateLimiter::new(DEFAULT_MAX_QPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_n_slots_in_any_window() {
        let l = RateLimiter::new(5);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            l.acquire();
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u - *t < Duration::from_secs(1)).count();
            assert!(in_window <= 5, "{in_window} slots within a second of {t:?}: {times:?}");
        }
        assert!(times[5] >= WINDOW, "the sixth waited for the first to leave the window: {times:?}");
    }

    #[test]
    fn a_hold_delays_every_request() {
        let l = RateLimiter::new(100);
        l.hold(Duration::from_millis(150));
        let start = Instant::now();
        l.acquire();
        assert!(start.elapsed() >= Duration::from_millis(140));
        l.hold(Duration::from_secs(3600));
        assert!(l.lock().hold_until.unwrap() <= Instant::now() + MAX_HOLD);
    }
}
