//! The process runner: the worker command as a child process with the task environment.
//!
//! One child per task. Its environment is the watcher's own (so `PATH`, `HOME`, AWS settings work) plus the task's
//! [`TaskSpec::env`]; stdin is `/dev/null` (a worker must not read the watcher's terminal); stdout and stderr are
//! pipes read by the runner (`output` below): every line is forwarded to the watcher's own stdout or stderr with
//! the message id, and the last `tail_bytes` of each attempt are kept for [`TaskRunner::output`]. Each child leads its own process group, so `stop` reaches the worker's own children too (a shell
//! script's `sleep`, a pipeline), and a Ctrl-C in the terminal reaches only the watcher, which then stops its tasks
//! gracefully.
//!
//! Every child is owned by a small tokio task that starts it (on a spawner thread, so `launch` returns at once),
//! waits for it through its pidfd (so it is reaped as soon as it exits: no zombies), records its exit status, and
//! carries out `stop`: SIGTERM to the group, then SIGKILL after `stop_grace`. Signals are sent only by that task,
//! while the child is known not to be reaped, so a recycled pid is never signalled.
//!
//! Children die with the watcher: each gets `PR_SET_PDEATHSIG` = SIGKILL before it execs, so a watcher killed with
//! `kill -9` (or crashing) does not leave a worker running unheld, whose message would reappear after one heartbeat
//! window and run a second time beside it. It reaches the direct child only: a worker's own children (a shell
//! script's commands) are the worker's to stop. Setting it costs nothing extra: children are started by a
//! vfork-style `clone` that copies nothing of the watcher (see `spawn` for how, and why not `std::process`).
//!
//! A command that cannot be started (missing program, not executable, bad working folder) is still reported as
//! [`Launch::Started`]: its handle polls as `Stopped { exit_code: None, reason: "failed to start: ..." }`, so the loop
//! treats it like any failed task (return with backoff, notify) and the notification says why. An `Err` would have
//! been read as a transient runner problem and retried silently forever.
//!
//! Output: one reader task per child reads both pipes into an [`output::Capture`](crate::output::Capture) (whole
//! lines forwarded, a bounded tail kept; see that module for the bounds). When the child exits, what it wrote is
//! already in the pipes: the reader drains them, and the tail as of then is the attempt's output. A worker's own
//! background children may keep the pipes open; their later lines are still forwarded until the pipes close.

mod output;
mod spawn;

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, mpsc};

use spawn::{ChildProcess, Pipes, Plan, SpawnError};

use super::slots::{Slots, lock};
use crate::output::{Capture, OutputConfig};
use crate::ports::{Launch, PortError, TaskOutput, TaskRunner, TaskSpec, TaskState};

/// What the process runner runs, and how it stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessRunnerConfig {
    /// The worker command: a path, or a name looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working folder of the children; `None` keeps the watcher's.
    pub working_dir: Option<PathBuf>,
    /// How long `stop` waits after SIGTERM before it sends SIGKILL.
    pub stop_grace: Duration,
    /// Children get SIGKILL when the watcher dies (`PR_SET_PDEATHSIG`), so a crashed or `kill -9`ed watcher leaves
    /// no worker running unheld beside its message's next run. Default on, and free (one `prctl` in the child);
    /// off, a worker outlives a killed watcher.
    pub die_with_watcher: bool,
}

impl ProcessRunnerConfig {
    /// A config running `program` with `args`, in the current folder, with a 10 s stop grace period.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> ProcessRunnerConfig {
        ProcessRunnerConfig {
            program: program.into(),
            args,
            working_dir: None,
            stop_grace: Duration::from_secs(10),
            die_with_watcher: true,
        }
    }
}

/// Identifies one child of a [`ProcessRunner`]: a slot number, never reused by that runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessHandle(pub u64);

impl std::fmt::Display for ProcessHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process-{}", self.0)
    }
}

/// Runs one child process per task; implements [`TaskRunner`].
pub struct ProcessRunner {
    config: Arc<ProcessRunnerConfig>,
    output: OutputConfig,
    shared: Arc<Mutex<Slots<u64>>>,
    /// The next slot number.
    next: AtomicU64,
    /// Signalled when a child exits, so the loop can poll at once (see [`TaskRunner::changed`]).
    exited: Arc<Notify>,
}

impl ProcessRunner {
    /// A runner for this command.
    pub fn new(config: ProcessRunnerConfig) -> ProcessRunner {
        ProcessRunner {
            config: Arc::new(config),
            output: OutputConfig::default(),
            shared: Arc::new(Mutex::new(Slots::default())),
            next: AtomicU64::new(0),
            exited: Arc::new(Notify::new()),
        }
    }

    /// The same runner, capturing output this way (default: [`OutputConfig::default`], 64 KiB kept, lines to the
    /// console in text format).
    pub fn with_output(mut self, output: OutputConfig) -> ProcessRunner {
        self.output = output;
        self
    }

    /// The runner's config.
    pub fn config(&self) -> &ProcessRunnerConfig {
        &self.config
    }

    /// The child's process id, while it runs (for logs and tests).
    pub fn pid(&self, handle: &ProcessHandle) -> Option<u32> {
        let mut shared = lock(&self.shared);
        shared.get_mut(&handle.0).filter(|slot| slot.finished.is_none()).and_then(|slot| slot.pid)
    }

    /// How many children are running now.
    pub fn running(&self) -> usize {
        lock(&self.shared).running()
    }
}

impl TaskRunner for ProcessRunner {
    type Handle = ProcessHandle;

    async fn find_running(&self, message_id: &str) -> Result<Option<ProcessHandle>, PortError> {
        let found = lock(&self.shared).running_for(message_id).min().copied();
        Ok(found.map(ProcessHandle))
    }

    async fn launch(&self, spec: &TaskSpec) -> Result<Launch<ProcessHandle>, PortError> {
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared).insert(id, &spec.message_id, stop_tx);
        // The child is prepared and started by the owning task (the clone on a spawner thread), so `launch` returns
        // at once and several children start in parallel; a stop asked for meanwhile waits in the channel and is
        // carried out as soon as the child exists.
        let owner = Owner {
            id,
            grace: self.config.stop_grace,
            shared: Arc::clone(&self.shared),
            exited: Arc::clone(&self.exited),
            program: self.config.program.display().to_string(),
            capture: Some(Capture::new(&spec.message_id, self.output.clone())),
        };
        let config = Arc::clone(&self.config);
        let env = spec.env.clone();
        tokio::spawn(async move {
            let plan =
                Plan::new(&config.program, &config.args, &env, config.working_dir.as_deref(), config.die_with_watcher);
            owner.start(plan, stop_rx).await
        });
        Ok(Launch::Started(ProcessHandle(id)))
    }

    /// Reports each task's state. A finished task is reported once and then forgotten (so a long-running watcher
    /// does not accumulate slots); asking again, or about a handle this runner never issued, answers
    /// `Stopped { exit_code: None, reason: "task no longer exists" }`.
    async fn poll(&self, handles: &[ProcessHandle]) -> Result<Vec<(ProcessHandle, TaskState)>, PortError> {
        let keys: Vec<u64> = handles.iter().map(|handle| handle.0).collect();
        Ok(lock(&self.shared).poll(&keys).into_iter().map(|(key, state)| (ProcessHandle(key), state)).collect())
    }

    /// Sends SIGTERM to the child's process group now and SIGKILL after `stop_grace` if it is still running. Returns
    /// at once; `poll` reports the exit. Stopping a finished or unknown task is not an error.
    async fn stop(&self, handle: &ProcessHandle, reason: &str) -> Result<(), PortError> {
        lock(&self.shared).stop(&handle.0, reason);
        Ok(())
    }

    /// The kept tail of a task the latest poll reported stopped.
    async fn output(&self, handle: &ProcessHandle) -> TaskOutput {
        lock(&self.shared).output(&handle.0)
    }

    /// Resolves when a child has exited since the last call (or a launch failed), so the loop polls at once. A
    /// single stored permit: an exit between two calls is never missed; several exits wake one call.
    async fn changed(&self) {
        self.exited.notified().await
    }
}

/// Owns one child: waits for it (reaping it), carries out stop requests, records how it ended.
struct Owner {
    id: u64,
    grace: Duration,
    shared: Arc<Mutex<Slots<u64>>>,
    exited: Arc<Notify>,
    program: String,
    /// The child's output capture, handed to its reader when the child has started.
    capture: Option<Capture>,
}

impl Owner {
    /// Starts the child, then owns it; a child that cannot be started is recorded as a task that failed to start.
    async fn start(self, plan: Result<Plan, SpawnError>, stop_rx: mpsc::UnboundedReceiver<String>) {
        let started = match plan {
            Ok(plan) => spawn::spawn(plan).await,
            Err(error) => Err(error),
        };
        let watched = started.and_then(|(child, pidfd, pipes)| match spawn::watch_exit(pidfd) {
            Ok(pidfd) => Ok((child, pidfd, pipes)),
            // Dropping `child` kills and reaps it: unwatched, it would be nobody's.
            Err(error) => Err(SpawnError::Setup { step: "watching for its exit", error }),
        });
        match watched {
            Ok((child, pidfd, pipes)) => {
                if let Some(slot) = lock(&self.shared).get_mut(&self.id) {
                    slot.pid = Some(child.id());
                }
                self.run(child, pidfd, pipes, stop_rx).await;
            }
            Err(error) => {
                let reason = format!("failed to start: {}: {error}", self.program);
                let output = TaskOutput::Unavailable("the command did not start, so it printed nothing".to_string());
                self.finish(TaskState::Stopped { exit_code: None, reason }, output);
            }
        }
    }

    fn finish(&self, state: TaskState, output: TaskOutput) {
        lock(&self.shared).finish(&self.id, state, output);
        self.exited.notify_one();
    }

    async fn run(
        mut self,
        mut child: ChildProcess,
        pidfd: AsyncFd<OwnedFd>,
        pipes: Pipes,
        mut stop_rx: mpsc::UnboundedReceiver<String>,
    ) {
        let grace = self.grace;
        let (exited_tx, exited_rx) = tokio::sync::oneshot::channel();
        let reader = match self.capture.take() {
            Some(capture) => output::read(pipes, capture, exited_rx),
            None => Err(std::io::Error::other("the output capture was already taken")),
        };
        let mut stop_reason: Option<String> = None;
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut requests_open = true;
        let outcome = loop {
            tokio::select! {
                ready = pidfd.readable() => match ready {
                    // Readable: the child has exited. Reaping it ends the loop; a wake-up without an exit waits again.
                    Ok(mut guard) => match child.try_wait() {
                        Ok(Some(status)) => break Ok(status),
                        Ok(None) => guard.clear_ready(),
                        Err(error) => break Err(error),
                    },
                    Err(error) => break Err(error),
                },
                request = stop_rx.recv(), if requests_open => match request {
                    Some(reason) => {
                        if stop_reason.is_none() {
                            child.signal_group(libc::SIGTERM);
                            stop_reason = Some(reason);
                            kill_at = Some(tokio::time::Instant::now() + grace);
                        }
                    }
                    None => requests_open = false,
                },
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    child.signal_group(libc::SIGKILL);
                    kill_at = None;
                }
            }
        };
        let state = match outcome {
            Ok(status) => describe(status, stop_reason.as_deref()),
            Err(error) => TaskState::Stopped { exit_code: None, reason: format!("lost track of the child: {error}") },
        };
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let _ = exited_tx.send(reply_tx);
        let output = match reader {
            Ok(()) => reply_rx
                .await
                .unwrap_or_else(|_| TaskOutput::Unavailable("the output reader stopped early".to_string())),
            Err(error) => TaskOutput::Unavailable(format!("its output could not be read: {error}")),
        };
        self.finish(state, output);
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The task state for an exit status: the exit code, or `None` and the signal when it was killed.
fn describe(status: ExitStatus, stop_reason: Option<&str>) -> TaskState {
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_string(),
    };
    let reason = match stop_reason {
        Some(stop) => format!("{how} after stop ({stop})"),
        None => how,
    };
    TaskState::Stopped { exit_code: status.code(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn describes_exit_codes_and_signals() {
        assert_eq!(
            describe(ExitStatus::from_raw(3 << 8), None),
            TaskState::Stopped { exit_code: Some(3), reason: "exited with code 3".into() }
        );
        assert_eq!(
            describe(ExitStatus::from_raw(9), None),
            TaskState::Stopped { exit_code: None, reason: "killed by signal 9".into() }
        );
        assert_eq!(
            describe(ExitStatus::from_raw(15), Some("message timeout")),
            TaskState::Stopped { exit_code: None, reason: "killed by signal 15 after stop (message timeout)".into() }
        );
    }
}
