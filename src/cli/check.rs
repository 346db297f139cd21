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
    let opts = CheckOptions { probe: ProbeOptions::new().deep(a.deep), limits, jobs: a.jobs, http, quality: a.quality };
    let report = check_inputs(&inputs, &opts);
    if a.json {
        emit_json(&report)?;
    } else {
        let mut out = io::stdout().lock();
        render::check_report(&mut out, &report, settings::color_enabled(a.color))?;
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
