//! SDK errors as one line a person can act on, and as [`PortError`]s the loop can classify.
//!
//! [`explain`] walks an error's causes and names the first one that says what to do: no credentials configured,
//! the endpoint unreachable, a timeout, or the service's own code and message. It never prints the SDK's `Debug`
//! dump. `port_error` uses it for the adapters: missing credentials are `Rejected` (retrying unchanged cannot
//! help, so a watcher stops at start instead of polling for ever), other failures to send are `Transient`.

use crate::ports::{PortError, PortErrorKind};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ConnectorError, ErrorMetadata, ProvideErrorMetadata, SdkError};
use std::error::Error;

/// What to do when no credentials are found, shown with that error.
pub const NO_CREDENTIALS: &str =
    "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";
const NO_CREDENTIALS_HELP: &str = "check AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";

fn causes<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// Whether the error's causes include "no credentials provider in the chain had any": a configuration problem.
/// Every credentials error but a provider's timeout counts: none of them goes away by retrying the same call.
pub fn is_missing_credentials(error: &(dyn Error + 'static)) -> bool {
    causes(error).any(|e| {
        e.downcast_ref::<CredentialsError>().is_some_and(|c| !matches!(c, CredentialsError::ProviderTimedOut(_)))
    })
}

/// One line, lowercase, saying why an AWS call failed (see the module docs).
pub fn explain(error: &(dyn Error + 'static)) -> String {
    for cause in causes(error) {
        if let Some(credentials) = cause.downcast_ref::<CredentialsError>() {
            return match credentials {
                CredentialsError::CredentialsNotLoaded(_) => NO_CREDENTIALS.to_string(),
                CredentialsError::ProviderTimedOut(_) => {
                    format!("the AWS credentials provider timed out; {}", NO_CREDENTIALS_HELP)
                }
                // The standard chain ends with the EC2 instance metadata service: its failure means nothing else
                // on this machine configured credentials.
                other if chain_text(other).contains("IMDS") => NO_CREDENTIALS.to_string(),
                other => format!("cannot load AWS credentials: {} ({})", chain_text(other), NO_CREDENTIALS_HELP),
            };
        }
    }
    for cause in causes(error) {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return format!("cannot connect to AWS: {}", io_text(io));
        }
        if let Some(connector) = cause.downcast_ref::<ConnectorError>()
            && connector.is_timeout()
        {
            return "timed out connecting to AWS".to_string();
        }
        if let Some(metadata) = cause.downcast_ref::<ErrorMetadata>() {
            return service_text(metadata.code(), metadata.message());
        }
    }
    chain_text(error)
}

/// `message (Code)`, or what there is of it.
fn service_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code.filter(|c| !c.is_empty()), message.filter(|m| !m.is_empty())) {
        (Some(code), Some(message)) => format!("{message} ({code})"),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => message.to_string(),
        (None, None) => "the service refused the request".to_string(),
    }
}

fn io_text(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => lowercase_first(&error.to_string()),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() && !chars.clone().next().is_some_and(char::is_uppercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

/// The causes' texts joined with `: `, skipping the SDK's generic layers and repeats; one line.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    const GENERIC: &[&str] = &["service error", "dispatch failure", "response error", "other", "io error"];
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string().replace('\n', " ");
        let text = text.trim();
        if text.is_empty() || GENERIC.contains(&text) || parts.iter().any(|p| p.contains(text)) {
            continue;
        }
        parts.push(text.to_string());
    }
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}

/// Classifies an SQS/SNS error code; `None` when the code alone does not say.
pub(crate) fn classify_code(code: &str, message: &str) -> Option<PortErrorKind> {
    let kind = match code {
        "ReceiptHandleIsInvalid" | "MessageNotInflight" | "AWS.SimpleQueueService.MessageNotInflight" => {
            PortErrorKind::InvalidReceipt
        }
        // Real SQS answers a stale handle's visibility change with InvalidParameterValue and this reason.
        "InvalidParameterValue" if message.contains("not available for visibility timeout change") => {
            PortErrorKind::InvalidReceipt
        }
        "InvalidParameterValue" if message.to_ascii_lowercase().contains("receipt handle") => {
            PortErrorKind::InvalidReceipt
        }
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "NotFound" | "NotFoundException" => {
            PortErrorKind::NotFound
        }
        "RequestThrottled"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "KMSThrottlingException"
        | "ServiceUnavailable"
        | "InternalError"
        | "InternalFailure"
        | "InternalErrorException" => PortErrorKind::Transient,
        _ => return None,
    };
    Some(kind)
}

/// The kind of an error that happened before any answer (the request could not be built or sent): missing
/// credentials and requests the SDK refused to build are `Rejected`, the rest (network, timeouts) `Transient`.
pub(crate) fn unsent_kind<E, R>(error: &SdkError<E, R>) -> PortErrorKind
where
    E: Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error {
        SdkError::ConstructionFailure(_) => PortErrorKind::Rejected,
        SdkError::DispatchFailure(failure) if failure.is_user() => PortErrorKind::Rejected,
        _ if is_missing_credentials(error) => PortErrorKind::Rejected,
        _ => PortErrorKind::Transient,
    }
}

/// Maps an SDK error of SQS or SNS to a [`PortError`]: `operation: what went wrong`.
pub(crate) fn port_error<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    port_error_text(operation, error).with_detail(format!("{error:?}"))
}

fn port_error_text<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match error {
        SdkError::TimeoutError(_) => PortError::transient(format!("{operation}: timed out")),
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            PortError::new(unsent_kind(error), format!("{operation}: {}", explain(error)))
        }
        _ => {
            let code = error.code().unwrap_or("");
            let message = error.message().unwrap_or("");
            let status = error.raw_response().map(|r| r.status().as_u16());
            let kind = classify_code(code, message).unwrap_or(match status {
                Some(429) | Some(500..=599) | None => PortErrorKind::Transient,
                Some(404) => PortErrorKind::NotFound,
                Some(_) => PortErrorKind::Rejected,
            });
            let text = if code.is_empty() && message.is_empty() {
                explain(error)
            } else {
                service_text(Some(code), Some(message))
            };
            PortError::new(kind, format!("{operation}: {text}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;

    #[test]
    fn missing_credentials_say_what_to_set() {
        let error = CredentialsError::not_loaded("no providers in chain provided credentials");
        assert_eq!(explain(&error), NO_CREDENTIALS);
        assert!(is_missing_credentials(&error));
        let connector = ConnectorError::other(Box::new(error), None);
        assert_eq!(explain(&connector), NO_CREDENTIALS);
        assert!(is_missing_credentials(&connector));
        assert!(!is_missing_credentials(&CredentialsError::provider_timed_out(std::time::Duration::from_secs(1))));
    }

    #[test]
    fn network_errors_name_the_cause_in_one_line() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connector = ConnectorError::io(Box::new(refused));
        assert_eq!(explain(&connector), "cannot connect to AWS: connection refused");
        let metadata = ErrorMetadata::builder().code("AccessDeniedException").message("not allowed").build();
        assert_eq!(explain(&metadata), "not allowed (AccessDeniedException)");
        assert_eq!(lowercase_first("Broken pipe"), "broken pipe");
        assert_eq!(lowercase_first("SDK said"), "SDK said");
    }

    #[test]
    fn codes_classify() {
        assert_eq!(classify_code("ReceiptHandleIsInvalid", ""), Some(PortErrorKind::InvalidReceipt));
        assert_eq!(
            classify_code(
                "InvalidParameterValue",
                "Value x for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available \
                 for visibility timeout change."
            ),
            Some(PortErrorKind::InvalidReceipt)
        );
        assert_eq!(classify_code("AWS.SimpleQueueService.NonExistentQueue", ""), Some(PortErrorKind::NotFound));
        assert_eq!(classify_code("RequestThrottled", ""), Some(PortErrorKind::Transient));
        assert_eq!(classify_code("InvalidParameterValue", "delay too long"), None);
    }
}
