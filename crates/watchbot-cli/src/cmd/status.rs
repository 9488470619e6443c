//! `watchbot status`: what is in a queue (visible, in flight, delayed, dead letters, the age of the oldest message),
//! and locally the messages in flight (id, receive count, how long since received). Text for people, `--json` one
//! object; `--watch` redraws every `--interval` seconds until Ctrl-C or SIGTERM. The counts come from the library
//! (`watchbot_watcher::ops::Operate::status`), so a dashboard shows the same; nothing is received to count it.

use super::queue_address::{self, QueueArgs, Target};
use crate::Failure;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use watchbot_watcher::ops::{Operate, QueueStatus};

/// Arguments of `watchbot status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// One JSON object (`visible`, `in_flight`, `delayed`, `dead_letters`, ...) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Redraw until Ctrl-C (with --json: one object per line).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between redraws with --watch.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
}

/// Runs `watchbot status`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    crate::aws::runtime()?.block_on(async {
        let target = queue_address::open(&args.queue).await?;
        let clear = args.watch && !args.json && std::io::stdout().is_terminal();
        // Ctrl-C or SIGTERM ends a --watch, exit 0.
        let stop = watchbot_watcher::service::shutdown_signal();
        tokio::pin!(stop);
        loop {
            let status = target.status().await.map_err(|e| queue_address::failure(&target, e))?;
            let text = if args.json { json(&target, &status) } else { text(&target, &status, now_ms()) };
            let mut out = std::io::stdout().lock();
            if clear {
                let _ = out.write_all(b"\x1b[H\x1b[2J");
            }
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
            drop(out);
            if !args.watch {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
                () = &mut stop => return Ok(ExitCode::SUCCESS),
            }
            if !clear && !args.json {
                println!();
            }
        }
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The JSON object: the status's fields, and `queue` (what was looked at).
fn json(target: &Target, status: &QueueStatus) -> String {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    value["queue"] = serde_json::Value::String(target.describe());
    value.to_string()
}

/// The text for people.
fn text(target: &Target, status: &QueueStatus, now_ms: u64) -> String {
    let mut lines = vec![format!("{}:", target.describe())];
    let oldest = match (status.oldest_age_ms, target) {
        (Some(age), _) => human(Duration::from_millis(age)),
        (None, Target::Local { .. }) => "-".to_string(),
        (None, Target::Sqs(_)) => "not known (see CloudWatch's ApproximateAgeOfOldestMessage)".to_string(),
    };
    lines.push(format!("  visible          {}", status.visible));
    lines.push(format!("  in flight        {}", status.in_flight));
    lines.push(format!("  delayed          {}", status.delayed));
    match target {
        Target::Sqs(operator) if operator.dead_letter.is_none() => {
            lines.push("  dead letters     - (no RedrivePolicy: pass --dead-letter-queue-url)".to_string())
        }
        _ => lines.push(format!("  dead letters     {}", status.dead_letters)),
    }
    lines.push(format!("  oldest message   {oldest}"));
    if let Some(messages) = &status.in_flight_messages
        && !messages.is_empty()
    {
        lines.push("in flight (running, or waiting out a backoff delay):".to_string());
        for message in messages {
            let since = message
                .received_ms
                .map(|ms| format!("received {} ago", human(Duration::from_millis(now_ms.saturating_sub(ms)))))
                .unwrap_or_else(|| "received earlier".to_string());
            let visible = human(Duration::from_millis(message.visible_at_ms.saturating_sub(now_ms)));
            lines.push(format!(
                "  {}  receive {}  {since}  visible again in {visible} unless renewed",
                message.message_id, message.receive_count
            ));
        }
        if (messages.len() as u64) < status.in_flight {
            lines.push(format!("  (the first {} of {})", messages.len(), status.in_flight));
        }
    }
    if !status.recent_failures.is_empty() {
        lines.push("last failures:".to_string());
        for failure in &status.recent_failures {
            lines.push(format!(
                "  {}  {}  receive {}  {}",
                watchbot_watcher::decide::rfc3339(failure.ended_ms),
                failure.message_id,
                failure.receive_count,
                failure.reason
            ));
        }
    }
    if status.dead_letters > 0 {
        lines.push(format!(
            "{} dead letter{}. See: `watchbot dead-letter list {flags}`; run again: `watchbot dead-letter redrive \
             {flags} ID...`",
            status.dead_letters,
            if status.dead_letters == 1 { "" } else { "s" },
            flags = target.flags(),
        ));
    }
    lines.join("\n")
}

/// A duration for people: `850 ms`, `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => format!("{} ms", duration.as_millis()),
        1..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_secs(42)), "42 s");
        assert_eq!(human(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(human(Duration::from_secs(7800)), "2 h 10 min");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3 d 4 h");
    }
}
