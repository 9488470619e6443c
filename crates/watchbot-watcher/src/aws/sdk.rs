//! The one place that loads `aws-config`'s standard chain and builds SDK clients, for the `watchbot-watcher` binary
//! and every command of the `watchbot` CLI: [`load`] reads `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles and
//! credentials (the only read of the process environment besides the binaries' own and `Logger::from_env`), and
//! [`Aws`] hands out the adapters (SQS queue, SNS topic, ECS runner) on clients with bounded timeouts.

use crate::aws::ecs::{EcsRunner, EcsRunnerConfig};
use crate::aws::logs::TaskLogs;
use crate::aws::sns::SnsTopic;
use crate::aws::sqs::SqsQueue;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// Longest wait for one AWS request (attempt) and for a call with its retries: a call that hangs (a stalled
/// connection, a black-holed endpoint) must not freeze the loop, whose heartbeats, polls and SIGTERM handling wait
/// behind it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`ATTEMPT_TIMEOUT`].
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// SQS attempts outlast the 20 s long poll of ReceiveMessage.
pub const SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(25);
/// Room for a retry of a long poll.
pub const SQS_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeouts of every AWS client but SQS's.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The timeouts of the SQS client.
pub fn sqs_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(SQS_ATTEMPT_TIMEOUT)
        .operation_timeout(SQS_OPERATION_TIMEOUT)
        .build()
}

/// The shared SDK configuration and the adapters built on it.
#[derive(Debug, Clone)]
pub struct Aws {
    sdk: aws_config::SdkConfig,
}

/// Loads the SDK configuration from `aws-config`'s standard chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles,
/// credentials), with [`timeouts`]. Nothing is requested yet: missing credentials show on the first call.
pub async fn load() -> Aws {
    Aws::new(aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts()).load().await)
}

impl Aws {
    /// Adapters on a configuration the caller built (tests point one at an emulator).
    pub fn new(sdk: aws_config::SdkConfig) -> Aws {
        Aws { sdk }
    }

    /// The SDK configuration (for libraries that build their own clients, such as the progress store).
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    /// The SQS queue at `url`, on a client with [`sqs_timeouts`] (long enough for a long poll).
    pub fn queue(&self, url: impl Into<String>) -> SqsQueue {
        SqsQueue::new(sqs_client(&self.sdk), url.into())
    }

    /// The SNS topic `arn`.
    pub fn topic(&self, arn: impl Into<String>) -> SnsTopic {
        SnsTopic::new(aws_sdk_sns::Client::new(&self.sdk), arn.into())
    }

    /// The ECS runner for `config`; with a log group, it reads stopped tasks' output from their awslogs streams
    /// (the template's stream prefix: the container's name).
    pub fn ecs_runner(&self, config: EcsRunnerConfig, log_group: Option<&str>) -> EcsRunner {
        let logs = log_group.map(|group| self.task_logs(group, &config.container_name, &config.container_name));
        let runner = EcsRunner::new(aws_sdk_ecs::Client::new(&self.sdk), config);
        match logs {
            Some(logs) => runner.with_logs(logs),
            None => runner,
        }
    }

    /// A stack's outcome metrics (the namespace `Watchbot/<stack name>`), for the dashboard's chart.
    pub fn metric_outcomes(&self, stack_name: &str) -> crate::aws::metrics::MetricOutcomes {
        crate::aws::metrics::MetricOutcomes::new(
            aws_sdk_cloudwatch::Client::new(&self.sdk),
            crate::aws::metrics::namespace(stack_name),
        )
    }

    /// The ECS tasks' log streams in `group` (`<stream_prefix>/<container>/<task id>`).
    pub fn task_logs(&self, group: &str, stream_prefix: &str, container: &str) -> TaskLogs {
        TaskLogs::new(aws_sdk_cloudwatchlogs::Client::new(&self.sdk), group, stream_prefix, container)
    }
}

/// An SQS client on `sdk` with [`sqs_timeouts`].
pub(crate) fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).timeout_config(sqs_timeouts()).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::Region;

    /// An endpoint that accepts connections and never answers.
    async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (format!("http://{address}"), server)
    }

    async fn sdk_on(endpoint: &str, timeouts: TimeoutConfig) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(timeouts)
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .load()
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_to_an_endpoint_that_never_answers_times_out() {
        let (endpoint, server) = silent_endpoint().await;
        let sdk = sdk_on(&endpoint, timeouts()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(600), ecs.list_tasks().cluster("c").send()).await;
        let error = result.expect("the call ends by itself").expect_err("no answer");
        assert!(format!("{error:?}").contains("Timeout"), "{error:?}");
        assert!(started.elapsed() <= OPERATION_TIMEOUT + Duration::from_secs(1), "{:?}", started.elapsed());
        // SQS: a 20 s long poll is not cut short, yet a hung one ends.
        let sqs = sqs_client(&sdk);
        let started = tokio::time::Instant::now();
        let receive = sqs.receive_message().queue_url(format!("{endpoint}/q")).wait_time_seconds(20).send();
        let result = tokio::time::timeout(Duration::from_secs(600), receive).await;
        result.expect("the call ends by itself").expect_err("no answer");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= SQS_ATTEMPT_TIMEOUT && elapsed <= SQS_OPERATION_TIMEOUT + Duration::from_secs(1),
            "{elapsed:?}"
        );
        server.abort();
    }
}
