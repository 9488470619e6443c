//! The watcher's configuration from environment variables: the names the template's watcher task definition sets
//! (ARCHITECTURE.md, "The watcher's environment"). A pure function of a map, so a test can feed it the environment
//! of a generated template; the `watchbot-watcher` binary passes its process environment ([`environment`] turns it
//! into a map), and `watchbot watch` passes the same with its flags written over it.

use crate::aws::ecs::DEFAULT_RUN_TASK_PER_SECOND;
pub use crate::aws::ecs::{CapacityProviderItem, EcsRunnerConfig, LaunchType};
use crate::events::Level;
use crate::run::{OnShutdown, TaskSizeLimit, WatcherConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long deletes and receives wait to fill a batch on SQS (see [`WatcherConfig::batch_linger`]).
pub const SQS_BATCH_LINGER: Duration = Duration::from_millis(50);

/// How long a graceful stop waits for stopped tasks: below ECS's default 30 s `stopTimeout`, above the process
/// runner's 10 s SIGTERM-to-SIGKILL grace.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Where a variable is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Required in the watcher container (the template sets it); `watchbot watch` has a default or does not need it.
    Container,
    /// Required in the container and by `watchbot watch` with the ECS runner.
    Ecs,
    /// Always required.
    Always,
    /// Optional everywhere.
    Optional,
}

/// Every variable the watcher reads, and where it is required.
pub const VARIABLES: &[(&str, Need)] = &[
    ("Cluster", Need::Ecs),
    ("TaskDefinition", Need::Ecs),
    ("ContainerName", Need::Ecs),
    ("Concurrency", Need::Container),
    ("QueueUrl", Need::Always),
    ("DeadLetterQueueUrl", Need::Optional),
    // Optional even in the container: a template whose notification topic is a parameter left empty deploys a
    // watcher without one, whose notifications go to its log.
    ("NotificationTopic", Need::Optional),
    ("StackName", Need::Container),
    ("ExponentialBackoff", Need::Container),
    ("NotifyAfterRetries", Need::Container),
    ("LogLevel", Need::Container),
    ("MessageTimeout", Need::Container),
    ("WorkTopic", Need::Optional),
    ("LogGroup", Need::Optional),
    ("LaunchType", Need::Optional),
    ("Subnets", Need::Optional),
    ("SecurityGroups", Need::Optional),
    ("CapacityProviderStrategy", Need::Optional),
    ("AssignPublicIp", Need::Optional),
    ("NotifyEachFailure", Need::Optional),
];

/// Which program reads the environment: decides what is required and what has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `watchbot-watcher` binary in the watcher container: everything the template sets is required; ECS runner.
    Container,
    /// `watchbot watch`: only the queue (and, for ECS, the task settings) is required; the rest has defaults.
    Cli {
        /// The runner chosen.
        runner: RunnerKind,
    },
}

/// Which task runner (`watchbot watch --runner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    /// ECS tasks (RunTask).
    Ecs,
    /// Child processes.
    Process,
    /// Containers of an image on a Docker Engine (`local::docker`).
    Docker,
}

impl RunnerKind {
    /// Every runner, with its name and a line of help (for the CLI's flag).
    pub const ALL: [(RunnerKind, &'static str, &'static str); 3] = [
        (RunnerKind::Ecs, "ecs", "One ECS task per message (RunTask on the cluster)"),
        (RunnerKind::Process, "process", "One child process per message: the command after `--`"),
        (RunnerKind::Docker, "docker", "One container of --image per message, on the Docker Engine"),
    ];

    /// The runner's name: `ecs` or `process`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Ecs => "ecs",
            RunnerKind::Process => "process",
            RunnerKind::Docker => "docker",
        }
    }
}

impl std::fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A runner name that is neither `ecs` nor `process`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected ecs, process or docker, got {0:?}")]
pub struct UnknownRunner(pub String);

impl std::str::FromStr for RunnerKind {
    type Err = UnknownRunner;

    fn from_str(s: &str) -> Result<RunnerKind, UnknownRunner> {
        RunnerKind::ALL
            .iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(kind, _, _)| *kind)
            .ok_or_else(|| UnknownRunner(s.to_string()))
    }
}

/// A process environment as a map, lossily: a stray non-UTF-8 variable elsewhere in the environment cannot stop the
/// watcher (callers pass the variables of their process).
pub fn environment(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> BTreeMap<String, String> {
    vars.into_iter().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
}

/// Everything the watcher needs to run, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct WatcherEnv {
    /// The work queue.
    pub queue_url: String,
    /// Where messages too large to run go.
    pub dead_letter_queue_url: Option<String>,
    /// SNS topic for notifications; `None` (only in `watchbot watch`): notifications go to stderr.
    pub notification_topic: Option<String>,
    /// The ECS runner's config, when the runner is ECS.
    pub ecs: Option<EcsRunnerConfig>,
    /// How much the watcher logs.
    pub log_level: Level,
    /// The loop's config (workers, timeout, backoff, task env ...).
    pub watcher: WatcherConfig,
}

/// A missing or malformed variable: one line naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The problem of a required variable that is not set.
pub const NOT_SET: &str = "is required but not set";

fn error(name: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { name: name.to_string(), problem: problem.into() }
}

struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
    source: Source,
}

impl Reader<'_> {
    /// A variable's value; empty counts as unset (CloudFormation writes empty strings for absent options).
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ConfigError> {
        self.get(name).ok_or_else(|| error(name, NOT_SET))
    }

    /// Required in the container; elsewhere the default applies.
    fn container_or<'d>(&'d self, name: &str, default: &'d str) -> Result<&'d str, ConfigError> {
        match (self.get(name), self.source) {
            (Some(value), _) => Ok(value),
            (None, Source::Container) => Err(error(name, NOT_SET)),
            (None, Source::Cli { .. }) => Ok(default),
        }
    }
}

fn parse_u64(name: &str, value: &str, min: u64) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(error(name, format!("expected a whole number of at least {min}, got {value:?}"))),
    }
}

/// An SQS queue URL: `http(s)://<host>/<12-digit account>/<queue name>` (AWS's `https://sqs.<region>.amazonaws.com/…`,
/// or an emulator's endpoint). Anything else (a path, a `file:` URL, an ARN, a queue name) would only fail on every
/// receive, so it is refused before the first one, with what was probably meant.
pub fn check_queue_url(name: &str, value: &str) -> Result<(), ConfigError> {
    let hint = if value.starts_with("arn:") {
        " (that is an ARN; the queue URL looks like https://sqs.<region>.amazonaws.com/<account>/<name>)"
    } else if value.starts_with("file:") || value.starts_with('/') || value.starts_with('.') {
        " (that is a local path: the embedded queue runs with `watchbot local --state DIR`)"
    } else {
        " (expected https://sqs.<region>.amazonaws.com/<account>/<queue name>)"
    };
    let bad = || error(name, format!("{value:?} is not an SQS queue URL{hint}"));
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")).ok_or_else(bad)?;
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let queue_name_ok = |n: &str| {
        let base = n.strip_suffix(".fifo").unwrap_or(n);
        (1..=80).contains(&n.len()) && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match segments.as_slice() {
        [host, account, queue]
            if !host.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && queue_name_ok(queue) =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// An optional `true` or `false`.
fn parse_bool(r: &Reader<'_>, name: &str) -> Result<Option<bool>, ConfigError> {
    match r.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(error(name, format!("expected true or false, got {other:?}"))),
    }
}

fn parse_list(value: Option<&str>) -> Vec<String> {
    value.map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

/// Reads the watcher's configuration from environment variables.
pub fn from_env(vars: &BTreeMap<String, String>, source: Source) -> Result<WatcherEnv, ConfigError> {
    let r = Reader { vars, source };
    let queue_url = r.required("QueueUrl")?.to_string();
    check_queue_url("QueueUrl", &queue_url)?;
    if let Some(url) = r.get("DeadLetterQueueUrl") {
        check_queue_url("DeadLetterQueueUrl", url)?;
    }
    let workers = parse_u64("Concurrency", r.container_or("Concurrency", "1")?, 1)?;
    let workers = usize::try_from(workers).map_err(|_| error("Concurrency", "is too large"))?;
    let message_timeout = parse_u64("MessageTimeout", r.container_or("MessageTimeout", "600")?, 1)?;
    let backoff = match r.container_or("ExponentialBackoff", "true")? {
        "true" => true,
        "false" => false,
        other => return Err(error("ExponentialBackoff", format!("expected true or false, got {other:?}"))),
    };
    let notify_after_retries = parse_u64("NotifyAfterRetries", r.container_or("NotifyAfterRetries", "0")?, 0)?;
    let notify_after_retries =
        u32::try_from(notify_after_retries).map_err(|_| error("NotifyAfterRetries", "is too large"))?;
    let log_level = match r.container_or("LogLevel", "info")? {
        "info" => Level::Info,
        "debug" => Level::Debug,
        other => return Err(error("LogLevel", format!("expected info or debug, got {other:?}"))),
    };
    let stack_name = r.container_or("StackName", "watchbot")?.to_string();
    let notification_topic = r.get("NotificationTopic").map(String::from);
    let notify_each_failure = parse_bool(&r, "NotifyEachFailure")?.unwrap_or(true);
    let runner = match source {
        Source::Container => RunnerKind::Ecs,
        Source::Cli { runner } => runner,
    };
    let ecs = match runner {
        RunnerKind::Process | RunnerKind::Docker => None,
        RunnerKind::Ecs => {
            let launch_type = match r.get("LaunchType") {
                None => LaunchType::default(),
                Some(value) => value.parse::<LaunchType>().map_err(|e| error("LaunchType", e.to_string()))?,
            };
            let capacity_provider_strategy = match r.get("CapacityProviderStrategy") {
                None => Vec::new(),
                Some(text) => {
                    if r.get("LaunchType").is_some() {
                        return Err(error(
                            "CapacityProviderStrategy",
                            "give LaunchType or CapacityProviderStrategy, not both (ECS takes one)",
                        ));
                    }
                    CapacityProviderItem::parse_strategy(text).map_err(|e| error("CapacityProviderStrategy", e))?
                }
            };
            let config = EcsRunnerConfig {
                cluster: r.required("Cluster")?.to_string(),
                task_definition: r.required("TaskDefinition")?.to_string(),
                container_name: r.required("ContainerName")?.to_string(),
                launch_type,
                capacity_provider_strategy,
                subnets: parse_list(r.get("Subnets")),
                security_groups: parse_list(r.get("SecurityGroups")),
                // Fargate tasks in public subnets without a NAT need one to pull their image.
                assign_public_ip: parse_bool(&r, "AssignPublicIp")?.unwrap_or(false),
                run_task_per_second: DEFAULT_RUN_TASK_PER_SECOND,
            };
            let placement = if config.capacity_provider_strategy.is_empty() {
                "LaunchType FARGATE"
            } else {
                "a CapacityProviderStrategy of Fargate"
            };
            if config.is_fargate() && config.subnets.is_empty() {
                return Err(error("Subnets", format!("is required with {placement} (comma-separated subnet ids)")));
            }
            if !config.is_fargate() && config.assign_public_ip {
                return Err(error("AssignPublicIp", "only applies to Fargate tasks (LaunchType is EC2)"));
            }
            Some(config)
        }
    };
    let mut task_env = BTreeMap::new();
    for name in ["WorkTopic", "LogGroup"] {
        if let Some(value) = r.get(name) {
            task_env.insert(name.to_string(), value.to_string());
        }
    }
    // ECS tasks outlive a watcher's restart and are adopted by the next watcher; child processes must not, and local
    // containers are stopped like them (a killed watcher's containers are adopted by label).
    let on_shutdown = if ecs.is_some() { OnShutdown::LeaveRunning } else { OnShutdown::StopTasks };
    let task_size_limit = Some(match &ecs {
        Some(ecs) => TaskSizeLimit::ecs(&ecs.container_name),
        None => TaskSizeLimit::process(),
    });
    let watcher = WatcherConfig {
        workers,
        message_timeout: Duration::from_secs(message_timeout),
        backoff,
        notify_after_retries,
        notify_each_failure,
        stack_name,
        task_env,
        task_size_limit,
        // SQS: let deletes and receives gather into batches (fewer requests per message, a few ms of latency).
        batch_linger: SQS_BATCH_LINGER,
        // ECS kills a container 30 s after SIGTERM (default stopTimeout): finish the graceful stop well before.
        shutdown_grace: SHUTDOWN_GRACE,
        on_shutdown,
        ..WatcherConfig::default()
    };
    Ok(WatcherEnv {
        queue_url,
        dead_letter_queue_url: r.get("DeadLetterQueueUrl").map(String::from),
        notification_topic,
        ecs,
        log_level,
        watcher,
    })
}
