//! Operating a queue: what is in it and what sits in its dead-letter queue, and acting on dead letters (redrive,
//! delete, purge). The same calls on the embedded queue (`local::queue`) and on SQS (`aws::dead_letters`), behind
//! the [`Operate`] port, so `watchbot status`, `watchbot dead-letter` and the dashboard share one
//! implementation and one behaviour.
//!
//! Looking never consumes: listing and showing dead letters leave every message where it was (on SQS the received
//! dead letters are made visible again at once). Acting names its messages by id, checked before anything changes:
//! an unknown id is an [`OpsError::UnknownId`] and nothing is done. A redrive sends a message to the work queue, then
//! deletes its dead letter, so a crash in between leaves a duplicate, never a loss.

pub mod outcomes;
pub mod receiving;

use crate::message;
use crate::ports::PortError;
use std::collections::BTreeMap;
use std::future::Future;

/// Where a queue's messages are, and what is running, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct QueueStatus {
    /// Receivable now.
    pub visible: u64,
    /// Received and not visible again yet: a task runs for it, or it waits out a backoff delay.
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
    /// In the dead-letter queue.
    pub dead_letters: u64,
    /// Age of the oldest message of the work queue, in milliseconds (`None`: empty, or not known: SQS's API does
    /// not tell it; its CloudWatch metric `ApproximateAgeOfOldestMessage` does).
    pub oldest_age_ms: Option<u64>,
    /// The messages in flight, when the queue can list them (the embedded queue; SQS cannot without receiving).
    pub in_flight_messages: Option<Vec<InFlight>>,
    /// The last failed attempts, where an attempt history is kept (see [`recent_failures`]).
    pub recent_failures: Vec<FailedAttempt>,
}

/// A message in flight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InFlight {
    /// The message id.
    pub message_id: String,
    /// Receives so far, this one included.
    pub receive_count: u32,
    /// Epoch ms of the receive that holds it (`None` on a queue file written before this was kept).
    pub received_ms: Option<u64>,
    /// Epoch ms when it becomes visible again unless renewed (a running task's hold is renewed).
    pub visible_at_ms: u64,
}

/// A failed attempt of a message, as an attempt history records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedAttempt {
    /// The message id.
    pub message_id: String,
    /// The receive count of that attempt.
    pub receive_count: u32,
    /// Epoch ms when it ended.
    pub ended_ms: u64,
    /// Why it failed, in the runner's words.
    pub reason: String,
}

/// One attempt of a message, as an attempt history records it (shown by `watchbot dead-letter show`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attempt {
    /// The receive count of that attempt.
    pub receive_count: u32,
    /// Epoch ms when it ended.
    pub ended_ms: u64,
    /// The outcome's name (`failed`, `returned`, ...).
    pub outcome: String,
    /// The task's exit code, if it had one.
    pub exit_code: Option<i32>,
    /// Why it stopped.
    pub reason: String,
    /// The end of the task's output, if kept.
    pub output: Option<String>,
}

/// The attempt history of a state folder, when there is one (a folder without one, or SQS: `None`).
#[cfg(feature = "local")]
fn history(state_dir: Option<&std::path::Path>) -> Option<crate::local::history::History> {
    crate::local::history::History::open(state_dir?).ok()
}

/// The last failed or rejected attempts on this queue, newest first, at most `limit`: from the attempt history of
/// the state folder `state_dir` (`local::history`); empty without one (SQS keeps no history: `watchbot logs` reads
/// the stack's log group instead).
pub fn recent_failures(state_dir: Option<&std::path::Path>, limit: usize) -> Vec<FailedAttempt> {
    #[cfg(feature = "local")]
    if let Some(history) = history(state_dir) {
        let attempts = history.recent_failures(limit).unwrap_or_default();
        return attempts
            .into_iter()
            .map(|a| FailedAttempt {
                message_id: a.message_id,
                receive_count: a.receive_count,
                ended_ms: a.ended_ms,
                reason: a.reason,
            })
            .collect();
    }
    let _ = (state_dir, limit);
    Vec::new()
}

/// Every recorded attempt of a message, oldest first, with its kept output (`watchbot dead-letter show` prints
/// them under "attempts"); empty without a history, as [`recent_failures`].
pub fn attempts(state_dir: Option<&std::path::Path>, message_id: &str) -> Vec<Attempt> {
    #[cfg(feature = "local")]
    if let Some(history) = history(state_dir) {
        let attempts = history.attempts(message_id).unwrap_or_default();
        return attempts
            .into_iter()
            .map(|a| Attempt {
                receive_count: a.receive_count,
                ended_ms: a.ended_ms,
                outcome: a.outcome,
                exit_code: a.exit_code,
                reason: a.reason,
                output: match a.output {
                    crate::ports::TaskOutput::Tail { text, .. } => Some(text),
                    crate::ports::TaskOutput::Unavailable(_) => None,
                },
            })
            .collect();
    }
    let _ = (state_dir, message_id);
    Vec::new()
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter queue (SQS keeps the work queue's id when its redrive policy moves a message; the
    /// embedded queue too).
    pub message_id: String,
    /// The raw body (an SNS envelope for messages published to the topic).
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
    /// Epoch ms when the message was first sent.
    pub sent_ms: u64,
    /// Receives of the message (on SQS the dead-letter queue's own count: each listing adds one).
    pub receive_count: u32,
    /// Epoch ms of its first receive, when known.
    pub first_receive_ms: Option<u64>,
}

impl DeadLetter {
    /// The subject and message as the task saw them (an SNS envelope unwrapped).
    pub fn parsed(&self) -> message::Parsed {
        message::parse(&self.body, &self.attributes)
    }

    /// The dead letter as the JSON object of `watchbot dead-letter list --json`: `message_id`, `subject`, `message`
    /// (an SNS envelope unwrapped), `receive_count`, `sent` (RFC 3339), `attributes`, and `body` (the raw body).
    pub fn to_json(&self) -> serde_json::Value {
        let parsed = self.parsed();
        serde_json::json!({
            "message_id": self.message_id,
            "subject": parsed.subject,
            "message": parsed.message,
            "receive_count": self.receive_count,
            "sent": crate::decide::rfc3339(self.sent_ms),
            "first_receive": self.first_receive_ms.map(crate::decide::rfc3339),
            "attributes": self.attributes,
            "body": self.body,
        })
    }
}

/// A dead letter sent back to the work queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Redriven {
    /// Its id in the dead-letter queue.
    pub message_id: String,
    /// Its id in the work queue now (SQS gives the sent copy a new id; the embedded queue keeps it).
    pub new_message_id: String,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsError {
    /// No dead letter has this id (nothing was changed).
    #[error("no dead letter with id {0}")]
    UnknownId(String),
    /// The queue has no dead-letter queue (SQS: no `RedrivePolicy` and no `--dead-letter-queue-url`).
    #[error("{0}")]
    NoDeadLetterQueue(String),
    /// The queue could not be read or changed.
    #[error("{0}")]
    Port(#[from] PortError),
}

/// A queue and its dead-letter queue, as an operator sees them.
pub trait Operate: Send + Sync {
    /// The counts (and, where the queue can tell them, the age of the oldest message and the messages in flight).
    fn status(&self) -> impl Future<Output = Result<QueueStatus, OpsError>> + Send;

    /// Every dead letter, oldest first where the queue knows the order. Consumes nothing.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, OpsError>> + Send;

    /// These dead letters, in the order asked; an unknown id is an error. Consumes nothing.
    fn show(&self, ids: &[String]) -> impl Future<Output = Result<Vec<DeadLetter>, OpsError>> + Send;

    /// Sends these dead letters (`None`: all) back to the work queue, each sent before its dead letter is deleted.
    /// Every id is checked before anything is sent.
    fn redrive(&self, ids: Option<&[String]>) -> impl Future<Output = Result<Vec<Redriven>, OpsError>> + Send;

    /// Deletes these dead letters (`None`: all of them, a purge); returns the ids deleted. Every id is checked
    /// before anything is deleted.
    fn delete(&self, ids: Option<&[String]>) -> impl Future<Output = Result<Vec<String>, OpsError>> + Send;
}

/// The ids asked for that are not among `found`, in the order asked: the first is what an error names.
pub fn unknown_ids<'a>(asked: &'a [String], found: &[DeadLetter]) -> Vec<&'a str> {
    asked.iter().filter(|id| !found.iter().any(|d| &d.message_id == *id)).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str, body: &str) -> DeadLetter {
        DeadLetter {
            message_id: id.into(),
            body: body.into(),
            attributes: BTreeMap::new(),
            sent_ms: 0,
            receive_count: 3,
            first_receive_ms: None,
        }
    }

    #[test]
    fn json_unwraps_an_sns_envelope() {
        let envelope = r#"{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:t","Subject":"s","Message":"m"}"#;
        let json = letter("a", envelope).to_json();
        assert_eq!(json["message_id"], "a");
        assert_eq!(json["subject"], "s");
        assert_eq!(json["message"], "m");
        assert_eq!(json["receive_count"], 3);
        assert_eq!(letter("b", "raw").to_json()["message"], "raw");
    }

    #[test]
    fn unknown_ids_keep_the_order_asked() {
        let found = [letter("a", "x")];
        let asked = ["z".to_string(), "a".to_string(), "y".to_string()];
        assert_eq!(unknown_ids(&asked, &found), ["z", "y"]);
    }
}
