//! Running tasks: one batched poll of all of them at a time (on the poll timer, or at once when the runner says a
//! task may have changed), the end of a task handed to [`finish`](super::finish), and tasks that outlive the
//! message timeout stopped (they finish as failures when a poll sees them stopped). The poll's call also reads the
//! output of each stopped task whose output is wanted (a notification is due, or attempts are recorded), each read
//! within [`OUTPUT_DEADLINE`], so the finish that follows has it.

use super::Loop;
use super::calls::Done;
use super::held::{Stage, StopState};
use crate::decide::{self, Outcome};
use crate::events::Event;
use crate::ports::{Notifier, PortError, Queue, TaskOutput, TaskRunner, TaskState};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The longest the loop waits for a stopped task's output (a CloudWatch Logs read for ECS tasks); past it the
/// notification says the output was not read in time.
pub(super) const OUTPUT_DEADLINE: Duration = Duration::from_secs(5);

/// The polling side of the loop's state.
pub(super) struct Polling {
    pub next_poll: Instant,
    failures: u32,
    /// Poll at once (the runner said a task may have changed, or a stop was sent).
    pub poll_now: bool,
}

impl Polling {
    pub fn new(now: Instant) -> Polling {
        Polling { next_poll: now, failures: 0, poll_now: false }
    }
}

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// When the next poll is due, if a task runs and no poll is in flight.
    pub(super) fn poll_due_at(&self, now: Instant) -> Option<Instant> {
        if self.calls.polls > 0 || !self.held.any_running() {
            return None;
        }
        Some(if self.tasks.poll_now { now } else { self.tasks.next_poll })
    }

    /// Polls every running task in one call, when due.
    pub(super) fn start_poll(&mut self, now: Instant) {
        if self.poll_due_at(now).is_none_or(|at| at > now) {
            return;
        }
        // Per task: its receive count and whether it timed out, to know if its output will be wanted.
        let running: HashMap<R::Handle, (u32, bool)> = self
            .held
            .iter()
            .filter_map(|(_, held)| match &held.stage {
                Stage::Running(running) => {
                    Some((running.handle.clone(), (held.message.receive_count, running.timed_out)))
                }
                _ => None,
            })
            .collect();
        let handles: Vec<R::Handle> = running.keys().cloned().collect();
        self.tasks.poll_now = false;
        self.calls.polls += 1;
        let (ports, config) = (self.ports, self.config);
        self.calls.push(async move {
            let result = ports.runner.poll(&handles).await;
            let mut wanted = Vec::new();
            for (handle, state) in result.iter().flatten() {
                let TaskState::Stopped { exit_code, .. } = state else { continue };
                let Some(&(receive_count, timed_out)) = running.get(handle) else { continue };
                let outcome = if timed_out { Outcome::Failed } else { config.exit_codes.outcome(*exit_code) };
                let notifies =
                    outcome.action().notify && decide::should_notify(outcome, receive_count, config.notify_rules());
                if notifies || ports.attempts.is_some() {
                    wanted.push(handle.clone());
                }
            }
            let reads = wanted.iter().map(|handle| async move {
                let output = tokio::time::timeout(OUTPUT_DEADLINE, ports.runner.output(handle)).await;
                let output = output.unwrap_or_else(|_| {
                    TaskOutput::Unavailable(format!("not read within {} s", OUTPUT_DEADLINE.as_secs()))
                });
                (handle.clone(), output)
            });
            let outputs = futures_util::future::join_all(reads).await.into_iter().collect();
            Done::Polled { result, outputs }
        });
    }

    fn poll_interval(&self) -> Duration {
        if self.stopping() { self.config.poll_interval.min(Duration::from_secs(1)) } else { self.config.poll_interval }
    }

    pub(super) fn on_polled(
        &mut self,
        result: Result<Vec<(R::Handle, TaskState)>, PortError>,
        outputs: &mut HashMap<R::Handle, TaskOutput>,
    ) {
        match result {
            Ok(states) => {
                self.tasks.failures = 0;
                self.tasks.next_poll = Instant::now() + self.poll_interval();
                for (handle, task_state) in states {
                    if let TaskState::Stopped { exit_code, reason } = task_state {
                        let output = outputs.remove(&handle);
                        self.on_task_ended(&handle, exit_code, reason, output);
                    }
                }
            }
            Err(error) => {
                self.error("poll", None, &error);
                self.tasks.failures += 1;
                let delay = self.retry_delay(self.tasks.failures).max(self.poll_interval());
                self.tasks.next_poll = Instant::now() + delay;
            }
        }
        self.after_poll();
    }

    fn on_task_ended(
        &mut self,
        handle: &R::Handle,
        exit_code: Option<i32>,
        reason: String,
        output: Option<TaskOutput>,
    ) {
        let Some(id) = self.held.id_of_task(handle) else { return };
        let Some(Stage::Running(running)) = self.held.get(&id).map(|held| &held.stage) else { return };
        let (timed_out, duration) = (running.timed_out, running.launched_at.elapsed());
        if self.stopping_tasks() {
            // A worker that finished its job as it was told to stop (exit 0 or 3) keeps its outcome: returning the
            // message would run it again. Any other exit is the interruption itself: the message returns at once.
            if self.config.exit_codes.outcome(exit_code).action().delete && !timed_out {
                self.finish(&id, exit_code, reason, None, duration, output);
            } else {
                self.interrupt(&id);
            }
        } else if timed_out {
            let secs = self.config.message_timeout.as_secs();
            let reason = format!("timed out after {secs} s and was stopped ({reason})");
            self.finish(&id, exit_code, reason, Some(Outcome::Failed), duration, output);
        } else {
            self.finish(&id, exit_code, reason, None, duration, output);
        }
    }

    /// Stops tasks that ran past the message timeout.
    pub(super) fn stop_timed_out(&mut self, now: Instant) {
        let due = self.held.ids_where(
            |held| matches!(&held.stage, Stage::Running(r) if r.stop == StopState::NotAsked && r.deadline <= now),
        );
        for id in due {
            let Some(Stage::Running(running)) = self.held.get_mut(&id).map(|held| &mut held.stage) else { continue };
            let first = !running.timed_out;
            running.timed_out = true;
            running.stop = StopState::InFlight;
            let handle = running.handle.clone();
            if first {
                self.emit(Event::TimedOut {
                    message_id: id.clone(),
                    timeout_secs: self.config.message_timeout.as_secs(),
                });
            }
            self.start_stop(id, handle, "message timeout", true);
        }
    }

    /// Asks a task to stop; `timeout`: because of the message timeout (a failed stop is then retried).
    pub(super) fn start_stop(&mut self, id: String, handle: R::Handle, reason: &'static str, timeout: bool) {
        let ports = self.ports;
        self.calls.push(async move {
            let result = ports.runner.stop(&handle, reason).await;
            Done::Stopped { id, timeout, result }
        });
    }

    pub(super) fn on_stop_sent(&mut self, id: &str, timeout: bool, result: Result<(), PortError>) {
        if let Err(error) = &result {
            self.error("stop", Some(id), error);
        }
        let retry = self.retry_delay(2);
        if let Some(Stage::Running(running)) = self.held.get_mut(id).map(|held| &mut held.stage) {
            match result {
                Err(_) if timeout => {
                    running.stop = StopState::NotAsked;
                    running.deadline = Instant::now() + retry;
                }
                _ => running.stop = StopState::Asked,
            }
        }
        self.tasks.poll_now = true;
    }
}
