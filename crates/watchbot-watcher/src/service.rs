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

/// The ECS runner's config for these settings (default RunTask rate limit; a public IP only on Fargate, where tasks
/// in public subnets need one to pull their image).
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
