//! The embedded queue beyond the shared conformance scenarios: several openers at once (each its own SQLite
//! connection, as separate processes would have), and durability across reopening.

use std::collections::HashSet;
use std::time::Duration;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, QueueCounts};
use watchbot_watcher::ports::{OutgoingMessage, Queue, ReceiveRequest};

fn request() -> ReceiveRequest {
    ReceiveRequest {
        max_messages: 10,
        wait: Duration::from_millis(200),
        visibility_timeout: Some(Duration::from_secs(60)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_never_share_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let sender = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    let total = 400;
    let messages = (0..total).map(|n| OutgoingMessage { body: n.to_string(), ..Default::default() }).collect();
    let sent: HashSet<String> = sender.send_all(messages).unwrap().into_iter().collect();

    let mut receivers = Vec::new();
    for _ in 0..4 {
        // A separate open is a separate connection: SQLite's locking, not our mutex, must keep them apart.
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = queue.receive(request()).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                let handles: Vec<String> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
                got.extend(batch.into_iter().map(|m| m.message_id));
                // Delete half the time so deletes and receives interleave across connections.
                if fastrand::bool() {
                    assert!(queue.delete_batch(&handles).await.unwrap().is_empty());
                }
            }
        }));
    }
    let mut seen = Vec::new();
    for receiver in receivers {
        seen.extend(receiver.await.unwrap());
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), total, "every message received exactly once");
    assert_eq!(unique, sent);
}

#[tokio::test]
async fn messages_and_their_state_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let id = queue.send(OutgoingMessage { body: "keep me".into(), ..Default::default() }).await.unwrap();
        let got = queue.receive(request()).await.unwrap();
        assert_eq!(got.len(), 1);
        queue.change_visibility(&got[0].receipt_handle, Duration::ZERO).await.unwrap();
        id
    };
    let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    assert_eq!(queue.counts().unwrap(), QueueCounts { visible: 1, ..QueueCounts::default() });
    let got = queue.receive(request()).await.unwrap();
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn dead_lettered_messages_are_counted_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LocalQueueConfig { max_receive_count: Some(1), ..LocalQueueConfig::default() };
    let queue = LocalQueue::open(dir.path(), config).unwrap();
    let id = queue.send(OutgoingMessage { body: "bad".into(), ..Default::default() }).await.unwrap();
    let got = queue.receive(request()).await.unwrap();
    queue.change_visibility(&got[0].receipt_handle, Duration::ZERO).await.unwrap();
    assert!(queue.receive(ReceiveRequest { wait: Duration::ZERO, ..request() }).await.unwrap().is_empty());
    assert_eq!(queue.counts().unwrap(), QueueCounts { dead_lettered: 1, ..QueueCounts::default() });
    assert!(queue.is_empty().unwrap(), "dead letters do not keep the queue busy");
    let dead = queue.dead_letter_queue().receive(request()).await.unwrap();
    assert_eq!(dead[0].message_id, id);
}

#[test]
fn openers_racing_on_a_fresh_folder_all_succeed() {
    // Every opener switches the new file to WAL at the same moment (a watcher and its workers' first
    // `watchbot send`): that switch can fail with SQLITE_BUSY before the busy handler applies, so open retries it.
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (state, barrier) = (dir.path().join("state"), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    LocalQueue::open(&state, LocalQueueConfig::default()).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            let result = opener.join().unwrap();
            assert!(result.is_ok(), "round {round}: {:?}", result.map_err(|e| format!("{e:#?}")));
        }
    }
}

#[tokio::test]
async fn each_handle_counts_only_its_own_redrives() {
    // Two watchers on one state folder: the one whose receive moved a message counts it, the other does not.
    let dir = tempfile::tempdir().unwrap();
    let config = LocalQueueConfig { max_receive_count: Some(1), ..LocalQueueConfig::default() };
    let (a, b) = (LocalQueue::open(dir.path(), config.clone()).unwrap(), LocalQueue::open(dir.path(), config).unwrap());
    a.send(OutgoingMessage { body: "poison".into(), ..Default::default() }).await.unwrap();
    let once = ReceiveRequest { visibility_timeout: Some(Duration::ZERO), ..request() };
    assert_eq!(a.receive(once).await.unwrap().len(), 1, "the one allowed receive");
    assert!(b.receive(request()).await.unwrap().is_empty(), "b's receive redrives it instead");
    assert_eq!((a.redriven(), b.redriven(), b.clone().redriven()), (0, 1, 1));
    assert_eq!(a.counts().unwrap().dead_lettered, 1);
}
