//! The embedded queue's SQL: the schema, the statements of each table, and the helpers that run them.

use super::Durability;
use super::ids::new_message_id;
use crate::ports::OutgoingMessage;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Messages,
    DeadLetters,
}

impl Table {
    pub(super) fn sql(self) -> &'static Statements {
        match self {
            Table::Messages => &MESSAGES_SQL,
            Table::DeadLetters => &DEAD_LETTERS_SQL,
        }
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
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_ms INTEGER,
    receipt TEXT,
    received_ms INTEGER
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
    receipt TEXT,
    received_ms INTEGER
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
pub(super) struct Statements {
    /// `?1` now: when the next message becomes visible (`NULL` when the table is empty).
    pub(super) next_visible: String,
    /// `?1` now, `?2` limit: the first receivable messages in receive order.
    pub(super) candidates: String,
    /// `?1` now, `?2` visible at, `?3` receipt, `?4` seq: one receive of one message.
    pub(super) take: String,
    /// `?1` now, `?2` seq: copies a message to the dead-letter table (messages table only).
    pub(super) copy_to_dead_letters: String,
    /// `?1` seq.
    pub(super) remove: String,
    /// `?1` id, `?2` receipt.
    pub(super) delete: String,
    /// `?1` visible at, `?2` id, `?3` receipt.
    pub(super) change_visibility: String,
    /// `?1` id.
    pub(super) exists: String,
    /// `?1` id, `?2` body, `?3` attributes, `?4` sent at, `?5` visible at.
    pub(super) insert: String,
    /// `?1` now: messages hidden now, and how many of them were received (in flight; the rest are delayed).
    pub(super) hidden: String,
    /// The table's row count, as the triggers keep it.
    pub(super) total: String,
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
                    first_receive_ms = COALESCE(first_receive_ms, ?1), received_ms = ?1, visible_at_ms = ?2,
                    receipt = ?3
                 WHERE seq = ?4"
            ),
            // An upsert, not `INSERT OR REPLACE`: a replace's implicit delete fires no trigger, so `queue_sizes`
            // would count the replaced row twice.
            copy_to_dead_letters: format!(
                "INSERT INTO dead_letters
                    (id, body, attributes, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt,
                     received_ms)
                 SELECT id, body, attributes, sent_ms, ?1, receive_count, first_receive_ms, NULL, received_ms
                 FROM {table} WHERE seq = ?2
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, attributes = excluded.attributes,
                    sent_ms = excluded.sent_ms, visible_at_ms = excluded.visible_at_ms,
                    receive_count = excluded.receive_count, first_receive_ms = excluded.first_receive_ms,
                    receipt = NULL, received_ms = excluded.received_ms"
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

pub(super) static MESSAGES_SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new("messages"));
pub(super) static DEAD_LETTERS_SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new("dead_letters"));
/// Columns added after the first release, and their types: a file written before them gets them on open
/// ([`upgrade`]), since `CREATE TABLE IF NOT EXISTS` leaves an existing table as it is.
const ADDED_COLUMNS: &[(&str, &str)] = &[("received_ms", "INTEGER")];

/// Adds the [`ADDED_COLUMNS`] a table of an older file lacks. Two processes opening the same old file may race: the
/// loser's `ALTER TABLE` fails with "duplicate column", which means the column is there.
pub(super) fn upgrade(connection: &Connection) -> Result<(), rusqlite::Error> {
    for table in ["messages", "dead_letters"] {
        for (column, kind) in ADDED_COLUMNS {
            let present: bool = connection.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                params![table, column],
                |row| row.get(0),
            )?;
            if present {
                continue;
            }
            match connection.execute(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"), []) {
                Err(error) if error.to_string().contains("duplicate column") => {}
                other => drop(other?),
            }
        }
    }
    Ok(())
}

/// Inserts one message with the table's `insert` statement.
pub(super) fn insert(
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
pub(super) fn with_synchronous<T>(
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

pub(super) fn exists(connection: &Connection, table: Table, id: &str) -> Result<bool, rusqlite::Error> {
    connection
        .prepare_cached(&table.sql().exists)?
        .query_row(params![id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}
