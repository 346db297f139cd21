//! Integration tests: one binary, a module per area.

mod dashscope_server;
mod http_server;
mod util;

mod batch;
mod check_cli;
mod examples;
mod ffprobe_crosscheck;
mod fidelity;
mod fix;
mod hostile;
mod html_report;
mod large_files;
mod money;
mod probe_fixtures;
mod quality;
mod quality_framing;
mod remote;
mod reports;
mod rules_boundaries;
mod safety;
mod shell;
mod submit;
