//! `fix`: flags → the library's prepare and execute → the changes, as text or JSON.

use std::io::{self, Write};
use std::time::Duration;

use wanprep::fix::{Control, FixError};
use wanprep::report::FixReport;

use super::args::FixArgs;
use super::progress::{Progress, Style};
use super::render::sanitize;
use super::{emit_json, render, settings, Outcome};

pub fn fix(a: FixArgs) -> anyhow::Result<Outcome> {
    let mut spec = settings::fix_spec(&a.fix)?;
    for (flag, v) in [("--start", a.start), ("--duration", a.duration)] {
        if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            anyhow::bail!("{flag} takes a number of seconds >= 0");
        }
    }
    spec.start_s = a.start;
    spec.duration_s = a.duration;
    let input = a.input.display().to_string();
    let output = a.output.display().to_string();
    let fail = |e: &FixError| -> anyhow::Result<Outcome> {
        if a.json {
            emit_json(&FixReport::failed(&input, &output, message(e)))?;
        }
        eprintln!("wanprep fix: {}: {}", sanitize(&input), sanitize(&message(e)));
        Ok(outcome(e))
    };
    spec.format = match wanprep::fix::format_named_by(&a.output) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    if let Some(video) = &a.match_framing {
        spec.match_framing = match wanprep::fix::framing_match(&a.input, video) {
            Ok(m) => Some(m),
            Err(e) => return fail(&e),
        };
    }
    if a.dry_run {
        let plan = match wanprep::fix::prepare(&a.input, &a.output, None, &spec) {
            Ok(p) => p.plan,
            Err(e) => return fail(&e),
        };
        let plan = &plan;
        if a.json {
            emit_json(&FixReport::dry_run(&input, &output, plan))?;
        } else {
            render::fix_plan(&mut io::stdout().lock(), &input, plan)?;
        }
        return Ok(if plan.unfixable.is_some() { Outcome::NonCompliant } else { Outcome::Ok });
    }
    let progress = Progress::new(Style::Spinner, a.json, false, Some(Duration::from_secs(1)));
    progress.message(format!("fixing {}", sanitize(&input)));
    let report = |p: wanprep::fix::Progress| {
        if let Some(total) = p.total_s {
            progress.seconds(p.done_s, total);
        }
    };
    let ctl = Control { progress: Some(&report), cancel: None };
    // Refuses an OUTPUT it may not replace before probing, then prepares and executes.
    let result = wanprep::fix::fix_file_with(&a.input, &a.output, None, &spec, a.force, ctl);
    progress.finish();
    let o = match result {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    if a.json {
        emit_json(&FixReport::written(&input, &output, &o))?;
        return Ok(Outcome::Ok);
    }
    let mut out = io::stdout().lock();
    for c in &o.changes {
        writeln!(out, "{}", sanitize(c))?;
    }
    writeln!(out, "wrote {} (compliant)", sanitize(&output))?;
    for f in &o.findings {
        writeln!(out, "  warn {}: {}", f.rule, sanitize(&f.message))?;
    }
    Ok(Outcome::Ok)
}

/// The library's error with the flag that changes it, for people.
fn message(e: &FixError) -> String {
    match e {
        FixError::OutputExists(_) => format!("{e}: pass --force to replace it"),
        FixError::OutputIsInput => format!("{e}: choose another -o"),
        other => other.to_string(),
    }
}

fn outcome(e: &FixError) -> Outcome {
    // I/O, usage, a missing helper, an internal error, Ctrl-C: not a verdict on the input.
    if e.is_verdict() {
        Outcome::NonCompliant
    } else {
        Outcome::Unusable
    }
}
