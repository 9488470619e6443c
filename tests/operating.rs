//! End-to-end tests of the operator's commands, `watchbot status` and `watchbot dead-letter`, on the embedded queue
//! (after a `watchbot local` run that dead-letters messages) and on SQS (moto, addressed by queue URL and by a
//! CloudFormation stack): counts, listing that consumes nothing, show, redrive, delete and purge with and without
//! `--yes`, a redriven message running again, bad addresses and ids; and the dead-letter notification.

use crate::util::{TestDir, lines, watchbot};
use std::path::Path;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};

/// Exits as its message asks: `ok` 0, `quiet` 4, anything else 1. Appends each run's message to `runs.txt`.
const WORKER: &str = r#"echo "$Message" >> runs.txt
case "$Message" in ok) exit 0;; quiet) exit 4;; *) exit 1;; esac"#;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

fn status(dir: &TestDir, address: &[&str]) -> serde_json::Value {
    json(&watchbot(dir).arg("status").args(address).arg("--json").stdout())
}

fn counts(value: &serde_json::Value) -> [u64; 4] {
    ["visible", "in_flight", "delayed", "dead_letters"]
        .map(|key| value[key].as_u64().unwrap_or_else(|| panic!("{key} is not an integer in {value}")))
}

fn listed(dir: &TestDir, address: &[&str]) -> Vec<serde_json::Value> {
    let out = watchbot(dir).args(["dead-letter", "list", "--json"]).args(address).stdout();
    out.lines().map(json).collect()
}

/// The dead letter whose message is `message`.
fn id_of(letters: &[serde_json::Value], message: &str) -> String {
    let letter = letters.iter().find(|l| l["message"] == message);
    let letter = letter.unwrap_or_else(|| panic!("no dead letter with message {message:?} in {letters:?}"));
    letter["message_id"].as_str().expect("message_id").to_string()
}

/// A `watchbot local` run to the end on `state`, with the messages given.
fn local_run(dir: &TestDir, state: &Path, messages: &str, worker: &str) -> String {
    dir.write("messages.jsonl", messages);
    watchbot(dir)
        .args(["local", "--until-empty", "--no-backoff", "--max-receive-count", "2", "--state"])
        .arg(state)
        .args(["--messages", "messages.jsonl", "--", "sh", "-c", worker])
        .success()
        .stdout()
}

#[test]
fn dead_letters_are_announced_counted_listed_redriven_and_dropped_locally() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let messages =
        "{\"subject\": \"s-fail\", \"message\": \"fail\"}\n{\"message\": \"quiet\"}\n{\"message\": \"ok\"}\n";
    let out = local_run(&dir, &state, messages, WORKER);
    assert!(out.contains("dead-lettered 2,"), "both counted as they went: {out}");

    // Dead-lettering is never silent: the failure and the exit 4 on their last receive say what comes next, and how
    // to redrive them.
    let notes: Vec<serde_json::Value> = lines(&state.join("notifications.jsonl")).iter().map(|l| json(l)).collect();
    let bodies: Vec<String> = notes.iter().map(|n| n["body"].as_str().unwrap_or_default().to_string()).collect();
    let last = |message: &str| {
        bodies
            .iter()
            .find(|b| b.contains(&format!("\nMessage={message}\n")) && b.contains("Receive count: 2\n"))
            .unwrap_or_else(|| panic!("no last-receive notification for {message}: {bodies:#?}"))
            .clone()
    };
    for message in ["fail", "quiet"] {
        let body = last(message);
        assert!(
            body.contains("Next: the dead-letter queue (this was receive 2 of the 2 its redrive policy allows)\n"),
            "{body}"
        );
        assert!(body.contains("To run it again: watchbot dead-letter redrive --state "), "{body}");
    }
    assert!(last("quiet").contains("Outcome: returned\nExit code: 4\n"));
    assert_eq!(bodies.len(), 3, "fail twice, quiet once (on its last receive), no repeat at the move: {bodies:#?}");

    let address = ["--state", state.to_str().unwrap()];
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 2]);
    let text = watchbot(&dir).arg("status").args(address).stdout();
    assert!(text.contains("dead letters     2"), "{text}");
    assert!(text.contains("watchbot dead-letter list --state"), "{text}");

    // Listing twice consumes nothing.
    let first = listed(&dir, &address);
    let second = listed(&dir, &address);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first, second);
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 2]);
    let fail = id_of(&first, "fail");
    let quiet = id_of(&first, "quiet");
    let letter = first.iter().find(|l| l["message"] == "fail").unwrap();
    assert_eq!((letter["subject"].as_str(), letter["receive_count"].as_u64()), (Some("s-fail"), Some(2)));

    let shown = watchbot(&dir).args(["dead-letter", "show", &fail]).args(address).stdout();
    assert!(shown.contains(&format!("message id:    {fail}\n")), "{shown}");
    assert!(shown.contains("message:\nfail\n") && shown.contains("Subject=s-fail"), "{shown}");

    // Unknown ids and missing confirmations change nothing.
    let unknown = watchbot(&dir).args(["dead-letter", "show", "no-such-id"]).args(address).fails_with(1);
    assert_eq!(unknown.stderr().lines().count(), 1, "{unknown}");
    assert!(unknown.stderr().contains("no dead letter with id no-such-id"), "{unknown}");
    watchbot(&dir).args(["dead-letter", "redrive", &fail, "no-such-id"]).args(address).fails_with(1);
    let refused = watchbot(&dir).args(["dead-letter", "delete", &fail, &quiet]).args(address).fails_with(1);
    assert!(refused.stderr().contains("--yes"), "{refused}");
    let refused = watchbot(&dir).args(["dead-letter", "purge"]).args(address).fails_with(1);
    assert!(refused.stderr().contains("--yes"), "{refused}");
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 2], "nothing was redriven or deleted");

    // A redriven message runs again (and now succeeds).
    let redriven = watchbot(&dir).args(["dead-letter", "redrive", &fail]).args(address).stdout();
    assert!(redriven.contains(&format!("redriven {fail}")), "{redriven}");
    assert_eq!(counts(&status(&dir, &address)), [1, 0, 0, 1]);
    std::fs::remove_file(dir.join("runs.txt")).unwrap();
    let out = local_run(&dir, &state, "", "echo \"$Message\" >> runs.txt");
    assert!(out.contains("succeeded 1,"), "{out}");
    assert_eq!(dir.lines("runs.txt"), ["fail"]);

    // One delete needs no confirmation; the queue is then empty.
    watchbot(&dir).args(["dead-letter", "delete", &quiet]).args(address).success();
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 0]);
    let empty = watchbot(&dir).args(["dead-letter", "list"]).args(address).stdout();
    assert!(empty.contains("no dead letters"), "{empty}");
}

#[test]
fn purge_and_redrive_all_act_on_every_dead_letter_locally() {
    let dir = TestDir::new();
    let state = dir.join("state");
    local_run(&dir, &state, "{\"message\": \"a\"}\n{\"message\": \"b\"}\n{\"message\": \"c\"}\n", WORKER);
    let address = ["--state", state.to_str().unwrap()];
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 3]);
    let out = watchbot(&dir).args(["dead-letter", "redrive", "--all"]).args(address).stdout();
    assert!(out.contains("3 dead letters sent back"), "{out}");
    assert_eq!(counts(&status(&dir, &address)), [3, 0, 0, 0]);
    local_run(&dir, &state, "", WORKER);
    let out = watchbot(&dir).args(["dead-letter", "purge", "--yes"]).args(address).stdout();
    assert!(out.contains("purged 3 dead letters"), "{out}");
    assert_eq!(counts(&status(&dir, &address)), [0, 0, 0, 0]);
}

#[test]
fn status_shows_the_running_task_and_the_oldest_message() {
    let dir = TestDir::new();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    dir.write("m.jsonl", "{\"message\": \"slow\"}\n{\"message\": \"waiting\"}\n");
    let mut child = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .args(["--messages", "m.jsonl", "--", "sh", "-c", "touch started; sleep 60"])
        .spawn();
    crate::util::wait_for("the task to start", std::time::Duration::from_secs(30), || dir.join("started").exists());
    let address = ["--state", state.to_str().unwrap()];
    let value = status(&dir, &address);
    assert_eq!(counts(&value), [1, 1, 0, 0], "{value}");
    let running = value["in_flight_messages"].as_array().expect("listed locally");
    assert_eq!(running.len(), 1, "{value}");
    assert_eq!(running[0]["receive_count"], 1);
    assert!(running[0]["received_ms"].as_u64().is_some(), "{value}");
    assert!(value["oldest_age_ms"].as_u64().is_some(), "{value}");
    let text = watchbot(&dir).arg("status").args(address).stdout();
    assert!(text.contains("receive 1  received "), "{text}");
    child.terminate();
    child.wait().assert_success();
}

#[test]
fn status_watch_redraws_until_sigterm() {
    let dir = TestDir::new();
    let state = dir.join("state");
    local_run(&dir, &state, "{\"message\": \"a\"}\n", WORKER);
    let mut child =
        watchbot(&dir).args(["status", "--json", "--watch", "--interval", "1", "--state"]).arg(&state).spawn();
    for _ in 0..2 {
        let line = child.next_line().unwrap_or_else(|| panic!("a status line\n{}", child.report()));
        assert_eq!(counts(&json(&line)), [0, 0, 0, 1], "{line}");
    }
    child.terminate();
    child.wait().assert_success();
}

#[test]
fn bad_addresses_are_one_line_errors() {
    let dir = TestDir::new();
    let missing = watchbot(&dir).args(["status", "--state", "nowhere"]).fails_with(1);
    assert!(missing.stderr().contains("no local queue in nowhere"), "{missing}");
    assert!(!dir.join("nowhere").exists(), "looking creates no queue");
    let default = watchbot(&dir).arg("status").fails_with(1);
    assert!(default.stderr().contains("no local queue in .watchbot"), "{default}");
    let not_url = watchbot(&dir).args(["dead-letter", "list", "--queue-url", "queue"]).fails_with(1);
    assert!(not_url.stderr().contains("--queue-url \"queue\" is not an SQS queue URL"), "{not_url}");
    watchbot(&dir).args(["status", "--state", "a", "--queue-url", "https://x/1/q"]).fails_with(2);
    watchbot(&dir).args(["dead-letter", "redrive"]).fails_with(2);
    for failed in [missing, default, not_url] {
        assert_eq!(failed.stderr().lines().count(), 1, "{failed}");
    }
    // An old local queue without dead letters: empty, not an error.
    let state = dir.join("old");
    LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let empty = watchbot(&dir).args(["dead-letter", "list", "--state"]).arg(&state).stdout();
    assert!(empty.contains("no dead letters"), "{empty}");
}

mod sqs {
    use super::*;
    use aws_sdk_sqs::types::QueueAttributeName;

    struct Queues {
        work: String,
        dead: String,
    }

    async fn queue_counts(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
        let out = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes");
        let get = |name| out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    async fn create(sqs: &aws_sdk_sqs::Client, name: &str) -> Queues {
        let dead = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("dlq");
        let dead = dead.queue_url().expect("url").to_string();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&dead)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("arn");
        let arn = arn.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("arn").clone();
        let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": 2 }).to_string();
        let work = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send()
            .await
            .expect("queue");
        Queues { work: work.queue_url().expect("url").to_string(), dead }
    }

    #[test]
    fn dead_letters_on_sqs_are_listed_without_consuming_and_redriven() {
        let moto = watchbot_testing::moto();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = TestDir::new();
        let sqs = aws_sdk_sqs::Client::new(&runtime.block_on(moto.sdk_config()));
        let queues = runtime.block_on(create(&sqs, &watchbot_testing::unique_name("ops")));
        let envelope = serde_json::json!({
            "Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": "sub",
            "Message": "from sns",
        });
        runtime.block_on(async {
            for body in [envelope.to_string(), "raw body".to_string()] {
                sqs.send_message().queue_url(&queues.dead).message_body(body).send().await.expect("send");
            }
            sqs.send_message().queue_url(&queues.work).message_body("work").send().await.expect("send");
        });
        let address = ["--queue-url", queues.work.as_str()];
        let status = |dir: &TestDir| {
            let mut command = watchbot(dir);
            command.moto(moto).arg("status").args(address).arg("--json");
            json(&command.stdout())
        };
        // The dead-letter queue is found from the work queue's RedrivePolicy.
        assert_eq!(counts(&status(&dir)), [1, 0, 0, 2]);
        let list = || {
            let out = watchbot(&dir).moto(moto).args(["dead-letter", "list", "--json"]).args(address).stdout();
            out.lines().map(json).collect::<Vec<_>>()
        };
        let first = list();
        let second = list();
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(second.len(), 2, "listing consumed nothing: {second:?}");
        assert_eq!(runtime.block_on(queue_counts(&sqs, &queues.dead)), (2, 0), "visible again at once");
        let sns = first.iter().find(|l| l["message"] == "from sns").expect("the envelope unwrapped");
        assert_eq!(sns["subject"], "sub");
        let raw = id_of(&first, "raw body");
        let from_sns = sns["message_id"].as_str().unwrap().to_string();

        let unknown = watchbot(&dir).moto(moto).args(["dead-letter", "redrive", "nope"]).args(address).fails_with(1);
        assert!(unknown.stderr().contains("no dead letter with id nope"), "{unknown}");
        assert_eq!(runtime.block_on(queue_counts(&sqs, &queues.dead)), (2, 0), "nothing moved, all visible");

        let shown = watchbot(&dir).moto(moto).args(["dead-letter", "show", &raw]).args(address).stdout();
        assert!(shown.contains("message:\nraw body\n"), "{shown}");

        // Redrive: sent to the work queue (a new id there), then deleted.
        let out = watchbot(&dir).moto(moto).args(["dead-letter", "redrive", &raw]).args(address).stdout();
        assert!(out.contains(&format!("redriven {raw} (now ")), "{out}");
        assert_eq!(counts(&status(&dir)), [2, 0, 0, 1]);
        let bodies = runtime.block_on(async {
            let got = sqs.receive_message().queue_url(&queues.work).max_number_of_messages(10).send().await;
            got.expect("receive")
                .messages()
                .iter()
                .map(|m| m.body().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        });
        assert!(bodies.contains(&"raw body".to_string()), "{bodies:?}");

        // Purge needs --yes; then nothing is left.
        watchbot(&dir).moto(moto).args(["dead-letter", "purge"]).args(address).fails_with(1);
        assert_eq!(runtime.block_on(queue_counts(&sqs, &queues.dead)), (1, 0));
        watchbot(&dir).moto(moto).args(["dead-letter", "delete", &from_sns]).args(address).success();
        assert_eq!(runtime.block_on(queue_counts(&sqs, &queues.dead)), (0, 0));
        let purged = watchbot(&dir).moto(moto).args(["dead-letter", "purge", "--yes"]).args(address).stdout();
        assert!(purged.contains("purged 0 dead letters"), "{purged}");
    }

    #[test]
    fn a_stack_names_both_queues_and_missing_ones_are_service_errors() {
        let moto = watchbot_testing::moto();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = TestDir::new();
        let sdk = runtime.block_on(moto.sdk_config());
        let stack = watchbot_testing::unique_name("ops-stack");
        let template = serde_json::json!({
            "Resources": {
                "JobsDeadLetterQueue": { "Type": "AWS::SQS::Queue" },
                "JobsQueue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": { "RedrivePolicy": {
                        "deadLetterTargetArn": { "Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"] },
                        "maxReceiveCount": 3,
                    } },
                },
            },
        });
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        runtime.block_on(async {
            let created = cloudformation.create_stack().stack_name(&stack).template_body(template.to_string()).send();
            created.await.expect("create stack");
            let resources = cloudformation.describe_stack_resources().stack_name(&stack).send().await.expect("stack");
            let dead = resources
                .stack_resources()
                .iter()
                .find(|r| r.logical_resource_id() == Some("JobsDeadLetterQueue"))
                .and_then(|r| r.physical_resource_id())
                .expect("the dead-letter queue")
                .to_string();
            sqs.send_message().queue_url(dead).message_body("dead").send().await.expect("send");
        });
        let mut command = watchbot(&dir);
        command.moto(moto).args(["status", "--json", "--stack", &stack, "--prefix", "Jobs"]);
        assert_eq!(counts(&json(&command.stdout())), [0, 0, 0, 1]);
        let listed = watchbot(&dir)
            .moto(moto)
            .args(["dead-letter", "list", "--json", "--stack", &stack, "--prefix", "Jobs"])
            .stdout();
        assert_eq!(listed.lines().count(), 1, "{listed}");

        // The wrong prefix names the queues the stack has; a missing stack or queue is a service error.
        let wrong = watchbot(&dir).moto(moto).args(["status", "--stack", &stack]).fails_with(69);
        assert!(
            wrong.stderr().contains("no resource WatchbotQueue") && wrong.stderr().contains("JobsQueue"),
            "{wrong}"
        );
        let missing = watchbot(&dir).moto(moto).args(["status", "--stack", "no-such-stack"]).fails_with(69);
        assert!(missing.stderr().contains("no-such-stack"), "{missing}");
        let url = format!("{}/123456789012/no-such-queue", moto.endpoint());
        let gone = watchbot(&dir).moto(moto).args(["dead-letter", "list", "--queue-url", &url]).fails_with(69);
        assert!(gone.stderr().contains("no such SQS queue"), "{gone}");
        for failed in [wrong, missing, gone] {
            assert_eq!(failed.stderr().lines().count(), 1, "{failed}");
        }
    }
}

/// The attempt history answers `status`'s last failures and `dead-letter show`'s attempts, with the output.
#[test]
fn status_and_show_read_the_attempt_history() {
    let dir = TestDir::new();
    let state = dir.join("state");
    local_run(&dir, &state, "{\"message\": \"tile-9\"}\n", "echo \"boom: $Message is corrupt\"; exit 1");
    let address = ["--state", state.to_str().unwrap()];
    let value = status(&dir, &address);
    let failures = value["recent_failures"].as_array().expect("recent_failures");
    assert_eq!(failures.len(), 2, "{value}");
    let id = id_of(&listed(&dir, &address), "tile-9");
    assert_eq!(failures[0]["message_id"], id.as_str());
    assert_eq!(failures[0]["receive_count"], 2, "newest first: {value}");
    let text = watchbot(&dir).arg("status").args(address).stdout();
    assert!(text.contains("last failures:"), "{text}");
    let shown = watchbot(&dir).args(["dead-letter", "show"]).args(address).arg(&id).stdout();
    assert!(shown.contains("attempts:\n"), "{shown}");
    assert!(shown.contains("boom: tile-9 is corrupt"), "{shown}");
}
