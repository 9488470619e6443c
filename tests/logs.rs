//! Diagnosing a failure end to end: `watchbot local` forwards a failing worker's output with its message id, the
//! notification ends with the worker's last lines, and `watchbot logs MESSAGE_ID` shows every attempt with its
//! output, from the local history and from CloudWatch Logs on moto; unknown ids and bad addresses are one line.

use crate::util::{TestDir, lines, watchbot};

#[test]
fn a_local_failure_explains_itself_in_its_notification_and_in_watchbot_logs() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let worker = dir.script(
        "worker.sh",
        "#!/bin/sh\necho \"working on $Message\"\necho 'step 1 of 2' >&2\necho 'disk full: /tmp/out' >&2\nexit 1\n",
    );
    let messages = dir.write("messages.jsonl", "{\"subject\": \"nightly\", \"message\": \"job-7\"}\n");
    let out = watchbot(&dir)
        .args(["local", "--no-backoff", "--max-receive-count", "2", "--until-empty", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .arg("--")
        .arg(&worker)
        .success();
    let notifications = lines(&state.join("notifications.jsonl"));
    assert_eq!(notifications.len(), 2, "{out}");
    let last: serde_json::Value = serde_json::from_str(&notifications[1]).unwrap();
    let subject = last["subject"].as_str().unwrap();
    let id = subject.rsplit(' ').next().unwrap().to_string();
    let body = last["body"].as_str().unwrap();
    assert!(body.contains("Recent output (the last 3 lines):\n"), "{body}");
    assert!(body.ends_with("disk full: /tmp/out\n"), "{body}");
    // Each line went to the watcher's own stream, prefixed with the message id.
    assert!(out.stdout().contains(&format!("] [worker] [{id}] working on job-7\n")), "{out}");
    assert!(out.stderr().contains(&format!("] [worker] [{id}] disk full: /tmp/out\n")), "{out}");

    let shown = watchbot(&dir).args(["logs", &id, "--state"]).arg(&state).success().stdout();
    assert!(shown.starts_with(&format!("message {id}: 2 attempt(s), subject \"nightly\"\n")), "{shown}");
    assert!(shown.contains("attempt 1 (receive 1): failed, exit code 1: exited with code 1\n"), "{shown}");
    assert!(shown.contains("attempt 2 (receive 2): failed"), "{shown}");
    assert_eq!(shown.matches("  | disk full: /tmp/out\n").count(), 2, "{shown}");
    let json = watchbot(&dir).args(["logs", &id, "--json", "--state"]).arg(&state).success().stdout();
    let attempts: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[1]["receive_count"].as_u64(), attempts[1]["exit_code"].as_i64()), (Some(2), Some(1)));
    assert!(attempts[1]["output"].as_str().unwrap().ends_with("disk full: /tmp/out\n"));

    let unknown = watchbot(&dir).args(["logs", "no-such-id", "--state"]).arg(&state).fails_with(1);
    assert!(unknown.stderr().contains("no attempts of message no-such-id in"), "{unknown}");
    assert_eq!(unknown.stderr().lines().count(), 1, "{unknown}");
    let nowhere = watchbot(&dir).args(["logs", &id, "--state"]).arg(dir.join("nope")).fails_with(1);
    assert!(nowhere.stderr().contains("no such folder"), "{nowhere}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let no_history = watchbot(&dir).args(["logs", &id, "--state"]).arg(&empty).fails_with(1);
    assert!(no_history.stderr().contains("no attempt history in"), "{no_history}");
}

#[test]
fn watchbot_logs_reads_the_tasks_of_a_message_from_cloudwatch_logs() {
    let moto = watchbot_testing::moto();
    let group = watchbot_testing::unique_name("watchbot-logs");
    let task = "arn:aws:ecs:us-east-1:123456789012:task/cluster/1234abcd";
    let other = "arn:aws:ecs:us-east-1:123456789012:task/cluster/99999999";
    // The watcher's events (one JSON line each) and the tasks' awslogs streams.
    let launched = serde_json::json!({"event": "launched", "message_id": "m-1", "task": task}).to_string();
    let finished = serde_json::json!({"event": "finished", "message_id": "m-1", "outcome": "failed", "exit_code": 1,
        "reason": "Essential container in task exited", "receive_count": 1, "duration_ms": 5})
    .to_string();
    let unrelated = serde_json::json!({"event": "launched", "message_id": "m-2", "task": other}).to_string();
    moto.python(&format!(
        "import time\nlogs = client('logs')\nnow = int(time.time() * 1000)\ngroup = {group:?}\n\
         logs.create_log_group(logGroupName=group)\n\
         for stream, lines in [('watcher/watcher/w1', [{launched:?}, {unrelated:?}, {finished:?}]),\n\
                               ('worker/worker/1234abcd', ['starting m-1', 'disk full']),\n\
                               ('worker/worker/99999999', ['not this one'])]:\n\
         \x20   logs.create_log_stream(logGroupName=group, logStreamName=stream)\n\
         \x20   logs.put_log_events(logGroupName=group, logStreamName=stream,\n\
         \x20       logEvents=[{{'timestamp': now + n, 'message': line}} for n, line in enumerate(lines)])\n"
    ));
    let dir = TestDir::new();
    let shown = watchbot(&dir).moto(moto).args(["logs", "m-1", "--log-group", &group]).success().stdout();
    assert!(shown.starts_with(&format!("message m-1: 1 task(s) in log group {group}\n")), "{shown}");
    assert!(shown.contains(&format!("attempt 1: task {task}\n")), "{shown}");
    assert!(shown.contains("  failed (receive 1), exit code 1: Essential container in task exited\n"), "{shown}");
    assert!(shown.contains("  stream worker/worker/1234abcd\n  output:\n  | starting m-1\n  | disk full\n"), "{shown}");
    assert!(!shown.contains("not this one"), "{shown}");

    let unknown = watchbot(&dir).moto(moto).args(["logs", "m-404", "--log-group", &group]).fails_with(1);
    assert!(unknown.stderr().contains("no task was started for message m-404"), "{unknown}");
    let missing = watchbot(&dir).moto(moto).args(["logs", "m-1", "--log-group", "no-such-group"]).fails_with(69);
    assert!(missing.stderr().contains("log group no-such-group"), "{missing}");
    assert_eq!(missing.stderr().lines().count(), 1, "{missing}");
    let no_stack = watchbot(&dir).moto(moto).args(["logs", "m-1", "--stack", "no-such-stack"]).fails_with(69);
    assert!(no_stack.stderr().contains("no-such-stack"), "{no_stack}");
    assert_eq!(no_stack.stderr().lines().count(), 1, "{no_stack}");
    let both = watchbot(&dir).args(["logs", "m-1", "--state", ".", "--log-group", "g"]).fails_with(2);
    assert!(both.stderr().contains("cannot be used with"), "{both}");
}
