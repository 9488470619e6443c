//! The graceful stop, as phases of the same loop: no new receive (one in flight gets a moment to deliver, and its
//! messages return at once); one last poll, whose ended tasks keep their outcome; then running tasks are stopped
//! (or left running for adoption, [`OnShutdown::LeaveRunning`]) and waited for up to `shutdown_grace`, their
//! messages still held; a task that finishes its job as it is told to stop (exit 0 or 3) keeps its outcome, every
//! other message returns at once (never deleted); last, the deletes, returns and notifications are flushed.

use super::Loop;
use super::OnShutdown;
use super::held::{Stage, StopState};
use crate::events::Event;
use crate::ports::{Notifier, Queue, TaskRunner};
use std::time::Duration;
use tokio::time::Instant;

/// How long a receive in flight at shutdown may still deliver (a response in transit takes milliseconds; an idle
/// long poll is not waited out).
pub(super) const LATE_RECEIVE_GRACE: Duration = Duration::from_millis(250);
/// The longest the last flush of deletes, returns and notifications may take; what is still unsent then reappears
/// by itself within one heartbeat window (a return), or is in the event log (a notification).
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for one last poll: tasks that ended before the stop get their normal outcome.
    FinalPoll,
    /// Running tasks were asked to stop; waiting for them until `until`.
    StoppingTasks { until: Instant },
    /// Only deletes, returns and notifications are left.
    Draining { until: Instant },
}

/// The state of a graceful stop.
pub(super) struct Shutdown {
    pub phase: Phase,
}

impl Shutdown {
    pub fn next_wake(&self) -> Option<Instant> {
        match self.phase {
            Phase::FinalPoll => None,
            Phase::StoppingTasks { until } | Phase::Draining { until } => Some(until),
        }
    }
}

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// Shutdown was asked: stop receiving and launching, return what has not started, poll once more.
    pub(super) fn begin_shutdown(&mut self) {
        self.emit(Event::Stopping { running: self.held.running_count() });
        self.shutdown = Some(Shutdown { phase: Phase::FinalPoll });
        for id in self.held.ids_where(|held| matches!(held.stage, Stage::Waiting { .. })) {
            self.interrupt(&id);
        }
        self.tasks.poll_now = true;
    }

    fn phase(&self) -> Option<Phase> {
        self.shutdown.as_ref().map(|shutdown| shutdown.phase)
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.phase = phase;
        }
    }

    /// Whether running tasks were asked to stop for the shutdown (their ends then count as interruptions, unless
    /// they finished their job).
    pub(super) fn stopping_tasks(&self) -> bool {
        matches!(self.phase(), Some(Phase::StoppingTasks { .. } | Phase::Draining { .. }))
    }

    /// Moves the stop along; called on every turn of the loop while stopping.
    pub(super) fn shutdown_step(&mut self, now: Instant) {
        match self.phase() {
            Some(Phase::FinalPoll) if !self.held.any_running() => self.stop_running_tasks(now),
            Some(Phase::StoppingTasks { until }) => {
                let starting = self.held.iter().any(|(_, held)| matches!(held.stage, Stage::Starting { .. }));
                if now >= until || (!self.held.any_running() && !starting) {
                    for id in self.held.ids_where(|held| matches!(held.stage, Stage::Running(_))) {
                        self.interrupt(&id);
                    }
                    self.set_phase(Phase::Draining { until: now + DRAIN_LIMIT });
                }
            }
            _ => {}
        }
    }

    /// A poll ended: the last one before the stops, when that is the phase.
    pub(super) fn after_poll(&mut self) {
        if self.phase() == Some(Phase::FinalPoll) {
            self.stop_running_tasks(Instant::now());
        }
    }

    /// Stops every running task (or leaves it running), then waits for them up to the grace.
    fn stop_running_tasks(&mut self, now: Instant) {
        self.set_phase(Phase::StoppingTasks { until: now + self.config.shutdown_grace });
        for id in self.held.ids_where(|held| matches!(held.stage, Stage::Running(_))) {
            self.on_running_while_stopping(&id);
        }
    }

    /// A task runs while the watcher stops (it was running, or a launch in flight started it): stop it, or leave it
    /// running and return its message at once.
    pub(super) fn on_running_while_stopping(&mut self, id: &str) {
        match self.phase() {
            None | Some(Phase::FinalPoll) => {}
            Some(Phase::StoppingTasks { .. }) if self.config.on_shutdown == OnShutdown::StopTasks => {
                let Some(Stage::Running(running)) = self.held.get_mut(id).map(|held| &mut held.stage) else { return };
                if running.stop != StopState::NotAsked {
                    return;
                }
                running.stop = StopState::InFlight;
                let handle = running.handle.clone();
                self.start_stop(id.to_string(), handle, "watcher shutting down", false);
            }
            Some(_) => self.interrupt(id),
        }
    }

    /// Whether the loop is done: stopping, and nothing is held, pending or in flight (or the last flush ran out of
    /// time).
    pub(super) fn finished(&self) -> bool {
        match self.phase() {
            Some(Phase::Draining { until }) => {
                Instant::now() >= until || (self.held.is_empty() && self.notes.is_empty() && self.calls.is_empty())
            }
            _ => false,
        }
    }
}
