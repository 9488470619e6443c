//! The hold of a long task survives hung heartbeats (issue 14), end to end: two `watchbot watch --runner process
//! --workers 1` share one queue on moto; watcher A talks to it through a [`FaultProxy`] that hangs A's first two
//! `ChangeMessageVisibilityBatch` requests for 25 s each (longer than a renewal attempt may take, inside the SDK's own
//! deadline), watcher B talks to moto directly and polls all along. A's long task outlives the 60 s heartbeat window;
//! if A's renewals stalled behind the hung ones, the hold would lapse at 60 s and B would run the task again.

use crate::util::sqs_counts;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watchbot_testing::proxy::{AfterHang, FaultProxy, Treatment};

/// The renewals of the heartbeat.
const RENEWAL: &str = "AmazonSQS.ChangeMessageVisibilityBatch";
/// How long each hung renewal is held before its connection is dropped.
const HANG: Duration = Duration::from_secs(25);
/// How many renewals hang.
const HUNG: usize = 2;
/// How long the task works: past the 60 s window (`watchbot watch` has no setting for it), with 15 s to spare for
/// the second watcher to receive the message if the hold lapsed.
const TASK_SECS: u64 = 75;

const WORKER: &str = r#"#!/bin/sh
# Records each start and end (message id, receive count); works TASK_SECS seconds in between.
touch "$WORKER_OUT/started-$MessageId-$ApproximateReceiveCount"
sleep "$TASK_SECS"
touch "$WORKER_OUT/done-$MessageId-$ApproximateReceiveCount"
"#;

/// A running `watchbot watch`, stopped (SIGKILL) if the test ends without stopping it.
struct Watcher {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn start(name: &'static str, dir: &Path, queue_url: &str, endpoint: &str) -> Watcher {
        let log = dir.join(format!("{name}.log"));
        // A raw `Command`: its stderr goes to a file the test reads while it runs (every wait below is bounded).
        let mut command = Command::new(env!("CARGO_BIN_EXE_watchbot"));
        command.env_remove("QueueUrl").env_remove("ProgressTable").env_remove("MessageId");
        watchbot_testing::moto().configure(&mut command);
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .args(["watch", "--runner", "process", "--workers", "1", "--queue-url", queue_url, "--", "sh"])
            .arg(dir.join("worker.sh"))
            .env("WORKER_OUT", dir.join("out"))
            .env("TASK_SECS", TASK_SECS.to_string())
            .env("LogLevel", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = command.spawn().expect("start watchbot watch");
        Watcher { name, child, log }
    }

    /// The watcher's events, one JSON object per line of its stderr.
    fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    fn events_named(&self, event: &str) -> Vec<serde_json::Value> {
        self.events().into_iter().filter(|e| e["event"] == event).collect()
    }

    fn text(&self) -> String {
        format!("watcher {}'s log:\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn assert_running(&mut self) {
        let exited = self.child.try_wait().expect("wait");
        assert!(exited.is_none(), "watcher {} exited early ({exited:?}); {}", self.name, self.text());
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn stop(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let mut exit = None;
        let what = format!("watcher {} to stop after SIGTERM", self.name);
        let waited = wait_for(&what, Duration::from_secs(30), || {
            exit = self.child.try_wait().expect("wait");
            exit.is_some()
        });
        if let Err(timeout) = waited {
            panic!("{timeout}; {}", self.text());
        }
        assert!(exit.is_some_and(|e| e.success()), "watcher {} exited {exit:?}; {}", self.name, self.text());
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `done` every 100 ms until it holds; after `limit`, an error naming `what`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return Err(format!("gave up after {limit:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The worker's marks of one kind (`started`, `done`): (message id, receive count), sorted.
fn marks(out: &Path, kind: &str) -> Vec<(String, u32)> {
    let mut found: Vec<(String, u32)> = std::fs::read_dir(out)
        .expect("worker output")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (id, count) = name.strip_prefix(kind)?.strip_prefix('-')?.rsplit_once('-')?;
            Some((id.to_string(), count.parse().ok()?))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_long_task_runs_once_when_its_first_renewals_hang() {
    let moto = watchbot_testing::moto();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    std::fs::write(dir.path().join("worker.sh"), WORKER).expect("worker");

    let sqs = aws_sdk_sqs::Client::new(&runtime.block_on(moto.sdk_config()));
    let name = watchbot_testing::unique_name("heartbeat");
    let queue_url = runtime.block_on(async {
        let out = sqs.create_queue().queue_name(&name).send().await.expect("create queue");
        let url = out.queue_url().expect("url").to_string();
        sqs.send_message().queue_url(&url).message_body("long task").send().await.expect("send");
        url
    });
    // The proxy runs on the runtime's worker threads while this thread polls.
    let proxy = runtime.block_on(FaultProxy::start(moto.endpoint())).expect("start the proxy");
    proxy.hang(RENEWAL, HUNG, HANG, AfterHang::Drop);

    // A first, alone, so that A receives the message; B once A's task runs.
    let mut a = Watcher::start("A", dir.path(), &queue_url, &proxy.endpoint());
    let waited = wait_for("A's worker to start", Duration::from_secs(30), || {
        a.assert_running();
        !marks(&out, "started").is_empty()
    });
    waited.unwrap_or_else(|timeout| panic!("{timeout}; {}", a.text()));
    let task_started = Instant::now();
    let mut b = Watcher::start("B", dir.path(), &queue_url, moto.endpoint());
    let waited = wait_for("B's loop to start", Duration::from_secs(30), || {
        b.assert_running();
        !b.events_named("started").is_empty()
    });
    waited.unwrap_or_else(|timeout| panic!("{timeout}; {}", b.text()));

    // The task ends and A deletes its message; a second start (B's, or A's own) fails at once.
    let limit = Duration::from_secs(TASK_SECS + 45);
    let waited = wait_for("the long task to end and A to delete its message", limit, || {
        a.assert_running();
        b.assert_running();
        let started = marks(&out, "started");
        let again = task_started.elapsed();
        assert_eq!(
            started.len(),
            1,
            "the task ran again {again:?} after its start: {started:?}; {}; {}",
            a.text(),
            b.text()
        );
        !a.events_named("deleted").is_empty()
    });
    waited.unwrap_or_else(|timeout| panic!("{timeout}; proxy saw {:?}; {}; {}", proxy.requests(), a.text(), b.text()));
    let ran_for = task_started.elapsed();
    a.stop();
    b.stop();

    let started = marks(&out, "started");
    assert_eq!(started.len(), 1, "ran once: {started:?}");
    let (id, count) = &started[0];
    assert_eq!(*count, 1, "ran at receive count 1 only");
    assert_eq!(marks(&out, "done"), started, "the task ran to its end");
    assert!(ran_for >= Duration::from_secs(TASK_SECS), "the task outlived the window: {ran_for:?}");
    let deleted = a.events_named("deleted");
    assert_eq!(deleted.len(), 1, "{}", a.text());
    assert_eq!(deleted[0]["message_id"], id.as_str());
    assert!(b.events_named("received").is_empty(), "B never received the message; {}", b.text());

    // The faults happened: the first two renewals hung and were dropped, later ones passed.
    let renewals: Vec<Treatment> = proxy.requests_of(RENEWAL).into_iter().map(|seen| seen.treatment).collect();
    assert!(renewals.len() > HUNG, "A renewed after the hung attempts: {renewals:?}");
    assert!(renewals[..HUNG].iter().all(|t| *t == Treatment::Held(HANG, AfterHang::Drop)), "{renewals:?}");
    assert!(renewals[HUNG..].iter().all(|t| *t == Treatment::Forwarded), "{renewals:?}");
    // A saw its renewals fail (errors naming the heartbeat and the message), and never lost the hold.
    let heartbeat_errors: Vec<serde_json::Value> =
        a.events_named("error").into_iter().filter(|e| e["action"] == "heartbeat").collect();
    assert!(heartbeat_errors.len() >= HUNG, "{}", a.text());
    assert!(heartbeat_errors.iter().all(|e| e["message_id"] == id.as_str()), "{heartbeat_errors:?}");
    assert!(a.events_named("hold_lost").is_empty(), "{}", a.text());
    assert!(b.events_named("hold_lost").is_empty(), "{}", b.text());

    // Nothing left on the queue, visible or not.
    assert_eq!(sqs_counts(&runtime, &sqs, &queue_url), (0, 0));
}
