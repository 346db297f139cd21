//! `check` and `rules`: flags → the library's check → the report, as text or JSON.

use std::io::{self, Write};

use wanprep::report::RulesReport;
use wanprep::{check_inputs, CheckOptions, InputSpec, ProbeOptions, Role};

use super::args::{CheckArgs, RulesArgs};
use super::{emit_json, render, settings, Outcome};

pub fn check(a: CheckArgs) -> anyhow::Result<Outcome> {
    let limits = settings::limits(&a.limit)?;
    let http = settings::http_options(&a)?;
    let mut inputs: Vec<InputSpec> = Vec::new();
    if let Some(p) = a.image {
        inputs.push(InputSpec::new(p, Some(Role::Image)));
    }
    if let Some(p) = a.video {
        inputs.push(InputSpec::new(p, Some(Role::Video)));
    }
    inputs.extend(a.inputs.into_iter().map(|p| InputSpec::new(p, None)));
    if inputs.is_empty() {
        anyhow::bail!("check: give at least one INPUT, or --image / --video (see --help)");
    }
    // `-` is standard input: spooled to a private temporary file (no bigger than the largest
    // file a role allows, plus one byte to tell it is too big), checked, reported as `-`.
    let stdin_at: Vec<usize> = inputs.iter().enumerate().filter(|(_, i)| i.input == "-").map(|(n, _)| n).collect();
    if stdin_at.len() > 1 {
        anyhow::bail!("check: standard input (-) can be given once");
    }
    let spooled = match stdin_at.first() {
        Some(&n) => {
            let cap = limits.video_max_bytes.max(limits.image_max_bytes).saturating_add(1);
            let file = spool_stdin(cap)?;
            inputs[n].input = file.path().display().to_string();
            Some((n, file))
        }
        None => None,
    };
    let opts = CheckOptions { probe: ProbeOptions::new().deep(a.deep), limits, jobs: a.jobs, http, quality: a.quality };
    let mut report = check_inputs(&inputs, &opts);
    if let Some((n, _)) = &spooled {
        report.inputs[*n].input = "-".into();
    }
    if a.json {
        emit_json(&report)?;
    } else {
        let mut out = io::stdout().lock();
        render::check_report(&mut out, &report, settings::color())?;
        out.flush()?;
    }
    Ok(if report.any_unreadable() {
        Outcome::Unusable
    } else if report.compliant {
        Outcome::Ok
    } else {
        Outcome::NonCompliant
    })
}

/// Copies standard input into a temporary file, at most `cap` bytes (a larger input is judged
/// too big from its first `cap` bytes, as a URL's body is).
fn spool_stdin(cap: u64) -> anyhow::Result<tempfile::NamedTempFile> {
    use std::io::Read;
    let mut file = tempfile::Builder::new().prefix(".wanprep-stdin-").tempfile()?;
    io::copy(&mut io::stdin().lock().take(cap), &mut file)?;
    file.flush()?;
    Ok(file)
}

pub fn rules(a: RulesArgs) -> anyhow::Result<Outcome> {
    let limits = settings::limits(&a.limit)?;
    let mut out = io::stdout().lock();
    if a.markdown {
        write!(out, "{}", wanprep::rules::markdown_table(&limits))?;
    } else if a.json {
        emit_json(&RulesReport::new(&limits))?;
    } else {
        render::rules(&mut out, &limits)?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
