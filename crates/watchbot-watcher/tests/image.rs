//! The watcher image, built and run as real containers. It is built by `xtask::image::build`, the code behind
//! `cargo xtask image`, from this test binary's own `watchbot-watcher` build (debug: no second compile), under a tag
//! unique to the run (`watchbot:test-<pid>-…`) and the label `watchbot.test=watcher-image`; containers carry the
//! label too (and `watchbot.test.pid`), and both are removed when the tests let go of them. What a killed run left
//! behind (its process is gone) is removed before the next run builds its image.
//!
//! Without environment the image exits 1 in one line naming a variable. With the environment of a generated stack's
//! watcher task definition, deployed on moto's CloudFormation (moto resolves the refs to the stack's queue, topics,
//! worker task definition), and host networking, it runs the stack's messages as ECS tasks (EC2 launch type, the
//! template's default: the cluster gets a container instance) and deletes them; `docker stop` (ECS's 30 s stop
//! timeout) makes it exit 0 with its running message returned to the queue and its task left for adoption.
//!
//! The container's AWS endpoint is a [`FaultProxy`] in front of moto that repairs moto's numeric ECS fields
//! (`ecs::repair_answer`) and keeps the task of a message whose body is `hold` running until it is stopped (moto ends
//! every task by itself after a few DescribeTasks).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use watchbot_testing::process::{TestCommand, TestDir, wait_for_value};
use watchbot_testing::proxy::FaultProxy;

/// The label on every image and container these tests make.
const LABEL: (&str, &str) = ("watchbot.test", "watcher-image");
/// The body of a message whose task the proxy keeps running.
const HOLD: &str = "hold";
/// How long the watcher may take to run the messages (moto: about 4 s per task, two at a time).
const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn docker() -> TestCommand {
    let mut command = TestCommand::new("docker");
    command.when_missing("the image tests need the Docker CLI and a running engine (`docker info`)");
    command
}

/// The image under test, built when a test first needs it and removed when the last test holding it lets go.
struct Image {
    tag: String,
}

/// The shared image's tag and how many tests hold it.
static IMAGE: Mutex<(Option<String>, usize)> = Mutex::new((None, 0));

fn image() -> Image {
    let mut shared = IMAGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tag = match &shared.0 {
        Some(tag) => tag.clone(),
        None => {
            sweep_leftovers();
            // `test-<pid>-<counter>-<random>`: the pid tells a later run whether this one is gone.
            let tag = format!("{}:{}", xtask::image::IMAGE_NAME, watchbot_testing::unique_name("test"));
            let dir = TestDir::new();
            let build = xtask::image::ImageBuild {
                binary: env!("CARGO_BIN_EXE_watchbot-watcher").into(),
                context: dir.join("context"),
                tag: tag.clone(),
                labels: vec![(LABEL.0.into(), LABEL.1.into())],
            };
            xtask::image::build(&build).unwrap_or_else(|error| panic!("{error}"));
            shared.0 = Some(tag.clone());
            tag
        }
    };
    shared.1 += 1;
    Image { tag }
}

impl Drop for Image {
    fn drop(&mut self) {
        let mut shared = IMAGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.1 -= 1;
        if shared.1 == 0
            && let Some(tag) = shared.0.take()
        {
            let _ = Command::new("docker").args(["rmi", &tag]).output();
        }
    }
}

/// Removes the containers and images of earlier runs whose test process is gone (killed before its cleanup ran);
/// those of runs still going (another checkout's) are left alone.
fn sweep_leftovers() {
    let gone = |pid: &str| !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists();
    let filter = format!("label={}={}", LABEL.0, LABEL.1);
    let containers = docker()
        .args(["ps", "--all", "--filter", &filter, "--format", "{{.ID}} {{.Label \"watchbot.test.pid\"}}"])
        .stdout();
    for (id, pid) in containers.lines().filter_map(|line| line.split_once(' ')) {
        if gone(pid) {
            docker().args(["rm", "--force", id]).success();
        }
    }
    let images = docker().args(["images", "--filter", &filter, "--format", "{{.Repository}}:{{.Tag}}"]).stdout();
    for tag in images.lines() {
        let pid = tag.split(":test-").nth(1).and_then(|rest| rest.split('-').next()).unwrap_or_default();
        if gone(pid) {
            docker().args(["rmi", tag]).success();
        }
    }
}

/// A detached container of the image, removed (with `docker rm -f`) when dropped.
struct Container {
    name: String,
}

impl Container {
    fn start(image: &Image, env: &BTreeMap<String, String>) -> Container {
        let name = watchbot_testing::unique_name("watchbot-watcher");
        let mut command = docker();
        command.args(["run", "--detach", "--network", "host", "--name", &name]);
        command.arg("--label").arg(format!("{}={}", LABEL.0, LABEL.1));
        command.arg("--label").arg(format!("watchbot.test.pid={}", std::process::id()));
        for (key, value) in env {
            command.arg("--env").arg(format!("{key}={value}"));
        }
        command.arg(&image.tag).success();
        Container { name }
    }

    /// `docker inspect`'s value of a Go template (e.g. `{{.State.ExitCode}}`).
    fn inspect(&self, format: &str) -> String {
        docker().args(["inspect", "--format", format, &self.name]).stdout().trim().to_string()
    }

    /// The watcher's event log (its stderr) so far, one JSON value per line that parses.
    fn events(&self) -> Vec<Value> {
        let logs = docker().args(["logs", &self.name]).success();
        logs.stderr().lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// Everything it printed, for failure reports.
    fn report(&self) -> String {
        let logs = docker().args(["logs", &self.name]).output();
        format!("container {}:\n{logs}", self.name)
    }

    /// Panics with the report when the container is no longer running.
    fn assert_running(&self) {
        if self.inspect("{{.State.Running}}") != "true" {
            panic!("the watcher container stopped early:\n{}", self.report());
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "--force", &self.name]).output();
    }
}

#[test]
fn the_image_without_environment_exits_1_naming_a_variable() {
    let image = image();
    let config = docker()
        .args(["image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}}"])
        .arg(&image.tag)
        .stdout();
    assert_eq!(
        config.trim(),
        r#"65532:65532 ["/usr/local/bin/watchbot-watcher"] SIGTERM"#,
        "non-root, the watcher, SIGTERM"
    );
    let finished =
        docker().args(["run", "--rm", "--label", &format!("{}={}", LABEL.0, LABEL.1)]).arg(&image.tag).fails_with(1);
    assert_eq!(finished.stdout(), "");
    assert_eq!(finished.stderr(), "watchbot-watcher: environment variable QueueUrl: is required but not set\n");
    let version = docker()
        .args(["run", "--rm", "--label", &format!("{}={}", LABEL.0, LABEL.1)])
        .arg(&image.tag)
        .arg("--version")
        .stdout();
    assert_eq!(version, format!("watchbot-watcher {}\n", env!("CARGO_PKG_VERSION")));
}

/// A stack deployed on moto from a generated template: the watcher task definition's resolved environment and
/// image, on a cluster of its own with one container instance (EC2 launch type).
struct Stack {
    cluster: String,
    env: BTreeMap<String, String>,
    image: String,
}

fn deploy(dir: &TestDir) -> Stack {
    let moto = watchbot_testing::moto();
    let cluster = watchbot_testing::unique_name("image");
    let cluster_arn =
        format!("arn:aws:ecs:{}:{}:cluster/{cluster}", watchbot_testing::REGION, watchbot_testing::ACCOUNT_ID);
    let options = serde_json::json!({
        "cluster": cluster_arn, "service": "worker", "serviceVersion": "v1", "notificationEmail": "ops@example.com",
        // Two tasks at once; `debug` logs name every delete and return.
        "workers": 2, "debugLogs": true,
    });
    let options = watchbot_template::Options::from_json_str(&options.to_string()).expect("options");
    let template = watchbot_template::template(&options).expect("template");
    let path = dir.write("stack.template.json", serde_json::to_string(template.json()).expect("template json"));
    let stack = watchbot_testing::unique_name("image");
    let out = moto.python(&format!(
        r#"
import json, time
ecs, ec2, cfn = client('ecs'), client('ec2'), client('cloudformation')
ecs.create_cluster(clusterName={cluster:?})
cfn.create_stack(StackName={stack:?}, TemplateBody=open({path:?}).read(), Capabilities=['CAPABILITY_IAM'])
for _ in range(240):
    status = cfn.describe_stacks(StackName={stack:?})['Stacks'][0]['StackStatus']
    if status != 'CREATE_IN_PROGRESS':
        break
    time.sleep(0.25)
assert status == 'CREATE_COMPLETE', status
resources = {{r['LogicalResourceId']: r['PhysicalResourceId']
             for r in cfn.list_stack_resources(StackName={stack:?})['StackResourceSummaries']}}
watcher = ecs.describe_task_definition(taskDefinition=resources['WatchbotWatcher'])['taskDefinition']
container = watcher['containerDefinitions'][0]
ami = ec2.describe_images()['Images'][0]['ImageId']
instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='m5.xlarge')['Instances'][0]
ecs.register_container_instance(cluster={cluster:?},
                                instanceIdentityDocument=json.dumps({{'instanceId': instance['InstanceId']}}))
print(json.dumps({{'env': {{e['name']: e['value'] for e in container['environment']}}, 'image': container['image']}}))
"#,
        path = path.display().to_string(),
    ));
    let deployed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let env: BTreeMap<String, String> = deployed["env"]
        .as_object()
        .expect("env")
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
        .collect();
    let generated: Vec<String> = template.watcher_environment().into_keys().collect();
    assert_eq!(
        env.keys().cloned().collect::<Vec<_>>(),
        generated,
        "the deployed watcher environment is the template's"
    );
    Stack { cluster, env, image: deployed["image"].as_str().unwrap_or_default().to_string() }
}

/// moto's ECS answers repaired, and the task of a `hold` message kept running until it is asked to stop.
fn repair_and_hold(body: &[u8]) -> Option<Vec<u8>> {
    let repaired = watchbot_testing::ecs::repair_answer(body).unwrap_or_else(|| body.to_vec());
    let mut document: Value = serde_json::from_slice(&repaired).ok()?;
    if let Some(tasks) = document.get_mut("tasks").and_then(Value::as_array_mut) {
        for task in tasks {
            let overrides = task["overrides"]["containerOverrides"].as_array().cloned().unwrap_or_default();
            let held = overrides
                .iter()
                .flat_map(|o| o["environment"].as_array().cloned().unwrap_or_default())
                .any(|pair| pair["name"] == "Message" && pair["value"] == HOLD);
            if held && task["desiredStatus"] == "RUNNING" {
                task["lastStatus"] = "RUNNING".into();
                for container in task["containers"].as_array_mut().into_iter().flatten() {
                    container["lastStatus"] = "RUNNING".into();
                    if let Some(container) = container.as_object_mut() {
                        container.remove("exitCode");
                    }
                }
            }
        }
    }
    serde_json::to_vec(&document).ok()
}

fn queue_counts(runtime: &tokio::runtime::Runtime, sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = runtime
        .block_on(sqs.get_queue_attributes().queue_url(url).attribute_names(A::All).send())
        .expect("queue attributes");
    let attributes = out.attributes().cloned().unwrap_or_default();
    let count = |name: A| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    (count(A::ApproximateNumberOfMessages), count(A::ApproximateNumberOfMessagesNotVisible))
}

fn running_tasks(runtime: &tokio::runtime::Runtime, ecs: &aws_sdk_ecs::Client, cluster: &str, id: &str) -> usize {
    let list =
        ecs.list_tasks().cluster(cluster).started_by(id).desired_status(aws_sdk_ecs::types::DesiredStatus::Running);
    runtime.block_on(list.send()).expect("list tasks").task_arns().len()
}

/// The events of one kind, as (message id, the whole event).
fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["event"] == name).collect()
}

#[test]
fn the_image_runs_a_stacks_messages_through_ecs_and_drains_on_docker_stop() {
    let image = image();
    let dir = TestDir::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let moto = watchbot_testing::moto();
    let stack = deploy(&dir);
    assert!(
        stack.image.ends_with(&format!("/{}", xtask::image::default_tag())),
        "the template runs {}, cargo xtask image tags {}",
        stack.image,
        xtask::image::default_tag()
    );
    let proxy = runtime.block_on(FaultProxy::start(moto.endpoint())).expect("proxy");
    proxy.rewrite(watchbot_testing::ecs::TARGET_PREFIX, repair_and_hold);
    let mut env = stack.env.clone();
    for (key, value) in moto.env() {
        env.insert(key.to_string(), value);
    }
    env.insert("AWS_ENDPOINT_URL".into(), proxy.endpoint());
    let sdk = runtime.block_on(moto.sdk_config());
    let (sqs, ecs) = (aws_sdk_sqs::Client::new(&sdk), aws_sdk_ecs::Client::new(&sdk));
    let queue = stack.env["QueueUrl"].clone();
    let send = |body: &str| {
        let out = runtime.block_on(sqs.send_message().queue_url(&queue).message_body(body).send()).expect("send");
        out.message_id().expect("message id").to_string()
    };

    let container = Container::start(&image, &env);
    let ids: Vec<String> = (1..=3).map(|n| send(&format!("job {n}"))).collect();
    // Each message ran as an ECS task started by its id, and was deleted: the queue is empty.
    wait_for_value("the three messages to be run and deleted", RUN_DEADLINE, || {
        container.assert_running();
        (queue_counts(&runtime, &sqs, &queue) == (0, 0)).then_some(())
    });
    for id in &ids {
        let started = runtime.block_on(ecs.list_tasks().cluster(&stack.cluster).started_by(id).send());
        assert_eq!(started.expect("list tasks").task_arns().len(), 1, "one task for {id}\n{}", container.report());
    }
    let events = container.events();
    let deleted: BTreeSet<&str> =
        events_named(&events, "deleted").iter().filter_map(|e| e["message_id"].as_str()).collect();
    assert_eq!(deleted, ids.iter().map(String::as_str).collect(), "{}", container.report());

    // A message whose task runs on; then ECS stops the watcher (`docker stop`: SIGTERM, SIGKILL after 30 s).
    let held = send(HOLD);
    wait_for_value("the held message's task to run", RUN_DEADLINE, || {
        container.assert_running();
        (running_tasks(&runtime, &ecs, &stack.cluster, &held) == 1).then_some(())
    });
    docker().args(["stop", "--time", "30", &container.name]).deadline(Duration::from_secs(60)).success();
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0", "a graceful stop within 30 s\n{}", container.report());
    let events = container.events();
    let returned: Vec<&str> =
        events_named(&events, "returned").iter().filter_map(|e| e["message_id"].as_str()).collect();
    assert_eq!(returned, [held.as_str()], "the running message is returned\n{}", container.report());
    let stopped = events_named(&events, "stopped");
    assert_eq!(stopped.len(), 1, "{}", container.report());
    assert_eq!((stopped[0]["received"].as_u64(), stopped[0]["succeeded"].as_u64()), (Some(4), Some(3)));
    // Drained: the message is back in the queue at once, and its task left running for the next watcher to adopt.
    assert_eq!(queue_counts(&runtime, &sqs, &queue), (1, 0), "{}", container.report());
    assert_eq!(running_tasks(&runtime, &ecs, &stack.cluster, &held), 1, "the task is left running (adoption)");
    let received = runtime.block_on(sqs.receive_message().queue_url(&queue).send()).expect("receive");
    assert_eq!(
        received.messages().iter().map(|m| m.message_id().unwrap_or_default()).collect::<Vec<_>>(),
        [held.as_str()]
    );
}
