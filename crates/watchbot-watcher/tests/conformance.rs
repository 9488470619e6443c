//! The queue conformance suite: every scenario is written once, generic over the `Queue` port, and runs against the
//! embedded `LocalQueue` (in a temporary folder) and against `SqsQueue` on moto, so local mode cannot drift from SQS.
//!
//! Time is real here (moto is a real server). Visibility windows that a scenario waits out are [`WINDOW`] (3 s):
//! short enough to keep the suite quick, long enough that a loaded 2-core CI machine does not pass one between a
//! receive and the check that follows it. Nothing sleeps a fixed time to see a message come back: [`receive_n`]
//! polls until it arrives, with a deadline.
//!
//! One documented difference: moto deletes a message given *any* receipt handle it ever had
//! (`Message.had_receipt_handle` in moto/sqs/models.py), where SQS and the local queue only honour the latest one.
//! The stale-handle scenario asserts each backend's actual behaviour through [`Quirks`], so a change in either is seen.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use watchbot_watcher::aws::sqs::SqsQueue;
use watchbot_watcher::events::now_ms;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{
    OutgoingMessage, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};

/// Where a backend knowingly differs from SQS.
#[derive(Debug, Clone, Copy)]
struct Quirks {
    /// A stale receipt handle still deletes the message (moto), instead of failing with `InvalidReceipt`.
    stale_handle_deletes: bool,
}

/// A queue under test, its dead-letter queue, and its quirks. The temp dir keeps the local state folder alive.
struct Subject<Q: Queue, D: Queue> {
    queue: Q,
    /// The same queue through another connection (another process, for the local queue).
    other: Q,
    dead_letters: D,
    quirks: Quirks,
    _dir: Option<tempfile::TempDir>,
}

/// Receives after which a message is dead-lettered, on both backends.
const MAX_RECEIVES: u32 = 2;

/// The visibility timeout (seconds) of a receive whose message a scenario expects to come back.
const WINDOW: u64 = 3;

fn local() -> Subject<LocalQueue, LocalQueue> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalQueueConfig::default();
    config.max_receive_count = Some(MAX_RECEIVES);
    let queue = LocalQueue::open(&dir.path().join(".watchbot"), config.clone()).unwrap();
    let other = LocalQueue::open(&dir.path().join(".watchbot"), config).unwrap();
    let dead_letters = queue.dead_letter_queue();
    Subject { queue, other, dead_letters, quirks: Quirks { stale_handle_deletes: false }, _dir: Some(dir) }
}

async fn sqs() -> Subject<SqsQueue, SqsQueue> {
    let config = watchbot_testing::moto().sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let dlq_url = client
        .create_queue()
        .queue_name(watchbot_testing::unique_name("conformance-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES.to_string() });
    let url = client
        .create_queue()
        .queue_name(watchbot_testing::unique_name("conformance"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "30")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Subject {
        queue: SqsQueue::new(client.clone(), url.clone()),
        other: SqsQueue::new(aws_sdk_sqs::Client::new(&config), url),
        dead_letters: SqsQueue::new(client, dlq_url),
        quirks: Quirks { stale_handle_deletes: true },
        _dir: None,
    }
}

fn request(wait_secs: u64, visibility_secs: Option<u64>) -> ReceiveRequest {
    ReceiveRequest::new(10, Duration::from_secs(wait_secs), visibility_secs.map(Duration::from_secs))
}

fn message(body: &str) -> OutgoingMessage {
    OutgoingMessage { body: body.to_string(), ..OutgoingMessage::default() }
}

/// Receives until `count` messages arrived (SQS may hand out fewer than available per call; a hidden message comes
/// back when its window ends), within 20 s.
async fn receive_n(queue: &impl Queue, count: usize, visibility_secs: u64) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < count && Instant::now() < deadline {
        got.extend(queue.receive(request(1, Some(visibility_secs))).await.unwrap());
    }
    assert_eq!(got.len(), count, "expected {count} messages, got {got:?}");
    got
}

async fn send_and_receive_carries_attributes(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let before = now_ms();
    let attributes = BTreeMap::from([("Subject".to_string(), "greeting".to_string())]);
    let id = queue.send(OutgoingMessage { attributes, ..message("{\"hello\": \"world\"} ünïcode") }).await.unwrap();
    let after = now_ms();
    let got = receive_n(queue, 1, 30).await.remove(0);
    assert_eq!(got.message_id, id);
    assert_eq!(got.body, "{\"hello\": \"world\"} ünïcode");
    assert_eq!(got.attributes.get("Subject").map(String::as_str), Some("greeting"));
    assert_eq!(got.receive_count, 1);
    // SQS timestamps are epoch milliseconds; allow a second of clock granularity either way.
    assert!(got.sent_timestamp_ms + 1000 >= before && got.sent_timestamp_ms <= after + 1000, "{got:?}");
    assert!(got.first_receive_timestamp_ms + 1000 >= got.sent_timestamp_ms, "{got:?}");
    assert!(!got.receipt_handle.is_empty());
}

async fn visibility_hides_then_reveals(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let id = queue.send(message("hide and seek")).await.unwrap();
    let first = receive_n(queue, 1, WINDOW).await.remove(0);
    let received = Instant::now();
    assert!(queue.receive(request(0, Some(WINDOW))).await.unwrap().is_empty(), "hidden while in flight");
    let second = receive_n(queue, 1, 30).await.remove(0);
    // Came back when its window ended (less a second of the backends' timestamp granularity), not before.
    assert!(received.elapsed() >= Duration::from_secs(WINDOW - 1), "back after {:?}", received.elapsed());
    assert_eq!(second.message_id, id);
    assert_eq!(second.receive_count, 2, "receive count counts receives");
    assert_eq!(second.first_receive_timestamp_ms, first.first_receive_timestamp_ms, "first receive is kept");
    assert_ne!(second.receipt_handle, first.receipt_handle, "each receive has its own handle");
}

async fn stale_handle_cannot_delete_after_redelivery(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let id = queue.send(message("stale")).await.unwrap();
    let first = receive_n(queue, 1, WINDOW).await.remove(0);
    let second = receive_n(queue, 1, 30).await.remove(0);
    assert_eq!(second.message_id, id);
    let stale = queue.delete(&first.receipt_handle).await;
    // Whether the message still exists, asked of its latest handle (a third receive would dead-letter it here).
    let still_there = queue.change_visibility(&second.receipt_handle, Duration::from_secs(30)).await;
    if subject.quirks.stale_handle_deletes {
        // moto's documented deviation (see the module docs): the old handle deleted the message.
        assert_eq!(stale, Ok(()));
        assert_eq!(still_there.unwrap_err().kind, PortErrorKind::InvalidReceipt, "moto deleted it");
    } else {
        assert_eq!(stale.unwrap_err().kind, PortErrorKind::InvalidReceipt);
        assert_eq!(still_there, Ok(()), "the message survives a stale delete");
        queue.delete(&second.receipt_handle).await.unwrap();
        let gone = queue.change_visibility(&second.receipt_handle, Duration::ZERO).await;
        assert_eq!(gone.unwrap_err().kind, PortErrorKind::InvalidReceipt, "the latest handle deleted it");
    }
    assert!(queue.receive(request(1, None)).await.unwrap().is_empty());
}

async fn change_visibility_zero_makes_visible(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let id = queue.send(message("come back")).await.unwrap();
    let first = receive_n(queue, 1, 60).await.remove(0);
    assert!(queue.receive(request(0, None)).await.unwrap().is_empty());
    queue.change_visibility(&first.receipt_handle, Duration::ZERO).await.unwrap();
    let again = receive_n(queue, 1, 60).await.remove(0);
    assert_eq!(again.message_id, id);
    assert_eq!(again.receive_count, 2);
}

async fn batch_calls_report_only_the_bad_entry(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        ids.push(queue.send(message(body)).await.unwrap());
    }
    let mut got = receive_n(queue, 3, 60).await;
    got.sort_by_key(|m| ids.iter().position(|id| *id == m.message_id));
    let bogus = "not-a-receipt-handle".to_string();

    let changes = vec![
        VisibilityChange { receipt_handle: bogus.clone(), timeout: Duration::ZERO },
        VisibilityChange { receipt_handle: got[1].receipt_handle.clone(), timeout: Duration::from_secs(60) },
    ];
    let failures = queue.change_visibility_batch(&changes).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].index, 0);
    assert_eq!(failures[0].error.kind, PortErrorKind::InvalidReceipt);

    let handles = vec![got[0].receipt_handle.clone(), bogus, got[2].receipt_handle.clone()];
    let failures = queue.delete_batch(&handles).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].index, 1);
    assert_eq!(failures[0].error.kind, PortErrorKind::InvalidReceipt);

    // Only "two" is left: make it visible and find it alone.
    queue.change_visibility(&got[1].receipt_handle, Duration::ZERO).await.unwrap();
    let left = receive_n(queue, 1, 60).await;
    assert_eq!(left[0].message_id, ids[1]);
    assert!(queue.receive(request(1, None)).await.unwrap().is_empty());
}

async fn redrive_to_dead_letters_after_threshold(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let id = queue.send(message("poison")).await.unwrap();
    for n in 1..=MAX_RECEIVES {
        let got = receive_n(queue, 1, WINDOW).await.remove(0);
        assert_eq!(got.receive_count, n);
    }
    // Past the last window: the next receive that would deliver it a third time moves it instead.
    tokio::time::sleep(Duration::from_secs(WINDOW + 1)).await;
    assert!(queue.receive(request(1, Some(30))).await.unwrap().is_empty(), "moved, not delivered a third time");
    let dead = receive_n(&subject.dead_letters, 1, 30).await.remove(0);
    assert_eq!(dead.message_id, id);
    assert_eq!(dead.body, "poison");
}

async fn delay_hides_a_new_message(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let start = Instant::now();
    let id = queue.send(OutgoingMessage { delay: Duration::from_secs(WINDOW), ..message("later") }).await.unwrap();
    assert!(queue.receive(request(0, None)).await.unwrap().is_empty(), "delayed");
    let got = receive_n(queue, 1, 30).await.remove(0);
    assert_eq!(got.message_id, id);
    assert!(start.elapsed() >= Duration::from_secs(WINDOW - 1), "arrived after {:?}", start.elapsed());
}

/// The watcher's heartbeat: extending a hidden message's visibility keeps it hidden past its original timeout, and
/// it comes back when the extension ends.
async fn extending_visibility_keeps_a_message_hidden(subject: Subject<impl Queue, impl Queue>) {
    let queue = &subject.queue;
    let id = queue.send(message("long task")).await.unwrap();
    let first = receive_n(queue, 1, WINDOW).await.remove(0);
    let received = Instant::now();
    // One heartbeat, a second into the window: hidden for 2 * WINDOW from now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.change_visibility(&first.receipt_handle, Duration::from_secs(2 * WINDOW)).await.unwrap();
    let extended = Instant::now();
    // Past the original window (with a second to spare each way): still hidden.
    tokio::time::sleep((received + Duration::from_secs(WINDOW + 1)).saturating_duration_since(Instant::now())).await;
    assert!(queue.receive(request(0, Some(30))).await.unwrap().is_empty(), "hidden past its original timeout");
    let again = receive_n(queue, 1, 30).await.remove(0);
    assert_eq!(again.message_id, id);
    assert_eq!(again.receive_count, 2);
    assert!(extended.elapsed() >= Duration::from_secs(2 * WINDOW - 1), "back after {:?}", extended.elapsed());
}

/// A long poll returns as soon as a message arrives from another connection, not at the end of its wait.
async fn a_long_poll_returns_when_another_connection_sends(subject: Subject<impl Queue, impl Queue>) {
    let started = Instant::now();
    let wait = Duration::from_secs(10);
    let (got, id) =
        tokio::join!(subject.queue.receive(ReceiveRequest::new(10, wait, Some(Duration::from_secs(30)))), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            subject.other.send(message("wake up")).await.unwrap()
        });
    let got = got.unwrap();
    assert_eq!(got.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>(), [id]);
    assert!(started.elapsed() < wait - Duration::from_secs(3), "returned after {:?}", started.elapsed());
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod local_queue {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::local()).await; })*
        }
        mod sqs_on_moto {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::sqs().await).await; })*
        }
    };
}

conformance!(
    send_and_receive_carries_attributes,
    visibility_hides_then_reveals,
    stale_handle_cannot_delete_after_redelivery,
    change_visibility_zero_makes_visible,
    batch_calls_report_only_the_bad_entry,
    redrive_to_dead_letters_after_threshold,
    delay_hides_a_new_message,
    extending_visibility_keeps_a_message_hidden,
    a_long_poll_returns_when_another_connection_sends,
);
