//! The ECS runner against moto's ECS: RunTask overrides and `startedBy`, ListTasks by `startedBy` (adoption),
//! DescribeTasks until STOPPED, StopTask, and errors for a missing cluster.
//!
//! moto 5.2 needs registered container instances for the EC2 launch type, so these tests use FARGATE with the subnet
//! and security group of moto's default VPC, and a client that repairs moto's numeric container fields (see
//! `watchbot_testing::ecs`). moto never runs a container: every task ends with exit code 0, one
//! state further per DescribeTasks call. Non-zero exit codes, RunTask `failures` and throttling are in `ecs_mocks.rs`.

use std::collections::BTreeMap;

use watchbot_testing::ecs::{CONTAINER, EcsFixture};
use watchbot_watcher::aws::ecs::{EcsRunner, EcsRunnerConfig, LaunchType};
use watchbot_watcher::ports::{Launch, PortErrorKind, TaskRunner, TaskSpec, TaskState};

struct Fixture {
    client: aws_sdk_ecs::Client,
    config: EcsRunnerConfig,
}

async fn fixture() -> Fixture {
    let ecs = watchbot_testing::ecs::fixture().await;
    Fixture { config: runner_config(&ecs), client: ecs.client }
}

/// A runner config for the fixture's cluster and task definition: FARGATE, moto's default subnet and security group.
pub(crate) fn runner_config(ecs: &EcsFixture) -> EcsRunnerConfig {
    let mut config = EcsRunnerConfig::new(&ecs.cluster, &ecs.task_definition, &ecs.container);
    config.launch_type = LaunchType::Fargate;
    config.subnets = vec![ecs.subnet.clone()];
    config.security_groups = vec![ecs.security_group.clone()];
    config
}

fn spec(message_id: &str) -> TaskSpec {
    let env: BTreeMap<String, String> = [
        ("MessageId", message_id),
        ("Subject", "hello"),
        ("Message", "{\"job\": 1, \"text\": \"a \\\"quoted\\\" line\\nand another\"}"),
        ("ApproximateReceiveCount", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    TaskSpec { message_id: message_id.to_string(), env }
}

async fn start(runner: &EcsRunner, spec: &TaskSpec) -> String {
    match runner.launch(spec).await.expect("run task") {
        Launch::Started(arn) => arn,
        other => panic!("expected a started task, got {other:?}"),
    }
}

#[tokio::test]
async fn run_task_sends_overrides_started_by_and_network() {
    let f = fixture().await;
    let runner = EcsRunner::new(f.client.clone(), f.config.clone());
    let message_id = "e2c045cc-5606-4950-964b-20877900bccb";
    let spec = spec(message_id);
    let arn = start(&runner, &spec).await;
    assert!(arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/"), "{arn}");

    let described = f.client.describe_tasks().cluster(&f.config.cluster).tasks(&arn).send().await.unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.started_by(), Some(message_id));
    assert_eq!(task.task_definition_arn(), Some(f.config.task_definition.as_str()));
    assert_eq!(task.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Fargate));
    let overrides = task.overrides().expect("overrides").container_overrides();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].name(), Some(CONTAINER));
    let env: BTreeMap<String, String> = overrides[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_string(), kv.value().unwrap().to_string()))
        .collect();
    assert_eq!(env, spec.env, "the task sees exactly the task environment");
}

#[tokio::test]
async fn find_running_adopts_the_task_started_for_the_message() {
    let f = fixture().await;
    let runner = EcsRunner::new(f.client.clone(), f.config.clone());
    let arn = start(&runner, &spec("message-one")).await;
    let other = start(&runner, &spec("message-two")).await;
    assert_ne!(arn, other);
    // A second watcher (another runner on the same cluster) finds it by message id.
    let second = EcsRunner::new(f.client.clone(), f.config.clone());
    assert_eq!(second.find_running("message-one").await.unwrap(), Some(arn.clone()));
    assert_eq!(second.find_running("message-two").await.unwrap(), Some(other));
    assert_eq!(second.find_running("message-three").await.unwrap(), None);
    // Once stopped, the task is no longer adoptable.
    runner.stop(&arn, "test").await.unwrap();
    assert_eq!(second.find_running("message-one").await.unwrap(), None);
}

#[tokio::test]
async fn poll_reports_running_until_stopped_with_the_exit_code() {
    let f = fixture().await;
    let runner = EcsRunner::new(f.client.clone(), f.config.clone());
    let arns = [start(&runner, &spec("a")).await, start(&runner, &spec("b")).await];
    // moto moves each task one state per DescribeTasks: DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED.
    let mut polls = 0;
    let states = loop {
        polls += 1;
        assert!(polls <= 10, "tasks never stopped");
        let states = runner.poll(&arns).await.unwrap();
        assert_eq!(states.iter().map(|(arn, _)| arn.clone()).collect::<Vec<_>>(), arns.to_vec(), "in request order");
        if states.iter().all(|(_, state)| *state != TaskState::Running) {
            break states;
        }
        assert!(states.iter().all(|(_, state)| *state == TaskState::Running), "both move in step: {states:?}");
    };
    assert_eq!(polls, 4, "one DescribeTasks per poll, batched");
    for (_, state) in states {
        assert_eq!(state, TaskState::Stopped { exit_code: Some(0), reason: "task stopped".into() });
    }
}

#[tokio::test]
async fn stop_task_records_the_reason() {
    let f = fixture().await;
    let runner = EcsRunner::new(f.client.clone(), f.config.clone());
    let arn = start(&runner, &spec("to-stop")).await;
    runner.stop(&arn, "watchbot: message timeout after 600 s").await.unwrap();
    let states = runner.poll(std::slice::from_ref(&arn)).await.unwrap();
    match &states[0].1 {
        TaskState::Stopped { reason, .. } => assert_eq!(reason, "watchbot: message timeout after 600 s"),
        other => panic!("expected stopped, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_task_no_longer_exists() {
    let f = fixture().await;
    let runner = EcsRunner::new(f.client.clone(), f.config.clone());
    let arn = start(&runner, &spec("known")).await;
    let unknown =
        format!("arn:aws:ecs:us-east-1:123456789012:task/{}/00000000000000000000000000000000", f.config.cluster);
    let states = runner.poll(&[unknown.clone(), arn.clone()]).await.unwrap();
    assert_eq!(states[0], (unknown, TaskState::Stopped { exit_code: None, reason: "task no longer exists".into() }));
    assert_eq!(states[1], (arn, TaskState::Running));
}

#[tokio::test]
async fn a_missing_cluster_is_not_found() {
    let f = fixture().await;
    let mut config = f.config.clone();
    config.cluster = watchbot_testing::unique_name("no-such-cluster");
    let runner = EcsRunner::new(f.client.clone(), config);
    let error = runner.launch(&spec("x")).await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::NotFound, "{error}");
    assert!(error.message.starts_with("ecs RunTask failed: ClusterNotFoundException"), "{error}");
    let error = runner.find_running("x").await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::NotFound, "{error}");
    assert!(error.message.contains("ListTasks"), "{error}");
}

#[tokio::test]
async fn fargate_without_subnets_is_rejected_before_calling_ecs() {
    let f = fixture().await;
    let mut config = f.config.clone();
    config.subnets.clear();
    let runner = EcsRunner::new(f.client.clone(), config);
    let error = runner.launch(&spec("x")).await.unwrap_err();
    assert_eq!(error.kind, PortErrorKind::Rejected);
    assert_eq!(error.message, "Fargate tasks need subnets");
}

/// A Fargate stack deployed on moto's CloudFormation, its watcher task definition's environment read back and given
/// to the watcher's config parser: the RunTask it sends runs on FARGATE in the stack's subnet. moto registers the
/// stack's task definitions without their network mode (and answers only `awsvpc` ones with a network attachment),
/// so the launch uses the fixture's FARGATE task definition; everything else is the stack's.
#[tokio::test]
async fn a_fargate_stacks_environment_runs_tasks_on_its_network_on_the_emulator() {
    use aws_sdk_cloudformation::types::StackStatus;
    let f = fixture().await;
    let sdk = watchbot_testing::moto().sdk_config().await;
    let path = format!("{}/../watchbot-template/tests/configs/fargate.json", env!("CARGO_MANIFEST_DIR"));
    let mut options: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    options["cluster"] = serde_json::json!(f.config.cluster);
    options["subnets"] = serde_json::json!(f.config.subnets);
    options["securityGroups"] = serde_json::json!(f.config.security_groups);
    let template = watchbot_template::template(&watchbot_template::Options::from_value(&options).unwrap()).unwrap();
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let name = watchbot_testing::unique_name("fargate");
    let body = serde_json::to_string(template.json()).unwrap();
    cloudformation.create_stack().stack_name(&name).template_body(body).send().await.expect("create stack");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let described = cloudformation.describe_stacks().stack_name(&name).send().await.unwrap();
        let status = described.stacks()[0].stack_status().cloned().unwrap();
        if status == StackStatus::CreateComplete {
            break;
        }
        assert_eq!(status, StackStatus::CreateInProgress, "{:?}", described.stacks()[0].stack_status_reason());
        assert!(std::time::Instant::now() < deadline, "the stack did not finish within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resources = cloudformation.describe_stack_resources().stack_name(&name).send().await.unwrap();
    let watcher = resources
        .stack_resources()
        .iter()
        .find(|r| r.logical_resource_id() == Some("FargateWatcher"))
        .and_then(|r| r.physical_resource_id())
        .expect("the watcher task definition")
        .to_string();
    let described = f.client.describe_task_definition().task_definition(watcher).send().await.unwrap();
    let env: BTreeMap<String, String> = described.task_definition().unwrap().container_definitions()[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_string(), kv.value().unwrap_or_default().to_string()))
        .collect();
    let parsed = watchbot_watcher::config::from_env(&env, watchbot_watcher::config::Source::Container).expect("parses");
    let mut config = parsed.ecs.expect("ecs");
    assert_eq!((config.launch_type, config.assign_public_ip), (LaunchType::Fargate, true));
    config.task_definition = f.config.task_definition.clone();
    let runner = EcsRunner::new(f.client.clone(), config);
    let arn = start(&runner, &spec("e2c045cc-5606-4950-964b-20877900bccb")).await;
    let described = f.client.describe_tasks().cluster(&f.config.cluster).tasks(&arn).send().await.unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Fargate));
    let subnets: Vec<&str> = task
        .attachments()
        .iter()
        .flat_map(|a| a.details())
        .filter(|d| d.name() == Some("subnetId"))
        .filter_map(|d| d.value())
        .collect();
    assert_eq!(subnets, [f.config.subnets[0].as_str()], "the task's network interface is in the stack's subnet");
}
