//! The local attempt history: every attempt of every message `watchbot local` ran, with its outcome and output
//! tail, in `<state>/history.sqlite` (a file of its own, so recording never contends with the queue's lock).
//!
//! - Writing: [`History::recorder`] gives an [`AttemptLog`] for the loop ([`Ports::with_attempt_log`]) and a
//!   [`Writer`]. `record` never blocks the loop: it queues the attempt (at most [`QUEUED`] waiting; past that an
//!   attempt is dropped and counted, [`Writer::finish`] says how many) for a thread that writes what has queued up in
//!   one transaction at a time, so a fast local run pays one commit per batch, not per attempt.
//! - Bounded: the latest [`MAX_ATTEMPTS`] attempts are kept (older ones are deleted as new ones are written), each
//!   with at most the runner's tail (64 KiB by default): a few MB for ordinary output, at most about 320 MB if every
//!   attempt printed a full tail.
//! - Shared: opened through `watchbot-sqlite` like the queue (WAL, busy timeout, IMMEDIATE transactions), so
//!   several watchers on one state folder, and readers (`watchbot logs`, `watchbot status`), use it at once.
//! - Reading: [`History::attempts`] (one message's attempts, oldest first), [`History::recent_failures`] and
//!   [`History::outcomes_since`] (counts per minute and outcome).
//!
//! [`Ports::with_attempt_log`]: crate::run::Ports::with_attempt_log

use crate::ports::{Attempt, AttemptLog, TaskOutput};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use watchbot_sqlite::{Database, OpenOptions};

/// The history's file name inside the state folder.
pub const HISTORY_FILE: &str = "history.sqlite";

/// How many attempts the history keeps (the latest).
pub const MAX_ATTEMPTS: i64 = 5_000;

/// Attempts waiting to be written, at most; more are dropped (and counted) rather than slow the loop down.
pub const QUEUED: usize = 4_096;

/// Attempts written per transaction, at most.
const BATCH: usize = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    exit_code INTEGER,
    reason TEXT NOT NULL,
    output TEXT,
    omitted_bytes INTEGER NOT NULL DEFAULT 0,
    output_unavailable TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_message ON attempts (message_id, seq);
";

const COLUMNS: &str = "message_id, subject, receive_count, started_ms, ended_ms, outcome, exit_code, reason, output, \
                       omitted_bytes, output_unavailable";

/// What went wrong with the history file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The state folder has no history (no `watchbot local` ran there, or an older one without history).
    #[error("no attempt history in {}: run `watchbot local --state {}` first", .0.display(), .0.display())]
    Missing(PathBuf),
    /// Opening it failed.
    #[error(transparent)]
    Open(#[from] watchbot_sqlite::Error),
    /// The writer thread could not be started.
    #[error("cannot start the attempt history's writer: {0}")]
    Thread(#[source] std::io::Error),
    /// A query failed.
    #[error("reading the attempt history {}: {source}", path.display())]
    Query {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// The attempt history of a state folder.
#[derive(Debug, Clone)]
pub struct History {
    database: Database,
}

fn options() -> OpenOptions {
    OpenOptions { schema: SCHEMA, ..OpenOptions::default() }
}

impl History {
    /// Opens the history of `state_dir`, creating it if needed (local mode). The folder must exist.
    pub fn create(state_dir: &Path) -> Result<History, HistoryError> {
        Ok(History { database: Database::open(&state_dir.join(HISTORY_FILE), &options())? })
    }

    /// Opens the history of `state_dir` for reading; [`HistoryError::Missing`] when there is none.
    pub fn open(state_dir: &Path) -> Result<History, HistoryError> {
        let path = state_dir.join(HISTORY_FILE);
        if !path.is_file() {
            return Err(HistoryError::Missing(state_dir.to_path_buf()));
        }
        Ok(History { database: Database::open(&path, &options())? })
    }

    /// Every kept attempt of `message_id`, oldest first (empty for an unknown id).
    pub fn attempts(&self, message_id: &str) -> Result<Vec<Attempt>, HistoryError> {
        let sql = format!("SELECT {COLUMNS} FROM attempts WHERE message_id = ?1 ORDER BY seq");
        self.query(&sql, params![message_id])
    }

    /// The latest `limit` failed or rejected attempts, newest first.
    pub fn recent_failures(&self, limit: usize) -> Result<Vec<Attempt>, HistoryError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM attempts WHERE outcome IN ('failed', 'rejected') ORDER BY seq DESC LIMIT ?1"
        );
        self.query(&sql, params![i64::try_from(limit).unwrap_or(i64::MAX)])
    }

    /// The attempts that ended at or after `since_ms`, counted per minute (epoch ms of its start) and outcome, for
    /// the dashboard's chart. Reads the kept attempts' end times (at most [`MAX_ATTEMPTS`] rows).
    pub fn outcomes_since(&self, since_ms: u64) -> Result<Vec<(u64, String, u64)>, HistoryError> {
        let connection = self.database.lock();
        let mut statement = connection
            .prepare(
                "SELECT ended_ms / 60000 * 60000 AS minute, outcome, COUNT(*) FROM attempts WHERE ended_ms >= ?1 \
                 GROUP BY minute, outcome ORDER BY minute",
            )
            .map_err(|source| self.query_error(source))?;
        let rows = statement
            .query_map(params![i64::try_from(since_ms).unwrap_or(i64::MAX)], |row| {
                Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get::<_, String>(1)?, row.get::<_, i64>(2)?.max(0) as u64))
            })
            .map_err(|source| self.query_error(source))?;
        rows.collect::<Result<_, _>>().map_err(|source| self.query_error(source))
    }

    /// How many attempts are kept.
    pub fn len(&self) -> Result<u64, HistoryError> {
        let connection = self.database.lock();
        let count: Option<i64> = connection
            .query_row("SELECT COUNT(*) FROM attempts", [], |row| row.get(0))
            .optional()
            .map_err(|source| self.query_error(source))?;
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    /// Whether no attempt is kept.
    pub fn is_empty(&self) -> Result<bool, HistoryError> {
        Ok(self.len()? == 0)
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Attempt>, HistoryError> {
        let connection = self.database.lock();
        let mut statement = connection.prepare(sql).map_err(|source| self.query_error(source))?;
        let rows = statement.query_map(params, attempt_from_row).map_err(|source| self.query_error(source))?;
        rows.collect::<Result<_, _>>().map_err(|source| self.query_error(source))
    }

    fn query_error(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Query { path: self.database.path().to_path_buf(), source }
    }

    /// A recorder for the loop and the writer thread behind it (on its own connection).
    pub fn recorder(&self) -> Result<(Recorder, Writer), HistoryError> {
        let path = self.database.path().to_path_buf();
        let connection = watchbot_sqlite::open(&path, &options())?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUED);
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("watchbot-history".into())
            .spawn(move || write_all(connection, receiver))
            .map_err(HistoryError::Thread)?;
        Ok((Recorder { sender, dropped: dropped.clone() }, Writer { thread, dropped, path }))
    }
}

fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let output: Option<String> = row.get(8)?;
    let unavailable: Option<String> = row.get(10)?;
    let output = match (output, unavailable) {
        (Some(text), _) => TaskOutput::Tail { text, omitted_bytes: row.get::<_, i64>(9)?.max(0) as u64 },
        (None, why) => TaskOutput::Unavailable(why.unwrap_or_else(|| "not recorded".to_string())),
    };
    Ok(Attempt {
        message_id: row.get(0)?,
        subject: row.get(1)?,
        receive_count: row.get(2)?,
        started_ms: row.get::<_, i64>(3)?.max(0) as u64,
        ended_ms: row.get::<_, i64>(4)?.max(0) as u64,
        outcome: row.get(5)?,
        exit_code: row.get(6)?,
        reason: row.get(7)?,
        output,
    })
}

/// The loop's side of the history: queues attempts for the writer thread.
#[derive(Debug, Clone)]
pub struct Recorder {
    sender: SyncSender<Attempt>,
    dropped: Arc<AtomicU64>,
}

impl AttemptLog for Recorder {
    fn record(&self, attempt: Attempt) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.sender.try_send(attempt) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The writer thread; it ends once every [`Recorder`] is dropped and what they queued is written.
#[derive(Debug)]
pub struct Writer {
    thread: std::thread::JoinHandle<Result<(), String>>,
    dropped: Arc<AtomicU64>,
    path: PathBuf,
}

impl Writer {
    /// Waits for the queued attempts to be written (drop every [`Recorder`] first: the loop's ports hold one).
    /// An error says what was not recorded.
    pub fn finish(self) -> Result<(), String> {
        let written = self.thread.join().unwrap_or_else(|_| Err("the history writer panicked".to_string()));
        let dropped = self.dropped.load(Ordering::Relaxed);
        match (written, dropped) {
            (Ok(()), 0) => Ok(()),
            (Ok(()), n) => Err(format!("{n} attempts were not recorded in {}: too many at once", self.path.display())),
            (Err(error), _) => Err(format!("the attempt history {} is incomplete: {error}", self.path.display())),
        }
    }
}

fn write_all(mut connection: Connection, receiver: Receiver<Attempt>) -> Result<(), String> {
    let mut first_error = None;
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter().take(BATCH - 1));
        if let Err(error) = write_batch(&mut connection, &batch) {
            first_error.get_or_insert_with(|| error.to_string());
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn write_batch(connection: &mut Connection, batch: &[Attempt]) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO attempts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))?;
        for attempt in batch {
            let (output, omitted, unavailable) = match &attempt.output {
                TaskOutput::Tail { text, omitted_bytes } => (Some(text.as_str()), *omitted_bytes, None),
                TaskOutput::Unavailable(why) => (None, 0, Some(why.as_str())),
            };
            insert.execute(params![
                attempt.message_id,
                attempt.subject,
                attempt.receive_count,
                attempt.started_ms as i64,
                attempt.ended_ms as i64,
                attempt.outcome,
                attempt.exit_code,
                attempt.reason,
                output,
                omitted as i64,
                unavailable,
            ])?;
        }
    }
    // The bound: rows are numbered in insertion order, so the oldest go by primary key (no scan).
    tx.execute("DELETE FROM attempts WHERE seq <= (SELECT MAX(seq) FROM attempts) - ?1", params![MAX_ATTEMPTS])?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: &str, n: u32, outcome: &str) -> Attempt {
        Attempt {
            message_id: id.to_string(),
            subject: "s".to_string(),
            receive_count: n,
            started_ms: 1_000,
            ended_ms: 2_000,
            outcome: outcome.to_string(),
            exit_code: Some(1),
            reason: "exited with code 1".to_string(),
            output: TaskOutput::Tail { text: format!("try {n}\n"), omitted_bytes: 3 },
        }
    }

    #[test]
    fn attempts_are_recorded_read_back_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(History::open(dir.path()), Err(HistoryError::Missing(_))));
        let history = History::create(dir.path()).unwrap();
        let (recorder, writer) = history.recorder().unwrap();
        recorder.record(attempt("a", 1, "failed"));
        recorder
            .record(Attempt { output: TaskOutput::Unavailable("no task ran".into()), ..attempt("a", 2, "rejected") });
        drop(recorder);
        writer.finish().unwrap();
        let a = History::open(dir.path()).unwrap().attempts("a").unwrap();
        assert_eq!(a.iter().map(|a| a.receive_count).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(a[1].output, TaskOutput::Unavailable("no task ran".into()));
        // More than the bound, in runs that each fit the queue (so none is dropped).
        let chunk = 2_000;
        for run in 0..(MAX_ATTEMPTS as u32 / chunk + 1) {
            let (recorder, writer) = history.recorder().unwrap();
            for n in 0..chunk {
                recorder.record(attempt("b", run * chunk + n, "succeeded"));
            }
            drop(recorder);
            writer.finish().unwrap();
        }
        let (recorder, writer) = history.recorder().unwrap();
        recorder.record(attempt("c", 1, "failed"));
        drop(recorder);
        writer.finish().unwrap();
        let history = History::open(dir.path()).unwrap();
        assert_eq!(history.len().unwrap(), MAX_ATTEMPTS as u64);
        // The oldest went first.
        assert!(history.attempts("a").unwrap().is_empty());
        let c = history.attempts("c").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].output, TaskOutput::Tail { text: "try 1\n".into(), omitted_bytes: 3 });
        assert_eq!((c[0].exit_code, c[0].started_ms, c[0].subject.as_str()), (Some(1), 1_000, "s"));
        let failures = history.recent_failures(5).unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].message_id, "c");
    }

    #[test]
    fn several_writers_share_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::create(dir.path()).unwrap();
        let writers: Vec<_> = (0..3).map(|_| history.recorder().unwrap()).collect();
        for (n, (recorder, _)) in writers.iter().enumerate() {
            recorder.record(attempt("shared", n as u32, "failed"));
        }
        for (recorder, writer) in writers {
            drop(recorder);
            writer.finish().unwrap();
        }
        let attempts = History::open(dir.path()).unwrap().attempts("shared").unwrap();
        assert_eq!(attempts.len(), 3);
        assert_eq!(History::open(dir.path()).unwrap().recent_failures(2).unwrap().len(), 2);
    }
}
