//! Intake: when to receive (a full batch, an idle watcher, or a partial batch that waited `batch_linger`), and
//! what to do with received messages (a new one is held, waiting to launch; a duplicate delivery of one already
//! held only refreshes its receipt handle; at shutdown they return at once).

use super::held::{Ack, AckKind, Held, Hold, Stage};
use super::{BATCH, Error, Loop};
use crate::events::Event;
use crate::message;
use crate::ports::{Notifier, PortError, Queue, ReceiveRequest, ReceivedMessage, TaskRunner};
use tokio::time::Instant;

/// The receive side of the loop's state.
pub(super) struct Intake {
    /// No receive before this (after a failed one).
    receive_after: Instant,
    /// Set when a receive of less than a full batch is held back for `batch_linger`: when it may go anyway.
    receive_hold: Option<Instant>,
    failures: u32,
    /// Whether a receive has worked yet (after that, no receive error is taken for a configuration error).
    received_once: bool,
    /// Whether a receive is in flight (its messages may join the batch of pending deletes).
    pub in_flight: bool,
    /// When the receive in flight was sent: its messages' holds count from then.
    sent_at: Instant,
    /// Whether the last receive got messages (a receive in flight is then likely to get more; an idle long poll is
    /// not waited for).
    pub queue_busy: bool,
}

impl Intake {
    pub fn new(now: Instant) -> Intake {
        Intake {
            receive_after: now,
            receive_hold: None,
            failures: 0,
            received_once: false,
            in_flight: false,
            sent_at: now,
            queue_busy: false,
        }
    }

    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let after = (self.receive_after > now).then_some(self.receive_after);
        match (after, self.receive_hold) {
            (Some(a), Some(h)) => Some(a.min(h)),
            (a, h) => a.or(h),
        }
    }
}

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// The receive to send now, if one is due: free workers, not backing off after a failure, a batch worth it.
    pub(super) fn receive_request(&mut self, now: Instant) -> Option<ReceiveRequest> {
        if self.stopping() || now < self.intake.receive_after {
            return None;
        }
        let free = self.config.workers.saturating_sub(self.held.occupying());
        if free == 0 || !self.may_receive(free, now) {
            return None;
        }
        self.intake.receive_hold = None;
        self.intake.sent_at = now;
        Some(ReceiveRequest {
            max_messages: free.min(BATCH) as u8,
            wait: self.config.receive_wait,
            visibility_timeout: Some(self.config.heartbeat_window),
        })
    }

    /// Whether to receive now with `free` slots: a full batch (or all that `workers` allows), an idle watcher, or a
    /// partial batch that has waited `batch_linger` for more slots to free up.
    fn may_receive(&mut self, free: usize, now: Instant) -> bool {
        let full = self.config.workers.min(BATCH);
        if self.config.batch_linger.is_zero() || free >= full || self.held.occupying() == 0 {
            return true;
        }
        match self.intake.receive_hold {
            Some(hold) => now >= hold,
            None => {
                self.intake.receive_hold = Some(now + self.config.batch_linger);
                false
            }
        }
    }

    /// Takes a receive's messages. A non-transient error before any receive worked ends the loop (a wrong queue URL
    /// or a missing permission); later, every error is retried (the loop may hold messages).
    pub(super) fn on_received(&mut self, result: Result<Vec<ReceivedMessage>, PortError>) -> Result<(), Error> {
        // A receive may have moved messages to the dead-letter queue (the embedded queue redrives at receive time).
        self.on_moved();
        let messages = match result {
            Ok(messages) => messages,
            Err(error) => {
                self.error("receive", None, &error);
                if !self.intake.received_once && !error.is_transient() {
                    return Err(Error::Queue(error));
                }
                self.intake.failures += 1;
                self.intake.receive_after = Instant::now() + self.retry_delay(self.intake.failures);
                return Ok(());
            }
        };
        self.intake.received_once = true;
        self.intake.failures = 0;
        self.intake.queue_busy = !messages.is_empty();
        let now = Instant::now();
        let sent_at = self.intake.sent_at;
        let renewed = Hold::new(sent_at, now, self.config.heartbeat_window, self.timing.renew_every);
        for message in messages {
            self.summary.received += 1;
            self.emit(Event::Received { message_id: message.message_id.clone(), receive_count: message.receive_count });
            if let Some(held) = self.held.get_mut(&message.message_id) {
                // We already hold it (our hold lapsed and we received it again): keep the one task (or the pending
                // delete or return: never run it again), and use the new receipt handle, the only one that works.
                held.message.receipt_handle = message.receipt_handle;
                held.message.receive_count = message.receive_count;
                held.hold = Hold { renewing: held.hold.renewing, ..renewed };
                continue;
            }
            if self.stopping() {
                // Received as the watcher stops: returned at once, not left invisible for a window.
                self.summary.interrupted += 1;
                let ack = Ack {
                    kind: AckKind::Return(std::time::Duration::ZERO),
                    seq: self.next_seq(),
                    attempts: 0,
                    due: now,
                    latest: now,
                    in_flight: None,
                };
                let env = Default::default();
                self.held.insert(Held { message, env, stage: Stage::Acking(ack), hold: renewed });
                continue;
            }
            let env = message::task_env(&message, &self.config.task_env);
            // A message received for the first time cannot have a task yet (a task is only ever started for a
            // received message), so the look for one (ECS: a ListTasks call) is skipped; from the second receive on,
            // or after an ambiguous launch failure, the loop looks before it launches.
            let checked_running = message.receive_count <= 1;
            let stage = Stage::Waiting { next_attempt: now, attempts: 0, checked_running };
            self.held.insert(Held { message, env, stage, hold: renewed });
        }
        Ok(())
    }
}
