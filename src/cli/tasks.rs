//! `tasks`: the journal's entries, as a table or JSON. Needs no API key.

use std::io::{self, Write};

use wanprep::client::{self, Config, ConfigOverrides};
use wanprep::report::TasksReport;

use super::args::TasksArgs;
use super::render::sanitize;
use super::{emit_json, Outcome};

pub fn tasks(a: TasksArgs) -> anyhow::Result<Outcome> {
    let dir = Config::state_dir_from_env(&ConfigOverrides { state_dir: a.state_dir.clone(), ..Default::default() })?;
    let journal = dir.join("journal.sqlite3");
    let tasks = client::list_tasks(&dir)?;
    if a.json {
        emit_json(&TasksReport { journal, tasks })?;
        return Ok(Outcome::Ok);
    }
    let mut out = io::stdout().lock();
    if tasks.is_empty() {
        writeln!(out, "no tasks in {}", sanitize(&dir.display().to_string()))?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "{:<38} {:<10} {:<10} {:<8} {:<24} INPUTS -> OUTPUT",
        "TASK", "STATE", "STATUS", "MODE", "RECORDED (UTC)"
    )?;
    for e in &tasks {
        let inputs =
            if e.image.is_empty() { "(added by wait)".to_string() } else { format!("{} + {}", e.image, e.video) };
        let output = e.output_path.as_deref().map(|p| format!(" -> {p}")).unwrap_or_default();
        writeln!(
            out,
            "{:<38} {:<10} {:<10} {:<8} {:<24} {}",
            sanitize(e.task_id.as_deref().unwrap_or("-")),
            format!("{:?}", e.state).to_lowercase(),
            sanitize(e.task_status.as_deref().unwrap_or("-")),
            sanitize(&e.mode),
            e.recorded_utc(),
            sanitize(&format!("{inputs}{output}"))
        )?;
    }
    Ok(Outcome::Ok)
}
