//! The one error type of the CLI: a line for stderr and an exit code of [`Exit`]'s classes (README, "Exit codes of
//! the commands"): bad input or configuration (1) unless built with [`Failure::service`] (69).

use watchbot_watcher::ports::PortError;
pub use watchbot_watcher::service::Exit;

use std::fmt;

/// Why a command failed: printed as one line on stderr, with its exit class ([`Exit::BadInput`] unless said
/// otherwise).
#[derive(Debug)]
pub struct Failure {
    message: String,
    exit: Exit,
    detail: Option<String>,
}

impl Failure {
    /// Bad input or configuration: exit code 1.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit: Exit::BadInput, detail: None }
    }

    /// A service that could not be reached or used (AWS unreachable, no credentials, access denied, no such queue,
    /// topic or table): exit code 69.
    pub fn service(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit: Exit::Service, detail: None }
    }

    /// A failure from an error, its causes joined with `: ` so the line explains itself.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Failure {
        let mut message = error.to_string();
        let mut detail = None;
        let mut source = error.source();
        if let Some(port) = error.downcast_ref::<PortError>() {
            detail = port.detail.clone();
        }
        while let Some(cause) = source {
            if let Some(port) = cause.downcast_ref::<PortError>() {
                detail = detail.or_else(|| port.detail.clone());
            }
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Failure { detail, ..Failure::new(message) }
    }

    /// Keeps the underlying error in full, printed only when `WATCHBOT_DEBUG` is set.
    pub fn with_detail(mut self, detail: Option<String>) -> Failure {
        self.detail = detail;
        self
    }

    /// The underlying error in full (an SDK error's `Debug` form), when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Adds context in front: `context: message`.
    pub fn context(mut self, context: impl fmt::Display) -> Failure {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Sets the exit class.
    pub fn with_exit(mut self, exit: Exit) -> Failure {
        self.exit = exit;
        self
    }

    /// The exit class of this failure.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        self.exit.code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always one line: a multi-line cause is folded.
        let line = self.message.replace('\n', " ");
        f.write_str(line.trim())
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::from_error(&error)
    }
}
