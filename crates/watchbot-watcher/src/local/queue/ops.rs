//! The operator's calls ([`Operate`]) on the embedded queue: status with the messages in flight and the age of the
//! oldest message, and the dead letters listed, shown, redriven, deleted or purged.
//!
//! Each call is one SQLite transaction: reads never change a row (nothing is received to look at it), and a redrive
//! moves a dead letter back to `messages` (same id, receive count 0, visible at once) and deletes it in the same
//! commit, so locally there is not even the duplicate a crash can leave on SQS. Ids are checked inside the
//! transaction before any row changes: an unknown one rolls everything back. The statements read by primary key,
//! by `id` (its unique index) or by the `(visible_at_ms, seq)` index, as the queue's own do; listing and purging
//! read the dead-letter table, which is what they are asked for.

use super::{LocalQueue, QUEUE_FILE};
use crate::ops::{DeadLetter, InFlight, Operate, OpsError, QueueStatus, Redriven};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The most in-flight messages a status lists (they are all counted).
pub const MAX_LISTED_IN_FLIGHT: usize = 1000;

// The first row by primary key (`MIN(seq)` reads one end of it; `ORDER BY seq LIMIT 1` would plan a scan).
const OLDEST: &str = "SELECT sent_ms FROM messages WHERE seq = (SELECT MIN(seq) FROM messages)";
const IN_FLIGHT: &str = "SELECT id, receive_count, received_ms, visible_at_ms FROM messages
    WHERE visible_at_ms > ?1 AND receive_count > 0 ORDER BY visible_at_ms, seq LIMIT ?2";
const DEAD_LETTER_COLUMNS: &str = "id, body, attributes, sent_ms, receive_count, first_receive_ms";
const REDRIVE: &str = "INSERT INTO messages (id, body, attributes, sent_ms, visible_at_ms)
    SELECT id, body, attributes, ?2, ?2 FROM dead_letters WHERE id = ?1";
const DELETE: &str = "DELETE FROM dead_letters WHERE id = ?1";

fn dead_letter(row: &rusqlite::Row<'_>) -> Result<DeadLetter, rusqlite::Error> {
    let attributes: String = row.get(2)?;
    Ok(DeadLetter {
        message_id: row.get(0)?,
        body: row.get(1)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        sent_ms: row.get::<_, i64>(3)?.max(0) as u64,
        receive_count: row.get::<_, i64>(4)?.clamp(0, i64::from(u32::MAX)) as u32,
        first_receive_ms: row.get::<_, Option<i64>>(5)?.map(|ms| ms.max(0) as u64),
    })
}

fn find(connection: &Connection, id: &str) -> Result<Option<DeadLetter>, rusqlite::Error> {
    let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?1");
    connection.prepare_cached(&sql)?.query_row(params![id], dead_letter).optional()
}

fn all(connection: &Connection) -> Result<Vec<DeadLetter>, rusqlite::Error> {
    let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY seq");
    connection.prepare_cached(&sql)?.query_map([], dead_letter)?.collect()
}

/// The result of a transaction that may stop at an unknown id (rolled back, since the transaction is dropped).
enum Checked<T> {
    Done(T),
    Unknown(String),
}

impl LocalQueue {
    /// Runs `f` in one IMMEDIATE transaction, committed only when it returns `Done`.
    async fn in_transaction<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<Checked<T>, rusqlite::Error> + Send + 'static,
    ) -> Result<T, OpsError> {
        let checked = self
            .with_connection(operation, move |connection, _, config| {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let checked = f(&tx, config.now_ms())?;
                if matches!(checked, Checked::Done(_)) {
                    tx.commit()?;
                }
                Ok(checked)
            })
            .await?;
        match checked {
            Checked::Done(value) => Ok(value),
            Checked::Unknown(id) => Err(OpsError::UnknownId(id)),
        }
    }

    /// The dead letters with these ids (`None`: all), or the first unknown id.
    fn select(tx: &Connection, ids: Option<&[String]>) -> Result<Checked<Vec<DeadLetter>>, rusqlite::Error> {
        let Some(ids) = ids else { return all(tx).map(Checked::Done) };
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            match find(tx, id)? {
                Some(letter) => found.push(letter),
                None => return Ok(Checked::Unknown(id.clone())),
            }
        }
        Ok(Checked::Done(found))
    }
}

impl Operate for LocalQueue {
    async fn status(&self) -> Result<QueueStatus, OpsError> {
        let counts = self.counts()?;
        let now = self.inner.config.now_ms();
        let (oldest, in_flight) = self
            .with_connection("status", move |connection, _, _| {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
                let oldest: Option<i64> = tx.prepare_cached(OLDEST)?.query_row([], |row| row.get(0)).optional()?;
                let in_flight = tx
                    .prepare_cached(IN_FLIGHT)?
                    .query_map(params![now, MAX_LISTED_IN_FLIGHT as i64], |row| {
                        Ok(InFlight {
                            message_id: row.get(0)?,
                            receive_count: row.get::<_, i64>(1)?.clamp(0, i64::from(u32::MAX)) as u32,
                            received_ms: row.get::<_, Option<i64>>(2)?.map(|ms| ms.max(0) as u64),
                            visible_at_ms: row.get::<_, i64>(3)?.max(0) as u64,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                tx.finish()?;
                Ok((oldest, in_flight))
            })
            .await?;
        Ok(QueueStatus {
            visible: counts.visible,
            in_flight: counts.in_flight,
            delayed: counts.delayed,
            dead_letters: counts.dead_lettered,
            oldest_age_ms: oldest.map(|sent| (now - sent).max(0) as u64),
            in_flight_messages: Some(in_flight),
            recent_failures: crate::ops::recent_failures(Some(self.state_dir()), 5),
        })
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OpsError> {
        Ok(self.with_connection("list dead letters", |connection, _, _| all(connection)).await?)
    }

    async fn show(&self, ids: &[String]) -> Result<Vec<DeadLetter>, OpsError> {
        let ids = ids.to_vec();
        self.in_transaction("show dead letters", move |tx, _| LocalQueue::select(tx, Some(&ids))).await
    }

    async fn redrive(&self, ids: Option<&[String]>) -> Result<Vec<Redriven>, OpsError> {
        let ids = ids.map(<[String]>::to_vec);
        self.in_transaction("redrive dead letters", move |tx, now| {
            let letters = match LocalQueue::select(tx, ids.as_deref())? {
                Checked::Done(letters) => letters,
                Checked::Unknown(id) => return Ok(Checked::Unknown(id)),
            };
            let mut redriven = Vec::with_capacity(letters.len());
            for letter in letters {
                // Back as a new send: receive count 0, visible now, so it gets every allowed receive again.
                tx.prepare_cached(REDRIVE)?.execute(params![letter.message_id, now])?;
                tx.prepare_cached(DELETE)?.execute(params![letter.message_id])?;
                redriven.push(Redriven { new_message_id: letter.message_id.clone(), message_id: letter.message_id });
            }
            Ok(Checked::Done(redriven))
        })
        .await
    }

    async fn delete(&self, ids: Option<&[String]>) -> Result<Vec<String>, OpsError> {
        let ids = ids.map(<[String]>::to_vec);
        self.in_transaction("delete dead letters", move |tx, _| {
            let letters = match LocalQueue::select(tx, ids.as_deref())? {
                Checked::Done(letters) => letters,
                Checked::Unknown(id) => return Ok(Checked::Unknown(id)),
            };
            for letter in &letters {
                tx.prepare_cached(DELETE)?.execute(params![letter.message_id])?;
            }
            Ok(Checked::Done(letters.into_iter().map(|letter| letter.message_id).collect()))
        })
        .await
    }
}

/// Whether `state_dir` holds a local queue (so an operator's command can say "no queue in that folder" instead of
/// creating one).
pub fn has_queue(state_dir: &std::path::Path) -> bool {
    state_dir.join(QUEUE_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_statements_use_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::open(dir.path(), super::super::LocalQueueConfig::default()).unwrap();
        let connection = queue.inner.database.lock();
        let by_id = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?1");
        for sql in [OLDEST, IN_FLIGHT, REDRIVE, DELETE, by_id.as_str()] {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next().unwrap() {
                let step: String = row.get(3).unwrap();
                assert!(!step.starts_with("SCAN") && !step.contains("TEMP B-TREE"), "{sql}: {step}");
            }
        }
    }
}
