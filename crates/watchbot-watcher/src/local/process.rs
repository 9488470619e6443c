//! The process runner: the worker command as a child process with the task environment.
//!
//! One child per task. Its environment is the watcher's own (so `PATH`, `HOME`, AWS settings work) plus the task's
//! [`TaskSpec::env`]; stdout and stderr are inherited, stdin is `/dev/null` (a worker must not read the watcher's
//! terminal). Each child leads its own process group, so `stop` reaches the worker's own children too (a shell
//! script's `sleep`, a pipeline), and a Ctrl-C in the terminal reaches only the watcher, which then stops its tasks
//! gracefully.
//!
//! Every child is owned by a small tokio task that spawns it (fork/exec on the runner's spawner thread, so `launch`
//! returns at once), waits for it (so it is reaped as soon as it exits: no zombies),
//! records its exit status, and carries out `stop`: SIGTERM to the group, then SIGKILL after `stop_grace`. Signals are
//! sent only by that task, while the child is known not to be reaped, so a recycled pid is never signalled.
//!
//! Children die with the watcher: each is spawned with `PR_SET_PDEATHSIG` = SIGKILL, so a watcher killed with
//! `kill -9` (or crashing) does not leave a worker running unheld, whose message would reappear after one heartbeat
//! window and run a second time beside it. Linux sends that signal when the thread that forked the child ends, so
//! every fork happens on one of a few spawner threads that live as long as the process. It reaches the direct child only: a
//! worker's own children (a shell script's commands) are the worker's to stop.
//!
//! A command that cannot be started (missing program, not executable, bad working folder) is still reported as
//! [`Launch::Started`]: its handle polls as `Stopped { exit_code: None, reason: "failed to start: ..." }`, so the loop
//! treats it like any failed task (return with backoff, notify) and the notification says why. An `Err` would have
//! been read as a transient runner problem and retried silently forever.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::ports::{Launch, PortError, TaskRunner, TaskSpec, TaskState};

/// What the process runner runs, and how it stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// no worker running unheld beside its message's next run. Default on. It costs a full `fork` per child
    /// instead of the cheaper `posix_spawn` (about 0.5 ms per task on these machines); turn it off only where the
    /// watcher's death ends its children anyway (the watcher as PID 1 of a container).
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
    config: ProcessRunnerConfig,
    shared: Arc<Mutex<Slots>>,
    /// Signalled when a child exits, so the loop can poll at once (see [`TaskRunner::changed`]).
    exited: Arc<Notify>,
}

#[derive(Default)]
struct Slots {
    next: u64,
    slots: HashMap<u64, Slot>,
}

struct Slot {
    message_id: String,
    pid: Option<u32>,
    /// `None` while the child runs.
    finished: Option<TaskState>,
    /// Stop requests (with their reason) to the task that owns the child; `None` when it never started.
    stop: Option<mpsc::UnboundedSender<String>>,
}

impl ProcessRunner {
    /// A runner for this command.
    pub fn new(config: ProcessRunnerConfig) -> ProcessRunner {
        ProcessRunner { config, shared: Arc::new(Mutex::new(Slots::default())), exited: Arc::new(Notify::new()) }
    }

    /// The runner's config.
    pub fn config(&self) -> &ProcessRunnerConfig {
        &self.config
    }

    /// The child's process id, while it runs (for logs and tests).
    pub fn pid(&self, handle: &ProcessHandle) -> Option<u32> {
        let shared = lock(&self.shared);
        shared.slots.get(&handle.0).filter(|slot| slot.finished.is_none()).and_then(|slot| slot.pid)
    }

    /// How many children are running now.
    pub fn running(&self) -> usize {
        lock(&self.shared).slots.values().filter(|slot| slot.finished.is_none()).count()
    }

    fn command(&self, spec: &TaskSpec) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.config.program);
        command
            .args(&self.config.args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // Its own process group: `stop` signals the whole worker, and terminal signals reach only the watcher.
            .process_group(0)
            // If the watcher's runtime goes away without stopping its tasks, do not leave workers behind.
            .kill_on_drop(true);
        if let Some(dir) = &self.config.working_dir {
            command.current_dir(dir);
        }
        if self.config.die_with_watcher {
            set_parent_death_signal(&mut command);
        }
        command
    }
}

impl TaskRunner for ProcessRunner {
    type Handle = ProcessHandle;

    async fn find_running(&self, message_id: &str) -> Result<Option<ProcessHandle>, PortError> {
        let shared = lock(&self.shared);
        let found = shared
            .slots
            .iter()
            .filter(|(_, slot)| slot.finished.is_none() && slot.message_id == message_id)
            .map(|(id, _)| *id)
            .min();
        Ok(found.map(ProcessHandle))
    }

    async fn launch(&self, spec: &TaskSpec) -> Result<Launch<ProcessHandle>, PortError> {
        let command = self.command(spec);
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        let id = {
            let mut shared = lock(&self.shared);
            let id = shared.next;
            shared.next += 1;
            let slot = Slot { message_id: spec.message_id.clone(), pid: None, finished: None, stop: Some(stop_tx) };
            shared.slots.insert(id, slot);
            id
        };
        // The fork/exec happens on the owning task (on a blocking thread), so `launch` returns at once and several
        // children start in parallel; a stop asked for meanwhile waits in the channel and is carried out as soon as
        // the child exists.
        let owner = Owner {
            id,
            grace: self.config.stop_grace,
            shared: Arc::clone(&self.shared),
            exited: Arc::clone(&self.exited),
            program: self.config.program.display().to_string(),
        };
        tokio::spawn(owner.start(command, stop_rx));
        Ok(Launch::Started(ProcessHandle(id)))
    }

    /// Reports each task's state. A finished task is reported once and then forgotten (so a long-running watcher
    /// does not accumulate slots); asking again, or about a handle this runner never issued, answers
    /// `Stopped { exit_code: None, reason: "task no longer exists" }`.
    async fn poll(&self, handles: &[ProcessHandle]) -> Result<Vec<(ProcessHandle, TaskState)>, PortError> {
        let mut shared = lock(&self.shared);
        let states = handles
            .iter()
            .map(|handle| {
                let running = shared.slots.get(&handle.0).map(|slot| slot.finished.is_none());
                let state = match running {
                    Some(true) => TaskState::Running,
                    Some(false) => shared.slots.remove(&handle.0).and_then(|slot| slot.finished).unwrap_or_else(gone),
                    None => gone(),
                };
                (*handle, state)
            })
            .collect();
        Ok(states)
    }

    /// Sends SIGTERM to the child's process group now and SIGKILL after `stop_grace` if it is still running. Returns
    /// at once; `poll` reports the exit. Stopping a finished or unknown task is not an error.
    async fn stop(&self, handle: &ProcessHandle, reason: &str) -> Result<(), PortError> {
        let shared = lock(&self.shared);
        if let Some(sender) = shared.slots.get(&handle.0).and_then(|slot| slot.stop.as_ref()) {
            // A send error means the child has just exited: nothing to stop.
            let _ = sender.send(reason.to_string());
        }
        Ok(())
    }

    /// Resolves when a child has exited since the last call (or a launch failed), so the loop polls at once. A
    /// single stored permit: an exit between two calls is never missed; several exits wake one call.
    async fn changed(&self) {
        self.exited.notified().await
    }
}

fn gone() -> TaskState {
    TaskState::Stopped { exit_code: None, reason: "task no longer exists".to_string() }
}

fn lock(shared: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    // A panic while holding the lock leaves the map consistent (every update is a single insert/remove/assign).
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Owns one child: waits for it (reaping it), carries out stop requests, records how it ended.
struct Owner {
    id: u64,
    grace: Duration,
    shared: Arc<Mutex<Slots>>,
    exited: Arc<Notify>,
    program: String,
}

impl Owner {
    /// Spawns the child, then owns it; a child that cannot be spawned is recorded as a task that failed to start.
    async fn start(self, command: tokio::process::Command, stop_rx: mpsc::UnboundedReceiver<String>) {
        let spawned = spawn_with_parent_death_signal(command).await;
        match spawned {
            Ok(child) => {
                if let Some(slot) = lock(&self.shared).slots.get_mut(&self.id) {
                    slot.pid = child.id();
                }
                self.run(child, stop_rx).await;
            }
            Err(error) => {
                let reason = format!("failed to start: {}: {error}", self.program);
                self.finish(TaskState::Stopped { exit_code: None, reason });
            }
        }
    }

    fn finish(&self, state: TaskState) {
        let mut shared = lock(&self.shared);
        if let Some(slot) = shared.slots.get_mut(&self.id) {
            slot.finished = Some(state);
            slot.stop = None;
        }
        drop(shared);
        self.exited.notify_one();
    }

    async fn run(self, mut child: tokio::process::Child, mut stop_rx: mpsc::UnboundedReceiver<String>) {
        let grace = self.grace;
        let mut stop_reason: Option<String> = None;
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut requests_open = true;
        let outcome = loop {
            tokio::select! {
                status = child.wait() => break status,
                request = stop_rx.recv(), if requests_open => match request {
                    Some(reason) => {
                        if stop_reason.is_none() {
                            // `child.id()` is `Some` only while tokio has not reaped the child, so the pid is still ours.
                            if let Some(pid) = child.id() {
                                signal_group(pid, libc::SIGTERM);
                            }
                            stop_reason = Some(reason);
                            kill_at = Some(tokio::time::Instant::now() + grace);
                        }
                    }
                    None => requests_open = false,
                },
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    if let Some(pid) = child.id() {
                        signal_group(pid, libc::SIGKILL);
                    }
                    kill_at = None;
                }
            }
        };
        let state = match outcome {
            Ok(status) => describe(status, stop_reason.as_deref()),
            Err(error) => TaskState::Stopped { exit_code: None, reason: format!("lost track of the child: {error}") },
        };
        self.finish(state);
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

/// Threads that fork children: enough for children to start in parallel on a small machine.
const SPAWNER_THREADS: usize = 4;

type SpawnRequest = (
    tokio::process::Command,
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<std::io::Result<tokio::process::Child>>,
);

/// Spawns `command` on a spawner thread (where a parent-death signal set by [`set_parent_death_signal`] is safe).
async fn spawn_with_parent_death_signal(command: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    static SPAWNER: std::sync::OnceLock<std::sync::mpsc::Sender<SpawnRequest>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        let rx = Arc::new(Mutex::new(rx));
        // Never joined and never ending: the parent-death signal fires when the forking thread exits, so these
        // threads must live as long as the process. Several, so that children start in parallel.
        for n in 0..SPAWNER_THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("watchbot-spawner-{n}"))
                .spawn(move || {
                    loop {
                        let request = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((mut command, runtime, reply)) = request else { return };
                        let _context = runtime.enter();
                        let _ = reply.send(command.spawn());
                    }
                })
                .expect("start a spawner thread");
        }
        tx
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = (command, tokio::runtime::Handle::current(), reply);
    if spawner.send(request).is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    answer.await.unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread dropped the request")))
}

/// Makes the child receive SIGKILL when the thread that forked it (the spawner thread, so: the watcher) dies.
#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe functions (prctl,
    // getppid) and builds only OS-error io::Errors, which allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The watcher may have died between fork and prctl: then nobody holds this message; do not run it.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                // ESRCH: "no such process", the watcher. No allocation here: another thread may hold malloc's lock.
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process group led by `pid`.
#[allow(unsafe_code)]
fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: `kill` takes no pointers and has no memory-safety preconditions. The group id is that of a child we
    // spawned as a group leader (`process_group(0)`) and have not reaped yet, so it cannot name anyone else's group.
    // Errors (ESRCH when the group has just exited) need no handling: the owner sees the exit through `wait`.
    unsafe {
        libc::kill(-pid, signal);
    }
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
