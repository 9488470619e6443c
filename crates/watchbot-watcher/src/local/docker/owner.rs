//! The owner of one container: follows its log stream into the attempt's capture, waits for its exit (through the
//! Engine's wait, retried while the Engine does not answer), carries out stop requests, then reads the exit code,
//! removes the container and records how it ended. The runner reports a task stopped only after its container is
//! removed.
//!
//! The Engine may end a follow of the log when the container dies before it has sent the last entries (seen here: a
//! last line without a newline went missing), so after the exit the owner reads the log once more, from the second of
//! the last entry it got, and takes what comes after that entry (entries carry the Engine's timestamps, fixed-width
//! RFC 3339 with nanoseconds, so they compare as text).

use super::engine::{describe, status};
use crate::console::Stream;
use crate::local::slots::{Slots, lock};
use crate::output::Capture;
use crate::ports::{TaskOutput, TaskState};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::{
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How long the log stream may take to end after the container has exited (it ends once the Engine has sent all).
const LOG_DRAIN: Duration = Duration::from_secs(5);
/// The pause before an Engine call that got no answer is made again.
const RETRY: Duration = Duration::from_secs(1);
/// Tries of a call that ends the container's life here (inspect, remove) before giving up.
const TRIES: u32 = 5;

/// Where an owner records the end of its container.
pub(super) struct Done {
    pub(super) shared: Arc<Mutex<Slots<String>>>,
    pub(super) exited: Arc<Notify>,
}

/// One container's owner.
pub(super) struct Owner {
    pub(super) docker: Docker,
    pub(super) id: String,
    pub(super) grace: Duration,
    pub(super) capture: Capture,
    pub(super) done: Done,
}

/// How the wait for the exit ended.
enum Waited {
    Exited,
    Gone,
}

impl Owner {
    /// Owns the container until it has exited and been removed.
    pub(super) async fn run(self, mut stop_rx: mpsc::UnboundedReceiver<String>) {
        let Owner { docker, id, grace, capture, done } = self;
        let reader = Arc::new(Mutex::new(Reader { capture, last: None, same: 0, error: None }));
        let mut logs = tokio::spawn(follow_logs(docker.clone(), id.clone(), reader.clone()));
        let mut stop_reason: Option<String> = None;
        let mut stopping: Option<tokio::task::JoinHandle<()>> = None;
        let mut requests_open = true;
        let waited = {
            let wait = wait_exit(&docker, &id);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    waited = &mut wait => break waited,
                    request = stop_rx.recv(), if requests_open => match request {
                        Some(reason) if stop_reason.is_none() => {
                            stop_reason = Some(reason);
                            stopping = Some(tokio::spawn(stop(docker.clone(), id.clone(), grace)));
                        }
                        Some(_) => {}
                        None => requests_open = false,
                    },
                }
            }
        };
        if let Some(stopping) = stopping {
            stopping.abort();
        }
        // The container has exited: its log stream ends once the Engine has sent what it will; then what it did not.
        if tokio::time::timeout(LOG_DRAIN, &mut logs).await.is_err() {
            logs.abort();
        }
        if !matches!(waited, Waited::Gone) {
            let _ = tokio::time::timeout(LOG_DRAIN, catch_up(&docker, &id, &reader)).await;
        }
        let state = match waited {
            Waited::Gone => gone(),
            Waited::Exited => describe_exit(&docker, &id, stop_reason.as_deref()).await,
        };
        let output = {
            let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
            reader.capture.finish();
            match (reader.capture.output(), reader.error.take()) {
                (TaskOutput::Tail { text, .. }, Some(error)) if text.is_empty() => {
                    TaskOutput::Unavailable(format!("the container's log could not be read: {error}"))
                }
                (output, _) => output,
            }
        };
        if !matches!(waited, Waited::Gone) {
            remove(&docker, &id).await;
        }
        lock(&done.shared).finish(&id, state, output);
        done.exited.notify_one();
    }
}

fn gone() -> TaskState {
    TaskState::Stopped { exit_code: None, reason: "the container was removed outside watchbot".to_string() }
}

/// The log entries taken so far: the capture they went into, and where they ended.
struct Reader {
    capture: Capture,
    /// The timestamp of the last entry taken.
    last: Option<String>,
    /// How many entries taken carry exactly that timestamp.
    same: usize,
    /// Why the log could not be read, if it could not.
    error: Option<String>,
}

/// A log entry: its stream, the Engine's timestamp, and the bytes.
fn split(entry: &LogOutput) -> Option<(Stream, &str, &[u8])> {
    let (which, bytes) = match entry {
        LogOutput::StdOut { message } | LogOutput::Console { message } => (Stream::Stdout, message),
        LogOutput::StdErr { message } => (Stream::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    let space = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    let time = std::str::from_utf8(&bytes[..space]).unwrap_or_default();
    Some((which, time, bytes.get(space + 1..).unwrap_or_default()))
}

impl Reader {
    /// Takes one entry.
    fn accept(&mut self, entry: &LogOutput) {
        let Some((which, time, text)) = split(entry) else { return };
        if self.last.as_deref() == Some(time) {
            self.same += 1;
        } else {
            self.last = Some(time.to_string());
            self.same = 1;
        }
        self.capture.accept(which, text);
    }
}

/// Follows the container's stdout and stderr from its start into the capture, until the stream ends.
async fn follow_logs(docker: Docker, id: String, reader: Arc<Mutex<Reader>>) {
    let options = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).timestamps(true).build();
    let mut stream = docker.logs(&id, Some(options));
    while let Some(item) = stream.next().await {
        let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
        match item {
            Ok(entry) => reader.accept(&entry),
            Err(e) => {
                reader.error = Some(describe(&e));
                return;
            }
        }
    }
}

/// Reads the log of the exited container from the second of the last entry taken, and takes what follows it.
async fn catch_up(docker: &Docker, id: &str, reader: &Mutex<Reader>) {
    let (last, taken) = {
        let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
        (reader.last.clone(), reader.same)
    };
    let since = last.as_deref().and_then(epoch_seconds).unwrap_or(0);
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).since(since).build();
    let mut stream = docker.logs(id, Some(options));
    let mut seen_at_last = 0;
    while let Some(Ok(entry)) = stream.next().await {
        let Some((_, time, _)) = split(&entry) else { continue };
        match last.as_deref().map(|last| time.cmp(last)) {
            Some(std::cmp::Ordering::Less) => continue,
            Some(std::cmp::Ordering::Equal) => {
                seen_at_last += 1;
                if seen_at_last <= taken {
                    continue;
                }
            }
            _ => {}
        }
        reader.lock().unwrap_or_else(|p| p.into_inner()).accept(&entry);
    }
}

/// The whole seconds since the epoch of an RFC 3339 UTC time (`2026-12-02T17:24:08.123456789Z`).
fn epoch_seconds(time: &str) -> Option<i32> {
    let number = |range: std::ops::Range<usize>| time.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    i32::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// Waits until the container is not running; an Engine that does not answer is asked again.
async fn wait_exit(docker: &Docker, id: &str) -> Waited {
    loop {
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut wait = docker.wait_container(id, Some(options));
        match wait.next().await {
            Some(Ok(_)) => return Waited::Exited,
            // bollard reports a non-zero exit code as an error; the code is read by the inspect after.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => return Waited::Exited,
            Some(Err(error)) if status(&error) == Some(404) => return Waited::Gone,
            Some(Err(_)) | None => tokio::time::sleep(RETRY).await,
        }
    }
}

/// The Engine's stop (SIGTERM, SIGKILL after the grace), asked again while the Engine does not answer.
async fn stop(docker: Docker, id: String, grace: Duration) {
    let seconds = i32::try_from(grace.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX);
    loop {
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        match docker.stop_container(&id, Some(options)).await {
            Err(error) if status(&error).is_none() => tokio::time::sleep(RETRY).await,
            // Stopped, already stopped (304) or gone: the wait sees it.
            _ => return,
        }
    }
}

/// The exit code of the stopped container, and why it stopped.
async fn describe_exit(docker: &Docker, id: &str, stop_reason: Option<&str>) -> TaskState {
    let mut last = String::new();
    for _ in 0..TRIES {
        match docker.inspect_container(id, None).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                if state.status == Some(ContainerStateStatusEnum::CREATED) {
                    return TaskState::Stopped { exit_code: None, reason: "the container never started".to_string() };
                }
                let code = state.exit_code.and_then(|c| i32::try_from(c).ok());
                let mut reason = match code {
                    Some(code) => format!("exited with code {code}"),
                    None => "ended without an exit code".to_string(),
                };
                if state.oom_killed == Some(true) {
                    reason.push_str(" (killed: out of memory)");
                }
                if let Some(error) = state.error.filter(|e| !e.is_empty()) {
                    reason.push_str(&format!(" ({error})"));
                }
                if let Some(stop) = stop_reason {
                    reason.push_str(&format!(" after stop ({stop})"));
                }
                return TaskState::Stopped { exit_code: code, reason };
            }
            Err(error) if status(&error) == Some(404) => return gone(),
            Err(error) => last = describe(&error),
        }
        tokio::time::sleep(RETRY).await;
    }
    TaskState::Stopped { exit_code: None, reason: format!("lost track of the container: {last}") }
}

/// Removes the container (and its anonymous volumes), asked again while the Engine does not answer.
async fn remove(docker: &Docker, id: &str) {
    for _ in 0..TRIES {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match docker.remove_container(id, Some(options)).await {
            Err(error) if status(&error).is_none() || status(&error) == Some(409) => {
                tokio::time::sleep(RETRY).await;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_become_epoch_seconds() {
        assert_eq!(super::epoch_seconds("1970-01-01T00:00:00.000000000Z"), Some(0));
        assert_eq!(super::epoch_seconds("2026-12-02T17:24:08.123456789Z"), Some(1_796_232_248));
        assert_eq!(super::epoch_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(super::epoch_seconds("garbage"), None);
    }
}
