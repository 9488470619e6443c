//! The loop: receive (long polling, at most `workers` messages held), launch one task per message (or adopt the
//! one already running), keep held messages invisible with a heartbeat, poll tasks in one batched call, stop tasks
//! that outlive the message timeout, and turn each exit code into a delete or a return (batched), plus
//! notifications. Errors from the world are retried; the loop ends only when `shutdown` resolves.
//!
//! The loop is one task and one `select!` ([`run`]): it never awaits a call in line. Each call to the world is a
//! future in flight (`calls`), and what it returns is applied to the loop's state when it ends, so a slow or hung
//! call (a delete, a publish, a launch, a renewal) holds up nothing but itself. The state is the registry of held
//! messages (`held`), in which each message is in exactly one stage, and one small part per concern:
//!
//! - `intake`: when to receive and what to do with received messages;
//! - `launch`: getting a held message running: adopt its task, launch one, or dead-letter it if too large;
//! - `tasks`: polling running tasks and stopping those past the message timeout;
//! - `finish`: a task's end → its outcome → a delete or return, and a notification;
//! - `dead_letters`: a message's last receive announced, and the queue's own moves counted and notified;
//! - `acks`: the batched deletes and returns;
//! - `heartbeat`: renewing every hold before it lapses, each renewal with its own deadline;
//! - `notes`: notifications, retried;
//! - `shutdown`: the graceful stop.

mod acks;
mod calls;
mod config;
mod dead_letters;
mod finish;
mod heartbeat;
mod held;
mod intake;
mod launch;
mod notes;
mod shutdown;
mod tasks;

pub use crate::message::TaskSizeLimit;
pub use config::{Jitter, OnShutdown, WatcherConfig};

use crate::decide::{self, HeartbeatTiming};
use crate::events::{Event, EventSink, Level, StderrJson};
use crate::ports::{AttemptLog, Notifier, PortError, Queue, ReceivedMessage, TaskRunner};
use calls::Calls;
use held::Registry;
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
    /// Where each finished attempt is recorded, with the task's output (local mode's history); `None`: nowhere.
    pub attempts: Option<Arc<dyn AttemptLog>>,
}

impl<Q: Queue, R: TaskRunner, N: Notifier> Ports<Q, R, N, Q> {
    /// Ports without a dead-letter queue, events as JSON lines on stderr.
    pub fn new(queue: Q, runner: R, notifier: N) -> Ports<Q, R, N, Q> {
        Ports {
            queue,
            runner,
            notifier,
            dead_letter: None,
            events: Arc::new(StderrJson { level: Level::Info }),
            attempts: None,
        }
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
            attempts: self.attempts,
        }
    }

    /// Records every finished attempt here (and reads every stopped task's output for it).
    pub fn with_attempt_log(mut self, attempts: impl AttemptLog) -> Ports<Q, R, N, D> {
        self.attempts = Some(Arc::new(attempts));
        self
    }

    /// Sets where events go.
    pub fn with_events(mut self, events: impl EventSink) -> Ports<Q, R, N, D> {
        self.events = Arc::new(events);
        self
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
    /// Sent to the dead-letter queue: copied there (too large to run), returned on the last receive the redrive
    /// policy allows, or moved there by the queue at receive time without this loop seeing its last receive.
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
#[non_exhaustive]
pub enum Error {
    /// The config makes no sense.
    #[error("invalid watcher config: {0}")]
    Config(String),
    /// The very first receives failed for a reason retrying will not fix (no such queue, access denied): a
    /// configuration error, not an outage.
    #[error("cannot receive from the work queue (QueueUrl): {0}")]
    Queue(#[source] PortError),
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
    config::validate(config)?;
    let mut state = Loop::new(&ports, config);
    state.emit(Event::Started { workers: config.workers });
    tokio::pin!(shutdown);
    let mut shutdown_asked = false;
    let mut receiving: Option<Receiving<'_>> = None;
    // A receive in flight at shutdown may already have messages on their way: it gets a moment to deliver them (they
    // return at once), and is dropped after that.
    let mut late_receive_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        state.start_due_work(now);
        if receiving.is_none()
            && let Some(request) = state.receive_request(now)
        {
            receiving = Some(Box::pin(ports.queue.receive(request)));
        }
        state.intake.in_flight = receiving.is_some();
        if receiving.is_none() && state.finished() {
            break;
        }
        let wake = state.next_wake();
        let watch_tasks = state.held.any_running();
        tokio::select! {
            biased;
            () = &mut shutdown, if !shutdown_asked => {
                shutdown_asked = true;
                late_receive_until = Some(Instant::now() + shutdown::LATE_RECEIVE_GRACE);
                state.begin_shutdown();
            }
            result = async { receiving.as_mut().expect("guarded").await }, if receiving.is_some() => {
                receiving = None;
                state.on_received(result)?;
            }
            () = async { tokio::time::sleep_until(late_receive_until.expect("guarded")).await },
                if receiving.is_some() && late_receive_until.is_some() => receiving = None,
            done = state.calls.next() => state.apply(done),
            () = ports.runner.changed(), if watch_tasks => state.tasks.poll_now = true,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    let summary = state.summary;
    state.emit(Event::Stopped { received: summary.received, succeeded: summary.succeeded, failed: summary.failed });
    Ok(summary)
}

/// A handle as text for events: its `Debug` form, without the quotes of a string handle (an ECS task ARN).
fn handle_text(handle: &impl std::fmt::Debug) -> String {
    let text = format!("{handle:?}");
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).map(str::to_string).unwrap_or(text)
}

/// Messages per batch call (SQS's limit).
const BATCH: usize = 10;

/// The receive in flight (at most one).
type Receiving<'a> = Pin<Box<dyn Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send + 'a>>;

/// The loop's state: the held messages, one part per concern, and the calls in flight.
struct Loop<'a, Q, R: TaskRunner, N, D> {
    ports: &'a Ports<Q, R, N, D>,
    config: &'a WatcherConfig,
    timing: HeartbeatTiming,
    held: Registry<R::Handle>,
    calls: Calls<'a, R::Handle>,
    intake: intake::Intake,
    tasks: tasks::Polling,
    notes: notes::Notes,
    announced: dead_letters::Announced,
    shutdown: Option<shutdown::Shutdown>,
    summary: RunSummary,
    /// The last sequence number given (acknowledgements go oldest first).
    seq: u64,
}

impl<'a, Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'a, Q, R, N, D> {
    fn new(ports: &'a Ports<Q, R, N, D>, config: &'a WatcherConfig) -> Self {
        let now = Instant::now();
        Loop {
            ports,
            config,
            timing: decide::heartbeat_timing(config.heartbeat_window),
            held: Registry::new(),
            calls: Calls::new(),
            intake: intake::Intake::new(now),
            tasks: tasks::Polling::new(now),
            notes: notes::Notes::default(),
            announced: dead_letters::Announced::default(),
            shutdown: None,
            summary: RunSummary::default(),
            seq: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
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

    fn stopping(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Starts every call that is due now (none is awaited here).
    fn start_due_work(&mut self, now: Instant) {
        if self.stopping() {
            self.shutdown_step(now);
        } else {
            self.start_attempts(now);
        }
        self.start_poll(now);
        self.stop_timed_out(now);
        self.renew_holds(now);
        self.flush_acks(now);
        self.send_notes(now);
    }

    /// Applies an ended call.
    fn apply(&mut self, done: calls::Done<R::Handle>) {
        use calls::Done;
        match done {
            Done::FoundRunning { id, result } => self.on_found_running(&id, result),
            Done::Launched { id, result } => self.on_launched(&id, result),
            Done::DeadLetterCopied { id, reason, result } => self.on_dead_letter_copied(&id, reason, result),
            Done::Polled { result, mut outputs } => self.on_polled(result, &mut outputs),
            Done::Stopped { id, timeout, result } => self.on_stop_sent(&id, timeout, result),
            Done::Renewed { entries, sent_at, result } => self.on_renewed(entries, sent_at, result),
            Done::Acked { kind, entries, result } => self.on_acked(kind, entries, result),
            Done::Notified { note, result } => self.on_notified(note, result),
        }
    }

    /// When the loop next has something to do on its own (calls ending wake it too).
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(3600);
        for held in self.held.iter().map(|(_, held)| held) {
            if !held.hold.renewing && Self::may_renew(&held.stage) {
                wake = wake.min(held.hold.next_renewal);
            }
            match &held.stage {
                held::Stage::Waiting { next_attempt, .. } => wake = wake.min(*next_attempt),
                held::Stage::Running(running) if running.stop == held::StopState::NotAsked => {
                    wake = wake.min(running.deadline)
                }
                _ => {}
            }
        }
        if let Some(at) = self.poll_due_at(now) {
            wake = wake.min(at);
        }
        for due in [self.acks_due(true, now), self.acks_due(false, now)].into_iter().flatten() {
            wake = wake.min(due);
        }
        if let Some(due) = self.notes_due() {
            wake = wake.min(due);
        }
        if let Some(at) = self.intake.next_wake(now) {
            wake = wake.min(at);
        }
        if let Some(at) = self.shutdown.as_ref().and_then(|s| s.next_wake()) {
            wake = wake.min(at);
        }
        wake
    }
}
