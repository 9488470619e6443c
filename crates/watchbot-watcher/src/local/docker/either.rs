//! [`LocalRunner`]: the process runner or the container runner, chosen at run time (`watchbot local` with or
//! without `--image`), as one [`TaskRunner`] for the loop.

use super::DockerRunner;
use crate::local::process::{ProcessHandle, ProcessRunner};
use crate::ports::{Launch, PortError, TaskOutput, TaskRunner, TaskSpec, TaskState};

/// One child process per task, or one container per task.
pub enum LocalRunner {
    /// Child processes of a command.
    Process(ProcessRunner),
    /// Containers of an image.
    Docker(DockerRunner),
}

/// A [`LocalRunner`]'s handle: a child's slot or a container id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LocalHandle {
    /// A child process.
    Process(ProcessHandle),
    /// A container.
    Container(String),
}

impl std::fmt::Debug for LocalHandle {
    /// The runner's own text (`process-3`, or the container id): what events show as the task.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalHandle::Process(handle) => write!(f, "{handle}"),
            LocalHandle::Container(id) => f.write_str(id),
        }
    }
}

impl std::fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalRunner::Process(r) => f.debug_tuple("Process").field(r.config()).finish(),
            LocalRunner::Docker(r) => f.debug_tuple("Docker").field(r.config()).finish(),
        }
    }
}

fn processes(handles: &[LocalHandle]) -> Vec<ProcessHandle> {
    handles.iter().filter_map(|h| if let LocalHandle::Process(p) = h { Some(*p) } else { None }).collect()
}

fn containers(handles: &[LocalHandle]) -> Vec<String> {
    handles.iter().filter_map(|h| if let LocalHandle::Container(c) = h { Some(c.clone()) } else { None }).collect()
}

impl TaskRunner for LocalRunner {
    type Handle = LocalHandle;

    async fn find_running(&self, message_id: &str) -> Result<Option<LocalHandle>, PortError> {
        Ok(match self {
            LocalRunner::Process(r) => r.find_running(message_id).await?.map(LocalHandle::Process),
            LocalRunner::Docker(r) => r.find_running(message_id).await?.map(LocalHandle::Container),
        })
    }

    async fn launch(&self, spec: &TaskSpec) -> Result<Launch<LocalHandle>, PortError> {
        let launch = match self {
            LocalRunner::Process(r) => map_launch(r.launch(spec).await?, LocalHandle::Process),
            LocalRunner::Docker(r) => map_launch(r.launch(spec).await?, LocalHandle::Container),
        };
        Ok(launch)
    }

    async fn poll(&self, handles: &[LocalHandle]) -> Result<Vec<(LocalHandle, TaskState)>, PortError> {
        Ok(match self {
            LocalRunner::Process(r) => {
                r.poll(&processes(handles)).await?.into_iter().map(|(h, s)| (LocalHandle::Process(h), s)).collect()
            }
            LocalRunner::Docker(r) => {
                r.poll(&containers(handles)).await?.into_iter().map(|(h, s)| (LocalHandle::Container(h), s)).collect()
            }
        })
    }

    async fn stop(&self, handle: &LocalHandle, reason: &str) -> Result<(), PortError> {
        match (self, handle) {
            (LocalRunner::Process(r), LocalHandle::Process(h)) => r.stop(h, reason).await,
            (LocalRunner::Docker(r), LocalHandle::Container(h)) => r.stop(h, reason).await,
            _ => Ok(()),
        }
    }

    async fn output(&self, handle: &LocalHandle) -> TaskOutput {
        match (self, handle) {
            (LocalRunner::Process(r), LocalHandle::Process(h)) => r.output(h).await,
            (LocalRunner::Docker(r), LocalHandle::Container(h)) => r.output(h).await,
            _ => TaskOutput::Unavailable("the task is not this runner's".to_string()),
        }
    }

    async fn changed(&self) {
        match self {
            LocalRunner::Process(r) => r.changed().await,
            LocalRunner::Docker(r) => r.changed().await,
        }
    }
}

fn map_launch<H>(launch: Launch<H>, wrap: impl FnOnce(H) -> LocalHandle) -> Launch<LocalHandle> {
    match launch {
        Launch::Started(handle) => Launch::Started(wrap(handle)),
        Launch::NotPlaced { reason } => Launch::NotPlaced { reason },
    }
}
