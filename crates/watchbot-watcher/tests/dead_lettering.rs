//! Dead-lettering is never silent (the loop's `run/dead_letters.rs`), on the fake queue with tokio's paused clock
//! and on the embedded queue: a failure on the last receive the redrive policy allows says the dead-letter queue is
//! next (not "retry at"), returns at once and is counted; an exit 4 then notifies too; a move the loop did not see
//! coming (the last receive ended without a result) is counted and notified when the queue reports it; an announced
//! move is not told twice.

use std::time::Duration;
use watchbot_watcher::events::Event;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{OutgoingMessage, Queue, ReceiveRequest};
use watchbot_watcher::testing::{FakeQueue, FakeRunner, Recorder, RecordingNotifier};
use watchbot_watcher::{Jitter, Ports, WatcherConfig, run};

fn config(max_receive_count: u32) -> WatcherConfig {
    let mut c = WatcherConfig::default();
    c.stack_name = "stack".into();
    c.jitter = Jitter::Fixed(0.0);
    c.max_receive_count = Some(max_receive_count);
    c.queue_flags = "--queue-url https://sqs.example/1/q".into();
    c
}

fn dead_lettered(events: &Recorder) -> Vec<(String, String)> {
    events
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::DeadLettered { message_id, reason } => Some((message_id, reason)),
            _ => None,
        })
        .collect()
}

const NEXT: &str = "Next: the dead-letter queue (this was receive 3 of the 3 its redrive policy allows)\n\
                    To run it again: watchbot dead-letter redrive --queue-url https://sqs.example/1/q ";

#[tokio::test(start_paused = true)]
async fn a_failure_on_the_last_receive_announces_the_dead_letter_queue() {
    let queue = FakeQueue::new();
    queue.set_redrive(3);
    let (notifier, events) = (RecordingNotifier::default(), Recorder::default());
    let id = queue.push("1");
    let ports = Ports::new(queue.clone(), FakeRunner::new(), notifier.clone()).with_events(events.clone());
    let summary = run(ports, &config(3), tokio::time::sleep(Duration::from_secs(60))).await.expect("runs");

    // Receives 1 and 2 retry after their backoff; receive 3 is the last: back at once, then moved by the queue.
    let returns: Vec<Duration> = queue.visibility_changes(&id).into_iter().map(|(_, t)| t).collect();
    let returns: Vec<Duration> = returns.into_iter().filter(|t| *t != Duration::from_secs(60)).collect();
    assert_eq!(returns, [Duration::from_secs(1), Duration::from_secs(2), Duration::ZERO]);
    assert_eq!(queue.dead_lettered(), std::slice::from_ref(&id));
    let sent = notifier.sent();
    assert_eq!(sent.len(), 3, "one per failure, none again at the move: {sent:#?}");
    assert!(sent[1].body.contains("Next: returned to the queue; retry at "), "{}", sent[1].body);
    assert!(sent[2].body.contains(&format!("{NEXT}{id}\n")), "{}", sent[2].body);
    assert!(!sent[2].body.contains("retry at"), "{}", sent[2].body);
    assert_eq!(summary.dead_lettered, 1, "counted once, at the failure");
    let moves = dead_lettered(&events);
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert!(moves[0].1.contains("receive 3, the last its redrive policy allows"), "{moves:?}");
}

#[tokio::test(start_paused = true)]
async fn exit_4_and_silenced_failures_notify_on_their_last_receive() {
    let queue = FakeQueue::new();
    queue.set_redrive(3);
    let notifier = RecordingNotifier::default();
    let quiet = queue.push("4");
    let silenced = queue.push("1");
    // Received twice before (by watchers that let them go): this receive is their last.
    queue.set_receive_count(&quiet, 2);
    queue.set_receive_count(&silenced, 2);
    let mut config = config(3);
    config.workers = 2;
    config.notify_after_retries = 5;
    let ports = Ports::new(queue.clone(), FakeRunner::new(), notifier.clone());
    let summary = run(ports, &config, tokio::time::sleep(Duration::from_secs(30))).await.expect("runs");
    let sent = notifier.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (id, outcome) in [(&quiet, "Outcome: returned\nExit code: 4\n"), (&silenced, "Outcome: failed\nExit code: 1\n")]
    {
        let note = sent.iter().find(|n| n.subject.ends_with(id.as_str())).expect("notified");
        assert!(note.body.contains(outcome) && note.body.contains(&format!("{NEXT}{id}\n")), "{}", note.body);
    }
    assert_eq!(queue.dead_lettered().len(), 2);
    assert_eq!(summary.dead_lettered, 2);
}

#[tokio::test(start_paused = true)]
async fn a_move_the_loop_did_not_see_coming_is_counted_and_notified() {
    let queue = FakeQueue::new();
    queue.set_redrive(3);
    let (notifier, events) = (RecordingNotifier::default(), Recorder::default());
    // Received three times by watchers that stopped holding it: the next receive moves it without running it.
    let id = queue.push("0");
    queue.set_receive_count(&id, 3);
    let runner = FakeRunner::new();
    let ports = Ports::new(queue.clone(), runner.clone(), notifier.clone()).with_events(events.clone());
    let summary = run(ports, &config(3), tokio::time::sleep(Duration::from_secs(5))).await.expect("runs");
    assert!(runner.launched().is_empty());
    assert_eq!(summary.dead_lettered, 1);
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].body.contains("Next: moved to the dead-letter queue\n"), "{}", sent[0].body);
    assert!(sent[0].body.contains("received 3 times, the most its redrive policy allows, without a result"));
    assert!(sent[0].body.contains(&format!("redrive --queue-url https://sqs.example/1/q {id}\n")), "{}", sent[0].body);
    assert!(sent[0].body.contains("\nMessage=0\n"), "the message's environment: {}", sent[0].body);
    assert_eq!(dead_lettered(&events).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_redrive_policy_failures_retry_as_before() {
    let queue = FakeQueue::new();
    let notifier = RecordingNotifier::default();
    let id = queue.push("1");
    queue.set_receive_count(&id, 9);
    let mut config = config(3);
    config.max_receive_count = None;
    let ports = Ports::new(queue.clone(), FakeRunner::new(), notifier.clone());
    let summary = run(ports, &config, tokio::time::sleep(Duration::from_secs(5))).await.expect("runs");
    assert_eq!(summary.dead_lettered, 0);
    let sent = notifier.sent();
    assert!(sent[0].body.contains("Next: returned to the queue; retry at "), "{}", sent[0].body);
}

/// An embedded queue whose one message was received twice by watchers that let it go: its next receive moves it.
async fn poisoned(dir: &std::path::Path, body: &str) -> LocalQueue {
    let mut queue_config = LocalQueueConfig::default();
    queue_config.max_receive_count = Some(2);
    let queue = LocalQueue::open(dir, queue_config).expect("queue");
    queue.send(OutgoingMessage { body: body.into(), ..Default::default() }).await.expect("send");
    let again = ReceiveRequest::new(1, Duration::ZERO, Some(Duration::ZERO));
    for _ in 0..2 {
        assert_eq!(queue.receive(again).await.expect("receive").len(), 1);
    }
    queue
}

#[tokio::test(start_paused = true)]
async fn the_embedded_queue_reports_its_moves_and_answers_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let queue = poisoned(dir.path(), "poison").await;
    assert!(queue.take_dead_lettered().is_empty(), "nothing moved yet");
    // The receive that moves it answers at once instead of long-polling for 20 s (the paused clock would have
    // moved on by the whole wait).
    let long = ReceiveRequest::new(1, Duration::from_secs(20), None);
    let started = tokio::time::Instant::now();
    assert!(queue.receive(long).await.expect("receive").is_empty());
    assert!(started.elapsed() < Duration::from_secs(20), "waited {:?}", started.elapsed());
    let moved = queue.take_dead_lettered();
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].body.as_str(), moved[0].receive_count), ("poison", 2));
    assert!(queue.take_dead_lettered().is_empty(), "taken once");
    assert_eq!(queue.counts().expect("counts").dead_lettered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_on_the_embedded_queue_notifies_a_move_no_task_saw() {
    let dir = tempfile::tempdir().expect("dir");
    let queue = poisoned(dir.path(), "poison 2").await;
    let (notifier, runner) = (RecordingNotifier::default(), FakeRunner::new());
    let watched = notifier.clone();
    // Stops once notified (or after a deadline, and the assertions below fail).
    let shutdown = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while watched.sent().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let mut config = config(2);
    config.receive_wait = Duration::from_secs(20);
    config.queue_flags = "--state s".into();
    let ports = Ports::new(queue.clone(), runner.clone(), notifier.clone());
    let summary = run(ports, &config, shutdown).await.expect("runs");
    assert!(runner.launched().is_empty());
    assert_eq!(summary.dead_lettered, 1);
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].body.contains("Next: moved to the dead-letter queue\n"), "{}", sent[0].body);
    assert!(sent[0].body.contains("\nMessage=poison 2\n"), "{}", sent[0].body);
    assert!(sent[0].body.contains("watchbot dead-letter redrive --state s "), "{}", sent[0].body);
}
