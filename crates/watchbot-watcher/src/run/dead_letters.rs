//! Dead-lettering is never silent. A message returned on the last receive its queue's redrive policy allows
//! (`decide::fate`) is announced at once: counted as dead-lettered, a `dead_lettered` event, and its notification
//! says the dead-letter queue is next and how to redrive it. A queue that moves messages itself at receive time (the
//! embedded queue) reports each move (`Queue::take_dead_lettered`); a move this loop did not announce (its last
//! receive ended without a result: a watcher stopped or lost its hold) is counted and notified then. Announced
//! messages are remembered (the newest [`MAX_REMEMBERED`]) so their move is not told twice.

use super::Loop;
use crate::decide::{self, NextStep, Outcome, Report};
use crate::events::{Event, now_ms};
use crate::message;
use crate::ports::{Notifier, Queue, ReceivedMessage, TaskRunner};
use std::collections::{HashSet, VecDeque};

/// How many announced messages are remembered until their move is reported (SQS reports none, so the oldest go).
const MAX_REMEMBERED: usize = 10_000;

/// Messages announced as going to the dead-letter queue, whose move has not been reported yet.
#[derive(Default)]
pub(super) struct Announced {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Announced {
    fn remember(&mut self, id: &str) {
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > MAX_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }

    /// Whether `id` was announced; forgets it (a later move of the same id, after a redrive, is news again).
    fn take(&mut self, id: &str) -> bool {
        if !self.ids.remove(id) {
            return false;
        }
        self.order.retain(|known| known != id);
        true
    }
}

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// Counts and records a message returned on its last allowed receive (its notification is the finish's).
    pub(super) fn announce_dead_letter(&mut self, id: &str, receive_count: u32, reason: &str) {
        self.summary.dead_lettered += 1;
        self.announced.remember(id);
        self.emit(Event::DeadLettered {
            message_id: id.to_string(),
            reason: format!("returned on receive {receive_count}, the last its redrive policy allows: {reason}"),
        });
    }

    /// Takes the moves the queue reports; each one not announced is counted and notified now.
    pub(super) fn on_moved(&mut self) {
        for moved in self.ports.queue.take_dead_lettered() {
            if self.announced.take(&moved.message_id) {
                continue;
            }
            self.summary.dead_lettered += 1;
            let reason = format!(
                "received {} times, the most its redrive policy allows, without a result (the watcher holding it \
                 stopped or lost its hold)",
                moved.receive_count
            );
            self.emit(Event::DeadLettered { message_id: moved.message_id.clone(), reason: reason.clone() });
            let notification = self.moved_report(&moved, &reason);
            self.notes.push(&moved.message_id, notification);
        }
    }

    fn moved_report(&self, moved: &ReceivedMessage, reason: &str) -> crate::ports::Notification {
        let env = message::task_env(moved, &self.config.task_env);
        decide::notification(&Report {
            stack_name: &self.config.stack_name,
            now_ms: now_ms(),
            message_id: &moved.message_id,
            outcome: Outcome::Failed,
            exit_code: None,
            reason,
            receive_count: moved.receive_count,
            next: NextStep::DeadLettered,
            env: &env,
            queue_flags: &self.config.queue_flags,
            // Moved at receive time: no task ran for this receive, so there is no output to quote.
            output: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_bounded_and_taken_once() {
        let mut announced = Announced::default();
        announced.remember("a");
        announced.remember("a");
        assert!(announced.take("a"));
        assert!(!announced.take("a"), "told once");
        for n in 0..=MAX_REMEMBERED {
            announced.remember(&n.to_string());
        }
        assert!(!announced.take("0"), "the oldest is forgotten");
        assert!(announced.take(&MAX_REMEMBERED.to_string()));
        assert_eq!(announced.order.len(), MAX_REMEMBERED - 1);
    }
}
