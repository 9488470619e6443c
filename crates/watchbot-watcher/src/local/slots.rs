//! The tasks a local runner owns (the process runner's children, the container runner's containers), shared by the
//! runner and the tasks' owners: each slot's message, its stop channel, and how it ended once its owner recorded
//! that. A finished task is reported by one poll and then forgotten; its output is kept until the next poll.

use crate::ports::{TaskOutput, TaskState};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::mpsc;

/// The tasks of one runner, by handle.
pub(crate) struct Slots<K> {
    slots: HashMap<K, Slot>,
    /// The output of the tasks the latest poll reported stopped, dropped at the next.
    kept: HashMap<K, TaskOutput>,
}

impl<K> Default for Slots<K> {
    fn default() -> Slots<K> {
        Slots { slots: HashMap::new(), kept: HashMap::new() }
    }
}

/// One task.
pub(crate) struct Slot {
    pub(crate) message_id: String,
    /// The child's process id, while it runs (the process runner's).
    pub(crate) pid: Option<u32>,
    /// `None` while the task runs.
    pub(crate) finished: Option<(TaskState, TaskOutput)>,
    /// Stop requests (with their reason) to the task's owner; `None` once it ended.
    pub(crate) stop: Option<mpsc::UnboundedSender<String>>,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// Registers a running task.
    pub(crate) fn insert(&mut self, key: K, message_id: &str, stop: mpsc::UnboundedSender<String>) {
        let slot = Slot { message_id: message_id.to_string(), pid: None, finished: None, stop: Some(stop) };
        self.slots.insert(key, slot);
    }

    /// A task, finished or not.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut Slot> {
        self.slots.get_mut(key)
    }

    /// Whether the runner owns this task (finished and not yet polled included).
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// The running tasks of a message.
    pub(crate) fn running_for<'a>(&'a self, message_id: &'a str) -> impl Iterator<Item = &'a K> + 'a {
        self.slots
            .iter()
            .filter(move |(_, slot)| slot.finished.is_none() && slot.message_id == message_id)
            .map(|(k, _)| k)
    }

    /// How many tasks run now.
    pub(crate) fn running(&self) -> usize {
        self.slots.values().filter(|slot| slot.finished.is_none()).count()
    }

    /// The owner's record of how its task ended.
    pub(crate) fn finish(&mut self, key: &K, state: TaskState, output: TaskOutput) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.finished = Some((state, output));
            slot.stop = None;
        }
    }

    /// Asks the task's owner to stop it; a finished or unknown task is left alone.
    pub(crate) fn stop(&self, key: &K, reason: &str) {
        if let Some(sender) = self.slots.get(key).and_then(|slot| slot.stop.as_ref()) {
            // A send error means the task has just ended: nothing to stop.
            let _ = sender.send(reason.to_string());
        }
    }

    /// Each task's state. A finished one is reported once and then forgotten, its output kept until the next poll;
    /// asking again, or about a handle the runner never issued, answers `Stopped { exit_code: None, reason: "task
    /// no longer exists" }`.
    pub(crate) fn poll(&mut self, handles: &[K]) -> Vec<(K, TaskState)> {
        self.kept.clear();
        handles
            .iter()
            .map(|handle| {
                let running = self.slots.get(handle).map(|slot| slot.finished.is_none());
                let state = match running {
                    Some(true) => TaskState::Running,
                    Some(false) => match self.slots.remove(handle).and_then(|slot| slot.finished) {
                        Some((state, output)) => {
                            self.kept.insert(handle.clone(), output);
                            state
                        }
                        None => gone(),
                    },
                    None => gone(),
                };
                (handle.clone(), state)
            })
            .collect()
    }

    /// The kept output of a task the latest poll reported stopped.
    pub(crate) fn output(&mut self, key: &K) -> TaskOutput {
        self.kept
            .remove(key)
            .unwrap_or_else(|| TaskOutput::Unavailable("the runner no longer has this task's output".to_string()))
    }
}

fn gone() -> TaskState {
    TaskState::Stopped { exit_code: None, reason: "task no longer exists".to_string() }
}

/// The slots, locked. Every update is a single insert, remove or assignment, so a panic while holding the lock leaves
/// them whole: a poisoned lock is taken as it is.
pub(crate) fn lock<K>(shared: &Mutex<Slots<K>>) -> MutexGuard<'_, Slots<K>> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
