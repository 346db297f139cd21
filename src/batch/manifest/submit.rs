//! Submitting the ready pairs with at most `max_in_flight` tasks running, polling them all
//! with the one poller, and downloading each result.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{ManifestOptions, PairReport, PairStatus};
use crate::client::poll::{Poller, Step};
use crate::client::{Client, TaskStatus};

/// Submits every ready pair through `client` (at most `max_in_flight` running), polls them all
/// from one loop, and downloads each result into `outdir`. Stops submitting when `cancel` is
/// set; tasks already running keep running and a re-run resumes them.
pub fn submit_all(
    reports: &mut [PairReport],
    client: &mut Client,
    outdir: &Path,
    opts: &ManifestOptions,
    cancel: &AtomicBool,
    on: &mut dyn FnMut(&PairReport),
) {
    let mut queue: std::collections::VecDeque<usize> =
        (0..reports.len()).filter(|i| reports[*i].status == PairStatus::Ready).collect();
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
            match client.start(&job, &out, false, &mut |_| {}) {
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
                    r.error = Some(e.to_string());
                    on(r);
                }
            }
        }
        if poller.is_empty() || cancel.load(Ordering::SeqCst) {
            break;
        }
        let due = poller.next_due().unwrap_or_else(Instant::now);
        while Instant::now() < due && !cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        for (id, step) in poller.poll_due(|id| client.query(id).map(|(r, _)| r)) {
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
                            match client.download(&id, &resp, &out, Some(cancel), &mut |_| {}) {
                                Ok(_) => r.status = PairStatus::Downloaded,
                                Err(e) => {
                                    r.status = PairStatus::Failed;
                                    r.error = Some(e.to_string());
                                }
                            }
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
    }
}
