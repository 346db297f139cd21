//! `tasks` (the journal's entries and what they generated; needs no API key), `cancel` and
//! `adopt`.

use std::io::{self, Write};

use wanprep::client::{self, AdoptError, CancelOutcome, Config, ConfigOverrides, TransportError};
use wanprep::report::{AdoptReport, CancelItem, CancelReport, TasksReport};

use super::args::{AdoptArgs, CancelArgs, TasksArgs};
use super::render::sanitize;
use super::submit::open_client;
use super::{emit_json, settings, Outcome};

pub fn tasks(a: TasksArgs) -> anyhow::Result<Outcome> {
    let prices = settings::prices(a.price.as_deref())?;
    let dir = Config::state_dir_from_env(&ConfigOverrides { state_dir: a.state_dir.clone(), ..Default::default() })?;
    let journal = dir.join("journal.sqlite3");
    let report = TasksReport::new(journal, client::list_tasks(&dir)?, prices.as_ref());
    if a.json {
        emit_json(&report)?;
        return Ok(Outcome::Ok);
    }
    let mut out = io::stdout().lock();
    if report.tasks.is_empty() {
        writeln!(out, "no tasks in {}", sanitize(&dir.display().to_string()))?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "{:<38} {:<10} {:<10} {:<8} {:>7} {:<24} INPUTS -> OUTPUT",
        "TASK", "STATE", "STATUS", "MODE", "SECONDS", "RECORDED (UTC)"
    )?;
    for e in &report.tasks {
        let inputs =
            if e.image.is_empty() { "(added by wait)".to_string() } else { format!("{} + {}", e.image, e.video) };
        let output = e.output_path.as_deref().map(|p| format!(" -> {p}")).unwrap_or_default();
        writeln!(
            out,
            "{:<38} {:<10} {:<10} {:<8} {:>7} {:<24} {}",
            sanitize(e.task_id.as_deref().unwrap_or("-")),
            format!("{:?}", e.state).to_lowercase(),
            sanitize(e.task_status.as_deref().unwrap_or("-")),
            sanitize(e.billed_mode().unwrap_or("-")),
            e.video_duration.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into()),
            e.recorded_utc(),
            sanitize(&format!("{inputs}{output}"))
        )?;
        if let Some(how) = &e.adopted {
            writeln!(out, "{:<38} adopted: {}", "", sanitize(how))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "generated: {} (the service's usage figures)", report.totals.line())?;
    Ok(Outcome::Ok)
}

pub fn cancel(a: CancelArgs) -> anyhow::Result<Outcome> {
    let mut client = open_client(&a.service)?;
    let ids: Vec<String> = if a.all_pending {
        client.journal().pending()?.into_iter().filter_map(|e| e.task_id).collect()
    } else {
        a.task_ids.clone()
    };
    let mut items = Vec::new();
    for id in &ids {
        let item = match client.cancel(id) {
            Ok(CancelOutcome::Canceled) => CancelItem {
                task_id: id.clone(),
                canceled: true,
                status: Some("CANCELED".into()),
                code: None,
                error: None,
            },
            Ok(CancelOutcome::Refused { status, error }) => CancelItem {
                task_id: id.clone(),
                canceled: false,
                status: status.map(|s| s.as_str().to_string()),
                code: Some(error.code.clone()).filter(|c| !c.is_empty()),
                error: Some(error.message.clone()),
            },
            Err(e) => CancelItem {
                task_id: id.clone(),
                canceled: false,
                status: None,
                code: match &e {
                    TransportError::Api { error, .. } => Some(error.code.clone()),
                    _ => None,
                },
                error: Some(e.to_string()),
            },
        };
        items.push(item);
    }
    let canceled = items.iter().filter(|i| i.canceled).count();
    let failed = items.iter().filter(|i| !i.canceled && i.status.is_none()).count();
    let report = CancelReport { canceled, refused: items.len() - canceled - failed, failed, tasks: items };
    if a.json {
        emit_json(&report)?;
    } else {
        if report.tasks.is_empty() {
            outln!("no PENDING tasks in the journal");
        }
        for i in &report.tasks {
            let id = sanitize(&i.task_id);
            match (i.canceled, &i.status) {
                (true, _) => outln!("task {id} canceled (it will not run or be billed)"),
                (false, Some(s)) => eprintln!(
                    "task {id} not canceled: it is {s}, and only PENDING tasks can be canceled ({})",
                    sanitize(i.error.as_deref().unwrap_or(""))
                ),
                (false, None) => eprintln!("task {id}: cancel failed: {}", sanitize(i.error.as_deref().unwrap_or(""))),
            }
        }
    }
    Ok(if report.failed > 0 {
        Outcome::Unusable
    } else if report.refused > 0 {
        Outcome::NonCompliant
    } else {
        Outcome::Ok
    })
}

pub fn adopt(a: AdoptArgs) -> anyhow::Result<Outcome> {
    let mut client = open_client(&a.service)?;
    let job = settings::job(&a.job)?;
    let result = client.adopt(&job, &a.task_id);
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(AdoptError::UnknownTask(_) | AdoptError::JobHasTask(_) | AdoptError::TaskTaken(_)) => Outcome::NonCompliant,
        Err(_) => Outcome::Unusable,
    };
    if a.json {
        emit_json(&AdoptReport {
            adopted: result.is_ok(),
            task_id: a.task_id.clone(),
            status: result.as_ref().ok().and_then(|e| e.task_status.clone()),
            error: result.as_ref().err().map(|e| e.to_string()),
        })?;
    }
    match &result {
        Ok(e) if !a.json => {
            outln!(
                "task {} ({}) adopted for {} + {}",
                sanitize(&a.task_id),
                sanitize(e.task_status.as_deref().unwrap_or("?")),
                sanitize(&a.job.image),
                sanitize(&a.job.video)
            );
            outln!("the same submit (or manifest run) now resumes it; or: wanprep wait {}", sanitize(&a.task_id));
        }
        Ok(_) => {}
        Err(e) => eprintln!("wanprep adopt: {}", sanitize(&e.to_string())),
    }
    Ok(outcome)
}
