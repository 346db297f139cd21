//! Memory shared by a run's workers: each fix reserves what its header says it takes, and a
//! worker waits until its reservation fits, so `--jobs` cannot multiply a decompression bomb.

use std::sync::Mutex;

/// Half of the machine's memory (from `/proc/meminfo`), or 2 GiB when it cannot be read.
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    total.map_or(2 << 30, |t| t / 2)
}

/// Memory shared by the workers of a run: each fix reserves its estimate first.
pub(super) struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: std::sync::Condvar,
}

/// A reservation, returned when dropped.
pub(super) struct Reserved<'a>(&'a MemoryBudget, u64);

impl MemoryBudget {
    pub(super) fn new(total: u64) -> Self {
        MemoryBudget { total, used: Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    /// Waits until `bytes` fit beside what other workers hold (one reservation alone always
    /// may start, so a fix larger than the total is refused by its own budget, not stuck).
    pub(super) fn reserve(&self, bytes: u64) -> Reserved<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && used.saturating_add(bytes) > self.total {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used = used.saturating_add(bytes);
        Reserved(self, bytes)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(self.1);
        self.0.freed.notify_all();
    }
}

/// What a video fix takes in memory (the FFmpeg helper decoding, filtering and encoding 2048 px
/// frames): a reservation, not a cap.
pub(super) const VIDEO_FIX_MEMORY: u64 = 320 << 20;
