//! `watchbot send`: publish one message to a topic or queue (what a worker uses for follow-up work) and print its id.
//!
//! The address selects the backend, so `watchbot send --topic "$WorkTopic"` works unchanged in production and in
//! local mode: an SNS topic ARN (`arn:aws:sns:...`) publishes to SNS; a path or a `file:` URL names a local queue's
//! state folder (as `watchbot local` sets `WorkTopic`). `--queue-url` sends straight to an SQS queue, and `--local`
//! to the local queue in `--state` (default `.watchbot/`). A local folder must already hold a queue (`watchbot local`
//! creates it), so a mistyped address or the wrong working directory fails instead of creating a queue nobody reads.

use crate::Failure;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use watchbot_progress::Address;
use watchbot_watcher::aws::sns::MAX_MESSAGE_BYTES;
use watchbot_watcher::local::queue::{DEFAULT_STATE_DIR, LocalQueue, LocalQueueConfig, QUEUE_FILE, subject_attributes};
use watchbot_watcher::ports::{OutgoingMessage, Queue};

/// Arguments of `watchbot send`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["topic", "queue_url", "local"])))]
pub struct Args {
    /// Where to publish: an SNS topic ARN, or a local queue folder (a path or `file:` URL), e.g. "$WorkTopic".
    #[arg(long, value_name = "ADDRESS")]
    pub topic: Option<String>,
    /// Send straight to this SQS queue.
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// Send to the local queue of `watchbot local`.
    #[arg(long)]
    pub local: bool,
    /// The local state folder (with --local).
    #[arg(long, value_name = "DIR", requires = "local")]
    pub state: Option<PathBuf>,
    /// The message's subject (SNS Subject, or a `Subject` message attribute on a queue).
    #[arg(long)]
    pub subject: Option<String>,
    /// The message; `-` reads it from stdin.
    #[arg(long)]
    pub message: String,
}

/// Parses a `--topic` address (see [`Address`], the one parser of watchbot's addresses): an SNS topic ARN, or a
/// local queue folder given as a path or `file:` URL. A local folder must already hold a queue, so a mistyped
/// address fails instead of creating a new queue.
pub fn parse_topic(address: &str) -> Result<Address, Failure> {
    let address = address.trim();
    if address.is_empty() {
        return Err(Failure::new("--topic is empty (is $WorkTopic set?)"));
    }
    match address.parse::<Address>() {
        Err(error) => Err(Failure::new(format!("--topic {error}"))),
        Ok(topic @ Address::SnsTopic { .. }) => Ok(topic),
        Ok(Address::SqsQueue { .. }) => {
            Err(Failure::new(format!("--topic {address:?} is a URL, not a topic: use --queue-url for a queue")))
        }
        Ok(Address::DynamoDb { region: Some(_), .. }) => {
            Err(Failure::new(format!("--topic {address:?} is a DynamoDB table, not a topic")))
        }
        Ok(Address::DynamoDb { region: None, .. }) => Err(Failure::new(format!(
            "--topic {address:?} is neither an SNS topic ARN nor a local queue folder (write ./{address} for a folder \
             here)"
        ))),
        Ok(Address::Local { path }) => {
            if !path.join(QUEUE_FILE).is_file() {
                return Err(Failure::new(format!(
                    "--topic {address:?} is neither an SNS topic ARN nor a local queue folder (no {QUEUE_FILE} in it)"
                )));
            }
            Ok(Address::Local { path })
        }
    }
}

/// Runs `watchbot send`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let message = if args.message == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
        text
    } else {
        args.message.clone()
    };
    if message.is_empty() {
        return Err(Failure::new("--message is empty"));
    }
    let address = match (&args.topic, &args.queue_url) {
        (Some(topic), _) => parse_topic(topic)?,
        (None, Some(url)) => match url.parse::<Address>() {
            Ok(queue @ Address::SqsQueue { .. }) => queue,
            _ => return Err(Failure::new(format!("--queue-url {url:?} is not a URL"))),
        },
        (None, None) => {
            let dir = args.state.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
            // As for --topic DIR: a queue that does not exist yet means the wrong folder (or no `watchbot local`
            // yet); creating a fresh one there would take the message where no watcher looks.
            if !dir.join(QUEUE_FILE).is_file() {
                return Err(Failure::new(format!(
                    "--local: no local queue in {} (no {QUEUE_FILE}); run `watchbot local` there first, or pass \
                     --state DIR",
                    dir.display()
                )));
            }
            Address::Local { path: dir }
        }
    };
    if matches!(address, Address::SnsTopic { .. }) && message.len() > MAX_MESSAGE_BYTES {
        return Err(Failure::new(format!(
            "--message is {} bytes, over SNS's limit of {MAX_MESSAGE_BYTES}",
            message.len()
        )));
    }
    let id = crate::aws::runtime()?.block_on(send(&address, args.subject.as_deref(), message))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Sends one message to an address; returns its message id. A failed AWS call is a service failure naming the
/// topic or queue, in one line.
pub async fn send(address: &Address, subject: Option<&str>, message: String) -> Result<String, Failure> {
    let outgoing =
        |message| OutgoingMessage { body: message, attributes: subject_attributes(subject), ..Default::default() };
    match address {
        Address::SnsTopic { arn } => {
            let topic = crate::aws::load().await.topic(arn.clone());
            topic.publish(subject, &message).await.map_err(|e| {
                crate::aws::port_failure(format_args!("cannot publish to SNS topic {arn}"), "sns Publish", &e)
            })
        }
        Address::SqsQueue { url } => {
            let queue = crate::aws::load().await.queue(url.clone());
            queue.send(outgoing(message)).await.map_err(|e| {
                crate::aws::port_failure(format_args!("cannot send to SQS queue {url}"), "sqs SendMessage", &e)
            })
        }
        Address::Local { path } => {
            let queue = open_local(path)?;
            queue
                .send(outgoing(message))
                .await
                .map_err(|e| Failure::new(format!("cannot send to the local queue in {}: {e}", path.display())))
        }
        Address::DynamoDb { .. } => Err(Failure::new(format!("{address} is not a topic or queue"))),
    }
}

fn open_local(dir: &Path) -> Result<LocalQueue, Failure> {
    LocalQueue::open(dir, LocalQueueConfig::default()).map_err(|e| Failure::from_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_select_backends() {
        assert_eq!(
            parse_topic("arn:aws:sns:us-east-1:123456789012:work").unwrap(),
            Address::SnsTopic { arn: "arn:aws:sns:us-east-1:123456789012:work".into() }
        );
        assert!(parse_topic("arn:aws:sqs:us-east-1:123456789012:work").is_err());
        assert!(parse_topic("https://sqs.us-east-1.amazonaws.com/1/q").is_err());
        assert!(parse_topic("").is_err());
        assert!(parse_topic("/no/such/folder").is_err());
        assert!(parse_topic("bare-name").unwrap_err().to_string().contains("./bare-name"));
        let dir = tempfile::tempdir().unwrap();
        LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let local = Address::Local { path: dir.path().to_path_buf() };
        let text = dir.path().display().to_string();
        assert_eq!(parse_topic(&text).unwrap(), local);
        assert_eq!(parse_topic(&format!("file://{text}")).unwrap(), local);
    }

    #[test]
    fn file_urls_are_decoded_as_for_progress_tables() {
        let dir = tempfile::tempdir().unwrap();
        let spaced = dir.path().join("state dir");
        std::fs::create_dir(&spaced).unwrap();
        LocalQueue::open(&spaced, LocalQueueConfig::default()).unwrap();
        let url = format!("file://{}/state%20dir", dir.path().display());
        assert_eq!(parse_topic(&url).unwrap(), Address::Local { path: spaced });
        assert!(parse_topic("file://elsewhere/tmp/x").is_err());
    }
}
