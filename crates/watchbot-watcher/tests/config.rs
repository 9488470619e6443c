//! The watcher's configuration from environment variables: every variable, every error names its variable, and the
//! environment of a generated template's watcher task definition parses (so template and watcher cannot drift).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use watchbot_watcher::config::{
    CapacityProviderItem, ConfigError, EcsRunnerConfig, LaunchType, Need, RunnerKind, Source, VARIABLES, WatcherEnv,
    from_env,
};
use watchbot_watcher::events::Level;
use watchbot_watcher::{TaskSizeLimit, WatcherConfig};

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn container_env() -> BTreeMap<String, String> {
    vars(&[
        ("Cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/processing"),
        ("TaskDefinition", "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:3"),
        ("ContainerName", "worker"),
        ("Concurrency", "4"),
        ("QueueUrl", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"),
        ("DeadLetterQueueUrl", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq"),
        ("NotificationTopic", "arn:aws:sns:us-east-1:123456789012:notify"),
        ("StackName", "prod"),
        ("ExponentialBackoff", "false"),
        ("NotifyAfterRetries", "2"),
        ("LogLevel", "debug"),
        ("MessageTimeout", "900"),
        ("WorkTopic", "arn:aws:sns:us-east-1:123456789012:work"),
        ("LogGroup", "prod-logs"),
    ])
}

#[test]
fn reads_the_whole_container_environment() {
    let env = from_env(&container_env(), Source::Container).expect("parses");
    let expected = WatcherEnv {
        queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs".into(),
        dead_letter_queue_url: Some("https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq".into()),
        notification_topic: Some("arn:aws:sns:us-east-1:123456789012:notify".into()),
        ecs: Some(EcsRunnerConfig::new(
            "arn:aws:ecs:us-east-1:123456789012:cluster/processing",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:3",
            "worker",
        )),
        log_level: Level::Debug,
        watcher: {
            let mut c = WatcherConfig::default();
            c.workers = 4;
            c.message_timeout = Duration::from_secs(900);
            c.backoff = false;
            c.notify_after_retries = 2;
            c.stack_name = "prod".into();
            c.task_env = vars(&[("LogGroup", "prod-logs"), ("WorkTopic", "arn:aws:sns:us-east-1:123456789012:work")]);
            c.task_size_limit = Some(TaskSizeLimit::Overrides { container_name: "worker".into(), max_chars: 8192 });
            c.batch_linger = Duration::from_millis(50);
            c.shutdown_grace = Duration::from_secs(20);
            c.on_shutdown = watchbot_watcher::OnShutdown::LeaveRunning;
            c
        },
    };
    assert_eq!(env, expected);
}

#[test]
fn each_required_variable_missing_is_named() {
    for (name, need) in VARIABLES {
        let mut env = container_env();
        env.remove(*name);
        let result = from_env(&env, Source::Container);
        match need {
            Need::Optional => assert!(result.is_ok(), "{name} is optional: {result:?}"),
            _ => assert_eq!(
                result.expect_err(name).to_string(),
                format!("environment variable {name}: is required but not set")
            ),
        }
        // Empty is the same as unset.
        env.insert(name.to_string(), "  ".into());
        assert_eq!(from_env(&env, Source::Container).is_ok(), *need == Need::Optional, "{name} empty");
    }
}

#[test]
fn malformed_values_are_named() {
    let cases = [
        ("Concurrency", "0", "expected a whole number of at least 1, got \"0\""),
        ("Concurrency", "four", "expected a whole number of at least 1, got \"four\""),
        ("MessageTimeout", "-5", "expected a whole number of at least 1, got \"-5\""),
        ("NotifyAfterRetries", "1.5", "expected a whole number of at least 0, got \"1.5\""),
        ("NotifyAfterRetries", "99999999999", "is too large"),
        ("ExponentialBackoff", "False", "expected true or false, got \"False\""),
        ("LogLevel", "verbose", "expected info or debug, got \"verbose\""),
        ("LaunchType", "fargat", "expected EC2 or FARGATE, got \"fargat\""),
        ("LaunchType", "FARGATE", "is required with LaunchType FARGATE (comma-separated subnet ids)"),
        (
            "LaunchType",
            "FARGATE_SPOT",
            "expected EC2 or FARGATE, got \"FARGATE_SPOT\" (Fargate Spot is a capacity provider: \
             CapacityProviderStrategy FARGATE_SPOT)",
        ),
        (
            "CapacityProviderStrategy",
            "FARGATE_SPOT",
            "is required with a CapacityProviderStrategy of Fargate (comma-separated subnet ids)",
        ),
        (
            "CapacityProviderStrategy",
            "FARGATE:x",
            "the weight of FARGATE must be a whole number from 0 to 1000, got \"x\"",
        ),
        ("AssignPublicIp", "yes", "expected true or false, got \"yes\""),
        ("AssignPublicIp", "true", "only applies to Fargate tasks (LaunchType is EC2)"),
        ("NotifyEachFailure", "no", "expected true or false, got \"no\""),
    ];
    for (name, value, problem) in cases {
        let mut env = container_env();
        env.insert(name.into(), value.into());
        let error = from_env(&env, Source::Container).expect_err(name);
        let expected_name = if problem.starts_with("is required with") { "Subnets" } else { name };
        assert_eq!(error, ConfigError { name: expected_name.into(), problem: problem.into() }, "{name}={value}");
        assert!(!error.to_string().contains('\n'));
    }
}

#[test]
fn fargate_takes_subnets_and_security_groups() {
    let mut env = container_env();
    // Any case, as users type it (`--launch-type fargate`).
    env.insert("LaunchType".into(), "Fargate".into());
    env.insert("Subnets".into(), "subnet-1, subnet-2,".into());
    env.insert("SecurityGroups".into(), "sg-1".into());
    let ecs = from_env(&env, Source::Container).expect("parses").ecs.expect("ecs");
    assert_eq!(ecs.launch_type, LaunchType::Fargate);
    assert_eq!(ecs.subnets, vec!["subnet-1", "subnet-2"]);
    assert_eq!(ecs.security_groups, vec!["sg-1"]);
    env.insert("LaunchType".into(), "ec2".into());
    assert_eq!(from_env(&env, Source::Container).expect("parses").ecs.expect("ecs").launch_type, LaunchType::Ec2);
}

#[test]
fn a_strategy_replaces_the_launch_type_and_fargate_takes_a_public_ip() {
    let mut env = container_env();
    env.insert("CapacityProviderStrategy".into(), "FARGATE:1:1,FARGATE_SPOT:3".into());
    env.insert("Subnets".into(), "subnet-1".into());
    env.insert("AssignPublicIp".into(), "true".into());
    env.insert("NotifyEachFailure".into(), "false".into());
    let parsed = from_env(&env, Source::Container).expect("parses");
    assert!(!parsed.watcher.notify_each_failure);
    let ecs = parsed.ecs.expect("ecs");
    let item = |name: &str, weight, base| CapacityProviderItem { name: name.into(), weight, base };
    assert_eq!(ecs.capacity_provider_strategy, vec![item("FARGATE", 1, 1), item("FARGATE_SPOT", 3, 0)]);
    assert!(ecs.is_fargate() && ecs.assign_public_ip);
    env.insert("LaunchType".into(), "FARGATE".into());
    assert_eq!(
        from_env(&env, Source::Container).unwrap_err().to_string(),
        "environment variable CapacityProviderStrategy: give LaunchType or CapacityProviderStrategy, not both (ECS \
         takes one)"
    );
    // Auto Scaling group providers are EC2: no subnets needed, no public IP.
    let mut env = container_env();
    env.insert("CapacityProviderStrategy".into(), "my-asg".into());
    assert!(!from_env(&env, Source::Container).expect("parses").ecs.expect("ecs").is_fargate());
}

#[test]
fn the_cli_needs_only_the_queue_for_the_process_runner() {
    let env = from_env(
        &vars(&[("QueueUrl", "http://localhost:5000/123456789012/q")]),
        Source::Cli { runner: RunnerKind::Process },
    )
    .unwrap();
    assert_eq!(env.queue_url, "http://localhost:5000/123456789012/q");
    assert_eq!((env.notification_topic, env.ecs, env.dead_letter_queue_url), (None, None, None));
    assert_eq!(env.log_level, Level::Info);
    assert_eq!(env.watcher, {
        let mut c = WatcherConfig::default();
        c.batch_linger = Duration::from_millis(50);
        c.shutdown_grace = Duration::from_secs(20);
        // Child processes: Linux's 128 KiB per environment string.
        c.task_size_limit = Some(TaskSizeLimit::EnvString { max_bytes: 131_072 });
        c
    });
    let error = from_env(&BTreeMap::new(), Source::Cli { runner: RunnerKind::Process }).unwrap_err();
    assert_eq!(error.to_string(), "environment variable QueueUrl: is required but not set");
    let error = from_env(
        &vars(&[("QueueUrl", "http://localhost:5000/123456789012/q")]),
        Source::Cli { runner: RunnerKind::Ecs },
    )
    .unwrap_err();
    assert_eq!(error.name, "Cluster");
}

/// A CloudFormation value as the deployed stack would resolve it (refs become plausible names and ARNs).
fn resolve(name: &str, value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => match name {
            "QueueUrl" | "DeadLetterQueueUrl" => format!("https://sqs.us-east-1.amazonaws.com/123456789012/{name}"),
            "StackName" | "LogGroup" => format!("resolved-{name}"),
            _ => format!("arn:aws:resolved:us-east-1:123456789012:{name}/{}", other.to_string().len()),
        },
    }
}

#[test]
fn the_template_watcher_environment_is_what_the_watcher_reads() {
    let options = serde_json::json!({"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/processing",
        "service": "worker", "serviceVersion": "v1", "notificationEmail": "ops@example.com", "workers": 3,
        "backoff": false, "notifyAfterRetries": 2, "messageTimeout": 1200, "debugLogs": true});
    let env = resolved_environment(&options);
    let parsed = from_env(&env, Source::Container).expect("the template's environment parses");
    assert_eq!(parsed.watcher.workers, 3);
    assert!(!parsed.watcher.backoff);
    assert_eq!(parsed.watcher.notify_after_retries, 2);
    assert_eq!(parsed.watcher.message_timeout, Duration::from_secs(1200));
    assert_eq!(parsed.log_level, Level::Debug);
    assert!(parsed.dead_letter_queue_url.is_some());
    assert_eq!(parsed.watcher.task_env.keys().collect::<Vec<_>>(), vec!["LogGroup", "WorkTopic"]);
    let ecs = parsed.ecs.expect("ecs");
    assert_eq!(ecs.cluster, "arn:aws:ecs:us-east-1:123456789012:cluster/processing");
    assert_eq!(ecs.container_name, watchbot_template::WORKER_CONTAINER);
    assert_eq!(ecs.launch_type, LaunchType::Ec2);
}

/// The watcher's environment of a generated template, as the deployed stack resolves it, after checking that every
/// variable the template sets is one the watcher reads and every one the container requires is set.
fn resolved_environment(options: &serde_json::Value) -> BTreeMap<String, String> {
    let options = watchbot_template::Options::from_value(options).expect("options");
    let raw = watchbot_template::template(&options).expect("template").watcher_environment();
    let known: BTreeSet<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
    for name in raw.keys() {
        assert!(known.contains(name.as_str()), "the template sets {name}, which the watcher does not read");
    }
    for (name, need) in VARIABLES {
        if *need != Need::Optional {
            assert!(raw.contains_key(*name), "the watcher requires {name}, which the template does not set");
        }
    }
    raw.iter().map(|(k, v)| (k.clone(), resolve(k, v))).collect()
}

#[test]
fn fargate_templates_give_the_watcher_their_placement_and_network() {
    let config = |name: &str| {
        let path = format!("{}/../watchbot-template/tests/configs/{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&path).expect("config")).expect("json")
    };
    let fargate = from_env(&resolved_environment(&config("fargate")), Source::Container).expect("parses");
    let ecs = fargate.ecs.expect("ecs");
    assert_eq!((ecs.launch_type, ecs.capacity_provider_strategy.as_slice()), (LaunchType::Fargate, &[][..]));
    assert_eq!(ecs.subnets, ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    assert_eq!(ecs.security_groups, ["sg-0123456789abcdef0"]);
    assert!(ecs.assign_public_ip);
    assert!(fargate.watcher.notify_each_failure);

    let spot = from_env(&resolved_environment(&config("fargate-spot")), Source::Container).expect("parses");
    assert!(!spot.watcher.notify_each_failure, "notifyEachFailure: false");
    let ecs = spot.ecs.expect("ecs");
    let item = |name: &str, weight, base| CapacityProviderItem { name: name.into(), weight, base };
    assert_eq!(ecs.capacity_provider_strategy, [item("FARGATE_SPOT", 1, 0)]);
    assert!(ecs.is_fargate() && !ecs.assign_public_ip);
    assert_eq!((ecs.subnets.len(), ecs.security_groups.len()), (1, 1), "intrinsics, resolved");

    let strategy = from_env(&resolved_environment(&config("strategy")), Source::Container).expect("parses");
    let ecs = strategy.ecs.expect("ecs");
    assert_eq!(ecs.capacity_provider_strategy, [item("FARGATE", 1, 1), item("FARGATE_SPOT", 3, 0)]);
    assert_eq!(ecs.subnets, ["subnet-0a1b2c3d"]);
}

/// The watcher container's environment with the AWS settings of a machine that has no credentials at all (no
/// profile, no keys, no instance metadata), pointed at an endpoint nobody listens on.
fn without_credentials(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env_clear()
        .envs(container_env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/watchbot-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/watchbot-test/credentials")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
}

#[test]
fn the_binary_exits_69_in_one_line_when_it_cannot_read_the_queue() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_watchbot-watcher"));
    let output = without_credentials(&mut command).output().expect("run watchbot-watcher");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "watchbot-watcher: cannot receive from the work queue https://sqs.us-east-1.amazonaws.com/123456789012/jobs \
         (QueueUrl): sqs ReceiveMessage: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY)"
    );
}

#[test]
fn the_binary_names_a_missing_variable_and_exits_1() {
    let mut env = container_env();
    env.remove("StackName");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_watchbot-watcher"))
        .env_clear()
        .envs(&env)
        .output()
        .expect("run watchbot-watcher");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "watchbot-watcher: environment variable StackName: is required but not set\n"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_watchbot-watcher"))
        .env_clear()
        .envs(container_env())
        .env("Concurrency", "many")
        .output()
        .expect("run watchbot-watcher");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "watchbot-watcher: environment variable Concurrency: expected a whole number of at least 1, got \"many\"\n"
    );
}

#[test]
fn the_binary_prints_help_and_refuses_arguments() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_watchbot-watcher"))
            .env_clear()
            .args(args)
            .output()
            .expect("run watchbot-watcher")
    };
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: watchbot-watcher"), "{text}");
    for (name, _) in watchbot_watcher::config::VARIABLES {
        assert!(text.contains(name), "help names {name}: {text}");
    }
    let version = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("watchbot-watcher ", env!("CARGO_PKG_VERSION"))
    );
    let stray = run(&["--queue-url", "x"]);
    assert_eq!(stray.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&stray.stderr),
        "watchbot-watcher: unexpected argument \"--queue-url\": it takes none (see --help)\n"
    );
}

/// The template's metric filters match the watcher's own JSON event lines: every `$.field = "value"` of a pattern is
/// a field the event of that name writes, with that value (template and watcher cannot drift).
#[test]
fn the_templates_metric_filters_match_the_watchers_event_lines() {
    use watchbot_watcher::Outcome;
    use watchbot_watcher::events::{Event, json_line};
    let finished = |outcome| Event::Finished {
        message_id: "m".into(),
        outcome,
        exit_code: Some(1),
        reason: "exited".into(),
        duration_ms: 1500,
        receive_count: 1,
    };
    let lines: Vec<serde_json::Value> =
        [finished(Outcome::Succeeded), finished(Outcome::Failed), finished(Outcome::Rejected)]
            .into_iter()
            .chain([Event::NotPlaced { message_id: "m".into(), reason: "RESOURCE:CPU".into(), retry_in_ms: 1000 }])
            .map(|event| serde_json::from_str(&json_line(&event, 0)).unwrap())
            .collect();
    for (metric, pattern, value) in watchbot_template::METRICS {
        let terms: Vec<(&str, &str)> = pattern
            .trim_matches(['{', '}', ' '])
            .split("&&")
            .map(|term| {
                let (field, wanted) = term.trim().split_once(" = ").expect("$.field = value");
                (field.trim_start_matches("$."), wanted.trim_matches('"'))
            })
            .collect();
        let matching: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|line| {
                terms.iter().all(|(field, wanted)| match (&line[*field], *wanted) {
                    (serde_json::Value::Null, _) => false,
                    (_, "*") => true,
                    (found, wanted) => found.as_str() == Some(wanted),
                })
            })
            .collect();
        let expected = if *metric == "TaskDuration" { 3 } else { 1 };
        assert_eq!(matching.len(), expected, "{metric}: {pattern} matches {matching:?}");
        if let Some(field) = value.strip_prefix("$.") {
            assert!(matching.iter().all(|line| line[field].is_u64()), "{metric}: {field}");
        }
    }
}
