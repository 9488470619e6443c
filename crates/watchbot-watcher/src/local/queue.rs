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

use crate::ports::{
    BatchFailure, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use watchbot_sqlite::{Database, OpenOptions};

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

/// Where the queue's time comes from: sent and first-receive timestamps, visibility windows, delays.
///
/// Production uses [`SystemClock`]; tests of visibility windows use `ManualClock` (feature `test-util`) and move
/// time on instead of waiting it out. Long polls still wake on real (tokio) time to look again, so a manual clock
/// moved during a poll is noticed within [`LocalQueueConfig::poll_interval`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock that stands still until moved: [`ManualClock::advance`]. Clones share one time.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock at `start_ms` (milliseconds since the Unix epoch).
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Settings of a [`LocalQueue`] handle (per opener: they are not stored in the file).
#[derive(Debug, Clone)]
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
    fn sql(self) -> &'static Statements {
        match self {
            Table::Messages => &MESSAGES_SQL,
            Table::DeadLetters => &DEAD_LETTERS_SQL,
        }
    }
}

struct Inner {
    database: Database,
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
        f.debug_struct("LocalQueue").field("path", &self.path()).field("table", &self.table).finish()
    }
}

/// Both tables and their indexes. Every statement is `IF NOT EXISTS`, so opening an older file adds what it lacks
/// (this runs in one IMMEDIATE transaction per open).
///
/// `messages_visible (visible_at_ms, seq)` is the receive order and serves every time-based query: the next
/// candidates (`visible_at_ms <= now`, first rows only), the next visibility (its minimum), and the hidden count
/// (`visible_at_ms > now`: in flight and delayed messages only). `id` is `UNIQUE`, so its automatic index serves
/// deletes and visibility changes; ids begin with their send time, so that index grows at its end like the others.
/// `queue_sizes` holds each table's row count, kept by triggers (so also by any other writer of the file), because
/// SQLite's `COUNT(*)` reads the whole table; an older file gets its counts once, when the triggers are added.
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
CREATE TABLE IF NOT EXISTS queue_sizes (name TEXT PRIMARY KEY NOT NULL, messages INTEGER NOT NULL);
INSERT INTO queue_sizes (name, messages) SELECT 'messages', (SELECT COUNT(*) FROM messages)
    WHERE NOT EXISTS (SELECT 1 FROM queue_sizes WHERE name = 'messages');
INSERT INTO queue_sizes (name, messages) SELECT 'dead_letters', (SELECT COUNT(*) FROM dead_letters)
    WHERE NOT EXISTS (SELECT 1 FROM queue_sizes WHERE name = 'dead_letters');
CREATE TRIGGER IF NOT EXISTS messages_sent AFTER INSERT ON messages
    BEGIN UPDATE queue_sizes SET messages = messages + 1 WHERE name = 'messages'; END;
CREATE TRIGGER IF NOT EXISTS messages_gone AFTER DELETE ON messages
    BEGIN UPDATE queue_sizes SET messages = messages - 1 WHERE name = 'messages'; END;
CREATE TRIGGER IF NOT EXISTS dead_letters_sent AFTER INSERT ON dead_letters
    BEGIN UPDATE queue_sizes SET messages = messages + 1 WHERE name = 'dead_letters'; END;
CREATE TRIGGER IF NOT EXISTS dead_letters_gone AFTER DELETE ON dead_letters
    BEGIN UPDATE queue_sizes SET messages = messages - 1 WHERE name = 'dead_letters'; END;
";

/// Every statement the queue runs on one table. Each touches only the rows it returns or changes (the query-plan
/// test checks that none scans a table), so no operation's cost grows with the queue's depth; the counts are the
/// exception that reads an index over the messages not visible now, plus SQLite's page count of the table.
struct Statements {
    /// `?1` now: when the next message becomes visible (`NULL` when the table is empty).
    next_visible: String,
    /// `?1` now, `?2` limit: the first receivable messages in receive order.
    candidates: String,
    /// `?1` now, `?2` visible at, `?3` receipt, `?4` seq: one receive of one message.
    take: String,
    /// `?1` now, `?2` seq: copies a message to the dead-letter table (messages table only).
    copy_to_dead_letters: String,
    /// `?1` seq.
    remove: String,
    /// `?1` id, `?2` receipt.
    delete: String,
    /// `?1` visible at, `?2` id, `?3` receipt.
    change_visibility: String,
    /// `?1` id.
    exists: String,
    /// `?1` id, `?2` body, `?3` attributes, `?4` sent at, `?5` visible at.
    insert: String,
    /// `?1` now: messages hidden now, and how many of them were received (in flight; the rest are delayed).
    hidden: String,
    /// The table's row count, as the triggers keep it.
    total: String,
}

impl Statements {
    fn new(table: &str) -> Statements {
        Statements {
            next_visible: format!("SELECT MIN(visible_at_ms) FROM {table}"),
            candidates: format!(
                "SELECT seq, id, body, attributes, sent_ms, receive_count, first_receive_ms FROM {table}
                 WHERE visible_at_ms <= ?1 ORDER BY visible_at_ms, seq LIMIT ?2"
            ),
            take: format!(
                "UPDATE {table} SET receive_count = receive_count + 1,
                    first_receive_ms = COALESCE(first_receive_ms, ?1), visible_at_ms = ?2, receipt = ?3
                 WHERE seq = ?4"
            ),
            // An upsert, not `INSERT OR REPLACE`: a replace's implicit delete fires no trigger, so `queue_sizes`
            // would count the replaced row twice.
            copy_to_dead_letters: format!(
                "INSERT INTO dead_letters
                    (id, body, attributes, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt)
                 SELECT id, body, attributes, sent_ms, ?1, receive_count, first_receive_ms, NULL
                 FROM {table} WHERE seq = ?2
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, attributes = excluded.attributes,
                    sent_ms = excluded.sent_ms, visible_at_ms = excluded.visible_at_ms,
                    receive_count = excluded.receive_count, first_receive_ms = excluded.first_receive_ms,
                    receipt = NULL"
            ),
            remove: format!("DELETE FROM {table} WHERE seq = ?1"),
            delete: format!("DELETE FROM {table} WHERE id = ?1 AND receipt = ?2"),
            change_visibility: format!("UPDATE {table} SET visible_at_ms = ?1 WHERE id = ?2 AND receipt = ?3"),
            exists: format!("SELECT 1 FROM {table} WHERE id = ?1"),
            insert: format!(
                "INSERT INTO {table} (id, body, attributes, sent_ms, visible_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            hidden: format!(
                "SELECT COUNT(*), COALESCE(SUM(receive_count > 0), 0) FROM {table} WHERE visible_at_ms > ?1"
            ),
            total: format!("SELECT messages FROM queue_sizes WHERE name = '{table}'"),
        }
    }
}

static MESSAGES_SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new("messages"));
static DEAD_LETTERS_SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new("dead_letters"));

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
}

impl LocalQueue {
    /// Opens (creating if needed) the queue in `state_dir`. An existing file gets the indexes it lacks.
    pub fn open(state_dir: &Path, config: LocalQueueConfig) -> Result<LocalQueue, LocalQueueError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|source| LocalQueueError::CreateDir { path: state_dir.to_path_buf(), source })?;
        let path = state_dir.join(QUEUE_FILE);
        let options =
            OpenOptions { busy_timeout: config.busy_timeout, synchronous: config.durability.pragma(), schema: SCHEMA };
        let database = Database::open(&path, &options).map_err(|source| LocalQueueError::Open { path, source })?;
        Ok(LocalQueue {
            inner: Arc::new(Inner {
                database,
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
            Ok(match received.is_empty() {
                false => Attempt::Received(received),
                true if more => Attempt::Again,
                // Everything visible was dead-lettered, or another process took it between the read and the lock.
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
    if message.body.len() > MAX_BODY_BYTES {
        return Err(PortError::new(
            PortErrorKind::Rejected,
            format!("local queue: the message is {} bytes, over the {MAX_BODY_BYTES}-byte limit", message.body.len()),
        ));
    }
    Ok(())
}

/// Inserts one message with the table's `insert` statement.
fn insert(
    statement: &mut rusqlite::CachedStatement<'_>,
    message: OutgoingMessage,
    now: i64,
) -> Result<String, rusqlite::Error> {
    let id = new_message_id(now.max(0) as u64);
    let attributes = serde_json::to_string(&message.attributes).unwrap_or_else(|_| "{}".to_string());
    statement.execute(params![id, message.body, attributes, now, now + message.delay.as_millis() as i64])?;
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
        .prepare_cached(&table.sql().exists)?
        .query_row(params![id], |_| Ok(()))
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

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(text: &mut String, byte: u8) {
    text.push(HEX[usize::from(byte >> 4)] as char);
    text.push(HEX[usize::from(byte & 0x0f)] as char);
}

fn random_hex(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes * 2);
    (0..bytes).for_each(|_| push_hex(&mut text, fastrand::u8(..)));
    text
}

/// A version 4 UUID, the shape of SQS message ids, whose first 48 bits are the send time in milliseconds (as in a
/// version 7 UUID) and the other 74 random: ids sent later sort later, so the `id` index is appended to rather than
/// written all over (a million random ids make every send touch an uncached page of it).
fn new_message_id(now_ms: u64) -> String {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes[6..]);
    bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        push_hex(&mut id, *byte);
    }
    id
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
        let id = new_message_id(1_796_083_200_000);
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{id}");
        assert!(id.starts_with("01a22ee6-b000-4"), "{id}");
        assert_ne!(id, new_message_id(1_796_083_200_000));
        assert!(new_message_id(1_796_083_200_001) > id, "later ids sort later");
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

    /// The query plan's steps of `sql`, e.g. `SEARCH messages USING INDEX messages_visible (visible_at_ms<?)`.
    fn plan(connection: &Connection, sql: &str) -> Vec<String> {
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Unbound parameters are NULL: the plan does not depend on their values.
        let mut rows = statement.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps
    }

    /// A step that reads a whole table or index: its cost grows with the queue's depth.
    fn scans(steps: &[String]) -> bool {
        steps.iter().any(|step| step.starts_with("SCAN") || step.contains("USE TEMP B-TREE"))
    }

    #[test]
    fn receive_redrive_delete_and_visibility_statements_use_an_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let connection = queue.inner.database.lock();
        for sql in [&*MESSAGES_SQL, &*DEAD_LETTERS_SQL] {
            for statement in [
                &sql.next_visible,
                &sql.candidates,
                &sql.take,
                &sql.copy_to_dead_letters,
                &sql.remove,
                &sql.delete,
                &sql.change_visibility,
                &sql.exists,
                &sql.hidden,
                &sql.total,
            ] {
                let steps = plan(&connection, statement);
                assert!(!steps.is_empty(), "{statement}");
                assert!(!scans(&steps), "{statement}\nuses {steps:?}");
                assert!(
                    steps.iter().all(|step| step.contains("USING")),
                    "every step of {statement} uses an index: {steps:?}"
                );
            }
        }
        // The check can fail: the redrive statement this queue used to run on every receive scans the table.
        let before = "SELECT id FROM messages WHERE visible_at_ms <= ?1 AND receive_count >= ?2 ORDER BY seq";
        assert!(scans(&plan(&connection, before)), "{:?}", plan(&connection, before));
    }

    #[test]
    fn opening_an_older_file_adds_the_missing_index_and_counts() {
        // An older queue.sqlite: both tables, without the `messages_visible` index and without `queue_sizes`.
        let dir = tempfile::tempdir().unwrap();
        let tables = &SCHEMA[..SCHEMA.find("CREATE TABLE IF NOT EXISTS queue_sizes").unwrap()];
        let before =
            tables.replace("CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms, seq);", "");
        assert_ne!(before, tables);
        let old = Connection::open(dir.path().join(QUEUE_FILE)).unwrap();
        old.execute_batch(&before).unwrap();
        for (table, id) in [("messages", "a"), ("messages", "b"), ("dead_letters", "c")] {
            let sql = format!(
                "INSERT INTO {table} (id, body, attributes, sent_ms, visible_at_ms) VALUES (?1, 'x', '', 1, 1)"
            );
            old.execute(&sql, [id]).unwrap();
        }
        drop(old);
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let connection = queue.inner.database.lock();
        let steps = plan(&connection, &MESSAGES_SQL.candidates);
        assert!(steps.iter().any(|step| step.contains("messages_visible")), "{steps:?}");
        drop(connection);
        let expected = QueueCounts { visible: 2, dead_lettered: 1, ..QueueCounts::default() };
        assert_eq!(queue.counts().unwrap(), expected, "the old file's messages are kept and counted");
        // Opening again does not count them twice.
        drop(queue);
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        assert_eq!(queue.counts().unwrap(), expected);
    }

    #[tokio::test]
    async fn send_all_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let ok = OutgoingMessage { body: "x".into(), ..Default::default() };
        let too_late = OutgoingMessage { body: "y".into(), delay: Duration::from_secs(3600), ..Default::default() };
        assert!(queue.send_all(vec![ok.clone(), too_late]).is_err());
        assert!(queue.is_empty().unwrap());
        // A failure inside the transaction (a trigger standing in for a full disk at the third insert) rolls back
        // the messages inserted before it.
        queue.send_all(vec![ok.clone()]).unwrap();
        queue
            .inner
            .database
            .lock()
            .execute_batch(
                "CREATE TRIGGER fail_third BEFORE INSERT ON messages WHEN (SELECT COUNT(*) FROM messages) >= 3
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let error = queue.send_all(vec![ok.clone(), ok.clone(), ok.clone()]).unwrap_err();
        assert!(error.message.contains("disk full"), "{error:?}");
        assert_eq!(queue.counts().unwrap().visible, 1, "none of the failed batch is enqueued");
        queue.inner.database.lock().execute_batch("DROP TRIGGER fail_third; DELETE FROM messages;").unwrap();
        assert_eq!(queue.send_all(vec![ok.clone(), ok]).unwrap().len(), 2);
        assert_eq!(queue.counts().unwrap().visible, 2);
    }
}
