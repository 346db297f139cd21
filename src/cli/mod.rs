//! Command-line layer: flags (`args`) → settings (`settings`) → one library call per command →
//! rendering (`render`, `progress`) and the contract's exit codes. All the work is in the library.

mod args;
mod batch;
mod check;
mod fix;
mod progress;
mod render;
mod settings;
mod signal;
mod submit;
mod tasks;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use wanprep::report::ErrorReport;

use args::{Cli, Command};

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
    let json = cli.command.wants_json();
    let result = match cli.command {
        Command::Check(a) => check::check(a),
        Command::Fix(a) => fix::fix(a),
        Command::Batch(a) => batch::run(a),
        Command::Submit(a) => submit::submit(a),
        Command::Status(a) => submit::status(a),
        Command::Wait(a) => submit::wait(a),
        Command::Tasks(a) => tasks::tasks(a),
        Command::Cancel(a) => tasks::cancel(a),
        Command::Adopt(a) => tasks::adopt(a),
        Command::Rules(a) => check::rules(a),
    };
    match result {
        Ok(o) => o.into(),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            if json {
                // `--json` promises one JSON document on stdout, failures included.
                let _ = emit_json(&ErrorReport { error: message.clone(), hint: None });
            }
            eprintln!("wanprep: {}", render::sanitize(&message));
            ExitCode::from(2)
        }
    }
}

/// One JSON document on stdout, pretty-printed, with a final newline.
pub(crate) fn emit_json(doc: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    // As an io::Error, so a closed pipe is recognised as one.
    serde_json::to_writer_pretty(&mut out, doc).map_err(io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A closed pipe (`wanprep check … | head`) is not an error worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
