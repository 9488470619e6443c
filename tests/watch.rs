//! End-to-end tests of `watchbot watch` on moto: SNS → SQS (envelope) → `watchbot watch --runner process` → a
//! worker script that exits with the code its message asks for. Asserts deletes, returns after the backoff,
//! dead-lettering after the redrive threshold, notifications (read from a queue subscribed to the notification
//! topic), the exact environment the worker saw, and exit 0 after SIGTERM.

use crate::util::{TestDir, sqs_counts, watchbot};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const WORKER: &str = r#"#!/bin/sh
# Records what it saw, then exits with the code its message asks for ("exit N").
out="$WORKER_OUT/$MessageId-$ApproximateReceiveCount"
{
  echo "Subject=$Subject"
  echo "Message=$Message"
  echo "MessageId=$MessageId"
  echo "SentTimestamp=$SentTimestamp"
  echo "ApproximateFirstReceiveTimestamp=$ApproximateFirstReceiveTimestamp"
  echo "ApproximateReceiveCount=$ApproximateReceiveCount"
  echo "WorkTopic=$WorkTopic"
  echo "LogGroup=$LogGroup"
  echo "At=$(date +%s%N)"
} > "$out.tmp" && mv "$out.tmp" "$out.env"
echo "giving up: asked to $Message" >&2
exit "${Message#exit }"
"#;

struct Run {
    /// Environment lines by (message id, receive count).
    runs: BTreeMap<(String, u32), BTreeMap<String, String>>,
}

impl Run {
    fn read(dir: &Path) -> Run {
        let mut runs = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("read worker output").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".env") else { continue };
            let Some((id, count)) = stem.rsplit_once('-') else { continue };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let env: BTreeMap<String, String> =
                text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            runs.insert((id.to_string(), count.parse().unwrap_or(0)), env);
        }
        Run { runs }
    }

    /// The message id whose Subject is this text.
    fn id_of(&self, subject: &str) -> Option<String> {
        self.runs
            .iter()
            .find(|(_, env)| env.get("Subject").map(String::as_str) == Some(subject))
            .map(|((id, _), _)| id.clone())
    }

    /// Receive counts at which this message ran.
    fn counts(&self, id: &str) -> Vec<u32> {
        self.runs.keys().filter(|(m, _)| m == id).map(|(_, c)| *c).collect()
    }

    fn at(&self, id: &str, count: u32) -> u128 {
        self.runs[&(id.to_string(), count)]["At"].parse().expect("nanoseconds")
    }
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        if out.messages().is_empty() {
            break;
        }
        all.extend(out.messages().iter().cloned());
    }
    all
}

fn envelope(body: &str) -> (String, String) {
    let value: serde_json::Value = serde_json::from_str(body).expect("an SNS envelope");
    (
        value["Subject"].as_str().unwrap_or_default().to_string(),
        value["Message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn watch_runs_one_process_per_message_and_applies_exit_codes() {
    let moto = watchbot_testing::moto();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = TestDir::new();
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("out dir");
    dir.write("worker.sh", WORKER);

    let sdk = runtime.block_on(moto.sdk_config());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let name = watchbot_testing::unique_name("watch");
    let (work_topic, notify_topic, queue_url, dlq_url, check_url) = runtime.block_on(async {
        let create_queue = |name: String, attributes: Vec<(&'static str, String)>| {
            let sqs = sqs.clone();
            async move {
                let mut request = sqs.create_queue().queue_name(name);
                for (key, value) in attributes {
                    request = request.attributes(aws_sdk_sqs::types::QueueAttributeName::from(key), value);
                }
                request.send().await.expect("create queue").queue_url().expect("url").to_string()
            }
        };
        let arn_of = |url: String| {
            let sqs = sqs.clone();
            async move {
                sqs.get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .expect("attributes")
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
                    .expect("arn")
            }
        };
        let dlq_url = create_queue(format!("{name}-dlq"), vec![]).await;
        let dlq_arn = arn_of(dlq_url.clone()).await;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3 }).to_string();
        let queue_url =
            create_queue(name.clone(), vec![("VisibilityTimeout", "600".into()), ("RedrivePolicy", redrive)]).await;
        let check_url = create_queue(format!("{name}-check"), vec![]).await;
        let work_topic = sns
            .create_topic()
            .name(format!("{name}-work"))
            .send()
            .await
            .expect("topic")
            .topic_arn()
            .unwrap()
            .to_string();
        let notify_topic = sns
            .create_topic()
            .name(format!("{name}-notify"))
            .send()
            .await
            .expect("topic")
            .topic_arn()
            .unwrap()
            .to_string();
        for (topic, url) in [(&work_topic, &queue_url), (&notify_topic, &check_url)] {
            let arn = arn_of(url.clone()).await;
            sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(arn).send().await.expect("subscribe");
        }
        (work_topic, notify_topic, queue_url, dlq_url, check_url)
    });

    // Its log (JSON lines on stderr) is in every failure report.
    let mut child = watchbot(&dir)
        .moto(moto)
        .args(["watch", "--runner", "process", "--queue-url", &queue_url, "--notification-topic", &notify_topic])
        .args(["--workers", "4", "--stack-name", "e2e", "--", "sh"])
        .arg(dir.join("worker.sh"))
        .env("WorkTopic", &work_topic)
        .env("LogGroup", "e2e-logs")
        .env("WORKER_OUT", &out)
        .deadline(Duration::from_secs(90))
        .spawn();

    runtime.block_on(async {
        for code in [0, 3, 4, 1] {
            sns.publish()
                .topic_arn(&work_topic)
                .subject(format!("s-{code}"))
                .message(format!("exit {code}"))
                .send()
                .await
                .expect("publish");
        }
        // A raw message, sent straight to the queue: its Subject comes from a message attribute.
        let subject = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value("raw subject")
            .build()
            .expect("attribute");
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body("exit 0")
            .message_attributes("Subject", subject)
            .send()
            .await
            .expect("send");
    });

    // Failing messages run at receive counts 1, 2, 3 (returned after about 1-2, 2-4, 4-8 s), then SQS's redrive
    // moves them to the dead-letter queue on the next receive.
    child.wait_for_every(Duration::from_millis(500), "two messages in the dead-letter queue", || {
        sqs_counts(&runtime, &sqs, &dlq_url).0 == 2
    });
    let dead = runtime.block_on(drain(&sqs, &dlq_url));
    assert_eq!(dead.len(), 2, "two messages dead-lettered in time\n{}", child.report());

    // SIGTERM: a graceful stop, exit 0.
    child.terminate();
    let finished = child.wait().assert_success();
    let log_text = finished.stderr();

    let run = Run::read(&out);
    let id = |message: &str| run.id_of(message).unwrap_or_else(|| panic!("{message} never ran; log:\n{log_text}"));
    let (ok, rejected, retry, failing) = (id("s-0"), id("s-3"), id("s-4"), id("s-1"));
    // Deleted after exit 0 and exit 3: ran once each.
    assert_eq!(run.counts(&ok), vec![1]);
    assert_eq!(run.counts(&rejected), vec![1]);
    // Returned after exit 4 and exit 1: ran at receive counts 1, 2, 3, each after its backoff (at least half of
    // 2^count seconds).
    for message in [&retry, &failing] {
        assert_eq!(run.counts(message), vec![1, 2, 3], "{message}");
        let gap = |a, b| (run.at(message, b) - run.at(message, a)) as f64 / 1e9;
        assert!(gap(1, 2) >= 1.0, "returned after {} s", gap(1, 2));
        assert!(gap(2, 3) >= 2.0, "returned after {} s", gap(2, 3));
    }
    // Both dead-lettered by the redrive policy, bodies intact.
    let dead_messages: BTreeSet<String> = dead.iter().map(|m| envelope(m.body().unwrap_or_default()).1).collect();
    assert_eq!(dead_messages, BTreeSet::from(["exit 1".to_string(), "exit 4".to_string()]));

    // The exact environment of the first run.
    let env = &run.runs[&(ok.clone(), 1)];
    let sent: u64 = env["SentTimestamp"].parse().expect("epoch ms");
    let first: u64 = env["ApproximateFirstReceiveTimestamp"].parse().expect("epoch ms");
    assert!(sent > 1_700_000_000_000 && first >= sent, "{env:?}");
    let expected: BTreeMap<String, String> = [
        ("Subject", "s-0"),
        ("Message", "exit 0"),
        ("MessageId", ok.as_str()),
        ("SentTimestamp", env["SentTimestamp"].as_str()),
        ("ApproximateFirstReceiveTimestamp", env["ApproximateFirstReceiveTimestamp"].as_str()),
        ("ApproximateReceiveCount", "1"),
        ("WorkTopic", work_topic.as_str()),
        ("LogGroup", "e2e-logs"),
        ("At", env["At"].as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, &expected);
    let raw = &run.runs[&(id("raw subject"), 1)];
    assert_eq!(raw["Message"], "exit 0");
    assert_eq!(raw["ApproximateReceiveCount"], "1");
    assert_eq!(run.counts(&raw["MessageId"]), vec![1]);

    // Notifications: one for the rejection, one per failure, and one for exit 4 on its last receive (the redrive
    // policy's maxReceiveCount is 3, read at start): dead-lettering is never silent. None for exit 0.
    let notes: Vec<(String, String)> =
        runtime.block_on(drain(&sqs, &check_url)).iter().map(|m| envelope(m.body().unwrap_or_default())).collect();
    let about = |id: &str| -> Vec<&(String, String)> {
        notes.iter().filter(|(subject, _)| *subject == format!("e2e failed processing message {id}")).collect()
    };
    let last_receive = "Next: the dead-letter queue (this was receive 3 of the 3 its redrive policy allows)\n\
                        To run it again: watchbot dead-letter redrive --queue-url ";
    assert_eq!(about(&ok).len(), 0);
    let quiet = about(&retry);
    assert_eq!(quiet.len(), 1, "{notes:?}");
    assert!(quiet[0].1.contains("Outcome: returned\nExit code: 4\n"), "{}", quiet[0].1);
    assert!(quiet[0].1.contains(last_receive), "{}", quiet[0].1);
    assert!(quiet[0].1.contains(&format!("{queue_url} {retry}\n")), "{}", quiet[0].1);
    let rejections = about(&rejected);
    assert_eq!(rejections.len(), 1, "{notes:?}");
    assert!(rejections[0].1.contains("Outcome: rejected\nExit code: 3\n"), "{}", rejections[0].1);
    assert!(rejections[0].1.contains("Next: removed from the queue"), "{}", rejections[0].1);
    let failures = about(&failing);
    assert_eq!(failures.len(), 3, "{notes:?}");
    let mut counts = BTreeSet::new();
    for (_, body) in &failures {
        assert!(body.contains("Outcome: failed\nExit code: 1\n"), "{body}");
        counts.extend(body.lines().filter(|l| l.starts_with("Receive count: ")).map(str::to_string));
        if body.contains("Receive count: 3\n") {
            assert!(body.contains(last_receive), "{body}");
            assert!(!body.contains("retry at"), "{body}");
        } else {
            assert!(body.contains("Next: returned to the queue; retry at "), "{body}");
        }
        assert!(body.contains("\nMessage=exit 1\n"), "{body}");
        // It ends with what the worker printed last.
        assert!(body.ends_with("Recent output (the last line):\ngiving up: asked to exit 1\n"), "{body}");
    }
    assert_eq!(counts, BTreeSet::from(["Receive count: 1", "Receive count: 2", "Receive count: 3"].map(String::from)));
    assert_eq!(notes.len(), 5, "{notes:?}");

    // Nothing left in the work queue: the deleted ones are gone, the failing ones dead-lettered.
    let left = runtime.block_on(drain(&sqs, &queue_url));
    assert!(left.is_empty(), "left in the queue: {left:?}");
    // The watcher's own logs are JSON lines with the events.
    assert!(log_text.lines().any(|l| l.contains(r#""event":"finished""#) && l.contains(r#""outcome":"rejected""#)));
    assert!(log_text.lines().any(|l| l.contains(r#""event":"stopped""#)), "{log_text}");
    // The worker's lines are JSON lines on the watcher's stderr too, with their message id.
    let worker_line = serde_json::json!({"messageId": failing, "msg": "giving up: asked to exit 1"});
    assert!(
        log_text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["messageId"] == worker_line["messageId"]
                && v["msg"] == worker_line["msg"]
                && v["time"].is_string()),
        "{log_text}"
    );
}

#[test]
fn watch_without_a_queue_is_a_one_line_error() {
    let result = watchbot(&TestDir::new()).args(["watch", "--runner", "process", "--", "true"]).fails_with(1);
    assert_eq!(
        result.stderr(),
        "watchbot: --queue-url (or environment variable QueueUrl) is required but not set\n",
        "{result}"
    );
}

#[test]
fn watch_process_runner_needs_a_command() {
    let result = watchbot(&TestDir::new())
        .args(["watch", "--runner", "process", "--queue-url", "http://127.0.0.1:9/q"])
        .fails_with(1);
    assert_eq!(result.stderr(), "watchbot: --runner process needs the worker command after `--`\n", "{result}");
}

#[test]
fn watch_on_a_queue_that_does_not_exist_exits_69_naming_queue_url() {
    let moto = watchbot_testing::moto();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sqs = aws_sdk_sqs::Client::new(&runtime.block_on(moto.sdk_config()));
    // A real queue's URL with a typo in its name.
    let name = watchbot_testing::unique_name("watch-typo");
    let url = runtime.block_on(async {
        let out = sqs.create_queue().queue_name(&name).send().await.expect("create queue");
        out.queue_url().expect("url").to_string()
    });
    let wrong = format!("{url}-typo");
    // A service that cannot be used: 69 (README, "Exit codes of the commands").
    let result = watchbot(&TestDir::new())
        .moto(moto)
        .args(["watch", "--runner", "process", "--queue-url", &wrong, "--", "true"])
        .fails_with(69);
    let text = result.stderr();
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("watchbot: cannot receive from the work queue {wrong} (QueueUrl): ")),
        "{result}"
    );
    assert!(last.contains("NonExistentQueue") || last.contains("QueueDoesNotExist"), "{result}");
}

const SLOW_WORKER: &str = r#"#!/bin/sh
# Starts, then works for a minute unless told to stop.
trap 'echo stopped > "$WORKER_OUT/stopped-$MessageId"; exit 143' TERM
echo "$ApproximateReceiveCount" > "$WORKER_OUT/started-$MessageId"
sleep 60 &
wait $!
echo done > "$WORKER_OUT/done-$MessageId"
"#;

#[test]
fn sigterm_with_a_task_in_flight_stops_it_and_returns_its_message_at_once() {
    let moto = watchbot_testing::moto();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = TestDir::new();
    let slow = dir.write("slow.sh", SLOW_WORKER);
    let sqs = aws_sdk_sqs::Client::new(&runtime.block_on(moto.sdk_config()));
    let name = watchbot_testing::unique_name("watch-stop");
    let queue_url = runtime.block_on(async {
        let out = sqs.create_queue().queue_name(&name).send().await.expect("create queue");
        let url = out.queue_url().expect("url").to_string();
        sqs.send_message().queue_url(&url).message_body("work").send().await.expect("send");
        url
    });

    let mut child = watchbot(&dir)
        .moto(moto)
        .args(["watch", "--runner", "process", "--queue-url", &queue_url, "--", "sh"])
        .arg(&slow)
        .env("WORKER_OUT", dir.path())
        .env("LogLevel", "debug")
        .deadline(Duration::from_secs(30))
        .spawn();

    let started = |dir: &Path| {
        std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .find_map(|e| e.file_name().to_string_lossy().strip_prefix("started-").map(str::to_string))
    };
    child.wait_for("the task to start", || started(dir.path()).is_some());
    let id = started(dir.path()).expect("started");

    child.terminate();
    let log_text = child.wait().assert_success().stderr();
    // The child got SIGTERM and did not finish; the message was returned, not deleted: visible again at once.
    assert!(dir.join(format!("stopped-{id}")).exists(), "the worker was not stopped: {log_text}");
    assert!(!dir.join(format!("done-{id}")).exists());
    assert!(!log_text.contains(r#""event":"deleted""#), "{log_text}");
    assert!(log_text.contains(r#""event":"stopping""#), "{log_text}");
    let again = runtime.block_on(async {
        sqs.receive_message()
            .queue_url(&queue_url)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("receive")
    });
    let messages = again.messages();
    assert_eq!(messages.len(), 1, "the message is visible again at once: {log_text}");
    assert_eq!(messages[0].message_id(), Some(id.as_str()));
    assert_eq!(messages[0].body(), Some("work"));
}
