//! The embedded, durable queue: SQLite with SQS semantics, for local mode.
//!
//! One SQLite file (`queue.sqlite`) in the state folder (default `.watchbot/`) holds two tables with the same shape:
//! `messages` (the work queue) and `dead_letters` (its dead-letter queue). Semantics follow SQS:
//! - a message has an id, a body, string attributes, a sent timestamp, a receive count and a first-receive timestamp;
//! - a receive hides the message for the visibility timeout and gives a new receipt handle; only the latest handle
//!   can delete the message or change its visibility (an older one gets [`PortErrorKind::InvalidReceipt`]);
//!   deleting an already deleted message succeeds, as on SQS;
//! - a message sent with a delay is invisible until the delay has passed;
//! - redrive happens at receive time, as on SQS: a message that is visible again after `max_receive_count`
//!   receives moves to the dead-letter table instead of being delivered.
//!
//! Several processes use the file at once (the watcher, workers sending follow-up messages, a second watcher), so
//! all coordination is SQLite's own: WAL journal (readers never block the writer), a busy timeout, and
//! `BEGIN IMMEDIATE` for every read-modify-write so two receivers can never take the same message. There is no
//! lock of our own.
//!
//! Durability ([`Durability`], default [`Durability::Sends`]): in WAL mode `synchronous=NORMAL` already survives a
//! crash of any process (kill -9 loses nothing); only a power loss or OS crash can roll back the latest commits.
//! What such a rollback costs differs by operation: an undone receive, delete or visibility change only makes a
//! message run again (at-least-once, as on SQS), but an undone send loses a message whose id was already printed.
//! So by default sends commit with `synchronous=FULL` (fsynced) and the watcher's own bookkeeping with `NORMAL`;
//! this keeps local throughput close to bare process spawning where fsync is slow (`cargo xtask bench local`).

use crate::ports::{
    BatchFailure, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state folder local mode uses when none is given.
pub const DEFAULT_STATE_DIR: &str = ".watchbot";
/// The queue's file name inside the state folder.
pub const QUEUE_FILE: &str = "queue.sqlite";
/// The template's redrive threshold (`maxReceiveCount` of the queue's RedrivePolicy).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 10;

/// SQS's limits, kept here so local mode rejects what production would reject.
const MAX_BODY_BYTES: usize = 262_144;
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
const MAX_BATCH: usize = 10;

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL` for every commit: everything survives power loss.
    Full,
    /// `synchronous=FULL` for sends, `NORMAL` for receives, deletes and visibility changes: an acknowledged message
    /// survives power loss; a power loss can at worst make a message run again.
    #[default]
    Sends,
    /// `synchronous=NORMAL` for every commit: survives any process crash; a power loss may roll back the latest
    /// commits, sends included.
    Normal,
}

impl Durability {
    /// The SQLite `synchronous` setting of the queue's bookkeeping commits (receive, delete, visibility).
    pub fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Sends | Durability::Normal => "NORMAL",
        }
    }

    /// The SQLite `synchronous` setting of send commits.
    pub fn send_pragma(self) -> &'static str {
        match self {
            Durability::Full | Durability::Sends => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// A short name: `full`, `sends` or `normal`.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Sends => "sends",
            Durability::Normal => "normal",
        }
    }
}

/// Settings of a [`LocalQueue`] handle (per opener: they are not stored in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalQueueConfig {
    /// Visibility timeout of a receive that does not set one (SQS's default is 30 s).
    pub visibility_timeout: Duration,
    /// Receives after which a message goes to the dead-letter table; `None` never dead-letters.
    pub max_receive_count: Option<u32>,
    /// fsync policy of commits.
    pub durability: Durability,
    /// How long to wait for another process's write lock before giving up (the call then fails as transient).
    pub busy_timeout: Duration,
    /// How often a long poll looks for messages another process may have sent.
    pub poll_interval: Duration,
}

impl Default for LocalQueueConfig {
    fn default() -> LocalQueueConfig {
        LocalQueueConfig {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: Some(DEFAULT_MAX_RECEIVE_COUNT),
            durability: Durability::Sends,
            busy_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(25),
        }
    }
}

/// Why the queue could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LocalQueueError {
    /// The state folder could not be created.
    #[error("cannot create the state folder {}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite file could not be opened or set up.
    #[error("cannot open the local queue {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
}

/// How many messages are where, as SQS's approximate counts (exact here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Receivable now.
    pub visible: u64,
    /// Received and not yet visible again (being worked on, or returned with a backoff delay).
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
    /// In the dead-letter table.
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Messages,
    DeadLetters,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Messages => "messages",
            Table::DeadLetters => "dead_letters",
        }
    }
}

struct Inner {
    connection: Mutex<Connection>,
    path: PathBuf,
    state_dir: PathBuf,
    config: LocalQueueConfig,
    /// Messages this handle's receives moved to the dead-letter queue (see [`LocalQueue::redriven`]).
    redriven: AtomicU64,
}

/// The embedded queue (or, from [`LocalQueue::dead_letter_queue`], its dead-letter queue). Cheap to clone: clones
/// share one connection.
#[derive(Clone)]
pub struct LocalQueue {
    inner: Arc<Inner>,
    table: Table,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue").field("path", &self.inner.path).field("table", &self.table).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_ms INTEGER,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_ms INTEGER,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_visible ON dead_letters (visible_at_ms, seq);
";

/// SQLite's "try again": another connection holds the lock we need.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

impl LocalQueue {
    /// Opens (creating if needed) the queue in `state_dir`.
    pub fn open(state_dir: &Path, config: LocalQueueConfig) -> Result<LocalQueue, LocalQueueError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|source| LocalQueueError::CreateDir { path: state_dir.to_path_buf(), source })?;
        let path = state_dir.join(QUEUE_FILE);
        let open_error = |source| LocalQueueError::Open { path: path.clone(), source };
        let mut connection = Connection::open(&path).map_err(open_error)?;
        connection.busy_timeout(config.busy_timeout).map_err(open_error)?;
        // WAL persists in the file; setting it again is a no-op. It lets readers (counts, a second watcher's polls)
        // run while another process writes. Switching a fresh file to WAL needs a moment of exclusive access, and
        // openers that collide there get SQLITE_BUSY at once, without the busy handler (SQLite will not wait while
        // holding the shared lock it took to read the schema: deadlock avoidance), so retry briefly. The same retry
        // is in watchbot-progress's embedded store (`open_connection`); the crates share no code, hence the copy.
        let mut attempt = 0;
        loop {
            match connection.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
                Ok(()) => break,
                Err(e) if attempt < 50 && is_busy(&e) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(open_error(e)),
            }
        }
        connection.pragma_update(None, "synchronous", config.durability.pragma()).map_err(open_error)?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_error)?;
        tx.execute_batch(SCHEMA).map_err(open_error)?;
        tx.commit().map_err(open_error)?;
        Ok(LocalQueue {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                path,
                state_dir: state_dir.to_path_buf(),
                config,
                redriven: AtomicU64::new(0),
            }),
            table: Table::Messages,
        })
    }

    /// The dead-letter queue of this queue (same file). It implements [`Queue`] too, without redrive.
    pub fn dead_letter_queue(&self) -> LocalQueue {
        LocalQueue { inner: self.inner.clone(), table: Table::DeadLetters }
    }

    /// How many messages receives through this handle (and its clones) moved to the dead-letter queue since it was
    /// opened. Unlike a difference of [`LocalQueue::counts`], this leaves out what other processes sharing the
    /// state folder (a second watcher) redrove, so their summaries do not count one message twice.
    pub fn redriven(&self) -> u64 {
        self.inner.redriven.load(Ordering::Relaxed)
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The settings this handle was opened with.
    pub fn config(&self) -> &LocalQueueConfig {
        &self.inner.config
    }

    /// Where the messages are now. Reads only; never waits for a writer.
    pub fn counts(&self) -> Result<QueueCounts, PortError> {
        let table = self.table.name();
        let now = now_ms();
        self.with_connection_sync(|connection| {
            let (visible, in_flight, delayed): (i64, i64, i64) = connection.query_row(
                &format!(
                    "SELECT
                        COALESCE(SUM(visible_at_ms <= ?1), 0),
                        COALESCE(SUM(visible_at_ms > ?1 AND receive_count > 0), 0),
                        COALESCE(SUM(visible_at_ms > ?1 AND receive_count = 0), 0)
                     FROM {table}"
                ),
                params![now],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let dead_lettered: i64 = match self.table {
                Table::Messages => connection.query_row("SELECT COUNT(*) FROM dead_letters", [], |row| row.get(0))?,
                Table::DeadLetters => 0,
            };
            Ok(QueueCounts {
                visible: visible as u64,
                in_flight: in_flight as u64,
                delayed: delayed as u64,
                dead_lettered: dead_lettered as u64,
            })
        })
    }

    /// Whether nothing is visible, in flight or delayed (dead letters do not count).
    pub fn is_empty(&self) -> Result<bool, PortError> {
        let counts = self.counts()?;
        Ok(counts.visible + counts.in_flight + counts.delayed == 0)
    }

    /// Sends several messages in one transaction: all are enqueued, or none. Returns their ids in order.
    pub fn send_all(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, PortError> {
        for message in &messages {
            check_outgoing(message)?;
        }
        let table = self.table;
        let durability = self.inner.config.durability;
        self.with_connection_sync(move |connection| {
            with_synchronous(connection, durability, |connection| {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut ids = Vec::with_capacity(messages.len());
                for message in messages {
                    ids.push(insert(&tx, table, message, now_ms())?);
                }
                tx.commit()?;
                Ok(ids)
            })
        })
    }

    fn with_connection_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, PortError> {
        let mut connection = self.inner.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut connection).map_err(|e| sql_error(&self.inner.path, e))
    }

    /// Runs `f` on the connection in tokio's blocking pool: SQLite calls block (fsync, busy waits).
    async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, Table, &LocalQueueConfig) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, PortError> {
        let inner = self.inner.clone();
        let table = self.table;
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut connection, table, &inner.config).map_err(|e| sql_error(&inner.path, e))
        })
        .await
        .map_err(|e| PortError::transient(format!("local queue: worker thread failed: {e}")))?
    }

    /// One receive attempt. `Ok(Err(next))` when nothing is visible: `next` is when the next message becomes visible.
    async fn try_receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Result<Vec<ReceivedMessage>, Option<i64>>, PortError> {
        let inner = self.inner.clone();
        self.with_connection(move |connection, table, config| {
            let now = now_ms();
            let name = table.name();
            // A cheap read first, without the write lock, so idle polling does not serialize other processes.
            let next: Option<i64> =
                connection.query_row(&format!("SELECT MIN(visible_at_ms) FROM {name}"), [], |row| row.get(0))?;
            match next {
                Some(at) if at <= now => {}
                other => return Ok(Err(other)),
            }
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let mut redriven = 0;
            if let (Table::Messages, Some(max_receives)) = (table, config.max_receive_count) {
                // Redrive at receive time, as SQS does: a message visible again after its last allowed receive.
                tx.execute(
                    "INSERT OR REPLACE INTO dead_letters
                        (id, body, attributes, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt)
                     SELECT id, body, attributes, sent_ms, ?1, receive_count, first_receive_ms, NULL
                     FROM messages WHERE visible_at_ms <= ?1 AND receive_count >= ?2 ORDER BY seq",
                    params![now, max_receives],
                )?;
                redriven = tx.execute(
                    "DELETE FROM messages WHERE visible_at_ms <= ?1 AND receive_count >= ?2",
                    params![now, max_receives],
                )?;
            }
            let rows = {
                let mut select = tx.prepare_cached(&format!(
                    "SELECT seq, id, body, attributes, sent_ms, receive_count, first_receive_ms FROM {name}
                     WHERE visible_at_ms <= ?1 ORDER BY visible_at_ms, seq LIMIT ?2"
                ))?;
                select
                    .query_map(params![now, max as i64], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                            row.get::<_, Option<i64>>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?
            };
            let visible_at = now + visibility.as_millis() as i64;
            let mut received = Vec::with_capacity(rows.len());
            {
                let mut update = tx.prepare_cached(&format!(
                    "UPDATE {name} SET receive_count = receive_count + 1,
                        first_receive_ms = COALESCE(first_receive_ms, ?1), visible_at_ms = ?2, receipt = ?3
                     WHERE seq = ?4"
                ))?;
                for (seq, id, body, attributes, sent_ms, receive_count, first_receive_ms) in rows {
                    let receipt = format!("{id}#{}", random_hex(16));
                    update.execute(params![now, visible_at, receipt, seq])?;
                    received.push(ReceivedMessage {
                        message_id: id,
                        receipt_handle: receipt,
                        body,
                        sent_timestamp_ms: sent_ms as u64,
                        first_receive_timestamp_ms: first_receive_ms.unwrap_or(now) as u64,
                        receive_count: receive_count as u32 + 1,
                        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                    });
                }
            }
            tx.commit()?;
            // Counted once committed: a failed transaction moved nothing.
            inner.redriven.fetch_add(redriven as u64, Ordering::Relaxed);
            if received.is_empty() {
                // Everything visible was dead-lettered, or another process took it between the read and the lock.
                return Ok(Err(None));
            }
            Ok(Ok(received))
        })
        .await
    }
}

impl Queue for LocalQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, PortError> {
        let max = usize::from(request.max_messages.clamp(1, MAX_BATCH as u8));
        let visibility = request.visibility_timeout.unwrap_or(self.inner.config.visibility_timeout).min(MAX_VISIBILITY);
        let deadline = tokio::time::Instant::now() + request.wait;
        loop {
            let next = match self.try_receive(max, visibility).await? {
                Ok(messages) => return Ok(messages),
                Err(next) => next,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Sleep until the next message is due, but look again soon: another process may send at any time.
            let mut pause = self.inner.config.poll_interval.min(deadline - now);
            if let Some(at) = next {
                let until = Duration::from_millis((at - now_ms()).max(1) as u64);
                pause = pause.min(until);
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<Vec<BatchFailure>, PortError> {
        let handles = receipt_handles.to_vec();
        self.with_connection(move |connection, table, _| {
            let name = table.name();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut failures = Vec::new();
            for (index, handle) in handles.iter().enumerate() {
                let Some((id, _)) = handle.rsplit_once('#') else {
                    failures.push(invalid(index, handle, "is not a receipt handle of this queue"));
                    continue;
                };
                let deleted =
                    tx.execute(&format!("DELETE FROM {name} WHERE id = ?1 AND receipt = ?2"), params![id, handle])?;
                if deleted == 0 && exists(&tx, table, id)? {
                    failures.push(invalid(index, handle, "is stale: the message was received again since"));
                }
                // Gone already: deleting twice succeeds, as on SQS.
            }
            tx.commit()?;
            Ok(failures)
        })
        .await
    }

    async fn change_visibility_batch(&self, changes: &[VisibilityChange]) -> Result<Vec<BatchFailure>, PortError> {
        let changes = changes.to_vec();
        self.with_connection(move |connection, table, _| {
            let name = table.name();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let mut failures = Vec::new();
            for (index, change) in changes.iter().enumerate() {
                if change.timeout > MAX_VISIBILITY {
                    failures.push(BatchFailure {
                        index,
                        error: PortError::new(
                            PortErrorKind::Rejected,
                            format!("local queue: visibility timeout {} s is over 12 hours", change.timeout.as_secs()),
                        ),
                    });
                    continue;
                }
                let handle = &change.receipt_handle;
                let Some((id, _)) = handle.rsplit_once('#') else {
                    failures.push(invalid(index, handle, "is not a receipt handle of this queue"));
                    continue;
                };
                let visible_at = now + change.timeout.as_millis() as i64;
                let changed = tx.execute(
                    &format!("UPDATE {name} SET visible_at_ms = ?1 WHERE id = ?2 AND receipt = ?3"),
                    params![visible_at, id, handle],
                )?;
                if changed == 0 {
                    let reason = if exists(&tx, table, id)? {
                        "is stale: the message was received again since"
                    } else {
                        "names a message that no longer exists"
                    };
                    failures.push(invalid(index, handle, reason));
                }
            }
            tx.commit()?;
            Ok(failures)
        })
        .await
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, PortError> {
        check_outgoing(&message)?;
        self.with_connection(move |connection, table, config| {
            with_synchronous(connection, config.durability, |connection| insert(connection, table, message, now_ms()))
        })
        .await
    }
}

fn check_outgoing(message: &OutgoingMessage) -> Result<(), PortError> {
    if message.delay > MAX_DELAY {
        return Err(PortError::new(
            PortErrorKind::Rejected,
            format!("local queue: delay of {} s is over the 900 s maximum", message.delay.as_secs()),
        ));
    }
    if message.body.len() > MAX_BODY_BYTES {
        return Err(PortError::new(
            PortErrorKind::Rejected,
            format!("local queue: the message is {} bytes, over the {MAX_BODY_BYTES}-byte limit", message.body.len()),
        ));
    }
    Ok(())
}

fn insert(
    connection: &Connection,
    table: Table,
    message: OutgoingMessage,
    now: i64,
) -> Result<String, rusqlite::Error> {
    let id = new_message_id();
    let attributes = serde_json::to_string(&message.attributes).unwrap_or_else(|_| "{}".to_string());
    connection
        .prepare_cached(&format!(
            "INSERT INTO {} (id, body, attributes, sent_ms, visible_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            table.name()
        ))?
        .execute(params![id, message.body, attributes, now, now + message.delay.as_millis() as i64])?;
    Ok(id)
}

/// Runs a send with the durability sends get, then puts the bookkeeping setting back.
fn with_synchronous<T>(
    connection: &mut Connection,
    durability: Durability,
    f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    if durability.send_pragma() == durability.pragma() {
        return f(connection);
    }
    connection.pragma_update(None, "synchronous", durability.send_pragma())?;
    let result = f(connection);
    let restored = connection.pragma_update(None, "synchronous", durability.pragma());
    let value = result?;
    restored?;
    Ok(value)
}

fn exists(connection: &Connection, table: Table, id: &str) -> Result<bool, rusqlite::Error> {
    connection
        .query_row(&format!("SELECT 1 FROM {} WHERE id = ?1", table.name()), params![id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

fn invalid(index: usize, handle: &str, reason: &str) -> BatchFailure {
    BatchFailure {
        index,
        error: PortError::new(PortErrorKind::InvalidReceipt, format!("local queue: receipt handle {handle} {reason}")),
    }
}

fn sql_error(path: &Path, error: rusqlite::Error) -> PortError {
    // Busy/locked after the busy timeout, I/O errors, a full disk: all may pass, so the loop retries them.
    PortError::transient(format!("local queue {}: {error}", path.display()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

/// A random (version 4) UUID, the shape of SQS message ids.
fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Attributes for a message with a subject, as `watchbot send` and `--messages` enqueue them locally.
pub fn subject_attributes(subject: Option<&str>) -> BTreeMap<String, String> {
    subject.filter(|s| !s.is_empty()).map(|s| (String::from("Subject"), s.to_string())).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_look_like_uuids() {
        let id = new_message_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, new_message_id());
    }

    #[tokio::test]
    async fn counts_track_where_messages_are() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        assert!(queue.is_empty().unwrap());
        queue.send(OutgoingMessage { body: "a".into(), ..Default::default() }).await.unwrap();
        queue
            .send(OutgoingMessage { body: "b".into(), delay: Duration::from_secs(60), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(queue.counts().unwrap(), QueueCounts { visible: 1, in_flight: 0, delayed: 1, dead_lettered: 0 });
        let request = ReceiveRequest { max_messages: 10, wait: Duration::ZERO, visibility_timeout: None };
        let got = queue.receive(request).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(queue.counts().unwrap(), QueueCounts { visible: 0, in_flight: 1, delayed: 1, dead_lettered: 0 });
        assert!(!queue.is_empty().unwrap());
    }

    #[tokio::test]
    async fn send_all_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let ok = OutgoingMessage { body: "x".into(), ..Default::default() };
        let too_late = OutgoingMessage { body: "y".into(), delay: Duration::from_secs(3600), ..Default::default() };
        assert!(queue.send_all(vec![ok.clone(), too_late]).is_err());
        assert!(queue.is_empty().unwrap());
        assert_eq!(queue.send_all(vec![ok.clone(), ok]).unwrap().len(), 2);
        assert_eq!(queue.counts().unwrap().visible, 2);
    }
}
