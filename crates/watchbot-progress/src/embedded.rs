//! The embedded store: a SQLite file that several processes (the local watcher's workers) use at once.
//!
//! Concurrency is SQLite's own: WAL journal (readers never block the writer), a busy timeout (a writer waits for
//! another instead of failing), and `BEGIN IMMEDIATE` for every read-modify-write (the write lock is taken before
//! the read, so two completions cannot both see "one part left"). No lock of our own, so processes coordinate
//! exactly as threads do. Opening (WAL switch with retry) and running calls in the blocking pool are
//! `watchbot-sqlite`'s, shared with the embedded queue; a call whose blocking task panics is [`Error::Database`].
//!
//! Tables: `progress_jobs` (one row per job, with a `remaining` counter) and `progress_done_parts` (one row per
//! completed part; its primary key makes a replayed completion a no-op). Recording done parts rather than pending
//! ones keeps set-total O(1) for any total. This is the counter layout's shape; a job created in the set layout is
//! stored the same way, because the layouts differ only in cost and in their limits (a SQLite row has no 400 KB
//! bound): the store enforces each layout's total limit and [`crate::MAX_TEXT`] exactly as the DynamoDB store does,
//! so what runs locally runs in production.

use crate::{
    Completion, Error, JobList, JobState, Layout, SetTotal, Store, check_job, check_metadata, check_part, check_reason,
    check_total, not_pending,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use watchbot_sqlite::{Database, OpenOptions};

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS progress_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    total INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    error TEXT,
    metadata TEXT,
    reduce_sent INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS progress_done_parts (
    job TEXT NOT NULL,
    part INTEGER NOT NULL,
    PRIMARY KEY (job, part)
) STRICT, WITHOUT ROWID;
";

/// Progress in a SQLite file.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    // One connection per store (watchbot-sqlite's `Database`); its mutex only serializes this process's threads on
    // it. Other processes coordinate through SQLite's file locks.
    database: Database,
    layout: Layout,
}

impl EmbeddedStore {
    /// Opens (creating if needed, with its parent folder) the store at `path`.
    pub async fn open(path: impl Into<PathBuf>) -> Result<EmbeddedStore, Error> {
        let path: PathBuf = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Sqlite {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        // NORMAL is safe with WAL (no corruption); a power cut may lose the last commits, which at-least-once
        // delivery replays anyway.
        let options = OpenOptions { busy_timeout: BUSY_TIMEOUT, synchronous: "NORMAL", schema: SCHEMA };
        let database = Database::open_async(&path, options).await?;
        Ok(EmbeddedStore { database, layout: Layout::default() })
    }

    /// The same store, creating new jobs in `layout` (which sets their total limit).
    pub fn with_layout(mut self, layout: Layout) -> EmbeddedStore {
        self.layout = layout;
        self
    }

    /// The layout of the jobs this store creates.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.database.path()
    }

    /// Runs `f` on the connection on the blocking pool; a failed blocking task is [`Error::Database`].
    async fn with<T, F>(&self, operation: &'static str, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        self.database.call(operation, f).await?
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> Error + Send + 'static {
        let path = self.path().display().to_string();
        move |source| Error::Sqlite { path: path.clone(), source }
    }
}

fn to_i64(n: u64) -> i64 {
    // Callers checked totals and parts fit (`check_total`); part numbers above i64::MAX are beyond any total.
    i64::try_from(n).unwrap_or(i64::MAX)
}

type Row = (i64, i64, Option<String>, Option<String>, i64);

fn read_job(connection: &Connection, job: &str) -> rusqlite::Result<Option<Row>> {
    connection
        .query_row(
            "SELECT total, remaining, error, metadata, reduce_sent FROM progress_jobs WHERE id = ?1",
            [job],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
}

impl Store for EmbeddedStore {
    async fn set_total(&self, job: &str, total: u64) -> Result<SetTotal, Error> {
        check_total(job, total, self.layout)?;
        let (job, sqlite) = (job.to_owned(), self.sqlite());
        self.with("set total", move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&sqlite)?;
            let inserted = tx
                .execute(
                    "INSERT INTO progress_jobs (id, total, remaining) VALUES (?1, ?2, ?2) ON CONFLICT (id) DO NOTHING",
                    params![job, to_i64(total)],
                )
                .map_err(&sqlite)?;
            if inserted == 1 {
                tx.commit().map_err(&sqlite)?;
                return Ok(SetTotal::Created);
            }
            let existing: i64 =
                tx.query_row("SELECT total FROM progress_jobs WHERE id = ?1", [&job], |r| r.get(0)).map_err(&sqlite)?;
            if existing as u64 == total {
                Ok(SetTotal::AlreadySet)
            } else {
                Err(Error::TotalMismatch { job, existing: existing as u64, requested: total })
            }
        })
        .await
    }

    async fn complete_part(&self, job: &str, part: u64) -> Result<Completion, Error> {
        check_part(job, part)?;
        let (job, sqlite) = (job.to_owned(), self.sqlite());
        self.with("complete part", move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&sqlite)?;
            let Some((total, remaining, ..)) = read_job(&tx, &job).map_err(&sqlite)? else {
                return Err(Error::UnknownJob { job });
            };
            let (total, remaining) = (total as u64, remaining as u64);
            if part > total {
                return Err(Error::PartOutOfRange { job, part, total });
            }
            let inserted = tx
                .execute(
                    "INSERT INTO progress_done_parts (job, part) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![job, to_i64(part)],
                )
                .map_err(&sqlite)?;
            if inserted == 0 {
                return not_pending(&job, part, total, remaining);
            }
            let remaining: i64 = tx
                .query_row(
                    "UPDATE progress_jobs SET remaining = remaining - 1 WHERE id = ?1 RETURNING remaining",
                    [&job],
                    |r| r.get(0),
                )
                .map_err(&sqlite)?;
            tx.commit().map_err(&sqlite)?;
            let remaining = remaining.max(0) as u64;
            Ok(Completion { all_done: remaining == 0, finished_job: remaining == 0, replay: false, remaining })
        })
        .await
    }

    async fn status(&self, job: &str, part: Option<u64>) -> Result<Option<JobState>, Error> {
        if let Some(part) = part {
            check_part(job, part)?;
        } else {
            check_job(job)?;
        }
        let (job, sqlite) = (job.to_owned(), self.sqlite());
        self.with("status", move |c| {
            // One read transaction, so the job row and the part row are one snapshot.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred).map_err(&sqlite)?;
            let Some((total, remaining, error, metadata, reduce_sent)) = read_job(&tx, &job).map_err(&sqlite)? else {
                return Ok(None);
            };
            let total = total as u64;
            let part_complete = match part {
                Some(part) if part > total => return Err(Error::PartOutOfRange { job, part, total }),
                Some(part) => Some(
                    tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM progress_done_parts WHERE job = ?1 AND part = ?2)",
                        params![job, to_i64(part)],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(&sqlite)?,
                ),
                None => None,
            };
            let metadata = match metadata {
                Some(text) => Some(serde_json::from_str(&text).map_err(|_| Error::Malformed {
                    job: job.clone(),
                    reason: "`metadata` is not JSON text".into(),
                })?),
                None => None,
            };
            Ok(Some(JobState {
                total,
                remaining: remaining.max(0) as u64,
                failed: error,
                metadata,
                reduce_sent: reduce_sent != 0,
                part_complete,
            }))
        })
        .await
    }

    async fn fail_job(&self, job: &str, reason: &str) -> Result<(), Error> {
        check_reason(job, reason)?;
        self.update_existing(job, "UPDATE progress_jobs SET error = ?2 WHERE id = ?1", reason.to_owned()).await
    }

    async fn set_metadata(&self, job: &str, metadata: &Value) -> Result<(), Error> {
        let text = metadata.to_string();
        check_metadata(job, metadata, &text)?;
        self.update_existing(job, "UPDATE progress_jobs SET metadata = ?2 WHERE id = ?1", text).await
    }

    async fn reduce_sent(&self, job: &str) -> Result<bool, Error> {
        check_job(job)?;
        let (job, sqlite) = (job.to_owned(), self.sqlite());
        self.with("reduce sent", move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&sqlite)?;
            let Some((.., reduce_sent)) = read_job(&tx, &job).map_err(&sqlite)? else {
                return Err(Error::UnknownJob { job });
            };
            if reduce_sent != 0 {
                return Ok(false);
            }
            tx.execute("UPDATE progress_jobs SET reduce_sent = 1 WHERE id = ?1", [&job]).map_err(&sqlite)?;
            tx.commit().map_err(&sqlite)?;
            Ok(true)
        })
        .await
    }

    async fn list_jobs(&self, limit: usize) -> Result<JobList, Error> {
        self.newest_jobs(limit).await
    }
}

impl EmbeddedStore {
    /// The newest `limit` jobs (by creation), for [`Store::list_jobs`].
    async fn newest_jobs(&self, limit: usize) -> Result<JobList, Error> {
        let sqlite = self.sqlite();
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        self.with("list jobs", move |c| {
            let mut statement = c
                .prepare(
                    "SELECT id, total, remaining, error, metadata, reduce_sent FROM progress_jobs ORDER BY rowid DESC \
                     LIMIT ?1",
                )
                .map_err(&sqlite)?;
            let rows = statement
                .query_map([fetch], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        (r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, Option<String>>(4)?, r.get(5)?),
                    ))
                })
                .map_err(&sqlite)?;
            let mut list = JobList::default();
            for row in rows {
                let (id, (total, remaining, error, metadata, reduce_sent)): (String, Row) = row.map_err(&sqlite)?;
                if list.jobs.len() == limit {
                    list.more = true;
                    break;
                }
                let metadata = metadata.and_then(|text| serde_json::from_str(&text).ok());
                let state = JobState {
                    total: total.max(0) as u64,
                    remaining: remaining.max(0) as u64,
                    failed: error,
                    metadata,
                    reduce_sent: reduce_sent != 0,
                    part_complete: None,
                };
                list.jobs.push((id, state));
            }
            Ok(list)
        })
        .await
    }

    async fn update_existing(&self, job: &str, sql: &'static str, value: String) -> Result<(), Error> {
        let (job, sqlite) = (job.to_owned(), self.sqlite());
        self.with("update", move |c| {
            let changed = c.execute(sql, params![job, value]).map_err(&sqlite)?;
            if changed == 0 { Err(Error::UnknownJob { job }) } else { Ok(()) }
        })
        .await
    }
}
