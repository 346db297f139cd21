//! Progress on stderr, one kind for every command: on a terminal, indicatif bars (a main line —
//! spinner, or a bar once a total is known — and a line per worker); elsewhere, plain lines for
//! what a log should keep, and nothing for what only a live display needs.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the main line shows.
#[derive(Clone, Copy)]
pub enum Style {
    /// A spinner with a message (and a bar once [`Progress::seconds`] gives a total).
    Spinner,
    /// A count of items done of a total.
    Items(&'static str),
}

pub struct Progress {
    multi: Option<MultiProgress>,
    main: Option<ProgressBar>,
    workers: Mutex<Vec<ProgressBar>>,
    /// Plain lines on stderr when there is no terminal (not for `--json` runs).
    lines: bool,
    /// Messages also become plain lines when there is no terminal.
    echo: bool,
    has_total: AtomicBool,
    start: Instant,
    _shown_later: Option<Arc<()>>,
}

impl Progress {
    /// A display on stderr. `quiet`: no plain lines (stdout carries JSON, say). `echo`: without
    /// a terminal, messages are printed as lines. `delay`: draw only work that lasts this long.
    pub fn new(style: Style, quiet: bool, echo: bool, delay: Option<Duration>) -> Progress {
        let quiet = quiet || super::settings::quiet();
        let live = !quiet && io::stderr().is_terminal();
        let mut p = Progress {
            multi: None,
            main: None,
            workers: Mutex::new(Vec::new()),
            lines: !quiet,
            echo,
            has_total: AtomicBool::new(false),
            start: Instant::now(),
            _shown_later: None,
        };
        if !live {
            return p;
        }
        let multi = MultiProgress::with_draw_target(if delay.is_some() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let main = multi.add(match style {
            Style::Spinner => {
                let b = ProgressBar::new_spinner();
                b.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"));
                b.enable_steady_tick(Duration::from_millis(120));
                b
            }
            Style::Items(what) => {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{wide_bar}} {{pos}}/{{len}} {what} [{{elapsed}} < {{eta}}]"
                    ))
                    .expect("valid template"),
                );
                b
            }
        });
        if let Some(d) = delay {
            // Quick work stays quiet: the display appears only if the work is still going.
            let alive = Arc::new(());
            let weak = Arc::downgrade(&alive);
            let (m, b) = (multi.clone(), main.clone());
            std::thread::spawn(move || {
                std::thread::sleep(d);
                if weak.upgrade().is_some() && !b.is_finished() {
                    m.set_draw_target(ProgressDrawTarget::stderr());
                }
            });
            p._shown_later = Some(alive);
        }
        p.multi = Some(multi);
        p.main = Some(main);
        p
    }

    /// A line worth keeping: above the bars, or on stderr.
    pub fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None if self.lines => eprintln!("{msg}"),
            None => {}
        }
    }

    /// The main line's message (a plain line too, with `echo`, when there is no terminal).
    pub fn message(&self, msg: String) {
        match &self.main {
            Some(b) => b.set_message(msg),
            None if self.echo => self.line(&msg),
            None => {}
        }
    }

    /// Like [`Progress::message`], with the time so far on a plain line.
    pub fn timed_message(&self, msg: String) {
        match &self.main {
            Some(b) => b.set_message(msg),
            None if self.echo => self.line(&format!("{msg} after {:.0} s", self.start.elapsed().as_secs_f64())),
            None => {}
        }
    }

    /// Seconds of media done of a total: the main line becomes a bar.
    pub fn seconds(&self, done: f64, total: f64) {
        let Some(b) = &self.main else { return };
        if total.is_nan() || total <= 0.0 {
            return;
        }
        if !self.has_total.swap(true, Ordering::SeqCst) {
            b.set_length((total * 10.0) as u64);
            b.set_style(
                ProgressStyle::with_template("{msg} {wide_bar} {percent:>3}% [{elapsed} < {eta}]")
                    .expect("valid template"),
            );
        }
        b.set_position((done.clamp(0.0, total) * 10.0) as u64);
    }

    /// The number of items to do.
    pub fn set_total(&self, n: u64) {
        if let Some(b) = &self.main {
            b.set_length(n);
        }
    }

    /// One more item done.
    pub fn inc(&self) {
        if let Some(b) = &self.main {
            b.inc(1);
        }
    }

    /// The message on worker `i`'s line (created on first use).
    pub fn worker(&self, i: usize, msg: impl FnOnce(&str) -> String) {
        let Some(multi) = &self.multi else { return };
        let Ok(mut w) = self.workers.lock() else { return };
        while w.len() <= i {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(150));
            w.push(b);
        }
        let old = w[i].message();
        w[i].set_message(msg(&old));
    }

    /// Whether anything is drawn live.
    pub fn is_live(&self) -> bool {
        self.multi.is_some()
    }

    pub fn finish(&self) {
        if let Ok(w) = self.workers.lock() {
            for b in w.iter() {
                b.finish_and_clear();
            }
        }
        if let Some(b) = &self.main {
            b.finish_and_clear();
        }
    }
}
