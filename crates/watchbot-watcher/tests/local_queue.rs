//! The embedded queue beyond the shared conformance scenarios: several openers at once (each its own SQLite
//! connection, as separate processes would have), durability across reopening, and time: visibility windows,
//! delays and redrive on a [`ManualClock`], moved on instead of waited out (the conformance suite runs the same
//! windows in real time, because moto's clock cannot be moved).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, ManualClock, QueueCounts};
use watchbot_watcher::ports::{OutgoingMessage, Queue, ReceiveRequest};

fn request() -> ReceiveRequest {
    ReceiveRequest::new(10, Duration::from_millis(200), Some(Duration::from_secs(60)))
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
    let mut config = LocalQueueConfig::default();
    config.max_receive_count = Some(1);
    let queue = LocalQueue::open(dir.path(), config).unwrap();
    let id = queue.send(OutgoingMessage { body: "bad".into(), ..Default::default() }).await.unwrap();
    let got = queue.receive(request()).await.unwrap();
    queue.change_visibility(&got[0].receipt_handle, Duration::ZERO).await.unwrap();
    assert!(
        queue
            .receive({
                let mut c = request();
                c.wait = Duration::ZERO;
                c
            })
            .await
            .unwrap()
            .is_empty()
    );
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
    let mut config = LocalQueueConfig::default();
    config.max_receive_count = Some(1);
    let (a, b) = (LocalQueue::open(dir.path(), config.clone()).unwrap(), LocalQueue::open(dir.path(), config).unwrap());
    a.send(OutgoingMessage { body: "poison".into(), ..Default::default() }).await.unwrap();
    let mut once = request();
    once.visibility_timeout = Some(Duration::ZERO);
    assert_eq!(a.receive(once).await.unwrap().len(), 1, "the one allowed receive");
    assert!(b.receive(request()).await.unwrap().is_empty(), "b's receive redrives it instead");
    assert_eq!((a.redriven(), b.redriven(), b.clone().redriven()), (0, 1, 1));
    assert_eq!(a.counts().unwrap().dead_lettered, 1);
}

/// 2026-12-01T00:00:00Z: any fixed time will do.
const START_MS: u64 = 1_796_083_200_000;

/// A queue on a manual clock, and the clock.
fn on_manual_clock(dir: &std::path::Path, max_receive_count: Option<u32>) -> (LocalQueue, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let mut config = LocalQueueConfig::default();
    config.max_receive_count = max_receive_count;
    config.clock = Arc::new(clock.clone());
    (LocalQueue::open(dir, config).unwrap(), clock)
}

fn now(wait_ms: u64, visibility_secs: u64) -> ReceiveRequest {
    ReceiveRequest::new(10, Duration::from_millis(wait_ms), Some(Duration::from_secs(visibility_secs)))
}

fn body(text: &str) -> OutgoingMessage {
    OutgoingMessage { body: text.into(), ..Default::default() }
}

#[tokio::test]
async fn a_message_comes_back_exactly_when_its_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), None);
    let id = queue.send(body("hide and seek")).await.unwrap();
    let first = queue.receive(now(0, 30)).await.unwrap().remove(0);
    assert_eq!((first.sent_timestamp_ms, first.first_receive_timestamp_ms), (START_MS, START_MS));
    clock.advance(Duration::from_millis(29_999));
    assert!(queue.receive(now(0, 30)).await.unwrap().is_empty(), "hidden until the last millisecond");
    assert_eq!(queue.counts().unwrap(), QueueCounts { in_flight: 1, ..QueueCounts::default() });
    clock.advance(Duration::from_millis(1));
    let second = queue.receive(now(0, 30)).await.unwrap().remove(0);
    assert_eq!(second.message_id, id);
    assert_eq!(second.receive_count, 2);
    assert_eq!(second.first_receive_timestamp_ms, START_MS, "the first receive is kept");
    assert_ne!(second.receipt_handle, first.receipt_handle);
}

#[tokio::test]
async fn a_delayed_message_is_counted_as_delayed_until_its_delay_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), None);
    let delayed = OutgoingMessage { delay: Duration::from_secs(900), ..body("later") };
    queue.send(delayed).await.unwrap();
    assert_eq!(queue.counts().unwrap(), QueueCounts { delayed: 1, ..QueueCounts::default() });
    clock.advance(Duration::from_secs(899));
    assert!(queue.receive(now(0, 30)).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(queue.counts().unwrap(), QueueCounts { visible: 1, ..QueueCounts::default() });
    assert_eq!(queue.receive(now(0, 30)).await.unwrap()[0].body, "later");
}

#[tokio::test]
async fn a_heartbeat_keeps_a_message_hidden_past_its_first_window() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), None);
    queue.send(body("long task")).await.unwrap();
    let held = queue.receive(now(0, 30)).await.unwrap().remove(0);
    clock.advance(Duration::from_secs(20));
    queue.change_visibility(&held.receipt_handle, Duration::from_secs(30)).await.unwrap();
    clock.advance(Duration::from_secs(29));
    assert!(queue.receive(now(0, 30)).await.unwrap().is_empty(), "hidden 30 s from the heartbeat, not the receive");
    clock.advance(Duration::from_secs(1));
    assert_eq!(queue.receive(now(0, 30)).await.unwrap()[0].receive_count, 2);
}

#[tokio::test]
async fn redrive_moves_a_message_when_it_is_received_past_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), Some(2));
    let id = queue.send(body("poison")).await.unwrap();
    for n in 1..=2 {
        let got = queue.receive(now(0, 30)).await.unwrap();
        assert_eq!(got[0].receive_count, n);
        clock.advance(Duration::from_secs(30));
    }
    assert!(queue.receive(now(0, 30)).await.unwrap().is_empty(), "moved, not delivered a third time");
    assert_eq!(queue.counts().unwrap(), QueueCounts { dead_lettered: 1, ..QueueCounts::default() });
    assert_eq!(queue.redriven(), 1);
    let dead = queue.dead_letter_queue().receive(now(0, 30)).await.unwrap().remove(0);
    assert_eq!((dead.message_id, dead.body, dead.receive_count), (id, "poison".to_string(), 3));
}

#[tokio::test]
async fn a_receive_redrives_only_its_own_candidates_and_delivers_the_next_one() {
    // SQS moves a message when that message is received past its limit: a poison message behind the ones a
    // receive delivers stays where it is until a receive reaches it.
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), Some(1));
    let first_poison = queue.send(body("poison 1")).await.unwrap();
    let second_poison = queue.send(body("poison 2")).await.unwrap();
    let held = queue.receive(now(0, 10)).await.unwrap();
    assert_eq!(held.len(), 2);
    clock.advance(Duration::from_secs(1));
    // The second poison message comes back a second after the first.
    queue.change_visibility(&held[1].receipt_handle, Duration::from_secs(10)).await.unwrap();
    clock.advance(Duration::from_secs(9));
    let healthy = queue.send(body("healthy")).await.unwrap();
    clock.advance(Duration::from_secs(1));
    // Receive order now: poison 1 (visible since 10 s), healthy (10 s, sent later), poison 2 (11 s).
    let mut one = now(0, 30);
    one.max_messages = 1;
    let got = queue.receive(one).await.unwrap();
    assert_eq!(got.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>(), [healthy]);
    assert_eq!(queue.redriven(), 1, "only the candidate ahead of it");
    assert_eq!(queue.counts().unwrap(), QueueCounts { visible: 1, in_flight: 1, delayed: 0, dead_lettered: 1 });
    assert!(queue.receive(one).await.unwrap().is_empty(), "the next receive reaches the second one");
    let dead = queue.dead_letter_queue().receive(now(0, 30)).await.unwrap();
    let dead: Vec<_> = dead.into_iter().map(|m| m.message_id).collect();
    assert_eq!(dead, [first_poison, second_poison]);
}

#[tokio::test]
async fn a_poison_backlog_longer_than_one_transaction_is_moved_by_one_receive() {
    // Redrives per transaction are bounded; the receive goes on in new transactions until it finds a message.
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), Some(1));
    let poison: Vec<OutgoingMessage> = (0..250).map(|n| body(&format!("poison {n}"))).collect();
    queue.send_all(poison).unwrap();
    let mut held = 0;
    while held < 250 {
        held += queue.receive(now(0, 10)).await.unwrap().len();
    }
    clock.advance(Duration::from_secs(10));
    let healthy = queue.send(body("healthy")).await.unwrap();
    let got = queue.receive(now(0, 30)).await.unwrap();
    assert_eq!(got.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>(), [healthy]);
    assert_eq!(queue.redriven(), 250);
}

#[tokio::test]
async fn a_long_poll_wakes_when_the_clock_passes_a_window() {
    // The poll sleeps in real (tokio) time between looks, so a manual clock moved meanwhile is noticed.
    let dir = tempfile::tempdir().unwrap();
    let (queue, clock) = on_manual_clock(dir.path(), None);
    let id = queue.send(body("soon")).await.unwrap();
    queue.receive(now(0, 60)).await.unwrap();
    let started = std::time::Instant::now();
    let (got, ()) = tokio::join!(queue.receive(now(10_000, 60)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        clock.advance(Duration::from_secs(60));
    });
    assert_eq!(got.unwrap()[0].message_id, id);
    assert!(started.elapsed() < Duration::from_secs(5), "woke after {:?}", started.elapsed());
}

#[test]
fn the_system_clock_is_the_default() {
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let now = LocalQueueConfig::default().clock.now_ms();
    assert!(now >= before && now < before + 60_000, "{now} vs {before}");
}
