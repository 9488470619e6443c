//! End-to-end tests of `watchbot local`: the example worker to completion with its expected summary, crash safety
//! (kill -9 mid-run, restart: nothing lost, counts reconcile), two watchers sharing one state folder, bad input.

use crate::util::{output, stderr, stdout, watchbot, workspace_path};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, QueueCounts};
use watchbot_watcher::ports::OutgoingMessage;

/// The numbers of the `summary:` line.
fn summary(stdout: &str) -> BTreeMap<String, u64> {
    let line = stdout.lines().find(|l| l.starts_with("summary: ")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    line["summary: ".len()..]
        .split(", ")
        .map(|part| {
            let (name, n) = part.rsplit_once(' ').unwrap();
            (name.to_string(), n.parse().unwrap())
        })
        .collect()
}

fn counts(state: &Path) -> QueueCounts {
    LocalQueue::open(state, LocalQueueConfig::default()).unwrap().counts().unwrap()
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn messages_file(dir: &Path, bodies: impl IntoIterator<Item = String>) -> std::path::PathBuf {
    let path = dir.join("messages.jsonl");
    let lines: Vec<String> = bodies.into_iter().map(|b| serde_json::json!({ "message": b }).to_string()).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn the_example_runs_to_completion_with_its_expected_summary() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".watchbot");
    let out = output(
        watchbot()
            .current_dir(workspace_path(""))
            .args(["local", "--state"])
            .arg(&state)
            .args(["--workers", "4", "--messages", "examples/messages.jsonl", "--until-empty", "--"])
            .arg("examples/worker.sh"),
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{text}\nstderr:\n{err}");
    // map + 4 parts + reduce + reject + retry twice + flaky twice.
    let expected = BTreeMap::from(
        [
            ("received", 11),
            ("succeeded", 8),
            ("rejected", 1),
            ("returned", 1),
            ("failed", 1),
            ("dead-lettered", 0),
            ("notifications", 2),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    assert_eq!(summary(&text), expected, "stdout:\n{text}\nstderr:\n{err}");
    assert_eq!(text.matches("reduce job-1: all parts done").count(), 1, "{text}");
    assert_eq!(text.matches(": working").count(), 4, "{text}");
    let notifications = lines(&state.join("notifications.jsonl"));
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    assert_eq!(counts(&state), QueueCounts::default());
}

#[test]
fn the_example_sends_a_reduce_on_replays_only_when_none_was_recorded() {
    // Two finished jobs whose part messages come again (at-least-once delivery): job-a's finishing run crashed
    // before its reduce was sent (never recorded), job-b's reduce was sent and recorded.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let table = state.join("progress.sqlite");
    for args in [
        &["set-total", "job-a", "-t", "1"][..],
        &["complete-part", "job-a", "-p", "1"],
        &["set-total", "job-b", "-t", "1"],
        &["complete-part", "job-b", "-p", "1"],
        &["reduce-sent", "job-b"],
    ] {
        let out = output(watchbot().arg("progress").args(args).arg("--table").arg(&table));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let messages = dir.path().join("messages.jsonl");
    let lines =
        ["job-a 1", "job-b 1", "job-a 1"].map(|m| serde_json::json!({"subject": "part", "message": m}).to_string());
    std::fs::write(&messages, lines.join("\n")).unwrap();
    let out = output(
        watchbot()
            .args(["local", "--state"])
            .arg(&state)
            .args(["--workers", "1", "--until-empty", "--messages"])
            .arg(&messages)
            .arg("--")
            .arg(workspace_path("examples/worker.sh")),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert_eq!(text.matches("reduce job-a: all parts done").count(), 1, "the lost reduce is sent once: {text}");
    assert_eq!(text.matches("reduce job-b").count(), 0, "a recorded reduce is not sent again: {text}");
    assert_eq!(summary(&text)["succeeded"], 4, "3 part replays and 1 reduce: {text}");
}

#[test]
fn kill_9_mid_run_loses_nothing_and_counts_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let record = dir.path().join("record.txt");
    let worker = script(dir.path(), "worker.sh", "echo \"$Message\" >> \"$RECORD\"\nsleep 0.3");
    let total = 30;
    let messages = messages_file(dir.path(), (1..=total).map(|n| format!("m{n}")));

    let local = |command: &mut Command| {
        command
            .args(["local", "--state"])
            .arg(&state)
            .args(["--workers", "4", "--heartbeat-window", "3", "--until-empty", "--"])
            .arg(&worker)
            .env("RECORD", &record);
    };
    let mut first = watchbot();
    first
        .args(["local", "--state"])
        .arg(&state)
        .args(["--workers", "4", "--heartbeat-window", "3", "--until-empty", "--messages"])
        .arg(&messages)
        .arg("--")
        .arg(&worker)
        .env("RECORD", &record)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut running = first.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&record).len() < 8 {
        assert!(Instant::now() < deadline, "the first run made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill().unwrap(); // SIGKILL
    running.wait().unwrap();
    let done_before = lines(&record).len();
    assert!(done_before < total, "killed too late to test anything");

    let left = counts(&state);
    assert_eq!(left.dead_lettered, 0);
    let remaining = left.visible + left.in_flight;
    assert!(remaining > 0 && remaining <= total as u64, "{left:?}");

    let mut second = watchbot();
    local(&mut second);
    let out = output(&mut second);
    assert!(out.status.success(), "{}", stderr(&out));
    let numbers = summary(&stdout(&out));
    // Every message left at the crash (held ones come back within one heartbeat window) ran again and was deleted.
    assert_eq!(numbers["received"], remaining, "{}", stdout(&out));
    assert_eq!(numbers["succeeded"], remaining);
    assert_eq!(numbers["failed"] + numbers["returned"] + numbers["dead-lettered"], 0);
    assert_eq!(counts(&state), QueueCounts::default(), "nothing left, nothing dead-lettered");

    // Workers die with the killed watcher (see workers_of_a_watcher_killed_with_kill_9_die_with_it): every message
    // ran at least once.
    let record = lines(&record);
    let seen: std::collections::BTreeSet<&String> = record.iter().collect();
    assert_eq!(seen.len(), total, "every message processed at least once");
    // Runs beyond one per message are only those the crash interrupted (at most the 4 held at the time).
    let duplicates = record.len() - total;
    assert!(duplicates <= 4 + 4, "{duplicates} duplicates");
}

#[test]
fn two_watchers_share_the_work_without_running_a_message_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let record = dir.path().join("record.txt");
    // Tasks outlive the heartbeat window (3 s): only the heartbeat keeps their messages from the other watcher.
    let worker = script(dir.path(), "worker.sh", "echo \"$Message $PPID\" >> \"$RECORD\"\nsleep 4");
    let total = 6;
    // Enqueued straight into the state folder, as `watchbot send --local` would.
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let bodies = (1..=total).map(|n| OutgoingMessage { body: format!("m{n}"), ..OutgoingMessage::default() });
    queue.send_all(bodies.collect()).unwrap();
    let spawn = || {
        watchbot()
            .args(["local", "--state"])
            .arg(&state)
            .args(["--workers", "2", "--heartbeat-window", "3", "--until-empty", "--"])
            .arg(&worker)
            .env("RECORD", &record)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", stderr(&a), stderr(&b));
    let (sa, sb) = (summary(&stdout(&a)), summary(&stdout(&b)));
    assert!(sa["received"] > 0 && sb["received"] > 0, "both watchers worked: {sa:?} {sb:?}");
    assert_eq!(sa["received"] + sb["received"], total as u64, "{sa:?} {sb:?}");
    let record = lines(&record);
    assert_eq!(record.len(), total, "each message ran exactly once: {record:?}");
    assert_eq!(counts(&state), QueueCounts::default());
}

#[test]
fn a_bad_messages_line_is_named_and_nothing_is_enqueued() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("m.jsonl");
    std::fs::write(&file, "{\"message\": \"fine\"}\n{\"message\": \"fine too\"}\nnot json\n").unwrap();
    let out = output(watchbot().args(["local", "--state"]).arg(&state).arg("--messages").arg(&file).args([
        "--until-empty",
        "--",
        "true",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.trim().lines().count() == 1, "{err}");
    assert_eq!(counts(&state), QueueCounts::default());

    let out =
        output(watchbot().args(["local", "--state"]).arg(&state).args(["--until-empty", "--", "no-such-worker-xyz"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-worker-xyz"), "{}", stderr(&out));
}

#[test]
fn a_bad_worker_command_enqueues_nothing_from_messages() {
    // Otherwise the corrected re-run would find every message queued twice.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let messages = messages_file(dir.path(), ["one".to_string(), "two".to_string()]);
    for worker in ["no-such-worker-xyz", "./no/such/worker.sh"] {
        let out = output(watchbot().args(["local", "--state"]).arg(&state).arg("--messages").arg(&messages).args([
            "--until-empty",
            "--",
            worker,
        ]));
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(worker) && err.trim().lines().count() == 1, "{err}");
        assert_eq!(counts(&state), QueueCounts::default(), "nothing enqueued with {worker:?}");
    }
}

#[test]
fn the_summary_counts_this_watchers_redrives_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Its own: a message that fails once with one receive allowed moves on its next receive.
    let messages = messages_file(dir.path(), ["poison".to_string()]);
    let out = output(
        watchbot()
            .args(["local", "--state"])
            .arg(&state)
            .args(["--max-receive-count", "1", "--no-backoff", "--until-empty", "--messages"])
            .arg(&messages)
            .args(["--", "false"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let numbers = summary(&stdout(&out));
    assert_eq!((numbers["received"], numbers["failed"], numbers["dead-lettered"]), (1, 1, 1), "{}", stdout(&out));

    // Another watcher's (simulated by a dead letter added while this one runs): not counted here.
    let record = dir.path().join("record.txt");
    let worker = script(dir.path(), "worker.sh", "echo \"$Message\" >> \"$RECORD\"");
    let child = watchbot()
        .args(["local", "--state"])
        .arg(&state)
        .arg("--")
        .arg(&worker)
        .env("RECORD", &record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    queue.send_all(vec![OutgoingMessage { body: "ping".into(), ..OutgoingMessage::default() }]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&record).is_empty() {
        assert!(Instant::now() < deadline, "the watcher never ran the message");
        std::thread::sleep(Duration::from_millis(20));
    }
    queue.dead_letter_queue().send_all(vec![OutgoingMessage { body: "theirs".into(), ..Default::default() }]).unwrap();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let numbers = summary(&stdout(&out));
    assert_eq!((numbers["received"], numbers["dead-lettered"]), (1, 0), "{}", stdout(&out));
    assert_eq!(counts(&state).dead_lettered, 2, "both dead letters are in the queue");
}

#[test]
fn sigterm_stops_gracefully_and_returns_the_running_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let record = dir.path().join("record.txt");
    let worker = script(dir.path(), "worker.sh", "echo \"$Message\" >> \"$RECORD\"\nsleep 60");
    let messages = messages_file(dir.path(), ["long".to_string()]);
    let child = watchbot()
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--"])
        .arg(&worker)
        .env("RECORD", &record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&record).is_empty() {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(20), "the 60 s task was stopped, not waited for");
    let numbers = summary(&stdout(&out));
    assert_eq!(numbers["received"], 1, "{}", stdout(&out));
    assert_eq!(numbers["succeeded"], 0);
    // Returned unfinished, never deleted: visible again at once.
    assert_eq!(counts(&state), QueueCounts { visible: 1, ..QueueCounts::default() });
}

#[test]
fn a_message_too_large_for_a_child_environment_is_dead_lettered_without_running() {
    // Linux refuses an environment string over 128 KiB (E2BIG): such a message could never start, so it goes to
    // the dead-letter queue with a notification instead of failing on every receive.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ran = dir.path().join("ran");
    let worker = script(dir.path(), "worker.sh", &format!("echo \"${{#Message}}\" >> {}", ran.display()));
    let messages = messages_file(dir.path(), ["x".repeat(200 * 1024), "small".to_string()]);
    let out = output(
        watchbot()
            .args(["local", "--state"])
            .arg(&state)
            .arg("--messages")
            .arg(&messages)
            .args(["--until-empty", "--"])
            .arg(&worker),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = summary(&stdout(&out));
    assert_eq!(summary["succeeded"], 1, "{summary:?}");
    assert_eq!(summary["dead-lettered"], 1, "{summary:?}");
    assert_eq!(lines(&ran), ["5"], "only the small message ran");
    assert_eq!(counts(&state).dead_lettered, 1);
    let notifications = lines(&state.join("notifications.jsonl"));
    assert_eq!(notifications.len(), 1, "{notifications:?}");
}

#[test]
fn workers_of_a_watcher_killed_with_kill_9_die_with_it() {
    // An orphaned worker would keep running unheld while its message reappears and runs again beside it.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pids = dir.path().join("pids");
    let finished = dir.path().join("finished");
    let worker = script(
        dir.path(),
        "worker.sh",
        &format!("echo $$ >> {}\nsleep 20\necho \"$Message\" >> {}", pids.display(), finished.display()),
    );
    let messages = messages_file(dir.path(), ["a".to_string(), "b".to_string()]);
    let mut watcher = watchbot()
        .args(["local", "--state"])
        .arg(&state)
        .args(["--workers", "2", "--messages"])
        .arg(&messages)
        .arg("--")
        .arg(&worker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&pids).len() < 2 {
        assert!(Instant::now() < deadline, "the workers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    watcher.kill().unwrap(); // SIGKILL: no chance to stop its tasks
    watcher.wait().unwrap();

    let alive = |pid: &String| {
        // Gone, or a zombie waiting for its new parent to reap it, both count as dead.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&pids).iter().any(alive) {
        assert!(Instant::now() < deadline, "workers still running after the watcher died: {:?}", lines(&pids));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lines(&finished).is_empty(), "no worker finished its job after the watcher died");
}

#[test]
fn the_readmes_first_command_runs_the_example_to_its_documented_summary() {
    // The newcomer's first command, exactly as the README gives it (`cargo run` included: a package with several
    // binaries needs `default-run`), run from the workspace root.
    let readme = std::fs::read_to_string(workspace_path("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).expect("README has a sh block");
    let first = block.lines().next().unwrap();
    assert!(first.starts_with("cargo run") && first.contains(" local "), "first command: {first}");
    let documented = readme.lines().find(|l| l.starts_with("summary: ")).expect("README shows the summary");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let command = first.replacen("cargo", &format!("'{cargo}'"), 1);
    let out = output(Command::new("sh").arg("-c").arg(&command).current_dir(workspace_path("")));
    assert!(out.status.success(), "{command}: {}", stderr(&out));
    assert_eq!(stdout(&out).lines().find(|l| l.starts_with("summary: ")), Some(documented), "{}", stdout(&out));
}
