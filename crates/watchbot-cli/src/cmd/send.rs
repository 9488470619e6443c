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
use watchbot_watcher::aws::sns::SnsTopic;
use watchbot_watcher::aws::sqs::SqsQueue;
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

/// Where a message goes, parsed from an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An SNS topic ARN.
    SnsTopic(String),
    /// An SQS queue URL.
    SqsQueue(String),
    /// A local queue's state folder.
    Local(PathBuf),
}

impl Address {
    /// Parses a `--topic` address: an SNS topic ARN, or a local queue folder given as a path or `file:` URL.
    /// A local folder must already hold a queue, so a mistyped address fails instead of creating a new queue.
    pub fn parse_topic(address: &str) -> Result<Address, Failure> {
        let address = address.trim();
        if address.is_empty() {
            return Err(Failure::new("--topic is empty (is $WorkTopic set?)"));
        }
        if address.starts_with("arn:") {
            let parts: Vec<&str> = address.splitn(6, ':').collect();
            if parts.len() == 6 && parts[2] == "sns" && !parts[5].is_empty() {
                return Ok(Address::SnsTopic(address.to_string()));
            }
            return Err(Failure::new(format!(
                "--topic {address:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            )));
        }
        if address.starts_with("http://") || address.starts_with("https://") {
            return Err(Failure::new(format!(
                "--topic {address:?} is a URL, not a topic: use --queue-url for a queue"
            )));
        }
        let path = local_path(address)?;
        if !path.join(QUEUE_FILE).is_file() {
            return Err(Failure::new(format!(
                "--topic {address:?} is neither an SNS topic ARN nor a local queue folder (no {QUEUE_FILE} in it)"
            )));
        }
        Ok(Address::Local(path))
    }
}

/// A local path from a plain path or a `file:` URL (`file:///abs/path`, `file:relative`).
pub fn local_path(address: &str) -> Result<PathBuf, Failure> {
    let path = match address.strip_prefix("file:") {
        Some(rest) => match rest.strip_prefix("//") {
            // file://host/path: only the local host makes sense.
            Some(url) => match url.find('/') {
                Some(0) => url.to_string(),
                Some(at) if &url[..at] == "localhost" => url[at..].to_string(),
                _ => return Err(Failure::new(format!("{address:?} is not a local file: URL"))),
            },
            None => rest.to_string(),
        },
        None => address.to_string(),
    };
    if path.is_empty() {
        return Err(Failure::new(format!("{address:?} names no folder")));
    }
    Ok(PathBuf::from(path))
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
        (Some(topic), _) => Address::parse_topic(topic)?,
        (None, Some(url)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Failure::new(format!("--queue-url {url:?} is not a URL")));
            }
            Address::SqsQueue(url.clone())
        }
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
            Address::Local(dir)
        }
    };
    let id = crate::aws::runtime()?.block_on(send(&address, args.subject.as_deref(), message))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Sends one message to an address; returns its message id.
pub async fn send(address: &Address, subject: Option<&str>, message: String) -> Result<String, Failure> {
    let outgoing =
        |message| OutgoingMessage { body: message, attributes: subject_attributes(subject), ..Default::default() };
    let result = match address {
        Address::SnsTopic(arn) => {
            let config = crate::aws::sdk_config().await;
            SnsTopic::new(aws_sdk_sns::Client::new(&config), arn.clone()).publish(subject, &message).await
        }
        Address::SqsQueue(url) => {
            let config = crate::aws::sdk_config().await;
            SqsQueue::new(aws_sdk_sqs::Client::new(&config), url.clone()).send(outgoing(message)).await
        }
        Address::Local(dir) => {
            let queue = open_local(dir)?;
            queue.send(outgoing(message)).await
        }
    };
    result.map_err(|e| Failure::new(format!("cannot send to {}: {e}", describe(address))))
}

fn open_local(dir: &Path) -> Result<LocalQueue, Failure> {
    LocalQueue::open(dir, LocalQueueConfig::default()).map_err(|e| Failure::from_error(&e))
}

fn describe(address: &Address) -> String {
    match address {
        Address::SnsTopic(arn) => arn.clone(),
        Address::SqsQueue(url) => url.clone(),
        Address::Local(dir) => format!("the local queue in {}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_select_backends() {
        assert_eq!(
            Address::parse_topic("arn:aws:sns:us-east-1:123456789012:work").unwrap(),
            Address::SnsTopic("arn:aws:sns:us-east-1:123456789012:work".into())
        );
        assert!(Address::parse_topic("arn:aws:sqs:us-east-1:123456789012:work").is_err());
        assert!(Address::parse_topic("https://sqs.us-east-1.amazonaws.com/1/q").is_err());
        assert!(Address::parse_topic("").is_err());
        assert!(Address::parse_topic("/no/such/folder").is_err());
        let dir = tempfile::tempdir().unwrap();
        LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
        let text = dir.path().display().to_string();
        assert_eq!(Address::parse_topic(&text).unwrap(), Address::Local(dir.path().to_path_buf()));
        assert_eq!(Address::parse_topic(&format!("file://{text}")).unwrap(), Address::Local(dir.path().to_path_buf()));
    }

    #[test]
    fn file_urls_become_paths() {
        assert_eq!(local_path("file:///tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(local_path("file://localhost/tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(local_path("file:rel/dir").unwrap(), PathBuf::from("rel/dir"));
        assert!(local_path("file://elsewhere/tmp/x").is_err());
        assert_eq!(local_path(".watchbot").unwrap(), PathBuf::from(".watchbot"));
    }
}
