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
use watchbot_watcher::limits;
use watchbot_watcher::local::queue::{DEFAULT_STATE_DIR, LocalQueue, LocalQueueConfig, QUEUE_FILE, subject_attributes};
use watchbot_watcher::ports::{OutgoingMessage, Queue};

/// Arguments of `watchbot send`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("target").required(true).args(["topic", "queue_url", "local"])),
    override_usage = "watchbot send <--topic ADDRESS | --queue-url URL | --local [--state DIR]> \
                      <--message TEXT [--subject SUBJECT] | --messages FILE>"
)]
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
    #[arg(long, required_unless_present = "messages", conflicts_with = "messages")]
    pub message: Option<String>,
    /// Send every message of a file: one JSON object per line, `{"message": ..., "subject": ...}` (the format of
    /// `watchbot local --messages`). Every line is checked before any is sent; locally the file is enqueued in one
    /// transaction, all or nothing. Prints one message id per line.
    #[arg(long, value_name = "FILE", conflicts_with = "subject")]
    pub messages: Option<PathBuf>,
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
    if let Some(file) = &args.messages {
        let address = address(&args)?;
        let messages = crate::messages::read(file, |warning| eprintln!("watchbot: warning: {warning}"))?;
        return send_file(&address, file, messages);
    }
    let message = match args.message.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
            text
        }
        Some(message) => message.to_string(),
        None => return Err(Failure::new("--message or --messages is required")),
    };
    if message.is_empty() {
        return Err(Failure::new("--message is empty"));
    }
    // What SQS or SNS would refuse is refused before any request, and locally too, as production would.
    if let Some(subject) = args.subject.as_deref().filter(|s| !s.is_empty()) {
        limits::check_subject(subject).map_err(|why| Failure::new(format!("--subject: {why}")))?;
    }
    limits::check_body(&message).map_err(|why| Failure::new(format!("--message: {why}")))?;
    if let Some(warning) = limits::ecs_fit_warning(args.subject.as_deref(), &message) {
        eprintln!("watchbot: warning: {warning}");
    }
    let address = address(&args)?;
    let outgoing = OutgoingMessage {
        body: message,
        attributes: subject_attributes(args.subject.as_deref()),
        ..Default::default()
    };
    let id = crate::aws::runtime()?.block_on(send(&address, outgoing))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Sends a checked `--messages` file, printing each id: to a local queue in one transaction (all or nothing); to
/// SNS or SQS one by one, stopping at the first failure, which names the line (the ids of the lines before it were
/// printed).
fn send_file(address: &Address, file: &Path, messages: Vec<OutgoingMessage>) -> Result<ExitCode, Failure> {
    if let Address::Local { path } = address {
        let ids = open_local(path)?.send_all(messages).map_err(|e| {
            Failure::new(format!("cannot send {} to the local queue in {}: {e}", file.display(), path.display()))
        })?;
        ids.iter().for_each(|id| println!("{id}"));
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = crate::aws::runtime()?;
    let total = messages.len();
    for (sent, message) in messages.into_iter().enumerate() {
        let id = runtime.block_on(send(address, message)).map_err(|failure| {
            failure.context(format_args!(
                "{}: message {} of {total} not sent ({sent} sent before it, their ids printed)",
                file.display(),
                sent + 1
            ))
        })?;
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn address(args: &Args) -> Result<Address, Failure> {
    let address = match (&args.topic, &args.queue_url) {
        (Some(topic), _) => parse_topic(topic)?,
        (None, Some(url)) => {
            watchbot_watcher::config::check_queue_url("--queue-url", url)
                .map_err(|e| Failure::new(format!("--queue-url: {}", e.problem)))?;
            Address::SqsQueue { url: url.clone() }
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
            Address::Local { path: dir }
        }
    };
    Ok(address)
}

/// Sends one message to an address; returns its message id. A failed AWS call is a service failure naming the
/// topic or queue, in one line.
pub async fn send(address: &Address, message: OutgoingMessage) -> Result<String, Failure> {
    match address {
        Address::SnsTopic { arn } => {
            let topic = crate::aws::load().await.topic(arn.clone());
            let subject = message.attributes.get("Subject").map(String::as_str);
            topic.publish(subject, &message.body).await.map_err(|e| {
                crate::aws::port_failure(format_args!("cannot publish to SNS topic {arn}"), "sns Publish", &e)
            })
        }
        Address::SqsQueue { url } => {
            let queue = crate::aws::load().await.queue(url.clone());
            queue.send(message).await.map_err(|e| {
                crate::aws::port_failure(format_args!("cannot send to SQS queue {url}"), "sqs SendMessage", &e)
            })
        }
        Address::Local { path } => {
            let queue = open_local(path)?;
            queue
                .send(message)
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
