//! CloudWatch Logs: an ECS task's own output, from the stream its `awslogs` driver writes
//! (`<stream prefix>/<container name>/<task id>`; the template's worker uses the container's name as its prefix).
//!
//! - [`TaskLogs::tail`]: the newest ~50 KB of a task's stream, for the notification of its failure (one
//!   `GetLogEvents` from the end, within [`READ_DEADLINE`]). Whatever goes wrong (no permission, no stream yet, a
//!   timeout) is a [`TaskOutput::Unavailable`] saying so: the notification is sent anyway.
//! - [`TaskLogs::attempts`]: the tasks started for a message, found in the watcher's own events in the same log
//!   group (`FilterLogEvents` for the quoted message id: its `launched`, `adopted` and `finished` lines), and
//!   [`TaskLogs::lines`], a stream from its start: what `watchbot logs` shows.

use super::error::{explain, port_error};
use crate::ports::{PortError, TaskOutput};
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use std::time::Duration;

/// The most of a stream a notification quotes (the newest part).
pub const TAIL_BYTES: usize = 50 * 1024;

/// The longest a tail read may take.
pub const READ_DEADLINE: Duration = Duration::from_secs(4);

/// The most bytes [`TaskLogs::lines`] reads of one stream (the first ones; it says when it stopped).
pub const MAX_STREAM_BYTES: usize = 4 * 1024 * 1024;

/// Pages of `FilterLogEvents` read at most when looking for a message's tasks.
const MAX_FILTER_PAGES: usize = 50;

/// The log streams of one log group's ECS tasks.
#[derive(Debug, Clone)]
pub struct TaskLogs {
    client: Client,
    group: String,
    stream_prefix: String,
    container: String,
}

/// A task started for a message, as the watcher's events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAttempt {
    /// The task's ARN.
    pub task: String,
    /// When the watcher launched (or adopted) it, epoch ms.
    pub launched_ms: u64,
    /// The watcher's `finished` event for it, if one was found: outcome, exit code, reason, receive count.
    pub finished: Option<serde_json::Value>,
}

impl TaskLogs {
    /// The tasks' streams in `group`, named `<stream_prefix>/<container>/<task id>`.
    pub fn new(
        client: Client,
        group: impl Into<String>,
        stream_prefix: impl Into<String>,
        container: impl Into<String>,
    ) -> TaskLogs {
        TaskLogs { client, group: group.into(), stream_prefix: stream_prefix.into(), container: container.into() }
    }

    /// The log group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The stream the awslogs driver writes for this task (ARN or id).
    pub fn stream_of(&self, task: &str) -> String {
        let id = task.rsplit('/').next().unwrap_or(task);
        format!("{}/{}/{id}", self.stream_prefix, self.container)
    }

    /// The newest [`TAIL_BYTES`] of the task's stream, whole events (one line each), oldest first.
    pub async fn tail(&self, task: &str) -> TaskOutput {
        let stream = self.stream_of(task);
        let read = self.get_log_events(&stream, false, None).send();
        let output = match tokio::time::timeout(READ_DEADLINE, read).await {
            Err(_) => return TaskOutput::Unavailable(format!("log stream {stream} was not read within 4 s")),
            Ok(Err(error)) => return TaskOutput::Unavailable(self.why(&stream, &error)),
            Ok(Ok(output)) => output,
        };
        let messages: Vec<&str> = output.events().iter().filter_map(|event| event.message()).collect();
        let mut kept = 0;
        let mut size = 0;
        for message in messages.iter().rev() {
            if size + message.len() + 1 > TAIL_BYTES && kept > 0 {
                break;
            }
            size += message.len() + 1;
            kept += 1;
        }
        let omitted: usize = messages[..messages.len() - kept].iter().map(|m| m.len() + 1).sum();
        let mut text = String::with_capacity(size);
        for message in &messages[messages.len() - kept..] {
            text.push_str(message.strip_suffix('\n').unwrap_or(message));
            text.push('\n');
        }
        TaskOutput::Tail { text, omitted_bytes: omitted as u64 }
    }

    /// A `GetLogEvents` of one of the group's streams, from its start or its end.
    fn get_log_events(
        &self,
        stream: &str,
        from_head: bool,
        token: Option<String>,
    ) -> aws_sdk_cloudwatchlogs::operation::get_log_events::builders::GetLogEventsFluentBuilder {
        let request = self.client.get_log_events().log_group_name(&self.group).log_stream_name(stream);
        request.start_from_head(from_head).set_next_token(token)
    }

    fn why<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        stream: &str,
        error: &aws_sdk_cloudwatchlogs::error::SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>,
    ) -> String {
        match error.code() {
            Some("ResourceNotFoundException") => {
                format!("log stream {stream} of log group {} does not exist (not written yet?)", self.group)
            }
            Some("AccessDeniedException") => {
                format!("no permission to read log stream {stream} (logs:GetLogEvents on log group {})", self.group)
            }
            _ => format!("cannot read log stream {stream}: {}", explain(error)),
        }
    }

    /// The stream's lines from its start, at most [`MAX_STREAM_BYTES`] of them (then a last line says so).
    pub async fn lines(&self, task: &str) -> Result<Vec<String>, PortError> {
        let stream = self.stream_of(task);
        let mut lines = Vec::new();
        let mut size = 0;
        let mut token: Option<String> = None;
        loop {
            let output =
                self.get_log_events(&stream, true, token.clone()).send().await.map_err(|error| {
                    PortError::new(port_error("GetLogEvents", &error).kind, self.why(&stream, &error))
                })?;
            for message in output.events().iter().filter_map(|event| event.message()) {
                size += message.len();
                if size > MAX_STREAM_BYTES {
                    lines.push(format!("... (stopped after {MAX_STREAM_BYTES} bytes of {stream})"));
                    return Ok(lines);
                }
                lines.push(message.strip_suffix('\n').unwrap_or(message).to_string());
            }
            // The last page repeats its forward token.
            let next = output.next_forward_token().map(str::to_string);
            if next.is_none() || next == token || output.events().is_empty() {
                return Ok(lines);
            }
            token = next;
        }
    }

    /// The tasks the watchers launched or adopted for `message_id`, oldest first, each with its `finished` event
    /// when found.
    pub async fn attempts(&self, message_id: &str) -> Result<Vec<TaskAttempt>, PortError> {
        let pattern = format!("\"{}\"", message_id.replace('"', ""));
        let mut attempts: Vec<TaskAttempt> = Vec::new();
        let mut finished: Vec<(u64, serde_json::Value)> = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_FILTER_PAGES {
            let output = self
                .client
                .filter_log_events()
                .log_group_name(&self.group)
                .filter_pattern(&pattern)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| {
                    let mut port = port_error("FilterLogEvents", &error);
                    if error.code() == Some("ResourceNotFoundException") {
                        port.message = format!("no log group {}", self.group);
                    }
                    port
                })?;
            for event in output.events() {
                let Some(value) = event.message().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                else {
                    continue;
                };
                if value["message_id"].as_str() != Some(message_id) {
                    continue;
                }
                let time = event.timestamp().unwrap_or(0).max(0) as u64;
                match value["event"].as_str() {
                    Some("launched" | "adopted") => {
                        if let Some(task) = value["task"].as_str()
                            && !attempts.iter().any(|a| a.task == task)
                        {
                            attempts.push(TaskAttempt { task: task.to_string(), launched_ms: time, finished: None });
                        }
                    }
                    Some("finished") => finished.push((time, value)),
                    _ => {}
                }
            }
            match output.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        attempts.sort_by_key(|a| a.launched_ms);
        // Each `finished` belongs to the latest task launched before it.
        for (time, value) in finished {
            if let Some(attempt) = attempts.iter_mut().rev().find(|a| a.launched_ms <= time && a.finished.is_none()) {
                attempt.finished = Some(value);
            }
        }
        Ok(attempts)
    }
}
