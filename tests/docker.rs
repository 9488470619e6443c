//! End-to-end tests of `watchbot local --image` (and `watchbot watch --runner docker`) on the machine's Docker Engine
//! with the test worker image (busybox-static, `watchbot_testing::docker`): the exit code decides, the environment
//! contract and the options file reach the container, output is prefixed and quoted in notifications, a watcher
//! killed with `kill -9` leaves its container to the next one, which adopts it (the message runs once), timeouts and
//! SIGTERM stop containers, none is left behind, and without an Engine nothing is received.

use crate::util::{TestCommand, TestDir, counts, lines, sqs_counts, summary, watchbot};
use std::path::Path;
use std::time::Duration;
use watchbot_testing::docker::{DEFAULT_CMD_LINE, containers_labelled, worker_image, worker_image_with_watchbot};
use watchbot_watcher::local::docker::STACK_LABEL;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, QueueCounts};
use watchbot_watcher::ports::OutgoingMessage;

fn messages(dir: &TestDir, bodies: &[&str]) -> std::path::PathBuf {
    let lines: Vec<String> =
        bodies.iter().map(|b| serde_json::json!({ "subject": "job", "message": b }).to_string()).collect();
    dir.write("messages.jsonl", lines.join("\n"))
}

/// An options file of `watchbot template` with these extra options.
fn options(dir: &TestDir, extra: serde_json::Value) -> std::path::PathBuf {
    let mut options =
        serde_json::json!({"cluster": "c", "service": "worker", "serviceVersion": "v1", "notificationEmail": "a@b.c"});
    options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    dir.write("watchbot.json", options.to_string())
}

/// `watchbot local --image <test worker> --state <state> --stack-name <stack>`, ready for more flags.
fn local(dir: &TestDir, state: &Path, stack: &str) -> TestCommand {
    local_image(dir, state, stack, &worker_image())
}

fn local_image(dir: &TestDir, state: &Path, stack: &str, image: &str) -> TestCommand {
    let mut command = watchbot(dir);
    command.args(["local", "--image", image, "--stack-name", stack, "--state"]).arg(state);
    command.env_remove("DOCKER_HOST").deadline(Duration::from_secs(120));
    command
}

fn assert_none_left(stack: &str) {
    let left = containers_labelled(STACK_LABEL, stack);
    assert!(left.is_empty(), "containers left behind for stack {stack}: {left:?}");
}

fn stack() -> String {
    watchbot_testing::unique_name("docker-e2e")
}

#[test]
fn the_exit_code_of_each_container_decides_and_its_output_is_quoted() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let stack = stack();
    let file = messages(&dir, &["0", "3", "4", "7"]);
    let out = local(&dir, &state, &stack)
        .args(["--no-backoff", "--max-receive-count", "2", "--until-empty", "--messages"])
        .arg(&file)
        .args(["--", "sh", "-c", "echo \"exiting with $Message\"; exit $Message"])
        .success();
    let numbers = summary(&out.stdout());
    // 0 succeeded; 3 rejected; 4 returned quietly, and 7 failed, each on both of its receives.
    let expected = [("received", 6), ("succeeded", 1), ("rejected", 1), ("returned", 2), ("failed", 2)];
    for (name, n) in expected {
        assert_eq!(numbers[name], n, "{name}\n{out}");
    }
    assert_eq!(counts(&state), QueueCounts { dead_lettered: 2, ..QueueCounts::default() }, "{out}");
    // Each line is prefixed with its message id.
    assert!(out.stdout().contains("] [worker] [") && out.stdout().contains("] exiting with 7\n"), "{out}");
    let notifications = lines(&state.join("notifications.jsonl")).join("\n");
    assert!(notifications.contains("exiting with 7"), "the failure's notification quotes its output: {notifications}");
    assert_none_left(&stack);
}

#[test]
fn the_container_gets_the_environment_contract_and_the_options() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stack = stack();
    // The options' command, env and mounts; no command after `--`.
    let config = options(
        &dir,
        serde_json::json!({
            "env": {"Color": "blue"},
            "mounts": format!("{}:/out", out_dir.display()),
            "command": "env > /out/env; ls \"$WorkTopic\" > /out/state; echo \"$Message\"",
            "reservation": {"memory": 64},
        }),
    );
    let file = messages(&dir, &["hello"]);
    let out = local(&dir, &state, &stack)
        .arg("--config")
        .arg(&config)
        .args(["--until-empty", "--messages"])
        .arg(&file)
        .success();
    assert_eq!(summary(&out.stdout())["succeeded"], 1, "{out}");
    let env = std::fs::read_to_string(out_dir.join("env")).unwrap();
    let state = std::fs::canonicalize(&state).unwrap();
    for line in [
        "Message=hello".to_string(),
        "Subject=job".to_string(),
        "ApproximateReceiveCount=1".to_string(),
        "Color=blue".to_string(),
        "LogGroup=local".to_string(),
        format!("WorkTopic={}", state.display()),
        format!("ProgressTable={}", state.join("progress.sqlite").display()),
        // The image's own PATH, not the watcher's.
        "PATH=/bin".to_string(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }
    assert!(env.lines().any(|l| l.starts_with("MessageId=")) && env.contains("SentTimestamp="), "{env}");
    // The state folder is bound at its own path, so `watchbot send --topic "$WorkTopic"` works inside.
    let listing = std::fs::read_to_string(out_dir.join("state")).unwrap();
    assert!(listing.lines().any(|l| l == "queue.sqlite"), "{listing}");
    assert!(out.stdout().contains("] hello\n"), "{out}");
    assert_none_left(&stack);
}

#[test]
fn watchbot_send_and_progress_work_inside_an_image_that_has_the_binary() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let stack = stack();
    let image = worker_image_with_watchbot(Path::new(env!("CARGO_BIN_EXE_watchbot")));
    let script = "if [ \"$Message\" = first ]; then \
                    watchbot send --topic \"$WorkTopic\" --subject next --message second && \
                    watchbot progress set-total job-1 -t 2 && watchbot progress complete-part job-1 -p 1; \
                  else echo \"got $Message\"; fi";
    let file = messages(&dir, &["first"]);
    let out = local_image(&dir, &state, &stack, &image)
        .args(["--until-empty", "--messages"])
        .arg(&file)
        .args(["--", "sh", "-c", script])
        .success();
    let numbers = summary(&out.stdout());
    assert_eq!((numbers["received"], numbers["succeeded"]), (2, 2), "{out}");
    assert!(out.stdout().contains("] got second\n"), "the follow-up sent from inside the container ran: {out}");
    let status = watchbot(&dir)
        .args(["progress", "status", "job-1", "--json", "--table"])
        .arg(state.join("progress.sqlite"))
        .stdout();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["total"], 2, "{status}");
    assert_none_left(&stack);
}

#[test]
fn without_a_command_the_images_own_cmd_runs() {
    let dir = TestDir::new();
    let stack = stack();
    let file = messages(&dir, &["m"]);
    let out = local(&dir, &dir.join("state"), &stack).args(["--until-empty", "--messages"]).arg(&file).success();
    assert!(out.stdout().contains(&format!("] {DEFAULT_CMD_LINE}\n")), "{out}");
    assert_none_left(&stack);
}

#[test]
fn a_watcher_killed_with_kill_9_leaves_its_container_to_the_next_which_adopts_it() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let stack = stack();
    let config = options(&dir, serde_json::json!({"mounts": format!("{}:/work", work.display())}));
    let script = "echo started >> /work/starts; while [ ! -e /work/go ]; do sleep 0.1; done; echo finished";
    let run = |messages: Option<&Path>| {
        let mut command = local(&dir, &state, &stack);
        command.arg("--config").arg(&config).args(["--heartbeat-window", "3", "--until-empty"]);
        if let Some(file) = messages {
            command.arg("--messages").arg(file);
        }
        command.args(["--", "sh", "-c", script]);
        command
    };
    let file = messages(&dir, &["long job"]);
    let mut first = run(Some(&file)).spawn();
    first.wait_for("the container to start", || lines(&work.join("starts")).len() == 1);
    first.kill();
    // The container outlives the watcher (it is the Engine's, not a child).
    assert_eq!(containers_labelled(STACK_LABEL, &stack).len(), 1, "the container still runs");

    let mut second = run(None).spawn();
    // Once the dead watcher's hold lapses the message is received again, and the running container adopted.
    let address = ["--state", state.to_str().unwrap()];
    second.wait_for_every(Duration::from_millis(200), "the message's second receive", || {
        let status = watchbot(&dir).arg("status").args(address).arg("--json").stdout();
        let value: serde_json::Value = serde_json::from_str(&status).unwrap();
        value["in_flight_messages"].as_array().is_some_and(|m| m.iter().any(|m| m["receive_count"] == 2))
    });
    std::fs::write(work.join("go"), "").unwrap();
    let out = second.wait().assert_success();
    let numbers = summary(&out.stdout());
    assert_eq!((numbers["received"], numbers["succeeded"]), (1, 1), "{out}");
    assert!(out.stdout().contains("] finished\n"), "the adopted container's output is forwarded: {out}");
    assert_eq!(lines(&work.join("starts")), vec!["started"], "the message ran once");
    assert_eq!(counts(&state), QueueCounts::default());
    assert_none_left(&stack);
}

#[test]
fn a_timeout_and_sigterm_stop_the_container() {
    let dir = TestDir::new();
    let state = dir.join("state");
    let stack = stack();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let config = options(&dir, serde_json::json!({"mounts": format!("{}:/work", work.display())}));
    let script = "trap 'echo stopping; exit 143' TERM; touch /work/$Message; while :; do sleep 0.1; done";
    let file = messages(&dir, &["timeout"]);
    let out = local(&dir, &state, &stack)
        .arg("--config")
        .arg(&config)
        .args(["--message-timeout", "1", "--max-receive-count", "1", "--until-empty", "--messages"])
        .arg(&file)
        .args(["--", "sh", "-c", script])
        .success();
    assert_eq!(summary(&out.stdout())["failed"], 1, "{out}");
    assert!(out.stdout().contains("] stopping\n"), "SIGTERM reached the container: {out}");
    let notifications = lines(&state.join("notifications.jsonl")).join("\n");
    assert!(notifications.contains("timeout"), "{notifications}");
    assert_none_left(&stack);

    // SIGTERM to the watcher stops its running container and returns the message.
    let file = messages(&dir, &["sigterm"]);
    let mut child = local(&dir, &state, &stack)
        .arg("--config")
        .arg(&config)
        .arg("--messages")
        .arg(&file)
        .args(["--", "sh", "-c", script])
        .spawn();
    child.wait_for("the container to start", || work.join("sigterm").exists());
    child.terminate();
    let out = child.wait().assert_success();
    assert!(out.stdout().contains("] stopping\n"), "{out}");
    let left = counts(&state);
    assert_eq!((left.visible, left.in_flight), (1, 0), "the interrupted message is back: {left:?}");
    assert_none_left(&stack);
}

#[test]
fn without_an_engine_nothing_is_received_or_enqueued() {
    let dir = TestDir::new();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    use watchbot_watcher::ports::Queue;
    runtime.block_on(queue.send(OutgoingMessage { body: "waiting".into(), ..OutgoingMessage::default() })).unwrap();
    let file = messages(&dir, &["not enqueued"]);
    let out = watchbot(&dir)
        .args(["local", "--image", "worker:dev", "--until-empty", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(&file)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .fails_with(69);
    let stderr = out.stderr();
    assert_eq!(stderr.lines().count(), 1, "{out}");
    assert!(stderr.starts_with("watchbot: no Docker Engine answers at unix:///nonexistent/docker.sock: "), "{out}");
    let left = counts(&state);
    assert_eq!((left.visible, left.in_flight), (1, 0), "nothing received, nothing enqueued: {left:?}");

    // `watch --runner docker` checks before its first receive too (the queue URL is never called).
    let out = watchbot(&dir)
        .args(["watch", "--runner", "docker", "--image", "worker:dev", "--queue-url"])
        .arg("https://sqs.us-east-1.amazonaws.com/123456789012/never-called")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .fails_with(69);
    assert!(out.stderr().starts_with("watchbot: no Docker Engine answers at "), "{out}");

    // An image that is not on this machine is bad input, and is never pulled without --pull.
    let out = watchbot(&dir)
        .args(["local", "--image", "watchbot-test-no-such-image:never", "--state"])
        .arg(&state)
        .env_remove("DOCKER_HOST")
        .fails_with(1);
    assert_eq!(
        out.stderr().trim_end(),
        "watchbot: image watchbot-test-no-such-image:never is not on this machine: build or load it there, or give \
         --pull to pull it",
        "{out}"
    );
    assert_eq!(counts(&state).visible, 1);
}

#[test]
fn image_flags_are_checked() {
    let dir = TestDir::new();
    let out = watchbot(&dir)
        .args(["watch", "--runner", "docker", "--queue-url", "https://sqs.us-east-1.amazonaws.com/1/q"])
        .fails_with(1);
    assert_eq!(out.stderr().trim_end(), "watchbot: --runner docker needs --image IMAGE", "{out}");
    let out = watchbot(&dir).args(["watch", "--runner", "process", "--image", "w", "--", "true"]).fails_with(1);
    assert_eq!(out.stderr().trim_end(), "watchbot: --image is only for --runner docker", "{out}");
    // Without --image, `local` still needs its command.
    watchbot(&dir).args(["local", "--config", "x.json"]).fails_with(2);
}

#[test]
fn watch_with_the_docker_runner_runs_each_sqs_message_as_a_container() {
    let moto = watchbot_testing::moto();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = TestDir::new();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let stack = stack();
    let sqs = aws_sdk_sqs::Client::new(&runtime.block_on(moto.sdk_config()));
    let queue_url = runtime.block_on(async {
        let queue = sqs.create_queue().queue_name(watchbot_testing::unique_name("docker")).send().await.expect("queue");
        let url = queue.queue_url().expect("url").to_string();
        for body in ["exit 0", "exit 3"] {
            sqs.send_message().queue_url(&url).message_body(body).send().await.expect("send");
        }
        url
    });
    let config =
        options(&dir, serde_json::json!({"mounts": format!("{}:/out", out.display()), "env": {"Color": "red"}}));
    let script = "echo \"$Message $Color $WorkTopic\" > /out/$MessageId; echo \"ran $Message\"; exit ${Message#exit }";
    let mut child = watchbot(&dir)
        .moto(moto)
        .args(["watch", "--runner", "docker", "--image", &worker_image(), "--config"])
        .arg(&config)
        .args(["--queue-url", &queue_url, "--stack-name", &stack, "--workers", "2", "--", "sh", "-c", script])
        .env("WorkTopic", "arn:aws:sns:us-east-1:123456789012:work")
        .env_remove("DOCKER_HOST")
        .deadline(Duration::from_secs(90))
        .spawn();
    let queue_empty = || sqs_counts(&runtime, &sqs, &queue_url) == (0, 0);
    child.wait_for_every(Duration::from_millis(500), "both messages deleted (exit 0 and 3)", || {
        std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) == 2 && queue_empty()
    });
    child.terminate();
    let finished = child.wait().assert_success();
    let mut seen: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .collect();
    seen.sort();
    let topic = "arn:aws:sns:us-east-1:123456789012:work";
    assert_eq!(seen, vec![format!("exit 0 red {topic}\n"), format!("exit 3 red {topic}\n")], "{finished}");
    // The containers' lines are JSON lines with their message id, as the watcher's own.
    assert!(finished.stdout().contains("\"msg\":\"ran exit 3\""), "{finished}");
    assert_none_left(&stack);
}
