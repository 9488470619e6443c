//! The operator's view of SQS ([`Operate`] for [`SqsOperator`]): the work queue and its dead-letter queue found from
//! what the operator gives (a queue URL, whose `RedrivePolicy` names the dead-letter queue, or a deployed stack, whose
//! resources `<prefix>Queue` and `<prefix>DeadLetterQueue` are both), their counts from `GetQueueAttributes`, and the
//! dead-letter operations of [`crate::ops::receiving`] on them.

use crate::aws::error::port_error;
use crate::aws::sdk::Aws;
use crate::aws::sqs::SqsQueue;
use crate::ops::{DeadLetter, Operate, OpsError, QueueStatus, Redriven, receiving};
use crate::ports::{PortError, PortErrorKind};

/// A work queue on SQS and its dead-letter queue, if it has one.
#[derive(Debug, Clone)]
pub struct SqsOperator {
    /// The work queue.
    pub work: SqsQueue,
    /// Its dead-letter queue.
    pub dead_letter: Option<SqsQueue>,
}

/// The queues a deployed stack holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackQueues {
    /// The `<prefix>Queue` URL.
    pub queue_url: String,
    /// The `<prefix>DeadLetterQueue` URL.
    pub dead_letter_queue_url: Option<String>,
}

impl Aws {
    /// The operator for the queue at `queue_url`; its dead-letter queue is `dead_letter_queue_url`, or else the one
    /// its `RedrivePolicy` names (none if it has none). A queue that does not exist is an error here, naming it.
    pub async fn operator(
        &self,
        queue_url: &str,
        dead_letter_queue_url: Option<&str>,
    ) -> Result<SqsOperator, PortError> {
        let work = self.queue(queue_url);
        let policy = work.redrive_policy().await?;
        let dead_letter = match (dead_letter_queue_url, policy) {
            (Some(url), _) => Some(self.queue(url)),
            (None, Some(policy)) => Some(self.queue(self.queue_url_of(&policy.dead_letter_target_arn).await?)),
            (None, None) => None,
        };
        Ok(SqsOperator { work, dead_letter })
    }

    /// The URL of the queue with this ARN (`arn:aws:sqs:<region>:<account>:<name>`).
    pub async fn queue_url_of(&self, arn: &str) -> Result<String, PortError> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(PortError::new(PortErrorKind::Rejected, format!("{arn} is not an SQS queue ARN")));
        };
        let client = crate::aws::sdk::sqs_client(self.sdk_config());
        let mut request = client.get_queue_url().queue_name(*name);
        if !account.is_empty() {
            request = request.queue_owner_aws_account_id(*account);
        }
        let output = request.send().await.map_err(|e| port_error(&format!("sqs GetQueueUrl {arn}"), &e))?;
        output
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| PortError::transient(format!("sqs GetQueueUrl {arn}: the answer had no URL")))
    }

    /// The work and dead-letter queues of a deployed stack: its resources `<prefix>Queue` and
    /// `<prefix>DeadLetterQueue` (the template's logical ids; the default prefix is `Watchbot`).
    pub async fn stack_queues(&self, stack: &str, prefix: &str) -> Result<StackQueues, PortError> {
        let resources = self.stack_resources(stack).await?;
        let queue_url = resources.require(&format!("{prefix}Queue"), "AWS::SQS::Queue")?;
        let dead_letter_queue_url = resources.physical(&format!("{prefix}DeadLetterQueue")).map(str::to_string);
        Ok(StackQueues { queue_url, dead_letter_queue_url })
    }
}

impl SqsOperator {
    fn dead_letter(&self) -> Result<&SqsQueue, OpsError> {
        self.dead_letter.as_ref().ok_or_else(|| {
            OpsError::NoDeadLetterQueue(format!(
                "the queue {} has no dead-letter queue (no RedrivePolicy; pass --dead-letter-queue-url)",
                self.work.queue_url()
            ))
        })
    }
}

impl Operate for SqsOperator {
    async fn status(&self) -> Result<QueueStatus, OpsError> {
        let (visible, in_flight, delayed) = self.work.counts().await?;
        let dead_letters = match &self.dead_letter {
            Some(queue) => {
                let (visible, in_flight, delayed) = queue.counts().await?;
                visible + in_flight + delayed
            }
            None => 0,
        };
        Ok(QueueStatus {
            visible,
            in_flight,
            delayed,
            dead_letters,
            oldest_age_ms: None,
            in_flight_messages: None,
            recent_failures: crate::ops::recent_failures(None, 5),
        })
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OpsError> {
        receiving::list(self.dead_letter()?).await
    }

    async fn show(&self, ids: &[String]) -> Result<Vec<DeadLetter>, OpsError> {
        receiving::show(self.dead_letter()?, ids).await
    }

    async fn redrive(&self, ids: Option<&[String]>) -> Result<Vec<Redriven>, OpsError> {
        receiving::redrive(&self.work, self.dead_letter()?, ids).await
    }

    async fn delete(&self, ids: Option<&[String]>) -> Result<Vec<String>, OpsError> {
        receiving::delete(self.dead_letter()?, ids).await
    }
}
