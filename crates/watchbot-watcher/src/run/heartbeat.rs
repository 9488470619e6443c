//! The heartbeat: every held message (waiting, starting, running or acknowledging) is kept invisible for one more
//! window before its hold lapses. Renewals due soon go in one batch; each batch is a call of its own with its own
//! deadline ([`decide::heartbeat_timing`](crate::decide::heartbeat_timing)), never queued behind another call, and a
//! failed or hung one is retried soon after. A hold that lapses anyway (a long outage) is reported (`hold_lost`).

use super::calls::Done;
use super::held::{AckKind, Stage};
use super::{BATCH, Loop};
use crate::events::Event;
use crate::ports::{BatchFailure, Notifier, PortError, PortErrorKind, Queue, TaskRunner, VisibilityChange};
use std::collections::HashMap;
use tokio::time::Instant;

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// Whether a held message's renewal may be sent now: none in flight, and no return of it in flight (the renewal
    /// could land after the return and hide the message again).
    pub(super) fn may_renew(stage: &Stage<R::Handle>) -> bool {
        !matches!(stage, Stage::Acking(ack) if ack.in_flight.is_some() && ack.kind != AckKind::Delete)
    }

    /// Renews every hold that is due (and those due soon, to batch them).
    pub(super) fn renew_holds(&mut self, now: Instant) {
        // Checked without allocating: this runs on every turn of the loop.
        let any_due = self
            .held
            .iter()
            .any(|(_, held)| !held.hold.renewing && held.hold.next_renewal <= now && Self::may_renew(&held.stage));
        if !any_due {
            return;
        }
        let horizon = now + self.timing.renew_every / 2;
        let mut due = self
            .held
            .ids_where(|held| !held.hold.renewing && held.hold.next_renewal <= horizon && Self::may_renew(&held.stage));
        due.sort();
        for chunk in due.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            let mut changes = Vec::with_capacity(chunk.len());
            for id in chunk {
                let Some(held) = self.held.get_mut(id) else { continue };
                held.hold.renewing = true;
                let receipt_handle = held.message.receipt_handle.clone();
                changes.push(VisibilityChange {
                    receipt_handle: receipt_handle.clone(),
                    timeout: self.config.heartbeat_window,
                });
                entries.push((id.clone(), receipt_handle));
            }
            let ports = self.ports;
            let deadline = self.timing.attempt_deadline;
            self.calls.push(async move {
                let sent_at = Instant::now();
                let result = match tokio::time::timeout(deadline, ports.queue.change_visibility_batch(&changes)).await {
                    Ok(result) => result,
                    Err(_) => Err(PortError::transient(format!(
                        "the visibility change did not answer within {} ms; dropped, to be retried",
                        deadline.as_millis()
                    ))),
                };
                Done::Renewed { entries, sent_at, result }
            });
        }
    }

    pub(super) fn on_renewed(
        &mut self,
        entries: Vec<(String, String)>,
        sent_at: Instant,
        result: Result<Vec<BatchFailure>, PortError>,
    ) {
        let failures: HashMap<usize, PortError> = match result {
            Ok(failures) => failures.into_iter().map(|f| (f.index, f.error)).collect(),
            Err(error) => (0..entries.len()).map(|index| (index, error.clone())).collect(),
        };
        let now = Instant::now();
        let (window, timing) = (self.config.heartbeat_window, self.timing);
        for (index, (id, sent_handle)) in entries.into_iter().enumerate() {
            let Some(held) = self.held.get_mut(&id) else { continue };
            held.hold.renewing = false;
            if held.message.receipt_handle != sent_handle {
                // Received again meanwhile: that receive started a new hold.
                continue;
            }
            let Some(error) = failures.get(&index) else {
                held.hold.next_renewal = now + timing.renew_every;
                held.hold.expires = sent_at + window;
                held.hold.lost_reported = false;
                continue;
            };
            let waiting = matches!(held.stage, Stage::Waiting { .. });
            if error.is_transient() {
                held.hold.next_renewal = now + timing.retry_after;
                let lost = now >= held.hold.expires && !held.hold.lost_reported;
                held.hold.lost_reported |= lost;
                self.error("heartbeat", Some(&id), error);
                if lost {
                    self.emit(Event::HoldLost { message_id: id.clone(), error: error.message.clone() });
                }
            } else if matches!(error.kind, PortErrorKind::InvalidReceipt | PortErrorKind::NotFound) && waiting {
                // Someone else received it (or it is gone): no longer ours to run. Not acked either: the receipt
                // handle is dead. A running task is kept: the other watcher adopts it.
                self.held.remove(&id);
                self.error("heartbeat", Some(&id), error);
                self.emit(Event::Released { message_id: id.clone(), reason: error.message.clone() });
            } else {
                held.hold.next_renewal = now + timing.renew_every;
                self.error("heartbeat", Some(&id), error);
            }
        }
    }
}
