//! [`FakeQueue`]: an in-memory queue with SQS semantics, and the [`QueueCall`]s it records.

use super::{EPOCH_MS, lock};
use crate::ports::{
    BatchFailure, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A call the fake queue saw, with message ids resolved from receipt handles, and when (since the queue was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCall {
    /// `receive(max, wait)` and the message ids it returned.
    Receive {
        /// When, since the queue was made.
        at: Duration,
        /// The most messages asked for.
        max: u8,
        /// The long poll's wait.
        wait: Duration,
        /// The ids received.
        got: Vec<String>,
    },
    /// `delete_batch` of these messages.
    Delete {
        /// When, since the queue was made.
        at: Duration,
        /// The ids deleted.
        ids: Vec<String>,
    },
    /// `change_visibility_batch`: (message id, timeout) pairs.
    ChangeVisibility {
        /// When, since the queue was made.
        at: Duration,
        /// (message id, new visibility timeout) pairs.
        changes: Vec<(String, Duration)>,
    },
    /// `send` of this body.
    Send {
        /// When, since the queue was made.
        at: Duration,
        /// The body sent.
        body: String,
    },
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
    /// Redrive at receive time after this many receives (as SQS and the embedded queue do).
    max_receive_count: Option<u32>,
    /// Messages moved to the dead-letter queue, not yet taken by `take_dead_lettered`.
    moved: Vec<ReceivedMessage>,
    /// Ids of every message moved to the dead-letter queue.
    dead_lettered: Vec<String>,
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

    /// Moves a message to the dead-letter queue when a receive finds it visible with this many receives already, and
    /// reports the move through `take_dead_lettered`, as the embedded queue does.
    pub fn set_redrive(&self, max_receive_count: u32) {
        lock(&self.state).max_receive_count = Some(max_receive_count);
    }

    /// Ids of the messages moved to the dead-letter queue, in order.
    pub fn dead_lettered(&self) -> Vec<String> {
        lock(&self.state).dead_lettered.clone()
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
                let mut moved_any = false;
                if let Some(max) = state.max_receive_count {
                    let (moved, kept): (Vec<FakeMessage>, Vec<FakeMessage>) = std::mem::take(&mut state.messages)
                        .into_iter()
                        .partition(|m| m.visible_at <= now && m.receive_count >= max);
                    state.messages = kept;
                    for message in moved {
                        moved_any = true;
                        state.dead_lettered.push(message.id.clone());
                        state.moved.push(ReceivedMessage {
                            message_id: message.id,
                            receipt_handle: String::new(),
                            body: message.body,
                            sent_timestamp_ms: message.sent_ms,
                            first_receive_timestamp_ms: message.first_receive_ms.unwrap_or(message.sent_ms),
                            receive_count: message.receive_count,
                            attributes: message.attributes,
                        });
                    }
                }
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
                // A receive that moved messages answers at once, as the embedded queue's does.
                if !got.is_empty() || now >= deadline || moved_any {
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

    fn take_dead_lettered(&self) -> Vec<ReceivedMessage> {
        std::mem::take(&mut lock(&self.state).moved)
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
