//! AWS clients from `aws-config`'s standard chain, so `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles and credentials
//! work as users expect (and as tests use them to point at an emulator).

/// Loads the shared SDK config from the environment, profiles and instance metadata, with the watcher's timeouts
/// (no call hangs for ever; see `watchbot_watcher::service::timeouts`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    watchbot_watcher::service::sdk_config().await
}

/// An SQS client whose timeouts allow ReceiveMessage's 20 s long poll.
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    watchbot_watcher::service::sqs_client(sdk)
}

/// A tokio runtime for a command's async work.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}
