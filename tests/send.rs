//! End-to-end tests of `watchbot send`: the address picks the backend (SNS topic ARN, SQS queue URL, local queue
//! folder or `file:` URL), the message id is printed, and bad input is one line naming the value, exit 1.

use crate::util::{output, stderr, stdout, watchbot};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{Queue, ReceiveRequest, ReceivedMessage};

fn receive_request() -> ReceiveRequest {
    ReceiveRequest { max_messages: 10, wait: Duration::from_secs(2), visibility_timeout: None }
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
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap(); // as `watchbot local` leaves it
    let out = output(watchbot().args(["send", "--local", "--state"]).arg(&state).args([
        "--subject",
        "greeting",
        "--message",
        "{\"n\": 1}",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let got = receive_local(&state);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].body, "{\"n\": 1}");
    assert_eq!(got[0].attributes.get("Subject").map(String::as_str), Some("greeting"));
}

#[test]
fn topic_address_may_be_a_local_folder_or_file_url_and_message_may_come_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    let path = dir.path().display().to_string();
    let out = output(watchbot().args(["send", "--topic", &path, "--message", "by path"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let mut child = watchbot()
        .args(["send", "--topic", &format!("file://{path}"), "--message", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin\nsecond line").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let mut bodies: Vec<String> = receive_local(dir.path()).into_iter().map(|m| m.body).collect();
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
        let out = output(watchbot().arg("send").args(&args).args(["--message", "m"]));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(named), "{err}");
        assert!(stdout(&out).is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let out = output(watchbot().args(["send", "--local", "--state"]).arg(dir.path()).args(["--message", ""]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--message"), "{}", stderr(&out));
}

#[test]
fn local_send_to_a_folder_without_a_queue_fails_and_creates_nothing() {
    // Run from the wrong directory, `--local` would otherwise create a fresh queue that no watcher reads.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("not-the-state");
    let out = output(watchbot().args(["send", "--local", "--state"]).arg(&state).args(["--message", "lost?"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&state.display().to_string()) && err.contains("no local queue"), "{err}");
    assert!(!state.exists(), "no folder or queue was created");
    // The default folder too: `.watchbot/` under the working directory.
    let out = output(watchbot().current_dir(dir.path()).args(["send", "--local", "--message", "lost?"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".watchbot"), "{}", stderr(&out));
    assert!(!dir.path().join(".watchbot").exists());
}

#[test]
fn sns_topic_and_sqs_queue_on_moto() {
    let moto = watchbot_testing::moto();
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

        // To the topic: arrives in the queue as an SNS envelope; a subject SNS would refuse is made acceptable.
        let subject = format!("two\nlines {}", "x".repeat(200));
        let mut command = watchbot();
        moto.configure(&mut command);
        let out = output(command.args(["send", "--topic", &topic_arn, "--subject", &subject, "--message", "work 1"]));
        assert!(out.status.success(), "{}", stderr(&out));
        let queue = watchbot_watcher::aws::sqs::SqsQueue::new(sqs.clone(), queue_url.clone());
        let got = queue.receive(receive_request()).await.unwrap();
        assert_eq!(got.len(), 1);
        let envelope: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(envelope["Message"], "work 1");
        assert_eq!(envelope["MessageId"], stdout(&out).trim());
        let sent_subject = envelope["Subject"].as_str().unwrap();
        assert!(sent_subject.starts_with("two lines xxx") && sent_subject.len() == 100, "{sent_subject}");
        queue.delete(&got[0].receipt_handle).await.unwrap();

        // Straight to the queue: raw body, subject as a message attribute.
        let mut command = watchbot();
        moto.configure(&mut command);
        let out =
            output(command.args(["send", "--queue-url", &queue_url, "--subject", "direct", "--message", "work 2"]));
        assert!(out.status.success(), "{}", stderr(&out));
        let got = queue.receive(receive_request()).await.unwrap();
        assert_eq!(got[0].body, "work 2");
        assert_eq!(got[0].message_id, stdout(&out).trim());
        assert_eq!(got[0].attributes.get("Subject").map(String::as_str), Some("direct"));

        // A topic that does not exist: one line, exit 69 (a service that cannot be used; README, "Exit codes").
        let missing = format!("arn:aws:sns:us-east-1:123456789012:{}", watchbot_testing::unique_name("missing"));
        let mut command = watchbot();
        moto.configure(&mut command);
        let out = output(command.args(["send", "--topic", &missing, "--message", "m"]));
        assert_eq!(out.status.code(), Some(69));
        assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
    });
}
