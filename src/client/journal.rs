//! The submit journal: an SQLite file that records every create *before* it is sent and
//! completes it with the task id as soon as it is known, so a re-run never creates a second
//! task for the same job, and a result is downloaded once.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

/// Task ids live 24 h on the service; after that a query says UNKNOWN.
pub const TASK_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Temporary uploads live 48 h; reuse one for at most 46 h, so it outlives the task using it.
pub const UPLOAD_REUSE: Duration = Duration::from_secs(46 * 3600);

/// Where a recorded create stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Recorded, about to be sent (or the process died while sending).
    Sending,
    /// The service answered with a task id.
    Created,
    /// The request may have reached the service, but no answer came: a task may exist.
    Uncertain,
    /// The service refused it: no task exists.
    Rejected,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Sending => "sending",
            EntryState::Created => "created",
            EntryState::Uncertain => "uncertain",
            EntryState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> EntryState {
        match s {
            "created" => EntryState::Created,
            "uncertain" => EntryState::Uncertain,
            "rejected" => EntryState::Rejected,
            _ => EntryState::Sending,
        }
    }
}

/// The fingerprint prefix of an entry `wait` added for a task met without its job.
const PLACEHOLDER: &str = "task:";

fn is_placeholder(fingerprint: &str) -> bool {
    fingerprint.starts_with(PLACEHOLDER)
}

/// The journal's file name in the state folder.
pub(crate) const FILE_NAME: &str = "journal.sqlite3";

/// One recorded submit.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Row id.
    pub id: i64,
    /// Hash of the inputs' contents, the parameters and the endpoint.
    pub fingerprint: String,
    /// Image as given (path or URL).
    pub image: String,
    /// Video as given (path or URL).
    pub video: String,
    /// `wan-std` / `wan-pro`.
    pub mode: String,
    /// Watermark flag.
    pub watermark: bool,
    /// See [`EntryState`].
    pub state: EntryState,
    /// The task id, once known.
    pub task_id: Option<String>,
    /// The last status seen.
    pub task_status: Option<String>,
    /// Unix seconds when the create was recorded.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Where the result was saved.
    pub output_path: Option<String>,
    /// Its size.
    pub output_bytes: Option<i64>,
    /// The last error, if any.
    pub error: Option<String>,
    /// Seconds of video the service generated (its `usage.video_duration`): what is billed.
    pub video_duration: Option<f64>,
    /// The service's `usage.video_ratio` (`standard` for wan-std, `pro` for wan-pro).
    pub video_ratio: Option<String>,
    /// How an uncertain create was resolved into this task (found in the service's task list,
    /// or named by the user with `wanprep adopt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// Which process sends (or sent) the create: `host:pid:start`, to tell a create in flight
    /// from one whose sender died.
    #[serde(skip)]
    pub sender: Option<String>,
}

impl Entry {
    /// When the entry was recorded, as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn recorded_utc(&self) -> String {
        crate::dates::utc(self.created_at)
    }

    /// Whether the task id is still within the service's 24 h validity.
    pub fn within_validity(&self) -> bool {
        now() - self.created_at < TASK_VALIDITY.as_secs() as i64
    }

    /// The mode the task was created in: the recorded one, else what the service's usage says.
    pub fn billed_mode(&self) -> Option<&str> {
        match (self.mode.as_str(), self.video_ratio.as_deref()) {
            ("", Some("standard")) => Some("wan-std"),
            ("", Some("pro")) => Some("wan-pro"),
            ("", _) => None,
            (m, _) => Some(m),
        }
    }

    /// Whether the create of this (sending) entry is still in flight in a live process: the
    /// sender runs on this host and is alive, or — on another host — it started less than
    /// `lease` ago.
    pub fn sender_in_flight(&self, lease: Duration) -> bool {
        if self.state != EntryState::Sending {
            return false;
        }
        match self.sender.as_deref().and_then(sender::alive) {
            Some(alive) => alive,
            None => now() - self.updated_at < lease.as_secs() as i64,
        }
    }
}

/// Who sends a create: this host, this process and its start time (a reused pid is not the
/// same sender).
pub(crate) mod sender {
    fn host() -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
    }

    /// The start time of a process, in clock ticks since boot (field 22 of `/proc/PID/stat`).
    fn start_of(pid: u32) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19).map(str::to_string)
    }

    /// This process.
    pub fn this() -> String {
        let pid = std::process::id();
        format!("{}:{pid}:{}", host(), start_of(pid).unwrap_or_default())
    }

    /// Whether the sender is alive: `None` when it ran on another host (cannot tell).
    pub fn alive(sender: &str) -> Option<bool> {
        let mut parts = sender.rsplitn(3, ':');
        let (start, pid, host_name) = (parts.next()?, parts.next()?, parts.next()?);
        if host_name != host() {
            return None;
        }
        let pid: u32 = pid.parse().ok()?;
        Some(start_of(pid).is_some_and(|s| s == start))
    }
}

/// The journal, one SQLite file in the state directory.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

/// A journal problem (open, disk full, locked too long).
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// The job a create is for.
#[derive(Debug, Clone)]
pub struct JobKey<'a> {
    /// See [`Entry::fingerprint`].
    pub fingerprint: &'a str,
    /// The key's tag: a task is only resumed with the account that created it.
    pub key_tag: &'a str,
    /// Image as given.
    pub image: &'a str,
    /// Video as given.
    pub video: &'a str,
    /// Mode.
    pub mode: &'a str,
    /// Watermark flag.
    pub watermark: bool,
}

/// What to do for a submit, decided atomically (two runs at once cannot both create).
#[derive(Debug, Clone)]
pub enum Decision {
    /// No live task for this job: the intent is recorded under this row id; send the create.
    Create(i64),
    /// A task for this job exists and is not finished or failed: resume it.
    Resume(Entry),
    /// An earlier create has no outcome yet (in flight, or its answer was lost): settle it
    /// before creating (see `resolve`).
    Uncertain(Entry),
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The job's newest entry within the task validity that is not refused, failed, cancelled or
/// unknown: a task to resume, or an uncertain create not to repeat.
fn live_entry(conn: &Connection, job: &JobKey<'_>) -> rusqlite::Result<Option<Entry>> {
    let since = now() - TASK_VALIDITY.as_secs() as i64;
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM tasks WHERE fingerprint = ?1 AND key_tag = ?2 AND created_at > ?3
             AND state != 'rejected'
             AND (task_status IS NULL OR task_status NOT IN ('FAILED', 'CANCELED', 'UNKNOWN'))
             ORDER BY id DESC LIMIT 1"
        ),
        params![job.fingerprint, job.key_tag, since],
        entry,
    )
    .optional()
}

const COLUMNS: &str = "id, fingerprint, image, video, mode, watermark, state, task_id, task_status, created_at, \
                       updated_at, output_path, output_bytes, error, video_duration, video_ratio, adopted, sender";

/// Columns added after the first release: added to an older journal when it is opened.
const ADDED_COLUMNS: [(&str, &str); 4] =
    [("video_duration", "REAL"), ("video_ratio", "TEXT"), ("adopted", "TEXT"), ("sender", "TEXT")];

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: row.get(0)?,
        fingerprint: row.get(1)?,
        image: row.get(2)?,
        video: row.get(3)?,
        mode: row.get(4)?,
        watermark: row.get(5)?,
        state: EntryState::parse(&row.get::<_, String>(6)?),
        task_id: row.get(7)?,
        task_status: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        output_path: row.get(11)?,
        output_bytes: row.get(12)?,
        error: row.get(13)?,
        video_duration: row.get(14)?,
        video_ratio: row.get(15)?,
        adopted: row.get(16)?,
        sender: row.get(17)?,
    })
}

/// How long a run waits for another run's hold on the journal before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Journal {
    /// Opens (creating if needed) `journal.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(FILE_NAME);
        let err = |source| JournalError { path: path.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(|e| {
            err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot create {}: {e}", dir.display())),
            ))
        })?;
        // Several runs may open a fresh journal at once: switching it to WAL and creating the
        // tables can then answer SQLITE_BUSY without calling the busy handler. Such an answer
        // is retried (up to the busy timeout); anything else is an error at once.
        let started = std::time::Instant::now();
        loop {
            match Self::init(&path) {
                Ok(conn) => return Ok(Journal { conn, path }),
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20 + u64::from(started.elapsed().subsec_nanos() % 50)));
                }
                Err(e) => return Err(err(e)),
            }
        }
    }

    fn init(path: &Path) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS tasks (
                 id INTEGER PRIMARY KEY,
                 fingerprint TEXT NOT NULL,
                 key_tag TEXT NOT NULL,
                 image TEXT NOT NULL,
                 video TEXT NOT NULL,
                 mode TEXT NOT NULL,
                 watermark INTEGER NOT NULL,
                 state TEXT NOT NULL,
                 task_id TEXT,
                 task_status TEXT,
                 created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL,
                 output_path TEXT,
                 output_bytes INTEGER,
                 error TEXT
             );
             CREATE INDEX IF NOT EXISTS tasks_fingerprint ON tasks (fingerprint, key_tag);
             CREATE UNIQUE INDEX IF NOT EXISTS tasks_task_id ON tasks (task_id) WHERE task_id IS NOT NULL;
             CREATE TABLE IF NOT EXISTS uploads (
                 sha256 TEXT NOT NULL,
                 key_tag TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 oss_url TEXT NOT NULL,
                 uploaded_at INTEGER NOT NULL,
                 PRIMARY KEY (sha256, key_tag, endpoint)
             );",
        )?;
        let have: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('tasks')")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for (name, ty) in ADDED_COLUMNS {
            if !have.iter().any(|h| h == name) {
                match conn.execute(&format!("ALTER TABLE tasks ADD COLUMN {name} {ty}"), []) {
                    // Another run added it first.
                    Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("duplicate column") => {}
                    other => drop(other?),
                }
            }
        }
        Ok(conn)
    }

    fn err(&self, source: rusqlite::Error) -> JournalError {
        JournalError { path: self.path.display().to_string(), source }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finds a live task for the job or records the intent to create one, in one transaction.
    /// With `force_new`, always records a new intent.
    pub fn decide(&mut self, job: &JobKey<'_>, force_new: bool) -> Result<Decision, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| JournalError { path: self.path.display().to_string(), source: e })?;
        if !force_new {
            let found =
                live_entry(&tx, job).map_err(|e| JournalError { path: self.path.display().to_string(), source: e })?;
            if let Some(e) = found {
                tx.commit().map_err(|e| JournalError { path: self.path.display().to_string(), source: e })?;
                return Ok(match e.state {
                    EntryState::Created => Decision::Resume(e),
                    _ => Decision::Uncertain(e),
                });
            }
        }
        let t = now();
        tx.execute(
            "INSERT INTO tasks (fingerprint, key_tag, image, video, mode, watermark, state, created_at, updated_at, sender)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'sending', ?7, ?7, ?8)",
            params![job.fingerprint, job.key_tag, job.image, job.video, job.mode, job.watermark, t, sender::this()],
        )
        .map_err(|e| JournalError { path: self.path.display().to_string(), source: e })?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| JournalError { path: self.path.display().to_string(), source: e })?;
        Ok(Decision::Create(id))
    }

    /// The newest entry for the job that a submit would resume or must not repeat (see
    /// [`Journal::decide`]), without recording anything.
    pub fn find_live(&self, job: &JobKey<'_>) -> Result<Option<Entry>, JournalError> {
        live_entry(&self.conn, job).map_err(|e| self.err(e))
    }

    /// The create was answered with a task id. An older entry holding the same id (a service —
    /// or a stand-in — that reused one) gives it up: the new task is the one to track.
    pub fn created(&mut self, id: i64, task_id: &str, status: &str) -> Result<(), JournalError> {
        let path = self.path.display().to_string();
        let err = |source| JournalError { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        tx.execute(
            "UPDATE tasks SET task_id = NULL, error = 'the service reused this task id', updated_at = ?3
             WHERE task_id = ?1 AND id != ?2",
            params![task_id, id, now()],
        )
        .map_err(err)?;
        tx.execute(
            "UPDATE tasks SET state = 'created', task_id = ?2, task_status = ?3, error = NULL, updated_at = ?4 WHERE id = ?1",
            params![id, task_id, status, now()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The create ended without a task id: refused (no task) or uncertain (maybe a task).
    pub fn failed_create(&self, id: i64, state: EntryState, error: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE tasks SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), error, now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// A create is about to be sent (again): the attempt's time window grows to now.
    pub fn touch(&self, id: i64) -> Result<(), JournalError> {
        self.conn
            .execute("UPDATE tasks SET updated_at = ?2 WHERE id = ?1", params![id, now()])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The entry with this row id.
    pub fn by_id(&self, id: i64) -> Result<Option<Entry>, JournalError> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"), params![id], entry)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Which of these task ids a job's entry already holds. Tasks `wait` met without a job are
    /// not claims: such a task may be the very one an unanswered create made.
    pub fn claimed(&self, task_ids: &[&str]) -> Result<Vec<String>, JournalError> {
        let mut out = Vec::new();
        for id in task_ids {
            if self.by_task_id(id)?.is_some_and(|e| !is_placeholder(&e.fingerprint)) {
                out.push(id.to_string());
            }
        }
        Ok(out)
    }

    /// Resolves an uncertain (or orphaned sending) create: the task it made is `task_id`, found
    /// as `how`. An entry that `wait` added for the same id gives the id up to it. Returns
    /// false when another run resolved the entry first, or another job holds the id.
    pub fn resolve_adopted(&mut self, id: i64, task_id: &str, how: &str) -> Result<bool, JournalError> {
        let path = self.path.display().to_string();
        let err = |source| JournalError { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let holder: Option<(i64, String)> = tx
            .query_row("SELECT id, fingerprint FROM tasks WHERE task_id = ?1", params![task_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(err)?;
        let (status, output, bytes): (Option<String>, Option<String>, Option<i64>) = match holder {
            Some((h, _)) if h == id => return Ok(true),
            Some((h, fp)) if is_placeholder(&fp) => {
                let kept = tx
                    .query_row(
                        "SELECT task_status, output_path, output_bytes FROM tasks WHERE id = ?1",
                        params![h],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(err)?;
                tx.execute("DELETE FROM tasks WHERE id = ?1", params![h]).map_err(err)?;
                kept
            }
            Some(_) => return Ok(false),
            None => (None, None, None),
        };
        let n = tx
            .execute(
                "UPDATE tasks SET state = 'created', task_id = ?2, adopted = ?3, error = NULL, updated_at = ?4,
                     task_status = COALESCE(?5, task_status), output_path = COALESCE(?6, output_path),
                     output_bytes = COALESCE(?7, output_bytes)
                 WHERE id = ?1 AND state IN ('sending', 'uncertain')",
                params![id, task_id, how, now(), status, output, bytes],
            )
            .map_err(err)?;
        if n == 0 {
            return Ok(false);
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Resolves an uncertain create that made no task (`why`): the job may be created again.
    /// Returns false when another run resolved it first.
    pub fn resolve_none(&self, id: i64, why: &str) -> Result<bool, JournalError> {
        self.conn
            .execute(
                "UPDATE tasks SET state = 'rejected', error = ?2, updated_at = ?3
                 WHERE id = ?1 AND state IN ('sending', 'uncertain')",
                params![id, why, now()],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Records a task the user names for a job (`wanprep adopt`): it resolves the job's
    /// uncertain create if there is one, else it becomes the job's task. Refused (`Ok(None)`)
    /// when the job already has another live task, or another job holds the id.
    pub fn adopt_for_job(&mut self, job: &JobKey<'_>, task_id: &str) -> Result<Option<Entry>, JournalError> {
        let how = "named by the user (wanprep adopt)";
        if let Some(e) = self.find_live(job)? {
            match (e.state, e.task_id.as_deref()) {
                (EntryState::Created, Some(t)) if t == task_id => return Ok(Some(e)),
                (EntryState::Created, _) => return Ok(None),
                _ => {
                    return Ok(if self.resolve_adopted(e.id, task_id, how)? { self.by_task_id(task_id)? } else { None })
                }
            }
        }
        let t = now();
        self.conn
            .execute(
                "INSERT INTO tasks (fingerprint, key_tag, image, video, mode, watermark, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'uncertain', ?7, ?7)",
                params![job.fingerprint, job.key_tag, job.image, job.video, job.mode, job.watermark, t],
            )
            .map_err(|e| self.err(e))?;
        let id = self.conn.last_insert_rowid();
        if self.resolve_adopted(id, task_id, how)? {
            return self.by_task_id(task_id);
        }
        self.conn.execute("DELETE FROM tasks WHERE id = ?1", params![id]).map_err(|e| self.err(e))?;
        Ok(None)
    }

    /// Records the service's usage figures for a finished task.
    pub fn usage(
        &self,
        task_id: &str,
        video_duration: Option<f64>,
        video_ratio: Option<&str>,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE tasks SET video_duration = COALESCE(?2, video_duration), video_ratio = COALESCE(?3, video_ratio)
                 WHERE task_id = ?1",
                params![task_id, video_duration, video_ratio],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Tasks within their validity that were last seen PENDING (or not seen at all): the ones
    /// `cancel --all-pending` tries.
    pub fn pending(&self) -> Result<Vec<Entry>, JournalError> {
        let since = now() - TASK_VALIDITY.as_secs() as i64;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM tasks WHERE task_id IS NOT NULL AND created_at > ?1
                 AND (task_status IS NULL OR task_status = 'PENDING') ORDER BY id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![since], entry).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A task met outside a submit (`wait TASK_ID`): recorded so its download is tracked.
    pub fn adopt(&self, task_id: &str, key_tag: &str) -> Result<Entry, JournalError> {
        if let Some(e) = self.by_task_id(task_id)? {
            return Ok(e);
        }
        let t = now();
        self.conn
            .execute(
                "INSERT INTO tasks (fingerprint, key_tag, image, video, mode, watermark, state, task_id, created_at, updated_at)
                 VALUES (?1, ?2, '', '', '', 0, 'created', ?3, ?4, ?4)",
                params![format!("{PLACEHOLDER}{task_id}"), key_tag, task_id, t],
            )
            .map_err(|e| self.err(e))?;
        self.by_task_id(task_id)?.ok_or_else(|| self.err(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Records the last status seen (and the failure, if any).
    pub fn status(&self, task_id: &str, status: &str, error: Option<&str>) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE tasks SET task_status = ?2, error = COALESCE(?3, error), updated_at = ?4 WHERE task_id = ?1",
                params![task_id, status, error, now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records where the result went.
    pub fn output(&self, task_id: &str, path: &str, bytes: u64) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE tasks SET output_path = ?2, output_bytes = ?3, updated_at = ?4 WHERE task_id = ?1",
                params![task_id, path, bytes as i64, now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The entry for a task id.
    pub fn by_task_id(&self, task_id: &str) -> Result<Option<Entry>, JournalError> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM tasks WHERE task_id = ?1"), params![task_id], entry)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every entry, newest first.
    pub fn list(&self) -> Result<Vec<Entry>, JournalError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT {COLUMNS} FROM tasks ORDER BY id DESC")).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], entry).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// A temporary upload of this content still young enough to reuse.
    pub fn upload(&self, sha256: &str, key_tag: &str, endpoint: &str) -> Result<Option<String>, JournalError> {
        let since = now() - UPLOAD_REUSE.as_secs() as i64;
        self.conn
            .query_row(
                "SELECT oss_url FROM uploads WHERE sha256 = ?1 AND key_tag = ?2 AND endpoint = ?3 AND uploaded_at > ?4",
                params![sha256, key_tag, endpoint, since],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records a finished upload.
    pub fn uploaded(&self, sha256: &str, key_tag: &str, endpoint: &str, oss_url: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO uploads (sha256, key_tag, endpoint, oss_url, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![sha256, key_tag, endpoint, oss_url, now()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(fp: &'a str) -> JobKey<'a> {
        JobKey { fingerprint: fp, key_tag: "k1", image: "i.png", video: "v.mp4", mode: "wan-std", watermark: false }
    }

    #[test]
    fn intent_then_resume_then_new_after_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let Decision::Create(id) = j.decide(&job("fp"), false).unwrap() else { panic!("expected create") };
        // Killed before the answer: the next run must not create blindly.
        assert!(matches!(j.decide(&job("fp"), false).unwrap(), Decision::Uncertain(_)));
        j.created(id, "task-1", "PENDING").unwrap();
        // An id already held by another entry moves to the new one instead of failing.
        let Decision::Create(other) = j.decide(&job("fp-other"), false).unwrap() else { panic!() };
        j.created(other, "task-1", "PENDING").unwrap();
        j.created(id, "task-1", "PENDING").unwrap();
        let Decision::Resume(e) = j.decide(&job("fp"), false).unwrap() else { panic!("expected resume") };
        assert_eq!(e.task_id.as_deref(), Some("task-1"));
        // Another account never resumes it.
        let other = JobKey { key_tag: "k2", ..job("fp") };
        assert!(matches!(j.decide(&other, false).unwrap(), Decision::Create(_)));
        // A failed task is not resumed; a new one may be created.
        j.status("task-1", "FAILED", Some("InternalError")).unwrap();
        assert!(matches!(j.decide(&job("fp"), false).unwrap(), Decision::Create(_)));
        // --new always creates.
        assert!(matches!(j.decide(&job("fp2"), true).unwrap(), Decision::Create(_)));
        assert_eq!(j.list().unwrap().len(), 5);
    }

    #[test]
    fn refused_creates_do_not_block_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let Decision::Create(id) = j.decide(&job("fp"), false).unwrap() else { panic!() };
        j.failed_create(id, EntryState::Rejected, "HTTP 400").unwrap();
        assert!(matches!(j.decide(&job("fp"), false).unwrap(), Decision::Create(_)));
    }

    #[test]
    fn an_older_journal_gains_the_new_columns_and_keeps_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch(
            "CREATE TABLE tasks (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, key_tag TEXT NOT NULL,
                 image TEXT NOT NULL, video TEXT NOT NULL, mode TEXT NOT NULL, watermark INTEGER NOT NULL,
                 state TEXT NOT NULL, task_id TEXT, task_status TEXT, created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL, output_path TEXT, output_bytes INTEGER, error TEXT);
             INSERT INTO tasks (fingerprint, key_tag, image, video, mode, watermark, state, task_id, created_at, updated_at)
             VALUES ('fp', 'k1', 'i.png', 'v.mp4', 'wan-pro', 0, 'created', 'old-task', 1, 1);",
        )
        .unwrap();
        drop(conn);
        let j = Journal::open(dir.path()).unwrap();
        j.usage("old-task", Some(4.5), Some("pro")).unwrap();
        let e = j.by_task_id("old-task").unwrap().unwrap();
        assert_eq!(
            (e.video_duration, e.video_ratio.as_deref(), e.billed_mode()),
            (Some(4.5), Some("pro"), Some("wan-pro"))
        );
        drop(j);
        Journal::open(dir.path()).unwrap(); // opening again adds nothing twice
    }

    #[test]
    fn an_uncertain_create_is_adopted_once_and_a_waited_task_gives_its_id_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let Decision::Create(id) = j.decide(&job("fp"), false).unwrap() else { panic!() };
        j.failed_create(id, EntryState::Uncertain, "HTTP 500").unwrap();
        // `wait` met the task first, with no job.
        j.adopt("t-1", "k1").unwrap();
        j.status("t-1", "RUNNING", None).unwrap();
        assert!(j.resolve_adopted(id, "t-1", "found").unwrap());
        let e = j.by_task_id("t-1").unwrap().unwrap();
        assert_eq!((e.id, e.state, e.adopted.as_deref()), (id, EntryState::Created, Some("found")));
        assert_eq!(e.task_status.as_deref(), Some("RUNNING"), "what wait saw is kept");
        assert_eq!(j.list().unwrap().len(), 1, "the placeholder is gone");
        // Resolved already: a second resolution changes nothing.
        assert!(!j.resolve_none(id, "none").unwrap());
        assert!(matches!(j.decide(&job("fp"), false).unwrap(), Decision::Resume(_)));
        // Another job cannot take the same task.
        assert!(j.adopt_for_job(&job("fp2"), "t-1").unwrap().is_none());
    }

    #[test]
    fn a_sender_is_alive_only_while_its_process_is() {
        assert_eq!(sender::alive(&sender::this()), Some(true));
        let me = sender::this();
        let host = me.rsplitn(3, ':').nth(2).unwrap().to_string();
        assert_eq!(sender::alive(&format!("{host}:{}:1", std::process::id())), Some(false), "another start time");
        assert_eq!(sender::alive("some-other-host:1:1"), None);
    }
}
