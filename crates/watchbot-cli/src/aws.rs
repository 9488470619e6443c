//! The CLI's one way to AWS: `aws-config`'s standard chain and the adapters, both from `watchbot_watcher::aws` (so
//! `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles and credentials work as users expect, and as tests use them to point
//! at an emulator), and SDK errors as one line with the service-failure exit class.

use crate::Failure;
pub use watchbot_watcher::aws::sdk::{Aws, load};
use watchbot_watcher::ports::PortError;

/// A tokio runtime for a command's async work.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

/// Why an AWS call failed, as one line (no credentials, unreachable, the service's code and message).
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    watchbot_watcher::aws::error::explain(error)
}

/// A failed call of an AWS adapter as a service failure: `what: why`, without the adapter's `service Operation: `
/// prefix when `what` already says it.
pub fn port_failure(what: impl std::fmt::Display, operation: &str, error: &PortError) -> Failure {
    let why = error.message.strip_prefix(operation).and_then(|rest| rest.strip_prefix(": ")).unwrap_or(&error.message);
    Failure::service(format!("{what}: {why}")).with_detail(error.detail.clone())
}

/// An adapter's error text without its `service Operation: ` prefix (`sqs ReceiveMessage: …`), for a line that
/// already says which queue or topic failed.
pub fn strip_operation(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest)) if head.split(' ').count() == 2 && head.starts_with(|c: char| c.is_ascii_lowercase()) => {
            rest
        }
        _ => message,
    }
}
