//! The SQS queue adapter: the [`Queue`] port on `aws-sdk-sqs`.
//!
//! Receives ask for the system attributes the task's environment needs (SentTimestamp,
//! ApproximateFirstReceiveTimestamp, ApproximateReceiveCount) and every message attribute. Batch calls map SQS's
//! per-entry failures to [`BatchFailure`]s by position; errors are classified into [`PortErrorKind`]s so the loop knows
//! what to retry: throttling, 5xx, timeouts and network errors are transient, a stale receipt handle is
//! `InvalidReceipt`, a missing queue is `NotFound`, anything else is `Rejected`.

use crate::aws::error::{classify_code, port_error};
use crate::ports::{
    BatchFailure, OutgoingMessage, PortError, PortErrorKind, Queue, ReceiveRequest, ReceivedMessage, VisibilityChange,
};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// SQS's limits, enforced here so a bad value fails with a clear error rather than an opaque 400.
const MAX_BATCH: usize = 10;
const MAX_WAIT_SECONDS: u64 = 20;
const MAX_VISIBILITY_SECONDS: u64 = 12 * 60 * 60;
const MAX_DELAY_SECONDS: u64 = 15 * 60;

/// A queue on SQS, addressed by its URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    /// A queue adapter for `queue_url` using a built client (from `aws-config`'s standard chain).
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> SqsQueue {
        SqsQueue { client, queue_url }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// SQS's approximate counts: visible, in flight (`NotVisible`), delayed.
    pub async fn counts(&self) -> Result<(u64, u64, u64), PortError> {
        let attributes = self
            .attributes(&[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ])
            .await?;
        let number = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            number(QueueAttributeName::ApproximateNumberOfMessages),
            number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }

    /// The queue's `RedrivePolicy`, if it has one.
    pub async fn redrive_policy(&self) -> Result<Option<RedrivePolicy>, PortError> {
        let attributes = self.attributes(&[QueueAttributeName::RedrivePolicy]).await?;
        let Some(text) = attributes.get(&QueueAttributeName::RedrivePolicy) else { return Ok(None) };
        RedrivePolicy::parse(text).map(Some).ok_or_else(|| {
            PortError::new(
                PortErrorKind::Rejected,
                format!("sqs GetQueueAttributes: {} has a RedrivePolicy watchbot cannot read: {text}", self.queue_url),
            )
        })
    }

    async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>, PortError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("sqs GetQueueAttributes", &e))?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }

    async fn delete_chunk(&self, offset: usize, handles: &[String]) -> Result<Vec<BatchFailure>, PortError> {
        let entries = handles
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id((offset + i).to_string())
                    .receipt_handle(handle)
                    .build()
                    .map_err(|e| PortError::new(PortErrorKind::Rejected, format!("sqs delete entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("sqs DeleteMessageBatch", &e))?;
        Ok(output.failed().iter().map(|entry| batch_failure("sqs DeleteMessageBatch", entry)).collect())
    }

    async fn change_visibility_chunk(
        &self,
        offset: usize,
        changes: &[VisibilityChange],
    ) -> Result<Vec<BatchFailure>, PortError> {
        let entries = changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id((offset + i).to_string())
                    .receipt_handle(&change.receipt_handle)
                    .visibility_timeout(seconds_up(change.timeout, MAX_VISIBILITY_SECONDS))
                    .build()
                    .map_err(|e| PortError::new(PortErrorKind::Rejected, format!("sqs visibility entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("sqs ChangeMessageVisibilityBatch", &e))?;
        Ok(output.failed().iter().map(|entry| batch_failure("sqs ChangeMessageVisibilityBatch", entry)).collect())
    }
}

impl Queue for SqsQueue {
    async fn receive(&self, request: ReceiveRequest) -> Result<Vec<ReceivedMessage>, PortError> {
        let max = i32::from(request.max_messages.clamp(1, MAX_BATCH as u8));
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            // Rounded down: a long poll must never outlast what the caller allowed.
            .wait_time_seconds(request.wait.as_secs().min(MAX_WAIT_SECONDS) as i32)
            .set_visibility_timeout(request.visibility_timeout.map(|t| seconds_up(t, MAX_VISIBILITY_SECONDS)))
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| port_error("sqs ReceiveMessage", &e))?;
        output.messages().iter().map(received_message).collect()
    }

    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<Vec<BatchFailure>, PortError> {
        let mut failures = Vec::new();
        for (n, chunk) in receipt_handles.chunks(MAX_BATCH).enumerate() {
            failures.extend(self.delete_chunk(n * MAX_BATCH, chunk).await?);
        }
        Ok(failures)
    }

    async fn change_visibility_batch(&self, changes: &[VisibilityChange]) -> Result<Vec<BatchFailure>, PortError> {
        let mut failures = Vec::new();
        for (n, chunk) in changes.chunks(MAX_BATCH).enumerate() {
            failures.extend(self.change_visibility_chunk(n * MAX_BATCH, chunk).await?);
        }
        Ok(failures)
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, PortError> {
        if message.delay.as_secs() > MAX_DELAY_SECONDS {
            return Err(PortError::new(
                PortErrorKind::Rejected,
                format!("sqs SendMessage: delay of {} s is over the 900 s maximum", message.delay.as_secs()),
            ));
        }
        let mut request = self.client.send_message().queue_url(&self.queue_url).message_body(message.body);
        if !message.delay.is_zero() {
            request = request.delay_seconds(seconds_up(message.delay, MAX_DELAY_SECONDS));
        }
        for (name, value) in message.attributes {
            let value =
                MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(|e| {
                    PortError::new(PortErrorKind::Rejected, format!("sqs message attribute {name}: {e}"))
                })?;
            request = request.message_attributes(name, value);
        }
        let output = request.send().await.map_err(|e| port_error("sqs SendMessage", &e))?;
        output
            .message_id()
            .map(str::to_string)
            .ok_or_else(|| PortError::transient("sqs SendMessage: response had no message id"))
    }
}

/// A queue's `RedrivePolicy`: where its dead letters go, and after how many receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// The dead-letter queue's ARN.
    pub dead_letter_target_arn: String,
    /// Receives after which SQS moves a message there (on the receive after the last one allowed).
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    /// Parses the attribute's JSON (`maxReceiveCount` as a number or a string, as SQS and CloudFormation write it).
    pub fn parse(text: &str) -> Option<RedrivePolicy> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let arn = value.get("deadLetterTargetArn")?.as_str()?.to_string();
        let count = value.get("maxReceiveCount")?;
        let count = count.as_u64().or_else(|| count.as_str().and_then(|s| s.trim().parse().ok()))?;
        Some(RedrivePolicy { dead_letter_target_arn: arn, max_receive_count: u32::try_from(count).ok()? })
    }
}

/// Whole seconds, rounded up (a visibility of 1.5 s must hide the message for at least 1.5 s), capped at `max`.
fn seconds_up(duration: Duration, max: u64) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.min(max) as i32
}

fn received_message(message: &aws_sdk_sqs::types::Message) -> Result<ReceivedMessage, PortError> {
    let missing = |what: &str| PortError::transient(format!("sqs ReceiveMessage: a message had no {what}"));
    let system = message.attributes();
    let number = |name: MessageSystemAttributeName| -> u64 {
        system.and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let attributes = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                // Binary attributes have no string form; the task environment only carries strings.
                .filter_map(|(name, value)| value.string_value().map(|v| (name.clone(), v.to_string())))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    let sent = number(MessageSystemAttributeName::SentTimestamp);
    let first_receive = number(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp);
    Ok(ReceivedMessage {
        message_id: message.message_id().ok_or_else(|| missing("message id"))?.to_string(),
        receipt_handle: message.receipt_handle().ok_or_else(|| missing("receipt handle"))?.to_string(),
        body: message.body().unwrap_or_default().to_string(),
        sent_timestamp_ms: sent,
        first_receive_timestamp_ms: if first_receive == 0 { sent } else { first_receive },
        receive_count: number(MessageSystemAttributeName::ApproximateReceiveCount).max(1) as u32,
        attributes,
    })
}

fn batch_failure(operation: &str, entry: &aws_sdk_sqs::types::BatchResultErrorEntry) -> BatchFailure {
    let message = format!("{operation}: {} ({})", entry.message().unwrap_or("failed"), entry.code());
    // Entry ids are the positions we gave them; an id we did not send cannot happen, but must not panic.
    let index = entry.id().parse().unwrap_or(usize::MAX);
    let kind = classify_code(entry.code(), entry.message().unwrap_or_default()).unwrap_or(if entry.sender_fault() {
        PortErrorKind::Rejected
    } else {
        PortErrorKind::Transient
    });
    BatchFailure { index, error: PortError::new(kind, message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_parse() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:dlq";
        let expected = Some(RedrivePolicy { dead_letter_target_arn: arn.into(), max_receive_count: 5 });
        assert_eq!(
            RedrivePolicy::parse(&format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":5}}"#)),
            expected
        );
        assert_eq!(
            RedrivePolicy::parse(&format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#)),
            expected
        );
        assert_eq!(RedrivePolicy::parse(r#"{"maxReceiveCount":5}"#), None);
        assert_eq!(RedrivePolicy::parse("nonsense"), None);
    }

    #[test]
    fn seconds_round_up_and_cap() {
        assert_eq!(seconds_up(Duration::from_millis(1500), 100), 2);
        assert_eq!(seconds_up(Duration::from_secs(3), 100), 3);
        assert_eq!(seconds_up(Duration::ZERO, 100), 0);
        assert_eq!(seconds_up(Duration::from_secs(50_000), MAX_VISIBILITY_SECONDS), 43_200);
    }
}
