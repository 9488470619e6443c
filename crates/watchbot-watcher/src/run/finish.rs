//! A message's end here: its outcome (from the exit code, or forced: timed out, failed to start, too large) decides
//! a delete or a return with backoff (queued as a batched acknowledgement, the message still held until it is done)
//! and whether people are told (the notification ends with the task's output); on the last receive the
//! redrive policy allows, a return at once with the dead-letter queue announced (`dead_letters`); and the
//! attempt's record.

use super::Loop;
use super::held::{Ack, AckKind, Held, Stage};
use crate::decide::{self, NextStep, Outcome, Report};
use crate::events::{Event, now_ms};
use crate::ports::{Attempt, Notification, Notifier, Queue, TaskOutput, TaskRunner};
use std::time::Duration;
use tokio::time::Instant;

/// The longest a first delete or return waits for company (tasks still running, a receive in flight) to fill its
/// batch, when `batch_linger` is set: a second at most, well inside any heartbeat window (its hold is renewed anyway).
const MAX_ACK_LINGER: Duration = Duration::from_secs(1);

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// Decides a finished message's fate: delete or return (queued as batched acks), and a notification if due.
    pub(super) fn finish(
        &mut self,
        id: &str,
        exit_code: Option<i32>,
        reason: String,
        forced: Option<Outcome>,
        duration: Duration,
        output: Option<TaskOutput>,
    ) {
        let outcome = forced.unwrap_or_else(|| self.config.exit_codes.outcome(exit_code));
        let Some(held) = self.held.get(id) else { return };
        let output = output.unwrap_or_else(|| match held.stage {
            Stage::Running(_) => TaskOutput::Unavailable("the runner gave no output for this task".to_string()),
            _ => TaskOutput::Unavailable("no task ran".to_string()),
        });
        let receive_count = held.message.receive_count;
        let fate = decide::fate(outcome, receive_count, self.config.max_receive_count, self.config.notify_rules());
        let (kind, next) = match (fate.delete, self.config.max_receive_count) {
            (true, _) => (AckKind::Delete, NextStep::Removed),
            // Its last receive: back at once, for the queue to move it to the dead-letter queue on the next receive.
            (false, Some(max_receive_count)) if fate.dead_letter_next => {
                (AckKind::Return(Duration::ZERO), NextStep::DeadLetterNext { max_receive_count })
            }
            (false, _) => {
                let delay = decide::backoff_delay(receive_count, self.config.backoff, self.config.jitter.sample());
                (AckKind::Return(delay), NextStep::RetryAt(now_ms() + delay.as_millis() as u64))
            }
        };
        let notification = fate.notify.then(|| self.report(held, outcome, exit_code, &reason, next, Some(&output)));
        if let Some(attempts) = &self.ports.attempts {
            let ended_ms = now_ms();
            let started_ms = match &held.stage {
                Stage::Running(running) => running.started_ms,
                _ => ended_ms,
            };
            attempts.record(Attempt {
                message_id: id.to_string(),
                subject: held.env.get("Subject").cloned().unwrap_or_default(),
                receive_count,
                started_ms,
                ended_ms,
                outcome: outcome.as_str().to_string(),
                exit_code,
                reason: reason.clone(),
                output,
            });
        }
        match outcome {
            Outcome::Succeeded => self.summary.succeeded += 1,
            Outcome::Rejected => self.summary.rejected += 1,
            Outcome::Returned => self.summary.returned += 1,
            Outcome::Failed => self.summary.failed += 1,
        }
        self.emit(Event::Finished {
            message_id: id.to_string(),
            outcome,
            exit_code,
            reason: reason.clone(),
            duration_ms: duration.as_millis() as u64,
            receive_count,
        });
        if fate.dead_letter_next {
            self.announce_dead_letter(id, receive_count, &reason);
        }
        self.acknowledge(id, kind);
        if let Some(notification) = notification {
            self.notes.push(id, notification);
        }
    }

    /// The notification for a held message's outcome.
    pub(super) fn report(
        &self,
        held: &Held<R::Handle>,
        outcome: Outcome,
        exit_code: Option<i32>,
        reason: &str,
        next: NextStep,
        output: Option<&TaskOutput>,
    ) -> Notification {
        decide::notification(&Report {
            stack_name: &self.config.stack_name,
            now_ms: now_ms(),
            message_id: &held.message.message_id,
            outcome,
            exit_code,
            reason,
            receive_count: held.message.receive_count,
            next,
            env: &held.env,
            queue_flags: &self.config.queue_flags,
            output,
        })
    }

    /// Moves a held message to acknowledging: its delete or return waits (at most `batch_linger`, longer while
    /// company may join its batch) and goes in a batch.
    pub(super) fn acknowledge(&mut self, id: &str, kind: AckKind) {
        let now = Instant::now();
        let linger = if self.stopping() { Duration::ZERO } else { self.config.batch_linger };
        let due = now + linger;
        let latest = if linger.is_zero() { due } else { due.max(now + MAX_ACK_LINGER) };
        let seq = self.next_seq();
        if let Some(held) = self.held.get_mut(id) {
            held.stage = Stage::Acking(Ack { kind, seq, attempts: 0, due, latest, in_flight: None });
        }
    }

    /// Returns a message unfinished, at once (shutdown): never deleted, since its task did not finish.
    pub(super) fn interrupt(&mut self, id: &str) {
        if self.held.get(id).is_some_and(|held| !matches!(held.stage, Stage::Acking(_))) {
            self.summary.interrupted += 1;
            self.acknowledge(id, AckKind::Return(Duration::ZERO));
        }
    }
}
