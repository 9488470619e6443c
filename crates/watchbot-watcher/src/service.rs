//! Running the watcher as a service, shared by the `watchbot-watcher` binary and `watchbot watch`: the SQS queue,
//! the SNS notifier (or the log when no topic is configured), a runner, the config read from the environment, and
//! SIGTERM/SIGINT as the graceful stop. The callers build the SDK clients (from `aws-config`'s standard chain) and
//! the adapters; everything after that is here, once.

use crate::aws::ecs::{DEFAULT_RUN_TASK_PER_SECOND, EcsRunnerConfig};
use crate::aws::sns::SnsTopic;
use crate::aws::sqs::SqsQueue;
use crate::config::{EcsSettings, WatcherEnv};
use crate::events::{Event, EventSink, StderrJson};
use crate::ports::{Notification, Notifier, PortError, TaskRunner};
use crate::run::{Error, Ports, RunSummary, run};
use std::future::Future;
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
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The timeouts of the SQS client.
pub fn sqs_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(SQS_ATTEMPT_TIMEOUT)
        .operation_timeout(SQS_OPERATION_TIMEOUT)
        .build()
}

/// The SDK config from `aws-config`'s standard chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, credentials), with
/// [`timeouts`]. Shared by the `watchbot-watcher` binary and the `watchbot` CLI.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts()).load().await
}

/// An SQS client on `sdk` with [`sqs_timeouts`] (long enough for a long poll).
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).timeout_config(sqs_timeouts()).build())
}

/// Notifications to SNS, or, with no topic configured, to the log (one JSON line on stderr each).
#[derive(Debug, Clone)]
pub enum ServiceNotifier {
    /// An SNS topic.
    Sns(SnsTopic),
    /// The event log.
    Log,
}

impl Notifier for ServiceNotifier {
    fn notify(&self, notification: &Notification) -> impl Future<Output = Result<(), PortError>> + Send {
        let notification = notification.clone();
        async move {
            match self {
                ServiceNotifier::Sns(topic) => topic.notify(&notification).await,
                ServiceNotifier::Log => {
                    StderrJson { level: crate::events::Level::Debug }.emit(&Event::Notification {
                        message_id: String::new(),
                        subject: notification.subject,
                        body: notification.body,
                    });
                    Ok(())
                }
            }
        }
    }
}

/// The adapters a service runs on.
#[derive(Debug)]
pub struct Service<R> {
    /// The work queue.
    pub queue: SqsQueue,
    /// The dead-letter queue, when `DeadLetterQueueUrl` is set.
    pub dead_letter: Option<SqsQueue>,
    /// Where notifications go.
    pub notifier: ServiceNotifier,
    /// The task runner.
    pub runner: R,
}

/// The ECS runner's config for these settings: the default RunTask rate limit, and no public IP (Fargate tasks in
/// public subnets without a NAT need one to pull their image; the environment has no setting for it yet).
pub fn ecs_runner_config(settings: &EcsSettings) -> EcsRunnerConfig {
    EcsRunnerConfig {
        cluster: settings.cluster.clone(),
        task_definition: settings.task_definition.clone(),
        container_name: settings.container_name.clone(),
        launch_type: settings.launch_type,
        subnets: settings.subnets.clone(),
        security_groups: settings.security_groups.clone(),
        assign_public_ip: false,
        run_task_per_second: DEFAULT_RUN_TASK_PER_SECOND,
    }
}

/// Runs the loop on these adapters until SIGTERM or SIGINT, with events as JSON lines on stderr at `LogLevel`.
pub async fn serve<R: TaskRunner>(service: Service<R>, env: &WatcherEnv) -> Result<RunSummary, Error> {
    serve_until(service, env, shutdown_signal()).await
}

/// [`serve`] with the stop given by the caller.
pub async fn serve_until<R: TaskRunner>(
    service: Service<R>,
    env: &WatcherEnv,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, Error> {
    let sink = StderrJson { level: env.log_level };
    let ports = Ports::new(service.queue, service.runner, service.notifier).with_events(sink);
    match service.dead_letter {
        Some(dead_letter) => run(ports.with_dead_letter(dead_letter), &env.watcher, shutdown).await,
        None => run(ports, &env.watcher, shutdown).await,
    }
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this is called (inside a runtime), so
/// a signal that comes before the future is first polled still counts. If they cannot be installed, never resolves
/// (the process can still be killed) rather than stopping the watcher at once.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let streams = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = streams else {
            return std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::Region;
    use aws_config::timeout::TimeoutConfig;

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
