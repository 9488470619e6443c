//! `watchbot dead-letter`: the messages a queue gave up on, found, read, sent back or dropped, on the same addresses
//! as `watchbot status` (`--state DIR`, `--queue-url URL`, `--stack NAME`).
//!
//! `list` and `show` consume nothing. `redrive ID...` / `redrive --all` send dead letters back to the work queue
//! (sent first, then deleted: a crash in between leaves a duplicate, never a loss). `delete ID...` and `purge` drop
//! them; `purge` and a delete of more than one id need `--yes`, and without it exit 1 having deleted nothing. An
//! unknown id is one line naming it, exit 1, and nothing is changed.

use super::queue_address::{self, QueueArgs, Target};
use crate::Failure;
use std::process::ExitCode;
use watchbot_watcher::decide::rfc3339;
use watchbot_watcher::ops::{self, DeadLetter, Operate};

/// Arguments of `watchbot dead-letter`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do with the dead letters.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the dead letters (consumes nothing).
    List {
        /// One JSON object per line: message_id, subject, message (an SNS envelope unwrapped), receive_count, ...
        #[arg(long)]
        json: bool,
    },
    /// Show dead letters in full: body, attributes, and the recorded attempts (consumes nothing).
    Show {
        /// Message ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to the work queue.
    Redrive {
        /// Message ids.
        #[arg(value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
    /// Delete dead letters (more than one needs --yes).
    Delete {
        /// Message ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Confirm a delete of more than one message.
        #[arg(long)]
        yes: bool,
    },
    /// Delete every dead letter (needs --yes).
    Purge {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `watchbot dead-letter`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    // Refusals first: a missing --yes deletes nothing and needs no queue.
    match &args.command {
        Command::Delete { ids, yes: false } if ids.len() > 1 => {
            return Err(Failure::new(format!(
                "delete of {} dead letters needs --yes (nothing was deleted)",
                ids.len()
            )));
        }
        Command::Purge { yes: false } => {
            return Err(Failure::new("purge deletes every dead letter: add --yes to confirm (nothing was deleted)"));
        }
        _ => {}
    }
    crate::aws::runtime()?.block_on(async {
        let target = queue_address::open(&args.queue).await?;
        let fail = |e| queue_address::failure(&target, e);
        match args.command {
            Command::List { json } => {
                let letters = target.dead_letters().await.map_err(fail)?;
                if json {
                    for letter in &letters {
                        println!("{}", letter.to_json());
                    }
                } else {
                    print_list(&target, &letters);
                }
            }
            Command::Show { ids, json } => {
                let letters = target.show(&ids).await.map_err(fail)?;
                for (n, letter) in letters.iter().enumerate() {
                    let attempts = ops::attempts(target.state_dir(), &letter.message_id);
                    if json {
                        let mut value = letter.to_json();
                        value["attempts"] = serde_json::to_value(&attempts).unwrap_or_default();
                        println!("{value}");
                    } else {
                        if n > 0 {
                            println!();
                        }
                        print_one(letter, &attempts);
                    }
                }
            }
            Command::Redrive { ids, all } => {
                let ids = (!all).then_some(ids);
                let redriven = target.redrive(ids.as_deref()).await.map_err(fail)?;
                for r in &redriven {
                    if r.new_message_id == r.message_id {
                        println!("redriven {}", r.message_id);
                    } else {
                        println!("redriven {} (now {} in the work queue)", r.message_id, r.new_message_id);
                    }
                }
                println!("{} dead letter{} sent back to the work queue", redriven.len(), plural(redriven.len()));
            }
            Command::Delete { ids, .. } => {
                let deleted = target.delete(Some(&ids)).await.map_err(fail)?;
                for id in &deleted {
                    println!("deleted {id}");
                }
            }
            Command::Purge { .. } => {
                let deleted = target.delete(None).await.map_err(fail)?;
                println!("purged {} dead letter{}", deleted.len(), plural(deleted.len()));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One line of at most `max` characters, control characters shown as spaces, `…` where cut.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut short: String = flat.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

fn print_list(target: &Target, letters: &[DeadLetter]) {
    if letters.is_empty() {
        println!("no dead letters ({})", target.describe());
        return;
    }
    for letter in letters {
        let parsed = letter.parsed();
        let subject =
            if parsed.subject.is_empty() { String::new() } else { format!("  [{}]", one_line(&parsed.subject, 40)) };
        println!(
            "{}  receives {}  sent {}{subject}  {}",
            letter.message_id,
            letter.receive_count,
            rfc3339(letter.sent_ms),
            one_line(&parsed.message, 60)
        );
    }
    println!(
        "{} dead letter{}; `watchbot dead-letter show {flags} ID` shows one, `watchbot dead-letter redrive {flags} \
         ID...` sends them back",
        letters.len(),
        plural(letters.len()),
        flags = target.flags()
    );
}

fn print_one(letter: &DeadLetter, attempts: &[ops::Attempt]) {
    let parsed = letter.parsed();
    println!("message id:    {}", letter.message_id);
    println!("sent:          {}", rfc3339(letter.sent_ms));
    if let Some(first) = letter.first_receive_ms {
        println!("first receive: {}", rfc3339(first));
    }
    println!("receive count: {}", letter.receive_count);
    println!("subject:       {}", if parsed.subject.is_empty() { "(none)" } else { &parsed.subject });
    println!("message:\n{}", parsed.message);
    if parsed.message != letter.body {
        println!("body (as queued):\n{}", letter.body);
    }
    if letter.attributes.is_empty() {
        println!("attributes:    (none)");
    } else {
        println!("attributes:");
        for (name, value) in &letter.attributes {
            println!("  {name}={value}");
        }
    }
    if attempts.is_empty() {
        println!("attempts:      (none recorded)");
    } else {
        println!("attempts:");
        for attempt in attempts {
            let exit = attempt.exit_code.map_or_else(|| "none".to_string(), |c| c.to_string());
            println!(
                "  receive {}  {}  {}  exit {exit}  {}",
                attempt.receive_count,
                rfc3339(attempt.ended_ms),
                attempt.outcome,
                attempt.reason
            );
            if let Some(output) = &attempt.output {
                for line in output.lines() {
                    println!("    | {line}");
                }
            }
        }
    }
}
