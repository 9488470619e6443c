//! Getting a held message running: adopt the task already running for it (from its second receive on, or after an
//! ambiguous launch failure), dead-letter it if the runner cannot take its environment, or launch a task. Placement
//! failures, throttling and a missing cluster or task definition keep the message and retry; only a launch the
//! runner refuses for the message's own sake fails it.

use super::calls::Done;
use super::held::{AckKind, Running, Stage, StopState};
use super::{Loop, handle_text};
use crate::decide::{NextStep, Outcome};
use crate::events::Event;
use crate::ports::{Launch, Notifier, OutgoingMessage, PortError, PortErrorKind, Queue, TaskRunner, TaskSpec};
use std::time::Duration;
use tokio::time::Instant;

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// Starts an attempt for every waiting message whose attempt is due.
    pub(super) fn start_attempts(&mut self, now: Instant) {
        let due = self
            .held
            .ids_where(|held| matches!(held.stage, Stage::Waiting { next_attempt, .. } if next_attempt <= now));
        for id in due {
            self.start_attempt(&id);
        }
    }

    /// One attempt to get a waiting message running: look for its running task, dead-letter it, or launch.
    fn start_attempt(&mut self, id: &str) {
        let ports = self.ports;
        let Some(held) = self.held.get_mut(id) else { return };
        let Stage::Waiting { attempts, checked_running, .. } = held.stage else { return };
        if !checked_running {
            held.stage = Stage::Starting { attempts };
            let id = id.to_string();
            self.calls.push(async move {
                let result = ports.runner.find_running(&id).await;
                Done::FoundRunning { id, result }
            });
            return;
        }
        if let Some(reason) = self.config.task_size_limit.as_ref().and_then(|limit| limit.exceeded_by(&held.env)) {
            let Some(dead_letter) = &ports.dead_letter else {
                let reason = format!("{reason}; no dead-letter queue is configured, so it returns to the queue");
                self.finish(id, None, reason, Some(Outcome::Failed), Duration::ZERO, None);
                return;
            };
            held.stage = Stage::Starting { attempts };
            let copy = OutgoingMessage {
                body: held.message.body.clone(),
                attributes: held.message.attributes.clone(),
                delay: Duration::ZERO,
            };
            let id = id.to_string();
            self.calls.push(async move {
                let result = dead_letter.send(copy).await;
                Done::DeadLetterCopied { id, reason, result }
            });
            return;
        }
        held.stage = Stage::Starting { attempts };
        let spec = TaskSpec { message_id: id.to_string(), env: held.env.clone() };
        let id = id.to_string();
        self.calls.push(async move {
            let result = ports.runner.launch(&spec).await;
            Done::Launched { id, result }
        });
    }

    /// The attempts of a message whose call is in flight, if it still is.
    fn starting_attempts(&self, id: &str) -> Option<u32> {
        match self.held.get(id)?.stage {
            Stage::Starting { attempts } => Some(attempts),
            _ => None,
        }
    }

    pub(super) fn on_found_running(&mut self, id: &str, result: Result<Option<R::Handle>, PortError>) {
        let Some(attempts) = self.starting_attempts(id) else { return };
        match result {
            Ok(Some(handle)) => {
                self.summary.adopted += 1;
                self.emit(Event::Adopted { message_id: id.to_string(), task: handle_text(&handle) });
                self.set_running(id, handle);
            }
            Ok(None) => self.launch_next(id, attempts),
            Err(error) => {
                self.error("find_running", Some(id), &error);
                if error.is_transient() {
                    // Launching blind could start a duplicate: try again later.
                    self.retry_later(id, attempts + 1, false);
                } else {
                    self.launch_next(id, attempts);
                }
            }
        }
    }

    /// Looked for a running task and found none: launch now (or, when stopping, let the message go).
    fn launch_next(&mut self, id: &str, attempts: u32) {
        if let Some(held) = self.held.get_mut(id) {
            held.stage = Stage::Waiting { next_attempt: Instant::now(), attempts, checked_running: true };
        }
        if self.stopping() {
            self.interrupt(id);
        } else {
            self.start_attempt(id);
        }
    }

    pub(super) fn on_launched(&mut self, id: &str, result: Result<Launch<R::Handle>, PortError>) {
        let Some(attempts) = self.starting_attempts(id) else { return };
        match result {
            Ok(Launch::Started(handle)) => {
                self.summary.launched += 1;
                self.emit(Event::Launched { message_id: id.to_string(), task: handle_text(&handle) });
                self.set_running(id, handle);
            }
            Ok(Launch::NotPlaced { reason }) => {
                self.summary.not_placed += 1;
                let delay = self.retry_later(id, attempts + 1, true);
                self.emit(Event::NotPlaced {
                    message_id: id.to_string(),
                    reason,
                    retry_in_ms: delay.as_millis() as u64,
                });
            }
            Err(error) if error.kind == PortErrorKind::NotFound => {
                // No such cluster or task definition: the watcher's configuration, not the message, is wrong. Keep
                // the message (held, retried with backoff) rather than fail it towards the dead-letter queue.
                self.error("launch", Some(id), &error);
                self.retry_later(id, attempts + 1, true);
            }
            Err(error) if error.is_transient() => {
                // Throttling and the like: not the task's fault; keep the message and try again. A timeout or 5xx is
                // ambiguous (the task may have started), so the next attempt looks for a running task first.
                self.error("launch", Some(id), &error);
                self.retry_later(id, attempts + 1, false);
            }
            Err(error) => {
                self.error("launch", Some(id), &error);
                let reason = format!("failed to start: {}", error.message);
                self.finish(id, None, reason, Some(Outcome::Failed), Duration::ZERO, None);
            }
        }
    }

    pub(super) fn on_dead_letter_copied(&mut self, id: &str, reason: String, result: Result<String, PortError>) {
        let Some(attempts) = self.starting_attempts(id) else { return };
        match result {
            Ok(_) => {
                self.summary.dead_lettered += 1;
                self.emit(Event::DeadLettered { message_id: id.to_string(), reason: reason.clone() });
                self.acknowledge(id, AckKind::Delete);
                if let Some(held) = self.held.get(id) {
                    let notification = self.report(held, Outcome::Failed, None, &reason, NextStep::DeadLettered, None);
                    self.notes.push(id, notification);
                }
            }
            Err(error) => {
                self.error("dead_letter", Some(id), &error);
                self.retry_later(id, attempts + 1, true);
            }
        }
    }

    pub(super) fn set_running(&mut self, id: &str, handle: R::Handle) {
        let now = Instant::now();
        let deadline = now + self.config.message_timeout;
        if let Some(held) = self.held.get_mut(id) {
            held.stage = Stage::Running(Running {
                handle,
                launched_at: now,
                started_ms: crate::events::now_ms(),
                deadline,
                timed_out: false,
                stop: StopState::NotAsked,
            });
        }
        // Poll soon after a launch; the timer takes it from there.
        self.tasks.next_poll = self.tasks.next_poll.min(now + self.config.poll_interval);
        if self.stopping() {
            self.on_running_while_stopping(id);
        }
    }

    /// Back to waiting, next attempt after a delay; `checked_running`: whether the next attempt may launch without
    /// looking for a running task first. When stopping, the message returns at once instead.
    fn retry_later(&mut self, id: &str, attempts: u32, checked_running: bool) -> Duration {
        let delay = self.retry_delay(attempts);
        if let Some(held) = self.held.get_mut(id) {
            held.stage = Stage::Waiting { next_attempt: Instant::now() + delay, attempts, checked_running };
        }
        if self.stopping() {
            self.interrupt(id);
        }
        delay
    }
}
