//! The queue an operator's command (`watchbot status`, `watchbot dead-letter`) looks at: a local state folder
//! (`--state DIR`, default `.watchbot`), an SQS queue (`--queue-url URL`, its dead-letter queue from its
//! `RedrivePolicy` unless `--dead-letter-queue-url` says), or a deployed stack (`--stack NAME [--prefix P]`: its
//! `<prefix>Queue` and `<prefix>DeadLetterQueue`). [`Target`] is the one value the commands work on; it forwards
//! the library's `Operate` calls to the embedded queue or the SQS operator.

use crate::Failure;
use std::path::PathBuf;
use watchbot_progress::Address;
use watchbot_watcher::aws::operator::SqsOperator;
use watchbot_watcher::local::queue::{DEFAULT_STATE_DIR, LocalQueue, LocalQueueConfig, QUEUE_FILE, has_queue};
use watchbot_watcher::ops::{DeadLetter, Operate, OpsError, QueueStatus, Redriven};
use watchbot_watcher::ports::PortErrorKind;

/// Which queue: one of `--state`, `--queue-url`, `--stack` (default: `--state .watchbot`).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("queue").args(["state", "queue_url", "stack"])))]
pub struct QueueArgs {
    /// A local state folder (of `watchbot local`) [default: .watchbot]
    #[arg(long, value_name = "DIR", global = true)]
    pub state: Option<PathBuf>,
    /// An SQS work queue; its dead-letter queue is found from its RedrivePolicy.
    #[arg(long, value_name = "URL", global = true)]
    pub queue_url: Option<String>,
    /// The dead-letter queue, instead of the one the work queue's RedrivePolicy names.
    #[arg(long, value_name = "URL", global = true, conflicts_with = "state")]
    pub dead_letter_queue_url: Option<String>,
    /// A deployed watchbot stack: its `<prefix>Queue` and `<prefix>DeadLetterQueue`.
    #[arg(long, value_name = "NAME", global = true)]
    pub stack: Option<String>,
    /// The stack's logical-id prefix (the template's `prefix` option).
    #[arg(long, value_name = "PREFIX", global = true, default_value = "Watchbot", requires = "stack")]
    pub prefix: String,
}

/// The queue a command works on.
#[derive(Debug)]
pub enum Target {
    /// The embedded queue of a state folder.
    Local {
        /// The queue.
        queue: LocalQueue,
        /// The folder, as given.
        state: PathBuf,
    },
    /// An SQS work queue and its dead-letter queue.
    Sqs(SqsOperator),
}

impl Target {
    /// The flags that name this queue again (for hints such as `watchbot dead-letter redrive --state .watchbot ID`).
    pub fn flags(&self) -> String {
        match self {
            Target::Local { state, .. } => format!("--state {}", shell_word(&state.display().to_string())),
            Target::Sqs(operator) => {
                let mut flags = format!("--queue-url {}", operator.work.queue_url());
                if let Some(dead) = &operator.dead_letter {
                    flags.push_str(&format!(" --dead-letter-queue-url {}", dead.queue_url()));
                }
                flags
            }
        }
    }

    /// What the queue is, for a heading: `local queue in .watchbot`, `SQS queue https://…`.
    pub fn describe(&self) -> String {
        match self {
            Target::Local { state, .. } => format!("local queue in {}", state.display()),
            Target::Sqs(operator) => format!("SQS queue {}", operator.work.queue_url()),
        }
    }

    /// The state folder of a local queue.
    pub fn state_dir(&self) -> Option<&std::path::Path> {
        match self {
            Target::Local { queue, .. } => Some(queue.state_dir()),
            Target::Sqs(_) => None,
        }
    }
}

/// Opens the queue the arguments name. A folder without a queue, a URL that is not one, a missing queue or stack:
/// one line naming it (1 for a bad address, 69 when AWS cannot be used or has no such thing).
pub async fn open(args: &QueueArgs) -> Result<Target, Failure> {
    if let Some(stack) = &args.stack {
        let aws = crate::aws::load().await;
        let queues = aws.stack_queues(stack, &args.prefix).await.map_err(|e| {
            crate::aws::port_failure(format_args!("stack {stack}"), "cloudformation DescribeStackResources", &e)
        })?;
        let dead = args.dead_letter_queue_url.as_deref().or(queues.dead_letter_queue_url.as_deref());
        return sqs(&aws, &queues.queue_url, dead).await;
    }
    if let Some(url) = &args.queue_url {
        if !matches!(url.parse::<Address>(), Ok(Address::SqsQueue { .. })) {
            return Err(Failure::new(format!(
                "--queue-url {url:?} is not an SQS queue URL (https://sqs.…/ACCOUNT/NAME)"
            )));
        }
        let aws = crate::aws::load().await;
        return sqs(&aws, url, args.dead_letter_queue_url.as_deref()).await;
    }
    let state = args.state.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if !has_queue(&state) {
        return Err(Failure::new(format!(
            "no local queue in {} (no {QUEUE_FILE}): pass the state folder of `watchbot local` with --state DIR, or \
             --queue-url URL / --stack NAME for SQS",
            state.display()
        )));
    }
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).map_err(|e| Failure::from_error(&e))?;
    Ok(Target::Local { queue, state })
}

async fn sqs(aws: &crate::aws::Aws, url: &str, dead_letter: Option<&str>) -> Result<Target, Failure> {
    let operator = aws.operator(url, dead_letter).await.map_err(|e| {
        let what = if e.kind == PortErrorKind::NotFound { "no such SQS queue" } else { "cannot read the SQS queue" };
        crate::aws::port_failure(format_args!("{what} {url}"), "sqs GetQueueAttributes", &e)
    })?;
    Ok(Target::Sqs(operator))
}

/// An operation's error as a command's failure: an unknown id is bad input (1), a queue that cannot be used a service
/// failure (69 on SQS; a local file that cannot be read is 1).
pub fn failure(target: &Target, error: OpsError) -> Failure {
    match error {
        OpsError::UnknownId(id) => Failure::new(format!("no dead letter with id {id} ({})", target.describe())),
        OpsError::NoDeadLetterQueue(text) => Failure::new(text),
        OpsError::Port(error) => match target {
            Target::Local { .. } => Failure::new(error.message),
            Target::Sqs(_) => {
                Failure::service(format!("{}: {}", target.describe(), crate::aws::strip_operation(&error.message)))
            }
        },
    }
}

/// A word as a shell would need it (quoted when it holds anything but safe characters).
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Operate for Target {
    async fn status(&self) -> Result<QueueStatus, OpsError> {
        match self {
            Target::Local { queue, .. } => queue.status().await,
            Target::Sqs(operator) => operator.status().await,
        }
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, OpsError> {
        match self {
            Target::Local { queue, .. } => queue.dead_letters().await,
            Target::Sqs(operator) => operator.dead_letters().await,
        }
    }

    async fn show(&self, ids: &[String]) -> Result<Vec<DeadLetter>, OpsError> {
        match self {
            Target::Local { queue, .. } => queue.show(ids).await,
            Target::Sqs(operator) => operator.show(ids).await,
        }
    }

    async fn redrive(&self, ids: Option<&[String]>) -> Result<Vec<Redriven>, OpsError> {
        match self {
            Target::Local { queue, .. } => queue.redrive(ids).await,
            Target::Sqs(operator) => operator.redrive(ids).await,
        }
    }

    async fn delete(&self, ids: Option<&[String]>) -> Result<Vec<String>, OpsError> {
        match self {
            Target::Local { queue, .. } => queue.delete(ids).await,
            Target::Sqs(operator) => operator.delete(ids).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(".watchbot"), ".watchbot");
        assert_eq!(shell_word("my state"), "'my state'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
