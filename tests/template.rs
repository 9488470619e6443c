//! End-to-end tests of `watchbot template`: the CLI's output and errors, cfn-lint on merged templates, and
//! deployments of every snapshot config on moto's CloudFormation, checked through the services' own APIs.
//!
//! What moto's CloudFormation does with our resource types (moto 5.2.1, checked by hand and asserted below where
//! it can be): it creates queues, topics (with their inline subscriptions), the log group, roles, the user and its
//! access key, task definitions, the service, the DynamoDB table, the Lambda permission (only if the function
//! exists, so the test creates it), and the API Gateway REST API, resource, method and deployment (with its stage).
//! It creates the dashboard, and silently skips `AWS::SQS::QueuePolicy`, `AWS::CloudWatch::Alarm`,
//! `AWS::SNS::Subscription`, `AWS::Logs::SubscriptionFilter`, `AWS::Logs::MetricFilter`, `AWS::ApiGateway::ApiKey`, `AWS::ApiGateway::UsagePlan` and
//! `AWS::ApiGateway::UsagePlanKey`: the stack still reaches CREATE_COMPLETE and lists them with no physical id.
//! Those resources stay in the template; cfn-lint (`cargo xtask lint-templates`, and `merged_templates_pass_cfn_lint`
//! here) is what checks them.

use crate::util::{TestCommand, TestDir, watchbot, workspace_path};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `watchbot template --config <config>` and parses its stdout.
fn cli_template(config: &Path) -> Value {
    let out = watchbot(&TestDir::new()).arg("template").arg("--config").arg(config).stdout();
    serde_json::from_str(&out).expect("stdout is one JSON template")
}

/// Writes `config` to a file in the test's folder.
fn config_file(dir: &TestDir, name: &str, config: &Value) -> PathBuf {
    dir.write(name, serde_json::to_string_pretty(config).unwrap())
}

#[test]
fn prints_the_template_of_the_bundled_example() {
    let config = workspace_path("examples/config/minimal.json");
    let printed = cli_template(&config);
    let options = watchbot_template::Options::from_value(&read_json(&config)).unwrap();
    assert_eq!(printed, watchbot_template::template(&options).unwrap().to_json());
}

#[test]
fn printed_templates_have_sorted_keys_whatever_serde_json_features_the_binary_links() {
    // The AWS SDK's HTTP client switches on serde_json's `preserve_order` in this binary; output must not care.
    let config = workspace_path("crates/watchbot-template/tests/configs/everything.json");
    let dir = TestDir::new();
    let out = watchbot(&dir).args(["template", "--config"]).arg(&config).success();
    let printed: Value = serde_json::from_slice(out.stdout_bytes()).unwrap();
    let sorted = watchbot_template::sorted(printed.clone());
    assert_eq!(serde_json::to_string(&printed).unwrap(), serde_json::to_string(&sorted).unwrap());

    let generated = dir.write("watchbot.template.json", out.stdout_bytes());
    let merged = watchbot(&dir)
        .arg("merge")
        .arg(workspace_path("examples/s3-bucket/service.template.json"))
        .arg(&generated)
        .success();
    let printed: Value = serde_json::from_slice(merged.stdout_bytes()).unwrap();
    let sorted = watchbot_template::sorted(printed.clone());
    assert_eq!(serde_json::to_string(&printed).unwrap(), serde_json::to_string(&sorted).unwrap());
}

#[test]
fn writes_the_template_to_output_and_prints_refs() {
    let dir = TestDir::new();
    let target = dir.join("out.json");
    let config = workspace_path("examples/config/minimal.json");
    let out = watchbot(&dir).arg("template").arg("--config").arg(&config).arg("--output").arg(&target).success();
    assert_eq!(out.stdout(), "", "the template goes to the file only");
    assert_eq!(read_json(&target), cli_template(&config));
    // Nothing but the template is left in the folder (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let refs = watchbot(&TestDir::new()).arg("template").arg("--config").arg(&config).arg("--refs").stdout();
    let refs: Value = serde_json::from_str(&refs).unwrap();
    assert_eq!(refs["queueUrl"], json!({"Ref": "WatchbotQueue"}));
    assert_eq!(refs["topic"], json!({"Ref": "WatchbotTopic"}));
}

#[test]
fn bad_configs_exit_1_with_one_line_naming_the_option_and_write_nothing() {
    let dir = TestDir::new();
    let base = read_json(&workspace_path("examples/config/minimal.json"));
    let with = |key: &str, value: Value| {
        let mut config = base.clone();
        if value.is_null() {
            config.as_object_mut().unwrap().remove(key);
        } else {
            config[key] = value;
        }
        config
    };
    let cases = [
        ("wrong-type", with("workers", json!("five")), "option \"workers\": expected a whole number"),
        ("unknown", with("wrokers", json!(5)), "unknown option \"wrokers\", did you mean \"workers\"?"),
        ("missing-service", with("service", Value::Null), "missing option \"service\""),
        ("contradictory", with("webhookKey", json!(true)), "options \"webhookKey\" and \"webhook\""),
        (
            "both-notifications",
            with("notificationTopic", json!("arn:aws:sns:us-east-1:123456789012:t")),
            "options \"notificationEmail\" and \"notificationTopic\"",
        ),
    ];
    for (name, config, expected) in cases {
        let path = config_file(&dir, &format!("{name}.json"), &config);
        let target = dir.join(format!("{name}.template.json"));
        let out = watchbot(&dir).arg("template").arg("--config").arg(&path).arg("--output").arg(&target).fails_with(1);
        let err = out.stderr();
        assert_eq!(err.lines().count(), 1, "{name}: not one line:\n{out}");
        assert!(err.contains(expected), "{name}: does not contain {expected}:\n{out}");
        assert!(err.contains(&path.display().to_string()), "{name}: does not name the file:\n{out}");
        assert!(!target.exists(), "{name}: an output file was written");
        assert_eq!(out.stdout(), "", "{name}");
    }

    let not_json = dir.write("broken.json", "{\"cluster\": ");
    let out = watchbot(&dir).arg("template").arg("--config").arg(&not_json).fails_with(1);
    assert!(out.stderr().contains("config is not valid JSON"), "{out}");

    let out = watchbot(&dir).arg("template").arg("--config").arg(dir.join("absent.json")).fails_with(1);
    assert!(out.stderr().contains("cannot read"), "{out}");
}

#[test]
fn an_open_webhook_is_one_warning_line_and_the_template_unchanged() {
    let config = workspace_path("crates/watchbot-template/tests/configs/open-webhook.json");
    let out = watchbot(&TestDir::new()).arg("template").arg("--config").arg(&config).success();
    let err = out.stderr();
    assert_eq!(err.lines().count(), 1, "{out}");
    assert!(err.starts_with("watchbot: warning: "), "{out}");
    assert!(err.contains("\"webhook\" without \"webhookKey\": anyone who finds the endpoint can POST jobs"), "{out}");
    let printed: Value = serde_json::from_slice(out.stdout_bytes()).unwrap();
    let options = watchbot_template::Options::from_value(&read_json(&config)).unwrap();
    assert_eq!(printed, watchbot_template::template(&options).unwrap().to_json());
    // With a key, or without a webhook: no warning.
    let quiet = watchbot(&TestDir::new())
        .arg("template")
        .arg("--config")
        .arg(workspace_path("crates/watchbot-template/tests/configs/everything.json"))
        .success();
    assert_eq!(quiet.stderr(), "", "{quiet}");
}

#[test]
fn usage_errors_exit_2() {
    let out = watchbot(&TestDir::new()).arg("template").fails_with(2);
    assert!(out.stderr().contains("--config"), "{out}");
}

/// cfn-lint as `cargo xtask test` installs it, else from PATH.
fn cfn_lint() -> PathBuf {
    let venv = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_path("target"))
        .join("tools/venv/bin/cfn-lint");
    if venv.exists() { venv } else { PathBuf::from("cfn-lint") }
}

/// The seed's S3 example and a two-watchbot merge are templates a user deploys but `cargo xtask lint-templates`
/// (one config → one template) does not see: lint them here. Errors and warnings both fail.
#[test]
fn merged_templates_pass_cfn_lint() {
    let dir = TestDir::new();
    let s3 = s3_bucket_template();
    let mut two = Vec::new();
    for prefix in ["Map", "Reduce"] {
        let mut config = read_json(&workspace_path("examples/config/minimal.json"));
        config["prefix"] = json!(prefix);
        two.push(cli_template(&config_file(&dir, &format!("{prefix}.json"), &config)));
    }
    let two = watchbot_template::merge(&two).unwrap();
    let mut paths = Vec::new();
    let (topic, email) = (optional_references_template(false), optional_references_template(true));
    for (name, template) in [("s3-bucket", s3), ("two-watchbots", two), ("refs-topic", topic), ("refs-email", email)] {
        paths.push(config_file(&dir, &format!("{name}.template.json"), &template));
    }
    TestCommand::new(cfn_lint())
        .args(&paths)
        .current_dir(workspace_path("."))
        .when_missing("run `cargo xtask install-tools`, or `pip install cfn-lint`")
        .deadline(Duration::from_secs(300))
        .success();
}

/// The optional options that accept a reference, each a parameter defaulting to `""` ("not this time"): the
/// notification topic (or, with `email`, the email), log forwarding, the KMS key, the watcher version, the worker's
/// memory limits.
fn optional_references_template(email: bool) -> Value {
    let mut config = read_json(&workspace_path("examples/config/minimal.json"));
    let options = config.as_object_mut().unwrap();
    options.remove("notificationEmail");
    let notification = if email { "notificationEmail" } else { "notificationTopic" };
    options.insert(notification.into(), json!({"Ref": "Notifications"}));
    options.insert("logAggregationFunction".into(), json!({"Ref": "LogFunction"}));
    options.insert("kmsKey".into(), json!({"Ref": "KmsKey"}));
    options.insert("watchbotVersion".into(), json!({"Ref": "WatcherVersion"}));
    options.insert("reservation".into(), json!({"memory": {"Ref": "Memory"}, "softMemory": {"Ref": "SoftMemory"}}));
    options.insert("outputs".into(), json!(true));
    let names = ["Notifications", "LogFunction", "KmsKey", "WatcherVersion", "Memory", "SoftMemory"];
    let parameters: serde_json::Map<String, Value> =
        names.iter().map(|name| (name.to_string(), json!({"Type": "String", "Default": ""}))).collect();
    let dir = TestDir::new();
    let generated = cli_template(&config_file(&dir, "refs.json", &Value::Object(options.clone())));
    watchbot_template::merge(&[json!({"Parameters": parameters}), generated]).unwrap()
}

/// The seed README's example: the user's template merged with `watchbot template` of its options, through the CLI.
fn s3_bucket_template() -> Value {
    let generated = cli_template(&workspace_path("examples/s3-bucket/watchbot.json"));
    let dir = TestDir::new();
    let generated_path = config_file(&dir, "watchbot.template.json", &generated);
    let out = watchbot(&dir)
        .arg("merge")
        .arg(workspace_path("examples/s3-bucket/service.template.json"))
        .arg(&generated_path)
        .stdout();
    serde_json::from_str(&out).unwrap()
}

// ---- Deployments on moto ----------------------------------------------------------------------------------------

struct Stack {
    /// Logical id → physical id.
    resources: BTreeMap<String, String>,
    /// Logical ids moto listed without creating anything.
    skipped: Vec<String>,
    /// The stack's Outputs: key → value.
    outputs: BTreeMap<String, String>,
}

/// Creates a stack and waits for CREATE_COMPLETE; returns its resources.
async fn deploy(config: &aws_config::SdkConfig, template: &Value, parameters: &[(&str, &str)]) -> Stack {
    let cloudformation = aws_sdk_cloudformation::Client::new(config);
    let name = watchbot_testing::unique_name("template");
    let mut request = cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(serde_json::to_string(template).unwrap())
        .capabilities(Capability::CapabilityIam);
    for (key, value) in parameters {
        request = request.parameters(Parameter::builder().parameter_key(*key).parameter_value(*value).build());
    }
    request.send().await.unwrap_or_else(|e| panic!("create_stack: {e:?}"));
    let mut status = StackStatus::CreateInProgress;
    let mut outputs = BTreeMap::new();
    for _ in 0..120 {
        let stacks = cloudformation.describe_stacks().stack_name(&name).send().await.unwrap();
        let stack = &stacks.stacks()[0];
        status = stack.stack_status().unwrap().clone();
        if status != StackStatus::CreateInProgress {
            assert_eq!(status, StackStatus::CreateComplete, "{:?}", stack.stack_status_reason());
            for output in stack.outputs() {
                let value = output.output_value().unwrap_or_default().to_string();
                outputs.insert(output.output_key().unwrap_or_default().to_string(), value);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, StackStatus::CreateComplete);
    let listed = cloudformation.list_stack_resources().stack_name(&name).send().await.unwrap();
    let mut stack = Stack { resources: BTreeMap::new(), skipped: Vec::new(), outputs };
    for summary in listed.stack_resource_summaries() {
        match (summary.logical_resource_id(), summary.physical_resource_id()) {
            (Some(logical), Some(physical)) if !logical.is_empty() => {
                stack.resources.insert(logical.to_string(), physical.to_string());
            }
            (logical, _) => stack.skipped.push(logical.unwrap_or_default().to_string()),
        }
    }
    stack
}

impl Stack {
    fn id(&self, logical: &str) -> &str {
        self.resources.get(logical).unwrap_or_else(|| panic!("stack has no {logical}: {:?}", self.resources))
    }
}

/// What every deployed watchbot must really hold, read back through SQS, SNS and ECS.
struct Expect<'a> {
    prefix: &'a str,
    cluster: &'a str,
    image: &'a str,
    visibility_timeout: u64,
    max_receive_count: u64,
    watchers: i32,
    concurrency: &'a str,
}

impl Expect<'_> {
    /// What `examples/config/minimal.json` deploys, on the cluster `arn`.
    fn minimal(arn: &str) -> Expect<'_> {
        Expect {
            prefix: "Watchbot",
            cluster: arn,
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-worker:v1.0.0",
            visibility_timeout: 600,
            max_receive_count: 10,
            watchers: 1,
            concurrency: "1",
        }
    }
}

async fn check_core(config: &aws_config::SdkConfig, stack: &Stack, expect: &Expect<'_>) {
    let p = expect.prefix;
    let sqs = aws_sdk_sqs::Client::new(config);
    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes()
                .cloned()
                .unwrap_or_default()
        }
    };
    use aws_sdk_sqs::types::QueueAttributeName as A;
    // moto's physical ids of queues are URLs on its default host; GetQueueUrl by name gives ours.
    let url_of = |physical: &str| {
        let sqs = sqs.clone();
        let name = physical.rsplit('/').next().unwrap().to_string();
        async move { sqs.get_queue_url().queue_name(name).send().await.unwrap().queue_url().unwrap().to_string() }
    };
    let queue = attributes(url_of(stack.id(&format!("{p}Queue"))).await).await;
    let dead_letter = attributes(url_of(stack.id(&format!("{p}DeadLetterQueue"))).await).await;
    let redrive: Value = serde_json::from_str(&queue[&A::RedrivePolicy]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"].as_str(), Some(dead_letter[&A::QueueArn].as_str()));
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), expect.max_receive_count.to_string());
    assert_eq!(queue[&A::VisibilityTimeout], expect.visibility_timeout.to_string());

    // The work topic exists and delivers to the queue.
    let sns = aws_sdk_sns::Client::new(config);
    let topic = stack.id(&format!("{p}Topic"));
    sns.get_topic_attributes().topic_arn(topic).send().await.expect("the work topic exists");
    let subscriptions = sns.list_subscriptions_by_topic().topic_arn(topic).send().await.unwrap();
    assert!(
        subscriptions
            .subscriptions()
            .iter()
            .any(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue[&A::QueueArn].as_str())),
        "the topic does not deliver to the queue: {subscriptions:?}"
    );

    // Task definitions: the worker's image, and the watcher's environment resolved to the real resources.
    let ecs = aws_sdk_ecs::Client::new(config);
    let worker = stack.id(&format!("{p}Worker"));
    let described = ecs.describe_task_definition().task_definition(worker).send().await.unwrap();
    let container = &described.task_definition().unwrap().container_definitions()[0];
    assert_eq!(container.name(), Some(watchbot_template::WORKER_CONTAINER));
    assert_eq!(container.image(), Some(expect.image));
    let watcher = stack.id(&format!("{p}Watcher"));
    let described = ecs.describe_task_definition().task_definition(watcher).send().await.unwrap();
    let env: BTreeMap<&str, &str> = described.task_definition().unwrap().container_definitions()[0]
        .environment()
        .iter()
        .map(|pair| (pair.name().unwrap(), pair.value().unwrap()))
        .collect();
    assert_eq!(env["TaskDefinition"], worker);
    assert_eq!(env["QueueUrl"], stack.id(&format!("{p}Queue")));
    assert_eq!(env["DeadLetterQueueUrl"], stack.id(&format!("{p}DeadLetterQueue")));
    assert_eq!(env["WorkTopic"], topic);
    assert_eq!(env["LogGroup"], stack.id(&format!("{p}LogGroup")));
    assert_eq!(env["Concurrency"], expect.concurrency);
    assert_eq!(env["Cluster"], expect.cluster);
    assert_eq!(env["ContainerName"], watchbot_template::WORKER_CONTAINER);

    // The service runs the watcher on the cluster, `watchers` of them.
    let services = ecs
        .describe_services()
        .cluster(expect.cluster)
        .services(stack.id(&format!("{p}Service")))
        .send()
        .await
        .unwrap();
    let service = &services.services()[0];
    assert_eq!(service.desired_count(), expect.watchers);
    assert_eq!(service.task_definition(), Some(watcher));
}

async fn create_cluster(config: &aws_config::SdkConfig) -> (String, String) {
    let name = watchbot_testing::unique_name("cluster");
    let created = aws_sdk_ecs::Client::new(config).create_cluster().cluster_name(&name).send().await.unwrap();
    (name, created.cluster().unwrap().cluster_arn().unwrap().to_string())
}

/// Checks that the skipped resources are exactly the types moto does not implement (so nothing we rely on is lost).
fn assert_only_unsupported_skipped(template: &Value, stack: &Stack) {
    const UNSUPPORTED: &[&str] = &[
        "AWS::SQS::QueuePolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::SNS::Subscription",
        "AWS::Logs::SubscriptionFilter",
        "AWS::Logs::MetricFilter",
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey",
    ];
    let resources = template["Resources"].as_object().unwrap();
    let unsupported = resources.values().filter(|r| UNSUPPORTED.contains(&r["Type"].as_str().unwrap())).count();
    assert_eq!(stack.skipped.len(), unsupported, "skipped: {:?}", stack.skipped);
    for (id, resource) in resources {
        if !UNSUPPORTED.contains(&resource["Type"].as_str().unwrap()) {
            assert!(stack.resources.contains_key(id), "moto did not create {id}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_config_deploys() {
    let config = watchbot_testing::moto().sdk_config().await;
    let (cluster, arn) = create_cluster(&config).await;
    // The snapshot config, on a cluster of its own (moto's accounts are shared by every test of this binary).
    let text = std::fs::read_to_string(workspace_path("examples/config/minimal.json")).unwrap();
    let options: Value =
        serde_json::from_str(&text.replace("cluster/processing", &format!("cluster/{cluster}"))).unwrap();
    let dir = TestDir::new();
    let template = cli_template(&config_file(&dir, "minimal.json", &options));
    let stack = deploy(&config, &template, &[]).await;
    assert_only_unsupported_skipped(&template, &stack);
    let expect = Expect::minimal(&arn);
    check_core(&config, &stack, &expect).await;
    // The notification topic exists, with the email subscription.
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = stack.id("WatchbotNotificationTopic");
    let subscriptions = sns.list_subscriptions_by_topic().topic_arn(topic).send().await.unwrap();
    assert_eq!(subscriptions.subscriptions()[0].endpoint(), Some("alerts@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_s3_bucket_example_deploys() {
    let config = watchbot_testing::moto().sdk_config().await;
    let (_, arn) = create_cluster(&config).await;
    let template = s3_bucket_template();
    let stack =
        deploy(&config, &template, &[("Cluster", &arn), ("GitSha", "abc123"), ("AlarmEmail", "ops@example.com")]).await;
    assert_only_unsupported_skipped(&template, &stack);
    let expect = Expect {
        prefix: "Watchbot",
        cluster: &arn,
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo-name:abc123",
        visibility_timeout: 600,
        max_receive_count: 10,
        watchers: 1,
        concurrency: "5",
    };
    check_core(&config, &stack, &expect).await;
    assert_eq!(stack.id("MyBucket"), "my-bucket");
}

/// A Lambda function on moto (log forwarding's Lambda permission needs it to exist, as AWS does); its ARN.
fn create_function(moto: &watchbot_testing::Moto, name: &str) -> String {
    moto.python(&format!(
        "import io, zipfile\n\
         role = client('iam').create_role(RoleName={name:?}, AssumeRolePolicyDocument='{{}}')['Role']['Arn']\n\
         zipped = io.BytesIO()\n\
         with zipfile.ZipFile(zipped, 'w') as z: z.writestr('index.py', 'def handler(e, c): pass')\n\
         print(client('lambda').create_function(FunctionName={name:?}, Runtime='python3.11', Role=role, \
         Handler='index.handler', Code={{'ZipFile': zipped.getvalue()}})['FunctionArn'])\n"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_on_config_deploys() {
    let moto = watchbot_testing::moto();
    let config = moto.sdk_config().await;
    let (cluster, arn) = create_cluster(&config).await;
    // The Lambda permission of log forwarding needs the function to exist (moto checks, as AWS does).
    let function = watchbot_testing::unique_name("log-forwarder");
    create_function(moto, &function);
    let text =
        std::fs::read_to_string(workspace_path("crates/watchbot-template/tests/configs/everything.json")).unwrap();
    let text = text.replace("cluster/everything", &format!("cluster/{cluster}")).replace("log-forwarder", &function);
    let dir = TestDir::new();
    let template = cli_template(&config_file(&dir, "everything.json", &serde_json::from_str(&text).unwrap()));
    let stack = deploy(&config, &template, &[]).await;
    assert_only_unsupported_skipped(&template, &stack);
    let expect = Expect {
        prefix: "Tiles",
        cluster: &arn,
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/tile-maker:v2.3.4-us-east-1",
        visibility_timeout: 3600,
        max_receive_count: 5,
        watchers: 2,
        concurrency: "8",
    };
    check_core(&config, &stack, &expect).await;

    // Reduce mode: the progress table, keyed by `id` (string), named in the worker's environment.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack.id("TilesProgressTable");
    let described = dynamodb.describe_table().table_name(table).send().await.unwrap();
    let key = &described.table().unwrap().key_schema()[0];
    assert_eq!((key.attribute_name(), key.key_type().as_str()), ("id", "HASH"));
    let ecs = aws_sdk_ecs::Client::new(&config);
    let worker = ecs.describe_task_definition().task_definition(stack.id("TilesWorker")).send().await.unwrap();
    let worker = worker.task_definition().unwrap();
    let env: BTreeMap<&str, &str> = worker.container_definitions()[0]
        .environment()
        .iter()
        .map(|pair| (pair.name().unwrap(), pair.value().unwrap()))
        .collect();
    assert_eq!(env["ProgressTable"], table);
    assert_eq!(env["TileBucket"], "tiles-123456789012");
    assert_eq!(env["MaxZoom"], "14");
    assert_eq!(worker.volumes().len(), 2, "the two mounts");

    // The webhook's API, its /webhooks POST method, and the throttled `watchbot` stage exist on moto's API Gateway.
    let api = stack.id("TilesWebhookApi");
    let found = moto.python(&format!(
        "api = client('apigateway')\n\
         resources = api.get_resources(restApiId={api:?})['items']\n\
         hook = [r for r in resources if r.get('path') == '/webhooks'][0]\n\
         method = api.get_method(restApiId={api:?}, resourceId=hook['id'], httpMethod='POST')\n\
         stages = [s['stageName'] for s in api.get_stages(restApiId={api:?})['item']]\n\
         print(method['methodIntegration']['type'], method['apiKeyRequired'], ','.join(stages))\n"
    ));
    assert_eq!(found, "AWS True watchbot");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_webhook_config_deploys() {
    let moto = watchbot_testing::moto();
    let config = moto.sdk_config().await;
    let (cluster, _) = create_cluster(&config).await;
    let path = workspace_path("crates/watchbot-template/tests/configs/open-webhook.json");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("\"cluster\": \"ingest\"", &format!("\"cluster\": \"{cluster}\""));
    let dir = TestDir::new();
    let template = cli_template(&config_file(&dir, "open-webhook.json", &serde_json::from_str(&text).unwrap()));
    let stack = deploy(&config, &template, &[]).await;
    assert_only_unsupported_skipped(&template, &stack);
    let expect = Expect {
        prefix: "Ingest",
        // A cluster given by name stays a name for the service and the watcher.
        cluster: &cluster,
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/ingest-worker:2026.11.28",
        visibility_timeout: 43_200,
        max_receive_count: 1000,
        watchers: 3,
        concurrency: "2",
    };
    check_core(&config, &stack, &expect).await;
    assert!(stack.id("IngestUserKey").starts_with("AKIA"), "the user's access key id");
    // `"outputs": true`: the refs are the stack's outputs, without the secret key.
    assert_eq!(stack.outputs.get("IngestQueueUrl").map(String::as_str), Some(stack.id("IngestQueue")));
    assert_eq!(stack.outputs.get("IngestAccessKeyId").map(String::as_str), Some(stack.id("IngestUserKey")));
    assert!(!stack.outputs.contains_key("IngestSecretAccessKey"), "{:?}", stack.outputs);
    let api = stack.id("IngestWebhookApi");
    let found = moto.python(&format!(
        "api = client('apigateway')\n\
         hook = [r for r in api.get_resources(restApiId={api:?})['items'] if r.get('path') == '/webhooks'][0]\n\
         print(api.get_method(restApiId={api:?}, resourceId=hook['id'], httpMethod='POST')['apiKeyRequired'])\n"
    ));
    assert_eq!(found, "False");
}

/// moto's default subnet and security group.
fn default_network(moto: &watchbot_testing::Moto) -> (String, String) {
    let out = moto.python(
        "print(client('ec2').describe_subnets()['Subnets'][0]['SubnetId'])\n\
         print(client('ec2').describe_security_groups()['SecurityGroups'][0]['GroupId'])",
    );
    let mut lines = out.lines().map(str::to_string);
    (lines.next().expect("subnet"), lines.next().expect("security group"))
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_fargate_spot_and_strategy_configs_deploy() {
    let moto = watchbot_testing::moto();
    let config = moto.sdk_config().await;
    let (subnet, group) = default_network(moto);
    let ecs = aws_sdk_ecs::Client::new(&config);
    for (name, prefix) in [("fargate", "Fargate"), ("fargate-spot", "Spot"), ("strategy", "Mixed")] {
        let (_, arn) = create_cluster(&config).await;
        let path = workspace_path(&format!("crates/watchbot-template/tests/configs/{name}.json"));
        let mut options = read_json(&path);
        options["cluster"] = json!(arn);
        options["subnets"] = json!([subnet]);
        options["securityGroups"] = json!([group]);
        let dir = TestDir::new();
        let template = cli_template(&config_file(&dir, &format!("{name}.json"), &options));
        let stack = deploy(&config, &template, &[]).await;
        assert_only_unsupported_skipped(&template, &stack);
        let watchers = options["watchers"].as_i64().unwrap_or(1) as i32;
        let workers = options["workers"].as_u64().unwrap_or(1).to_string();
        let image = format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-worker:{}",
            options["serviceVersion"].as_str().unwrap()
        );
        let expect = Expect {
            prefix,
            cluster: &arn,
            image: &image,
            visibility_timeout: 600,
            max_receive_count: 10,
            watchers,
            concurrency: &workers,
        };
        check_core(&config, &stack, &expect).await;

        // moto's CloudFormation registers task definitions with their family, containers, volumes and memory only,
        // and services without a network (moto 5.2): the Fargate properties are cfn-lint's to check. What moto keeps:
        // the execution role exists, the task-level memory, and the watcher's environment resolved.
        assert!(stack.id(&format!("{prefix}ExecutionRole")).contains("ExecutionRole"), "{name}");
        let worker = ecs.describe_task_definition().task_definition(stack.id(&format!("{prefix}Worker"))).send();
        let worker = worker.await.unwrap().task_definition().cloned().unwrap();
        let memory = options["reservation"]["memory"].as_u64().or(options["reservation"]["softMemory"].as_u64());
        assert_eq!(worker.memory(), Some(memory.unwrap_or(512).to_string().as_str()), "{name}");
        let watcher = ecs.describe_task_definition().task_definition(stack.id(&format!("{prefix}Watcher"))).send();
        let watcher = watcher.await.unwrap().task_definition().cloned().unwrap();
        let env: BTreeMap<String, String> = watcher.container_definitions()[0]
            .environment()
            .iter()
            .map(|pair| (pair.name().unwrap().to_string(), pair.value().unwrap().to_string()))
            .collect();
        assert_eq!((&env["Subnets"], &env["SecurityGroups"]), (&subnet, &group), "{name}");
        match name {
            "fargate" => assert_eq!(env["LaunchType"], "FARGATE"),
            "fargate-spot" => assert_eq!(env["CapacityProviderStrategy"], "FARGATE_SPOT:1:0"),
            _ => assert_eq!(env["CapacityProviderStrategy"], "FARGATE:1:1,FARGATE_SPOT:3:0"),
        }
    }
}

/// Each optional reference left `""` deploys without its feature; given, the feature is there.
#[tokio::test(flavor = "multi_thread")]
async fn optional_references_left_empty_deploy_without_their_feature() {
    let moto = watchbot_testing::moto();
    let config = moto.sdk_config().await;
    let (cluster, arn) = create_cluster(&config).await;
    let on_cluster = |template: Value| {
        serde_json::from_str::<Value>(
            &serde_json::to_string(&template).unwrap().replace("cluster/processing", &format!("cluster/{cluster}")),
        )
        .unwrap()
    };
    let watcher_env = |stack: &Stack| {
        let ecs = aws_sdk_ecs::Client::new(&config);
        let watcher = stack.id("WatchbotWatcher").to_string();
        async move {
            let described = ecs.describe_task_definition().task_definition(watcher).send().await.unwrap();
            let definition = described.task_definition().cloned().unwrap();
            let env: BTreeMap<String, String> = definition.container_definitions()[0]
                .environment()
                .iter()
                .map(|pair| (pair.name().unwrap().to_string(), pair.value().unwrap_or_default().to_string()))
                .collect();
            (env, definition.container_definitions()[0].image().unwrap_or_default().to_string())
        }
    };
    let worker_memory = |stack: &Stack| {
        let ecs = aws_sdk_ecs::Client::new(&config);
        let worker = stack.id("WatchbotWorker").to_string();
        async move {
            let described = ecs.describe_task_definition().task_definition(worker).send().await.unwrap();
            let container = described.task_definition().unwrap().container_definitions()[0].clone();
            (container.memory(), container.memory_reservation())
        }
    };
    for email in [false, true] {
        let template = on_cluster(optional_references_template(email));
        let empty = deploy(&config, &template, &[]).await;
        for absent in ["WatchbotLogForwarding", "WatchbotLogForwardingPermission", "WatchbotNotificationTopic"] {
            assert!(!empty.resources.contains_key(absent), "{absent} with an empty reference: {:?}", empty.resources);
        }
        assert!(!empty.outputs.contains_key("WatchbotNotificationTopic"), "{:?}", empty.outputs);
        let (env, image) = watcher_env(&empty).await;
        assert_eq!(env["NotificationTopic"], "", "the watcher logs its notifications");
        assert!(image.ends_with(&format!("/watchbot:{}", watchbot_template::DEFAULT_WATCHBOT_VERSION)), "{image}");
        assert_eq!(worker_memory(&empty).await, (None, Some(512)), "no limits given: the default reservation");
        let expect = Expect::minimal(&arn);
        check_core(&config, &empty, &expect).await;
    }

    // Given: log forwarding to the function, the topic (the email's, or the user's), the key, the version.
    let function = watchbot_testing::unique_name("forwarder");
    let function_arn = create_function(moto, &function);
    let key = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    let template = on_cluster(optional_references_template(true));
    let given = [
        ("Notifications", "ops@example.com"),
        ("LogFunction", function_arn.as_str()),
        ("KmsKey", key),
        ("WatcherVersion", "v9"),
        ("Memory", "1024"),
        ("SoftMemory", "256"),
    ];
    let full = deploy(&config, &template, &given).await;
    assert!(full.resources.contains_key("WatchbotLogForwardingPermission"), "{:?}", full.resources);
    let topic = full.id("WatchbotNotificationTopic").to_string();
    assert_eq!(full.outputs.get("WatchbotNotificationTopic"), Some(&topic));
    let (env, image) = watcher_env(&full).await;
    assert_eq!(env["NotificationTopic"], topic);
    assert!(image.ends_with("/watchbot:v9"), "{image}");
    assert_eq!(worker_memory(&full).await, (Some(1024), Some(256)));
}
