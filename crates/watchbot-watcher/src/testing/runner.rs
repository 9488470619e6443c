//! [`FakeRunner`]: tasks that follow a [`Script`] per launch, and the [`RunnerCall`]s it records.

use super::lock;
use crate::ports::{Launch, PortError, PortErrorKind, TaskRunner, TaskSpec, TaskState};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What a fake task does, decided per launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Runs this long, then exits with this code (`None`: killed).
    Exit {
        /// How long it runs.
        after: Duration,
        /// Its exit code (`None`: killed).
        code: Option<i32>,
    },
    /// Runs until stopped.
    Forever,
    /// The launch is not placed (capacity), with this reason.
    NotPlaced(String),
    /// The launch call fails.
    Fail(PortError),
    /// The launch call fails (e.g. RunTask timed out or answered 5xx) although the task did start, and runs as
    /// `task` says: the ambiguous failure a watcher must not answer with a second launch.
    FailAfterStart {
        /// What the task that did start does.
        task: Box<Script>,
        /// The error the launch call returns.
        error: PortError,
    },
    /// Runs until stopped, then exits with this code (a worker that handles SIGTERM and finishes its job).
    UntilStopped(Option<i32>),
}

impl Script {
    /// The default script, read from the task's `Message`: `"<code>"`, `"<code>@<seconds>"`, `"forever"`,
    /// `"unplaced:<n>@..."` (not placed on the first n attempts, then the rest). Anything else exits 0 at once.
    pub fn from_message(spec: &TaskSpec, attempt: u32) -> Script {
        let text = spec.env.get("Message").map(String::as_str).unwrap_or_default();
        let mut text = text.trim();
        if let Some(rest) = text.strip_prefix("unplaced:") {
            let (n, rest) = rest.split_once('@').unwrap_or((rest, "0"));
            if attempt <= n.parse().unwrap_or(0) {
                return Script::NotPlaced("RESOURCE:MEMORY".into());
            }
            text = rest;
        }
        if text == "forever" {
            return Script::Forever;
        }
        let (code, secs) = text.split_once('@').unwrap_or((text, "0"));
        Script::Exit {
            after: Duration::from_secs_f64(secs.parse().unwrap_or(0.0)),
            code: Some(code.parse().unwrap_or(0)),
        }
    }
}

/// A call the fake runner saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerCall {
    /// `find_running(message id)`.
    FindRunning(String),
    /// `launch` for this message id.
    Launch(String),
    /// `poll` of this many handles.
    Poll(usize),
    /// `stop` of the task of this message id, with the reason.
    Stop(String, String),
}

#[derive(Debug, Clone)]
struct FakeTask {
    message_id: String,
    env: BTreeMap<String, String>,
    started: Instant,
    script: Script,
    stopped: Option<(Option<i32>, String)>,
}

type ScriptFn = dyn Fn(&TaskSpec, u32) -> Script + Send + Sync;

struct RunnerState {
    tasks: HashMap<u64, FakeTask>,
    next: u64,
    attempts: HashMap<String, u32>,
    calls: Vec<RunnerCall>,
    poll_failures: VecDeque<PortError>,
}

/// A runner whose tasks follow a [`Script`] chosen per launch (by default from the message text).
#[derive(Clone)]
pub struct FakeRunner {
    state: Arc<Mutex<RunnerState>>,
    script: Arc<ScriptFn>,
}

impl std::fmt::Debug for FakeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRunner").finish_non_exhaustive()
    }
}

impl Default for FakeRunner {
    fn default() -> FakeRunner {
        FakeRunner::new()
    }
}

impl FakeRunner {
    /// Tasks scripted by their message text ([`Script::from_message`]).
    pub fn new() -> FakeRunner {
        FakeRunner::scripted(Script::from_message)
    }

    /// Tasks scripted by `script(spec, attempt)` (attempt counts launches for that message id, from 1).
    pub fn scripted(script: impl Fn(&TaskSpec, u32) -> Script + Send + Sync + 'static) -> FakeRunner {
        FakeRunner {
            state: Arc::new(Mutex::new(RunnerState {
                tasks: HashMap::new(),
                next: 0,
                attempts: HashMap::new(),
                calls: Vec::new(),
                poll_failures: VecDeque::new(),
            })),
            script: Arc::new(script),
        }
    }

    /// A task for this message already running (started by another watcher); returns its handle.
    pub fn start_elsewhere(&self, message_id: &str, script: Script) -> u64 {
        let mut state = lock(&self.state);
        state.next += 1;
        let handle = state.next;
        state.tasks.insert(
            handle,
            FakeTask {
                message_id: message_id.into(),
                env: BTreeMap::new(),
                started: Instant::now(),
                script,
                stopped: None,
            },
        );
        handle
    }

    /// Makes the next `count` polls fail.
    pub fn fail_polls(&self, count: usize, error: PortError) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            state.poll_failures.push_back(error.clone());
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RunnerCall> {
        lock(&self.state).calls.clone()
    }

    /// Message ids of successful launches (tasks started), in order.
    pub fn launched(&self) -> Vec<String> {
        let state = lock(&self.state);
        let mut tasks: Vec<(&u64, &FakeTask)> = state.tasks.iter().filter(|(_, t)| !t.env.is_empty()).collect();
        tasks.sort_by_key(|(handle, _)| **handle);
        tasks.into_iter().map(|(_, t)| t.message_id.clone()).collect()
    }

    /// The environment of the first task started for this message.
    pub fn env_of(&self, message_id: &str) -> Option<BTreeMap<String, String>> {
        let state = lock(&self.state);
        let mut tasks: Vec<(&u64, &FakeTask)> =
            state.tasks.iter().filter(|(_, t)| t.message_id == message_id).collect();
        tasks.sort_by_key(|(handle, _)| **handle);
        tasks.first().map(|(_, t)| t.env.clone())
    }

    /// Tasks still running now.
    pub fn running(&self) -> Vec<String> {
        let now = Instant::now();
        let state = lock(&self.state);
        state
            .tasks
            .values()
            .filter(|t| FakeRunner::state_of(t, now) == TaskState::Running)
            .map(|t| t.message_id.clone())
            .collect()
    }

    fn start(state: &mut RunnerState, spec: &TaskSpec, script: Script) -> u64 {
        state.next += 1;
        let handle = state.next;
        let mut env = spec.env.clone();
        // Marks a task started here (vs. `start_elsewhere`) even with an empty env.
        env.entry("MessageId".into()).or_insert_with(|| spec.message_id.clone());
        let task =
            FakeTask { message_id: spec.message_id.clone(), env, started: Instant::now(), script, stopped: None };
        state.tasks.insert(handle, task);
        handle
    }

    fn state_of(task: &FakeTask, now: Instant) -> TaskState {
        if let Some((exit_code, reason)) = &task.stopped {
            return TaskState::Stopped { exit_code: *exit_code, reason: reason.clone() };
        }
        match &task.script {
            Script::Exit { after, code } if now >= task.started + *after => {
                TaskState::Stopped { exit_code: *code, reason: "Essential container in task exited".into() }
            }
            _ => TaskState::Running,
        }
    }
}

impl TaskRunner for FakeRunner {
    type Handle = u64;

    fn find_running(&self, message_id: &str) -> impl Future<Output = Result<Option<u64>, PortError>> + Send {
        let message_id = message_id.to_string();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::FindRunning(message_id.clone()));
            Ok(state
                .tasks
                .iter()
                .find(|(_, t)| t.message_id == message_id && FakeRunner::state_of(t, now) == TaskState::Running)
                .map(|(handle, _)| *handle))
        }
    }

    fn launch(&self, spec: &TaskSpec) -> impl Future<Output = Result<Launch<u64>, PortError>> + Send {
        let spec = spec.clone();
        async move {
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::Launch(spec.message_id.clone()));
            let attempt = {
                let attempts = state.attempts.entry(spec.message_id.clone()).or_insert(0);
                *attempts += 1;
                *attempts
            };
            let script = (self.script)(&spec, attempt);
            match script {
                Script::NotPlaced(reason) => Ok(Launch::NotPlaced { reason }),
                Script::Fail(error) => Err(error),
                Script::FailAfterStart { task, error } => {
                    FakeRunner::start(&mut state, &spec, *task);
                    Err(error)
                }
                script => Ok(Launch::Started(FakeRunner::start(&mut state, &spec, script))),
            }
        }
    }

    fn poll(&self, handles: &[u64]) -> impl Future<Output = Result<Vec<(u64, TaskState)>, PortError>> + Send {
        let handles = handles.to_vec();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            state.calls.push(RunnerCall::Poll(handles.len()));
            if let Some(error) = state.poll_failures.pop_front() {
                return Err(error);
            }
            Ok(handles
                .into_iter()
                .map(|handle| {
                    let task_state = state
                        .tasks
                        .get(&handle)
                        .map_or(TaskState::Stopped { exit_code: None, reason: "unknown task".into() }, |t| {
                            FakeRunner::state_of(t, now)
                        });
                    (handle, task_state)
                })
                .collect())
        }
    }

    fn stop(&self, handle: &u64, reason: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        let handle = *handle;
        let reason = reason.to_string();
        async move {
            let now = Instant::now();
            let mut state = lock(&self.state);
            let Some(task) = state.tasks.get_mut(&handle) else {
                return Err(PortError::new(PortErrorKind::NotFound, format!("no task {handle}")));
            };
            let message_id = task.message_id.clone();
            if FakeRunner::state_of(task, now) == TaskState::Running {
                let code = match task.script {
                    Script::UntilStopped(code) => code,
                    _ => None,
                };
                task.stopped = Some((code, format!("stopped: {reason}")));
            }
            state.calls.push(RunnerCall::Stop(message_id, reason));
            Ok(())
        }
    }
}
