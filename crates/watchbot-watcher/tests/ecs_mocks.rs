//! The ECS runner against `aws-smithy-mocks` (the SDK's own test crate): what moto cannot show. Non-zero exit codes
//! and the choice of container, tasks that never started, DescribeTasks batches of 100, RunTask `failures`
//! (placement), throttling, error classes, the EC2 request shape, and the RunTask rate limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::operation::stop_task::StopTaskOutput;
use aws_sdk_ecs::types::{Container, Failure, Task};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use watchbot_watcher::aws::ecs::{EcsRunner, EcsRunnerConfig};
use watchbot_watcher::ports::{Launch, PortErrorKind, TaskRunner, TaskSpec, TaskState};

const CLUSTER: &str = "watchbot-cluster";
const TASK_DEFINITION: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7";

fn arn(n: usize) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{n:032x}")
}

fn config() -> EcsRunnerConfig {
    let mut config = EcsRunnerConfig::new(CLUSTER, TASK_DEFINITION, "worker");
    config.run_task_per_second = 0.0;
    config
}

/// A client answering from these rules (first matching rule wins), with the SDK's retries off so each call is one
/// answer.
fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// An ECS error response as the service sends it (awsJson 1.1).
fn ecs_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
    )
}

fn spec(message_id: &str) -> TaskSpec {
    TaskSpec {
        message_id: message_id.to_string(),
        env: [("Message", "hello"), ("MessageId", message_id)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn stopped(arn: &str, reason: &str, containers: Vec<Container>) -> Task {
    Task::builder().task_arn(arn).last_status("STOPPED").stopped_reason(reason).set_containers(Some(containers)).build()
}

fn container(name: &str, exit_code: Option<i32>, reason: Option<&str>) -> Container {
    Container::builder().name(name).set_exit_code(exit_code).set_reason(reason.map(str::to_string)).build()
}

#[tokio::test]
async fn the_exit_code_is_that_of_the_named_container() {
    let rule = mock!(Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(stopped(
                &arn(1),
                "Essential container in task exited",
                vec![container("log-router", Some(0), None), container("worker", Some(3), None)],
            ))
            .tasks(stopped(&arn(2), "Essential container in task exited", vec![container("worker", Some(137), None)]))
            .build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    let states = runner.poll(&[arn(1), arn(2)]).await.unwrap();
    assert_eq!(
        states,
        vec![
            (arn(1), TaskState::Stopped { exit_code: Some(3), reason: "Essential container in task exited".into() }),
            (arn(2), TaskState::Stopped { exit_code: Some(137), reason: "Essential container in task exited".into() }),
        ]
    );
}

#[tokio::test]
async fn a_task_whose_container_never_ran_has_no_exit_code_and_says_why() {
    let rule = mock!(Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(stopped(
                &arn(1),
                "Task failed to start",
                vec![container("worker", None, Some("CannotPullContainerError: pull access denied"))],
            ))
            .tasks(stopped(&arn(2), "Task stopped by user", vec![container("sidecar", Some(0), None)]))
            .build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    let states = runner.poll(&[arn(1), arn(2)]).await.unwrap();
    assert_eq!(
        states[0].1,
        TaskState::Stopped {
            exit_code: None,
            reason: "Task failed to start (worker: CannotPullContainerError: pull access denied)".into()
        }
    );
    assert_eq!(
        states[1].1,
        TaskState::Stopped {
            exit_code: None,
            reason: "Task stopped by user (no container named \"worker\" in the task)".into()
        }
    );
}

#[tokio::test]
async fn tasks_run_until_ecs_says_stopped() {
    let rule = mock!(Client::describe_tasks).then_output(|| {
        let mut output = DescribeTasksOutput::builder();
        for (n, status) in ["PROVISIONING", "PENDING", "RUNNING", "DEPROVISIONING"].iter().enumerate() {
            // A container may already have an exit code while the task winds down: still running until STOPPED.
            output = output.tasks(
                Task::builder()
                    .task_arn(arn(n))
                    .last_status(*status)
                    .containers(container("worker", Some(0), None))
                    .build(),
            );
        }
        output.build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    let handles: Vec<String> = (0..4).map(arn).collect();
    let states = runner.poll(&handles).await.unwrap();
    assert!(states.iter().all(|(_, state)| *state == TaskState::Running), "{states:?}");
}

#[tokio::test]
async fn missing_tasks_no_longer_exist_and_other_failures_keep_them_running() {
    let rule = mock!(Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .failures(Failure::builder().arn(arn(1)).reason("MISSING").build())
            .failures(Failure::builder().arn(arn(2)).reason("INTERNAL_ERROR").detail("try again").build())
            .build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    let states = runner.poll(&[arn(1), arn(2), arn(3)]).await.unwrap();
    let gone = TaskState::Stopped { exit_code: None, reason: "task no longer exists".into() };
    assert_eq!(states, vec![(arn(1), gone.clone()), (arn(2), TaskState::Running), (arn(3), gone)]);
}

#[tokio::test]
async fn describe_tasks_is_called_with_at_most_100_tasks() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let rule = mock!(Client::describe_tasks).then_compute_output(move |request| {
        seen.lock().unwrap().push(request.tasks().len());
        assert_eq!(request.cluster(), Some(CLUSTER));
        let mut output = DescribeTasksOutput::builder();
        for task in request.tasks() {
            output = output.tasks(stopped(task, "done", vec![container("worker", Some(0), None)]));
        }
        output.build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    let handles: Vec<String> = (0..250).map(arn).collect();
    let states = runner.poll(&handles).await.unwrap();
    assert_eq!(*sizes.lock().unwrap(), vec![100, 100, 50]);
    assert_eq!(rule.num_calls(), 3);
    assert_eq!(states.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>(), handles, "answers in request order");
    assert!(states.iter().all(|(_, s)| *s == TaskState::Stopped { exit_code: Some(0), reason: "done".into() }));
    // Nothing to poll: no call at all.
    assert!(runner.poll(&[]).await.unwrap().is_empty());
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn run_task_on_ec2_sends_the_expected_request() {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let rule = mock!(Client::run_task).then_compute_output(move |request| {
        assert_eq!(request.cluster(), Some(CLUSTER));
        assert_eq!(request.task_definition(), Some(TASK_DEFINITION));
        assert_eq!(request.count(), Some(1));
        assert_eq!(request.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Ec2));
        assert!(request.network_configuration().is_none(), "EC2 without subnets sends no network configuration");
        let overrides = request.overrides().unwrap().container_overrides();
        assert_eq!(overrides.len(), 1);
        assert_eq!(overrides[0].name(), Some("worker"));
        let env: Vec<(&str, &str)> =
            overrides[0].environment().iter().map(|kv| (kv.name().unwrap(), kv.value().unwrap())).collect();
        let id = request.started_by().unwrap().to_string();
        assert_eq!(env, vec![("Message", "hello"), ("MessageId", id.as_str())]);
        let token = request.client_token().expect("an idempotency token").to_string();
        assert!(!token.is_empty() && token.len() <= 64);
        seen.lock().unwrap().push(token);
        RunTaskOutput::builder()
            .tasks(Task::builder().task_arn(arn(id.len())).last_status("PROVISIONING").build())
            .build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    assert_eq!(runner.launch(&spec("m-1")).await.unwrap(), Launch::Started(arn(3)));
    assert_eq!(runner.launch(&spec("m-10")).await.unwrap(), Launch::Started(arn(4)));
    let tokens = tokens.lock().unwrap();
    assert_ne!(tokens[0], tokens[1], "each launch has its own token");
}

#[tokio::test]
async fn run_task_failures_are_placement_failures_not_task_failures() {
    let rule = mock!(Client::run_task).then_output(|| {
        RunTaskOutput::builder()
            .failures(
                Failure::builder()
                    .arn("arn:aws:ecs:us-east-1:123456789012:container-instance/abc")
                    .reason("RESOURCE:MEMORY")
                    .build(),
            )
            .failures(Failure::builder().reason("RESOURCE:CPU").detail("no instance has 2048 units free").build())
            .build()
    });
    let runner = EcsRunner::new(client(&[&rule]), config());
    assert_eq!(
        runner.launch(&spec("m")).await.unwrap(),
        Launch::NotPlaced { reason: "RESOURCE:MEMORY; RESOURCE:CPU (no instance has 2048 units free)".into() }
    );
}

#[tokio::test]
async fn throttled_run_task_is_a_placement_failure() {
    let throttled =
        mock!(Client::run_task).then_http_response(|| ecs_error(400, "ThrottlingException", "Rate exceeded"));
    let runner = EcsRunner::new(client(&[&throttled]), config());
    match runner.launch(&spec("m")).await.unwrap() {
        Launch::NotPlaced { reason } => {
            assert_eq!(reason, "throttled: ecs RunTask failed: ThrottlingException: Rate exceeded");
        }
        other => panic!("expected not placed, got {other:?}"),
    }
    // ECS also throttles with a ClientException saying "Rate exceeded".
    let client_rate = mock!(Client::run_task).then_http_response(|| ecs_error(400, "ClientException", "Rate exceeded"));
    let runner = EcsRunner::new(client(&[&client_rate]), config());
    assert!(
        matches!(runner.launch(&spec("m")).await.unwrap(), Launch::NotPlaced { reason } if reason.starts_with("throttled: "))
    );
}

#[tokio::test]
async fn errors_are_classified() {
    let server = mock!(Client::describe_tasks).then_http_response(|| ecs_error(500, "ServerException", "boom"));
    let invalid = mock!(Client::run_task)
        .then_http_response(|| ecs_error(400, "InvalidParameterException", "TaskDefinition is inactive"));
    let denied = mock!(Client::list_tasks).then_http_response(|| ecs_error(400, "AccessDeniedException", "no"));
    let runner = EcsRunner::new(client(&[&server, &invalid, &denied]), config());

    let error = runner.poll(&[arn(1)]).await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::Transient);
    assert_eq!(error.message, "ecs DescribeTasks failed: ServerException: boom");

    let error = runner.launch(&spec("m")).await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::Rejected);
    assert_eq!(error.message, "ecs RunTask failed: InvalidParameterException: TaskDefinition is inactive");

    let error = runner.find_running("m").await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::Rejected);
    assert!(error.message.starts_with("ecs ListTasks failed: AccessDeniedException"), "{error}");
}

#[tokio::test]
async fn find_running_lists_by_started_by_and_desired_status() {
    let rule = mock!(Client::list_tasks)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER)
                && r.started_by() == Some("msg-1")
                && r.desired_status() == Some(&aws_sdk_ecs::types::DesiredStatus::Running)
        })
        .then_output(|| ListTasksOutput::builder().task_arns(arn(7)).task_arns(arn(8)).build());
    let empty = mock!(Client::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let runner = EcsRunner::new(client(&[&rule, &empty]), config());
    assert_eq!(runner.find_running("msg-1").await.unwrap(), Some(arn(7)));
    assert_eq!(runner.find_running("msg-2").await.unwrap(), None);
}

#[tokio::test]
async fn stop_sends_the_reason_and_a_gone_task_is_not_an_error() {
    let stop = mock!(Client::stop_task)
        .match_requests(|r| r.task() == Some(arn(1).as_str()) && r.cluster() == Some(CLUSTER))
        .then_compute_output(|r| {
            assert_eq!(r.reason().map(|s| s.chars().count()), Some(255), "reason cut to ECS's 255 characters");
            StopTaskOutput::builder().build()
        });
    let gone = mock!(Client::stop_task)
        .then_http_response(|| ecs_error(400, "InvalidParameterException", "The referenced task was not found."));
    let runner = EcsRunner::new(client(&[&stop, &gone]), config());
    runner.stop(&arn(1), &"é".repeat(300)).await.unwrap();
    runner.stop(&arn(2), "timeout").await.unwrap();
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(gone.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn run_task_calls_are_rate_limited() {
    let rule = mock!(Client::run_task)
        .then_output(|| RunTaskOutput::builder().tasks(Task::builder().task_arn(arn(1)).build()).build());
    let mut config = config();
    config.run_task_per_second = 5.0;
    let runner = Arc::new(EcsRunner::new(client(&[&rule]), config));
    let start = tokio::time::Instant::now();
    let launches: Vec<_> = (0..15)
        .map(|n| {
            let runner = runner.clone();
            tokio::spawn(async move { runner.launch(&spec(&format!("m{n}"))).await.unwrap() })
        })
        .collect();
    for launch in launches {
        assert!(matches!(launch.await.unwrap(), Launch::Started(_)));
    }
    // A burst of 5, then one every 200 ms: the 15th call goes out at 2 s.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(rule.num_calls(), 15);
}

#[tokio::test]
async fn subnets_give_an_awsvpc_configuration_and_only_fargate_gets_assign_public_ip() {
    use aws_sdk_ecs::types::{AssignPublicIp, LaunchType as SdkLaunchType};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let rule = mock!(Client::run_task).then_compute_output(move |request| {
        let vpc = request.network_configuration().and_then(|n| n.awsvpc_configuration()).expect("awsvpc").clone();
        record.lock().unwrap().push((request.launch_type().cloned(), vpc));
        RunTaskOutput::builder().tasks(Task::builder().task_arn(arn(1)).build()).build()
    });
    let mut ec2 = config();
    ec2.subnets = vec!["subnet-1".into(), "subnet-2".into()];
    ec2.security_groups = vec!["sg-1".into()];
    ec2.assign_public_ip = true;
    EcsRunner::new(client(&[&rule]), ec2.clone()).launch(&spec("a")).await.unwrap();
    let mut fargate = ec2;
    fargate.launch_type = watchbot_watcher::aws::ecs::LaunchType::Fargate;
    EcsRunner::new(client(&[&rule]), fargate).launch(&spec("b")).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, Some(SdkLaunchType::Ec2));
    assert_eq!(seen[0].1.subnets(), ["subnet-1", "subnet-2"]);
    assert_eq!(seen[0].1.security_groups(), ["sg-1"]);
    assert_eq!(seen[0].1.assign_public_ip(), None, "ECS rejects assignPublicIp on EC2");
    assert_eq!(seen[1].0, Some(SdkLaunchType::Fargate));
    assert_eq!(seen[1].1.assign_public_ip(), Some(&AssignPublicIp::Enabled));
}

/// The watcher started with a Fargate stack's environment (the template's watcher variables, references resolved as
/// the stack would) sends every RunTask with the stack's placement and network.
#[tokio::test]
async fn a_fargate_stacks_environment_runs_tasks_with_its_capacity_and_network() {
    use aws_sdk_ecs::types::{AssignPublicIp, LaunchType as SdkLaunchType};
    use watchbot_watcher::config::{Source, from_env};
    let environment = |name: &str| {
        let path = format!("{}/../watchbot-template/tests/configs/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let options = watchbot_template::Options::from_json_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let raw = watchbot_template::template(&options).unwrap().watcher_environment();
        raw.into_iter()
            .map(|(name, value)| {
                let value = match (name.as_str(), value) {
                    (_, serde_json::Value::String(text)) => text,
                    ("QueueUrl" | "DeadLetterQueueUrl", _) => {
                        format!("https://sqs.us-east-1.amazonaws.com/123456789012/{name}")
                    }
                    (_, _) => format!("resolved-{name}"),
                };
                (name, value)
            })
            .collect()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let rule = mock!(Client::run_task).then_compute_output(move |request| {
        let vpc = request.network_configuration().and_then(|n| n.awsvpc_configuration()).expect("awsvpc").clone();
        let strategy: Vec<(String, i32, i32)> = request
            .capacity_provider_strategy()
            .iter()
            .map(|item| (item.capacity_provider().to_string(), item.weight(), item.base()))
            .collect();
        record.lock().unwrap().push((request.launch_type().cloned(), strategy, vpc));
        RunTaskOutput::builder().tasks(Task::builder().task_arn(arn(1)).build()).build()
    });
    for stack in ["fargate", "strategy"] {
        let parsed = from_env(&environment(stack), Source::Container).expect("the stack's environment parses");
        let runner = EcsRunner::new(client(&[&rule]), parsed.ecs.expect("ecs"));
        for message in ["a", "b"] {
            assert!(matches!(runner.launch(&spec(message)).await.unwrap(), Launch::Started(_)));
        }
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "every RunTask");
    for (launch_type, strategy, vpc) in &seen[..2] {
        assert_eq!(launch_type.as_ref(), Some(&SdkLaunchType::Fargate));
        assert!(strategy.is_empty());
        assert_eq!(vpc.subnets(), ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
        assert_eq!(vpc.security_groups(), ["sg-0123456789abcdef0"]);
        assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Enabled));
    }
    for (launch_type, strategy, vpc) in &seen[2..] {
        assert_eq!(launch_type.as_ref(), None, "a strategy is sent instead of a launch type");
        assert_eq!(strategy, &[("FARGATE".to_string(), 1, 1), ("FARGATE_SPOT".to_string(), 3, 0)]);
        assert_eq!(vpc.subnets(), ["subnet-0a1b2c3d"]);
        assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Disabled));
    }
}
