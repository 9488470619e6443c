//! End-to-end tests of `watchbot local`: the example worker to completion with its expected summary, crash safety
//! (kill -9 mid-run, restart: nothing lost, counts reconcile), two watchers sharing one state folder, bad input.

use crate::util::{TestCommand, TestDir, counts, lines, summary, watchbot, workspace_path};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, QueueCounts};
use watchbot_watcher::ports::OutgoingMessage;

fn messages_file(dir: &TestDir, bodies: impl IntoIterator<Item = String>) -> std::path::PathBuf {
    let lines: Vec<String> = bodies.into_iter().map(|b| serde_json::json!({ "message": b }).to_string()).collect();
    dir.write("messages.jsonl", lines.join("\n"))
}

#[test]
fn the_example_runs_to_completion_with_its_expected_summary() {
    let dir = TestDir::new();
    let state = dir.join(".watchbot");
    let out = watchbot(&dir)
        .current_dir(workspace_path(""))
        .args(["local", "--state"])
        .arg(&state)
        .args(["--workers", "4", "--messages", "examples/messages.jsonl", "--until-empty", "--"])
        .arg("examples/worker.sh")
        .success();
    let text = out.stdout();
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
    assert_eq!(summary(&text), expected, "{out}");
    assert_eq!(text.matches("reduce job-1: all parts done").count(), 1, "{out}");
    assert_eq!(text.matches(": working").count(), 4, "{out}");
    let notifications = lines(&state.join("notifications.jsonl"));
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    assert_eq!(counts(&state), QueueCounts::default());
}

#[test]
fn the_example_sends_a_reduce_on_replays_only_when_none_was_recorded() {
    // Two finished jobs whose part messages come again (at-least-once delivery): job-a's finishing run crashed
    // before its reduce was sent (never recorded), job-b's reduce was sent and recorded.
    let dir = TestDir::new();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let table = state.join("progress.sqlite");
    for args in [
        &["set-total", "job-a", "-t", "1"][..],
        &["complete-part", "job-a", "-p", "1"],
        &["set-total", "job-b", "-t", "1"],
        &["complete-part", "job-b", "-p", "1"],
        &["reduce-sent", "job-b"],
    ] {
        watchbot(&dir).arg("progress").args(args).arg("--table").arg(&table).success();
    }
    let lines =
        ["job-a 1", "job-b 1", "job-a 1"].map(|m| serde_json::json!({"subject": "part", "message": m}).to_string());
    let messages = dir.write("messages.jsonl", lines.join("\n"));
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .args(["--workers", "1", "--until-empty", "--messages"])
        .arg(&messages)
        .arg("--")
        .arg(workspace_path("examples/worker.sh"))
        .success();
    let text = out.stdout();
    assert_eq!(text.matches("reduce job-a: all parts done").count(), 1, "the lost reduce is sent once:\n{out}");
    assert_eq!(text.matches("reduce job-b").count(), 0, "a recorded reduce is not sent again:\n{out}");
    assert_eq!(summary(&text)["succeeded"], 4, "3 part replays and 1 reduce:\n{out}");
}

#[test]
fn kill_9_mid_run_loses_nothing_and_counts_reconcile() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let record = dir.join("record.txt");
    let worker = dir.script("worker.sh", "echo \"$Message\" >> \"$RECORD\"\nsleep 0.3");
    let total = 30;
    let workers = 4;
    let messages = messages_file(&dir, (1..=total).map(|n| format!("m{n}")));

    let local = |messages: Option<&Path>| {
        let mut command = watchbot(&dir);
        command.args(["local", "--state"]).arg(&state).args(["--workers", &workers.to_string()]);
        command.args(["--heartbeat-window", "3", "--until-empty"]);
        if let Some(messages) = messages {
            command.arg("--messages").arg(messages);
        }
        command.arg("--").arg(&worker).env("RECORD", &record);
        command
    };
    let mut first = local(Some(&messages)).spawn();
    first.wait_for("the first run to record 8 messages", || lines(&record).len() >= 8);
    first.kill(); // SIGKILL
    let done_before = lines(&record).len();
    assert!(done_before < total, "killed too late to test anything");

    let left = counts(&state);
    assert_eq!(left.dead_lettered, 0);
    let remaining = left.visible + left.in_flight;
    assert!(remaining > 0 && remaining <= total as u64, "{left:?}");

    let out = local(None).success();
    let numbers = summary(&out.stdout());
    // Every message left at the crash (held ones come back within one heartbeat window) ran again and was deleted.
    assert_eq!(numbers["received"], remaining, "{out}");
    assert_eq!(numbers["succeeded"], remaining, "{out}");
    assert_eq!(numbers["failed"] + numbers["returned"] + numbers["dead-lettered"], 0, "{out}");
    assert_eq!(counts(&state), QueueCounts::default(), "nothing left, nothing dead-lettered");

    // Workers die with the killed watcher (see workers_of_a_watcher_killed_with_kill_9_die_with_it): every message
    // ran at least once.
    let record = lines(&record);
    let seen: std::collections::BTreeSet<&String> = record.iter().collect();
    assert_eq!(seen.len(), total, "every message processed at least once");
    // Runs beyond one per message are only those the crash interrupted: a finished message is deleted before its
    // slot takes another, so at most the `workers` running at the time.
    let duplicates = record.len() - total;
    assert!(duplicates <= workers, "{duplicates} duplicates with {workers} workers: {record:?}");
}

#[test]
fn two_watchers_share_the_work_without_running_a_message_twice() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let record = dir.join("record.txt");
    let release = dir.join("release");
    // A task records its start, then runs until the test releases it (exit 1 after a minute: a failure, not a hang).
    let worker = dir.script(
        "worker.sh",
        &format!(
            "echo \"$Message $PPID\" >> \"$RECORD\"\n\
             for _ in $(seq 600); do [ -e {} ] && exit 0; sleep 0.1; done\nexit 1",
            release.display()
        ),
    );
    let total = 6;
    // Enqueued straight into the state folder, as `watchbot send --local` would.
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let bodies = (1..=total).map(|n| OutgoingMessage { body: format!("m{n}"), ..OutgoingMessage::default() });
    queue.send_all(bodies.collect()).unwrap();
    let window = Duration::from_secs(3);
    let spawn = || {
        watchbot(&dir)
            .args(["local", "--state"])
            .arg(&state)
            .args(["--workers", "2", "--heartbeat-window", &window.as_secs().to_string(), "--until-empty", "--"])
            .arg(&worker)
            .env("RECORD", &record)
            .spawn()
    };
    let (mut a, mut b) = (spawn(), spawn());
    a.wait_for("four tasks running (both watchers' slots full)", || lines(&record).len() >= 4);
    // The four run past their first hold (a heartbeat window from their receive), so only the heartbeat keeps them
    // from the other watcher; checked at every look, not once at the end.
    let running_since = Instant::now();
    b.wait_for("the first four tasks to outlive the heartbeat window, still held", || {
        let record = lines(&record);
        assert_eq!(record.len(), 4, "only the first four ran, each once: {record:?}");
        let now = counts(&state);
        assert!(now.in_flight >= 4 && now.visible <= 2, "the four running messages are held: {now:?}");
        running_since.elapsed() > window + Duration::from_millis(500)
    });
    std::fs::write(&release, "").unwrap();
    let (a, b) = (a.wait().assert_success(), b.wait().assert_success());
    let (sa, sb) = (summary(&a.stdout()), summary(&b.stdout()));
    assert!(sa["received"] > 0 && sb["received"] > 0, "both watchers worked:\n{a}\n{b}");
    assert_eq!(sa["received"] + sb["received"], total as u64, "{a}\n{b}");
    let record = lines(&record);
    assert_eq!(record.len(), total, "each message ran exactly once: {record:?}");
    assert_eq!(counts(&state), QueueCounts::default());
}

#[test]
fn a_bad_messages_line_is_named_and_nothing_is_enqueued() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let file = dir.write("m.jsonl", "{\"message\": \"fine\"}\n{\"message\": \"fine too\"}\nnot json\n");
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&file)
        .args(["--until-empty", "--", "true"])
        .fails_with(1);
    let err = out.stderr();
    assert!(err.contains("line 3") && err.trim().lines().count() == 1, "{out}");
    assert_eq!(counts(&state), QueueCounts::default());

    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .args(["--until-empty", "--", "no-such-worker-xyz"])
        .fails_with(1);
    assert!(out.stderr().contains("no-such-worker-xyz"), "{out}");
}

#[test]
fn a_bad_worker_command_enqueues_nothing_from_messages() {
    // Otherwise the corrected re-run would find every message queued twice.
    let dir = TestDir::new();
    let state = dir.join("state");
    let messages = messages_file(&dir, ["one".to_string(), "two".to_string()]);
    for worker in ["no-such-worker-xyz", "./no/such/worker.sh"] {
        let out = watchbot(&dir)
            .args(["local", "--state"])
            .arg(&state)
            .arg("--messages")
            .arg(&messages)
            .args(["--until-empty", "--", worker])
            .fails_with(1);
        let err = out.stderr();
        assert!(err.contains(worker) && err.trim().lines().count() == 1, "{out}");
        assert_eq!(counts(&state), QueueCounts::default(), "nothing enqueued with {worker:?}");
    }
}

/// A script whose `#!` interpreter is missing exists: the error names the interpreter, not "No such file", and comes
/// before anything is enqueued, in `watchbot local` and in `watchbot watch --runner process` alike.
#[test]
fn a_worker_whose_interpreter_is_missing_is_refused_before_receiving() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let worker = dir.write("worker.sh", "#!/usr/bin/no-such-interpreter\necho hi\n");
    std::fs::set_permissions(&worker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let messages = messages_file(&dir, ["one".to_string()]);
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--", "./worker.sh"])
        .fails_with(1);
    assert_eq!(
        out.stderr().trim(),
        "watchbot: worker command \"./worker.sh\": the interpreter on its first line (#!/usr/bin/no-such-interpreter) \
         is missing or not executable",
        "{out}"
    );
    assert_eq!(counts(&state), QueueCounts::default());
    let out = watchbot(&dir)
        .args(["watch", "--runner", "process", "--queue-url", "https://sqs.us-east-1.amazonaws.com/123456789012/q"])
        .args(["--", "./worker.sh"])
        .fails_with(1);
    assert!(out.stderr().contains("(#!/usr/bin/no-such-interpreter) is missing"), "{out}");
}

/// A NUL byte in a `--messages` line (SQS refuses such a body) is refused with the line, before anything is queued.
#[test]
fn a_messages_line_that_sqs_would_refuse_is_refused_locally() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let file = dir.write("m.jsonl", "{\"message\": \"fine\"}\n{\"message\": \"nul \\u0000 here\"}\n");
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&file)
        .args(["--until-empty", "--", "true"])
        .fails_with(1);
    assert!(out.stderr().contains("m.jsonl line 2: the message has the character U+0000"), "{out}");
    assert_eq!(counts(&state), QueueCounts::default());
}

#[test]
fn the_summary_counts_this_watchers_redrives_only() {
    let dir = TestDir::new();
    let state = dir.join("state");
    // Its own: a message that fails once with one receive allowed moves on its next receive.
    let messages = messages_file(&dir, ["poison".to_string()]);
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .args(["--max-receive-count", "1", "--no-backoff", "--until-empty", "--messages"])
        .arg(&messages)
        .args(["--", "false"])
        .success();
    let numbers = summary(&out.stdout());
    assert_eq!((numbers["received"], numbers["failed"], numbers["dead-lettered"]), (1, 1, 1), "{out}");

    // Another watcher's (simulated by a dead letter added while this one runs): not counted here.
    let record = dir.join("record.txt");
    let worker = dir.script("worker.sh", "echo \"$Message\" >> \"$RECORD\"");
    let mut child =
        watchbot(&dir).args(["local", "--state"]).arg(&state).arg("--").arg(&worker).env("RECORD", &record).spawn();
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    queue.send_all(vec![OutgoingMessage { body: "ping".into(), ..OutgoingMessage::default() }]).unwrap();
    child.wait_for("the watcher to run the message", || !lines(&record).is_empty());
    queue.dead_letter_queue().send_all(vec![OutgoingMessage { body: "theirs".into(), ..Default::default() }]).unwrap();
    child.terminate();
    let out = child.wait().assert_success();
    let numbers = summary(&out.stdout());
    assert_eq!((numbers["received"], numbers["dead-lettered"]), (1, 0), "{out}");
    assert_eq!(counts(&state).dead_lettered, 2, "both dead letters are in the queue");
}

#[test]
fn sigterm_stops_gracefully_and_returns_the_running_message() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let record = dir.join("record.txt");
    let worker = dir.script("worker.sh", "echo \"$Message\" >> \"$RECORD\"\nsleep 60");
    let messages = messages_file(&dir, ["long".to_string()]);
    // The 60 s task is stopped, not waited for: the watcher must be gone well before it would have ended.
    let mut child = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--"])
        .arg(&worker)
        .env("RECORD", &record)
        .deadline(Duration::from_secs(20))
        .spawn();
    child.wait_for("the task to start", || !lines(&record).is_empty());
    child.terminate();
    let out = child.wait().assert_success();
    let numbers = summary(&out.stdout());
    assert_eq!(numbers["received"], 1, "{out}");
    assert_eq!(numbers["succeeded"], 0, "{out}");
    // Returned unfinished, never deleted: visible again at once.
    assert_eq!(counts(&state), QueueCounts { visible: 1, ..QueueCounts::default() });
}

#[test]
fn a_message_too_large_for_a_child_environment_is_dead_lettered_without_running() {
    // Linux refuses an environment string over 128 KiB (E2BIG): such a message could never start, so it goes to
    // the dead-letter queue with a notification instead of failing on every receive.
    let dir = TestDir::new();
    let state = dir.join("state");
    let ran = dir.join("ran");
    let worker = dir.script("worker.sh", &format!("echo \"${{#Message}}\" >> {}", ran.display()));
    let messages = messages_file(&dir, ["x".repeat(200 * 1024), "small".to_string()]);
    let out = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--"])
        .arg(&worker)
        .success();
    let summary = summary(&out.stdout());
    assert_eq!(summary["succeeded"], 1, "{out}");
    assert_eq!(summary["dead-lettered"], 1, "{out}");
    assert_eq!(lines(&ran), ["5"], "only the small message ran");
    assert_eq!(counts(&state).dead_lettered, 1);
    let notifications = lines(&state.join("notifications.jsonl"));
    assert_eq!(notifications.len(), 1, "{notifications:?}");
}

/// `--stack-name` names the stack in notifications, as a deployed stack's name does.
#[test]
fn the_stack_name_is_the_notifications_subject() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let messages = messages_file(&dir, ["m".to_string()]);
    watchbot(&dir)
        .args(["local", "--stack-name", "tiles-dev", "--max-receive-count", "1", "--no-backoff", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--", "false"])
        .success();
    let notifications = lines(&state.join("notifications.jsonl"));
    let first: serde_json::Value = serde_json::from_str(&notifications[0]).unwrap();
    let subject = first["subject"].as_str().unwrap();
    assert!(subject.starts_with("tiles-dev failed processing message"), "{subject}");
}

#[test]
fn workers_of_a_watcher_killed_with_kill_9_die_with_it() {
    // An orphaned worker would keep running unheld while its message reappears and runs again beside it.
    let dir = TestDir::new();
    let state = dir.join("state");
    let pids = dir.join("pids");
    let finished = dir.join("finished");
    let worker = dir.script(
        "worker.sh",
        &format!("echo $$ >> {}\nsleep 20\necho \"$Message\" >> {}", pids.display(), finished.display()),
    );
    let messages = messages_file(&dir, ["a".to_string(), "b".to_string()]);
    let mut watcher = watchbot(&dir)
        .args(["local", "--state"])
        .arg(&state)
        .args(["--workers", "2", "--messages"])
        .arg(&messages)
        .arg("--")
        .arg(&worker)
        .spawn();
    watcher.wait_for("both workers to start", || lines(&pids).len() >= 2);
    watcher.kill(); // SIGKILL: no chance to stop its tasks

    let alive = |pid: &String| {
        // Gone, or a zombie waiting for its new parent to reap it, both count as dead.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
    };
    crate::util::wait_for(
        format_args!("the workers {:?} to die with the watcher", lines(&pids)),
        Duration::from_secs(10),
        || !lines(&pids).iter().any(alive),
    );
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
    // `cargo run` may have to build the binary first: minutes on a loaded machine, not seconds.
    let out = TestCommand::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(workspace_path(""))
        .deadline(Duration::from_secs(600))
        .success();
    assert_eq!(out.stdout().lines().find(|l| l.starts_with("summary: ")), Some(documented), "{out}");
}

/// `--until-empty` waiting on a backoff delay says which message it waits for and until when, instead of waiting in
/// silence (a worker that always fails runs for minutes at 2^n-second delays).
#[test]
fn until_empty_says_what_it_waits_for_during_a_backoff() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let messages = messages_file(&dir, ["m".to_string()]);
    let out = watchbot(&dir)
        .args(["local", "--max-receive-count", "2", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&messages)
        .args(["--until-empty", "--", "false"])
        .success();
    let err = out.stderr();
    let line = err
        .lines()
        .find(|l| l.starts_with("watchbot local: --until-empty: waiting out the backoff of 1 message(s), retried "))
        .unwrap_or_else(|| panic!("no waiting line: {out}"));
    assert!(line.contains("(receive 1) at 20"), "{line}");
    assert!(line.contains("; the last at 20"), "{line}");
    assert_eq!(summary(&out.stdout())["dead-lettered"], 1, "{out}");
}

/// Runs a command on a pseudo-terminal (Python's `pty`, from the test Python) and returns all it wrote there.
fn on_a_terminal(dir: &TestDir, args: &[&std::ffi::OsStr]) -> String {
    const PTY: &str = "import os, subprocess, sys\n\
        master, slave = os.openpty()\n\
        child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)\n\
        os.close(slave)\n\
        out = b''\n\
        while True:\n\
        \x20   try:\n\
        \x20       chunk = os.read(master, 65536)\n\
        \x20   except OSError:\n\
        \x20       break\n\
        \x20   if not chunk:\n\
        \x20       break\n\
        \x20   out += chunk\n\
        sys.stdout.buffer.write(out)\n\
        sys.exit(child.wait())\n";
    let python = std::env::var("WATCHBOT_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut command = TestCommand::new(python);
    command.current_dir(dir.path()).args(["-c", PTY]).arg(env!("CARGO_BIN_EXE_watchbot")).args(args);
    command.success().stdout()
}

#[test]
fn the_live_line_is_cleared_before_worker_output_and_redrawn_after() {
    let dir = TestDir::new();
    let worker = dir.script("worker.sh", "#!/bin/sh\necho first line\nsleep 1\necho second line\n");
    let messages = dir.write("m.jsonl", "{\"message\": \"a\"}\n");
    let args: Vec<&std::ffi::OsStr> = ["local", "--until-empty", "--state", "state", "--messages"]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([messages.as_os_str(), std::ffi::OsStr::new("--"), worker.as_os_str()])
        .collect();
    let screen = on_a_terminal(&dir, &args);
    const CLEAR: &str = "\r\x1b[2K";
    assert!(screen.contains("watchbot local: running"), "no live line: {screen:?}");
    let mut worker_lines = 0;
    for line in screen.split('\n') {
        if !line.contains("[worker]") {
            continue;
        }
        worker_lines += 1;
        // What the terminal shows of this line: what follows the last clear.
        let shown = line.rsplit(CLEAR).next().unwrap_or(line);
        assert!(shown.starts_with('['), "the live line and worker output share a line: {line:?}");
    }
    assert_eq!(worker_lines, 2, "{screen:?}");
    // The live line came back after the worker's lines, and is cleared at the end before the summary.
    let second = screen.find("second line").unwrap();
    assert!(screen[second..].contains("watchbot local: running"), "{screen:?}");
    assert!(screen.contains(&format!("{CLEAR}summary: ")) || screen.contains("\nsummary: "), "{screen:?}");
}

/// While a failed message waits out its backoff, the live line says how many wait and when the next retry is due.
#[test]
fn the_live_line_says_when_the_next_retry_is_due() {
    let dir = TestDir::new();
    let messages = dir.write("m.jsonl", "{\"message\": \"a\"}\n");
    let args: Vec<&std::ffi::OsStr> =
        ["local", "--max-receive-count", "2", "--until-empty", "--state", "state", "--messages"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([messages.as_os_str(), std::ffi::OsStr::new("--"), std::ffi::OsStr::new("false")])
            .collect();
    let screen = on_a_terminal(&dir, &args);
    // The first retry comes at least 1 s after the failure, and the line is redrawn twice a second.
    let waiting = screen
        .split("\r\x1b[2K")
        .find(|shown| shown.contains(" | 1 waiting to retry, next "))
        .unwrap_or_else(|| panic!("the live line never showed the retry: {screen:?}"));
    assert!(waiting.contains(" at 20") && waiting.contains(" s)"), "{waiting:?}");
}

/// `--no-notify-each-failure` is the template's `notifyEachFailure: false` locally: an ordinary failure sends no
/// notification, a rejection and the failure that dead-letters a message still do.
#[test]
fn without_notify_each_failure_only_rejections_and_dead_lettering_notify() {
    let run = |quiet: bool| {
        let dir = TestDir::new();
        let state = dir.join("state");
        let worker = dir.script("worker.sh", "#!/bin/sh\n[ \"$Message\" = reject ] && exit 3\nexit 1\n");
        let messages = messages_file(&dir, ["reject".to_string(), "fail".to_string()]);
        let mut command = watchbot(&dir);
        command.args(["local", "--max-receive-count", "2", "--no-backoff", "--until-empty", "--state"]).arg(&state);
        if quiet {
            command.arg("--no-notify-each-failure");
        }
        let out = command.arg("--messages").arg(&messages).arg("--").arg(&worker).success();
        let subjects: Vec<String> = lines(&state.join("notifications.jsonl"))
            .iter()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["subject"].to_string())
            .collect();
        assert_eq!(summary(&out.stdout())["dead-lettered"], 1, "{out}");
        subjects
    };
    // Each failure notifies by default: the rejection, the first failure and the dead-lettering one.
    assert_eq!(run(false).len(), 3, "{:?}", run(false));
    let quiet = run(true);
    assert_eq!(quiet.len(), 2, "{quiet:?}");
}
