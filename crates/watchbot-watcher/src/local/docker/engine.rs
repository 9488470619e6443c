//! The Engine's connection and its errors: connecting (with the API version negotiated), the image check and the
//! pull, and bollard's errors as one line and a [`PortErrorKind`].

use super::DockerRunnerConfig;
use crate::ports::{PortError, PortErrorKind};
use bollard::Docker;
use bollard::errors::Error;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

/// Why the runner cannot start: one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answers at the Engine's address.
    #[error("no Docker Engine answers at {host}: {error} (is the daemon running? DOCKER_HOST selects another)")]
    Unreachable {
        /// The address tried.
        host: String,
        /// What the connection said.
        error: String,
    },
    /// The image is not on this machine, and no pull was asked for.
    #[error("image {image} is not on this machine: build or load it there, or give --pull to pull it")]
    NoImage {
        /// The image.
        image: String,
    },
    /// The Engine answered with an error (a pull that failed, an address it refuses).
    #[error("the Docker Engine at {host}: {error}")]
    Engine {
        /// The Engine's address.
        host: String,
        /// What it said.
        error: String,
    },
}

impl ConnectError {
    /// Whether the cause is the image asked for (bad input), rather than the Engine or a registry (a service).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ConnectError::NoImage { .. })
    }
}

/// Connects and negotiates the API version (an engine older than bollard's speaks its own).
pub(super) async fn connect(config: &DockerRunnerConfig) -> Result<Docker, ConnectError> {
    let host = config.host().to_string();
    let unreachable = |error: &Error| ConnectError::Unreachable { host: host.clone(), error: describe(error) };
    let docker = Docker::connect_with_host(&host).map_err(|e| unreachable(&e))?;
    match docker.negotiate_version().await {
        Ok(docker) => Ok(docker),
        Err(error) if answered(&error) => Err(ConnectError::Engine { host: host.clone(), error: describe(&error) }),
        Err(error) => Err(unreachable(&error)),
    }
}

/// The image is on this machine, or pulled when the config says so.
pub(super) async fn ensure_image(docker: &Docker, config: &DockerRunnerConfig) -> Result<(), ConnectError> {
    let host = config.host().to_string();
    let image = config.image.clone();
    match docker.inspect_image(&image).await {
        Ok(_) => return Ok(()),
        Err(error) if status(&error) == Some(404) => {}
        Err(error) => return Err(ConnectError::Engine { host, error: describe(&error) }),
    }
    if !config.pull {
        return Err(ConnectError::NoImage { image });
    }
    let options = CreateImageOptionsBuilder::new().from_image(&image).build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        if let Err(error) = step {
            return Err(ConnectError::Engine { host, error: format!("cannot pull {image}: {}", describe(&error)) });
        }
    }
    Ok(())
}

/// The HTTP status of an error the Engine answered with.
pub(super) fn status(error: &Error) -> Option<u16> {
    match error {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether the Engine answered (an HTTP error), as opposed to a connection that failed or timed out.
pub(super) fn answered(error: &Error) -> bool {
    status(error).is_some() || matches!(error, Error::DockerContainerWaitError { .. })
}

/// One line: the Engine's message, or the connection error with its causes.
pub(super) fn describe(error: &Error) -> String {
    match error {
        Error::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let line = cause.to_string();
                if !text.contains(&line) {
                    text = format!("{text}: {line}");
                }
                source = cause.source();
            }
            text
        }
    }
}

/// A failed Engine call as a port error: a 404 is `NotFound`, another answer `Rejected`, no answer `Transient`.
pub(super) fn port_error(action: &str, error: &Error) -> PortError {
    let kind = match status(error) {
        Some(404) => PortErrorKind::NotFound,
        Some(code) if code >= 500 => PortErrorKind::Transient,
        Some(_) => PortErrorKind::Rejected,
        None => PortErrorKind::Transient,
    };
    PortError::new(kind, format!("{action}: {}", describe(error))).with_detail(format!("{error:?}"))
}

/// A create that failed: a missing image names it (the loop holds the message); the Engine refusing the settings
/// fails the attempt; no answer is transient.
pub(super) fn create_error(image: &str, error: &Error) -> PortError {
    match status(error) {
        Some(404) => PortError::new(
            PortErrorKind::NotFound,
            format!("image {image} is not on this machine any more: {}", describe(error)),
        ),
        // The Engine's 500 for a create is about the request too (a bad bind, an unknown runtime).
        Some(_) => PortError::new(PortErrorKind::Rejected, describe(error)),
        None => port_error("cannot create the container", error),
    }
}
