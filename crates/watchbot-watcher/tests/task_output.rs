//! A task's output: the process runner's pipes (lines forwarded with the message id, never merged across tasks, the
//! tail kept per attempt, a flood bounded), and an ECS task's awslogs stream on moto's CloudWatch Logs, quoted at the
//! end of its failure notification (ECS itself from `aws-smithy-mocks`, since moto's tasks all exit 0).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::types::{Container, Task};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use watchbot_watcher::aws::ecs::{EcsRunner, EcsRunnerConfig};
use watchbot_watcher::aws::sdk::Aws;
use watchbot_watcher::console::Stream;
use watchbot_watcher::local::process::{ProcessHandle, ProcessRunner, ProcessRunnerConfig};
use watchbot_watcher::output::{Discard, OutputConfig, OutputSink};
use watchbot_watcher::ports::{Launch, TaskOutput, TaskRunner, TaskSpec, TaskState};
use watchbot_watcher::testing::{FakeQueue, Recorder, RecordingNotifier};
use watchbot_watcher::{Jitter, Ports, WatcherConfig, run};

/// Every batch of lines the runner forwarded, with its stream.
#[derive(Default)]
struct Lines(Mutex<Vec<(Stream, Vec<u8>)>>);

impl OutputSink for Lines {
    fn write_lines(&self, stream: Stream, lines: &[u8]) {
        self.0.lock().unwrap().push((stream, lines.to_vec()));
    }
}

impl Lines {
    fn text(&self) -> Vec<(Stream, String)> {
        self.0.lock().unwrap().iter().map(|(s, b)| (*s, String::from_utf8_lossy(b).into_owned())).collect()
    }
}

fn runner(script: &str, sink: Arc<dyn OutputSink>) -> ProcessRunner {
    let output = OutputConfig { sink, ..OutputConfig::default() };
    ProcessRunner::new(ProcessRunnerConfig::new("sh", vec!["-c".into(), script.into()])).with_output(output)
}

fn spec(message_id: &str) -> TaskSpec {
    TaskSpec { message_id: message_id.to_string(), env: BTreeMap::from([("TAG".to_string(), message_id.to_string())]) }
}

async fn start(runner: &ProcessRunner, message_id: &str) -> ProcessHandle {
    match runner.launch(&spec(message_id)).await.expect("launch") {
        Launch::Started(handle) => handle,
        other => panic!("expected a started task, got {other:?}"),
    }
}

/// Polls until every task stopped (at most 60 s); then their outputs, as the loop reads them after that poll.
async fn outputs(runner: &ProcessRunner, handles: &[ProcessHandle]) -> Vec<(TaskState, TaskOutput)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done: BTreeMap<ProcessHandle, (TaskState, TaskOutput)> = BTreeMap::new();
    while done.len() < handles.len() {
        let waiting: Vec<ProcessHandle> = handles.iter().copied().filter(|h| !done.contains_key(h)).collect();
        for (handle, state) in runner.poll(&waiting).await.expect("poll") {
            if state != TaskState::Running {
                let output = runner.output(&handle).await;
                done.insert(handle, (state, output));
            }
        }
        assert!(Instant::now() < deadline, "tasks still running after 60 s");
        // Woken when a child exits (a stored permit: an exit before this call is not missed).
        let _ = tokio::time::timeout(Duration::from_secs(1), runner.changed()).await;
    }
    handles.iter().map(|h| done.remove(h).expect("finished")).collect()
}

fn tail(output: &TaskOutput) -> (&str, u64) {
    match output {
        TaskOutput::Tail { text, omitted_bytes } => (text, *omitted_bytes),
        other => panic!("no tail: {other:?}"),
    }
}

#[tokio::test]
async fn output_is_forwarded_with_the_message_id_and_kept_per_attempt() {
    let lines = Arc::new(Lines::default());
    let runner = runner(
        "echo \"out of $TAG\"; echo 'half' | tr -d '\\n'; echo ' a line' >&1; echo oops >&2; exit 1",
        lines.clone(),
    );
    let handle = start(&runner, "m-1").await;
    let (state, output) = outputs(&runner, &[handle]).await.remove(0);
    assert_eq!(state, TaskState::Stopped { exit_code: Some(1), reason: "exited with code 1".into() });
    let (text, omitted) = tail(&output);
    assert_eq!(omitted, 0);
    let mut kept: Vec<&str> = text.lines().collect();
    kept.sort_unstable();
    assert_eq!(kept, ["half a line", "oops", "out of m-1"], "{text:?}");
    let forwarded = lines.text();
    let stdout: String = forwarded.iter().filter(|(s, _)| *s == Stream::Stdout).map(|(_, t)| t.as_str()).collect();
    let stderr: String = forwarded.iter().filter(|(s, _)| *s == Stream::Stderr).map(|(_, t)| t.as_str()).collect();
    let stdout: Vec<&str> = stdout.lines().collect();
    assert_eq!(stdout.len(), 2, "{stdout:?}");
    assert!(stdout[0].starts_with('[') && stdout[0].ends_with("] [worker] [m-1] out of m-1"), "{stdout:?}");
    assert!(stdout[1].ends_with("] [worker] [m-1] half a line"), "{stdout:?}");
    assert!(stderr.ends_with("] [worker] [m-1] oops\n"), "{stderr:?}");
    // A second attempt of the same message keeps its own output.
    let again = start(&runner, "m-1").await;
    let (_, output) = outputs(&runner, &[again]).await.remove(0);
    assert_eq!(tail(&output).0.lines().count(), 3);
}

#[tokio::test]
async fn lines_of_two_chatty_tasks_are_never_merged() {
    let lines = Arc::new(Lines::default());
    // Each line in two writes, so a line is whole only if the runner joins its halves.
    let script = "i=0; while [ $i -lt 2000 ]; do printf '%s-%s' \"$TAG\" $i; printf ' end\\n'; i=$((i+1)); done";
    let runner = runner(script, lines.clone());
    let (a, b) = (start(&runner, "task-a").await, start(&runner, "task-b").await);
    let done = outputs(&runner, &[a, b]).await;
    let mut counts = BTreeMap::new();
    for (_, batch) in lines.text() {
        assert!(batch.ends_with('\n'), "a write of a partial line: {batch:?}");
        for line in batch.lines() {
            let (prefix, text) = line.split_once("] [worker] [").expect("prefixed");
            assert!(prefix.starts_with('['), "{line}");
            let (id, payload) = text.split_once("] ").expect("id");
            assert!(payload.starts_with(&format!("{id}-")) && payload.ends_with(" end"), "merged: {line}");
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(counts, BTreeMap::from([("task-a".to_string(), 2000), ("task-b".to_string(), 2000)]));
    for (n, (_, output)) in done.iter().enumerate() {
        let id = ["task-a", "task-b"][n];
        assert!(tail(output).0.ends_with(&format!("{id}-1999 end\n")), "{id}");
    }
}

#[tokio::test]
async fn a_flood_of_output_stays_bounded() {
    // 10 MB of short lines (whole: 21 bytes each), then one line of 10 MB without a newline.
    let script = "yes 'flooding the watcher' | head -c 10000011; head -c 10000000 /dev/zero | tr '\\0' x; exit 2";
    let runner = runner(script, Arc::new(Discard));
    let handle = start(&runner, "flood").await;
    let (state, output) = outputs(&runner, &[handle]).await.remove(0);
    assert!(matches!(state, TaskState::Stopped { exit_code: Some(2), .. }), "{state:?}");
    let (text, omitted) = tail(&output);
    assert!(text.len() <= 64 * 1024, "kept {} bytes", text.len());
    assert!(omitted > 9_900_000, "omitted {omitted}");
    let last = text.lines().last().expect("a last line");
    assert!(last.ends_with(" [line cut at 16384 bytes: 9983616 more bytes dropped]"), "{}", &last[16_000..]);
    assert!(text.lines().rev().nth(1).is_some_and(|l| l.starts_with("flooding")), "whole lines before it");
}

const TASK_ID: &str = "0123456789abcdef0123456789abcdef";

fn task_arn() -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task/watchbot-cluster/{TASK_ID}")
}

/// A log group on moto with the awslogs stream of the task, holding `lines`.
fn log_group(lines: &[&str]) -> String {
    let group = watchbot_testing::unique_name("watchbot-logs");
    let events: Vec<String> =
        lines.iter().enumerate().map(|(n, l)| format!("{{'timestamp': now + {n}, 'message': {l:?}}}")).collect();
    watchbot_testing::moto().python(&format!(
        "import time\nlogs = client('logs')\nnow = int(time.time() * 1000)\n\
         logs.create_log_group(logGroupName={group:?})\n\
         logs.create_log_stream(logGroupName={group:?}, logStreamName='worker/worker/{TASK_ID}')\n\
         logs.put_log_events(logGroupName={group:?}, logStreamName='worker/worker/{TASK_ID}', logEvents=[{}])\n",
        events.join(", ")
    ));
    group
}

#[tokio::test]
async fn an_ecs_task_output_is_its_log_stream_and_says_why_when_missing() {
    let aws = Aws::new(watchbot_testing::moto().sdk_config().await);
    let group = log_group(&["starting", "step 2", "disk full"]);
    let logs = aws.task_logs(&group, "worker", "worker");
    assert_eq!(logs.stream_of(&task_arn()), format!("worker/worker/{TASK_ID}"));
    assert_eq!(
        logs.tail(&task_arn()).await,
        TaskOutput::Tail { text: "starting\nstep 2\ndisk full\n".into(), omitted_bytes: 0 }
    );
    let missing = logs.tail("arn:aws:ecs:us-east-1:123456789012:task/c/ffff").await;
    let TaskOutput::Unavailable(why) = missing else { panic!("{missing:?}") };
    assert!(why.contains("log stream worker/worker/ffff") && why.contains("does not exist"), "{why}");
    let no_group = aws.task_logs("no-such-group", "worker", "worker").tail(&task_arn()).await;
    assert!(matches!(no_group, TaskOutput::Unavailable(_)), "{no_group:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ecs_task_notification_ends_with_its_log_lines() {
    let aws = Aws::new(watchbot_testing::moto().sdk_config().await);
    let group = log_group(&["starting", "disk full: /data"]);
    let run_task = mock!(aws_sdk_ecs::Client::run_task)
        .then_output(|| RunTaskOutput::builder().tasks(Task::builder().task_arn(task_arn()).build()).build());
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
        let container = Container::builder().name("worker").exit_code(1).build();
        let task = Task::builder()
            .task_arn(task_arn())
            .last_status("STOPPED")
            .stopped_reason("Essential container in task exited")
            .containers(container)
            .build();
        DescribeTasksOutput::builder().tasks(task).build()
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&run_task, &describe]);
    let mut config = EcsRunnerConfig::new("watchbot-cluster", "worker:1", "worker");
    config.run_task_per_second = 0.0;
    let runner = EcsRunner::new(client, config).with_logs(aws.task_logs(&group, "worker", "worker"));
    let (queue, notifier, events) = (FakeQueue::new(), RecordingNotifier::default(), Recorder::default());
    let id = queue.push("work");
    let ports = Ports::new(queue.clone(), runner, notifier.clone()).with_events(events.clone());
    let mut watcher = WatcherConfig::default();
    watcher.receive_wait = Duration::from_millis(50);
    watcher.poll_interval = Duration::from_millis(50);
    watcher.jitter = Jitter::Fixed(0.0);
    let sent = notifier.clone();
    let done = async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent.sent().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    run(ports, &watcher, done).await.expect("loop runs");
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{:?}", events.names());
    assert!(sent[0].subject.ends_with(&id));
    assert!(sent[0].body.contains("Exit code: 1\n"), "{}", sent[0].body);
    assert!(
        sent[0].body.ends_with("Recent output (the last 2 lines):\nstarting\ndisk full: /data\n"),
        "{}",
        sent[0].body
    );
}
