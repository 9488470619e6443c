//! `watchbot watch`: the watcher loop on SQS, with ECS tasks or local child processes.
//!
//! Configured like the `watchbot-watcher` container, by the same environment variables (`QueueUrl`, `Concurrency`,
//! ...); each flag writes over its variable, then the watcher's own parser reads the result, so the two cannot
//! disagree; the wiring after that is the watcher binary's own (`watchbot_watcher::service::serve_env`). Exits 0
//! after a graceful stop (SIGTERM/SIGINT), 1 on a configuration error, 69 when the work queue cannot be read at
//! start (no such queue, access denied, no credentials).

use crate::Failure;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use watchbot_watcher::config::{self, RunnerKind, WatcherEnv};
use watchbot_watcher::local::process::ProcessRunnerConfig;
use watchbot_watcher::service::{self, Program, ServiceError};

/// `--runner`: the watcher's own [`RunnerKind`], by its names.
fn runner_parser() -> impl TypedValueParser<Value = RunnerKind> {
    PossibleValuesParser::new(RunnerKind::ALL.map(|(_, name, help)| PossibleValue::new(name).help(help)))
        .try_map(|name| name.parse::<RunnerKind>())
}

/// Arguments of `watchbot watch`. Every flag overrides the environment variable named in its help.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where tasks run.
    #[arg(long, value_parser = runner_parser(), default_value = "ecs")]
    pub runner: RunnerKind,
    /// The work queue's URL [env: QueueUrl].
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// Where messages too large to run go [env: DeadLetterQueueUrl].
    #[arg(long, value_name = "URL")]
    pub dead_letter_queue_url: Option<String>,
    /// SNS topic for failure notifications; without one they are logged [env: NotificationTopic].
    #[arg(long, value_name = "ARN")]
    pub notification_topic: Option<String>,
    /// Tasks at once [env: Concurrency; default 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<u64>,
    /// ECS cluster [env: Cluster].
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// ECS worker task definition [env: TaskDefinition].
    #[arg(long, value_name = "TD")]
    pub task_definition: Option<String>,
    /// The worker container's name in the task definition [env: ContainerName].
    #[arg(long, value_name = "NAME")]
    pub container_name: Option<String>,
    /// EC2 or FARGATE [env: LaunchType; default EC2].
    #[arg(long, value_name = "TYPE")]
    pub launch_type: Option<String>,
    /// Comma-separated subnet ids, for FARGATE [env: Subnets].
    #[arg(long, value_name = "IDS")]
    pub subnets: Option<String>,
    /// Comma-separated security group ids, for FARGATE [env: SecurityGroups].
    #[arg(long, value_name = "IDS")]
    pub security_groups: Option<String>,
    /// Capacity providers instead of a launch type, NAME:WEIGHT:BASE,... (WEIGHT and BASE optional), e.g. FARGATE_SPOT:3,FARGATE:1:1
    /// [env: CapacityProviderStrategy].
    #[arg(long, value_name = "STRATEGY")]
    pub capacity_provider_strategy: Option<String>,
    /// Give Fargate tasks a public IP [env: AssignPublicIp=true].
    #[arg(long)]
    pub assign_public_ip: bool,
    /// Stack name, for notification subjects [env: StackName; default watchbot].
    #[arg(long, value_name = "S")]
    pub stack_name: Option<String>,
    /// Seconds a task may run before it is stopped and counted as failed [env: MessageTimeout; default 600].
    #[arg(long, value_name = "SECS")]
    pub message_timeout: Option<u64>,
    /// Return failed messages at once instead of after about 2^receiveCount seconds [env: ExponentialBackoff=false].
    #[arg(long)]
    pub no_backoff: bool,
    /// Stay silent about failures while the receive count is at most N [env: NotifyAfterRetries; default 0].
    #[arg(long, value_name = "N")]
    pub notify_after_retries: Option<u64>,
    /// Notify rejections and dead-lettering only, not each failure [env: NotifyEachFailure=false].
    #[arg(long)]
    pub no_notify_each_failure: bool,
    /// Each message as a container of an image, for `--runner docker`.
    #[command(flatten)]
    pub container: crate::container::ImageArgs,
    /// The worker command and its arguments, for `--runner process` (for `--runner docker`: overrides the image's
    /// CMD).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl Args {
    /// The flags given, as (environment variable, flag, value).
    fn overrides(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut vars = Vec::new();
        let mut set = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                let flag = FLAGS.iter().find(|(n, _)| *n == name).map_or(name, |(_, flag)| *flag);
                vars.push((name, flag, value));
            }
        };
        set("QueueUrl", self.queue_url.clone());
        set("DeadLetterQueueUrl", self.dead_letter_queue_url.clone());
        set("NotificationTopic", self.notification_topic.clone());
        set("Concurrency", self.workers.map(|n| n.to_string()));
        set("Cluster", self.cluster.clone());
        set("TaskDefinition", self.task_definition.clone());
        set("ContainerName", self.container_name.clone());
        set("LaunchType", self.launch_type.clone());
        set("Subnets", self.subnets.clone());
        set("SecurityGroups", self.security_groups.clone());
        set("CapacityProviderStrategy", self.capacity_provider_strategy.clone());
        set("AssignPublicIp", self.assign_public_ip.then(|| "true".to_string()));
        set("StackName", self.stack_name.clone());
        set("MessageTimeout", self.message_timeout.map(|n| n.to_string()));
        set("ExponentialBackoff", self.no_backoff.then(|| "false".to_string()));
        set("NotifyAfterRetries", self.notify_after_retries.map(|n| n.to_string()));
        set("NotifyEachFailure", self.no_notify_each_failure.then(|| "false".to_string()));
        vars
    }
}

/// The environment the watcher reads: the process environment with the flags written over it, and the program
/// (runner and command) to serve it with.
pub fn wiring(
    args: &Args,
    environment: BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, Program), Failure> {
    let mut vars = environment;
    for (name, _, value) in args.overrides() {
        vars.insert(name.to_string(), value);
    }
    if args.container.image.is_some() && args.runner != RunnerKind::Docker {
        return Err(Failure::new("--image is only for --runner docker"));
    }
    let program = match (args.runner, args.command.split_first()) {
        (RunnerKind::Docker, _) => {
            let Some(image) = &args.container.image else {
                return Err(Failure::new("--runner docker needs --image IMAGE"));
            };
            let stack = vars.get("StackName").map_or("watchbot", String::as_str);
            let host = vars.get("DOCKER_HOST").cloned();
            let config = crate::container::runner_config(&args.container, image, &args.command, stack, host)?;
            Program::WatchDocker(config)
        }
        (RunnerKind::Process, None) => {
            return Err(Failure::new("--runner process needs the worker command after `--`"));
        }
        (RunnerKind::Ecs, Some(_)) => {
            return Err(Failure::new(
                "a command after `--` is only for --runner process or docker (ECS runs the task definition)",
            ));
        }
        (RunnerKind::Process, Some((program, rest))) => {
            Program::WatchProcess(ProcessRunnerConfig::new(PathBuf::from(program), rest.to_vec()))
        }
        (RunnerKind::Ecs, None) => Program::WatchEcs,
    };
    Ok((vars, program))
}

/// A bad value the user gave as a flag is named as that flag, not as the variable it stands for.
/// A variable that is missing names the flag that sets it too.
fn config_failure(args: &Args, error: &config::ConfigError) -> Failure {
    if let Some((_, flag, _)) = args.overrides().iter().find(|(name, _, _)| *name == error.name) {
        return Failure::new(format!("{flag}: {}", error.problem));
    }
    match FLAGS.iter().find(|(name, _)| *name == error.name) {
        Some((name, flag)) if error.problem == config::NOT_SET => {
            Failure::new(format!("{flag} (or environment variable {name}) is required but not set"))
        }
        _ => Failure::from_error(error),
    }
}

/// The variable each flag sets.
const FLAGS: &[(&str, &str)] = &[
    ("QueueUrl", "--queue-url"),
    ("DeadLetterQueueUrl", "--dead-letter-queue-url"),
    ("NotificationTopic", "--notification-topic"),
    ("Concurrency", "--workers"),
    ("Cluster", "--cluster"),
    ("TaskDefinition", "--task-definition"),
    ("ContainerName", "--container-name"),
    ("LaunchType", "--launch-type"),
    ("Subnets", "--subnets"),
    ("SecurityGroups", "--security-groups"),
    ("CapacityProviderStrategy", "--capacity-provider-strategy"),
    ("AssignPublicIp", "--assign-public-ip"),
    ("StackName", "--stack-name"),
    ("MessageTimeout", "--message-timeout"),
    ("ExponentialBackoff", "--no-backoff"),
    ("NotifyAfterRetries", "--notify-after-retries"),
    ("NotifyEachFailure", "--no-notify-each-failure"),
];

/// The watcher's configuration for these flags and environment (what [`run`] serves with).
pub fn watcher_env(args: &Args, environment: BTreeMap<String, String>) -> Result<WatcherEnv, Failure> {
    let (vars, program) = wiring(args, environment)?;
    config::from_env(&vars, program.source()).map_err(|e| config_failure(args, &e))
}

/// Runs `watchbot watch`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let (vars, program) = wiring(&args, config::environment(std::env::vars_os()))?;
    // The configuration first, then a worker that cannot start (a typo, a script whose interpreter is missing):
    // both fail here, before any receive.
    config::from_env(&vars, program.source()).map_err(|e| config_failure(&args, &e))?;
    if let Program::WatchProcess(process) = &program {
        let path = vars.get("PATH").map(String::as_str).unwrap_or_default();
        watchbot_watcher::local::program::resolve(&process.program.to_string_lossy(), path).map_err(Failure::new)?;
    }
    match service::serve_env(&vars, program) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(ServiceError::Config(error)) => Err(config_failure(&args, &error)),
        Err(error) => Err(Failure::from_error(&error).with_exit(error.exit())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const FLAG_QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/flag";
    const ENV_QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/env";

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("watch").chain(argv.iter().copied())).expect("parses").args
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn flags_override_the_environment() {
        let args = parse(&[
            "--runner",
            "process",
            "--queue-url",
            FLAG_QUEUE,
            "--workers",
            "3",
            "--no-backoff",
            "--notify-after-retries",
            "2",
            "--message-timeout",
            "30",
            "--stack-name",
            "s",
            "--",
            "sh",
            "worker.sh",
        ]);
        assert_eq!(args.command, vec!["sh", "worker.sh"]);
        let base = env(&[("QueueUrl", ENV_QUEUE), ("Concurrency", "9"), ("WorkTopic", "arn:work")]);
        let parsed = watcher_env(&args, base).expect("config");
        assert_eq!(parsed.queue_url, FLAG_QUEUE);
        assert_eq!(parsed.watcher.workers, 3);
        assert!(!parsed.watcher.backoff);
        assert_eq!(parsed.watcher.notify_after_retries, 2);
        assert_eq!(parsed.watcher.message_timeout.as_secs(), 30);
        assert_eq!(parsed.watcher.stack_name, "s");
        assert_eq!(parsed.watcher.task_env["WorkTopic"], "arn:work");
        assert!(parsed.ecs.is_none());
    }

    #[test]
    fn the_environment_applies_without_flags() {
        let args = parse(&["--runner", "process", "--", "true"]);
        let parsed = watcher_env(&args, env(&[("QueueUrl", ENV_QUEUE), ("Concurrency", "9")])).expect("config");
        assert_eq!((parsed.queue_url.as_str(), parsed.watcher.workers), (ENV_QUEUE, 9));
    }

    #[test]
    fn bad_combinations_are_one_line_errors() {
        let no_command = watcher_env(&parse(&["--runner", "process"]), env(&[("QueueUrl", ENV_QUEUE)])).unwrap_err();
        assert_eq!(no_command.to_string(), "--runner process needs the worker command after `--`");
        let stray = watcher_env(&parse(&["--", "true"]), env(&[("QueueUrl", ENV_QUEUE)])).unwrap_err();
        assert!(stray.to_string().starts_with("a command after `--` is only for --runner process"));
        let missing = watcher_env(&parse(&["--runner", "process", "--", "true"]), BTreeMap::new()).unwrap_err();
        assert_eq!(missing.to_string(), "--queue-url (or environment variable QueueUrl) is required but not set");
        let ecs = parse(&["--queue-url", ENV_QUEUE, "--cluster", "c", "--task-definition", "td"]);
        assert_eq!(
            watcher_env(&ecs, BTreeMap::new()).unwrap_err().to_string(),
            "--container-name (or environment variable ContainerName) is required but not set"
        );
        let workers = parse(&["--runner", "process", "--queue-url", ENV_QUEUE, "--workers", "0", "--", "true"]);
        assert_eq!(
            watcher_env(&workers, BTreeMap::new()).unwrap_err().to_string(),
            "--workers: expected a whole number of at least 1, got \"0\""
        );
        // The variable is named when the value came from it.
        let workers = parse(&["--runner", "process", "--queue-url", ENV_QUEUE, "--", "true"]);
        assert_eq!(
            watcher_env(&workers, env(&[("Concurrency", "0")])).unwrap_err().to_string(),
            "environment variable Concurrency: expected a whole number of at least 1, got \"0\""
        );
        let launch =
            parse(&["--queue-url", ENV_QUEUE, "--cluster", "c", "--task-definition", "td", "--container-name", "w"]);
        let mut fargate = launch;
        fargate.launch_type = Some("fargate".into());
        fargate.subnets = Some("subnet-1".into());
        let parsed = watcher_env(&fargate, BTreeMap::new()).expect("fargate in lower case");
        assert_eq!(parsed.ecs.expect("ecs").launch_type, watchbot_watcher::config::LaunchType::Fargate);
        let runner = Cli::try_parse_from(["watch", "--runner", "spot"]).unwrap_err().to_string();
        assert!(runner.contains("possible values: ecs, process, docker"), "{runner}");
        fargate.launch_type = Some("spot".into());
        assert_eq!(
            watcher_env(&fargate, BTreeMap::new()).unwrap_err().to_string(),
            "--launch-type: expected EC2 or FARGATE, got \"spot\""
        );
        let spot = parse(&[
            "--queue-url",
            ENV_QUEUE,
            "--cluster",
            "c",
            "--task-definition",
            "td",
            "--container-name",
            "w",
            "--capacity-provider-strategy",
            "FARGATE_SPOT:3,FARGATE:1:1",
            "--subnets",
            "subnet-1",
            "--assign-public-ip",
            "--no-notify-each-failure",
        ]);
        let parsed = watcher_env(&spot, BTreeMap::new()).expect("a strategy");
        assert!(!parsed.watcher.notify_each_failure);
        let ecs = parsed.ecs.expect("ecs");
        assert_eq!(ecs.capacity_provider_strategy.len(), 2);
        assert!(ecs.is_fargate() && ecs.assign_public_ip);
        let mut bad = spot;
        bad.capacity_provider_strategy = Some("FARGATE_SPOT:lots".into());
        assert_eq!(
            watcher_env(&bad, BTreeMap::new()).unwrap_err().to_string(),
            "--capacity-provider-strategy: the weight of FARGATE_SPOT must be a whole number from 0 to 1000, got \"lots\""
        );
        bad.capacity_provider_strategy = None;
        assert_eq!(
            watcher_env(&bad, BTreeMap::new()).unwrap_err().to_string(),
            "--assign-public-ip: only applies to Fargate tasks (LaunchType is EC2)"
        );
    }
}
