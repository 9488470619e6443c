//! Running the watcher as a service, shared by the `watchbot-watcher` binary and `watchbot watch`: [`serve_env`] is
//! the one wiring, environment map → config ([`crate::config::from_env`]) → SDK clients and adapters
//! ([`crate::aws::sdk`]: the SQS queue, the SNS notifier or the log when no topic is configured, the ECS runner or
//! child processes) → the loop, stopped gracefully by SIGTERM/SIGINT. [`Exit`] is the exit-code contract of
//! watchbot's own programs (README, "Exit codes of the commands").
//!
//! No SDK type is named here: clients are built in `aws::sdk`.

use crate::aws::sns::SnsTopic;
use crate::aws::sqs::SqsQueue;
use crate::config::{ConfigError, RunnerKind, Source, WatcherEnv};
use crate::events::{Event, EventSink, StderrJson};
use crate::local::process::{ProcessRunner, ProcessRunnerConfig};
use crate::output::OutputConfig;
use crate::ports::{Notification, Notifier, PortError, TaskRunner};
use crate::run::{Error, Ports, RunSummary, run};
use std::collections::BTreeMap;
use std::future::Future;

/// The classes of exit codes of watchbot's own programs (`watchbot` and each of its commands, `watchbot-watcher`,
/// `watchbot-progress`, `watchbot-log`), as opposed to a task's exit code. None is 3 or 4 (nor 0 for a failure): a
/// worker script that stops on a failed `watchbot` command (`set -e`) passes the code on as its own, and the watcher
/// must then return its message with a notification, never delete it (3) or return it quietly (4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: bad input or configuration (a file, an option, an environment variable, a message), a refusal about the
    /// data itself (an unknown job, a part out of range), or any other failure not below.
    BadInput,
    /// 2: usage: the command line does not parse (clap's own code).
    Usage,
    /// 69 (sysexits' `EX_UNAVAILABLE`): a service could not be reached or used: AWS unreachable, no credentials,
    /// access denied, no such queue, topic or table.
    Service,
}

impl Exit {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::BadInput => 1,
            Exit::Usage => 2,
            Exit::Service => 69,
        }
    }
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

/// Which program serves, and how it runs tasks.
#[derive(Debug, Clone)]
pub enum Program {
    /// The `watchbot-watcher` binary in the watcher container: everything the template sets is required; ECS tasks.
    Container,
    /// `watchbot watch --runner ecs`.
    WatchEcs,
    /// `watchbot watch --runner process -- COMMAND`: one child process of this command per message.
    WatchProcess(ProcessRunnerConfig),
    /// `watchbot watch --runner docker --image IMAGE`: one container of the image per message.
    #[cfg(feature = "docker")]
    WatchDocker(crate::local::docker::DockerRunnerConfig),
}

impl Program {
    /// What [`crate::config::from_env`] requires of the environment for this program.
    pub fn source(&self) -> Source {
        match self {
            Program::Container => Source::Container,
            Program::WatchEcs => Source::Cli { runner: RunnerKind::Ecs },
            Program::WatchProcess(_) => Source::Cli { runner: RunnerKind::Process },
            #[cfg(feature = "docker")]
            Program::WatchDocker(_) => Source::Cli { runner: RunnerKind::Docker },
        }
    }
}

/// Why a service stopped before or instead of a graceful stop: one line, and its [`Exit`] class.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A missing or malformed environment variable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The loop's config makes no sense.
    #[error(transparent)]
    Invalid(Error),
    /// The container runner cannot start: no Engine answers, or the image is not there.
    #[cfg(feature = "docker")]
    #[error(transparent)]
    Docker(crate::local::docker::ConnectError),
    /// The work queue could not be read at start (no such queue, access denied, no credentials).
    #[error("cannot receive from the work queue {url} (QueueUrl): {error}")]
    Queue {
        /// The queue's URL.
        url: String,
        /// What SQS (or the SDK) said.
        #[source]
        error: PortError,
    },
}

impl ServiceError {
    /// The exit class: a service failure for the queue, bad input or configuration otherwise.
    pub fn exit(&self) -> Exit {
        match self {
            ServiceError::Queue { .. } => Exit::Service,
            #[cfg(feature = "docker")]
            ServiceError::Docker(error) if error.is_bad_input() => Exit::BadInput,
            #[cfg(feature = "docker")]
            ServiceError::Docker(_) => Exit::Service,
            ServiceError::Config(_) | ServiceError::Runtime(_) | ServiceError::Invalid(_) => Exit::BadInput,
        }
    }
}

/// The whole service: reads the config from `vars` (a process environment, maybe with flags written over it), loads
/// `aws-config`'s chain, builds the adapters and runs the loop until SIGTERM or SIGINT. Blocks; starts its own
/// runtime.
pub fn serve_env(vars: &BTreeMap<String, String>, program: Program) -> Result<RunSummary, ServiceError> {
    let env = crate::config::from_env(vars, program.source())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    let result = runtime.block_on(async {
        // The Engine and the image before anything else: without them no message may be received.
        #[cfg(feature = "docker")]
        let mut docker = match &program {
            Program::WatchDocker(config) => {
                let output = OutputConfig { format: watchbot_log::Format::Json, ..OutputConfig::default() };
                match crate::local::docker::DockerRunner::connect(config.clone()).await {
                    Ok(runner) => Some(runner.with_output(output)),
                    Err(error) => return Err(Started::Docker(error)),
                }
            }
            _ => None,
        };
        let aws = crate::aws::sdk::load().await;
        let queue = aws.queue(env.queue_url.clone());
        let env = with_redrive_policy(&queue, env.clone()).await;
        let dead_letter = env.dead_letter_queue_url.clone().map(|url| aws.queue(url));
        let notifier = match &env.notification_topic {
            Some(arn) => ServiceNotifier::Sns(aws.topic(arn.clone())),
            None => ServiceNotifier::Log,
        };
        let served = match (program, &env.ecs) {
            #[cfg(feature = "docker")]
            (Program::WatchDocker(_), _) => match docker.take() {
                Some(runner) => serve(Service { queue, dead_letter, notifier, runner }, &env).await,
                None => Err(Error::Config("the container runner did not connect".to_string())),
            },
            (Program::WatchProcess(config), _) => {
                // The watcher logs JSON lines: the tasks' lines are JSON lines too, with their message id.
                let output = OutputConfig { format: watchbot_log::Format::Json, ..OutputConfig::default() };
                let runner = ProcessRunner::new(config).with_output(output);
                serve(Service { queue, dead_letter, notifier, runner }, &env).await
            }
            (Program::Container | Program::WatchEcs, Some(ecs)) => {
                let runner = aws.ecs_runner(ecs.clone(), env.watcher.task_env.get("LogGroup").map(String::as_str));
                serve(Service { queue, dead_letter, notifier, runner }, &env).await
            }
            (Program::Container | Program::WatchEcs, None) => {
                Err(Error::Config("the ECS runner has no ECS settings".to_string()))
            }
        };
        served.map_err(Started::Loop)
    });
    result.map_err(|error| match error {
        Started::Loop(Error::Queue(error)) => ServiceError::Queue { url: env.queue_url.clone(), error },
        Started::Loop(other) => ServiceError::Invalid(other),
        #[cfg(feature = "docker")]
        Started::Docker(error) => ServiceError::Docker(error),
    })
}

/// Why the service's runtime ended before a graceful stop.
enum Started {
    Loop(Error),
    #[cfg(feature = "docker")]
    Docker(crate::local::docker::ConnectError),
}

/// The config with what the work queue's `RedrivePolicy` says (`maxReceiveCount`, so the loop knows a message's last
/// receive) and the queue's flags for redrive hints. A policy that cannot be read is a warning, not a stop: the first
/// receive says whether the queue can be used at all.
pub async fn with_redrive_policy(queue: &SqsQueue, mut env: WatcherEnv) -> WatcherEnv {
    env.watcher.queue_flags = format!("--queue-url {}", env.queue_url);
    match queue.redrive_policy().await {
        Ok(policy) => env.watcher.max_receive_count = policy.map(|p| p.max_receive_count),
        // No such queue: the first receive says so, in the one line that ends the watcher.
        Err(error) if error.kind == crate::ports::PortErrorKind::NotFound => {}
        Err(error) => StderrJson { level: env.log_level }.emit(&Event::Error {
            action: "read_redrive_policy".to_string(),
            message_id: None,
            error: format!(
                "{} (failures on a message's last receive will not say that the dead-letter queue is next)",
                error.message
            ),
        }),
    }
    env
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
