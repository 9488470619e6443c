//! The loop's scenarios on the in-process fakes, with tokio's paused clock: each exit code, backoff, notification
//! silencing, heartbeat, timeout, placement failures, adoption of a running task, graceful stop, errors retried,
//! oversized messages. Each asserts the exact calls the loop made.

use std::collections::BTreeMap;
use std::time::Duration;
use watchbot_watcher::events::Event;
use watchbot_watcher::ports::{PortError, PortErrorKind};
use watchbot_watcher::testing::{FakeQueue, FakeRunner, QueueCall, Recorder, RecordingNotifier, RunnerCall, Script};
use watchbot_watcher::{Jitter, Ports, RunSummary, TaskSizeLimit, WatcherConfig, run};

const WINDOW: Duration = Duration::from_secs(60);

fn config() -> WatcherConfig {
    let mut c = WatcherConfig::default();
    c.stack_name = "stack".into();
    c.jitter = Jitter::Fixed(0.0);
    c
}

struct World {
    queue: FakeQueue,
    runner: FakeRunner,
    notifier: RecordingNotifier,
    events: Recorder,
}

impl World {
    fn new() -> World {
        World::with_runner(FakeRunner::new())
    }

    fn with_runner(runner: FakeRunner) -> World {
        World { queue: FakeQueue::new(), runner, notifier: RecordingNotifier::default(), events: Recorder::default() }
    }

    fn ports(&self) -> Ports<FakeQueue, FakeRunner, RecordingNotifier, FakeQueue> {
        Ports::new(self.queue.clone(), self.runner.clone(), self.notifier.clone()).with_events(self.events.clone())
    }

    async fn run_for(&self, config: &WatcherConfig, duration: Duration) -> RunSummary {
        run(self.ports(), config, tokio::time::sleep(duration)).await.expect("loop runs")
    }

    /// Visibility changes of one message that return it (anything but a heartbeat renewal).
    fn returns(&self, id: &str) -> Vec<Duration> {
        self.queue.visibility_changes(id).into_iter().map(|(_, t)| t).filter(|t| *t != WINDOW).collect()
    }

    fn finished(&self) -> Vec<(String, watchbot_watcher::Outcome, Option<i32>)> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Finished { message_id, outcome, exit_code, .. } => Some((message_id, outcome, exit_code)),
                _ => None,
            })
            .collect()
    }
}

use watchbot_watcher::Outcome::{Failed, Rejected, Returned, Succeeded};

#[tokio::test(start_paused = true)]
async fn exit_0_deletes_the_message_once_without_notification() {
    let world = World::new();
    let id = world.queue.push("0@5");
    let summary = world.run_for(&config(), Duration::from_secs(30)).await;
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    assert!(!world.queue.contains(&id));
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    assert!(world.notifier.sent().is_empty());
    assert!(world.returns(&id).is_empty());
    assert_eq!(world.finished(), vec![(id, Succeeded, Some(0))]);
    assert_eq!((summary.received, summary.launched, summary.succeeded, summary.failed), (1, 1, 1, 0));
    // The first receive asked for one message (one worker), long polling 20 s, holding it for one window.
    match &world.queue.calls()[0] {
        QueueCall::Receive { max, wait, .. } => assert_eq!((*max, *wait), (1, Duration::from_secs(20))),
        other => panic!("first call {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn exit_3_deletes_and_notifies_rejected() {
    let world = World::new();
    let id = world.queue.push("3");
    let summary = world.run_for(&config(), Duration::from_secs(10)).await;
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, format!("stack failed processing message {id}"));
    assert!(sent[0].body.contains("stack rejected message m-1"), "{}", sent[0].body);
    assert!(sent[0].body.contains("Outcome: rejected\nExit code: 3\n"), "{}", sent[0].body);
    assert!(sent[0].body.contains("Next: removed from the queue"), "{}", sent[0].body);
    assert!(sent[0].body.contains("\nMessage=3\n"), "{}", sent[0].body);
    assert_eq!(world.finished(), vec![(id, Rejected, Some(3))]);
    assert_eq!((summary.rejected, summary.notifications), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn exit_4_returns_with_growing_backoff_and_no_notification() {
    let world = World::new();
    let id = world.queue.push("4");
    let summary = world.run_for(&config(), Duration::from_secs(20)).await;
    // Receive counts 1, 2, 3, 4 → about 2^n s, jitter 0 → half: 1, 2, 4, 8 s.
    assert_eq!(
        world.returns(&id)[..4],
        [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8)]
    );
    assert!(world.queue.deleted().is_empty());
    assert!(world.notifier.sent().is_empty());
    assert!(summary.returned >= 4);
    assert!(world.finished().iter().all(|(_, outcome, code)| *outcome == Returned && *code == Some(4)));
}

#[tokio::test(start_paused = true)]
async fn other_exit_codes_and_killed_tasks_return_with_backoff_and_notify() {
    let runner = FakeRunner::scripted(|spec, _| match spec.env["Message"].as_str() {
        "killed" => Script::Exit { after: Duration::from_secs(1), code: None },
        _ => Script::Exit { after: Duration::ZERO, code: Some(1) },
    });
    let world = World::with_runner(runner);
    let failing = world.queue.push("1");
    let killed = world.queue.push("killed");
    let mut config = config();
    config.workers = 2;
    config.jitter = Jitter::Fixed(0.5);
    let summary = world.run_for(&config, Duration::from_millis(2200)).await;
    // Jitter 0.5 → three quarters of 2 s.
    assert_eq!(world.returns(&failing)[0], Duration::from_millis(1500));
    assert_eq!(world.returns(&killed), vec![Duration::from_millis(1500)]);
    assert!(world.queue.deleted().is_empty());
    let finished = world.finished();
    assert!(finished.contains(&(failing.clone(), Failed, Some(1))));
    assert!(finished.contains(&(killed.clone(), Failed, None)));
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), finished.len());
    let body = &sent.iter().find(|n| n.subject.ends_with(&failing)).expect("failing notified").body;
    assert!(body.contains("Outcome: failed\nExit code: 1\n"), "{body}");
    assert!(body.contains("Receive count: 1\nNext: returned to the queue; retry at "), "{body}");
    let body = &sent.iter().find(|n| n.subject.ends_with(&killed)).expect("killed notified").body;
    assert!(body.contains("Exit code: none\n"), "{body}");
    assert_eq!(summary.failed as usize, finished.len());
}

#[tokio::test(start_paused = true)]
async fn without_backoff_a_failed_message_returns_at_once() {
    let world = World::new();
    let id = world.queue.push("2");
    let mut config = config();
    config.backoff = false;
    world.run_for(&config, Duration::from_millis(500)).await;
    assert_eq!(world.returns(&id)[0], Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn notify_after_retries_silences_the_first_failures() {
    let world = World::new();
    let id = world.queue.push("1");
    let mut config = config();
    config.notify_after_retries = 2;
    // Returns after 1, 2, 4, 8 s: receive counts 1..=4 within 16 s.
    world.run_for(&config, Duration::from_secs(16)).await;
    let finished: Vec<u32> = world
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Finished { receive_count, .. } => Some(receive_count),
            _ => None,
        })
        .collect();
    assert_eq!(finished[..4], [1, 2, 3, 4]);
    assert!(world.queue.receive_count(&id) >= 4);
    let notified: Vec<String> = world
        .notifier
        .sent()
        .iter()
        .map(|n| n.body.lines().find(|l| l.starts_with("Receive count")).unwrap_or_default().to_string())
        .collect();
    let expected: Vec<String> =
        finished.iter().filter(|count| **count > 2).map(|count| format!("Receive count: {count}")).collect();
    assert_eq!(notified, expected);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_keeps_a_long_task_invisible_and_it_is_deleted_once() {
    let world = World::new();
    // Three windows long.
    let id = world.queue.push("0@180");
    let summary = world.run_for(&config(), Duration::from_secs(240)).await;
    let changes = world.queue.visibility_changes(&id);
    assert!(changes.iter().all(|(_, timeout)| *timeout == WINDOW), "{changes:?}");
    // Renewed every third of a window, from the receive to the end of the task: never close to lapsing.
    let mut last = Duration::ZERO;
    for (at, _) in &changes {
        assert!(*at - last <= WINDOW / 3, "gap before {at:?} in {changes:?}");
        last = *at;
    }
    assert!(last >= Duration::from_secs(160), "{changes:?}");
    assert!(changes.len() >= 8, "{changes:?}");
    // Never received twice, one task, deleted once.
    assert_eq!(world.queue.receive_count(&id), 0, "deleted");
    assert_eq!(summary.received, 1);
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn a_task_past_the_message_timeout_is_stopped_and_counted_as_failed() {
    let world = World::new();
    let id = world.queue.push("forever");
    let mut config = config();
    config.message_timeout = Duration::from_secs(30);
    // Stopped at 30 s and seen stopped at once (the stop wakes a poll); returned for 1 s, so not yet received again.
    let summary = world.run_for(&config, Duration::from_millis(30_500)).await;
    let stops: Vec<RunnerCall> =
        world.runner.calls().into_iter().filter(|c| matches!(c, RunnerCall::Stop(..))).collect();
    assert_eq!(stops, vec![RunnerCall::Stop(id.clone(), "message timeout".into())]);
    assert_eq!(world.finished(), vec![(id.clone(), Failed, None)]);
    assert_eq!(world.returns(&id), vec![Duration::from_secs(1)]);
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.contains("Stopped reason: timed out after 30 s"), "{}", sent[0].body);
    assert!(world.events.names().contains(&"timed_out"));
    assert_eq!((summary.failed, summary.interrupted), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn placement_failures_hold_the_message_and_are_not_task_failures() {
    let world = World::new();
    let id = world.queue.push("unplaced:3@0");
    let summary = world.run_for(&config(), Duration::from_secs(30)).await;
    let launches = world.runner.calls().into_iter().filter(|c| matches!(c, RunnerCall::Launch(_))).count();
    assert_eq!(launches, 4);
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    // Held all along: received once, never returned, no notification, no failure.
    assert_eq!(summary.received, 1);
    assert!(world.returns(&id).is_empty());
    assert!(world.notifier.sent().is_empty());
    assert_eq!((summary.failed, summary.not_placed, summary.succeeded), (0, 3, 1));
    let delays: Vec<u64> = world
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::NotPlaced { retry_in_ms, reason, .. } => {
                assert_eq!(reason, "RESOURCE:MEMORY");
                Some(retry_in_ms)
            }
            _ => None,
        })
        .collect();
    assert_eq!(delays, vec![500, 1000, 2000]);
}

#[tokio::test(start_paused = true)]
async fn throttled_launches_are_retried_without_failing_the_message() {
    let runner = FakeRunner::scripted(|_, attempt| {
        if attempt <= 2 {
            Script::Fail(PortError::transient("ThrottlingException: rate exceeded"))
        } else {
            Script::Exit { after: Duration::ZERO, code: Some(0) }
        }
    });
    let world = World::with_runner(runner);
    let id = world.queue.push("x");
    let summary = world.run_for(&config(), Duration::from_secs(10)).await;
    assert_eq!(world.queue.deleted(), vec![id]);
    assert_eq!((summary.failed, summary.errors, summary.succeeded), (0, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_launch_rejected_for_good_is_a_failure_to_start() {
    let runner = FakeRunner::scripted(|_, _| {
        Script::Fail(PortError::new(PortErrorKind::Rejected, "ClientException: container overrides are invalid"))
    });
    let world = World::with_runner(runner);
    let id = world.queue.push("x");
    world.run_for(&config(), Duration::from_millis(700)).await;
    assert_eq!(world.finished(), vec![(id.clone(), Failed, None)]);
    assert_eq!(world.returns(&id), vec![Duration::from_secs(1)]);
    assert!(world.notifier.sent()[0].body.contains("Stopped reason: failed to start: ClientException"));
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_receive_adopts_the_running_task() {
    let world = World::new();
    let id = world.queue.push("0");
    // Another watcher received it and started its task; it runs 10 more seconds and exits 0.
    world.queue.set_receive_count(&id, 1);
    world.runner.start_elsewhere(&id, Script::Exit { after: Duration::from_secs(10), code: Some(0) });
    let summary = world.run_for(&config(), Duration::from_secs(15)).await;
    let calls = world.runner.calls();
    assert_eq!(calls[0], RunnerCall::FindRunning(id.clone()));
    assert!(!calls.iter().any(|c| matches!(c, RunnerCall::Launch(_))), "{calls:?}");
    assert_eq!((summary.adopted, summary.launched, summary.succeeded), (1, 0, 1));
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn our_own_duplicate_receive_keeps_one_task_and_takes_the_new_receipt() {
    let world = World::new();
    let id = world.queue.push("0@100");
    // The first three heartbeats fail (e.g. a network partition), so the message reappears after one window.
    world.queue.fail_next("change_visibility", 3, PortError::new(PortErrorKind::Rejected, "denied"));
    let mut config = config();
    config.workers = 2;
    let summary = world.run_for(&config, Duration::from_secs(120)).await;
    assert_eq!(summary.received, 2);
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    // Deleted with the second receive's handle, which is the one that works.
    assert_eq!(world.queue.deleted(), vec![id]);
    assert_eq!(summary.succeeded, 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_tasks_returns_their_messages_and_receives_nothing_more() {
    let world = World::new();
    let a = world.queue.push("forever");
    let b = world.queue.push("forever");
    let mut config = config();
    config.workers = 3;
    let queue = world.queue.clone();
    let shutdown = async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Arrives as the stop begins: the receive already in flight may take it, but no receive starts after the stop.
        queue.push("0");
    };
    let summary = run(world.ports(), &config, shutdown).await.expect("loop runs");
    let stops: Vec<RunnerCall> =
        world.runner.calls().into_iter().filter(|c| matches!(c, RunnerCall::Stop(..))).collect();
    assert_eq!(stops.len(), 2);
    assert!(stops.contains(&RunnerCall::Stop(a.clone(), "watcher shutting down".into())));
    assert!(stops.contains(&RunnerCall::Stop(b.clone(), "watcher shutting down".into())));
    assert!(world.runner.running().is_empty());
    assert!(world.queue.deleted().is_empty());
    assert_eq!(world.returns(&a), vec![Duration::ZERO]);
    assert_eq!(world.returns(&b), vec![Duration::ZERO]);
    assert!(world.queue.is_visible(&a) && world.queue.is_visible(&b));
    // Two receive calls: the one that got a and b, and the one in flight at the stop, which took m-3; m-3 was not
    // run and is visible again at once.
    assert_eq!(world.queue.receive_calls(), 2);
    let mut launched = world.runner.launched();
    launched.sort();
    assert_eq!(launched, vec![a.clone(), b.clone()]);
    assert!(world.queue.contains("m-3") && world.queue.is_visible("m-3"));
    assert!(world.notifier.sent().is_empty());
    assert_eq!((summary.interrupted, summary.failed, summary.succeeded), (3, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ended_before_the_shutdown_keeps_its_outcome() {
    let world = World::new();
    let id = world.queue.push("0@5");
    // The poll timer has not seen the exit yet when the stop comes.
    let mut config = config();
    config.poll_interval = Duration::from_secs(30);
    let summary = world.run_for(&config, Duration::from_secs(10)).await;
    assert_eq!(world.queue.deleted(), vec![id]);
    assert_eq!((summary.succeeded, summary.interrupted), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn queue_and_runner_errors_are_retried_and_nothing_is_deleted_early() {
    let world = World::new();
    let id = world.queue.push("0@2");
    world.queue.fail_next("receive", 3, PortError::transient("ServiceUnavailable"));
    world.queue.fail_next("delete", 2, PortError::transient("InternalError"));
    world.runner.fail_polls(2, PortError::transient("ThrottlingException"));
    let summary = world.run_for(&config(), Duration::from_secs(60)).await;
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    assert!(!world.queue.contains(&id));
    assert_eq!(summary.errors, 7);
    assert_eq!(summary.succeeded, 1);
    let errors: Vec<String> = world
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { action, .. } => Some(action),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec!["receive", "receive", "receive", "poll", "poll", "delete", "delete"]);
}

#[tokio::test(start_paused = true)]
async fn deletes_are_batched() {
    let world = World::new();
    let ids: Vec<String> = (0..10).map(|_| world.queue.push("0@1")).collect();
    let mut config = config();
    config.workers = 10;
    world.run_for(&config, Duration::from_secs(5)).await;
    let deletes: Vec<Vec<String>> = world
        .queue
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            QueueCall::Delete { ids, .. } => Some(ids),
            _ => None,
        })
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let mut deleted = deletes[0].clone();
    deleted.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(deleted, expected);
    // One receive of 10, and one poll for all ten tasks.
    assert!(world.runner.calls().contains(&RunnerCall::Poll(10)));
}

#[tokio::test(start_paused = true)]
async fn the_task_environment_is_the_message_plus_task_env() {
    let world = World::new();
    let envelope =
        r#"{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:123456789012:t","Subject":"hi","Message":"0"}"#;
    let id = world.queue.push(envelope);
    let mut config = config();
    config.task_env = BTreeMap::from([("WorkTopic".into(), "arn:work".into()), ("LogGroup".into(), "lg".into())]);
    world.run_for(&config, Duration::from_secs(2)).await;
    let env = world.runner.env_of(&id).expect("launched");
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "ApproximateFirstReceiveTimestamp",
            "ApproximateReceiveCount",
            "LogGroup",
            "Message",
            "MessageId",
            "SentTimestamp",
            "Subject",
            "WorkTopic"
        ]
    );
    assert_eq!((env["Subject"].as_str(), env["Message"].as_str(), env["MessageId"].as_str()), ("hi", "0", "m-1"));
    assert_eq!(env["ApproximateReceiveCount"], "1");
    assert_eq!(env["SentTimestamp"], watchbot_watcher::testing::EPOCH_MS.to_string());
    assert_eq!(env["WorkTopic"], "arn:work");
}

fn ecs_limit() -> Option<TaskSizeLimit> {
    Some(TaskSizeLimit::Overrides { container_name: "worker".into(), max_chars: 8192 })
}

#[tokio::test(start_paused = true)]
async fn an_oversized_message_goes_to_the_dead_letter_queue_with_a_notification() {
    let world = World::new();
    let dead_letter = FakeQueue::new();
    let body = "x".repeat(9000);
    let id = world.queue.push(&body);
    let small = world.queue.push("0");
    let mut config = config();
    config.workers = 2;
    config.task_size_limit = ecs_limit();
    let ports = world.ports().with_dead_letter(dead_letter.clone());
    let summary = run(ports, &config, tokio::time::sleep(Duration::from_secs(5))).await.expect("runs");
    assert_eq!(dead_letter.sent(), vec![body]);
    let mut deleted = world.queue.deleted();
    deleted.sort();
    assert_eq!(deleted, vec![id.clone(), small.clone()]);
    assert_eq!(world.runner.launched(), vec![small]);
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.ends_with(&id));
    assert!(sent[0].body.contains("over the limit of 8192"), "{}", sent[0].body);
    assert!(sent[0].body.contains("Next: moved to the dead-letter queue"), "{}", sent[0].body);
    assert_eq!(summary.dead_lettered, 1);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_message_without_a_dead_letter_queue_returns_and_is_never_lost() {
    let world = World::new();
    let id = world.queue.push(&"x".repeat(9000));
    let mut config = config();
    config.task_size_limit = ecs_limit();
    world.run_for(&config, Duration::from_millis(700)).await;
    assert!(world.queue.deleted().is_empty());
    assert!(world.queue.contains(&id));
    assert_eq!(world.returns(&id), vec![Duration::from_secs(1)]);
    assert!(world.runner.launched().is_empty());
    assert!(world.notifier.sent()[0].body.contains("no dead-letter queue is configured"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_dead_letter_send_is_retried_before_the_delete() {
    let world = World::new();
    let dead_letter = FakeQueue::new();
    dead_letter.fail_next("send", 2, PortError::transient("InternalError"));
    let id = world.queue.push(&"x".repeat(9000));
    let mut config = config();
    config.task_size_limit = ecs_limit();
    let ports = world.ports().with_dead_letter(dead_letter.clone());
    run(ports, &config, tokio::time::sleep(Duration::from_secs(5))).await.expect("runs");
    assert_eq!(dead_letter.sent().len(), 1);
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn failed_notifications_are_retried() {
    let world = World::new();
    world.notifier.fail_next(2, PortError::transient("Throttling"));
    world.queue.push("3");
    let summary = world.run_for(&config(), Duration::from_secs(10)).await;
    assert_eq!(world.notifier.sent().len(), 1);
    assert_eq!(summary.notifications, 1);
}

#[tokio::test(start_paused = true)]
async fn idle_long_polling_makes_few_receives() {
    let world = World::new();
    world.run_for(&config(), Duration::from_secs(61)).await;
    // 20 s long polls: three per idle minute.
    assert_eq!(world.queue.receive_calls(), 3);
}

#[tokio::test]
async fn a_zero_worker_config_is_refused() {
    let world = World::new();
    let mut config = config();
    config.workers = 0;
    let error = run(world.ports(), &config, async {}).await.expect_err("refused");
    assert_eq!(error.to_string(), "invalid watcher config: workers must be at least 1");
}

#[tokio::test(start_paused = true)]
async fn a_watcher_that_dies_lets_its_messages_reappear_within_one_window() {
    let world = World::new();
    let id = world.queue.push("forever");
    // The default message timeout is 600 s; the hold is one 60 s window at a time.
    let config = config();
    // The watcher dies at 30 s: its future is dropped, nothing is cleaned up.
    let died = tokio::time::timeout(Duration::from_secs(30), run(world.ports(), &config, std::future::pending())).await;
    assert!(died.is_err(), "the loop runs until stopped");
    assert!(!world.queue.is_visible(&id), "still held right after the death");
    // Last renewal at 20 s → visible again by 80 s, long before the 600 s message timeout.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert!(world.queue.is_visible(&id));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_of_many_messages_are_batched() {
    let world = World::new();
    let ids: Vec<String> = (0..12).map(|_| world.queue.push("0@50")).collect();
    let mut config = config();
    config.workers = 12;
    world.run_for(&config, Duration::from_secs(45)).await;
    let batches: Vec<usize> = world
        .queue
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            QueueCall::ChangeVisibility { changes, .. } if changes.iter().all(|(_, t)| *t == WINDOW) => {
                Some(changes.len())
            }
            _ => None,
        })
        .collect();
    // Two renewals (20 s, 40 s) of 12 messages: batches of 10 and 2, twice.
    assert_eq!(batches, vec![10, 2, 10, 2]);
    // Every message renewed at 20 s and 40 s.
    for id in &ids {
        let at: Vec<Duration> =
            world.queue.visibility_changes(id).into_iter().filter(|(_, t)| *t == WINDOW).map(|(at, _)| at).collect();
        assert_eq!(at, vec![Duration::from_secs(20), Duration::from_secs(40)], "{id}");
    }
}

/// Twenty messages whose tasks end a few milliseconds apart, polled every 10 ms.
async fn staggered(linger: Duration) -> (World, Vec<usize>, Vec<usize>) {
    let world = World::new();
    for n in 0..20 {
        world.queue.push(&format!("0@0.0{}", n % 10));
    }
    let config = {
        let mut c = config();
        c.workers = 10;
        c.poll_interval = Duration::from_millis(10);
        c.batch_linger = linger;
        c
    };
    let summary = world.run_for(&config, Duration::from_secs(5)).await;
    assert_eq!(summary.succeeded, 20);
    let mut deletes = Vec::new();
    let mut receives = Vec::new();
    for call in world.queue.calls() {
        match call {
            QueueCall::Delete { ids, .. } => deletes.push(ids.len()),
            QueueCall::Receive { got, .. } if !got.is_empty() => receives.push(got.len()),
            _ => {}
        }
    }
    (world, deletes, receives)
}

#[tokio::test(start_paused = true)]
async fn a_batch_linger_gathers_deletes_and_receives_into_full_batches() {
    let (_, deletes, receives) = staggered(Duration::from_millis(100)).await;
    assert_eq!(deletes, vec![10, 10]);
    assert_eq!(receives, vec![10, 10]);
    // Without it, each poll's few finished tasks make their own delete and receive.
    let (_, deletes, receives) = staggered(Duration::ZERO).await;
    assert!(deletes.len() > 2 && receives.len() > 2, "{deletes:?} {receives:?}");
}

#[tokio::test(start_paused = true)]
async fn leaving_tasks_running_at_shutdown_lets_the_next_watcher_adopt_them() {
    let world = World::new();
    let id = world.queue.push("0@100");
    let mut leave = config();
    leave.on_shutdown = watchbot_watcher::OnShutdown::LeaveRunning;
    let summary = world.run_for(&leave, Duration::from_secs(10)).await;
    assert!(!world.runner.calls().iter().any(|c| matches!(c, RunnerCall::Stop(..))));
    assert_eq!(world.runner.running(), vec![id.clone()]);
    assert_eq!(world.returns(&id), vec![Duration::ZERO]);
    assert!(world.queue.deleted().is_empty());
    assert_eq!(summary.interrupted, 1);
    // The next watcher receives the message at once and adopts the task instead of starting another.
    let next = world.run_for(&config(), Duration::from_secs(120)).await;
    assert_eq!((next.adopted, next.launched, next.succeeded), (1, 0, 1));
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn a_launch_that_fails_after_starting_the_task_adopts_it_instead_of_launching_again() {
    // RunTask times out, but ECS did start the task: the retry must find it rather than start a second one.
    let runner = FakeRunner::scripted(|_, attempt| {
        let task = Script::Exit { after: Duration::from_secs(5), code: Some(0) };
        match attempt {
            1 => Script::FailAfterStart { task: Box::new(task), error: PortError::transient("RunTask: timed out") },
            _ => task,
        }
    });
    let world = World::with_runner(runner);
    let id = world.queue.push("x");
    let summary = world.run_for(&config(), Duration::from_secs(20)).await;
    assert_eq!(world.runner.launched(), vec![id.clone()], "one task");
    let calls: Vec<RunnerCall> =
        world.runner.calls().into_iter().filter(|c| !matches!(c, RunnerCall::Poll(_))).collect();
    // A first receive launches without looking; the retry after the ambiguous failure looks first.
    assert_eq!(calls, vec![RunnerCall::Launch(id.clone()), RunnerCall::FindRunning(id.clone())]);
    assert_eq!((summary.launched, summary.adopted, summary.succeeded, summary.failed), (0, 1, 1, 0));
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn a_delete_failing_for_minutes_keeps_the_message_held_and_is_never_given_up() {
    let world = World::new();
    let id = world.queue.push("0@1");
    // Twelve failed deletes: retried 0.5, 1, 2 ... 32, then every 60 s, about six minutes in all.
    world.queue.fail_next("delete", 12, PortError::transient("InternalError"));
    let summary = world.run_for(&config(), Duration::from_secs(420)).await;
    // The hold was renewed meanwhile: never received again, never run again, deleted in the end.
    assert_eq!(summary.received, 1);
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    assert!(!world.queue.contains(&id));
    let renewals = world.queue.visibility_changes(&id);
    assert!(renewals.len() >= 15 && renewals.iter().all(|(_, t)| *t == WINDOW), "{renewals:?}");
    assert_eq!(summary.succeeded, 1);
}

#[tokio::test(start_paused = true)]
async fn a_message_received_again_while_its_delete_is_pending_is_not_run_again() {
    let world = World::new();
    let id = world.queue.push("0@1");
    // Heartbeats fail (the hold lapses at 60 s) and deletes fail until after that.
    world.queue.fail_next("change_visibility", 100, PortError::new(PortErrorKind::Rejected, "denied"));
    world.queue.fail_next("delete", 7, PortError::transient("InternalError"));
    let summary = world.run_for(&config(), Duration::from_secs(90)).await;
    assert_eq!(summary.received, 2);
    assert_eq!(world.runner.launched(), vec![id.clone()]);
    // Deleted with the second receive's handle.
    assert_eq!(world.queue.deleted(), vec![id.clone()]);
    assert!(!world.queue.contains(&id));
    assert_eq!((summary.succeeded, summary.launched), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_message_whose_hold_is_lost_is_not_launched() {
    // Not placed on six attempts (0 to 15.5 s); the seventh, at 31.5 s, would place it.
    let runner = FakeRunner::scripted(|_, attempt| {
        if attempt <= 6 {
            Script::NotPlaced("RESOURCE:MEMORY".into())
        } else {
            Script::Exit { after: Duration::ZERO, code: Some(0) }
        }
    });
    let world = World::with_runner(runner);
    let id = world.queue.push("x");
    // The heartbeat at 20 s finds the receipt handle stale: another watcher received the message meanwhile.
    world.queue.fail_next(
        "change_visibility",
        1,
        PortError::new(PortErrorKind::InvalidReceipt, "ReceiptHandleIsInvalid"),
    );
    let summary = world.run_for(&config(), Duration::from_secs(40)).await;
    let launches = world.runner.calls().into_iter().filter(|c| matches!(c, RunnerCall::Launch(_))).count();
    assert_eq!(launches, 6, "no attempt after the hold was lost");
    assert!(world.runner.launched().is_empty());
    // Not ours: neither deleted nor returned (the handle is dead).
    assert!(world.queue.deleted().is_empty());
    assert!(world.returns(&id).is_empty());
    assert!(world.events.names().contains(&"released"));
    assert_eq!((summary.received, summary.launched, summary.failed), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_launch_on_a_missing_cluster_holds_the_message_instead_of_failing_it() {
    // A wrong Cluster or TaskDefinition: every message would fail and head for the dead-letter queue.
    let runner = FakeRunner::scripted(|_, attempt| {
        if attempt <= 3 {
            Script::Fail(PortError::new(PortErrorKind::NotFound, "ecs RunTask failed: ClusterNotFoundException"))
        } else {
            Script::Exit { after: Duration::ZERO, code: Some(0) }
        }
    });
    let world = World::with_runner(runner);
    let id = world.queue.push("x");
    let summary = world.run_for(&config(), Duration::from_secs(10)).await;
    // Held and retried (0.5, 1, 2 s) until the configuration is fixed: no failure, no return, no notification.
    assert_eq!((summary.failed, summary.errors, summary.succeeded, summary.received), (0, 3, 1, 1));
    assert!(world.returns(&id).is_empty());
    assert!(world.notifier.sent().is_empty());
    assert_eq!(world.queue.deleted(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn a_queue_that_cannot_be_read_at_start_is_a_configuration_error() {
    let world = World::new();
    world.queue.fail_next(
        "receive",
        1,
        PortError::new(PortErrorKind::NotFound, "sqs ReceiveMessage failed: AWS.SimpleQueueService.NonExistentQueue"),
    );
    let error = run(world.ports(), &config(), std::future::pending()).await.expect_err("ends");
    assert_eq!(
        error.to_string(),
        "cannot receive from the work queue (QueueUrl): sqs ReceiveMessage failed: AWS.SimpleQueueService.NonExistentQueue"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_receive_worked_every_receive_error_is_retried() {
    let world = World::new();
    let id = world.queue.push("0@30");
    let queue = world.queue.clone();
    let mut config = config();
    config.workers = 2;
    // The queue's permission is revoked for a moment while a task runs: the loop keeps its message and goes on.
    let denied = async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.fail_next("receive", 2, PortError::new(PortErrorKind::Rejected, "AccessDenied"));
        tokio::time::sleep(Duration::from_secs(59)).await;
    };
    let summary = run(world.ports(), &config, denied).await.expect("keeps running");
    assert_eq!(world.queue.deleted(), vec![id]);
    assert_eq!(summary.succeeded, 1);
}

#[tokio::test(start_paused = true)]
async fn messages_of_a_receive_in_flight_at_shutdown_are_returned_at_once() {
    let world = World::new();
    // SQS took the message at 9.9 s; its answer arrives 200 ms later, after the stop at 10 s.
    world.queue.set_receive_latency(Duration::from_millis(200));
    let queue = world.queue.clone();
    let shutdown = async move {
        tokio::time::sleep(Duration::from_millis(9900)).await;
        queue.push("0");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let summary = run(world.ports(), &config(), shutdown).await.expect("loop runs");
    assert_eq!(world.queue.receive_count("m-1"), 1, "taken by the receive in flight");
    assert_eq!(world.returns("m-1"), vec![Duration::ZERO]);
    assert!(world.queue.is_visible("m-1"), "visible again at once, not after a window");
    assert!(world.runner.launched().is_empty());
    assert!(world.queue.deleted().is_empty());
    assert_eq!((summary.received, summary.interrupted), (1, 1));
    // Received events count at the default log level.
    let received = world.events.events().into_iter().find(|e| matches!(e, Event::Received { .. })).expect("received");
    assert_eq!(received.level(), watchbot_watcher::events::Level::Info);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_finishes_its_job_when_told_to_stop_keeps_its_outcome() {
    // Workers that handle SIGTERM: one completes its job (exit 0), the other is interrupted (exit 143).
    let runner = FakeRunner::scripted(|spec, _| match spec.env["Message"].as_str() {
        "finishes" => Script::UntilStopped(Some(0)),
        _ => Script::UntilStopped(Some(143)),
    });
    let world = World::with_runner(runner);
    let finishes = world.queue.push("finishes");
    let interrupted = world.queue.push("interrupted");
    let mut config = config();
    config.workers = 2;
    let summary = world.run_for(&config, Duration::from_secs(10)).await;
    assert_eq!(world.queue.deleted(), vec![finishes.clone()], "done: not run again");
    assert!(world.returns(&finishes).is_empty());
    assert_eq!(world.returns(&interrupted), vec![Duration::ZERO]);
    assert!(world.queue.is_visible(&interrupted));
    assert!(world.notifier.sent().is_empty());
    assert_eq!((summary.succeeded, summary.interrupted, summary.failed), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_message_too_large_for_a_child_process_environment_goes_to_the_dead_letter_queue() {
    let world = World::new();
    let dead_letter = FakeQueue::new();
    // Linux refuses (E2BIG) an environment string over 128 KiB: `Message=` + body + NUL.
    let fits = "0".repeat(128 * 1024 - "Message=".len() - 1);
    let over = format!("{fits}0");
    let big = world.queue.push(&over);
    let small = world.queue.push(&fits);
    let mut config = config();
    config.workers = 2;
    config.task_size_limit = Some(TaskSizeLimit::process());
    let ports = world.ports().with_dead_letter(dead_letter.clone());
    let summary = run(ports, &config, tokio::time::sleep(Duration::from_secs(5))).await.expect("runs");
    assert_eq!(dead_letter.sent(), vec![over]);
    assert_eq!(world.runner.launched(), vec![small.clone()]);
    let mut deleted = world.queue.deleted();
    deleted.sort();
    assert_eq!(deleted, vec![big.clone(), small]);
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.ends_with(&big));
    assert!(
        sent[0].body.contains("environment variable Message needs 131073 bytes, over the limit of 131072"),
        "{}",
        sent[0].body
    );
    assert_eq!((summary.dead_lettered, summary.failed), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_first_receive_launches_without_looking_for_a_task_and_a_second_receive_looks() {
    let world = World::new();
    let first = world.queue.push("0@1");
    let again = world.queue.push("0@1");
    // `again` was received once before (by a watcher that died): a task may be running for it.
    world.queue.set_receive_count(&again, 1);
    let mut config = config();
    config.workers = 2;
    let summary = world.run_for(&config, Duration::from_secs(10)).await;
    assert_eq!((summary.received, summary.launched, summary.adopted, summary.succeeded), (2, 2, 0, 2));
    let calls: Vec<RunnerCall> =
        world.runner.calls().into_iter().filter(|c| !matches!(c, RunnerCall::Poll(_))).collect();
    assert!(!calls.contains(&RunnerCall::FindRunning(first.clone())), "{calls:?}");
    assert!(calls.contains(&RunnerCall::Launch(first.clone())), "{calls:?}");
    let look = calls.iter().position(|c| *c == RunnerCall::FindRunning(again.clone())).expect("looked first");
    let launch = calls.iter().position(|c| *c == RunnerCall::Launch(again.clone())).expect("launched");
    assert!(look < launch, "{calls:?}");
    let mut deleted = world.queue.deleted();
    deleted.sort();
    assert_eq!(deleted, vec![first, again]);
}

/// Deletes of one run: (when, how many).
fn delete_calls(world: &World) -> Vec<(Duration, usize)> {
    world
        .queue
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            QueueCall::Delete { at, ids } => Some((at, ids.len())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_delete_waits_up_to_a_second_for_tasks_still_running_to_fill_its_batch() {
    let mut linger = config();
    linger.workers = 10;
    linger.poll_interval = Duration::from_millis(10);
    linger.batch_linger = Duration::from_millis(50);
    // Ten tasks ending 90 ms apart (0.09 s ... 0.9 s): one delete of ten, sent when the last one ended.
    let world = World::new();
    for n in 1..=10 {
        world.queue.push(&format!("0@{}", 0.09 * n as f64));
    }
    let summary = world.run_for(&linger, Duration::from_secs(5)).await;
    assert_eq!(summary.succeeded, 10);
    let deletes = delete_calls(&world);
    assert_eq!(deletes.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![10], "{deletes:?}");
    assert!(deletes[0].0 < Duration::from_millis(950), "{deletes:?}");

    // A task ending at 0.1 s, another at 4 s: the first delete does not wait for the second task, only a second.
    let world = World::new();
    let early = world.queue.push("0@0.1");
    let late = world.queue.push("0@4");
    world.run_for(&linger, Duration::from_secs(10)).await;
    let deletes = delete_calls(&world);
    assert_eq!(deletes.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![1, 1], "{deletes:?}");
    assert!(deletes[0].0 >= Duration::from_millis(1000) && deletes[0].0 <= Duration::from_millis(1150), "{deletes:?}");
    // The last one, with a receive in flight (the last receive got messages, so more may come), also waits at most
    // a second.
    assert!(deletes[1].0 >= Duration::from_secs(4) && deletes[1].0 <= Duration::from_millis(5150), "{deletes:?}");
    assert_eq!(world.queue.deleted(), vec![early, late]);
}

#[tokio::test(start_paused = true)]
async fn a_delete_with_nothing_else_in_flight_waits_only_the_batch_linger() {
    let world = World::new();
    let id = world.queue.push("0@2");
    let mut config = config();
    config.workers = 2;
    config.receive_wait = Duration::from_secs(1);
    config.batch_linger = Duration::from_millis(50);
    world.run_for(&config, Duration::from_secs(10)).await;
    // The receives after the first came back empty: an idle queue; the delete goes 50 ms after the task's end
    // (polled every second: at 2 s).
    let deletes = delete_calls(&world);
    assert_eq!(deletes, vec![(Duration::from_millis(2050), 1)]);
    assert_eq!(world.queue.deleted(), vec![id]);
}

// Slow and hung calls (no call waits for another; a renewal has its own deadline).

/// The gaps between a message's receive and each successful renewal of its hold, and the last one: each must stay
/// inside the window, or another watcher could receive it.
fn hold_gaps(queue: &FakeQueue, id: &str) -> Vec<Duration> {
    let mut last = Duration::ZERO;
    let mut gaps = Vec::new();
    for (at, timeout) in queue.visibility_changes(id) {
        if timeout == WINDOW {
            gaps.push(at - last);
            last = at;
        }
    }
    gaps
}

#[tokio::test(start_paused = true)]
async fn a_hung_renewal_does_not_lapse_the_hold_and_a_second_watcher_never_runs_the_task() {
    // Two watchers share the queue; A receives a 100 s task. A's first two visibility changes hang for 50 s each
    // (two SDK attempts of 25 s, inside every SDK deadline): the loop drops each at its own deadline and tries again,
    // so the hold never lapses and B never receives the message. (A loop that waited for the call would renew only
    // at 70 s, after the hold lapsed at 60 s, and B would run the task a second time.)
    let a = World::new();
    let b = World { queue: a.queue.clone(), ..World::new() };
    let id = a.queue.push("0@100");
    a.queue.hang_next("change_visibility", 2, Duration::from_secs(50));
    let config = config();
    let run_b = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.run_for(&config, Duration::from_secs(129)).await
    };
    let (summary_a, summary_b) = tokio::join!(a.run_for(&config, Duration::from_secs(130)), run_b);
    assert_eq!(a.runner.launched(), vec![id.clone()]);
    assert!(b.runner.launched().is_empty(), "B ran it too: {:?}", b.runner.launched());
    assert_eq!((summary_a.received, summary_b.received), (1, 0));
    assert_eq!(a.queue.deleted(), vec![id.clone()]);
    let gaps = hold_gaps(&a.queue, &id);
    assert!(gaps.iter().all(|gap| *gap < WINDOW), "{gaps:?}");
    // The first renewal (20 s) and its retry hung and were dropped at their 4 s deadline; the third try landed.
    assert_eq!(gaps[0], Duration::from_secs(30), "{gaps:?}");
    let errors: Vec<Event> = a.events.events().into_iter().filter(|e| matches!(e, Event::Error { .. })).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(!a.events.names().contains(&"hold_lost"));
}

#[tokio::test(start_paused = true)]
async fn a_hung_delete_delays_neither_the_next_receive_nor_the_heartbeat() {
    // One worker. The first message exits at once; its delete hangs for 40 s. The next message is received and
    // launched at once anyway (the finished one no longer occupies the worker), and its hold is renewed on time.
    let world = World::new();
    let quick = world.queue.push("0");
    let long = world.queue.push("0@70");
    world.queue.hang_next("delete", 1, Duration::from_secs(40));
    let summary = world.run_for(&config(), Duration::from_secs(100)).await;
    let received_long_at = world
        .queue
        .calls()
        .into_iter()
        .find_map(|call| match call {
            QueueCall::Receive { at, got, .. } if got.contains(&long) => Some(at),
            _ => None,
        })
        .expect("the long task's message is received");
    assert!(received_long_at < Duration::from_secs(1), "received at {received_long_at:?}");
    // Renewed every 20 s from its receive, hung delete or not.
    let gaps = hold_gaps(&world.queue, &long);
    assert!(gaps.len() >= 3 && gaps.iter().all(|gap| *gap <= WINDOW / 3 + Duration::from_secs(1)), "{gaps:?}");
    // The hung delete landed after 40 s, the other one after its task.
    let mut deleted = world.queue.deleted();
    deleted.sort();
    assert_eq!(deleted, vec![quick.clone(), long.clone()]);
    assert_eq!((summary.received, summary.succeeded), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn a_hung_notification_delays_no_launch() {
    let world = World::new();
    let failing = world.queue.push("1");
    let next = world.queue.push("0");
    world.notifier.hang_next(1, Duration::from_secs(30));
    world.run_for(&config(), Duration::from_secs(5)).await;
    // The notification of the failure hangs; the next message still runs and is deleted within the 5 s.
    assert!(world.queue.deleted().contains(&next), "{:?}", world.queue.calls());
    assert!(world.runner.launched().contains(&failing));
}

#[tokio::test(start_paused = true)]
async fn a_hold_that_lapses_in_a_long_outage_is_reported() {
    let world = World::new();
    let id = world.queue.push("0@100");
    // Every renewal fails for about 70 s (one try a second after the first at 20 s).
    world.queue.fail_next("change_visibility", 70, PortError::transient("connection refused"));
    world.run_for(&config(), Duration::from_secs(110)).await;
    let lost: Vec<Event> = world.events.events().into_iter().filter(|e| matches!(e, Event::HoldLost { .. })).collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        matches!(&lost[0], Event::HoldLost { message_id, error } if *message_id == id && error.contains("refused"))
    );
}

#[tokio::test(start_paused = true)]
async fn without_notify_each_failure_only_rejections_and_dead_lettering_notify() {
    let world = World::new();
    world.queue.set_redrive(3);
    let failing = world.queue.push("1");
    let rejected = world.queue.push("3");
    let mut config = config();
    config.workers = 2;
    config.notify_each_failure = false;
    config.max_receive_count = Some(3);
    let summary = world.run_for(&config, Duration::from_secs(60)).await;
    let finished = world.finished();
    let failures = finished.iter().filter(|(id, outcome, _)| *id == failing && *outcome == Failed).count();
    assert_eq!(failures, 3, "{finished:?}");
    let subjects: Vec<String> = world.notifier.sent().into_iter().map(|n| n.subject).collect();
    // Receives 1 and 2 of the failing message are silent; its last (dead-letter next) and the rejection notify.
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.iter().any(|s| s.ends_with(&rejected)), "{subjects:?}");
    let last = world.notifier.sent().into_iter().find(|n| n.subject.ends_with(&failing)).expect("dead-lettering");
    assert!(last.body.contains("Next: the dead-letter queue"), "{}", last.body);
    assert_eq!((summary.failed, summary.rejected, summary.notifications), (3, 1, 2));
}
