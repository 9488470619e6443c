//! The container runner: each task is one container of the user's image on a Docker Engine, through the Engine API
//! over its socket (bollard), as an ECS task is one container of the worker task definition.
//!
//! - `launch`: create a container of [`DockerRunnerConfig::image`] with the task environment over the options' `env`,
//!   the CMD override, the binds, `privileged` and the memory and CPU settings ([`create_body`], the one mapping),
//!   labelled [`MESSAGE_LABEL`] = the message id and [`STACK_LABEL`] = the stack; then start it. A container the
//!   engine refuses to create or start (no such executable, a bad bind) is a launch refused for the message's sake
//!   ([`PortErrorKind::Rejected`]: the loop fails the attempt and notifies); a missing image is
//!   [`PortErrorKind::NotFound`] (the configuration is wrong: the loop holds the message and retries); an engine that
//!   does not answer is transient.
//! - `find_running`: the containers labelled with the message id and the stack (listed by label, stopped ones
//!   included), so a watcher started after another was killed adopts the container still running for a message it
//!   receives again, as the ECS runner adopts a task by `startedBy`. One that has already exited is adopted too: its
//!   exit code is that receive's outcome, and it is removed. One that was created and never started (the watcher died
//!   between the two calls) is removed and not adopted: it never ran.
//! - Every container, launched or adopted, has an owner task (`owner.rs`): it follows the container's log stream
//!   into the attempt's [`Capture`] (lines forwarded with the message id, a tail kept), waits for its exit, carries
//!   out `stop` (the Engine's stop: SIGTERM, SIGKILL after [`DockerRunnerConfig::stop_grace`]), reads the exit code,
//!   and removes the container before it reports the task stopped, so no finished container is left behind.
//! - `poll` answers from what the owners recorded (no Engine call); `changed` wakes the loop when one exits.
//!
//! [`connect`](DockerRunner::connect) is the check before the first receive: the Engine answers (the API version is
//! negotiated: an older engine speaks an older version), the image is on this machine (pulled only with
//! [`DockerRunnerConfig::pull`]).

mod either;
mod engine;
mod owner;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use tokio::sync::{Notify, mpsc};

pub use either::{LocalHandle, LocalRunner};
pub use engine::ConnectError;

use super::slots::{Slots, lock};
use crate::output::{Capture, OutputConfig};
use crate::ports::{Launch, PortError, PortErrorKind, TaskOutput, TaskRunner, TaskSpec, TaskState};

/// The label carrying the message id (what `find_running` looks for).
pub const MESSAGE_LABEL: &str = "watchbot.message-id";
/// The label carrying the stack name, so watchers of different stacks on one engine never adopt each other's.
pub const STACK_LABEL: &str = "watchbot.stack";
/// The Engine's address when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A host path bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The host path (created by the Engine if missing, as ECS does for a host volume).
    pub host: String,
    /// The path in the container.
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// What the container runner runs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRunnerConfig {
    /// The Engine's address (`DOCKER_HOST`: `unix://PATH`, `tcp://HOST:PORT`); `None`: [`DEFAULT_HOST`].
    pub host: Option<String>,
    /// The image of every task's container.
    pub image: String,
    /// Overrides the image's CMD; `None` keeps it.
    pub command: Option<Vec<String>>,
    /// Environment of every container (the options' `env`); the task environment is written over it.
    pub env: BTreeMap<String, String>,
    /// Host paths bound into every container.
    pub binds: Vec<Bind>,
    /// Run privileged.
    pub privileged: bool,
    /// Hard memory limit, MiB.
    pub memory_mib: Option<u64>,
    /// Soft memory reservation, MiB.
    pub memory_reservation_mib: Option<u64>,
    /// CPU units (1024 = one vCPU), as the Engine's CPU shares (what ECS passes for a container's `Cpu`).
    pub cpu_units: Option<u64>,
    /// The stack name, as [`STACK_LABEL`].
    pub stack: String,
    /// How long the Engine waits after SIGTERM before it sends SIGKILL, when a task is stopped.
    pub stop_grace: Duration,
    /// Pull the image at [`connect`](DockerRunner::connect) when it is not on this machine (never otherwise).
    pub pull: bool,
}

impl DockerRunnerConfig {
    /// A config running `image` as it is (its CMD, no extra settings) for `stack`, with a 10 s stop grace.
    pub fn new(image: impl Into<String>, stack: impl Into<String>) -> DockerRunnerConfig {
        DockerRunnerConfig {
            host: None,
            image: image.into(),
            command: None,
            env: BTreeMap::new(),
            binds: Vec::new(),
            privileged: false,
            memory_mib: None,
            memory_reservation_mib: None,
            cpu_units: None,
            stack: stack.into(),
            stop_grace: Duration::from_secs(10),
            pull: false,
        }
    }

    /// The Engine's address this config connects to.
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(DEFAULT_HOST)
    }
}

const MIB: i64 = 1024 * 1024;

/// The Engine's create-container request for one task: the one mapping of the config (and so of the options) to a
/// container. The task environment is written over the options' `env`, as ECS's container overrides are over the
/// task definition's environment.
pub fn create_body(config: &DockerRunnerConfig, spec: &TaskSpec) -> ContainerCreateBody {
    let mut env = config.env.clone();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let binds = config
        .binds
        .iter()
        .map(|b| format!("{}:{}{}", b.host, b.container, if b.read_only { ":ro" } else { "" }))
        .collect::<Vec<_>>();
    let labels = HashMap::from([
        (MESSAGE_LABEL.to_string(), spec.message_id.clone()),
        (STACK_LABEL.to_string(), config.stack.clone()),
    ]);
    let mib = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX / MIB).saturating_mul(MIB));
    ContainerCreateBody {
        image: Some(config.image.clone()),
        cmd: config.command.clone(),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        attach_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            privileged: Some(config.privileged),
            memory: mib(config.memory_mib),
            memory_reservation: mib(config.memory_reservation_mib),
            cpu_shares: config.cpu_units.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Runs one container per task on a Docker Engine; implements [`TaskRunner`]. Handles are container ids.
pub struct DockerRunner {
    docker: Docker,
    config: Arc<DockerRunnerConfig>,
    output: OutputConfig,
    shared: Arc<Mutex<Slots<String>>>,
    /// Signalled when a container has exited (and been removed), so the loop polls at once.
    exited: Arc<Notify>,
}

impl std::fmt::Debug for DockerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRunner").field("config", &self.config).finish_non_exhaustive()
    }
}

impl DockerRunner {
    /// Connects to the Engine and checks the image is there (pulling it only with `pull`): the check to make before
    /// the first receive.
    pub async fn connect(config: DockerRunnerConfig) -> Result<DockerRunner, ConnectError> {
        let docker = engine::connect(&config).await?;
        engine::ensure_image(&docker, &config).await?;
        Ok(DockerRunner {
            docker,
            config: Arc::new(config),
            output: OutputConfig::default(),
            shared: Arc::new(Mutex::new(Slots::default())),
            exited: Arc::new(Notify::new()),
        })
    }

    /// The same runner, capturing output this way (default: [`OutputConfig::default`]).
    pub fn with_output(mut self, output: OutputConfig) -> DockerRunner {
        self.output = output;
        self
    }

    /// The runner's config.
    pub fn config(&self) -> &DockerRunnerConfig {
        &self.config
    }

    /// How many containers this runner owns that have not exited.
    pub fn running(&self) -> usize {
        lock(&self.shared).running()
    }

    /// Registers a container and starts its owner.
    fn own(&self, id: &str, message_id: &str) {
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        lock(&self.shared).insert(id.to_string(), message_id, stop_tx);
        let owner = owner::Owner {
            docker: self.docker.clone(),
            id: id.to_string(),
            grace: self.config.stop_grace,
            capture: Capture::new(message_id, self.output.clone()),
            done: owner::Done { shared: Arc::clone(&self.shared), exited: Arc::clone(&self.exited) },
        };
        tokio::spawn(owner.run(stop_rx));
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        let _ = self.docker.remove_container(id, Some(options)).await;
    }
}

impl TaskRunner for DockerRunner {
    type Handle = String;

    async fn find_running(&self, message_id: &str) -> Result<Option<String>, PortError> {
        let own = lock(&self.shared).running_for(message_id).next().cloned();
        if own.is_some() {
            return Ok(own);
        }
        let filters = HashMap::from([(
            "label",
            vec![format!("{MESSAGE_LABEL}={message_id}"), format!("{STACK_LABEL}={}", self.config.stack)],
        )]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine::port_error("cannot list the containers of a message", &e))?;
        let mut adoptable = Vec::new();
        for container in found {
            let Some(id) = container.id else { continue };
            match container.state {
                // Created and never started: it never ran, so there is nothing to adopt.
                Some(ContainerSummaryStateEnum::CREATED) => self.remove(&id).await,
                Some(ContainerSummaryStateEnum::REMOVING) => {}
                state => adoptable.push((state == Some(ContainerSummaryStateEnum::RUNNING), container.created, id)),
            }
        }
        // A running one first, then the newest.
        adoptable.sort();
        let Some((_, _, id)) = adoptable.pop() else { return Ok(None) };
        let known = lock(&self.shared).contains(&id);
        if !known {
            self.own(&id, message_id);
        }
        Ok(Some(id))
    }

    async fn launch(&self, spec: &TaskSpec) -> Result<Launch<String>, PortError> {
        let body = create_body(&self.config, spec);
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(|e| engine::create_error(&self.config.image, &e))?;
        if let Err(error) = self.docker.start_container(&created.id, None).await {
            // Not started: remove it, so it can be neither adopted nor left behind.
            self.remove(&created.id).await;
            return Err(match engine::answered(&error) {
                true => PortError::new(PortErrorKind::Rejected, engine::describe(&error)),
                false => engine::port_error("cannot start the container", &error),
            });
        }
        self.own(&created.id, &spec.message_id);
        Ok(Launch::Started(created.id))
    }

    /// Reports each container's state, from what the owners recorded: a finished one is reported once and then
    /// forgotten; one this runner does not own is `Stopped { exit_code: None, reason: "task no longer exists" }`.
    async fn poll(&self, handles: &[String]) -> Result<Vec<(String, TaskState)>, PortError> {
        Ok(lock(&self.shared).poll(handles))
    }

    /// Asks the owner to stop the container (the Engine's stop: SIGTERM now, SIGKILL after the grace). Returns at
    /// once; `poll` reports the exit. Stopping a finished or unknown container is not an error.
    async fn stop(&self, handle: &String, reason: &str) -> Result<(), PortError> {
        lock(&self.shared).stop(handle, reason);
        Ok(())
    }

    /// The kept tail of a container the latest poll reported stopped.
    async fn output(&self, handle: &String) -> TaskOutput {
        lock(&self.shared).output(handle)
    }

    async fn changed(&self) {
        self.exited.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_body_carries_the_config_and_the_task() {
        let mut config = DockerRunnerConfig::new("worker:dev", "s");
        config.command = Some(vec!["run".into()]);
        config.env = BTreeMap::from([("A".into(), "options".into()), ("WorkTopic".into(), "shadowed".into())]);
        config.binds = vec![Bind { host: "/h".into(), container: "/c".into(), read_only: true }];
        config.memory_mib = Some(2);
        config.cpu_units = Some(256);
        let spec = TaskSpec {
            message_id: "m-1".into(),
            env: BTreeMap::from([("WorkTopic".into(), "/state".into()), ("MessageId".into(), "m-1".into())]),
        };
        let body = create_body(&config, &spec);
        assert_eq!(body.image.as_deref(), Some("worker:dev"));
        assert_eq!(body.cmd, Some(vec!["run".to_string()]));
        assert_eq!(body.env, Some(vec!["A=options".into(), "MessageId=m-1".into(), "WorkTopic=/state".into()]));
        let labels = body.labels.unwrap();
        assert_eq!((labels[MESSAGE_LABEL].as_str(), labels[STACK_LABEL].as_str()), ("m-1", "s"));
        let host = body.host_config.unwrap();
        assert_eq!(host.binds, Some(vec!["/h:/c:ro".to_string()]));
        assert_eq!((host.memory, host.memory_reservation, host.cpu_shares), (Some(2 * MIB), None, Some(256)));
    }
}
