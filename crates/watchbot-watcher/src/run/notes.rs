//! Notifications: sent as calls of their own (a few at once), a failed one retried with backoff, and after the last
//! try (or at shutdown) its text written to the event log, so no notification is lost silently.

use super::Loop;
use super::calls::Done;
use crate::events::Event;
use crate::ports::{Notification, Notifier, PortError, Queue, TaskRunner};
use tokio::time::Instant;

const MAX_NOTE_ATTEMPTS: u32 = 5;
/// Notifications in flight at once.
const MAX_NOTE_CALLS: usize = 4;

/// A notification still to be sent.
pub(super) struct PendingNote {
    message_id: String,
    notification: Notification,
    attempts: u32,
    due: Instant,
}

/// The notifications waiting to be sent.
#[derive(Default)]
pub(super) struct Notes {
    pending: Vec<PendingNote>,
}

impl Notes {
    pub fn push(&mut self, message_id: &str, notification: Notification) {
        self.pending.push(PendingNote {
            message_id: message_id.to_string(),
            notification,
            attempts: 0,
            due: Instant::now(),
        });
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|note| note.due).min()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl<Q: Queue, R: TaskRunner, N: Notifier, D: Queue> Loop<'_, Q, R, N, D> {
    /// When the next notification may go (none while the most are in flight: one ending wakes the loop).
    pub(super) fn notes_due(&self) -> Option<Instant> {
        if self.calls.notes >= MAX_NOTE_CALLS { None } else { self.notes.next_due() }
    }

    /// Sends the due notifications, a few at a time.
    pub(super) fn send_notes(&mut self, now: Instant) {
        while self.calls.notes < MAX_NOTE_CALLS {
            let Some(index) = self.notes.pending.iter().position(|note| note.due <= now) else { return };
            let note = self.notes.pending.remove(index);
            self.calls.notes += 1;
            let ports = self.ports;
            self.calls.push(async move {
                let result = ports.notifier.notify(&note.notification).await;
                Done::Notified { note, result }
            });
        }
    }

    pub(super) fn on_notified(&mut self, mut note: PendingNote, result: Result<(), PortError>) {
        match result {
            Ok(()) => {
                self.summary.notifications += 1;
                self.emit(Event::Notified { message_id: note.message_id, subject: note.notification.subject });
            }
            Err(error) => {
                self.error("notify", Some(&note.message_id), &error);
                note.attempts += 1;
                if error.is_transient() && note.attempts < MAX_NOTE_ATTEMPTS && !self.stopping() {
                    note.due = Instant::now() + self.retry_delay(note.attempts);
                    self.notes.pending.push(note);
                } else {
                    self.emit(Event::Notification {
                        message_id: note.message_id,
                        subject: note.notification.subject,
                        body: note.notification.body,
                    });
                }
            }
        }
    }
}
