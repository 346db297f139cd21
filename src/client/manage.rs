//! Task management beyond one task: the service's batch query (`GET /tasks`), which finds the
//! task of a create whose answer was lost, and cancel (`POST /tasks/{id}/cancel`), which stops
//! paying for a task still PENDING.

use serde::Serialize;
use std::collections::BTreeMap;

use super::{url_segment, ApiError, Client, TaskStatus, TransportError, MODEL};

/// One task of the service's list.
#[derive(Debug, Clone, Serialize)]
pub struct ListedTask {
    /// Its id.
    pub task_id: String,
    /// Its status when listed.
    pub status: Option<String>,
    /// Creation time, Unix milliseconds (`gmt_create`).
    pub created_ms: Option<i64>,
    /// The model it runs.
    pub model_name: Option<String>,
}

impl ListedTask {
    /// The creation time as `YYYY-MM-DD HH:MM:SS UTC`, or `?`.
    pub fn created_utc(&self) -> String {
        self.created_ms.map_or_else(|| "?".into(), |ms| format!("{} UTC", crate::dates::utc(ms.div_euclid(1000))))
    }
}

/// Tasks per page asked for: the documented default page size is 10; the largest accepted is
/// not documented, so stay modest.
const PAGE_SIZE: u32 = 20;
/// Pages read per query at most (the window is minutes long; this is a runaway guard).
const MAX_PAGES: u32 = 50;
/// The list accepts a span of at most 24 h.
const MAX_SPAN_S: i64 = 24 * 3600;
/// The service writes times in UTC+8 elsewhere; whether the list's window is UTC+8 or UTC is
/// not documented, so the window is asked in both and the answers filtered by `gmt_create`
/// (epoch milliseconds, which mean the same everywhere).
const ZONE_OFFSETS_S: [i64; 2] = [8 * 3600, 0];

/// How a cancel ended.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// The task was PENDING and is now CANCELED; it will not be billed.
    Canceled,
    /// The service refused: the task is not PENDING (already running or finished).
    Refused {
        /// The status a query found afterwards, when it could be read.
        status: Option<TaskStatus>,
        /// The service's answer.
        error: ApiError,
    },
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn millis(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Client {
    /// This account's tasks of [`MODEL`] created between `from` and `to` (Unix seconds), from
    /// the service's batch query: every page of the window read in both time zones, then of the
    /// default window (the last 24 h: in case the window filters on another time than the
    /// creation), all filtered by the creation time each task reports. Spans longer than 24 h
    /// keep the last 24 h.
    pub fn list_created_between(&self, from: i64, to: i64) -> Result<Vec<ListedTask>, TransportError> {
        let from = from.max(to - MAX_SPAN_S);
        let mut found: BTreeMap<String, ListedTask> = BTreeMap::new();
        let windows = ZONE_OFFSETS_S
            .iter()
            .map(|o| Some((crate::dates::compact(from, *o), crate::dates::compact(to, *o))))
            .chain([None]);
        for window in windows {
            self.list_pages(window.as_ref(), &mut found)?;
        }
        let (lo, hi) = (from * 1000, to * 1000 + 999);
        Ok(found
            .into_values()
            .filter(|t| t.model_name.as_deref().is_none_or(|m| m == MODEL))
            .filter(|t| t.created_ms.is_none_or(|ms| (lo..=hi).contains(&ms)))
            .collect())
    }

    /// Every page of one query of the list (`window`: start and end as the service writes them).
    fn list_pages(
        &self,
        window: Option<&(String, String)>,
        found: &mut BTreeMap<String, ListedTask>,
    ) -> Result<(), TransportError> {
        let mut page = 1u32;
        loop {
            let (page_s, size_s) = (page.to_string(), PAGE_SIZE.to_string());
            let mut query = vec![("model_name", MODEL), ("page_no", page_s.as_str()), ("page_size", size_s.as_str())];
            if let Some((start, end)) = window {
                query.extend([("start_time", start.as_str()), ("end_time", end.as_str())]);
            }
            let answer = self.transport.get("tasks", &query)?;
            let doc: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| TransportError::Network {
                message: format!("the task list could not be read: {e}"),
                maybe_delivered: true,
            })?;
            let data = doc.get("data").and_then(|d| d.as_array()).cloned().unwrap_or_default();
            for t in &data {
                let Some(task_id) = t.get("task_id").and_then(text) else { continue };
                let task = ListedTask {
                    task_id: task_id.clone(),
                    status: t.get("status").and_then(text),
                    created_ms: t.get("gmt_create").and_then(millis),
                    model_name: t.get("model_name").and_then(text),
                };
                found.insert(task_id, task);
            }
            // The page count, else the total, else a full page means there may be more.
            let more = match (doc.get("total_page").and_then(millis), doc.get("total").and_then(millis)) {
                (Some(pages), _) => i64::from(page) < pages,
                (None, Some(total)) => i64::from(page) * i64::from(PAGE_SIZE) < total,
                (None, None) => data.len() >= PAGE_SIZE as usize,
            };
            if data.is_empty() || !more || page >= MAX_PAGES {
                return Ok(());
            }
            page += 1;
        }
    }

    /// Cancels a task. Only PENDING tasks can be canceled; for any other the service's refusal
    /// comes back with the status a query then finds. The journal records the outcome.
    pub fn cancel(&mut self, task_id: &str) -> Result<CancelOutcome, TransportError> {
        let key_tag = self.key_tag();
        let path = format!("tasks/{}/cancel", url_segment(task_id));
        match self.transport.post_empty(&path) {
            Ok(_) => {
                let _ = self.journal.adopt(task_id, &key_tag);
                let _ = self.journal.status(task_id, TaskStatus::Canceled.as_str(), Some("canceled by wanprep cancel"));
                Ok(CancelOutcome::Canceled)
            }
            Err(TransportError::Api { error, .. }) if error.http_status == 400 || error.http_status == 409 => {
                // Recorded for a journal task; a task the journal does not hold stays out of it.
                let status = self.query(task_id).ok().map(|(resp, _)| {
                    self.record_status(task_id, &resp);
                    resp.status()
                });
                Ok(CancelOutcome::Refused { status, error })
            }
            Err(e) => Err(e),
        }
    }
}
