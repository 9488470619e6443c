//! The embedded, durable queue: SQLite with SQS semantics, for local mode.
//!
//! One SQLite file (`queue.sqlite`) in the state folder (default `.watchbot/`) holds two tables with the same shape:
//! `messages` (the work queue) and `dead_letters` (its dead-letter queue). Semantics follow SQS:
//! - a message has an id, a body, string attributes, a sent timestamp, a receive count and a first-receive timestamp;
//! - a receive hides the message for the visibility timeout and gives a new receipt handle; only the latest handle
//!   can delete the message or change its visibility (an older one gets [`PortErrorKind::InvalidReceipt`]);
//!   deleting an already deleted message succeeds, as on SQS;
//! - a message sent with a delay is invisible until the delay has passed;
//! - redrive happens at receive time, as on SQS: a candidate of a receive that already had `max_receive_count`
//!   receives moves to the dead-letter table instead of being delivered, and the receive takes the next one.
//!
//! Cost does not grow with depth: every receive, delete, visibility change and redrive touches only the rows it
//! returns or changes, through the `(visible_at_ms, seq)` index and the `id` index (a query-plan test checks that
//! none scans a table); [`LocalQueue::counts`] reads the hidden messages' index range and the table's row count;
//! [`LocalQueue::send_all`] enqueues any number of messages in one transaction. Time comes from a [`Clock`]
//! ([`SystemClock`]; tests move a manual one on instead of waiting out visibility windows).
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

mod clock;
mod ids;
mod ops;
mod sql;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "test-util"))]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use ops::{MAX_LISTED_IN_FLIGHT, has_queue};

use crate::ports::{
    BatchFailure, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};
use ids::random_hex;
use rusqlite::{Connection, TransactionBehavior, params};
use sql::{DEAD_LETTERS_SQL, SCHEMA, Table, exists, insert, with_synchronous};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use watchbot_sqlite::{Database, OpenOptions};

/// The state folder local mode uses when none is given.
pub const DEFAULT_STATE_DIR: &str = ".watchbot";
/// The queue's file name inside the state folder.
pub const QUEUE_FILE: &str = "queue.sqlite";
/// The template's redrive threshold (`maxReceiveCount` of the queue's RedrivePolicy).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 10;

/// SQS's limits, kept here so local mode rejects what production would reject.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
const MAX_BATCH: usize = 10;

/// How many messages one receive transaction may move to the dead-letter table while looking for messages to
/// deliver. A backlog of poison messages is then moved in bounded transactions (the receive goes on in a new one
/// at once), so one receive never holds the write lock for long.
const MAX_REDRIVES_PER_TRANSACTION: usize = 100;

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
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The queue's time ([`SystemClock`] unless a test sets another).
    pub clock: Arc<dyn Clock>,
}

impl Default for LocalQueueConfig {
    fn default() -> LocalQueueConfig {
        LocalQueueConfig {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: Some(DEFAULT_MAX_RECEIVE_COUNT),
            durability: Durability::Sends,
            busy_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(25),
            clock: Arc::new(SystemClock),
        }
    }
}

impl LocalQueueConfig {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX)
    }
}

/// Why the queue could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("cannot open the local queue")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause (it names the file).
        #[source]
        source: watchbot_sqlite::Error,
    },
    /// A file written by an older watchbot could not be given the columns this one keeps.
    #[error("cannot upgrade the local queue {}", path.display())]
    Upgrade {
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
struct Inner {
    database: Database,
    state_dir: PathBuf,
    config: LocalQueueConfig,
    /// Messages this handle's receives moved to the dead-letter queue (see [`LocalQueue::redriven`]).
    redriven: AtomicU64,
    /// The moved messages not yet taken by [`Queue::take_dead_lettered`] (the newest [`MAX_REPORTED_MOVES`]).
    moved: std::sync::Mutex<std::collections::VecDeque<ReceivedMessage>>,
}

/// The most moves kept for [`Queue::take_dead_lettered`] when nobody takes them (a caller receiving without the
/// loop); older ones are dropped, still counted by [`LocalQueue::redriven`].
const MAX_REPORTED_MOVES: usize = 1000;

/// The embedded queue (or, from [`LocalQueue::dead_letter_queue`], its dead-letter queue). Cheap to clone: clones
/// share one connection.
#[derive(Clone)]
pub struct LocalQueue {
    inner: Arc<Inner>,
    table: Table,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue").field("path", &self.path()).field("table", &self.table).finish()
    }
}
/// A candidate row of a receive.
struct Candidate {
    seq: i64,
    id: String,
    body: String,
    attributes: String,
    sent_ms: i64,
    receive_count: i64,
    first_receive_ms: Option<i64>,
}

/// What one receive transaction found.
enum Attempt {
    /// Messages, now hidden for this receive.
    Received(Vec<ReceivedMessage>),
    /// Nothing receivable; the next message becomes visible at this time (`None`: nothing is waiting, or unknown).
    Empty(Option<i64>),
    /// Only moved messages to the dead-letter table, and more may be receivable: look again at once.
    Again,
    /// Only moved messages to the dead-letter table, and nothing else is receivable: the receive answers at once,
    /// so its caller learns of the moves (`take_dead_lettered`) now rather than after the long poll.
    Moved,
}

impl LocalQueue {
    /// Opens (creating if needed) the queue in `state_dir`. An existing file gets the indexes it lacks.
    pub fn open(state_dir: &Path, config: LocalQueueConfig) -> Result<LocalQueue, LocalQueueError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|source| LocalQueueError::CreateDir { path: state_dir.to_path_buf(), source })?;
        let path = state_dir.join(QUEUE_FILE);
        let options =
            OpenOptions { busy_timeout: config.busy_timeout, synchronous: config.durability.pragma(), schema: SCHEMA };
        let database =
            Database::open(&path, &options).map_err(|source| LocalQueueError::Open { path: path.clone(), source })?;
        sql::upgrade(&database.lock()).map_err(|source| LocalQueueError::Upgrade { path, source })?;
        Ok(LocalQueue {
            inner: Arc::new(Inner {
                database,
                state_dir: state_dir.to_path_buf(),
                config,
                redriven: AtomicU64::new(0),
                moved: Default::default(),
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
        self.inner.database.path()
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The settings this handle was opened with.
    pub fn config(&self) -> &LocalQueueConfig {
        &self.inner.config
    }

    /// Where the messages are now, from one snapshot. Reads only; never waits for a writer. Its cost grows with the
    /// messages hidden now (in flight or delayed), not with the visible backlog: the visible count is the table's
    /// row count (kept in `queue_sizes`) less the hidden ones.
    pub fn counts(&self) -> Result<QueueCounts, PortError> {
        let sql = self.table.sql();
        let now = self.inner.config.now_ms();
        let with_dead_letters = self.table == Table::Messages;
        self.with_connection_sync(|connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let total: i64 = tx.prepare_cached(&sql.total)?.query_row([], |row| row.get(0))?;
            let (hidden, in_flight): (i64, i64) =
                tx.prepare_cached(&sql.hidden)?.query_row(params![now], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let dead_lettered: i64 = if with_dead_letters {
                tx.prepare_cached(&DEAD_LETTERS_SQL.total)?.query_row([], |row| row.get(0))?
            } else {
                0
            };
            tx.finish()?;
            Ok(QueueCounts {
                visible: (total - hidden).max(0) as u64,
                in_flight: in_flight as u64,
                delayed: (hidden - in_flight).max(0) as u64,
                dead_lettered: dead_lettered as u64,
            })
        })
    }

    /// Whether nothing is visible, in flight or delayed (dead letters do not count). Reads one index entry.
    pub fn is_empty(&self) -> Result<bool, PortError> {
        let sql = self.table.sql();
        let next: Option<i64> = self.with_connection_sync(|connection| {
            connection.prepare_cached(&sql.next_visible)?.query_row([], |row| row.get(0))
        })?;
        Ok(next.is_none())
    }

    /// Sends many messages in one transaction: all are enqueued, or none (a bad message rejects the lot before
    /// anything is written). Returns their ids in order. One commit (one fsync) for the lot, so a `--messages` file
    /// of 100,000 lines enqueues in about a second. Runs on the calling thread.
    pub fn send_all(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, PortError> {
        for message in &messages {
            check_outgoing(message)?;
        }
        let table = self.table;
        let config = &self.inner.config;
        self.with_connection_sync(move |connection| {
            with_synchronous(connection, config.durability, |connection| {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut ids = Vec::with_capacity(messages.len());
                {
                    let mut insert_statement = tx.prepare_cached(&table.sql().insert)?;
                    for message in messages {
                        ids.push(insert(&mut insert_statement, message, config.now_ms())?);
                    }
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
        f(&mut self.inner.database.lock()).map_err(|e| sql_error(self.path(), e))
    }

    /// Runs `f` on the connection in tokio's blocking pool: SQLite calls block (fsync, busy waits).
    async fn with_connection<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Connection, Table, &LocalQueueConfig) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, PortError> {
        let inner = self.inner.clone();
        let table = self.table;
        let result = self.inner.database.call(operation, move |connection| f(connection, table, &inner.config)).await;
        // A failed blocking task (a panic in `f`) rolled its transaction back: the call may be retried.
        let result = result.map_err(|e| PortError::transient(format!("local queue: {e}")))?;
        result.map_err(|e| sql_error(self.path(), e))
    }

    /// One receive transaction.
    async fn try_receive(&self, max: usize, visibility: Duration) -> Result<Attempt, PortError> {
        let inner = self.inner.clone();
        self.with_connection("receive", move |connection, table, config| {
            let sql = table.sql();
            // A cheap read first (the index's first entry), without the write lock, so idle polling does not
            // serialize other processes.
            let next: Option<i64> = connection.prepare_cached(&sql.next_visible)?.query_row([], |row| row.get(0))?;
            match next {
                Some(at) if at <= config.now_ms() => {}
                other => return Ok(Attempt::Empty(other)),
            }
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = config.now_ms();
            let visible_at = now + visibility.as_millis() as i64;
            let max_receives = match table {
                Table::Messages => config.max_receive_count.map(i64::from),
                Table::DeadLetters => None,
            };
            let mut received: Vec<ReceivedMessage> = Vec::with_capacity(max);
            let mut taken = Vec::with_capacity(max);
            let mut redriven = 0usize;
            let mut moved: Vec<ReceivedMessage> = Vec::new();
            // Redrive at receive time, as SQS does: a candidate of this receive that already had its last allowed
            // receive moves to the dead-letter table instead of being delivered, and the receive looks at the next
            // candidate. Only candidates are looked at, so the cost is that of the rows moved or delivered.
            let more = loop {
                // Messages taken by this transaction with a zero visibility are candidates again: ask for enough
                // rows to see past them.
                let limit = (max - received.len() + taken.len()) as i64;
                let candidates: Vec<Candidate> = tx
                    .prepare_cached(&sql.candidates)?
                    .query_map(params![now, limit], |row| {
                        Ok(Candidate {
                            seq: row.get(0)?,
                            id: row.get(1)?,
                            body: row.get(2)?,
                            attributes: row.get(3)?,
                            sent_ms: row.get(4)?,
                            receive_count: row.get(5)?,
                            first_receive_ms: row.get(6)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let exhausted = (candidates.len() as i64) < limit;
                for candidate in candidates {
                    if taken.contains(&candidate.seq) || received.len() == max {
                        continue;
                    }
                    if max_receives.is_some_and(|limit| candidate.receive_count >= limit) {
                        tx.prepare_cached(&sql.copy_to_dead_letters)?.execute(params![now, candidate.seq])?;
                        tx.prepare_cached(&sql.remove)?.execute(params![candidate.seq])?;
                        redriven += 1;
                        moved.push(ReceivedMessage {
                            message_id: candidate.id,
                            receipt_handle: String::new(),
                            body: candidate.body,
                            sent_timestamp_ms: candidate.sent_ms as u64,
                            first_receive_timestamp_ms: candidate.first_receive_ms.unwrap_or(now) as u64,
                            receive_count: candidate.receive_count as u32,
                            attributes: serde_json::from_str(&candidate.attributes).unwrap_or_default(),
                        });
                        continue;
                    }
                    let receipt = format!("{}#{}", candidate.id, random_hex(16));
                    tx.prepare_cached(&sql.take)?.execute(params![now, visible_at, receipt, candidate.seq])?;
                    taken.push(candidate.seq);
                    received.push(ReceivedMessage {
                        message_id: candidate.id,
                        receipt_handle: receipt,
                        body: candidate.body,
                        sent_timestamp_ms: candidate.sent_ms as u64,
                        first_receive_timestamp_ms: candidate.first_receive_ms.unwrap_or(now) as u64,
                        receive_count: candidate.receive_count as u32 + 1,
                        attributes: serde_json::from_str(&candidate.attributes).unwrap_or_default(),
                    });
                }
                if received.len() == max || exhausted {
                    break false;
                }
                if redriven >= MAX_REDRIVES_PER_TRANSACTION {
                    break true;
                }
            };
            tx.commit()?;
            // Counted once committed: a failed transaction moved nothing.
            inner.redriven.fetch_add(redriven as u64, Ordering::Relaxed);
            if !moved.is_empty() {
                let mut reported = inner.moved.lock().unwrap_or_else(|p| p.into_inner());
                reported.extend(moved);
                let excess = reported.len().saturating_sub(MAX_REPORTED_MOVES);
                reported.drain(..excess);
            }
            Ok(match received.is_empty() {
                false => Attempt::Received(received),
                true if more => Attempt::Again,
                // Everything visible was dead-lettered.
                true if redriven > 0 => Attempt::Moved,
                // Another process took it between the read and the lock.
                true => Attempt::Empty(None),
            })
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
                Attempt::Received(messages) => return Ok(messages),
                Attempt::Again => continue,
                Attempt::Moved => return Ok(Vec::new()),
                Attempt::Empty(next) => next,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Sleep until the next message is due, but look again soon: another process may send at any time, and
            // the queue's clock may be a test's manual one.
            let mut pause = self.inner.config.poll_interval.min(deadline - now);
            if let Some(at) = next {
                let until = Duration::from_millis((at - self.inner.config.now_ms()).max(1) as u64);
                pause = pause.min(until);
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<Vec<BatchFailure>, PortError> {
        let handles = receipt_handles.to_vec();
        self.with_connection("delete", move |connection, table, _| {
            let sql = table.sql();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut failures = Vec::new();
            for (index, handle) in handles.iter().enumerate() {
                let Some((id, _)) = handle.rsplit_once('#') else {
                    failures.push(invalid(index, handle, "is not a receipt handle of this queue"));
                    continue;
                };
                let deleted = tx.prepare_cached(&sql.delete)?.execute(params![id, handle])?;
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
        self.with_connection("change visibility", move |connection, table, config| {
            let sql = table.sql();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = config.now_ms();
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
                let changed = tx.prepare_cached(&sql.change_visibility)?.execute(params![visible_at, id, handle])?;
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

    fn take_dead_lettered(&self) -> Vec<ReceivedMessage> {
        self.inner.moved.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect()
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, PortError> {
        check_outgoing(&message)?;
        self.with_connection("send", move |connection, table, config| {
            with_synchronous(connection, config.durability, |connection| {
                insert(&mut connection.prepare_cached(&table.sql().insert)?, message, config.now_ms())
            })
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
    // What SQS (and SNS, for the subject) would refuse, refused here too.
    crate::limits::check_message(message.attributes.get("Subject").map(String::as_str), &message.body)
        .map_err(|why| PortError::new(PortErrorKind::Rejected, format!("local queue: {why}")))
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
/// Attributes for a message with a subject, as `watchbot send` and `--messages` enqueue them locally.
pub fn subject_attributes(subject: Option<&str>) -> BTreeMap<String, String> {
    subject.filter(|s| !s.is_empty()).map(|s| (String::from("Subject"), s.to_string())).into_iter().collect()
}
