//! End-to-end tests of `watchbot send`: the address picks the backend (SNS topic ARN, SQS queue URL, local queue
//! folder or `file:` URL), the message id is printed, and bad input is one line naming the value, exit 1.

use crate::util::{TestDir, watchbot};
use std::time::Duration;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{Queue, ReceiveRequest, ReceivedMessage};

fn receive_request() -> ReceiveRequest {
    ReceiveRequest::new(10, Duration::from_secs(2), None)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn receive_local(dir: &std::path::Path) -> Vec<ReceivedMessage> {
    let queue = LocalQueue::open(dir, LocalQueueConfig::default()).unwrap();
    runtime().block_on(queue.receive(receive_request())).unwrap()
}

#[test]
fn local_send_enqueues_with_subject_and_prints_the_id() {
    let dir = TestDir::new();
    let state = dir.join("state");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap(); // as `watchbot local` leaves it
    let out = watchbot(&dir)
        .args(["send", "--local", "--state"])
        .arg(&state)
        .args(["--subject", "greeting", "--message", "{\"n\": 1}"])
        .stdout();
    let id = out.trim().to_string();
    let got = receive_local(&state);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].body, "{\"n\": 1}");
    assert_eq!(got[0].attributes.get("Subject").map(String::as_str), Some("greeting"));
}

#[test]
fn topic_address_may_be_a_local_folder_or_file_url_and_message_may_come_from_stdin() {
    let dir = TestDir::new();
    let state = dir.join("state");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let path = state.display().to_string();
    watchbot(&dir).args(["send", "--topic", &path, "--message", "by path"]).success();
    watchbot(&dir)
        .args(["send", "--topic", &format!("file://{path}"), "--message", "-"])
        .stdin("from stdin\nsecond line")
        .success();

    let mut bodies: Vec<String> = receive_local(&state).into_iter().map(|m| m.body).collect();
    bodies.sort();
    assert_eq!(bodies, ["by path", "from stdin\nsecond line"]);
}

#[test]
fn bad_addresses_fail_with_one_line_naming_them() {
    for (args, named) in [
        (vec!["--topic", "/no/such/queue/folder"], "/no/such/queue/folder"),
        (vec!["--topic", "arn:aws:sqs:us-east-1:123456789012:q"], "arn:aws:sqs:us-east-1:123456789012:q"),
        (vec!["--topic", ""], "--topic"),
        (vec!["--queue-url", "not-a-url"], "not-a-url"),
    ] {
        let out = watchbot(&TestDir::new()).arg("send").args(&args).args(["--message", "m"]).fails_with(1);
        let err = out.stderr();
        assert_eq!(err.trim().lines().count(), 1, "{out}");
        assert!(err.contains(named), "{out}");
        assert!(out.stdout().is_empty(), "{out}");
    }
    let dir = TestDir::new();
    let out = watchbot(&dir).args(["send", "--local", "--state"]).arg(dir.path()).args(["--message", ""]).fails_with(1);
    assert!(out.stderr().contains("--message"), "{out}");
}

#[test]
fn local_send_to_a_folder_without_a_queue_fails_and_creates_nothing() {
    // Run from the wrong directory, `--local` would otherwise create a fresh queue that no watcher reads.
    let dir = TestDir::new();
    let state = dir.join("not-the-state");
    let out =
        watchbot(&dir).args(["send", "--local", "--state"]).arg(&state).args(["--message", "lost?"]).fails_with(1);
    let err = out.stderr();
    assert_eq!(err.trim().lines().count(), 1, "{out}");
    assert!(err.contains(&state.display().to_string()) && err.contains("no local queue"), "{out}");
    assert!(!state.exists(), "no folder or queue was created");
    // The default folder too: `.watchbot/` under the working directory (the test's folder).
    let out = watchbot(&dir).args(["send", "--local", "--message", "lost?"]).fails_with(1);
    assert!(out.stderr().contains(".watchbot"), "{out}");
    assert!(!dir.join(".watchbot").exists());
}

#[test]
fn sns_topic_and_sqs_queue_on_moto() {
    let moto = watchbot_testing::moto();
    let dir = TestDir::new();
    runtime().block_on(async {
        let config = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let queue_url = sqs
            .create_queue()
            .queue_name(watchbot_testing::unique_name("send"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = format!(
            "arn:aws:sqs:{}:{}:{}",
            watchbot_testing::REGION,
            watchbot_testing::ACCOUNT_ID,
            queue_url.rsplit('/').next().unwrap()
        );
        let topic_arn =
            sns.create_topic().name(watchbot_testing::unique_name("work")).send().await.unwrap().topic_arn.unwrap();
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(&queue_arn).send().await.unwrap();

        // A subject SNS would refuse is refused before any request, with SNS's rule.
        let subject = format!("two\nlines {}", "x".repeat(200));
        let out = watchbot(&dir)
            .moto(moto)
            .args(["send", "--topic", &topic_arn, "--subject", &subject, "--message", "work 1"])
            .fails_with(1);
        assert!(out.stderr().contains("--subject: the subject is 210 characters, over SNS's limit of 100"), "{out}");
        // To the topic: arrives in the queue as an SNS envelope.
        let subject = format!("tile {}", "x".repeat(95));
        let out = watchbot(&dir)
            .moto(moto)
            .args(["send", "--topic", &topic_arn, "--subject", &subject, "--message", "work 1"])
            .success();
        let queue = watchbot_watcher::aws::sqs::SqsQueue::new(sqs.clone(), queue_url.clone());
        let got = queue.receive(receive_request()).await.unwrap();
        assert_eq!(got.len(), 1);
        let envelope: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(envelope["Message"], "work 1");
        assert_eq!(envelope["MessageId"], out.stdout().trim());
        let sent_subject = envelope["Subject"].as_str().unwrap();
        assert_eq!(sent_subject, subject);
        queue.delete(&got[0].receipt_handle).await.unwrap();

        // Straight to the queue: raw body, subject as a message attribute.
        let out = watchbot(&dir)
            .moto(moto)
            .args(["send", "--queue-url", &queue_url, "--subject", "direct", "--message", "work 2"])
            .success();
        let got = queue.receive(receive_request()).await.unwrap();
        assert_eq!(got[0].body, "work 2");
        assert_eq!(got[0].message_id, out.stdout().trim());
        assert_eq!(got[0].attributes.get("Subject").map(String::as_str), Some("direct"));

        // A topic that does not exist: one line, exit 69 (a service that cannot be used; README, "Exit codes").
        let missing = format!("arn:aws:sns:us-east-1:123456789012:{}", watchbot_testing::unique_name("missing"));
        let out = watchbot(&dir).moto(moto).args(["send", "--topic", &missing, "--message", "m"]).fails_with(69);
        assert!(out.stderr().contains(&missing), "{out}");
    });
}

/// What SQS or SNS would refuse is refused locally too, before anything is enqueued, with the reason; a message
/// too large for an ECS task is sent, with a warning.
#[test]
fn production_limits_apply_to_local_sends() {
    let dir = TestDir::new();
    let state = dir.join("state");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let send = |args: &[&str]| watchbot(&dir).args(["send", "--local", "--state"]).arg(&state).args(args).output();
    // A NUL cannot be an argument; it comes from stdin or a file.
    let out =
        watchbot(&dir).args(["send", "--local", "--state"]).arg(&state).args(["--message", "-"]).stdin("a\0b").output();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr().starts_with("watchbot: --message: the message has the character U+0000 at byte 1"), "{out}");
    let subject = "s".repeat(200);
    let out = send(&["--subject", &subject, "--message", "m"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.stderr().trim(), "watchbot: --subject: the subject is 200 characters, over SNS's limit of 100");
    assert!(receive_local(&state).is_empty(), "nothing was enqueued");

    let big = "x".repeat(20_000);
    let out = send(&["--message", &big]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stderr().contains("warning: this message needs at least"), "{out}");
    assert!(out.stderr().contains("over ECS's limit of 8192"), "{out}");
    assert_eq!(receive_local(&state).len(), 1);
}

/// `send --messages FILE` takes `watchbot local --messages`' format: checked whole, enqueued locally in one
/// transaction, one id printed per message; a bad line sends nothing and names the line.
#[test]
fn send_messages_sends_a_file_all_or_nothing() {
    let dir = TestDir::new();
    let state = dir.join("state");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let file = dir.join("m.jsonl");
    std::fs::write(&file, "{\"message\": \"one\", \"subject\": \"s\"}\n\n{\"message\": {\"n\": 2}}\n").unwrap();
    let out = watchbot(&dir).args(["send", "--local", "--state"]).arg(&state).arg("--messages").arg(&file).stdout();
    assert_eq!(out.lines().count(), 2, "{out}");
    let mut bodies: Vec<String> = receive_local(&state).into_iter().map(|m| m.body).collect();
    bodies.sort();
    assert_eq!(bodies, ["one", "{\"n\":2}"]);

    std::fs::write(&file, "{\"message\": \"fine\"}\n{\"message\": \"a\\u0000\"}\n").unwrap();
    let out =
        watchbot(&dir).args(["send", "--local", "--state"]).arg(&state).arg("--messages").arg(&file).fails_with(1);
    assert!(out.stderr().contains("m.jsonl line 2: the message has the character U+0000"), "{out}");
    assert!(out.stderr().trim_end().ends_with("nothing was sent"), "{out}");
    let out = watchbot(&dir)
        .args(["send", "--local", "--state"])
        .arg(&state)
        .args(["--message", "m", "--messages"])
        .arg(&file)
        .fails_with(2);
    assert!(out.stderr().contains("cannot be used with"), "{out}");
}
