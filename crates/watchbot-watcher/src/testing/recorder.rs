//! [`Recorder`]: an event sink that keeps the loop's events in memory.

use super::lock;
use crate::events::{Event, EventSink};
use std::sync::{Arc, Mutex};

/// An event sink that keeps every event in memory, for a test to look at.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// The names of the events so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.events().iter().map(Event::name).collect()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        lock(&self.events).push(event.clone());
    }
}
