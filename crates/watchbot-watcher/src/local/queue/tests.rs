//! Unit tests of the embedded queue that reach inside it: ids, counts, query plans, schema upgrades, batched sends.

use super::ids::new_message_id;
use super::sql::{DEAD_LETTERS_SQL, MESSAGES_SQL, SCHEMA};
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

#[tokio::test]
async fn opening_an_older_file_adds_the_missing_index_counts_and_columns() {
    // An older queue.sqlite: both tables, without the `messages_visible` index, without `queue_sizes`, and without
    // the `received_ms` column.
    let dir = tempfile::tempdir().unwrap();
    let tables = &SCHEMA[..SCHEMA.find("CREATE TABLE IF NOT EXISTS queue_sizes").unwrap()];
    let before = tables.replace("CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms, seq);", "");
    let before = before.replace(",\n    received_ms INTEGER", "");
    assert_eq!(before.matches("received_ms").count(), 0, "{before}");
    assert_ne!(before, tables);
    let old = Connection::open(dir.path().join(QUEUE_FILE)).unwrap();
    old.execute_batch(&before).unwrap();
    for (table, id) in [("messages", "a"), ("messages", "b"), ("dead_letters", "c")] {
        let sql =
            format!("INSERT INTO {table} (id, body, attributes, sent_ms, visible_at_ms) VALUES (?1, 'x', '', 1, 1)");
        old.execute(&sql, [id]).unwrap();
    }
    drop(old);
    let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    let steps = plan(&queue.inner.database.lock(), &MESSAGES_SQL.candidates);
    assert!(steps.iter().any(|step| step.contains("messages_visible")), "{steps:?}");
    let expected = QueueCounts { visible: 2, dead_lettered: 1, ..QueueCounts::default() };
    assert_eq!(queue.counts().unwrap(), expected, "the old file's messages are kept and counted");
    // Opening again does not count them twice, and the added column works: a receive records its time.
    drop(queue);
    let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    assert_eq!(queue.counts().unwrap(), expected);
    let request = ReceiveRequest { max_messages: 1, wait: Duration::ZERO, visibility_timeout: None };
    assert_eq!(queue.receive(request).await.unwrap().len(), 1);
    let status = crate::ops::Operate::status(&queue).await.unwrap();
    let in_flight = status.in_flight_messages.unwrap();
    assert_eq!(in_flight.len(), 1);
    assert!(in_flight[0].received_ms.is_some(), "{in_flight:?}");
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
