//! The loop: receive (long polling, at most `workers` messages held), launch one task per message (or adopt the
//! one already running), keep held messages invisible with a heartbeat, poll tasks in one batched call, stop tasks
//! that outlive the message timeout, and turn each exit code into a delete or a return (batched), plus
//! notifications. Errors from the world are retried; the loop ends only when `shutdown` resolves.

use crate::decide::{self, NextStep, Outcome, Report};
use crate::events::{Event, EventSink, Level, StderrJson, now_ms};
use crate::message;
use crate::ports::{
    Launch, Notification, Notifier, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage,
    TaskRunner, TaskSpec, TaskState, VisibilityChange,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The loop's world: the work queue, the task runner, the notifier, an optional dead-letter queue (where messages
/// that cannot run are copied before being deleted), and where events go.
pub struct Ports<Q, R, N, D> {
    /// The work queue.
    pub queue: Q,
    /// Runs one task per message.
    pub runner: R,
    /// Sends notifications.
    pub notifier: N,
    /// Where messages too large to run go; `None`: they return to the work queue with backoff (and its redrive
    /// policy dead-letters them), never lost.
    pub dead_letter: Option<D>,
    /// Where events go (default: JSON lines on stderr at `info`).
    pub events: Arc<dyn EventSink>,
}

impl<Q: Queue, R: TaskRunner, N: Notifier> Ports<Q, R, N, Q> {
    /// Ports without a dead-letter queue, events as JSON lines on stderr.
    pub fn new(queue: Q, runner: R, notifier: N) -> Ports<Q, R, N, Q> {
        Ports { queue, runner, notifier, dead_letter: None, events: Arc::new(StderrJson { level: Level::Info }) }
    }
}

impl<Q, R, N, D> Ports<Q, R, N, D> {
    /// Sets the dead-letter queue.
    pub fn with_dead_letter<D2: Queue>(self, dead_letter: D2) -> Ports<Q, R, N, D2> {
        Ports {
            queue: self.queue,
            runner: self.runner,
            notifier: self.notifier,
            dead_letter: Some(dead_letter),
            events: self.events,
        }
    }

    /// Sets where events go.
    pub fn with_events(mut self, events: impl EventSink) -> Ports<Q, R, N, D> {
        self.events = Arc::new(events);
        self
    }
}

/// A limit on the size of a task's environment, as the runner will pass it. A message over it is not run: it goes to
/// the dead-letter queue with a notification (it would fail the same way on every receive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSizeLimit {
    /// ECS container overrides.
    Overrides {
        /// The container the overrides name.
        container_name: String,
        /// The most characters of overrides JSON the runner accepts (ECS: 8,192).
        max_chars: usize,
    },
    /// A child process's environment: each `NAME=value` string (Linux: 128 KiB, `MAX_ARG_STRLEN`; exec fails with
    /// E2BIG past it).
    EnvString {
        /// The most bytes of one `NAME=value` string, its terminating NUL included.
        max_bytes: usize,
    },
}

impl TaskSizeLimit {
    /// ECS's limit for the container overrides of `container_name`.
    pub fn ecs(container_name: impl Into<String>) -> TaskSizeLimit {
        TaskSizeLimit::Overrides { container_name: container_name.into(), max_chars: message::ECS_OVERRIDES_LIMIT }
    }

    /// Linux's limit for each environment string of a child process (the process runner).
    pub fn process() -> TaskSizeLimit {
        TaskSizeLimit::EnvString { max_bytes: message::ENV_STRING_LIMIT }
    }

    /// Why `env` is over this limit, or `None` when it fits.
    fn exceeded_by(&self, env: &BTreeMap<String, String>) -> Option<String> {
        match self {
            TaskSizeLimit::Overrides { container_name, max_chars } => {
                let size = message::overrides_size(container_name, env);
                (size > *max_chars).then(|| {
                    format!(
                        "not run: its environment needs {size} characters of container overrides, over the limit of \
                         {max_chars}"
                    )
                })
            }
            TaskSizeLimit::EnvString { max_bytes } => {
                let (name, size) = message::largest_env_string(env)?;
                (size > *max_bytes).then(|| {
                    format!(
                        "not run: its environment variable {name} needs {size} bytes, over the limit of {max_bytes} \
                         bytes per variable of a child process"
                    )
                })
            }
        }
    }
}

/// What a graceful stop does with tasks still running. Either way their messages return to the queue at once and
/// are never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    /// Stop them (SIGTERM/StopTask) and wait up to `shutdown_grace` (child processes must not outlive the watcher).
    StopTasks,
    /// Leave them running: the next watcher to receive the message adopts the running task (ECS `startedBy`), so
    /// a redeploy of the watchers does not restart every job.
    LeaveRunning,
}

/// Where the loop takes its random jitter from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Uniform in `[0, 1)` (production).
    Random,
    /// Always this value (tests that assert exact delays).
    Fixed(f64),
}

impl Jitter {
    fn sample(self) -> f64 {
        match self {
            Jitter::Random => fastrand::f64(),
            Jitter::Fixed(value) => value,
        }
    }
}

/// How the loop behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct WatcherConfig {
    /// Tasks at once (messages held at once, waiting placement included).
    pub workers: usize,
    /// A task still running this long after its launch is stopped and counted as a failure.
    pub message_timeout: Duration,
    /// Returned messages wait about `2^receiveCount` s (`false`: visible again at once).
    pub backoff: bool,
    /// Failure notifications are silent while the receive count is at most this.
    pub notify_after_retries: u32,
    /// The stack's name, for notification subjects.
    pub stack_name: String,
    /// Added to every task's environment (`WorkTopic`, `LogGroup`, `ProgressTable`, the user's env ...).
    pub task_env: BTreeMap<String, String>,
    /// Held messages are kept invisible this long at a time, renewed every third of it: a watcher that dies lets its
    /// messages reappear within one window.
    pub heartbeat_window: Duration,
    /// Long-polling wait of each receive (SQS: at most 20 s).
    pub receive_wait: Duration,
    /// How often running tasks are polled (one batched call for all of them).
    pub poll_interval: Duration,
    /// On shutdown, how long to wait for stopped tasks to end.
    pub shutdown_grace: Duration,
    /// What a graceful stop does with running tasks.
    pub on_shutdown: OnShutdown,
    /// Exit code → outcome.
    pub exit_codes: decide::ExitCodeTable,
    /// Size limit of the task's environment (ECS); `None` for runners without one.
    pub task_size_limit: Option<TaskSizeLimit>,
    /// Longest wait between placement retries (and retries of failed calls).
    pub max_retry_delay: Duration,
    /// Jitter source.
    pub jitter: Jitter,
    /// How long finished messages' deletes/returns and freed slots wait for company, so that deletes and receives
    /// go in batches of up to 10 (fewer requests per message on SQS). Zero: at once (local mode, where a request
    /// costs nothing).
    pub batch_linger: Duration,
}

impl Default for WatcherConfig {
    fn default() -> WatcherConfig {
        WatcherConfig {
            workers: 1,
            message_timeout: Duration::from_secs(600),
            backoff: true,
            notify_after_retries: 0,
            stack_name: "watchbot".into(),
            task_env: BTreeMap::new(),
            heartbeat_window: Duration::from_secs(60),
            receive_wait: Duration::from_secs(20),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            on_shutdown: OnShutdown::StopTasks,
            exit_codes: decide::ExitCodeTable::default(),
            task_size_limit: None,
            max_retry_delay: Duration::from_secs(60),
            jitter: Jitter::Random,
            batch_linger: Duration::ZERO,
        }
    }
}

/// Counts of what the loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Messages received (duplicate receives included).
    pub received: u64,
    /// Tasks started by this watcher.
    pub launched: u64,
    /// Running tasks adopted (a duplicate receive of a message whose task was already running).
    pub adopted: u64,
    /// Exit 0: deleted.
    pub succeeded: u64,
    /// Exit 3: deleted with a notification.
    pub rejected: u64,
    /// Exit 4: returned quietly.
    pub returned: u64,
    /// Other exits, killed, timed out, failed to start: returned with a notification.
    pub failed: u64,
    /// Copied to the dead-letter queue (too large to run).
    pub dead_lettered: u64,
    /// Notifications sent.
    pub notifications: u64,
    /// Placement attempts that did not place (capacity, throttling).
    pub not_placed: u64,
    /// Messages returned unfinished at shutdown.
    pub interrupted: u64,
    /// Failed calls to the world (each retried).
    pub errors: u64,
}

/// Why the loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config makes no sense.
    #[error("invalid watcher config: {0}")]
    Config(String),
    /// The very first receives failed for a reason retrying will not fix (no such queue, access denied): a
    /// configuration error, not an outage.
    #[error("cannot receive from the work queue (QueueUrl): {0}")]
    Queue(#[source] PortError),
}

fn validate(config: &WatcherConfig) -> Result<(), Error> {
    if config.workers == 0 {
        return Err(Error::Config("workers must be at least 1".into()));
    }
    if config.heartbeat_window < Duration::from_secs(3) {
        return Err(Error::Config("heartbeat window must be at least 3 s".into()));
    }
    if config.heartbeat_window > decide::MAX_VISIBILITY {
        return Err(Error::Config("heartbeat window must be at most 12 hours".into()));
    }
    if config.receive_wait > Duration::from_secs(20) {
        return Err(Error::Config("receive wait must be at most 20 s".into()));
    }
    if config.poll_interval.is_zero() {
        return Err(Error::Config("poll interval must be more than zero".into()));
    }
    Ok(())
}

/// Runs the loop until `shutdown` resolves, then stops receiving, stops running tasks (waiting up to
/// `shutdown_grace`), returns unfinished messages to the queue (never deletes them) and returns the counts.
pub async fn run<Q, R, N, D>(
    ports: Ports<Q, R, N, D>,
    config: &WatcherConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, Error>
where
    Q: Queue,
    R: TaskRunner,
    N: Notifier,
    D: Queue,
{
    validate(config)?;
    let mut state = State::new(&ports, config);
    state.emit(Event::Started { workers: config.workers });
    tokio::pin!(shutdown);
    let mut receiving: Option<Receiving<'_>> = None;
    loop {
        state.work().await;
        let free = config.workers.saturating_sub(state.slots.len());
        if receiving.is_none() && free > 0 && Instant::now() >= state.receive_after && state.may_receive(free) {
            state.receive_hold = None;
            let request = ReceiveRequest {
                max_messages: free.min(10) as u8,
                wait: config.receive_wait,
                visibility_timeout: Some(config.heartbeat_window),
            };
            receiving = Some(Box::pin(ports.queue.receive(request)));
        }
        state.receive_in_flight = receiving.is_some();
        let wake = state.next_wake();
        let has_running = state.slots.values().any(|slot| matches!(slot.stage, Stage::Running { .. }));
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            result = async { receiving.as_mut().expect("guarded").await }, if receiving.is_some() => {
                receiving = None;
                state.on_received(result)?;
            }
            () = ports.runner.changed(), if has_running => state.poll_now = true,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    // Stop receiving at once: no new receive. One in flight may already have messages on their way; it gets a moment
    // to deliver them, and they return at once instead of staying invisible for a window.
    state.shut_down(receiving).await;
    let summary = state.summary;
    state.emit(Event::Stopped { received: summary.received, succeeded: summary.succeeded, failed: summary.failed });
    Ok(summary)
}

/// A handle as text for events: its `Debug` form, without the quotes of a string handle (an ECS task ARN).
fn handle_text(handle: &impl std::fmt::Debug) -> String {
    let text = format!("{handle:?}");
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).map(str::to_string).unwrap_or(text)
}

/// A message held by the loop.
struct Slot<H> {
    message: ReceivedMessage,
    env: BTreeMap<String, String>,
    stage: Stage<H>,
    next_heartbeat: Instant,
}

enum Stage<H> {
    /// Not running yet: the first attempt, or placement / dead-lettering being retried.
    Waiting { next_attempt: Instant, attempts: u32, checked_running: bool },
    /// A task runs for it.
    Running { handle: H, launched_at: Instant, deadline: Instant, timed_out: bool, stop_sent: bool },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AckKind {
    Delete,
    Return(Duration),
}

/// A delete or return still to be done (batched; retried on failure). Its message stays held (heartbeat) until it is
/// done: a hold that lapsed would let the message be received and run again.
struct Ack {
    kind: AckKind,
    message_id: String,
    receipt_handle: String,
    attempts: u32,
    /// When it may go (after `batch_linger`, or a retry's delay).
    due: Instant,
    /// When it must go even if the batch is not full: later than `due` while other messages in flight may still
    /// join its batch (at most [`MAX_ACK_LINGER`] after it was queued).
    latest: Instant,
    next_heartbeat: Instant,
}

struct PendingNote {
    message_id: String,
    notification: Notification,
    attempts: u32,
    due: Instant,
}

/// Tries of a return (a delete is retried until it is done: giving up would run the message again).
const MAX_RETURN_ATTEMPTS: u32 = 8;
const MAX_NOTE_ATTEMPTS: u32 = 5;
const BATCH: usize = 10;
/// The longest a first delete or return waits for company (tasks still running, a receive in flight) to fill its
/// batch, when `batch_linger` is set: a second at most, well inside any heartbeat window (its hold is renewed anyway).
const MAX_ACK_LINGER: Duration = Duration::from_secs(1);
/// How long a receive in flight at shutdown may still deliver (a response in transit takes milliseconds; an idle
/// long poll is not waited out).
const LATE_RECEIVE_GRACE: Duration = Duration::from_millis(250);

type Receiving<'a> = Pin<Box<dyn Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send + 'a>>;

struct State<'a, Q, R: TaskRunner, N, D> {
    ports: &'a Ports<Q, R, N, D>,
    config: &'a WatcherConfig,
    slots: HashMap<String, Slot<R::Handle>>,
    acks: Vec<Ack>,
    notes: Vec<PendingNote>,
    summary: RunSummary,
    receive_after: Instant,
    /// Set when a receive of less than a full batch is held back for `batch_linger`: when it may go anyway.
    receive_hold: Option<Instant>,
    receive_failures: u32,
    /// Whether a receive has worked yet (after that, no receive error is taken for a configuration error).
    received_once: bool,
    next_poll: Instant,
    poll_failures: u32,
    poll_now: bool,
    /// Whether a receive is in flight (its messages may join the batch of pending deletes).
    receive_in_flight: bool,
    /// Whether the last receive got messages (a receive in flight is then likely to get more; an idle long poll is
    /// not waited for).
    queue_busy: bool,
}

impl<'a, Q: Queue, R: TaskRunner, N: Notifier, D: Queue> State<'a, Q, R, N, D> {
    fn new(ports: &'a Ports<Q, R, N, D>, config: &'a WatcherConfig) -> Self {
        let now = Instant::now();
        State {
            ports,
            config,
            slots: HashMap::new(),
            acks: Vec::new(),
            notes: Vec::new(),
            summary: RunSummary::default(),
            receive_after: now,
            receive_hold: None,
            receive_failures: 0,
            received_once: false,
            next_poll: now,
            poll_failures: 0,
            poll_now: false,
            receive_in_flight: false,
            queue_busy: false,
        }
    }

    fn emit(&self, event: Event) {
        self.ports.events.emit(&event);
    }

    fn error(&mut self, action: &str, message_id: Option<&str>, error: &PortError) {
        self.summary.errors += 1;
        self.emit(Event::Error {
            action: action.to_string(),
            message_id: message_id.map(str::to_string),
            error: error.message.clone(),
        });
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        decide::retry_delay(attempt, self.config.max_retry_delay, self.config.jitter.sample())
    }

    fn renew_every(&self) -> Duration {
        self.config.heartbeat_window / 3
    }

    /// When the loop next has something to do on its own.
    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        let mut has_running = false;
        for slot in self.slots.values() {
            wake = wake.min(slot.next_heartbeat);
            match &slot.stage {
                Stage::Waiting { next_attempt, .. } => wake = wake.min(*next_attempt),
                Stage::Running { deadline, stop_sent, .. } => {
                    has_running = true;
                    if !stop_sent {
                        wake = wake.min(*deadline);
                    }
                }
            }
        }
        if has_running {
            wake = wake.min(self.next_poll);
        }
        for ack in &self.acks {
            wake = wake.min(ack.next_heartbeat);
        }
        let now = Instant::now();
        for due in [self.acks_due(true, now), self.acks_due(false, now)].into_iter().flatten() {
            wake = wake.min(due);
        }
        for note in &self.notes {
            wake = wake.min(note.due);
        }
        if let Some(hold) = self.receive_hold {
            wake = wake.min(hold);
        }
        if self.receive_after > Instant::now() {
            wake = wake.min(self.receive_after);
        }
        wake
    }

    /// Everything that is due now.
    async fn work(&mut self) {
        self.attempt_waiting().await;
        self.poll_running(false).await;
        self.stop_timed_out().await;
        self.heartbeat().await;
        self.flush_acks(false).await;
        self.send_notes(false).await;
    }

    /// Takes a receive's messages. A non-transient error before any receive worked ends the loop (a wrong queue URL
    /// or a missing permission); later, every error is retried (the loop may hold messages).
    fn on_received(&mut self, result: Result<Vec<ReceivedMessage>, PortError>) -> Result<(), Error> {
        let messages = match result {
            Ok(messages) => messages,
            Err(error) => {
                self.error("receive", None, &error);
                if !self.received_once && !error.is_transient() {
                    return Err(Error::Queue(error));
                }
                self.receive_failures += 1;
                self.receive_after = Instant::now() + self.retry_delay(self.receive_failures);
                return Ok(());
            }
        };
        self.received_once = true;
        self.receive_failures = 0;
        self.queue_busy = !messages.is_empty();
        let now = Instant::now();
        for message in messages {
            self.summary.received += 1;
            self.emit(Event::Received { message_id: message.message_id.clone(), receive_count: message.receive_count });
            if self.acks.iter().any(|ack| ack.message_id == message.message_id) {
                // Finished here, its delete or return still pending (and our hold lapsed): never run it again; the
                // pending call uses the new receipt handle, the only one that still works.
                for ack in self.acks.iter_mut().filter(|ack| ack.message_id == message.message_id) {
                    ack.receipt_handle.clone_from(&message.receipt_handle);
                    ack.next_heartbeat = now + self.config.heartbeat_window / 3;
                }
                continue;
            }
            if let Some(slot) = self.slots.get_mut(&message.message_id) {
                // We already hold it (our hold lapsed and we received it again): keep the one task, use the new
                // receipt handle, which is the only one that still works.
                slot.message.receipt_handle = message.receipt_handle;
                slot.message.receive_count = message.receive_count;
                slot.next_heartbeat = now + self.config.heartbeat_window / 3;
                continue;
            }
            let env = message::task_env(&message, &self.config.task_env);
            // A message received for the first time cannot have a task yet (a task is only ever started for a
            // received message), so the look for one (ECS: a ListTasks call) is skipped; from the second receive on,
            // or after an ambiguous launch failure, the loop looks before it launches.
            let checked_running = message.receive_count <= 1;
            let slot = Slot {
                env,
                stage: Stage::Waiting { next_attempt: now, attempts: 0, checked_running },
                next_heartbeat: now + self.config.heartbeat_window / 3,
                message,
            };
            self.slots.insert(slot.message.message_id.clone(), slot);
        }
        Ok(())
    }

    async fn attempt_waiting(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| matches!(slot.stage, Stage::Waiting { next_attempt, .. } if next_attempt <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.attempt(&id).await;
        }
    }

    /// One attempt to get a held message running: adopt its running task, dead-letter it if too large, or launch.
    async fn attempt(&mut self, id: &str) {
        let Some(slot) = self.slots.get(id) else { return };
        let Stage::Waiting { attempts, checked_running, .. } = slot.stage else { return };
        if !checked_running {
            match self.ports.runner.find_running(id).await {
                Ok(Some(handle)) => {
                    self.summary.adopted += 1;
                    self.emit(Event::Adopted { message_id: id.to_string(), task: handle_text(&handle) });
                    self.set_running(id, handle);
                    return;
                }
                Ok(None) => self.set_checked(id),
                Err(error) => {
                    self.error("find_running", Some(id), &error);
                    if error.is_transient() {
                        // Launching blind could start a duplicate: try again later.
                        self.retry_later(id, attempts + 1);
                        return;
                    }
                    self.set_checked(id);
                }
            }
        }
        let Some(slot) = self.slots.get(id) else { return };
        if let Some(reason) = self.config.task_size_limit.as_ref().and_then(|limit| limit.exceeded_by(&slot.env)) {
            self.too_large(id, reason, attempts).await;
            return;
        }
        let spec = TaskSpec { message_id: id.to_string(), env: slot.env.clone() };
        match self.ports.runner.launch(&spec).await {
            Ok(Launch::Started(handle)) => {
                self.summary.launched += 1;
                self.emit(Event::Launched { message_id: id.to_string(), task: handle_text(&handle) });
                self.set_running(id, handle);
            }
            Ok(Launch::NotPlaced { reason }) => {
                self.summary.not_placed += 1;
                let delay = self.retry_later(id, attempts + 1);
                self.emit(Event::NotPlaced {
                    message_id: id.to_string(),
                    reason,
                    retry_in_ms: delay.as_millis() as u64,
                });
            }
            Err(error) if error.kind == PortErrorKind::NotFound => {
                // No such cluster or task definition: the watcher's configuration, not the message, is wrong. Keep
                // the message (held, retried with backoff) rather than fail it towards the dead-letter queue.
                self.error("launch", Some(id), &error);
                self.retry_later(id, attempts + 1);
            }
            Err(error) if error.is_transient() => {
                // Throttling and the like: not the task's fault; keep the message and try again. A timeout or 5xx is
                // ambiguous (the task may have started), so the next attempt looks for a running task first.
                self.error("launch", Some(id), &error);
                self.retry_later(id, attempts + 1);
                self.set_checked_running(id, false);
            }
            Err(error) => {
                self.error("launch", Some(id), &error);
                let reason = format!("failed to start: {}", error.message);
                if let Some(slot) = self.slots.remove(id) {
                    self.finish(slot, None, reason, Some(Outcome::Failed), Duration::ZERO);
                }
            }
        }
    }

    fn set_checked(&mut self, id: &str) {
        self.set_checked_running(id, true);
    }

    fn set_checked_running(&mut self, id: &str, checked: bool) {
        if let Some(Slot { stage: Stage::Waiting { checked_running, .. }, .. }) = self.slots.get_mut(id) {
            *checked_running = checked;
        }
    }

    fn set_running(&mut self, id: &str, handle: R::Handle) {
        let now = Instant::now();
        let deadline = now + self.config.message_timeout;
        if let Some(slot) = self.slots.get_mut(id) {
            slot.stage = Stage::Running { handle, launched_at: now, deadline, timed_out: false, stop_sent: false };
        }
        // Poll soon after a launch; the timer takes it from there.
        self.next_poll = self.next_poll.min(now + self.config.poll_interval);
    }

    fn retry_later(&mut self, id: &str, attempts: u32) -> Duration {
        let delay = self.retry_delay(attempts);
        if let Some(Slot { stage: Stage::Waiting { next_attempt, attempts: stored, .. }, .. }) = self.slots.get_mut(id)
        {
            *next_attempt = Instant::now() + delay;
            *stored = attempts;
        }
        delay
    }

    /// A message whose environment the runner cannot take: never run. With a dead-letter queue it is copied there
    /// and deleted; without one it returns with backoff (the queue's redrive policy dead-letters it in time).
    async fn too_large(&mut self, id: &str, reason: String, attempts: u32) {
        let Some(dead_letter) = &self.ports.dead_letter else {
            if let Some(slot) = self.slots.remove(id) {
                let reason = format!("{reason}; no dead-letter queue is configured, so it returns to the queue");
                self.finish(slot, None, reason, Some(Outcome::Failed), Duration::ZERO);
            }
            return;
        };
        let Some(slot) = self.slots.get(id) else { return };
        let copy = OutgoingMessage {
            body: slot.message.body.clone(),
            attributes: slot.message.attributes.clone(),
            delay: Duration::ZERO,
        };
        match dead_letter.send(copy).await {
            Ok(_) => {
                let Some(slot) = self.slots.remove(id) else { return };
                self.summary.dead_lettered += 1;
                self.emit(Event::DeadLettered { message_id: id.to_string(), reason: reason.clone() });
                self.push_ack(AckKind::Delete, &slot);
                let report = Report {
                    stack_name: &self.config.stack_name,
                    now_ms: now_ms(),
                    message_id: id,
                    outcome: Outcome::Failed,
                    exit_code: None,
                    reason: &reason,
                    receive_count: slot.message.receive_count,
                    next: NextStep::DeadLettered,
                    env: &slot.env,
                };
                let notification = decide::notification(&report);
                self.push_note(id, notification);
            }
            Err(error) => {
                self.error("dead_letter", Some(id), &error);
                self.retry_later(id, attempts + 1);
            }
        }
    }

    /// Polls every running task in one call, when due (or `force`), and finishes those that stopped.
    async fn poll_running(&mut self, force: bool) {
        let now = Instant::now();
        if !(force || self.poll_now || now >= self.next_poll) {
            return;
        }
        let handles: Vec<R::Handle> = self
            .slots
            .values()
            .filter_map(|slot| match &slot.stage {
                Stage::Running { handle, .. } => Some(handle.clone()),
                Stage::Waiting { .. } => None,
            })
            .collect();
        if handles.is_empty() {
            return;
        }
        self.poll_now = false;
        match self.ports.runner.poll(&handles).await {
            Ok(states) => {
                self.poll_failures = 0;
                self.next_poll = Instant::now() + self.config.poll_interval;
                for (handle, task_state) in states {
                    if let TaskState::Stopped { exit_code, reason } = task_state {
                        self.on_stopped(&handle, exit_code, reason);
                    }
                }
            }
            Err(error) => {
                self.error("poll", None, &error);
                self.poll_failures += 1;
                self.next_poll = Instant::now() + self.retry_delay(self.poll_failures).max(self.config.poll_interval);
            }
        }
    }

    fn on_stopped(&mut self, stopped: &R::Handle, exit_code: Option<i32>, reason: String) {
        let id = self.slots.iter().find_map(|(id, slot)| match &slot.stage {
            Stage::Running { handle, .. } if handle == stopped => Some(id.clone()),
            _ => None,
        });
        let Some(slot) = id.and_then(|id| self.slots.remove(&id)) else { return };
        let Stage::Running { launched_at, timed_out, .. } = slot.stage else { return };
        let duration = launched_at.elapsed();
        if timed_out {
            let secs = self.config.message_timeout.as_secs();
            let reason = format!("timed out after {secs} s and was stopped ({reason})");
            self.finish(slot, exit_code, reason, Some(Outcome::Failed), duration);
        } else {
            self.finish(slot, exit_code, reason, None, duration);
        }
    }

    fn is_timed_out(&self, handle: &R::Handle) -> bool {
        self.slots
            .values()
            .any(|slot| matches!(&slot.stage, Stage::Running { handle: h, timed_out: true, .. } if h == handle))
    }

    /// Decides a finished message's fate: delete or return (queued as batched acks), and a notification if due.
    fn finish(
        &mut self,
        slot: Slot<R::Handle>,
        exit_code: Option<i32>,
        reason: String,
        forced: Option<Outcome>,
        duration: Duration,
    ) {
        let outcome = forced.unwrap_or_else(|| self.config.exit_codes.outcome(exit_code));
        let message = &slot.message;
        let action = outcome.action();
        let next = if action.delete {
            self.push_ack(AckKind::Delete, &slot);
            NextStep::Removed
        } else {
            let delay = decide::backoff_delay(message.receive_count, self.config.backoff, self.config.jitter.sample());
            self.push_ack(AckKind::Return(delay), &slot);
            NextStep::RetryAt(now_ms() + delay.as_millis() as u64)
        };
        match outcome {
            Outcome::Succeeded => self.summary.succeeded += 1,
            Outcome::Rejected => self.summary.rejected += 1,
            Outcome::Returned => self.summary.returned += 1,
            Outcome::Failed => self.summary.failed += 1,
        }
        self.emit(Event::Finished {
            message_id: message.message_id.clone(),
            outcome,
            exit_code,
            reason: reason.clone(),
            duration_ms: duration.as_millis() as u64,
            receive_count: message.receive_count,
        });
        if action.notify && decide::should_notify(outcome, message.receive_count, self.config.notify_after_retries) {
            let report = Report {
                stack_name: &self.config.stack_name,
                now_ms: now_ms(),
                message_id: &message.message_id,
                outcome,
                exit_code,
                reason: &reason,
                receive_count: message.receive_count,
                next,
                env: &slot.env,
            };
            let notification = decide::notification(&report);
            self.push_note(&message.message_id, notification);
        }
    }

    /// Whether to receive now with `free` slots: a full batch (or all that `workers` allows), an idle watcher, or a
    /// partial batch that has waited `batch_linger` for more slots to free up.
    fn may_receive(&mut self, free: usize) -> bool {
        let full = self.config.workers.min(BATCH);
        if self.config.batch_linger.is_zero() || free >= full || self.slots.is_empty() {
            return true;
        }
        let now = Instant::now();
        match self.receive_hold {
            Some(hold) => now >= hold,
            None => {
                self.receive_hold = Some(now + self.config.batch_linger);
                false
            }
        }
    }

    /// Queues a delete or return of a held message (its slot gone), keeping the slot's heartbeat schedule.
    fn push_ack(&mut self, kind: AckKind, slot: &Slot<R::Handle>) {
        let now = Instant::now();
        let due = now + self.config.batch_linger;
        let latest = if self.config.batch_linger.is_zero() { due } else { due.max(now + MAX_ACK_LINGER) };
        self.acks.push(Ack {
            kind,
            message_id: slot.message.message_id.clone(),
            receipt_handle: slot.message.receipt_handle.clone(),
            attempts: 0,
            due,
            latest,
            next_heartbeat: slot.next_heartbeat,
        });
    }

    fn push_note(&mut self, message_id: &str, notification: Notification) {
        self.notes.push(PendingNote {
            message_id: message_id.to_string(),
            notification,
            attempts: 0,
            due: Instant::now(),
        });
    }

    /// Stops tasks that ran past the message timeout (they finish as failures when the poll sees them stopped).
    async fn stop_timed_out(&mut self) {
        let now = Instant::now();
        let due: Vec<(String, R::Handle)> = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match &slot.stage {
                Stage::Running { handle, deadline, stop_sent: false, .. } if *deadline <= now => {
                    Some((id.clone(), handle.clone()))
                }
                _ => None,
            })
            .collect();
        for (id, handle) in due {
            let first =
                matches!(self.slots.get(&id), Some(Slot { stage: Stage::Running { timed_out: false, .. }, .. }));
            if first {
                self.emit(Event::TimedOut {
                    message_id: id.clone(),
                    timeout_secs: self.config.message_timeout.as_secs(),
                });
            }
            let result = self.ports.runner.stop(&handle, "message timeout").await;
            if let Err(error) = &result {
                self.error("stop", Some(&id), error);
            }
            let retry = self.retry_delay(2);
            if let Some(Slot { stage: Stage::Running { timed_out, stop_sent, deadline, .. }, .. }) =
                self.slots.get_mut(&id)
            {
                *timed_out = true;
                match result {
                    Ok(()) => *stop_sent = true,
                    Err(_) => *deadline = Instant::now() + retry,
                }
            }
            self.poll_now = true;
        }
    }

    /// When the pending deletes (`deletes`) or returns go: at once for a full batch; otherwise when the first is due,
    /// or, while more may join the batch (tasks held, a receive in flight on a busy queue), when the first must go.
    fn acks_due(&self, deletes: bool, now: Instant) -> Option<Instant> {
        let mut count = 0;
        let mut due: Option<Instant> = None;
        let mut latest: Option<Instant> = None;
        for ack in self.acks.iter().filter(|a| (a.kind == AckKind::Delete) == deletes) {
            count += 1;
            due = Some(due.map_or(ack.due, |d| d.min(ack.due)));
            latest = Some(latest.map_or(ack.latest, |l| l.min(ack.latest)));
        }
        if count >= BATCH {
            return Some(now);
        }
        let company = !self.slots.is_empty() || (self.receive_in_flight && self.queue_busy);
        if company { latest } else { due }
    }

    /// Extends the visibility of every held message whose renewal is due (and those due soon, to batch them).
    async fn heartbeat(&mut self) {
        let now = Instant::now();
        // Checked without allocating: this runs on every turn of the loop.
        let any_due = self.slots.values().any(|slot| slot.next_heartbeat <= now)
            || self.acks.iter().any(|ack| ack.next_heartbeat <= now);
        if !any_due {
            return;
        }
        let horizon = now + self.renew_every() / 2;
        // Held messages: slots, and finished messages whose delete or return is still pending.
        let held: Vec<(String, String, Instant)> = self
            .slots
            .iter()
            .map(|(id, slot)| (id.clone(), slot.message.receipt_handle.clone(), slot.next_heartbeat))
            .chain(self.acks.iter().map(|ack| (ack.message_id.clone(), ack.receipt_handle.clone(), ack.next_heartbeat)))
            .collect();
        // Renew those due soon in the same batch.
        let mut due: Vec<(String, String)> = held
            .into_iter()
            .filter(|(_, _, next)| *next <= horizon)
            .map(|(id, receipt_handle, _)| (id, receipt_handle))
            .collect();
        due.sort();
        due.dedup();
        for chunk in due.chunks(BATCH) {
            let changes: Vec<VisibilityChange> = chunk
                .iter()
                .map(|(_, receipt_handle)| VisibilityChange {
                    receipt_handle: receipt_handle.clone(),
                    timeout: self.config.heartbeat_window,
                })
                .collect();
            let result = self.ports.queue.change_visibility_batch(&changes).await;
            let renewed = Instant::now() + self.renew_every();
            let soon = Instant::now() + self.retry_delay(1);
            let failures = match result {
                Ok(failures) => failures.into_iter().map(|f| (f.index, f.error)).collect::<Vec<_>>(),
                Err(error) => (0..chunk.len()).map(|index| (index, error.clone())).collect(),
            };
            for (id, _) in chunk {
                self.set_next_heartbeat(id, renewed);
            }
            for (index, error) in failures {
                let Some((id, _)) = chunk.get(index) else { continue };
                self.error("heartbeat", Some(id), &error);
                if error.is_transient() {
                    self.set_next_heartbeat(id, soon);
                } else if matches!(error.kind, PortErrorKind::InvalidReceipt | PortErrorKind::NotFound)
                    && matches!(self.slots.get(id), Some(Slot { stage: Stage::Waiting { .. }, .. }))
                {
                    // Someone else received it (or it is gone): no longer ours to run. Not acked either: the receipt
                    // handle is dead. A running task is kept: the other watcher adopts it.
                    self.slots.remove(id);
                    self.emit(Event::Released { message_id: id.clone(), reason: error.message.clone() });
                }
            }
        }
    }

    fn set_next_heartbeat(&mut self, id: &str, next: Instant) {
        if let Some(slot) = self.slots.get_mut(id) {
            slot.next_heartbeat = next;
        }
        for ack in self.acks.iter_mut().filter(|ack| ack.message_id == id) {
            ack.next_heartbeat = next;
        }
    }

    /// Sends due deletes and returns in batches of 10; failed entries are retried (stale handles are dropped).
    async fn flush_acks(&mut self, all: bool) {
        if self.acks.is_empty() {
            return;
        }
        let now = Instant::now();
        // When one of a kind is due, or a full batch of it is waiting, all of that kind go together.
        let is_delete = |a: &Ack| a.kind == AckKind::Delete;
        let delete_due = self.acks_due(true, now).is_some_and(|due| due <= now);
        let return_due = self.acks_due(false, now).is_some_and(|due| due <= now);
        if !(all || delete_due || return_due) {
            return;
        }
        let (due, later): (Vec<Ack>, Vec<Ack>) = std::mem::take(&mut self.acks)
            .into_iter()
            .partition(|a| all || if is_delete(a) { delete_due } else { return_due });
        self.acks = later;
        let (deletes, returns): (Vec<Ack>, Vec<Ack>) = due.into_iter().partition(|a| a.kind == AckKind::Delete);
        for chunk in deletes.chunks(BATCH) {
            let handles: Vec<String> = chunk.iter().map(|a| a.receipt_handle.clone()).collect();
            let result = self.ports.queue.delete_batch(&handles).await;
            self.settle("delete", chunk, result);
        }
        for chunk in returns.chunks(BATCH) {
            let changes: Vec<VisibilityChange> = chunk
                .iter()
                .map(|a| VisibilityChange {
                    receipt_handle: a.receipt_handle.clone(),
                    timeout: match a.kind {
                        AckKind::Return(delay) => delay,
                        AckKind::Delete => Duration::ZERO,
                    },
                })
                .collect();
            let result = self.ports.queue.change_visibility_batch(&changes).await;
            self.settle("return", chunk, result);
        }
    }

    fn settle(&mut self, action: &str, chunk: &[Ack], result: Result<Vec<crate::ports::BatchFailure>, PortError>) {
        let failures: HashMap<usize, PortError> = match result {
            Ok(failures) => failures.into_iter().map(|f| (f.index, f.error)).collect(),
            Err(error) => (0..chunk.len()).map(|index| (index, error.clone())).collect(),
        };
        for (index, ack) in chunk.iter().enumerate() {
            match failures.get(&index) {
                None => match ack.kind {
                    AckKind::Delete => self.emit(Event::Deleted { message_id: ack.message_id.clone() }),
                    AckKind::Return(delay) => self.emit(Event::Returned {
                        message_id: ack.message_id.clone(),
                        delay_ms: delay.as_millis() as u64,
                    }),
                },
                Some(error) => {
                    self.error(action, Some(&ack.message_id), error);
                    let retryable = !matches!(error.kind, PortErrorKind::InvalidReceipt | PortErrorKind::NotFound);
                    let more = ack.kind == AckKind::Delete || ack.attempts + 1 < MAX_RETURN_ATTEMPTS;
                    if retryable && more {
                        let delay = self.retry_delay(ack.attempts + 1);
                        self.acks.push(Ack {
                            kind: ack.kind,
                            message_id: ack.message_id.clone(),
                            receipt_handle: ack.receipt_handle.clone(),
                            attempts: ack.attempts + 1,
                            due: Instant::now() + delay,
                            latest: Instant::now() + delay,
                            next_heartbeat: ack.next_heartbeat,
                        });
                    }
                }
            }
        }
    }

    /// Sends due notifications; a failed one is retried, and after the last try its text goes to the event log.
    async fn send_notes(&mut self, all: bool) {
        let now = Instant::now();
        if !(all || self.notes.iter().any(|n| n.due <= now)) {
            return;
        }
        let (due, later): (Vec<PendingNote>, Vec<PendingNote>) =
            std::mem::take(&mut self.notes).into_iter().partition(|n| all || n.due <= now);
        self.notes = later;
        for mut note in due {
            match self.ports.notifier.notify(&note.notification).await {
                Ok(()) => {
                    self.summary.notifications += 1;
                    self.emit(Event::Notified {
                        message_id: note.message_id.clone(),
                        subject: note.notification.subject.clone(),
                    });
                }
                Err(error) => {
                    self.error("notify", Some(&note.message_id), &error);
                    note.attempts += 1;
                    if error.is_transient() && note.attempts < MAX_NOTE_ATTEMPTS && !all {
                        note.due = Instant::now() + self.retry_delay(note.attempts);
                        self.notes.push(note);
                    } else {
                        self.emit(Event::Notification {
                            message_id: note.message_id,
                            subject: note.notification.subject,
                            body: note.notification.body,
                        });
                    }
                }
            }
        }
    }

    /// Graceful stop: finish tasks that already ended, stop the rest and wait for them (bounded), meanwhile let a
    /// receive in flight deliver (bounded), return every unfinished message at once, and flush what is pending.
    async fn shut_down(&mut self, receiving: Option<Receiving<'_>>) {
        let late = async move {
            let receiving = receiving?;
            match tokio::time::timeout(LATE_RECEIVE_GRACE, receiving).await {
                Ok(Ok(messages)) => Some(messages),
                _ => None,
            }
        };
        let ((), late) = tokio::join!(self.stop_tasks(), late);
        for message in late.unwrap_or_default() {
            self.summary.received += 1;
            self.summary.interrupted += 1;
            self.emit(Event::Received { message_id: message.message_id.clone(), receive_count: message.receive_count });
            self.acks.push(Ack {
                kind: AckKind::Return(Duration::ZERO),
                message_id: message.message_id,
                receipt_handle: message.receipt_handle,
                attempts: 0,
                due: Instant::now(),
                latest: Instant::now(),
                next_heartbeat: Instant::now() + self.renew_every(),
            });
        }
        // Every message still held returns at once: never deleted, since its task did not finish.
        let slots: Vec<Slot<R::Handle>> = self.slots.drain().map(|(_, slot)| slot).collect();
        for slot in &slots {
            self.summary.interrupted += 1;
            self.push_ack(AckKind::Return(Duration::ZERO), slot);
        }
        // Flush with a few quick retries; what still fails reappears by itself within one heartbeat window.
        for _ in 0..3 {
            self.flush_acks(true).await;
            if self.acks.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.send_notes(true).await;
    }

    /// The first part of a graceful stop: finish tasks that already ended, stop the rest and wait for them
    /// (bounded), holding their messages meanwhile.
    async fn stop_tasks(&mut self) {
        let running = self.slots.values().filter(|s| matches!(s.stage, Stage::Running { .. })).count();
        self.emit(Event::Stopping { running });
        // Tasks that ended before the stop get their normal outcome.
        self.poll_running(true).await;
        let handles: Vec<(String, R::Handle)> = if self.config.on_shutdown == OnShutdown::LeaveRunning {
            Vec::new()
        } else {
            self.slots
                .iter()
                .filter_map(|(id, slot)| match &slot.stage {
                    Stage::Running { handle, .. } => Some((id.clone(), handle.clone())),
                    Stage::Waiting { .. } => None,
                })
                .collect()
        };
        for (id, handle) in &handles {
            if let Err(error) = self.ports.runner.stop(handle, "watcher shutting down").await {
                self.error("stop", Some(id), &error);
            }
        }
        // Wait (bounded) for the stopped tasks to end, holding their messages meanwhile.
        let deadline = Instant::now() + self.config.shutdown_grace;
        let mut remaining: Vec<R::Handle> = handles.into_iter().map(|(_, handle)| handle).collect();
        while !remaining.is_empty() && Instant::now() < deadline {
            match self.ports.runner.poll(&remaining).await {
                Ok(states) => {
                    for (handle, task_state) in states {
                        let TaskState::Stopped { exit_code, reason } = task_state else { continue };
                        remaining.retain(|h| h != &handle);
                        // A worker that finished its job as it was told to stop (exit 0 or 3) keeps its outcome:
                        // returning the message would run it again. Any other exit is the interruption itself,
                        // and the message returns at once below.
                        if self.config.exit_codes.outcome(exit_code).action().delete && !self.is_timed_out(&handle) {
                            self.on_stopped(&handle, exit_code, reason);
                        }
                    }
                }
                Err(error) => self.error("poll", None, &error),
            }
            if remaining.is_empty() {
                break;
            }
            self.heartbeat().await;
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval.min(Duration::from_secs(1))) => {}
                () = self.ports.runner.changed() => {}
            }
        }
    }
}

// The ports behind an `Arc`, so a caller can keep a handle (e.g. to read a local queue's counts after the loop).
impl<T: Queue> Queue for Arc<T> {
    fn receive(&self, request: ReceiveRequest) -> impl Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send {
        (**self).receive(request)
    }
    fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<Vec<crate::ports::BatchFailure>, PortError>> + Send {
        (**self).delete_batch(receipt_handles)
    }
    fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> impl Future<Output = Result<Vec<crate::ports::BatchFailure>, PortError>> + Send {
        (**self).change_visibility_batch(changes)
    }
    fn send(&self, message: OutgoingMessage) -> impl Future<Output = Result<String, PortError>> + Send {
        (**self).send(message)
    }
}

impl<T: TaskRunner> TaskRunner for Arc<T> {
    type Handle = T::Handle;
    fn find_running(&self, message_id: &str) -> impl Future<Output = Result<Option<Self::Handle>, PortError>> + Send {
        (**self).find_running(message_id)
    }
    fn launch(&self, spec: &TaskSpec) -> impl Future<Output = Result<Launch<Self::Handle>, PortError>> + Send {
        (**self).launch(spec)
    }
    fn poll(
        &self,
        handles: &[Self::Handle],
    ) -> impl Future<Output = Result<Vec<(Self::Handle, TaskState)>, PortError>> + Send {
        (**self).poll(handles)
    }
    fn stop(&self, handle: &Self::Handle, reason: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).stop(handle, reason)
    }
    fn changed(&self) -> impl Future<Output = ()> + Send {
        (**self).changed()
    }
}

impl<T: Notifier> Notifier for Arc<T> {
    fn notify(&self, notification: &Notification) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).notify(notification)
    }
}
