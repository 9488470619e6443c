//! Deletes and returns, batched: a full batch of 10 goes at once; a smaller one when its first is due, or, while
//! company may still join (tasks held, a receive in flight on a busy queue), when its first must go. Failed entries
//! are retried (a delete until it is done: giving up would run the message again); a stale receipt handle is dropped
//! unless the message was received again meanwhile. A return never goes while a renewal of the same message is in
//! flight (the renewal landing after it would hide the message again).

use super::calls::Done;
use super::held::{Ack, AckKind, Stage};
use super::{BATCH, Loop};
use crate::events::Event;
use crate::ports::{BatchFailure, Notifier, PortError, PortErrorKind, Queue, TaskRunner, VisibilityChange};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Tries of a return (a delete is retried until it is done: giving up would run the message again).
const MAX_RETURN_ATTEMPTS: u32 = 8;
/// Tries of any acknowledgement during shutdown; what still fails reappears by itself within one heartbeat window.
const SHUTDOWN_ATTEMPTS: u32 = 3;
const SHUTDOWN_RETRY: Duration = Duration::from_millis(200);
/// Batch calls of deletes (or of returns) in flight at once. While one is in flight, the next goes only as a full
/// batch: the others gather meanwhile, as they would behind a serial call, so batches stay full.
const MAX_ACK_CALLS: usize = 4;

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// The acknowledgements of one kind that may go now (none in flight, no renewal in the way), with their ids.
    fn ready(&self, deletes: bool) -> impl Iterator<Item = (&String, &Ack)> {
        self.held.iter().filter_map(move |(id, held)| match &held.stage {
            Stage::Acking(ack)
                if ack.in_flight.is_none()
                    && (ack.kind == AckKind::Delete) == deletes
                    && (deletes || !held.hold.renewing) =>
            {
                Some((id, ack))
            }
            _ => None,
        })
    }

    /// [`Self::ready`], oldest first.
    fn ready_acks(&self, deletes: bool) -> Vec<(u64, String)> {
        let mut ready: Vec<(u64, String)> = self.ready(deletes).map(|(id, ack)| (ack.seq, id.clone())).collect();
        ready.sort();
        ready
    }

    /// When the pending deletes (`deletes`) or returns go: at once for a full batch or while stopping; otherwise
    /// when the first is due, or, while more may join the batch, when the first must go.
    pub(super) fn acks_due(&self, deletes: bool, now: Instant) -> Option<Instant> {
        let in_flight = self.calls.acks(deletes);
        if in_flight >= MAX_ACK_CALLS {
            return None;
        }
        let mut count = 0;
        let mut due: Option<Instant> = None;
        let mut latest: Option<Instant> = None;
        for (_, ack) in self.ready(deletes) {
            count += 1;
            due = Some(due.map_or(ack.due, |d| d.min(ack.due)));
            latest = Some(latest.map_or(ack.latest, |l| l.min(ack.latest)));
        }
        if count >= BATCH {
            return Some(now);
        }
        if in_flight > 0 {
            // The call in flight wakes the loop when it ends.
            return None;
        }
        if self.stopping() {
            return due;
        }
        let company = self.held.occupying() > 0 || (self.intake.in_flight && self.intake.queue_busy);
        if company { latest } else { due }
    }

    /// Sends the due deletes and returns in batches of 10.
    pub(super) fn flush_acks(&mut self, now: Instant) {
        for deletes in [true, false] {
            if self.acks_due(deletes, now).is_none_or(|due| due > now) {
                continue;
            }
            let ready = self.ready_acks(deletes);
            for chunk in ready.chunks(BATCH) {
                let full = chunk.len() == BATCH;
                if self.calls.acks(deletes) >= MAX_ACK_CALLS || (self.calls.acks(deletes) > 0 && !full) {
                    break;
                }
                self.start_ack_batch(deletes, chunk);
            }
        }
    }

    fn start_ack_batch(&mut self, deletes: bool, chunk: &[(u64, String)]) {
        let mut entries = Vec::with_capacity(chunk.len());
        let mut changes = Vec::new();
        let mut kind = AckKind::Delete;
        for (_, id) in chunk {
            let Some(held) = self.held.get_mut(id) else { continue };
            let Stage::Acking(ack) = &mut held.stage else { continue };
            ack.in_flight = Some(held.message.receipt_handle.clone());
            kind = ack.kind;
            if let AckKind::Return(delay) = ack.kind {
                changes.push(VisibilityChange { receipt_handle: held.message.receipt_handle.clone(), timeout: delay });
            }
            entries.push((id.clone(), held.message.receipt_handle.clone()));
        }
        if entries.is_empty() {
            return;
        }
        if deletes {
            self.calls.deletes += 1;
        } else {
            self.calls.returns += 1;
        }
        let ports = self.ports;
        if deletes {
            self.calls.push(async move {
                let handles: Vec<String> = entries.iter().map(|(_, handle)| handle.clone()).collect();
                let result = ports.queue.delete_batch(&handles).await;
                Done::Acked { kind: AckKind::Delete, entries, result }
            });
        } else {
            self.calls.push(async move {
                let result = ports.queue.change_visibility_batch(&changes).await;
                Done::Acked { kind, entries, result }
            });
        }
    }

    pub(super) fn on_acked(
        &mut self,
        kind: AckKind,
        entries: Vec<(String, String)>,
        result: Result<Vec<BatchFailure>, PortError>,
    ) {
        let action = if kind == AckKind::Delete { "delete" } else { "return" };
        let failures: HashMap<usize, PortError> = match result {
            Ok(failures) => failures.into_iter().map(|f| (f.index, f.error)).collect(),
            Err(error) => (0..entries.len()).map(|index| (index, error.clone())).collect(),
        };
        let stopping = self.stopping();
        for (index, (id, sent_handle)) in entries.into_iter().enumerate() {
            let Some(error) = failures.get(&index) else {
                let Some(held) = self.held.remove(&id) else { continue };
                match held.stage {
                    Stage::Acking(ack) => match ack.kind {
                        AckKind::Delete => self.emit(Event::Deleted { message_id: id }),
                        AckKind::Return(delay) => {
                            self.emit(Event::Returned { message_id: id, delay_ms: delay.as_millis() as u64 })
                        }
                    },
                    // Not possible (only acknowledging messages are sent), but never lose a held message.
                    other => self.held.insert(super::held::Held { stage: other, ..held }),
                }
                continue;
            };
            self.error(action, Some(&id), error);
            let Some(held) = self.held.get(&id) else { continue };
            let Stage::Acking(ack) = &held.stage else { continue };
            let stale = matches!(error.kind, PortErrorKind::InvalidReceipt | PortErrorKind::NotFound);
            let received_again = held.message.receipt_handle != sent_handle;
            let attempts = ack.attempts + 1;
            let more = if stopping {
                attempts < SHUTDOWN_ATTEMPTS
            } else {
                ack.kind == AckKind::Delete || attempts < MAX_RETURN_ATTEMPTS
            };
            let retry = if stale && received_again {
                // Received again meanwhile (our hold lapsed): the new receipt handle works.
                Some(Duration::ZERO)
            } else if !stale && more {
                Some(if stopping { SHUTDOWN_RETRY } else { self.retry_delay(attempts) })
            } else {
                None
            };
            match retry {
                Some(delay) => {
                    let at = Instant::now() + delay;
                    if let Some(Stage::Acking(ack)) = self.held.get_mut(&id).map(|held| &mut held.stage) {
                        ack.in_flight = None;
                        ack.attempts = attempts;
                        ack.due = at;
                        ack.latest = at;
                    }
                }
                None => {
                    self.held.remove(&id);
                }
            }
        }
    }
}
