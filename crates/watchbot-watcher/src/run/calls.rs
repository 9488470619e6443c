//! The loop's calls to the world in flight. Every call (but the receive, which has its own slot) is a future in one
//! set, polled by the loop's single `select!`, and ends as a [`Done`] that the loop applies to its state. No call
//! waits for another: a hung delete, publish or launch delays nothing but itself, and a renewal has its own
//! deadline ([`crate::decide::HeartbeatTiming`]).

use crate::ports::{BatchFailure, Launch, PortError, TaskOutput, TaskState};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tokio::time::Instant;

use super::held::AckKind;

/// A call that ended, with what the loop needs to apply it.
pub(super) enum Done<H> {
    /// `find_running` for a message that may have a task already.
    FoundRunning { id: String, result: Result<Option<H>, PortError> },
    /// `launch`.
    Launched { id: String, result: Result<Launch<H>, PortError> },
    /// The copy of a message too large to run to the dead-letter queue.
    DeadLetterCopied { id: String, reason: String, result: Result<String, PortError> },
    /// One batched poll of the running tasks, and the output of the stopped ones whose output is wanted.
    Polled { result: Result<Vec<(H, TaskState)>, PortError>, outputs: HashMap<H, TaskOutput> },
    /// A stop of one task; `timeout`: asked because of the message timeout.
    Stopped { id: String, timeout: bool, result: Result<(), PortError> },
    /// A batch of renewals sent at `sent_at`: (message id, receipt handle) per entry.
    Renewed { entries: Vec<(String, String)>, sent_at: Instant, result: Result<Vec<BatchFailure>, PortError> },
    /// A batch of deletes or returns: (message id, receipt handle) per entry.
    Acked { kind: AckKind, entries: Vec<(String, String)>, result: Result<Vec<BatchFailure>, PortError> },
    /// A notification.
    Notified { note: super::notes::PendingNote, result: Result<(), PortError> },
}

type CallFuture<'a, H> = Pin<Box<dyn Future<Output = Done<H>> + Send + 'a>>;

/// The calls in flight, with a count per kind for the concurrency bounds.
pub(super) struct Calls<'a, H> {
    set: FuturesUnordered<CallFuture<'a, H>>,
    pub polls: usize,
    /// Delete batches in flight.
    pub deletes: usize,
    /// Return batches in flight.
    pub returns: usize,
    pub notes: usize,
}

impl<'a, H> Calls<'a, H> {
    pub fn new() -> Calls<'a, H> {
        Calls { set: FuturesUnordered::new(), polls: 0, deletes: 0, returns: 0, notes: 0 }
    }

    pub fn push(&mut self, call: impl Future<Output = Done<H>> + Send + 'a) {
        self.set.push(Box::pin(call));
    }

    /// Delete (`deletes`) or return batches in flight.
    pub fn acks(&self, deletes: bool) -> usize {
        if deletes { self.deletes } else { self.returns }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next call to end; pending forever while none is in flight (so a `select!` branch can wait on it).
    pub async fn next(&mut self) -> Done<H> {
        match self.set.next().await {
            Some(done) => {
                match &done {
                    Done::Polled { .. } => self.polls -= 1,
                    Done::Acked { kind: AckKind::Delete, .. } => self.deletes -= 1,
                    Done::Acked { .. } => self.returns -= 1,
                    Done::Notified { .. } => self.notes -= 1,
                    _ => {}
                }
                done
            }
            None => std::future::pending().await,
        }
    }
}
