//! AWS clients from `aws-config`'s standard chain, so `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles and credentials
//! work as users expect (and as tests use them to point at an emulator).

/// Loads the shared SDK config from the environment, profiles and instance metadata.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// A tokio runtime for a command's async work.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}
