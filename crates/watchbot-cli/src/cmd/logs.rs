//! `watchbot logs MESSAGE_ID`: every attempt of a message, with what its task printed.
//!
//! Locally (`--state DIR`, default `.watchbot`) from the attempt history `watchbot local` records
//! (`watchbot_watcher::local::history`). On AWS (`--log-group GROUP`, or `--stack NAME [--prefix P]` for the stack's
//! `<prefix>LogGroup`) from CloudWatch Logs: the tasks the watchers started for the message (their `launched`,
//! `adopted` and `finished` events in the group, found by `FilterLogEvents`; with `--cluster`, also the task running
//! now, by `startedBy`), each with its awslogs stream `<container>/<container>/<task id>`.

use crate::Failure;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use watchbot_watcher::aws::ecs::EcsRunnerConfig;
use watchbot_watcher::aws::logs::TaskAttempt;
use watchbot_watcher::decide::rfc3339;
use watchbot_watcher::local::history::{History, MAX_ATTEMPTS};
use watchbot_watcher::local::queue::DEFAULT_STATE_DIR;
use watchbot_watcher::ports::{Attempt, TaskOutput, TaskRunner};

/// Arguments of `watchbot logs`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("address").args(["state", "log_group", "stack"])))]
pub struct Args {
    /// The message's id (as notifications and the live output show it).
    #[arg(value_name = "MESSAGE_ID")]
    pub message_id: String,
    /// The state folder of `watchbot local` [default: .watchbot].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// A deployed stack: search its log group (`<prefix>LogGroup`).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The stack's logical-id prefix (the template's `prefix` option).
    #[arg(long, value_name = "PREFIX", default_value = "Watchbot", requires = "stack")]
    pub prefix: String,
    /// The CloudWatch log group of the watchers and their tasks.
    #[arg(long, value_name = "GROUP")]
    pub log_group: Option<String>,
    /// The worker container's name, which is also its awslogs stream prefix (the template's: `worker`).
    #[arg(long, value_name = "NAME", default_value = "worker")]
    pub container: String,
    /// The ECS cluster: also show the task running for the message now (ListTasks by startedBy).
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// One JSON object per attempt.
    #[arg(long)]
    pub json: bool,
}

/// Runs `watchbot logs`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    if args.message_id.trim().is_empty() {
        return Err(Failure::new("MESSAGE_ID is empty"));
    }
    if args.stack.is_some() || args.log_group.is_some() {
        return aws(&args);
    }
    let state = args.state.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    local(&args, &state)
}

fn local(args: &Args, state: &Path) -> Result<ExitCode, Failure> {
    if !state.is_dir() {
        return Err(Failure::new(format!("--state {}: no such folder", state.display())));
    }
    let history = History::open(state).map_err(|e| Failure::from_error(&e))?;
    let attempts = history.attempts(&args.message_id).map_err(|e| Failure::from_error(&e))?;
    if attempts.is_empty() {
        return Err(Failure::new(format!(
            "no attempts of message {} in {} (the history keeps the latest {MAX_ATTEMPTS} attempts)",
            args.message_id,
            state.display()
        )));
    }
    if args.json {
        for attempt in &attempts {
            println!("{}", attempt_json(attempt));
        }
    } else {
        print!("{}", local_text(&args.message_id, &attempts));
    }
    Ok(ExitCode::SUCCESS)
}

/// The attempts of one message for people: a header, then per attempt its facts and its output, indented.
fn local_text(message_id: &str, attempts: &[Attempt]) -> String {
    let subject = attempts.iter().rev().map(|a| a.subject.as_str()).find(|s| !s.is_empty());
    let mut text = format!("message {message_id}: {} attempt(s)", attempts.len());
    if let Some(subject) = subject {
        text.push_str(&format!(", subject {subject:?}"));
    }
    text.push('\n');
    for (n, attempt) in attempts.iter().enumerate() {
        let exit = attempt.exit_code.map_or_else(|| "no exit code".to_string(), |code| format!("exit code {code}"));
        let secs = attempt.ended_ms.saturating_sub(attempt.started_ms) as f64 / 1000.0;
        text.push_str(&format!(
            "\nattempt {} (receive {}): {}, {exit}: {}\n  started {}, ran {secs:.1} s\n",
            n + 1,
            attempt.receive_count,
            attempt.outcome,
            attempt.reason,
            rfc3339(attempt.started_ms),
        ));
        text.push_str(&output_text(&attempt.output));
    }
    text
}

/// A task's output, indented under its attempt.
fn output_text(output: &TaskOutput) -> String {
    match output {
        TaskOutput::Unavailable(why) => format!("  output: not available: {why}\n"),
        TaskOutput::Tail { text, .. } if text.is_empty() => "  output: none\n".to_string(),
        TaskOutput::Tail { text, omitted_bytes } => {
            let mut out = if *omitted_bytes > 0 {
                format!("  output ({omitted_bytes} earlier bytes not kept):\n")
            } else {
                "  output:\n".to_string()
            };
            for line in text.lines() {
                out.push_str("  | ");
                out.push_str(line);
                out.push('\n');
            }
            out
        }
    }
}

fn attempt_json(attempt: &Attempt) -> serde_json::Value {
    let (output, omitted, unavailable) = match &attempt.output {
        TaskOutput::Tail { text, omitted_bytes } => (Some(text.as_str()), *omitted_bytes, None),
        TaskOutput::Unavailable(why) => (None, 0, Some(why.as_str())),
    };
    serde_json::json!({
        "message_id": attempt.message_id,
        "subject": attempt.subject,
        "receive_count": attempt.receive_count,
        "started": rfc3339(attempt.started_ms),
        "ended": rfc3339(attempt.ended_ms),
        "outcome": attempt.outcome,
        "exit_code": attempt.exit_code,
        "reason": attempt.reason,
        "output": output,
        "output_omitted_bytes": omitted,
        "output_unavailable": unavailable,
    })
}

fn aws(args: &Args) -> Result<ExitCode, Failure> {
    let runtime = crate::aws::runtime()?;
    runtime.block_on(async {
        let aws = crate::aws::load().await;
        let group = match (&args.log_group, &args.stack) {
            (Some(group), _) => group.clone(),
            (None, Some(stack)) => {
                let logical = format!("{}LogGroup", args.prefix);
                let failure = |e| {
                    crate::aws::port_failure(format_args!("stack {stack}"), "cloudformation DescribeStackResources", &e)
                };
                aws.stack_resources(stack)
                    .await
                    .and_then(|r| r.require(&logical, "AWS::Logs::LogGroup"))
                    .map_err(failure)?
            }
            (None, None) => unreachable!("aws() is called with an address"),
        };
        let logs = aws.task_logs(&group, &args.container, &args.container);
        let mut attempts = logs.attempts(&args.message_id).await.map_err(|e| {
            crate::aws::port_failure(format_args!("log group {group}"), "cloudwatch logs FilterLogEvents", &e)
        })?;
        if let Some(cluster) = &args.cluster {
            let runner = aws.ecs_runner(EcsRunnerConfig::new(cluster, "", &args.container), None);
            let running = runner
                .find_running(&args.message_id)
                .await
                .map_err(|e| crate::aws::port_failure(format_args!("cluster {cluster}"), "ecs ListTasks", &e))?;
            if let Some(task) = running.filter(|task| !attempts.iter().any(|a| &a.task == task)) {
                attempts.push(TaskAttempt { task, launched_ms: 0, finished: None });
            }
        }
        if attempts.is_empty() {
            return Err(Failure::new(format!(
                "no task was started for message {} according to log group {group} (is the id right?)",
                args.message_id
            )));
        }
        let mut text = format!("message {}: {} task(s) in log group {group}\n", args.message_id, attempts.len());
        for (n, attempt) in attempts.iter().enumerate() {
            let stream = logs.stream_of(&attempt.task);
            let output = match logs.lines(&attempt.task).await {
                Ok(lines) => {
                    TaskOutput::Tail { text: lines.iter().map(|l| format!("{l}\n")).collect(), omitted_bytes: 0 }
                }
                Err(error) => TaskOutput::Unavailable(error.message),
            };
            if args.json {
                println!("{}", task_json(attempt, &stream, &output));
                continue;
            }
            text.push_str(&format!("\nattempt {}: task {}\n", n + 1, attempt.task));
            if attempt.launched_ms > 0 {
                text.push_str(&format!("  launched {}\n", rfc3339(attempt.launched_ms)));
            } else {
                text.push_str("  running now\n");
            }
            if let Some(finished) = &attempt.finished {
                let exit =
                    finished["exit_code"].as_i64().map_or("no exit code".to_string(), |c| format!("exit code {c}"));
                text.push_str(&format!(
                    "  {} (receive {}), {exit}: {}\n",
                    finished["outcome"].as_str().unwrap_or("finished"),
                    finished["receive_count"],
                    finished["reason"].as_str().unwrap_or("")
                ));
            }
            text.push_str(&format!("  stream {stream}\n"));
            text.push_str(&output_text(&output));
        }
        if !args.json {
            print!("{text}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn task_json(attempt: &TaskAttempt, stream: &str, output: &TaskOutput) -> serde_json::Value {
    let (lines, unavailable) = match output {
        TaskOutput::Tail { text, .. } => (Some(text.as_str()), None),
        TaskOutput::Unavailable(why) => (None, Some(why.as_str())),
    };
    serde_json::json!({
        "task": attempt.task,
        "launched": (attempt.launched_ms > 0).then(|| rfc3339(attempt.launched_ms)),
        "finished": attempt.finished,
        "stream": stream,
        "output": lines,
        "output_unavailable": unavailable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_read_as_text() {
        let attempt = Attempt {
            message_id: "m".into(),
            subject: "job".into(),
            receive_count: 2,
            started_ms: 1_000,
            ended_ms: 2_500,
            outcome: "failed".into(),
            exit_code: Some(1),
            reason: "exited with code 1".into(),
            output: TaskOutput::Tail { text: "a\nboom\n".into(), omitted_bytes: 0 },
        };
        let text = local_text("m", &[attempt]);
        assert!(text.starts_with("message m: 1 attempt(s), subject \"job\"\n"), "{text}");
        assert!(text.contains("attempt 1 (receive 2): failed, exit code 1: exited with code 1\n"), "{text}");
        assert!(text.contains("ran 1.5 s\n  output:\n  | a\n  | boom\n"), "{text}");
    }
}
