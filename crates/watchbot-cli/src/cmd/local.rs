//! `watchbot local`: the real watcher loop on this machine: the embedded SQLite queue, the worker command as child
//! processes, notifications to stderr and `<state>/notifications.jsonl`.
//!
//! Tasks get production's environment contract, with local addresses: `WorkTopic` is the absolute state folder (so
//! `watchbot send --topic "$WorkTopic"` enqueues locally), `ProgressTable` is `<state>/progress.sqlite` (the
//! embedded progress store), `LogGroup` is `local`. This executable's folder comes first on the tasks' `PATH`, so a
//! worker finds the same `watchbot` even under `cargo run`.
//!
//! `--until-empty` ends the run once nothing is visible, in flight (held, or waiting out a backoff delay) or delayed;
//! SIGINT/SIGTERM stop gracefully (running tasks are stopped, their messages returned, none deleted). Both end with a
//! summary on stdout; a live line of the same counts is drawn on stderr while it runs, when stderr is a terminal
//! (through `watchbot_watcher::console`, which clears it before any other output and redraws it after).
//!
//! Each task's output is forwarded line by line with its message id (`[<time>] [worker] [<id>] line`), and every
//! attempt is recorded with its output tail in `<state>/history.sqlite` (`watchbot logs MESSAGE_ID` reads it).
//!
//! With `--image` each task is a container of that image instead (`crate::container`): the same environment
//! contract (no `PATH`: the image's own), the state folder bound at its own path so `WorkTopic` and `ProgressTable`
//! work inside, `--config`'s options applied; the Engine and the image are checked before anything is enqueued.
//!
//! `--dashboard [ADDR]` serves `watchbot dashboard`'s page on the state folder while the loop runs.

use crate::Failure;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchbot_watcher::console;
use watchbot_watcher::events::{Event, EventSink, Level, StderrJson};
use watchbot_watcher::local::docker::{Bind, LocalRunner};
use watchbot_watcher::local::history::History;
use watchbot_watcher::local::notifier::LocalNotifier;
use watchbot_watcher::local::process::{ProcessRunner, ProcessRunnerConfig};
use watchbot_watcher::local::queue::{DEFAULT_STATE_DIR, Durability, LocalQueue, LocalQueueConfig, QueueCounts};
use watchbot_watcher::{Outcome, Ports, RunSummary, TaskSizeLimit, WatcherConfig};

/// The progress store's file in the state folder (`ProgressTable` of local tasks).
pub const PROGRESS_FILE: &str = "progress.sqlite";

/// Arguments of `watchbot local`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The state folder: queue, progress and notifications live here.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state: PathBuf,
    /// Tasks at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Enqueue these JSON lines first: `{"subject": "...", "message": "..."}` (all of them, or none on a bad line).
    #[arg(long, value_name = "FILE.jsonl")]
    pub messages: Option<PathBuf>,
    /// Exit once nothing is visible, in flight or delayed (backoff delays are waited out, not cut short).
    #[arg(long)]
    pub until_empty: bool,
    /// Seconds a task may run before it is stopped and counted as a failure.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub message_timeout: u64,
    /// Return failed messages at once instead of after an exponential backoff delay.
    #[arg(long)]
    pub no_backoff: bool,
    /// No failure notification while a message's receive count is at most N.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub notify_after_retries: u32,
    /// Notify rejections and dead-lettering only, not each failure (the template's `notifyEachFailure: false`).
    #[arg(long)]
    pub no_notify_each_failure: bool,
    /// Seconds a held message is kept invisible at a time (renewed while its task runs); after a crash, messages
    /// come back within this long.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(3..=43200))]
    pub heartbeat_window: u64,
    /// The stack name notifications name, as a deployed stack's would (`<NAME> failed processing message ...`).
    #[arg(long, value_name = "NAME", default_value = "local", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub stack_name: String,
    /// Receives after which a message moves to the dead-letter queue (the template's maxReceiveCount).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_receive_count: u32,
    /// fsync policy of the embedded queue: `sends` (sent messages survive power loss; a power loss can at worst make
    /// a message run again), `full` (every commit fsynced) or `normal` (survives any process crash; a power loss may
    /// undo the latest commits, sends included).
    #[arg(long, value_name = "POLICY", default_value = "sends", value_parser = ["sends", "full", "normal"])]
    pub fsync: String,
    /// Serve the dashboard beside the loop (`watchbot dashboard`'s page), on ADDR [default: 127.0.0.1:8417].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::cmd::dashboard::DEFAULT_LISTEN)]
    pub dashboard: Option<std::net::SocketAddr>,
    /// The dashboard's token (required when --dashboard is not a loopback address).
    #[arg(long, value_name = "TOKEN", requires = "dashboard")]
    pub dashboard_token: Option<String>,
    /// Each message as a container of an image.
    #[command(flatten)]
    pub container: crate::container::ImageArgs,
    /// The worker command and its arguments (with `--image`: overrides the image's CMD).
    #[arg(last = true, required_unless_present = "image", value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `watchbot local`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    // Everything that can fail runs before the first message is enqueued: a typo in the worker command or a bad
    // line must not leave `--messages` queued, or the corrected re-run would run every message twice.
    let path = task_path();
    let program = match (&args.container.image, args.command.first()) {
        (None, Some(command)) => Some(watchbot_watcher::local::program::resolve(command, &path).map_err(Failure::new)?),
        _ => None,
    };
    let messages = args
        .messages
        .as_deref()
        .map(|file| {
            Ok::<_, Failure>((
                file,
                crate::messages::read(file, |warning| eprintln!("watchbot local: warning: {warning}"))?,
            ))
        })
        .transpose()?;
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure::new(format!("cannot create the state folder {}: {e}", args.state.display())))?;
    let state = std::fs::canonicalize(&args.state)
        .map_err(|e| Failure::new(format!("cannot resolve the state folder {}: {e}", args.state.display())))?;
    let durability = match args.fsync.as_str() {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        _ => Durability::Sends,
    };
    let mut queue_config = LocalQueueConfig::default();
    queue_config.max_receive_count = Some(args.max_receive_count);
    queue_config.durability = durability;
    let queue = LocalQueue::open(&state, queue_config).map_err(|e| Failure::from_error(&e))?;
    let runtime = crate::aws::runtime()?;
    let runner = match (&args.container.image, program) {
        (Some(image), _) => {
            let host = std::env::var("DOCKER_HOST").ok();
            let mut config =
                crate::container::runner_config(&args.container, image, &args.command, &args.stack_name, host)?;
            // The state folder at its own path, so `WorkTopic` and `ProgressTable` work inside the container.
            let folder = state.display().to_string();
            if folder.contains(':') {
                return Err(Failure::new(format!("--state {folder}: a Docker bind cannot name a path with `:` in it")));
            }
            config.binds.push(Bind { host: folder.clone(), container: folder, read_only: false });
            LocalRunner::Docker(runtime.block_on(crate::container::connect(config))?)
        }
        (None, program) => {
            let program = program.ok_or_else(|| Failure::new("give the worker command after `--`, or --image"))?;
            LocalRunner::Process(ProcessRunner::new(ProcessRunnerConfig::new(program, args.command[1..].to_vec())))
        }
    };
    // The dashboard listens before anything is enqueued: a refused address leaves the queue as it was.
    let dashboard = args
        .dashboard
        .map(|listen| {
            let start = crate::cmd::dashboard::start_local(queue.clone(), &state, listen, args.dashboard_token.clone());
            runtime.block_on(start)
        })
        .transpose()?;
    if let Some((file, messages)) = messages {
        queue.send_all(messages).map_err(|e| Failure::new(format!("cannot enqueue {}: {e}", file.display())))?;
    }

    let mut task_env = BTreeMap::new();
    task_env.insert("WorkTopic".to_string(), state.display().to_string());
    task_env.insert("ProgressTable".to_string(), state.join(PROGRESS_FILE).display().to_string());
    task_env.insert("LogGroup".to_string(), "local".to_string());
    if matches!(runner, LocalRunner::Process(_)) {
        task_env.insert("PATH".to_string(), path);
    }
    let mut config = WatcherConfig::default();
    config.workers = usize::from(args.workers);
    config.message_timeout = Duration::from_secs(args.message_timeout);
    config.backoff = !args.no_backoff;
    config.notify_after_retries = args.notify_after_retries;
    config.notify_each_failure = !args.no_notify_each_failure;
    config.stack_name = args.stack_name.clone();
    config.task_env = task_env;
    config.heartbeat_window = Duration::from_secs(args.heartbeat_window);
    config.receive_wait = Duration::from_secs(2);
    config.poll_interval = Duration::from_millis(250);
    config.shutdown_grace = Duration::from_secs(15);
    // A message too large for a child's environment would fail to start on every receive: dead-letter it.
    config.task_size_limit = Some(TaskSizeLimit::process());
    // The embedded queue's redrive threshold: a failure on the last receive says the dead-letter queue is next.
    config.max_receive_count = Some(args.max_receive_count);
    config.queue_flags = format!("--state {}", crate::cmd::queue_address::shell_word(&state.display().to_string()));
    let live = Arc::new(Mutex::new(Live::default()));
    let sink = LocalSink { live: live.clone() };
    let history = History::create(&state).map_err(|e| Failure::from_error(&e))?;
    let (recorder, history_writer) = history.recorder().map_err(|e| Failure::from_error(&e))?;
    let ports = Ports::new(queue.clone(), runner, LocalNotifier::new(&state))
        .with_dead_letter(queue.dead_letter_queue())
        .with_events(sink)
        .with_attempt_log(recorder);

    let summary = runtime.block_on(async {
        let shutdown = shutdown(queue.clone(), args.until_empty, live.clone());
        let live = (std::io::stderr().is_terminal()).then(|| tokio::spawn(live_line(live.clone())));
        let result = watchbot_watcher::run(ports, &config, shutdown).await;
        if let Some(live) = live {
            live.abort();
            console::set_status(None);
        }
        result
    });
    if let Some(dashboard) = dashboard {
        dashboard.abort();
    }
    // The loop's ports (and so the recorder) are gone: wait for the last attempts to be written.
    if let Err(error) = history_writer.finish() {
        eprintln!("watchbot local: {error}");
    }
    let summary = summary.map_err(|e| Failure::from_error(&e))?;
    let counts = queue.counts().unwrap_or_default();
    // The loop counts this watcher's own dead letters (another watcher on the same state folder counts its own).
    println!("{}", summary_line(&summary));
    println!("{}", queue_line(&counts, &state));
    Ok(ExitCode::SUCCESS)
}

/// `summary: received N, succeeded N, ...`: the run's counts (dead-lettered: last receives, moves by the queue and
/// oversized messages).
fn summary_line(summary: &RunSummary) -> String {
    format!(
        "summary: received {}, succeeded {}, rejected {}, returned {}, failed {}, dead-lettered {}, notifications {}",
        summary.received,
        summary.succeeded,
        summary.rejected,
        summary.returned,
        summary.failed,
        summary.dead_lettered,
        summary.notifications
    )
}

fn queue_line(counts: &QueueCounts, state: &Path) -> String {
    format!(
        "queue: {} visible, {} in flight, {} delayed, {} dead letters (state: {})",
        counts.visible,
        counts.in_flight,
        counts.delayed,
        counts.dead_lettered,
        state.display()
    )
}

/// What `--until-empty` waits for when no task runs and nothing is visible: the messages returned with a backoff
/// delay, and when each is retried (`None` when something is visible or nothing waits).
async fn backoff_wait_line(queue: &LocalQueue) -> Option<String> {
    use watchbot_watcher::ops::Operate;
    const LISTED: usize = 5;
    let status = queue.status().await.ok()?;
    let mut waiting = status.in_flight_messages.filter(|m| status.visible == 0 && !m.is_empty())?;
    waiting.sort_by_key(|m| m.visible_at_ms);
    let time = |ms: u64| watchbot_watcher::decide::rfc3339(ms);
    let listed: Vec<String> = waiting
        .iter()
        .take(LISTED)
        .map(|m| format!("{} (receive {}) at {}", m.message_id, m.receive_count, time(m.visible_at_ms)))
        .collect();
    let more = waiting.len().saturating_sub(LISTED);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let last = waiting.last().map(|m| time(m.visible_at_ms)).unwrap_or_default();
    Some(format!(
        "watchbot local: --until-empty: waiting out the backoff of {} message(s), retried {}{more}; the last at {last}",
        waiting.len(),
        listed.join(", ")
    ))
}

/// Resolves when the run should end: SIGINT, SIGTERM, or (with `--until-empty`) an empty queue.
async fn shutdown(queue: LocalQueue, until_empty: bool, live: Arc<Mutex<Live>>) {
    let empty = async {
        if !until_empty {
            return std::future::pending::<()>().await;
        }
        let mut told = String::new();
        loop {
            let probe = queue.clone();
            let empty = tokio::task::spawn_blocking(move || probe.is_empty()).await;
            if let Ok(Ok(true)) = empty {
                return;
            }
            // Nothing runs and nothing is visible: the run waits out backoff delays. Say for what, and until when,
            // each time that changes, so a long wait is never silent.
            let idle = live.lock().unwrap_or_else(|p| p.into_inner()).running == 0;
            if idle
                && let Some(line) = backoff_wait_line(&queue).await
                && line != told
            {
                eprintln!("{line}");
                told = line;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match terminate.as_mut() {
            Some(signal) => drop(signal.recv().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = empty => {}
        () = term => say("watchbot local: SIGTERM: stopping (running tasks are stopped, their messages returned)"),
        _ = tokio::signal::ctrl_c() => {
            say("\nwatchbot local: interrupted: stopping (running tasks are stopped, their messages returned)");
        }
    }
}

/// One line on stderr, around the live line.
fn say(line: &str) {
    console::write(console::Stream::Stderr, format!("{line}\n").as_bytes());
}

/// `PATH` for tasks: this executable's folder first, so workers run the same `watchbot`.
fn task_path() -> String {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut parts: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        parts.push(dir);
    }
    parts.extend(std::env::split_paths(&inherited));
    std::env::join_paths(parts)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| inherited.to_string_lossy().into_owned())
}

/// What the live line shows, kept from the loop's events: the loop's own [`RunSummary`] counts (the final summary
/// line is the summary `run` returns), the tasks running now, and when each message returned with a backoff is due
/// again (epoch milliseconds, from the loop's `returned` events).
#[derive(Debug, Default)]
struct Live {
    summary: RunSummary,
    running: u64,
    retries: HashMap<String, u64>,
}

impl Live {
    /// Counts `event`, which happened at `now_ms`.
    fn record(&mut self, event: &Event, now_ms: u64) {
        let summary = &mut self.summary;
        match event {
            Event::Received { message_id, .. } => {
                summary.received += 1;
                self.retries.remove(message_id);
            }
            Event::Returned { message_id, delay_ms } if *delay_ms > 0 => {
                self.retries.insert(message_id.clone(), now_ms.saturating_add(*delay_ms));
            }
            Event::Deleted { message_id } => drop(self.retries.remove(message_id)),
            Event::Launched { .. } => {
                summary.launched += 1;
                self.running += 1;
            }
            Event::Adopted { .. } => {
                summary.adopted += 1;
                self.running += 1;
            }
            Event::Finished { outcome, .. } => {
                self.running = self.running.saturating_sub(1);
                match outcome {
                    Outcome::Succeeded => summary.succeeded += 1,
                    Outcome::Rejected => summary.rejected += 1,
                    Outcome::Returned => summary.returned += 1,
                    Outcome::Failed => summary.failed += 1,
                }
            }
            Event::DeadLettered { message_id, .. } => {
                summary.dead_lettered += 1;
                self.retries.remove(message_id);
            }
            Event::Notified { .. } => summary.notifications += 1,
            _ => {}
        }
    }
}

/// The event sink of local mode: counts for the live line, and the loop's errors (and notifications that could not
/// be written) as JSON lines on stderr, since those need a person's attention.
struct LocalSink {
    live: Arc<Mutex<Live>>,
}

impl EventSink for LocalSink {
    fn emit(&self, event: &Event) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).record(event, watchbot_watcher::events::now_ms());
        StderrJson { level: Level::Error }.emit(event);
    }
}

/// The live line at `now_ms`: the run's counts so far, the tasks running, and, while messages wait out a backoff,
/// how many and when the next one is retried (`| 2 waiting to retry, next m-1 at 2026-12-02T17:00:05.000Z (in
/// 12 s)`). A retry whose time has passed is no longer counted: its message is visible again.
fn live_text(live: &Live, now_ms: u64) -> String {
    let s = &live.summary;
    let mut line = format!(
        "watchbot local: running {} | received {}, succeeded {}, rejected {}, returned {}, failed {}, dead-lettered \
         {}, notifications {}",
        live.running, s.received, s.succeeded, s.rejected, s.returned, s.failed, s.dead_lettered, s.notifications
    );
    let due = live.retries.iter().filter(|(_, at)| **at > now_ms);
    if let Some((id, at)) = due.clone().min_by_key(|(id, at)| (**at, id.as_str())) {
        let waiting = due.count();
        let secs = (at - now_ms).div_ceil(1000);
        line.push_str(&format!(
            " | {waiting} waiting to retry, next {id} at {} (in {secs} s)",
            watchbot_watcher::decide::rfc3339(*at)
        ));
    }
    line
}

/// Redraws the counts on stderr twice a second (only started when stderr is a terminal).
async fn live_line(live: Arc<Mutex<Live>>) {
    loop {
        let line = live_text(&live.lock().unwrap_or_else(|p| p.into_inner()), watchbot_watcher::events::now_ms());
        console::set_status(Some(line));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_counts_the_loop_events() {
        let mut live = Live::default();
        let finished = |outcome| Event::Finished {
            message_id: "m".into(),
            outcome,
            exit_code: Some(0),
            reason: "exit 0".into(),
            receive_count: 1,
            duration_ms: 1,
        };
        live.record(&Event::Received { message_id: "m".into(), receive_count: 1 }, 0);
        live.record(&Event::Launched { message_id: "m".into(), task: "t".into() }, 0);
        assert_eq!(live.running, 1);
        live.record(&finished(Outcome::Failed), 0);
        assert_eq!((live.running, live.summary.received, live.summary.failed), (0, 1, 1));
        assert!(
            live_text(&live, 0).starts_with("watchbot local: running 0 | received 1, succeeded 0"),
            "{}",
            live_text(&live, 0)
        );
        assert!(!live_text(&live, 0).contains("retry"), "{}", live_text(&live, 0));
    }

    #[test]
    fn the_live_line_says_when_the_next_retry_is_due() {
        let mut live = Live::default();
        let t0 = 1_764_694_800_000; // 2025-12-02T17:00:00Z
        let returned = |id: &str, delay_ms| Event::Returned { message_id: id.into(), delay_ms };
        live.record(&returned("m-2", 8_000), t0);
        live.record(&returned("m-1", 4_500), t0);
        // A quiet return (exit 4, no backoff) is visible at once: nothing to wait for.
        live.record(&returned("m-3", 0), t0);
        assert!(
            live_text(&live, t0).ends_with(" | 2 waiting to retry, next m-1 at 2025-12-02T17:00:04.500Z (in 5 s)"),
            "{}",
            live_text(&live, t0)
        );
        // Once m-1's time has passed it is visible again: only m-2 waits.
        assert!(
            live_text(&live, t0 + 5_000)
                .ends_with(" | 1 waiting to retry, next m-2 at 2025-12-02T17:00:08.000Z (in 3 s)"),
            "{}",
            live_text(&live, t0 + 5_000)
        );
        // Received again, or dead-lettered: no longer waiting.
        live.record(&Event::Received { message_id: "m-2".into(), receive_count: 2 }, t0 + 1_000);
        live.record(&Event::DeadLettered { message_id: "m-1".into(), reason: "r".into() }, t0 + 1_000);
        assert!(!live_text(&live, t0 + 1_000).contains("retry"), "{}", live_text(&live, t0 + 1_000));
    }

    #[test]
    fn programs_resolve_in_the_task_path() {
        use watchbot_watcher::local::program::resolve;
        assert!(resolve("sh", &task_path()).unwrap().is_absolute());
        assert!(resolve("no-such-worker-command", &task_path()).unwrap_err().contains("PATH"));
    }
}
