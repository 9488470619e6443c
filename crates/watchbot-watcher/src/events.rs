//! The loop's typed events and where they go: by default one JSON line per event on stderr (for CloudWatch metric
//! filters such as `{ $.event = "finished" && $.outcome = "failed" }`); local mode and tests install their own sink
//! (tests: `testing::Recorder`).

use crate::decide::{Outcome, rfc3339};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Something the loop did or saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The loop started.
    Started {
        /// Tasks at once.
        workers: usize,
    },
    /// A message was received.
    Received {
        /// The message id.
        message_id: String,
        /// Receive count of this delivery.
        receive_count: u32,
    },
    /// A task was started for a message.
    Launched {
        /// The message id.
        message_id: String,
        /// The runner's handle, as text (task ARN, child pid).
        task: String,
    },
    /// A task already running for a message (a duplicate receive) was adopted instead of launching a second one.
    Adopted {
        /// The message id.
        message_id: String,
        /// The running task.
        task: String,
    },
    /// The runner could not place the task (capacity, throttling); the message is held and placement retried.
    NotPlaced {
        /// The message id.
        message_id: String,
        /// The runner's reason.
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// A held message that had not started was let go: its hold was lost (another watcher received it, or it is
    /// gone), so it is not launched here.
    Released {
        /// The message id.
        message_id: String,
        /// Why the hold was lost.
        reason: String,
    },
    /// A task ran past the message timeout and was asked to stop.
    TimedOut {
        /// The message id.
        message_id: String,
        /// The timeout in seconds.
        timeout_secs: u64,
    },
    /// A task finished and its outcome was decided.
    Finished {
        /// The message id.
        message_id: String,
        /// The outcome.
        outcome: Outcome,
        /// The task's exit code, if any.
        exit_code: Option<i32>,
        /// Why it stopped.
        reason: String,
        /// How long the task ran, in milliseconds.
        duration_ms: u64,
        /// Receive count of this delivery.
        receive_count: u32,
    },
    /// A message was returned to the queue.
    Returned {
        /// The message id.
        message_id: String,
        /// Milliseconds until it is visible again.
        delay_ms: u64,
    },
    /// A message was deleted.
    Deleted {
        /// The message id.
        message_id: String,
    },
    /// A notification was sent.
    Notified {
        /// The message id.
        message_id: String,
        /// Its subject.
        subject: String,
    },
    /// A message was copied to the dead-letter queue and deleted (it cannot run: its environment is too large).
    DeadLettered {
        /// The message id.
        message_id: String,
        /// Why.
        reason: String,
    },
    /// A held message's hold lapsed: every renewal failed or hung for a whole heartbeat window (a long outage), so
    /// the queue may hand it to another watcher. On ECS that watcher adopts the running task (`startedBy`); a local
    /// child cannot be seen by another watcher. Renewals go on, and a later one may still take the hold back.
    HoldLost {
        /// The message id.
        message_id: String,
        /// The last renewal's error.
        error: String,
    },
    /// A call to the world failed; the loop retries it.
    Error {
        /// What was being done (`receive`, `delete`, `launch` ...).
        action: String,
        /// The message concerned, if one.
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The error.
        error: String,
    },
    /// A notification written to the log: no notification topic is configured, or sending failed for good.
    Notification {
        /// The message id (empty when the notifier was not told).
        #[serde(skip_serializing_if = "String::is_empty")]
        message_id: String,
        /// Subject.
        subject: String,
        /// Body.
        body: String,
    },
    /// Shutdown began: receiving stopped.
    Stopping {
        /// Tasks still running.
        running: usize,
    },
    /// The loop ended.
    Stopped {
        /// Messages received.
        received: u64,
        /// Messages whose task exited 0.
        succeeded: u64,
        /// Failed tasks.
        failed: u64,
    },
}

impl Event {
    /// The event's name as in its JSON `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::Received { .. } => "received",
            Event::Launched { .. } => "launched",
            Event::Adopted { .. } => "adopted",
            Event::NotPlaced { .. } => "not_placed",
            Event::Released { .. } => "released",
            Event::TimedOut { .. } => "timed_out",
            Event::Finished { .. } => "finished",
            Event::Returned { .. } => "returned",
            Event::Deleted { .. } => "deleted",
            Event::Notified { .. } => "notified",
            Event::DeadLettered { .. } => "dead_lettered",
            Event::HoldLost { .. } => "hold_lost",
            Event::Error { .. } => "error",
            Event::Notification { .. } => "notification",
            Event::Stopping { .. } => "stopping",
            Event::Stopped { .. } => "stopped",
        }
    }

    /// `debug` for the per-message bookkeeping of the queue (deleted, returned), `error` for errors, else `info`
    /// (received, launched, finished, notified ...: what metric filters count).
    pub fn level(&self) -> Level {
        match self {
            Event::Error { .. } | Event::Notification { .. } | Event::HoldLost { .. } => Level::Error,
            Event::Deleted { .. } | Event::Returned { .. } => Level::Debug,
            _ => Level::Info,
        }
    }
}

/// How much the default sink prints (`LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything.
    Debug,
    /// Launches, outcomes, notifications, errors.
    Info,
    /// Errors only.
    Error,
}

/// Where events go.
pub trait EventSink: Send + Sync + 'static {
    /// Records one event.
    fn emit(&self, event: &Event);
}

/// The JSON line for an event: `{"time":"…Z","level":"info","event":"finished",…}`.
pub fn json_line(event: &Event, now_ms: u64) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_else(|_| serde_json::json!({ "event": event.name() }));
    if let Some(object) = value.as_object_mut() {
        object.insert("time".into(), rfc3339(now_ms).into());
        let level = match event.level() {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Error => "error",
        };
        object.insert("level".into(), level.into());
    }
    value.to_string()
}

/// Writes one JSON line per event at or above `level` to stderr.
#[derive(Debug, Clone, Copy)]
pub struct StderrJson {
    /// The least severe level printed.
    pub level: Level,
}

impl EventSink for StderrJson {
    fn emit(&self, event: &Event) {
        if event.level() >= self.level {
            let mut line = json_line(event, now_ms());
            line.push('\n');
            crate::console::write(crate::console::Stream::Stderr, line.as_bytes());
        }
    }
}

/// Wall-clock epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_flat_and_named() {
        let line = json_line(
            &Event::Finished {
                message_id: "m".into(),
                outcome: Outcome::Failed,
                exit_code: Some(2),
                reason: "exited".into(),
                duration_ms: 1500,
                receive_count: 1,
            },
            0,
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"event":"finished","time":"1970-01-01T00:00:00.000Z","level":"info","message_id":"m",
                "outcome":"failed","exit_code":2,"reason":"exited","duration_ms":1500,"receive_count":1})
        );
        let error = json_line(&Event::Error { action: "receive".into(), message_id: None, error: "boom".into() }, 0);
        assert!(error.contains(r#""level":"error""#) && !error.contains("message_id"), "{error}");
    }
}
