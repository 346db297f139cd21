//! The `wanprep` command: flags → settings → library calls → exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
