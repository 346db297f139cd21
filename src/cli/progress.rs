//! A progress bar on stderr for work that lasts: hidden for the first second (quick work stays
//! quiet), then a bar when the total is known (video seconds) or a spinner.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wanprep::fix::Progress;

pub struct DelayedBar {
    bar: ProgressBar,
    shown: std::sync::atomic::AtomicBool,
    _ticker: Arc<()>,
}

/// A bar labelled `what`, drawn only once it has existed for a second.
pub fn delayed_bar(what: &str) -> DelayedBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"));
    bar.set_message(format!("fixing {}", super::render::sanitize(what)));
    // A spinner ticks even when no progress arrives (images report none).
    let ticker = Arc::new(());
    let weak = Arc::downgrade(&ticker);
    let b = bar.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        if weak.upgrade().is_some() && !b.is_finished() {
            b.set_draw_target(ProgressDrawTarget::stderr());
            b.enable_steady_tick(Duration::from_millis(120));
        }
    });
    DelayedBar { bar, shown: false.into(), _ticker: ticker }
}

impl DelayedBar {
    pub fn update(&self, p: Progress) {
        use std::sync::atomic::Ordering;
        if let Some(total) = p.total_s.filter(|t| *t > 0.0) {
            if !self.shown.swap(true, Ordering::SeqCst) {
                self.bar.set_length((total * 10.0) as u64);
                self.bar.set_style(
                    ProgressStyle::with_template("{msg} {wide_bar} {percent:>3}% [{elapsed} < {eta}]")
                        .expect("valid template"),
                );
            }
            self.bar.set_position((p.done_s.clamp(0.0, total) * 10.0) as u64);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
