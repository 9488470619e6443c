//! In-process fakes of the ports, for the loop's scenarios (and other crates' tests, with the `test-util` feature).
//!
//! Time is tokio's, so tests run with `#[tokio::test(start_paused = true)]` and jump through minutes at once. Every
//! fake is a cheap handle (clone it, give one to the loop, keep one to look inside) and records its calls, so a
//! test asserts the exact deletes and visibility changes. [`Recorder`] keeps the loop's events.

use crate::events::{Event, EventSink};
use crate::ports::{
    BatchFailure, Launch, Notification, Notifier, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest,
    ReceivedMessage, TaskRunner, TaskSpec, TaskState, VisibilityChange,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Epoch ms the fake clock starts at.
pub const EPOCH_MS: u64 = 1_795_000_000_000;

/// A call the fake queue saw, with message ids resolved from receipt handles, and when (since the queue was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCall {
    /// `receive(max, wait)` and the message ids it returned.
    Receive { at: Duration, max: u8, wait: Duration, got: Vec<String> },
    /// `delete_batch` of these messages.
    Delete { at: Duration, ids: Vec<String> },
    /// `change_visibility_batch`: (message id, timeout) pairs.
    ChangeVisibility { at: Duration, changes: Vec<(String, Duration)> },
    /// `send` of this body.
    Send { at: Duration, body: String },
}

#[derive(Debug, Clone)]
struct FakeMessage {
    id: String,
    body: String,
    attributes: BTreeMap<String, String>,
    sent_ms: u64,
    first_receive_ms: Option<u64>,
    receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

#[derive(Debug, Default)]
struct QueueState {
    messages: Vec<FakeMessage>,
    calls: Vec<QueueCall>,
    next_id: u64,
    failures: HashMap<&'static str, VecDeque<PortError>>,
    hangs: HashMap<&'static str, VecDeque<Duration>>,
    receive_latency: Duration,
}

/// An in-memory queue with SQS semantics: visibility timeouts, receive counts, receipt handles that go stale on the
/// next receive, long polling.
#[derive(Debug, Clone)]
pub struct FakeQueue {
    state: Arc<Mutex<QueueState>>,
    arrived: Arc<Notify>,
    start: Instant,
    /// Visibility timeout when a receive does not set one.
    pub default_visibility: Duration,
}

impl Default for FakeQueue {
    fn default() -> FakeQueue {
        FakeQueue::new()
    }
}

impl FakeQueue {
    /// An empty queue.
    pub fn new() -> FakeQueue {
        FakeQueue {
            state: Arc::default(),
            arrived: Arc::new(Notify::new()),
            start: Instant::now(),
            default_visibility: Duration::from_secs(30),
        }
    }

    fn since_start(&self) -> Duration {
        Instant::now().duration_since(self.start)
    }

    /// Adds a message (as a direct send would) and returns its id (`m-1`, `m-2` ...).
    pub fn push(&self, body: &str) -> String {
        self.push_with(body, BTreeMap::new())
    }

    /// Adds a message with attributes.
    pub fn push_with(&self, body: &str, attributes: BTreeMap<String, String>) -> String {
        let mut state = lock(&self.state);
        state.next_id += 1;
        let id = format!("m-{}", state.next_id);
        let sent_ms = EPOCH_MS + self.since_start().as_millis() as u64;
        state.messages.push(FakeMessage {
            id: id.clone(),
            body: body.to_string(),
            attributes,
            sent_ms,
            first_receive_ms: None,
            receive_count: 0,
            visible_at: Instant::now(),
            receipt: None,
        });
        drop(state);
        self.arrived.notify_waiters();
        id
    }

    /// Sets how many times a message was received before (as if other watchers had received it and let it go).
    pub fn set_receive_count(&self, id: &str, count: u32) {
        let mut state = lock(&self.state);
        if let Some(message) = state.messages.iter_mut().find(|m| m.id == id) {
            message.receive_count = count;
        }
    }

    /// Makes the next `count` calls of `operation` (`receive`, `delete`, `change_visibility`, `send`) fail with
    /// `error`.
    pub fn fail_next(&self, operation: &'static str, count: usize, error: PortError) {
        let mut state = lock(&self.state);
        let queue = state.failures.entry(operation).or_default();
        for _ in 0..count {
            queue.push_back(error.clone());
        }
    }

    /// Makes each receive answer this long after it took its messages (a response in transit): a receive abandoned
    /// meanwhile leaves its messages invisible, as with SQS.
    pub fn set_receive_latency(&self, latency: Duration) {
        lock(&self.state).receive_latency = latency;
    }

    fn take_failure(&self, operation: &'static str) -> Option<PortError> {
        lock(&self.state).failures.get_mut(operation).and_then(VecDeque::pop_front)
    }

    /// Makes the next `count` calls of `operation` (`delete`, `change_visibility`) hang for `duration` before they
    /// do anything (a stalled connection): a call dropped meanwhile has no effect.
    pub fn hang_next(&self, operation: &'static str, count: usize, duration: Duration) {
        let mut state = lock(&self.state);
        let hangs = state.hangs.entry(operation).or_default();
        for _ in 0..count {
            hangs.push_back(duration);
        }
    }

    async fn hang(&self, operation: &'static str) {
        let hang = lock(&self.state).hangs.get_mut(operation).and_then(VecDeque::pop_front);
        if let Some(duration) = hang {
            tokio::time::sleep(duration).await;
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<QueueCall> {
        lock(&self.state).calls.clone()
    }

    /// Ids of deleted messages, in order of deletion.
    pub fn deleted(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .flat_map(|call| match call {
                QueueCall::Delete { ids, .. } => ids,
                _ => Vec::new(),
            })
            .collect()
    }

    /// Visibility changes made to one message, in order: (when, timeout).
    pub fn visibility_changes(&self, id: &str) -> Vec<(Duration, Duration)> {
        self.calls()
            .into_iter()
            .flat_map(|call| match call {
                QueueCall::ChangeVisibility { at, changes } => {
                    changes.into_iter().filter(|(m, _)| m == id).map(|(_, timeout)| (at, timeout)).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }

    /// How many receive calls were made.
    pub fn receive_calls(&self) -> usize {
        self.calls().iter().filter(|c| matches!(c, QueueCall::Receive { .. })).count()
    }

    /// Bodies sent to this queue (when it serves as a dead-letter queue).
    pub fn sent(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                QueueCall::Send { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    /// Whether the message is still in the queue.
    pub fn contains(&self, id: &str) -> bool {
        lock(&self.state).messages.iter().any(|m| m.id == id)
    }

    /// Whether the message is in the queue and visible now.
    pub fn is_visible(&self, id: &str) -> bool {
        let now = Instant::now();
        lock(&self.state).messages.iter().any(|m| m.id == id && m.visible_at <= now)
    }

    /// The message's receive count (0 if never received or gone).
    pub fn receive_count(&self, id: &str) -> u32 {
        lock(&self.state).messages.iter().find(|m| m.id == id).map_or(0, |m| m.receive_count)
    }

    fn resolve(state: &QueueState, receipt: &str) -> Result<String, PortError> {
        state
            .messages
            .iter()
            .find(|m| m.receipt.as_deref() == Some(receipt))
            .map(|m| m.id.clone())
            .ok_or_else(|| PortError::new(PortErrorKind::InvalidReceipt, format!("stale receipt handle {receipt}")))
    }
}

impl Queue for FakeQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, PortError> {
        if let Some(error) = self.take_failure("receive") {
            return Err(error);
        }
        let deadline = Instant::now() + request.wait;
        loop {
            let arrived = self.arrived.notified();
            let now = Instant::now();
            // Either the messages taken (and the answer's latency), or when to look again.
            let step: Result<(Vec<ReceivedMessage>, Duration), Instant> = {
                let mut state = lock(&self.state);
                let visibility = request.visibility_timeout.unwrap_or(self.default_visibility);
                let mut got = Vec::new();
                let mut next_visible: Option<Instant> = None;
                for message in state.messages.iter_mut() {
                    if message.visible_at > now {
                        next_visible = Some(next_visible.map_or(message.visible_at, |t| t.min(message.visible_at)));
                        continue;
                    }
                    if got.len() >= usize::from(request.max_messages) {
                        break;
                    }
                    message.receive_count += 1;
                    let now_ms = EPOCH_MS + self.start.elapsed().as_millis() as u64;
                    message.first_receive_ms.get_or_insert(now_ms);
                    message.visible_at = now + visibility;
                    let receipt = format!("{}#{}", message.id, message.receive_count);
                    message.receipt = Some(receipt.clone());
                    got.push(ReceivedMessage {
                        message_id: message.id.clone(),
                        receipt_handle: receipt,
                        body: message.body.clone(),
                        sent_timestamp_ms: message.sent_ms,
                        first_receive_timestamp_ms: message.first_receive_ms.unwrap_or(now_ms),
                        receive_count: message.receive_count,
                        attributes: message.attributes.clone(),
                    });
                }
                if !got.is_empty() || now >= deadline {
                    let at = now.duration_since(self.start);
                    let ids = got.iter().map(|m| m.message_id.clone()).collect();
                    state.calls.push(QueueCall::Receive {
                        at,
                        max: request.max_messages,
                        wait: request.wait,
                        got: ids,
                    });
                    Ok((got, state.receive_latency))
                } else {
                    Err(next_visible.map_or(deadline, |t| t.min(deadline)))
                }
            };
            let until = match step {
                Ok((got, latency)) => {
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    return Ok(got);
                }
                Err(until) => until,
            };
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send {
        let handles = receipt_handles.to_vec();
        async move {
            self.hang("delete").await;
            if let Some(error) = self.take_failure("delete") {
                return Err(error);
            }
            let at = self.since_start();
            let mut state = lock(&self.state);
            let mut failures = Vec::new();
            let mut ids = Vec::new();
            for (index, handle) in handles.iter().enumerate() {
                match FakeQueue::resolve(&state, handle) {
                    Ok(id) => {
                        state.messages.retain(|m| m.id != id);
                        ids.push(id);
                    }
                    Err(error) => failures.push(BatchFailure { index, error }),
                }
            }
            state.calls.push(QueueCall::Delete { at, ids });
            Ok(failures)
        }
    }

    fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send {
        let changes = changes.to_vec();
        async move {
            self.hang("change_visibility").await;
            if let Some(error) = self.take_failure("change_visibility") {
                return Err(error);
            }
            let at = self.since_start();
            let now = Instant::now();
            let mut state = lock(&self.state);
            let mut failures = Vec::new();
            let mut done = Vec::new();
            for (index, change) in changes.iter().enumerate() {
                match FakeQueue::resolve(&state, &change.receipt_handle) {
                    Ok(id) => {
                        if let Some(message) = state.messages.iter_mut().find(|m| m.id == id) {
                            message.visible_at = now + change.timeout;
                        }
                        done.push((id, change.timeout));
                    }
                    Err(error) => failures.push(BatchFailure { index, error }),
                }
            }
            state.calls.push(QueueCall::ChangeVisibility { at, changes: done });
            drop(state);
            self.arrived.notify_waiters();
            Ok(failures)
        }
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, PortError> {
        if let Some(error) = self.take_failure("send") {
            return Err(error);
        }
        let at = self.since_start();
        lock(&self.state).calls.push(QueueCall::Send { at, body: message.body.clone() });
        Ok(self.push_with(&message.body, message.attributes))
    }
}

/// What a fake task does, decided per launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Runs this long, then exits with this code (`None`: killed).
    Exit { after: Duration, code: Option<i32> },
    /// Runs until stopped.
    Forever,
    /// The launch is not placed (capacity), with this reason.
    NotPlaced(String),
    /// The launch call fails.
    Fail(PortError),
    /// The launch call fails (e.g. RunTask timed out or answered 5xx) although the task did start, and runs as
    /// `task` says: the ambiguous failure a watcher must not answer with a second launch.
    FailAfterStart {
        /// What the task that did start does.
        task: Box<Script>,
        /// The error the launch call returns.
        error: PortError,
    },
    /// Runs until stopped, then exits with this code (a worker that handles SIGTERM and finishes its job).
    UntilStopped(Option<i32>),
}

impl Script {
    /// The default script, read from the task's `Message`: `"<code>"`, `"<code>@<seconds>"`, `"forever"`,
    /// `"unplaced:<n>@..."` (not placed on the first n attempts, then the rest). Anything else exits 0 at once.
    pub fn from_message(spec: &TaskSpec, attempt: u32) -> Script {
        let text = spec.env.get("Message").map(String::as_str).unwrap_or_default();
        let mut text = text.trim();
        if let Some(rest) = text.strip_prefix("unplaced:") {
            let (n, rest) = rest.split_once('@').unwrap_or((rest, "0"));
            if attempt <= n.parse().unwrap_or(0) {
                return Script::NotPlaced("RESOURCE:MEMORY".into());
            }
            text = rest;
        }
        if text == "forever" {
            return Script::Forever;
        }
        let (code, secs) = text.split_once('@').unwrap_or((text, "0"));
        Script::Exit {
            after: Duration::from_secs_f64(secs.parse().unwrap_or(0.0)),
            code: Some(code.parse().unwrap_or(0)),
        }
    }
}

/// A call the fake runner saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerCall {
    /// `find_running(message id)`.
    FindRunning(String),
    /// `launch` for this message id.
    Launch(String),
    /// `poll` of this many handles.
    Poll(usize),
    /// `stop` of the task of this message id, with the reason.
    Stop(String, String),
}

#[derive(Debug, Clone)]
struct FakeTask {
    message_id: String,
    env: BTreeMap<String, String>,
    started: Instant,
    script: Script,
    stopped: Option<(Option<i32>, String)>,
}

type ScriptFn = dyn Fn(&TaskSpec, u32) -> Script + Send + Sync;

struct RunnerState {
    tasks: HashMap<u64, FakeTask>,
    next: u64,
    attempts: HashMap<String, u32>,
    calls: Vec<RunnerCall>,
    poll_failures: VecDeque<PortError>,
}

/// A runner whose tasks follow a [`Script`] chosen per launch (by default from the message text).
#[derive(Clone)]
pub struct FakeRunner {
    state: Arc<Mutex<RunnerState>>,
    script: Arc<ScriptFn>,
}

impl std::fmt::Debug for FakeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRunner").finish_non_exhaustive()
    }
}

impl Default for FakeRunner {
    fn default() -> FakeRunner {
        FakeRunner::new()
    }
}

impl FakeRunner {
    /// Tasks scripted by their message text ([`Script::from_message`]).
    pub fn new() -> FakeRunner {
        FakeRunner::scripted(Script::from_message)
    }

    /// Tasks scripted by `script(spec, attempt)` (attempt counts launches for that message id, from 1).
    pub fn scripted(script: impl Fn(&TaskSpec, u32) -> Script + Send + Sync + 'static) -> FakeRunner {
        FakeRunner {
            state: Arc::new(Mutex::new(RunnerState {
                tasks: HashMap::new(),
                next: 0,
                attempts: HashMap::new(),
                calls: Vec::new(),
                poll_failures: VecDeque::new(),
            })),
            script: Arc::new(script),
        }
    }

    /// A task for this message already running (started by another watcher); returns its handle.
    pub fn start_elsewhere(&self, message_id: &str, script: Script) -> u64 {
        let mut state = lock(&self.state);
        state.next += 1;
        let handle = state.next;
        state.tasks.insert(
            handle,
            FakeTask {
                message_id: message_id.into(),
                env: BTreeMap::new(),
                started: Instant::now(),
                script,
                stopped: None,
            },
        );
        handle
    }

    /// Makes the next `count` polls fail.
    pub fn fail_polls(&self, count: usize, error: PortError) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            state.poll_failures.push_back(error.clone());
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RunnerCall> {
        lock(&self.state).calls.clone()
    }

    /// Message ids of successful launches (tasks started), in order.
    pub fn launched(&self) -> Vec<String> {
        let state = lock(&self.state);
        let mut tasks: Vec<(&u64, &FakeTask)> = state.tasks.iter().filter(|(_, t)| !t.env.is_empty()).collect();
        tasks.sort_by_key(|(handle, _)| **handle);
        tasks.into_iter().map(|(_, t)| t.message_id.clone()).collect()
    }

    /// The environment of the first task started for this message.
    pub fn env_of(&self, message_id: &str) -> Option<BTreeMap<String, String>> {
        let state = lock(&self.state);
        let mut tasks: Vec<(&u64, &FakeTask)> =
            state.tasks.iter().filter(|(_, t)| t.message_id == message_id).collect();
        tasks.sort_by_key(|(handle, _)| **handle);
        tasks.first().map(|(_, t)| t.env.clone())
    }

    /// Tasks still running now.
    pub fn running(&self) -> Vec<String> {
        let now = Instant::now();
        let state = lock(&self.state);
        state
            .tasks
            .values()
            .filter(|t| FakeRunner::state_of(t, now) == TaskState::Running)
            .map(|t| t.message_id.clone())
            .collect()
    }

    fn start(state: &mut RunnerState, spec: &TaskSpec, script: Script) -> u64 {
        state.next += 1;
        let handle = state.next;
        let mut env = spec.env.clone();
        // Marks a task started here (vs. `start_elsewhere`) even with an empty env.
        env.entry("MessageId".into()).or_insert_with(|| spec.message_id.clone());
        let task =
            FakeTask { message_id: spec.message_id.clone(), env, started: Instant::now(), script, stopped: None };
        state.tasks.insert(handle, task);
        handle
    }

    fn state_of(task: &FakeTask, now: Instant) -> TaskState {
        if let Some((exit_code, reason)) = &task.stopped {
            return TaskState::Stopped { exit_code: *exit_code, reason: reason.clone() };
        }
        match &task.script {
            Script::Exit { after, code } if now >= task.started + *after => {
                TaskState::Stopped { exit_code: *code, reason: "Essential container in task exited".into() }
            }
            _ => TaskState::Running,
        }
    }
}

impl TaskRunner for FakeRunner {
    type Handle = u64;

    fn find_running(&self, message_id: &str) -> impl Future<Output = Result<Option<u64>, PortError>> + Send {
        let message_id = message_id.to_string();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::FindRunning(message_id.clone()));
            Ok(state
                .tasks
                .iter()
                .find(|(_, t)| t.message_id == message_id && FakeRunner::state_of(t, now) == TaskState::Running)
                .map(|(handle, _)| *handle))
        }
    }

    fn launch(&self, spec: &TaskSpec) -> impl Future<Output = Result<Launch<u64>, PortError>> + Send {
        let spec = spec.clone();
        async move {
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::Launch(spec.message_id.clone()));
            let attempt = {
                let attempts = state.attempts.entry(spec.message_id.clone()).or_insert(0);
                *attempts += 1;
                *attempts
            };
            let script = (self.script)(&spec, attempt);
            match script {
                Script::NotPlaced(reason) => Ok(Launch::NotPlaced { reason }),
                Script::Fail(error) => Err(error),
                Script::FailAfterStart { task, error } => {
                    FakeRunner::start(&mut state, &spec, *task);
                    Err(error)
                }
                script => Ok(Launch::Started(FakeRunner::start(&mut state, &spec, script))),
            }
        }
    }

    fn poll(&self, handles: &[u64]) -> impl Future<Output = Result<Vec<(u64, TaskState)>, PortError>> + Send {
        let handles = handles.to_vec();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::Poll(handles.len()));
            if let Some(error) = state.poll_failures.pop_front() {
                return Err(error);
            }
            Ok(handles
                .into_iter()
                .map(|handle| {
                    let task_state = state
                        .tasks
                        .get(&handle)
                        .map_or(TaskState::Stopped { exit_code: None, reason: "unknown task".into() }, |t| {
                            FakeRunner::state_of(t, now)
                        });
                    (handle, task_state)
                })
                .collect())
        }
    }

    fn stop(&self, handle: &u64, reason: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        let handle = *handle;
        let reason = reason.to_string();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            let Some(task) = state.tasks.get_mut(&handle) else {
                return Err(PortError::new(PortErrorKind::NotFound, format!("no task {handle}")));
            };
            let message_id = task.message_id.clone();
            if FakeRunner::state_of(task, now) == TaskState::Running {
                let code = match task.script {
                    Script::UntilStopped(code) => code,
                    _ => None,
                };
                task.stopped = Some((code, format!("stopped: {reason}")));
            }
            state.calls.push(RunnerCall::Stop(message_id, reason));
            Ok(())
        }
    }
}

/// Records notifications; can be made to fail.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
    failures: Arc<Mutex<VecDeque<PortError>>>,
    hangs: Arc<Mutex<VecDeque<Duration>>>,
}

impl RecordingNotifier {
    /// Notifications sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }

    /// Makes the next `count` notifications fail.
    pub fn fail_next(&self, count: usize, error: PortError) {
        let mut failures = lock(&self.failures);
        for _ in 0..count {
            failures.push_back(error.clone());
        }
    }

    /// Makes the next `count` notifications hang for `duration` before they are sent.
    pub fn hang_next(&self, count: usize, duration: Duration) {
        let mut hangs = lock(&self.hangs);
        for _ in 0..count {
            hangs.push_back(duration);
        }
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, notification: &Notification) -> impl Future<Output = Result<(), PortError>> + Send {
        let notification = notification.clone();
        async move {
            let hang = lock(&self.hangs).pop_front();
            if let Some(duration) = hang {
                tokio::time::sleep(duration).await;
            }
            if let Some(error) = lock(&self.failures).pop_front() {
                return Err(error);
            }
            lock(&self.sent).push(notification);
            Ok(())
        }
    }
}

/// An event sink that keeps every event in memory, for a test to look at.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// The names of the events so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.events().iter().map(Event::name).collect()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        lock(&self.events).push(event.clone());
    }
}
