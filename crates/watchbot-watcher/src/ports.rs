//! The watcher's ports: the small traits through which the loop reaches the world.
//!
//! No SDK type appears here. AWS adapters (SQS, ECS, SNS) and local adapters (the embedded queue, child processes,
//! a file notifier) implement these traits; the loop is generic over them, and tests drive it with in-process fakes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong talking to the world, classified by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    /// The class of failure: decides whether the caller retries.
    pub kind: PortErrorKind,
    /// One line, lowercase, saying what failed (the adapter includes the service's own error code).
    pub message: String,
    /// The underlying error in full (an SDK error's `Debug` form), for debug output only: never shown by default.
    pub detail: Option<String>,
}

/// Classes of [`PortError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortErrorKind {
    /// Throttling, 5xx, timeouts, network errors: retry later with backoff.
    Transient,
    /// The receipt handle is stale (the message was received again by someone else) or the message is gone.
    InvalidReceipt,
    /// The named resource (queue, topic, cluster, task definition) does not exist.
    NotFound,
    /// The request was rejected as malformed or not permitted; retrying it unchanged will not help.
    Rejected,
}

impl PortError {
    /// A retryable error.
    pub fn transient(message: impl Into<String>) -> PortError {
        PortError { kind: PortErrorKind::Transient, message: message.into(), detail: None }
    }

    /// An error of the given kind.
    pub fn new(kind: PortErrorKind, message: impl Into<String>) -> PortError {
        PortError { kind, message: message.into(), detail: None }
    }

    /// The same error carrying the underlying error in full, for debug output.
    pub fn with_detail(mut self, detail: impl Into<String>) -> PortError {
        self.detail = Some(detail.into());
        self
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == PortErrorKind::Transient
    }
}

/// Parameters of one receive call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveRequest {
    /// 1..=10, as SQS allows.
    pub max_messages: u8,
    /// Long-polling wait: return as soon as a message is available, or empty after this long (SQS: at most 20 s).
    pub wait: Duration,
    /// Visibility timeout for the received messages; `None` keeps the queue's default.
    pub visibility_timeout: Option<Duration>,
}

impl ReceiveRequest {
    /// A receive of up to `max_messages` (1..=10) that waits up to `wait` for one, with this visibility timeout
    /// (`None`: the queue's default).
    pub fn new(max_messages: u8, wait: Duration, visibility_timeout: Option<Duration>) -> ReceiveRequest {
        ReceiveRequest { max_messages, wait, visibility_timeout }
    }
}

/// A message as received from a queue, with the attributes the task's environment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's message id (SQS MessageId).
    pub message_id: String,
    /// Handle for delete / change-visibility of this receive; an older receive's handle must not work.
    pub receipt_handle: String,
    /// The raw body (for SNS deliveries, the SNS envelope JSON). Not necessarily JSON, not necessarily UTF-8-clean:
    /// adapters replace invalid UTF-8 lossily.
    pub body: String,
    /// Epoch milliseconds when the message was sent.
    pub sent_timestamp_ms: u64,
    /// Epoch milliseconds when the message was first received.
    pub first_receive_timestamp_ms: u64,
    /// How many times the message has been received, this receive included (1 on the first).
    pub receive_count: u32,
    /// String message attributes (e.g. a `Subject` attribute on a raw, non-SNS message).
    pub attributes: BTreeMap<String, String>,
}

/// A message to send to a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutgoingMessage {
    /// The body, sent as is.
    pub body: String,
    /// String message attributes (e.g. `Subject`).
    pub attributes: BTreeMap<String, String>,
    /// Delay before the message becomes visible (SQS: at most 15 minutes).
    pub delay: Duration,
}

/// One entry of a batch call that failed; `index` is its position in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Position of the failed entry in the request slice.
    pub index: usize,
    /// Why it failed.
    pub error: PortError,
}

/// A visibility change: make the message received with `receipt_handle` invisible for `timeout` from now
/// (zero makes it visible at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityChange {
    /// Handle from the receive that holds the message.
    pub receipt_handle: String,
    /// New visibility timeout, counted from now (SQS: at most 12 hours).
    pub timeout: Duration,
}

/// A message queue with SQS semantics: visibility timeout, receive count, receipt handles, redrive.
///
/// Batch calls take at most 10 entries (as SQS) and report per-entry failures; an `Err` means the whole call failed.
pub trait Queue: Send + Sync + 'static {
    /// Receives up to `request.max_messages` messages, waiting up to `request.wait` for the first.
    fn receive(&self, request: ReceiveRequest) -> impl Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send;

    /// Deletes the messages held by these receipt handles.
    fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send;

    /// Changes the visibility of the messages held by these receipt handles.
    fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send;

    /// Sends one message; returns its message id.
    fn send(&self, message: OutgoingMessage) -> impl Future<Output = Result<String, PortError>> + Send;

    /// Deletes one message.
    fn delete(&self, receipt_handle: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        let handles = [receipt_handle.to_string()];
        async move { first_failure(self.delete_batch(&handles).await?) }
    }

    /// The messages this queue's own receives moved to its dead-letter queue since the last call, as they were when
    /// moved (receive count included). The embedded queue redrives at receive time and reports each move here, so
    /// the loop can count and announce it at once; SQS moves messages unseen, and the default reports none (the
    /// loop knows SQS's last receives from `max_receive_count` instead).
    fn take_dead_lettered(&self) -> Vec<ReceivedMessage> {
        Vec::new()
    }

    /// Changes one message's visibility.
    fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        let changes = [VisibilityChange { receipt_handle: receipt_handle.to_string(), timeout }];
        async move { first_failure(self.change_visibility_batch(&changes).await?) }
    }
}

fn first_failure(failures: Vec<BatchFailure>) -> Result<(), PortError> {
    match failures.into_iter().next() {
        Some(failure) => Err(failure.error),
        None => Ok(()),
    }
}

/// What to run for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The message id: ECS tasks carry it as `startedBy`, so a duplicate receive can find the running task.
    pub message_id: String,
    /// The task's whole environment contract (message variables, `WorkTopic`, `LogGroup`, ...).
    pub env: BTreeMap<String, String>,
}

/// Result of asking a runner to start a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch<H> {
    /// The task started.
    Started(H),
    /// The task could not be placed (e.g. ECS `RESOURCE:MEMORY`) or the runner is throttled: not a task failure;
    /// the watcher keeps the message and retries placement later.
    NotPlaced {
        /// The runner's reason, e.g. `RESOURCE:MEMORY`.
        reason: String,
    },
}

/// State of a launched task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Still pending or running.
    Running,
    /// Finished. `exit_code` is `None` when the task was killed or never started its container.
    Stopped {
        /// The container's exit code, when it has one.
        exit_code: Option<i32>,
        /// Why it stopped, in the runner's words (ECS `stoppedReason`, or e.g. `killed by signal 9`).
        reason: String,
    },
}

/// What a task printed, as the runner could get it after the task stopped (for notifications and the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutput {
    /// The task's last output: whole lines, oldest first, each ending in `\n` (invalid UTF-8 replaced), at most the
    /// runner's tail size (`omitted_bytes` says how much earlier output was not kept).
    Tail {
        /// The kept lines.
        text: String,
        /// Bytes of earlier output that were not kept.
        omitted_bytes: u64,
    },
    /// No output can be shown, and why (in the runner's words: no log group configured, no permission, stream not
    /// written yet, ...).
    Unavailable(String),
}

/// Runs one task per message: ECS tasks, or local child processes.
pub trait TaskRunner: Send + Sync + 'static {
    /// Identifies a launched task (an ECS task ARN, a child process slot).
    type Handle: Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static;

    /// A task already running for this message (started by another watcher, or before a restart), if any.
    fn find_running(&self, message_id: &str) -> impl Future<Output = Result<Option<Self::Handle>, PortError>> + Send;

    /// Starts a task.
    fn launch(&self, spec: &TaskSpec) -> impl Future<Output = Result<Launch<Self::Handle>, PortError>> + Send;

    /// The state of each of these tasks, in one batched call where the runner allows (ECS: 100 per DescribeTasks).
    /// Tasks the runner no longer knows are reported as stopped without an exit code.
    fn poll(
        &self,
        handles: &[Self::Handle],
    ) -> impl Future<Output = Result<Vec<(Self::Handle, TaskState)>, PortError>> + Send;

    /// Asks a task to stop (StopTask; SIGTERM then SIGKILL for a child).
    fn stop(&self, handle: &Self::Handle, reason: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The output of a task that [`poll`](TaskRunner::poll) has just reported stopped. The loop asks only when it
    /// needs it (a notification is due, or attempts are recorded), right after that poll, within its own deadline;
    /// a runner may forget a task's output once the next poll starts. The default keeps none.
    fn output(&self, handle: &Self::Handle) -> impl Future<Output = TaskOutput> + Send {
        let _ = handle;
        std::future::ready(TaskOutput::Unavailable("this runner keeps no task output".to_string()))
    }

    /// Resolves when a launched task may have changed state (e.g. a child exited), so the loop polls at once instead
    /// of waiting for its poll timer. May resolve spuriously. The default never resolves: the loop polls on its timer.
    fn changed(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// A notification for people: SNS, or stderr and a file locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// At most 100 characters (SNS's limit).
    pub subject: String,
    /// The full text.
    pub body: String,
}

/// One attempt of a message, as recorded in the local history ([`AttemptLog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The message id.
    pub message_id: String,
    /// The message's subject (empty when it has none).
    pub subject: String,
    /// Receive count of this delivery.
    pub receive_count: u32,
    /// Epoch ms when the task started (when its message finished here, for an attempt that never started a task).
    pub started_ms: u64,
    /// Epoch ms when the task was seen stopped.
    pub ended_ms: u64,
    /// The outcome's name (`succeeded`, `rejected`, `returned`, `failed`).
    pub outcome: String,
    /// The task's exit code, if it had one.
    pub exit_code: Option<i32>,
    /// Why it stopped.
    pub reason: String,
    /// What it printed, or why that is not known.
    pub output: TaskOutput,
}

/// Where the loop records each finished attempt (local mode: `local::history`). `record` must not block: an
/// implementation queues the attempt and writes it elsewhere.
pub trait AttemptLog: Send + Sync + 'static {
    /// Records one attempt.
    fn record(&self, attempt: Attempt);
}

/// Sends notifications.
pub trait Notifier: Send + Sync + 'static {
    /// Publishes one notification.
    fn notify(&self, notification: &Notification) -> impl Future<Output = Result<(), PortError>> + Send;
}

// The ports behind an `Arc`, so a caller can keep a handle (e.g. to read a local queue's counts after the loop).
impl<T: Queue> Queue for Arc<T> {
    fn receive(&self, request: ReceiveRequest) -> impl Future<Output = Result<Vec<ReceivedMessage>, PortError>> + Send {
        (**self).receive(request)
    }
    fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send {
        (**self).delete_batch(receipt_handles)
    }
    fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, PortError>> + Send {
        (**self).change_visibility_batch(changes)
    }
    fn send(&self, message: OutgoingMessage) -> impl Future<Output = Result<String, PortError>> + Send {
        (**self).send(message)
    }
    fn take_dead_lettered(&self) -> Vec<ReceivedMessage> {
        (**self).take_dead_lettered()
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
    fn output(&self, handle: &Self::Handle) -> impl Future<Output = TaskOutput> + Send {
        (**self).output(handle)
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
