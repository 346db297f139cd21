//! Integration tests: one binary, a module per area.

mod util;

mod check_cli;
mod ffprobe_crosscheck;
mod hostile;
mod large_files;
mod probe_fixtures;
mod rules_boundaries;
