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
    /// An earlier create may or may not have made a task; the user decides (`--new`).
    Uncertain(Entry),
}

fn now() -> i64 {
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
                       updated_at, output_path, output_bytes, error";

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
            "INSERT INTO tasks (fingerprint, key_tag, image, video, mode, watermark, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'sending', ?7, ?7)",
            params![job.fingerprint, job.key_tag, job.image, job.video, job.mode, job.watermark, t],
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
                params![format!("task:{task_id}"), key_tag, task_id, t],
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
}
