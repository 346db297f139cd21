//! Command-line layer: parsing, rendering, exit codes. All the work is in the library.

mod args;
mod batch;
mod progress;
mod remote;
mod render;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use std::time::Duration;
use wanprep::rules::{Limits, RuleId, LIMITS};

use wanprep::probe::http::HttpOptions;
use wanprep::{check_inputs, CheckOptions, InputSpec, ProbeOptions, Role};

use args::{Cli, ColorWhen, Command};

/// Outcome of a command, mapped once to the contract's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// 0: everything compliant / done.
    Ok,
    /// 1: something is non-compliant.
    NonCompliant,
    /// 2: usage error or an input could not be read.
    Unusable,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::NonCompliant => 1,
            Outcome::Unusable => 2,
        })
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version and 2 for usage errors, as the contract wants.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Check(a) => cmd_check(a),
        Command::Fix(a) => cmd_fix(a),
        Command::Batch(a) => batch::run(a),
        Command::Submit(a) => remote::submit(a),
        Command::Status(a) => remote::status(a),
        Command::Wait(a) => remote::wait(a),
        Command::Tasks(a) => remote::tasks(a),
        Command::Rules(a) => cmd_rules(a),
    };
    match result {
        Ok(o) => o.into(),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wanprep: {}", render::sanitize(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// A closed pipe (`wanprep check … | head`) is not an error worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

pub(crate) fn color_enabled(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

pub(crate) fn parse_limits(pairs: &[String]) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    for pair in pairs {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--limit takes NAME=VALUE, got '{pair}'"))?;
        let value: f64 =
            value.trim().parse().map_err(|_| anyhow::anyhow!("--limit {name}: '{value}' is not a number"))?;
        limits.set(name.trim(), value).map_err(anyhow::Error::msg)?;
    }
    limits.validate().map_err(anyhow::Error::msg)?;
    Ok(limits)
}

fn cmd_check(a: args::CheckArgs) -> anyhow::Result<Outcome> {
    let limits = parse_limits(&a.limit)?;
    let mut inputs: Vec<InputSpec> = Vec::new();
    if let Some(p) = a.image {
        inputs.push(InputSpec::new(p, Some(Role::Image)));
    }
    if let Some(p) = a.video {
        inputs.push(InputSpec::new(p, Some(Role::Video)));
    }
    inputs.extend(a.inputs.into_iter().map(|p| InputSpec::new(p, None)));
    if inputs.is_empty() {
        eprintln!("wanprep check: give at least one INPUT, or --image / --video (see --help)");
        return Ok(Outcome::Unusable);
    }
    for (flag, v) in
        [("--connect-timeout", a.connect_timeout), ("--read-timeout", a.read_timeout), ("--url-timeout", a.url_timeout)]
    {
        if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
            anyhow::bail!("{flag} takes a positive number of seconds, got {v}");
        }
    }
    let http = HttpOptions::default()
        .timeouts(Duration::from_secs_f64(a.connect_timeout), Duration::from_secs_f64(a.read_timeout))
        .retries(a.retries, Duration::from_millis(200))
        .deadline(Duration::from_secs_f64(a.url_timeout));
    let opts = CheckOptions { probe: ProbeOptions::new().deep(a.deep), limits, jobs: a.jobs, http };
    let report = check_inputs(&inputs, &opts);
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        render::check_report(&mut out, &report, color_enabled(a.color))?;
    }
    out.flush()?;
    Ok(if report.any_unreadable() {
        Outcome::Unusable
    } else if report.compliant {
        Outcome::Ok
    } else {
        Outcome::NonCompliant
    })
}

pub(crate) fn parse_hex_color(s: &str, flag: &str) -> anyhow::Result<[u8; 3]> {
    let h = s.trim_start_matches('#');
    let bad = || anyhow::anyhow!("{flag} takes RRGGBB hex, got '{s}'");
    if h.len() != 6 {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

fn cmd_fix(a: args::FixArgs) -> anyhow::Result<Outcome> {
    use wanprep::fix::{AspectMode, FixError, FixSpec};
    let mut spec = FixSpec::default();
    spec.limits = parse_limits(&a.limit)?;
    spec.aspect = match a.aspect {
        args::AspectArg::Pad => AspectMode::Pad,
        args::AspectArg::Crop => AspectMode::Crop,
    };
    spec.anchor = a.anchor.into();
    spec.pad_color = a.pad_color.as_deref().map(|c| parse_hex_color(c, "--pad-color")).transpose()?;
    spec.background = Some(parse_hex_color(&a.background, "--background")?);
    spec.max_decode_bytes = Some(a.max_decode_memory);
    spec.format = match wanprep::fix::format_named_by(&a.output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wanprep fix: {}", render::sanitize(&e.to_string()));
            return Ok(Outcome::Unusable);
        }
    };
    for (flag, v) in [("--start", a.start), ("--duration", a.duration)] {
        if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            anyhow::bail!("{flag} takes a number of seconds >= 0");
        }
    }
    spec.start_s = a.start;
    spec.duration_s = a.duration;
    spec.extend_loop = a.extend == Some(args::ExtendArg::Loop);
    let mut out = io::stdout().lock();
    let input_name = a.input.display().to_string();
    let output_name = a.output.display().to_string();
    if a.dry_run {
        let p = match wanprep::fix::prepare(&a.input, &a.output, None, &spec) {
            Ok(planned) => planned.plan,
            Err(e) => {
                eprintln!("wanprep fix: {}: {}", render::sanitize(&input_name), render::sanitize(&e.to_string()));
                return Ok(Outcome::Unusable);
            }
        };
        if a.json {
            let doc = serde_json::json!({"input": input_name, "output": output_name, "dry_run": true, "plan": p});
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        } else {
            render::fix_plan(&mut out, &input_name, &p)?;
        }
        return Ok(if p.unfixable.is_some() { Outcome::NonCompliant } else { Outcome::Ok });
    }
    let bar = (!a.json && io::stderr().is_terminal()).then(|| progress::delayed_bar(&input_name));
    let report = |p: wanprep::fix::Progress| {
        if let Some(b) = &bar {
            b.update(p);
        }
    };
    let ctl = wanprep::fix::Control { progress: Some(&report), cancel: None };
    let result = wanprep::fix::fix_file_with(&a.input, &a.output, None, &spec, a.force, ctl);
    if let Some(b) = &bar {
        b.finish();
    }
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(FixError::Unfixable(_) | FixError::Failed(_)) => Outcome::NonCompliant,
        // I/O, usage, a missing helper, an internal error, Ctrl-C: not a verdict on the input.
        Err(_) => Outcome::Unusable,
    };
    if a.json {
        let doc = match &result {
            Ok(o) => serde_json::json!({
                "input": input_name, "output": output_name, "compliant": true, "plan": o.plan,
                "changes": o.changes, "media": o.media, "findings": o.findings,
            }),
            Err(e) => {
                serde_json::json!({"input": input_name, "output": output_name, "compliant": false, "error": e.to_string()})
            }
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        match &result {
            Ok(o) => {
                for c in &o.changes {
                    writeln!(out, "{}", render::sanitize(c))?;
                }
                writeln!(out, "wrote {} (compliant)", render::sanitize(&output_name))?;
                for f in &o.findings {
                    writeln!(out, "  warn {}: {}", f.rule, render::sanitize(&f.message))?;
                }
            }
            Err(e) => eprintln!("wanprep fix: {}: {}", render::sanitize(&input_name), render::sanitize(&e.to_string())),
        }
    }
    Ok(outcome)
}

fn cmd_rules(a: args::RulesArgs) -> anyhow::Result<Outcome> {
    let limits = parse_limits(&a.limit)?;
    let mut out = io::stdout().lock();
    if a.markdown {
        write!(out, "{}", wanprep::rules::markdown_table(&limits))?;
        return Ok(Outcome::Ok);
    }
    if a.json {
        let rules: Vec<_> = RuleId::ALL
            .iter()
            .map(|r| {
                serde_json::json!({
                    "rule": r, "applies_to": r.applies_to(), "severity": r.severity(),
                    "requirement": r.requirement(&limits),
                })
            })
            .collect();
        let limit_values: serde_json::Map<_, _> =
            LIMITS.iter().map(|l| (l.name.to_string(), serde_json::json!(l.get(&limits)))).collect();
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({"rules": rules, "limits": limit_values}))?;
        writeln!(out)?;
    } else {
        render::rules(&mut out, &limits)?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
