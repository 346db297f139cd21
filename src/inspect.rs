//! Probe + rules for a list of inputs: the `check` flow, run in parallel over the inputs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::probe::{probe_path, Kind, ProbeOptions};
use crate::report::{CheckReport, InputReport};
use crate::rules::{check, is_compliant, pair_findings, Limits, Role};

/// One input to check: a path and, optionally, the role it is meant for.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Local path.
    pub path: PathBuf,
    /// `Some` when given as `--image` / `--video`.
    pub role: Option<Role>,
}

/// Settings for [`check_inputs`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Probe options (`--deep`).
    pub probe: ProbeOptions,
    /// The limits to check against.
    pub limits: Limits,
    /// Worker threads (0 = one per core).
    pub jobs: usize,
}

/// Probes and checks every input (in parallel), adding pair findings when exactly one image
/// role and one video role were given.
///
/// ```
/// use wanprep::{check_inputs, CheckOptions, InputSpec, Role};
/// let report = check_inputs(
///     &[InputSpec { path: "fixtures/image/ok_800x600.jpg".into(), role: Some(Role::Image) }],
///     &CheckOptions::default(),
/// );
/// assert!(report.compliant);
/// ```
pub fn check_inputs(inputs: &[InputSpec], opts: &CheckOptions) -> CheckReport {
    let mut reports = run_parallel(inputs, opts);
    let image = inputs.iter().position(|i| i.role == Some(Role::Image));
    let video = inputs.iter().position(|i| i.role == Some(Role::Video));
    let mut pair = Vec::new();
    if let (Some(i), Some(v)) = (image, video) {
        if let (Some(im), Some(vm)) = (&reports[i].media, &reports[v].media) {
            pair = pair_findings(im, vm);
            reports[v].findings.extend(pair.iter().cloned());
        }
    }
    let compliant = reports.iter().all(|r| r.compliant);
    CheckReport { compliant, inputs: reports, findings: pair }
}

/// Checks one input.
pub fn check_input(input: &InputSpec, opts: &CheckOptions) -> InputReport {
    let name = input.path.display().to_string();
    match probe_path(&input.path, &opts.probe) {
        Ok(facts) => {
            let role = input.role.unwrap_or_else(|| Role::for_kind(facts.kind));
            let findings = check(&facts, role, &opts.limits);
            InputReport {
                input: name,
                kind: facts.kind,
                role: Some(role),
                compliant: is_compliant(&findings),
                media: Some(facts),
                findings,
                error: None,
            }
        }
        Err(e) => InputReport {
            input: name,
            kind: Kind::Unknown,
            role: input.role,
            compliant: false,
            media: None,
            findings: Vec::new(),
            error: Some(io_message(&e)),
        },
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn run_parallel(inputs: &[InputSpec], opts: &CheckOptions) -> Vec<InputReport> {
    let jobs = if opts.jobs == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { opts.jobs }
        .min(inputs.len().max(1));
    if jobs <= 1 {
        return inputs.iter().map(|i| check_input(i, opts)).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<InputReport>>> = Mutex::new(vec![None; inputs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(input) = inputs.get(i) else { break };
                let r = check_input(input, opts);
                results.lock().expect("no panics while holding the lock")[i] = Some(r);
            });
        }
    });
    results.into_inner().expect("threads joined").into_iter().map(|r| r.expect("every input checked")).collect()
}
