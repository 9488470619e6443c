//! The registry of held messages: every message this watcher holds (received and not yet deleted, returned or let
//! go) is in it exactly once, in exactly one [`Stage`], acknowledging included, with its hold's renewal state. The
//! heartbeat, the counts and shutdown walk this one map.

use crate::ports::ReceivedMessage;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// A message held by the loop.
pub(super) struct Held<H> {
    pub message: ReceivedMessage,
    pub env: BTreeMap<String, String>,
    pub stage: Stage<H>,
    pub hold: Hold,
}

/// Where a held message is in its life here.
pub(super) enum Stage<H> {
    /// Not running yet: the first attempt, or placement / dead-lettering being retried.
    Waiting { next_attempt: Instant, attempts: u32, checked_running: bool },
    /// A call to get it running is in flight (a look for its running task, a launch, or its copy to the dead-letter
    /// queue).
    Starting { attempts: u32 },
    /// A task runs for it.
    Running(Running<H>),
    /// Finished here: its delete or return is still to be done (batched, retried). The message stays held (its
    /// renewals go on) until then: a hold that lapsed would let it be received and run again.
    Acking(Ack),
}

/// A running task.
pub(super) struct Running<H> {
    pub handle: H,
    pub launched_at: Instant,
    /// Wall-clock epoch ms of the launch (for the attempt's record).
    pub started_ms: u64,
    /// When the message timeout stops it (or when a failed stop is retried).
    pub deadline: Instant,
    pub timed_out: bool,
    pub stop: StopState,
}

/// Whether the task was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopState {
    NotAsked,
    InFlight,
    Asked,
}

/// A delete or return still to be done.
pub(super) struct Ack {
    pub kind: AckKind,
    /// Order of queueing: batches go oldest first.
    pub seq: u64,
    pub attempts: u32,
    /// When it may go (after `batch_linger`, or a retry's delay).
    pub due: Instant,
    /// When it must go even if the batch is not full: later than `due` while other messages may still join its
    /// batch (at most `MAX_ACK_LINGER` after it was queued).
    pub latest: Instant,
    /// A call with this receipt handle is in flight.
    pub in_flight: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AckKind {
    Delete,
    Return(Duration),
}

/// The hold on a message: when its invisibility is renewed next, and when it lapses without a renewal.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hold {
    pub next_renewal: Instant,
    /// A renewal (a visibility change to one window) is in flight.
    pub renewing: bool,
    /// When the queue lets the message go unless a renewal lands first (counted from when the last successful
    /// receive or renewal was sent).
    pub expires: Instant,
    /// `hold_lost` was reported for the current lapse.
    pub lost_reported: bool,
}

impl Hold {
    pub fn new(sent_at: Instant, now: Instant, window: Duration, renew_every: Duration) -> Hold {
        Hold { next_renewal: now + renew_every, renewing: false, expires: sent_at + window, lost_reported: false }
    }
}

/// Every held message, by message id.
pub(super) struct Registry<H> {
    map: HashMap<String, Held<H>>,
}

impl<H> Registry<H> {
    pub fn new() -> Registry<H> {
        Registry { map: HashMap::new() }
    }

    pub fn get(&self, id: &str) -> Option<&Held<H>> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Held<H>> {
        self.map.get_mut(id)
    }

    pub fn insert(&mut self, held: Held<H>) {
        self.map.insert(held.message.message_id.clone(), held);
    }

    pub fn remove(&mut self, id: &str) -> Option<Held<H>> {
        self.map.remove(id)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Held<H>)> {
        self.map.iter()
    }

    /// Ids of the messages whose stage matches.
    pub fn ids_where(&self, mut matches: impl FnMut(&Held<H>) -> bool) -> Vec<String> {
        self.map.iter().filter(|(_, held)| matches(held)).map(|(id, _)| id.clone()).collect()
    }

    /// Messages that occupy a worker: all but those only waiting for their delete or return.
    pub fn occupying(&self) -> usize {
        self.map.values().filter(|held| !matches!(held.stage, Stage::Acking(_))).count()
    }

    /// Whether any task runs.
    pub fn any_running(&self) -> bool {
        self.map.values().any(|held| matches!(held.stage, Stage::Running(_)))
    }

    pub fn running_count(&self) -> usize {
        self.map.values().filter(|held| matches!(held.stage, Stage::Running(_))).count()
    }
}

impl<H: PartialEq> Registry<H> {
    /// The message whose task has this handle.
    pub fn id_of_task(&self, handle: &H) -> Option<String> {
        self.map.iter().find_map(|(id, held)| match &held.stage {
            Stage::Running(running) if running.handle == *handle => Some(id.clone()),
            _ => None,
        })
    }
}
