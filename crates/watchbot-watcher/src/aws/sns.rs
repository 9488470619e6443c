//! SNS: publishing to a topic (follow-up work from workers, `watchbot send`) and the SNS [`Notifier`].
//!
//! SNS rejects a Subject over 100 characters, with a line break or a non-ASCII-printable character, or starting with
//! a space; [`sanitize_subject`] makes any text acceptable so a notification is never lost to its subject.

use crate::aws::error::port_error;
use crate::ports::{Notification, Notifier, PortError, PortErrorKind};

/// SNS's limit on a Subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// SNS's limit on a message, in bytes (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = crate::limits::MAX_BODY_BYTES;

/// An SNS topic, addressed by its ARN.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    /// A topic adapter for `topic_arn` using a built client (from `aws-config`'s standard chain).
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> SnsTopic {
        SnsTopic { client, topic_arn }
    }

    /// The topic's ARN.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publishes a message with an optional subject (sanitized for SNS); returns SNS's message id.
    pub async fn publish(&self, subject: Option<&str>, message: &str) -> Result<String, PortError> {
        if message.is_empty() {
            return Err(PortError::new(PortErrorKind::Rejected, "sns Publish: the message is empty"));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(PortError::new(
                PortErrorKind::Rejected,
                format!("sns Publish: the message is {} bytes, over SNS's {MAX_MESSAGE_BYTES}", message.len()),
            ));
        }
        let subject = subject.map(sanitize_subject).filter(|s| !s.is_empty());
        let output = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .set_subject(subject)
            .send()
            .await
            .map_err(|e| port_error("sns Publish", &e))?;
        output.message_id().map(str::to_string).ok_or_else(|| PortError::transient("sns Publish: no message id"))
    }
}

impl Notifier for SnsTopic {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        let body = truncate_body(&notification.body);
        self.publish(Some(&notification.subject), &body).await.map(drop)
    }
}

/// Makes a subject SNS accepts: ASCII printable only (anything else becomes `?`, line breaks and tabs a space),
/// no leading or trailing spaces, at most 100 characters (cut with `...` at the end when longer).
pub fn sanitize_subject(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            '\n' | '\r' | '\t' => ' ',
            _ => '?',
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.len() <= MAX_SUBJECT_CHARS {
        return cleaned.to_string();
    }
    // All ASCII now, so byte and character positions agree.
    format!("{}...", cleaned[..MAX_SUBJECT_CHARS - 3].trim_end())
}

/// Keeps a notification body within SNS's size limit, keeping its start (the facts) and its end (the latest logs).
fn truncate_body(body: &str) -> std::borrow::Cow<'_, str> {
    const MARK: &str = "\n[... truncated to fit SNS's 256 KiB limit ...]\n";
    if body.is_empty() {
        return "(no details)".into();
    }
    if body.len() <= MAX_MESSAGE_BYTES {
        return body.into();
    }
    let keep = (MAX_MESSAGE_BYTES - MARK.len()) / 2 - 4;
    let mut head = keep;
    while !body.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = body.len() - keep;
    while !body.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{MARK}{}", &body[..head], &body[tail..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_made_acceptable() {
        assert_eq!(sanitize_subject("stack failed processing message 1"), "stack failed processing message 1");
        assert_eq!(sanitize_subject("  two\nlines\ttab  "), "two lines tab");
        assert_eq!(sanitize_subject("café ☕"), "caf? ?");
        let long = "x".repeat(250);
        let cut = sanitize_subject(&long);
        assert_eq!(cut.len(), 100);
        assert!(cut.ends_with("..."));
        assert_eq!(sanitize_subject(&"y".repeat(100)).len(), 100);
    }

    #[test]
    fn bodies_are_cut_to_the_limit() {
        let body = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = truncate_body(&body);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert!(cut.contains("truncated"));
        assert_eq!(truncate_body("short"), "short");
        assert_eq!(truncate_body(""), "(no details)");
    }
}
