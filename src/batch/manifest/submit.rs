//! Submitting the ready pairs with at most `max_in_flight` tasks running, polling them all
//! with the one poller, and downloading each result.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{ManifestOptions, PairReport, PairStatus};
use crate::client::poll::{Poller, Step};
use crate::client::{Client, TaskStatus};

/// The tasks an interrupted run leaves behind.
#[derive(Debug, Default)]
pub struct Left {
    /// Still PENDING (queued, not yet billed): canceling them stops paying for them.
    pub pending: Vec<String>,
    /// Canceled by this run (`cancel_on_interrupt`).
    pub canceled: Vec<String>,
}

/// Submits every ready pair through `client` (at most `max_in_flight` running), polls them all
/// from one loop, and downloads each result into `outdir`. Stops submitting when `cancel` is
/// set; tasks already running keep running and a re-run resumes them. The tasks still PENDING
/// then are returned (or, with `cancel_on_interrupt`, canceled).
pub fn submit_all(
    reports: &mut [PairReport],
    client: &mut Client,
    outdir: &Path,
    opts: &ManifestOptions,
    cancel: &AtomicBool,
    on: &mut dyn FnMut(&PairReport),
) -> Left {
    let mut queue: std::collections::VecDeque<usize> =
        (0..reports.len()).filter(|i| reports[*i].status == PairStatus::Ready).collect();
    // Every local input goes to temporary storage first, several at once; the creates below
    // then find them in the journal. A failed upload is tried again (and reported) by `start`.
    if !cancel.load(Ordering::SeqCst) {
        let jobs: Vec<_> = queue.iter().map(|&i| reports[i].job()).collect();
        let _ = client.upload_ahead(&jobs, opts.jobs, opts.new_task, &mut |_| {});
    }
    // The one poller (as `wait` uses), and which pairs wait on each task.
    let mut poller = Poller::new(opts.poll_interval);
    let mut waiting: Vec<(String, Vec<usize>)> = Vec::new();
    let max = opts.max_in_flight.max(1);
    loop {
        while poller.len() < max && !cancel.load(Ordering::SeqCst) {
            let Some(i) = queue.pop_front() else { break };
            let r = &mut reports[i];
            let job = r.job();
            let out = outdir.join(r.output.clone().unwrap_or_else(|| job.default_output()));
            // The same first half of the flow `submit` runs (`Client::start`); the waiting is
            // shared between all tasks below.
            match client.start(&job, &out, opts.new_task, &mut |_| {}) {
                Ok(s) => {
                    r.resumed = s.resumed;
                    let id = s.task_id;
                    r.task_id = Some(id.clone());
                    r.status = PairStatus::Submitted;
                    if s.already_saved {
                        r.status = PairStatus::Downloaded;
                        r.task_status = Some("SUCCEEDED".into());
                        on(r);
                    } else if let Some((_, pairs)) = waiting.iter_mut().find(|(t, _)| *t == id) {
                        // Another row of the same job: one task, its result saved for both.
                        pairs.push(i);
                    } else {
                        poller.add(&id, !r.resumed);
                        waiting.push((id, vec![i]));
                    }
                }
                Err(e) => {
                    r.status = PairStatus::Failed;
                    // The hint matters most here: a lost create says how it will be resolved.
                    r.error = Some(match e.hint() {
                        Some(h) => format!("{e}; {h}"),
                        None => e.to_string(),
                    });
                    on(r);
                }
            }
        }
        if poller.is_empty() {
            break;
        }
        if cancel.load(Ordering::SeqCst) {
            return leave(reports, &waiting, client, opts);
        }
        let due = poller.next_due().unwrap_or_else(Instant::now);
        while Instant::now() < due && !cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cancel.load(Ordering::SeqCst) {
            return leave(reports, &waiting, client, opts);
        }
        // The due tasks are asked several at once, and this round's results downloaded several
        // at once (each request still takes its slot of the rate limiter).
        let parallel = if opts.jobs == 0 { crate::client::DEFAULT_PARALLEL_UPLOADS } else { opts.jobs };
        let transport = client.transport().clone();
        let steps = poller.poll_due_parallel(parallel, |id| crate::client::query_task(&transport, id).map(|(r, _)| r));
        let mut downloads: Vec<(String, crate::client::TaskResponse, std::path::PathBuf)> = Vec::new();
        let mut downloads_for: Vec<usize> = Vec::new();
        for (id, step) in steps {
            let pairs = match &step {
                Step::Status(s, _) if !s.is_terminal() => {
                    waiting.iter().find(|(t, _)| *t == id).map(|(_, p)| p.clone()).unwrap_or_default()
                }
                Step::Retrying(..) => continue,
                _ => waiting.iter().position(|(t, _)| *t == id).map(|k| waiting.remove(k).1).unwrap_or_default(),
            };
            match step {
                Step::Status(status, resp) => {
                    client.record_status(&id, &resp);
                    for &i in &pairs {
                        reports[i].task_status = Some(status.to_string());
                    }
                    if !status.is_terminal() {
                        continue;
                    }
                    for i in pairs {
                        let r = &mut reports[i];
                        if status == TaskStatus::Succeeded {
                            let out = outdir.join(r.output.clone().unwrap_or_else(|| format!("{id}.mp4").into()));
                            r.generated_seconds = resp.video_duration();
                            downloads.push((id.clone(), (*resp).clone(), out));
                            downloads_for.push(i);
                            continue;
                        } else {
                            r.status = PairStatus::Failed;
                            r.error = Some(format!(
                                "task {status}: {} {}",
                                resp.output.code.as_deref().unwrap_or(""),
                                resp.output.message.as_deref().unwrap_or("")
                            ));
                        }
                        on(r);
                    }
                }
                Step::Fatal(e) => {
                    for i in pairs {
                        reports[i].status = PairStatus::Failed;
                        reports[i].error = Some(e.to_string());
                        on(&reports[i]);
                    }
                }
                Step::Retrying(..) => {}
            }
        }
        let saved = client.download_many(&downloads, parallel, Some(cancel));
        for (i, result) in downloads_for.into_iter().zip(saved) {
            let r = &mut reports[i];
            match result {
                Ok(_) => r.status = PairStatus::Downloaded,
                Err(e) => {
                    r.status = PairStatus::Failed;
                    r.error = Some(e.to_string());
                }
            }
            on(r);
        }
    }
    Left::default()
}

/// Interrupted: the tasks still waited on that were last seen PENDING (or not seen yet) are
/// listed, or canceled when asked. Running ones cannot be canceled; a re-run resumes them.
fn leave(
    reports: &[PairReport],
    waiting: &[(String, Vec<usize>)],
    client: &mut Client,
    opts: &ManifestOptions,
) -> Left {
    let mut left = Left::default();
    for (id, pairs) in waiting {
        let pending = pairs.iter().all(|&i| reports[i].task_status.as_deref().is_none_or(|s| s == "PENDING"));
        if !pending {
            continue;
        }
        if opts.cancel_on_interrupt {
            if let Ok(crate::client::CancelOutcome::Canceled) = client.cancel(id) {
                left.canceled.push(id.clone());
                continue;
            }
        }
        left.pending.push(id.clone());
    }
    left
}
