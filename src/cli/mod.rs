//! Command-line layer: flags (`args`) → settings (`settings`) → one library call per command →
//! rendering (`render`, `progress`) and the contract's exit codes. All the work is in the library.

/// `println!` that hands a closed pipe back as an error (`?`, then a quiet exit) instead of
/// panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 2 && (args[1] == "--version" || args[1] == "-V") {
        return version();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version and 2 for usage errors, as the contract wants.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let json = cli.command.wants_json();
    settings::set_output(cli.color, cli.quiet);
    if cli.quiet && !json {
        silence_stdout();
    }
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
        Command::Completions(a) => shell_completions(a.shell),
        Command::Man => man_page(),
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

/// `--version`: this build, its helper and the FFmpeg the helper runs on.
fn version() -> ExitCode {
    let helper = match wanprep::av::helper_version() {
        Ok(v) => v,
        Err(e) => format!("no FFmpeg helper: {e}"),
    };
    let mut out = io::stdout().lock();
    match writeln!(out, "wanprep {}\n{helper}", env!("CARGO_PKG_VERSION")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// `--quiet`: stdout goes to /dev/null, so no report line anywhere needs its own test.
fn silence_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        #[allow(unsafe_code)]
        // SAFETY: dup2 onto the process's own stdout descriptor; `null` stays valid for the call.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

fn shell_completions(shell: clap_complete::Shell) -> anyhow::Result<Outcome> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wanprep", &mut buf);
    io::stdout().lock().write_all(&buf)?;
    Ok(Outcome::Ok)
}

fn man_page() -> anyhow::Result<Outcome> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    io::stdout().lock().write_all(&buf)?;
    Ok(Outcome::Ok)
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
