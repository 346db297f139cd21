//! Checking each pair in its roles, and fixing its local inputs into `OUTDIR/inputs/`.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::{ManifestOptions, Pair, PairReport, PairStatus};
use crate::fix::{self, Control};
use crate::inspect::InputReport;
use crate::inspect::{check_input, CheckOptions, InputSpec};
use crate::probe::looks_like_url;
use crate::rules::Role;

/// Checks (and fixes) every pair in parallel; the fixed inputs go to `outdir/inputs/`.
pub fn prepare(pairs: &[Pair], outdir: &Path, opts: &ManifestOptions, cancel: &AtomicBool) -> Vec<PairReport> {
    crate::pool::map(pairs, opts.jobs, |_, i, p| prepare_pair(p, i, outdir, opts, cancel))
}

fn prepare_pair(p: &Pair, index: usize, outdir: &Path, opts: &ManifestOptions, cancel: &AtomicBool) -> PairReport {
    let copts =
        CheckOptions { limits: opts.fix.limits.clone(), jobs: 1, quality: opts.quality, ..CheckOptions::default() };
    let image = check_input(&InputSpec::new(p.image.clone(), Some(Role::Image)), &copts);
    let video = check_input(&InputSpec::new(p.video.clone(), Some(Role::Video)), &copts);
    let mut r = PairReport {
        pair: p.clone(),
        image_used: p.image.clone(),
        video_used: p.video.clone(),
        image,
        video,
        changes: Vec::new(),
        status: PairStatus::Ready,
        task_id: None,
        task_status: None,
        resumed: false,
        output: None,
        error: None,
        video_seconds: None,
        generated_seconds: None,
    };
    r.video_seconds = r.video.media.as_ref().and_then(|m| m.duration_s);
    for (role, rep) in [(Role::Image, r.image.clone()), (Role::Video, r.video.clone())] {
        if rep.compliant {
            continue;
        }
        let src = if role == Role::Image { &p.image } else { &p.video };
        if looks_like_url(src) || rep.media.is_none() {
            r.status = PairStatus::Unfixable;
            r.error = Some(format!("{src}: {}", rep.error.clone().unwrap_or_else(|| first_error(&rep))));
            return r;
        }
        // Planned once, from the facts the check found; executed as planned.
        let facts = rep.media.clone().unwrap_or_else(|| crate::MediaFacts::new(crate::Format::Unknown, 0));
        let planned = fix::Planned::new(Path::new(src), facts, role, &opts.fix);
        if let Some(why) = &planned.plan.unfixable {
            r.status = PairStatus::Unfixable;
            r.error = Some(format!("{src}: {why}"));
            return r;
        }
        if role == Role::Video {
            r.video_seconds = planned.plan.output_duration(r.video_seconds);
        }
        if opts.dry_run {
            r.changes.push(format!("{src}: would be fixed ({})", describe_ops(&planned.plan)));
            continue;
        }
        let name = Path::new(src).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let rel = crate::batch::naming::output_rel(
            Path::new(&name),
            &planned.plan,
            Path::new(&name).file_stem().unwrap_or_default(),
        );
        let dst = outdir.join("inputs").join(format!("{}-{}", index + 1, rel.display()));
        if let Some(d) = dst.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let ctl = Control { progress: None, cancel: Some(cancel) };
        match fix::execute(&planned, &dst, true, ctl) {
            Ok(o) => {
                r.changes.extend(o.changes.into_iter().map(|c| format!("{name}: {c}")));
                if role == Role::Image {
                    r.image_used = dst.display().to_string();
                } else {
                    r.video_used = dst.display().to_string();
                }
            }
            Err(e) => {
                r.status = PairStatus::Unfixable;
                r.error = Some(format!("{src}: {e}"));
                return r;
            }
        }
    }
    r
}

/// The plan's operations by name (`trim, remux`).
fn describe_ops(plan: &fix::FixPlan) -> String {
    let names: Vec<String> = plan
        .ops
        .iter()
        .filter_map(|op| match serde_json::to_value(op).ok()? {
            serde_json::Value::Object(m) => {
                m.get("op").and_then(|v| v.as_str()).map(str::to_string).or_else(|| m.keys().next().cloned())
            }
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
        .collect();
    names.join(", ")
}

fn first_error(r: &InputReport) -> String {
    r.findings.iter().find(|f| f.is_error()).map(|f| format!("{}: {}", f.rule, f.message)).unwrap_or_default()
}
