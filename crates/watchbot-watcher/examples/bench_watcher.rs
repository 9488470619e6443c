//! `cargo xtask bench watcher`: figures for the watcher, printed as tables (no timed tests anywhere).
//!
//! 1. Throughput of the process runner (`true` as the task) driven by the real loop against an in-process queue,
//!    vs. spawning `true` the same number of times bare with the same concurrency: the loop's overhead per message.
//! 2. AWS requests per message by action against moto (SDK interceptors count every HTTP request of the clients
//!    built here): process mode at full load (workers 10, shallow queue), and ECS mode (FARGATE on moto).
//! 3. ReceiveMessage calls per idle minute on an empty queue with the production 20 s long poll (measured over
//!    `--idle-secs`, default 41 s, and scaled to a minute).
//! 4. The real `watchbot watch --runner process -- true` binary as a child against moto: peak RSS (VmHWM) and its own
//!    CPU time per message (utime + stime from /proc, children excluded).
//!
//! Options: `--messages N` (in-process runs, default 1000), `--moto-messages N` (default 200), `--idle-secs S`,
//! `--skip-binary`.

/// The FARGATE fixture on moto (`watchbot_testing::ecs`, whose client repairs moto's answers) as a runner config.
mod ecs_support {
    pub use watchbot_testing::ecs::builder;
    use watchbot_watcher::aws::ecs::{EcsRunnerConfig, LaunchType};

    pub async fn fixture() -> (aws_sdk_ecs::Client, EcsRunnerConfig) {
        let ecs = watchbot_testing::ecs::fixture().await;
        let mut config = EcsRunnerConfig::new(&ecs.cluster, &ecs.task_definition, &ecs.container);
        config.launch_type = LaunchType::Fargate;
        config.subnets = vec![ecs.subnet];
        config.security_groups = vec![ecs.security_group];
        (ecs.client, config)
    }
}

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use tokio::sync::Notify;
use watchbot_watcher::aws::ecs::EcsRunner;
use watchbot_watcher::aws::sqs::SqsQueue;
use watchbot_watcher::config::SQS_BATCH_LINGER;
use watchbot_watcher::local::process::{ProcessRunner, ProcessRunnerConfig};
use watchbot_watcher::ports::{
    BatchFailure, Notification, Notifier, OutgoingMessage, PortError, Queue, ReceiveRequest, ReceivedMessage,
    VisibilityChange,
};
use watchbot_watcher::{Event, EventSink, Ports, WatcherConfig, run};

struct Options {
    messages: usize,
    moto_messages: usize,
    idle_secs: u64,
    skip_binary: bool,
}

fn options() -> Options {
    let mut options = Options { messages: 1000, moto_messages: 200, idle_secs: 41, skip_binary: false };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| usage(&args[i]));
        match args[i].as_str() {
            "--messages" => options.messages = value() as usize,
            "--moto-messages" => options.moto_messages = value() as usize,
            "--idle-secs" => options.idle_secs = value(),
            "--skip-binary" => {
                options.skip_binary = true;
                i += 1;
                continue;
            }
            other => usage(other),
        }
        i += 2;
    }
    options
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "bench_watcher: bad argument {arg:?}; options: --messages N, --moto-messages N, --idle-secs S, --skip-binary"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    println!("watchbot watcher benchmark ({} build)", if cfg!(debug_assertions) { "debug" } else { "release" });

    throughput(&options).await;
    let moto = watchbot_testing::moto();
    let sdk = moto.sdk_config().await;
    let process_counts = process_mode_requests(&sdk, options.moto_messages).await;
    let ecs_counts = ecs_mode_requests(&sdk, options.moto_messages.min(100)).await;
    print_requests(&[process_counts, ecs_counts]);
    idle_receives(&sdk, options.idle_secs).await;
    if options.skip_binary {
        println!("\n(binary measurements skipped)");
    } else {
        binary(&sdk, options.moto_messages.max(300)).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Throughput against an in-process queue.

async fn throughput(options: &Options) {
    let n = options.messages;
    println!("\n1. process runner throughput, {n} messages, task `true`, in-process queue");
    println!(
        "{:>8} {:>11} {:>13} {:>11} {:>12} {:>14} {:>12} {:>14} {:>26}",
        "workers",
        "bare msg/s",
        "runner msg/s",
        "loop msg/s",
        "bare µs/msg",
        "runner µs/msg",
        "loop µs/msg",
        "loop overhead",
        "overhead w/o die-with-watcher"
    );
    for workers in [1, 4, 10] {
        // Best of two rounds each, alternating, so a noisy moment does not decide the comparison.
        let mut bare = Duration::MAX;
        let mut runner = Duration::MAX;
        let mut looped = Duration::MAX;
        let mut looped_posix_spawn = Duration::MAX;
        for _ in 0..2 {
            bare = bare.min(spawn_bare(n, workers).await);
            runner = runner.min(runner_only(n, workers).await);
            looped = looped.min(run_loop_in_process(n, workers, true).await);
            looped_posix_spawn = looped_posix_spawn.min(run_loop_in_process(n, workers, false).await);
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "{:>8} {:>11.0} {:>13.0} {:>11.0} {:>12.1} {:>14.1} {:>12.1} {:>13.1}% {:>25.1}%",
            workers,
            rate(bare),
            rate(runner),
            rate(looped),
            per(bare),
            per(runner),
            per(looped),
            (looped.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0,
            (looped_posix_spawn.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0
        );
    }
    println!("   bare: tokio::process spawn + wait; runner: ProcessRunner launch/changed/poll without the loop;");
    println!(
        "   loop: `run` with ProcessRunner and an in-memory queue, to the last delete (target: loop overhead under 10%)"
    );
    println!(
        "   die-with-watcher (default) sets PR_SET_PDEATHSIG in a vfork-style child; without it, the same spawn skips the prctl"
    );
}

/// The process runner alone: keep `workers` children running, poll when one exits, launch the next.
async fn runner_only(n: usize, workers: usize) -> Duration {
    use watchbot_watcher::ports::{Launch, TaskRunner, TaskSpec, TaskState};
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("true", vec![]));
    let start = Instant::now();
    let mut launched = 0;
    let mut finished = 0;
    let mut running = Vec::new();
    while finished < n {
        while running.len() < workers && launched < n {
            let spec = TaskSpec { message_id: format!("m-{launched}"), env: BTreeMap::new() };
            match runner.launch(&spec).await.expect("launch") {
                Launch::Started(handle) => running.push(handle),
                other => panic!("{other:?}"),
            }
            launched += 1;
        }
        runner.changed().await;
        let states = runner.poll(&running).await.expect("poll");
        for (handle, state) in states {
            if let TaskState::Stopped { exit_code, .. } = state {
                assert_eq!(exit_code, Some(0));
                running.retain(|h| *h != handle);
                finished += 1;
            }
        }
    }
    start.elapsed()
}

async fn spawn_bare(n: usize, workers: usize) -> Duration {
    let start = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(workers));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = permits.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let status = tokio::process::Command::new("true").stdin(Stdio::null()).status().await.expect("spawn true");
            assert!(status.success());
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    start.elapsed()
}

async fn run_loop_in_process(n: usize, workers: usize, die_with_watcher: bool) -> Duration {
    let queue = MemQueue::new(n);
    let done = queue.done.clone();
    let runner = ProcessRunner::new({
        let mut c = ProcessRunnerConfig::new("true", vec![]);
        c.die_with_watcher = die_with_watcher;
        c
    });
    let ports = Ports::new(queue.clone(), runner, NullNotifier).with_events(NullSink);
    let mut config = WatcherConfig::default();
    config.workers = workers;
    config.receive_wait = Duration::from_millis(500);
    let start = Instant::now();
    // Timed to the last delete, as the bare spawns are timed to the last exit: the graceful stop that follows (which
    // gives an idle receive in flight 250 ms to deliver) is not part of the work.
    let finished = Arc::new(Mutex::new(None));
    let stop = {
        let finished = finished.clone();
        async move {
            done.notified().await;
            *finished.lock().unwrap() = Some(start.elapsed());
        }
    };
    let summary = run(ports, &config, stop).await.expect("loop");
    assert_eq!(summary.succeeded, n as u64, "{summary:?}");
    finished.lock().unwrap().expect("all deleted")
}

/// An in-memory queue holding `n` messages; signals `done` once all are deleted.
#[derive(Clone)]
struct MemQueue {
    waiting: Arc<Mutex<VecDeque<u64>>>,
    deleted: Arc<AtomicU64>,
    total: u64,
    done: Arc<Notify>,
}

impl MemQueue {
    fn new(n: usize) -> MemQueue {
        MemQueue {
            waiting: Arc::new(Mutex::new((0..n as u64).collect())),
            deleted: Arc::default(),
            total: n as u64,
            done: Arc::new(Notify::new()),
        }
    }
}

impl Queue for MemQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, PortError> {
        let batch: Vec<u64> = {
            let mut waiting = self.waiting.lock().unwrap();
            let take = waiting.len().min(usize::from(request.max_messages));
            waiting.drain(..take).collect()
        };
        if batch.is_empty() {
            tokio::time::sleep(request.wait).await;
        }
        Ok(batch
            .into_iter()
            .map(|id| ReceivedMessage {
                message_id: format!("m-{id}"),
                receipt_handle: id.to_string(),
                body: "{}".into(),
                sent_timestamp_ms: 1,
                first_receive_timestamp_ms: 1,
                receive_count: 1,
                attributes: BTreeMap::new(),
            })
            .collect())
    }

    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<Vec<BatchFailure>, PortError> {
        let before = self.deleted.fetch_add(receipt_handles.len() as u64, Ordering::SeqCst);
        if before + receipt_handles.len() as u64 >= self.total {
            self.done.notify_one();
        }
        Ok(Vec::new())
    }

    async fn change_visibility_batch(&self, _changes: &[VisibilityChange]) -> Result<Vec<BatchFailure>, PortError> {
        Ok(Vec::new())
    }

    async fn send(&self, _message: OutgoingMessage) -> Result<String, PortError> {
        Err(PortError::transient("not used"))
    }
}

struct NullNotifier;

impl Notifier for NullNotifier {
    async fn notify(&self, _notification: &Notification) -> Result<(), PortError> {
        Ok(())
    }
}

struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: &Event) {}
}

/// Counts `deleted` events and signals when `target` is reached.
struct DeleteCounter {
    deleted: AtomicU64,
    target: u64,
    done: Arc<Notify>,
}

impl EventSink for DeleteCounter {
    fn emit(&self, event: &Event) {
        if let Event::Deleted { .. } = event
            && self.deleted.fetch_add(1, Ordering::SeqCst) + 1 >= self.target
        {
            self.done.notify_one();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. AWS requests per message.

/// Counts HTTP requests (every attempt) by action, from the `X-Amz-Target` header (SQS and ECS speak awsJson), and
/// answered requests separately.
#[derive(Debug, Clone, Default)]
struct RequestCounter {
    sent: Arc<Mutex<BTreeMap<String, u64>>>,
    answered: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    fn action(headers: &aws_smithy_runtime_api::http::Headers) -> String {
        headers.get("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or("unknown").to_string()
    }

    fn sent(&self) -> BTreeMap<String, u64> {
        self.sent.lock().unwrap().clone()
    }

    fn answered(&self, action: &str) -> u64 {
        self.answered.lock().unwrap().get(action).copied().unwrap_or(0)
    }
}

/// The action of the request in flight, kept in the operation's config bag between send and answer.
#[derive(Debug, Clone)]
struct Action(String);

impl aws_smithy_types::config_bag::Storable for Action {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Action>;
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let action = Self::action(context.request().headers());
        *self.sent.lock().unwrap().entry(action.clone()).or_default() += 1;
        // The request is out of the context once sent: remember the action for the answer.
        cfg.interceptor_state().store_put(Action(action));
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let action = cfg.load::<Action>().map(|a| a.0.clone()).unwrap_or_else(|| "unknown".into());
        *self.answered.lock().unwrap().entry(action).or_default() += 1;
        Ok(())
    }
}

struct Counts {
    mode: &'static str,
    messages: usize,
    elapsed: Duration,
    by_action: BTreeMap<String, u64>,
}

fn counted_sqs(sdk: &aws_config::SdkConfig, counter: &RequestCounter) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk).interceptor(counter.clone()).build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A fresh moto queue holding `n` messages (sent by an uncounted client, 10 per call).
async fn filled_queue(sdk: &aws_config::SdkConfig, n: usize) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let name = watchbot_testing::unique_name("bench");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "600")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("e{i}"))
                    .message_body(format!("{{\"job\":{i}}}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("send batch");
    }
    url
}

async fn process_mode_requests(sdk: &aws_config::SdkConfig, n: usize) -> Counts {
    let url = filled_queue(sdk, n).await;
    let counter = RequestCounter::default();
    let queue = SqsQueue::new(counted_sqs(sdk, &counter), url);
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("true", vec![]));
    let done = Arc::new(Notify::new());
    let sink = DeleteCounter { deleted: AtomicU64::new(0), target: n as u64, done: done.clone() };
    let ports = Ports::new(queue, runner, NullNotifier).with_events(sink);
    // As `watch` runs against SQS: deletes and receives gather into batches.
    let mut config = WatcherConfig::default();
    config.workers = 10;
    config.batch_linger = SQS_BATCH_LINGER;
    let start = Instant::now();
    let summary = run(ports, &config, async move { done.notified().await }).await.expect("loop");
    assert_eq!(summary.succeeded, n as u64, "{summary:?}");
    Counts { mode: "process", messages: n, elapsed: start.elapsed(), by_action: counter.sent() }
}

async fn ecs_mode_requests(sdk: &aws_config::SdkConfig, n: usize) -> Counts {
    let url = filled_queue(sdk, n).await;
    let (_, ecs_config) = ecs_support::fixture().await;
    let counter = RequestCounter::default();
    let ecs = aws_sdk_ecs::Client::from_conf(ecs_support::builder(sdk).interceptor(counter.clone()).build());
    let queue = SqsQueue::new(counted_sqs(sdk, &counter), url);
    let runner = EcsRunner::new(ecs, ecs_config);
    let done = Arc::new(Notify::new());
    let sink = DeleteCounter { deleted: AtomicU64::new(0), target: n as u64, done: done.clone() };
    let ports = Ports::new(queue, runner, NullNotifier).with_events(sink);
    // Enough workers that every message is in flight at once, as on a busy cluster.
    let mut config = WatcherConfig::default();
    config.workers = 50;
    config.batch_linger = SQS_BATCH_LINGER;
    let start = Instant::now();
    let summary = run(ports, &config, async move { done.notified().await }).await.expect("loop");
    assert_eq!(summary.succeeded, n as u64, "{summary:?}");
    Counts { mode: "ecs (FARGATE)", messages: n, elapsed: start.elapsed(), by_action: counter.sent() }
}

fn print_requests(all: &[Counts]) {
    println!("\n2. AWS requests per message against moto (every HTTP request of the watcher's clients)");
    for counts in all {
        let total: u64 = counts.by_action.values().sum();
        println!(
            "   {} mode: {} messages in {:.1} s, {} requests = {:.3} per message",
            counts.mode,
            counts.messages,
            counts.elapsed.as_secs_f64(),
            total,
            total as f64 / counts.messages as f64
        );
        println!("   {:<28} {:>8} {:>12}", "action", "calls", "per message");
        for (action, calls) in &counts.by_action {
            println!("   {:<28} {:>8} {:>12.3}", action, calls, *calls as f64 / counts.messages as f64);
        }
    }
    println!("   (targets: ≤ 0.35 per message in process mode at full load, ≤ 1.3 in ECS mode; original v10: 2.0)");
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Idle receives.

async fn idle_receives(sdk: &aws_config::SdkConfig, idle_secs: u64) {
    let url = filled_queue(sdk, 0).await;
    let counter = RequestCounter::default();
    let queue = SqsQueue::new(counted_sqs(sdk, &counter), url);
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("true", vec![]));
    let ports = Ports::new(queue, runner, NullNotifier).with_events(NullSink);
    let mut config = WatcherConfig::default();
    config.workers = 10;
    let start = Instant::now();
    run(ports, &config, tokio::time::sleep(Duration::from_secs(idle_secs))).await.expect("loop");
    let elapsed = start.elapsed();
    let answered = counter.answered("ReceiveMessage");
    let sent = counter.sent();
    let others: u64 = sent.iter().filter(|(a, _)| a.as_str() != "ReceiveMessage").map(|(_, c)| c).sum();
    let receives_sent = sent.get("ReceiveMessage").copied().unwrap_or(0);
    println!("\n3. idle queue, long polling (receive wait {} s)", config.receive_wait.as_secs());
    println!(
        "   {} ReceiveMessage calls answered ({} sent) in {:.1} s → {:.2} per idle minute (target ≤ 3); \
         other requests: {}",
        answered,
        receives_sent,
        elapsed.as_secs_f64(),
        answered as f64 * 60.0 / elapsed.as_secs_f64(),
        others
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 4. The real binary: memory and CPU.

async fn binary(sdk: &aws_config::SdkConfig, n: usize) {
    let root = watchbot_testing::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut build = std::process::Command::new(cargo);
    build.current_dir(&root).args(["build", "--quiet", "-p", "watchbot-cli", "--bin", "watchbot"]);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build of the watchbot binary failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let binary = target.join(profile).join("watchbot");

    let url = filled_queue(sdk, 0).await;
    let mut command = std::process::Command::new(&binary);
    command
        .args(["watch", "--runner", "process", "--queue-url", &url, "--workers", "10", "--stack-name", "bench"])
        .args(["--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    watchbot_testing::moto().configure(&mut command);
    let mut child = command.spawn().expect("start watchbot watch");
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = cpu_seconds(pid);
    let idle_rss = vm_kb(pid, "VmRSS:");

    // Feed the messages in and wait until the queue is empty.
    let start = Instant::now();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("e{i}"))
                    .message_body(format!("{{\"job\":{i}}}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("send batch");
    }
    loop {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let left: u64 =
            attributes.attributes().map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum()).unwrap_or(u64::MAX);
        if left == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "the watcher did not drain the queue");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = start.elapsed();
    let busy = cpu_seconds(pid);
    let peak = vm_kb(pid, "VmHWM:");
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let status = child.wait().expect("wait for watchbot watch");

    println!(
        "\n4. `watchbot watch --runner process --workers 10 -- true` ({profile} binary) against moto, {n} messages"
    );
    println!("   drained in {:.1} s; exit after SIGTERM: {status}", elapsed.as_secs_f64());
    println!(
        "   peak RSS (VmHWM): {:.1} MB (idle RSS {:.1} MB; target ≤ 20 MB; original v10: 112 MB)",
        peak as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
    println!(
        "   watcher CPU (utime+stime, children excluded): {:.2} s for {n} messages = {:.3} ms per message \
         (startup + idle {:.2} s excluded; target ≤ 1 ms; original v10: about 7 ms)",
        busy - idle,
        (busy - idle) * 1000.0 / n as f64,
        idle
    );
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15 (1-based).
    let rest = stat.rsplit_once(')').expect("stat format").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `Vm*` line of /proc/<pid>/status, in kB.
fn vm_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find(|line| line.starts_with(key))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}
