//! Options → the CloudFormation resources of one watchbot, and its `.ref`s.
//!
//! Every logical id is `<prefix><Name>`, so two watchbots with different prefixes merge into one template.

use crate::container::WorkerContainer;
use crate::error::Error;
use crate::options::{BillingMode, Options};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Name of the worker container in the worker task definition (the watcher's `ContainerName`).
pub const WORKER_CONTAINER: &str = "worker";
/// Name of the watcher container in the watcher task definition.
pub const WATCHER_CONTAINER: &str = "watcher";
/// The API Gateway stage of the webhook (as in the original).
const WEBHOOK_STAGE: &str = "watchbot";
/// Webhook throttling: steady requests per second and burst. The seed is silent; this is generous for job
/// submission and still caps what a leaked key or a loop can push into the queue.
const WEBHOOK_RATE_LIMIT: u64 = 10;
const WEBHOOK_BURST_LIMIT: u64 = 20;
/// The watcher is one small Rust process.
const WATCHER_SOFT_MEMORY: u64 = 64;
/// Days the log group keeps logs (the original's figure).
const LOG_RETENTION_DAYS: u64 = 14;

/// A generated template: the CloudFormation JSON and the `.ref`s into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    json: Value,
    refs: BTreeMap<String, Value>,
    prefix: String,
}

impl Template {
    /// The CloudFormation template (sorted keys, deterministic).
    pub fn to_json(&self) -> Value {
        self.json.clone()
    }

    /// Borrows the CloudFormation template.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// References to the watchbot's resources, by the seed's names (`logGroup`, `topic`, `queueUrl`, `queueArn`,
    /// `queueName`; when enabled `webhookEndpoint`, `webhookKey`, `accessKeyId`, `secretAccessKey`,
    /// `progressTable`) plus `deadLetterQueueUrl` and `notificationTopic`. Each is a CloudFormation reference object.
    pub fn refs(&self) -> &BTreeMap<String, Value> {
        &self.refs
    }

    /// The environment the watcher task definition sets: exactly what the watcher reads.
    pub fn watcher_environment(&self) -> BTreeMap<String, Value> {
        watcher_environment(&self.json, &self.prefix).expect("a generated template has a watcher task definition")
    }
}

/// Reads the watcher container's environment out of a template's JSON (`<prefix>Watcher` task definition).
/// `None` when the template has no such task definition.
pub fn watcher_environment(template: &Value, prefix: &str) -> Option<BTreeMap<String, Value>> {
    let container = template
        .pointer(&format!("/Resources/{prefix}Watcher/Properties/ContainerDefinitions"))?
        .as_array()?
        .iter()
        .find(|c| c["Name"] == WATCHER_CONTAINER)?;
    let mut env = BTreeMap::new();
    for pair in container["Environment"].as_array()? {
        env.insert(pair["Name"].as_str()?.to_string(), pair["Value"].clone());
    }
    Some(env)
}

/// Builds the template for validated options.
pub fn template(options: &Options) -> Result<Template, Error> {
    Builder { o: options, p: &options.prefix, resources: Map::new(), refs: BTreeMap::new() }.build()
}

struct Builder<'a> {
    o: &'a Options,
    p: &'a str,
    resources: Map<String, Value>,
    refs: BTreeMap<String, Value>,
}

fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

fn att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

fn policy(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn assume_role(service: &str) -> Value {
    policy(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
    })])
}

impl Builder<'_> {
    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.p)
    }

    fn add(&mut self, name: &str, resource: Value) {
        let id = self.id(name);
        self.resources.insert(id, resource);
    }

    fn build(mut self) -> Result<Template, Error> {
        self.notifications();
        self.queues_and_topic();
        self.alarms();
        self.worker();
        self.watcher();
        if self.o.user {
            self.user();
        }
        if self.o.webhook {
            self.webhook();
        }
        if let Some(function) = &self.o.log_aggregation_function {
            self.log_forwarding(function.clone());
        }
        if self.o.reduce {
            self.progress_table();
        }
        let mut json = json!({ "AWSTemplateFormatVersion": "2010-09-09", "Resources": Value::Object(self.resources) });
        if let Some(outputs) = crate::outputs::section(&self.o.outputs, self.p, &self.refs) {
            json["Outputs"] = outputs;
        }
        Ok(Template { json: crate::sorted(json), refs: self.refs, prefix: self.p.to_string() })
    }

    /// The topic failures are reported to: a new one with an email subscription, or the user's.
    fn notification_topic(&self) -> Value {
        match &self.o.notification_topic {
            Some(topic) => topic.clone(),
            None => r#ref(&self.id("NotificationTopic")),
        }
    }

    fn notifications(&mut self) {
        if let Some(email) = &self.o.notification_email {
            self.add(
                "NotificationTopic",
                json!({
                    "Type": "AWS::SNS::Topic",
                    "Properties": { "Subscription": [{ "Endpoint": email, "Protocol": "email" }] },
                }),
            );
        }
        let topic = self.notification_topic();
        self.refs.insert("notificationTopic".into(), topic);
        self.add(
            "LogGroup",
            json!({ "Type": "AWS::Logs::LogGroup", "Properties": { "RetentionInDays": LOG_RETENTION_DAYS } }),
        );
        self.refs.insert("logGroup".into(), r#ref(&self.id("LogGroup")));
    }

    fn queues_and_topic(&mut self) {
        let (queue, dead_letter, topic) = (self.id("Queue"), self.id("DeadLetterQueue"), self.id("Topic"));
        // Dead letters are kept as long as SQS allows, so nobody loses a failed job before looking at it.
        self.add(
            "DeadLetterQueue",
            json!({ "Type": "AWS::SQS::Queue", "Properties": { "MessageRetentionPeriod": 1_209_600 } }),
        );
        self.add(
            "Queue",
            json!({
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": self.o.message_timeout,
                    "MessageRetentionPeriod": self.o.message_retention,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": att(&dead_letter, "Arn"),
                        "maxReceiveCount": self.o.dead_letter_threshold,
                    },
                },
            }),
        );
        // The queue subscribes inline, so the subscription exists as soon as the topic does.
        self.add(
            "Topic",
            json!({
                "Type": "AWS::SNS::Topic",
                "Properties": { "Subscription": [{ "Endpoint": att(&queue, "Arn"), "Protocol": "sqs" }] },
            }),
        );
        self.add(
            "QueuePolicy",
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [r#ref(&queue)],
                    "PolicyDocument": policy(vec![json!({
                        "Sid": "SendFromTopic",
                        "Effect": "Allow",
                        "Principal": { "Service": "sns.amazonaws.com" },
                        "Action": "sqs:SendMessage",
                        "Resource": att(&queue, "Arn"),
                        "Condition": { "ArnEquals": { "aws:SourceArn": r#ref(&topic) } },
                    })]),
                },
            }),
        );
        self.refs.insert("topic".into(), r#ref(&topic));
        self.refs.insert("queueUrl".into(), r#ref(&queue));
        self.refs.insert("queueArn".into(), att(&queue, "Arn"));
        self.refs.insert("queueName".into(), att(&queue, "QueueName"));
        self.refs.insert("deadLetterQueueUrl".into(), r#ref(&dead_letter));
    }

    fn alarms(&mut self) {
        let actions = json!([self.notification_topic()]);
        self.add(
            "QueueSizeAlarm",
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": format!(
                        "More than {} jobs waiting in the queue for {} minutes",
                        self.o.alarm_threshold, self.o.alarm_periods * 5
                    ),
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{ "Name": "QueueName", "Value": att(&self.id("Queue"), "QueueName") }],
                    "Statistic": "Average",
                    "Period": 300,
                    "EvaluationPeriods": self.o.alarm_periods,
                    "Threshold": self.o.alarm_threshold,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "AlarmActions": actions,
                },
            }),
        );
        self.add(
            "DeadLetterAlarm",
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": "Jobs failed too many times and are in the dead-letter queue",
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{ "Name": "QueueName", "Value": att(&self.id("DeadLetterQueue"), "QueueName") }],
                    "Statistic": "Maximum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": actions,
                },
            }),
        );
    }

    fn log_configuration(&self, stream_prefix: &str) -> Value {
        json!({
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": r#ref(&self.id("LogGroup")),
                "awslogs-region": r#ref("AWS::Region"),
                "awslogs-stream-prefix": stream_prefix,
            },
        })
    }

    fn worker(&mut self) {
        let o = self.o;
        let (topic, log_group) = (self.id("Topic"), self.id("LogGroup"));

        // The worker role: publish follow-up work, write logs, reduce-mode progress, decrypt, and the user's own.
        let mut statements = vec![
            json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": r#ref(&topic) }),
            json!({
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": att(&log_group, "Arn"),
            }),
        ];
        // Progress in both layouts: the counter layout's TransactWriteItems wraps a Put and an Update, which need
        // exactly PutItem and UpdateItem (transactions have no IAM action of their own).
        if o.reduce {
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Resource": att(&self.id("ProgressTable"), "Arn"),
            }));
        }
        if let Some(key) = &o.kms_key {
            statements.push(json!({ "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key }));
        }
        let mut policies = vec![json!({ "PolicyName": "watchbot-worker", "PolicyDocument": policy(statements) })];
        if !o.permissions.is_empty() {
            policies
                .push(json!({ "PolicyName": "worker-permissions", "PolicyDocument": policy(o.permissions.clone()) }));
        }
        self.add(
            "WorkerRole",
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": { "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"), "Policies": policies },
            }),
        );

        // The options' env, command, mounts, privileged and reservation: the one mapping, shared with the local
        // container runner (`container.rs`).
        let worker = WorkerContainer::from_options(o);
        let mut environment = worker.env;
        environment.insert("WorkTopic".into(), r#ref(&topic));
        environment.insert("LogGroup".into(), r#ref(&log_group));
        if o.reduce {
            environment.insert("ProgressTable".into(), r#ref(&self.id("ProgressTable")));
        }

        let mut container = Map::new();
        container.insert("Name".into(), json!(WORKER_CONTAINER));
        container.insert(
            "Image".into(),
            json!({ "Fn::Sub": [
                format!("${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}/{}:${{Version}}", o.service),
                { "Version": o.service_version },
            ]}),
        );
        container.insert("Essential".into(), json!(true));
        container.insert("Environment".into(), env_list(environment));
        container.insert("LogConfiguration".into(), self.log_configuration(WORKER_CONTAINER));
        let settings =
            [("Memory", worker.memory), ("MemoryReservation", worker.memory_reservation), ("Cpu", worker.cpu)];
        for (key, value) in settings {
            if let Some(value) = value {
                container.insert(key.into(), value);
            }
        }
        if worker.privileged {
            container.insert("Privileged".into(), json!(true));
        }
        if let Some(command) = worker.command {
            container.insert("Command".into(), command);
        }
        let mut volumes = Vec::new();
        if !worker.mounts.is_empty() {
            let mut points = Vec::new();
            for (i, mount) in worker.mounts.iter().enumerate() {
                let name = format!("mount{i}");
                volumes.push(json!({ "Name": name, "Host": { "SourcePath": mount.host } }));
                points.push(
                    json!({ "SourceVolume": name, "ContainerPath": mount.container, "ReadOnly": mount.read_only }),
                );
            }
            container.insert("MountPoints".into(), Value::Array(points));
        }
        let mut properties = json!({
            "ContainerDefinitions": [Value::Object(container)],
            "TaskRoleArn": att(&self.id("WorkerRole"), "Arn"),
        });
        if !volumes.is_empty() {
            properties["Volumes"] = Value::Array(volumes);
        }
        self.add("Worker", json!({ "Type": "AWS::ECS::TaskDefinition", "Properties": properties }));
    }

    /// The cluster as an ARN, for IAM conditions: literal names become ARNs; intrinsics must resolve to ARNs.
    fn cluster_arn(&self) -> Value {
        match &self.o.cluster {
            Value::String(s) if s.starts_with("arn:") => Value::String(s.clone()),
            Value::String(name) => {
                sub(&format!("arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:cluster/{name}"))
            }
            other => other.clone(),
        }
    }

    fn watcher(&mut self) {
        let o = self.o;
        let (queue, dead_letter, worker, log_group) =
            (self.id("Queue"), self.id("DeadLetterQueue"), self.id("Worker"), self.id("LogGroup"));
        let on_cluster = json!({ "ArnEquals": { "ecs:cluster": self.cluster_arn() } });
        let statements = vec![
            json!({
                "Effect": "Allow",
                "Action": [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                "Resource": att(&queue, "Arn"),
            }),
            // Messages too large for a task's environment go to the dead-letter queue.
            json!({ "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": att(&dead_letter, "Arn") }),
            json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": self.notification_topic() }),
            json!({
                "Effect": "Allow",
                "Action": "ecs:RunTask",
                "Resource": r#ref(&worker),
                "Condition": on_cluster,
            }),
            // Task ARNs are not known in advance; the condition keeps the watcher on its own cluster.
            json!({
                "Effect": "Allow",
                "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
                "Resource": sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/*"),
                "Condition": on_cluster,
            }),
            // ListTasks (adopting a running task by startedBy) supports no resource type, only the cluster condition.
            json!({ "Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*", "Condition": on_cluster }),
            // RunTask hands the worker's role to the task.
            json!({ "Effect": "Allow", "Action": "iam:PassRole", "Resource": att(&self.id("WorkerRole"), "Arn") }),
            // Failure notifications quote the newest lines of the task's own log stream (GetLogEvents only).
            json!({ "Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": att(&log_group, "Arn") }),
        ];
        self.add(
            "WatcherRole",
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                    "Policies": [{ "PolicyName": "watchbot-watcher", "PolicyDocument": policy(statements) }],
                },
            }),
        );

        // Exactly the variables the watcher reads (ARCHITECTURE.md, "The watcher's environment").
        let mut env = BTreeMap::new();
        env.insert("Cluster".to_string(), o.cluster.clone());
        env.insert("TaskDefinition".into(), r#ref(&worker));
        env.insert("ContainerName".into(), json!(WORKER_CONTAINER));
        env.insert("Concurrency".into(), json!(o.workers.to_string()));
        env.insert("QueueUrl".into(), r#ref(&queue));
        env.insert("DeadLetterQueueUrl".into(), r#ref(&dead_letter));
        env.insert("NotificationTopic".into(), self.notification_topic());
        env.insert("StackName".into(), r#ref("AWS::StackName"));
        env.insert("ExponentialBackoff".into(), json!(o.backoff.to_string()));
        env.insert("NotifyAfterRetries".into(), json!(o.notify_after_retries.to_string()));
        env.insert("LogLevel".into(), json!(if o.debug_logs { "debug" } else { "info" }));
        env.insert("MessageTimeout".into(), json!(o.message_timeout.to_string()));
        env.insert("WorkTopic".into(), r#ref(&self.id("Topic")));
        env.insert("LogGroup".into(), r#ref(&log_group));

        self.add(
            "Watcher",
            json!({
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [{
                        "Name": WATCHER_CONTAINER,
                        "Image": { "Fn::Sub": [
                            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/watchbot:${Version}",
                            { "Version": o.watchbot_version },
                        ]},
                        "Essential": true,
                        "MemoryReservation": WATCHER_SOFT_MEMORY,
                        "Environment": env_list(env),
                        "LogConfiguration": self.log_configuration(WATCHER_CONTAINER),
                    }],
                    "TaskRoleArn": att(&self.id("WatcherRole"), "Arn"),
                },
            }),
        );
        self.add(
            "Service",
            json!({
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "Cluster": o.cluster,
                    "TaskDefinition": r#ref(&self.id("Watcher")),
                    "DesiredCount": o.watchers,
                },
            }),
        );
    }

    fn publish_policy(&self, name: &str) -> Value {
        json!({
            "PolicyName": name,
            "PolicyDocument": policy(vec![json!({
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": r#ref(&self.id("Topic")),
            })]),
        })
    }

    fn user(&mut self) {
        let (user, key) = (self.id("User"), self.id("UserKey"));
        self.add(
            "User",
            json!({ "Type": "AWS::IAM::User", "Properties": { "Policies": [self.publish_policy("publish-jobs")] } }),
        );
        self.add("UserKey", json!({ "Type": "AWS::IAM::AccessKey", "Properties": { "UserName": r#ref(&user) } }));
        self.refs.insert("accessKeyId".into(), r#ref(&key));
        self.refs.insert("secretAccessKey".into(), att(&key, "SecretAccessKey"));
    }

    fn webhook(&mut self) {
        let (api, resource, method, role, deployment) = (
            self.id("WebhookApi"),
            self.id("WebhookResource"),
            self.id("WebhookMethod"),
            self.id("WebhookRole"),
            self.id("WebhookDeployment"),
        );
        self.add(
            "WebhookApi",
            json!({
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {
                    "Name": sub(&format!("${{AWS::StackName}}-{}-webhook", self.p)),
                    "Description": "Publishes POSTed jobs to the watchbot topic",
                },
            }),
        );
        self.add(
            "WebhookResource",
            json!({
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "ParentId": att(&api, "RootResourceId"),
                    "PathPart": "webhooks",
                },
            }),
        );
        self.add(
            "WebhookRole",
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role("apigateway.amazonaws.com"),
                    "Policies": [self.publish_policy("publish-jobs")],
                },
            }),
        );
        // A direct SNS integration: the POSTed JSON {"subject": ..., "message": ...} becomes a Publish call.
        let request = concat!(
            // No newline after #set: any whitespace would become part of the form body's first parameter name.
            "#set($subject = $input.path('$.subject'))",
            "Action=Publish&TopicArn=$util.urlEncode('${Topic}')",
            "&Message=$util.urlEncode($input.path('$.message'))",
            "#if(\"$!subject\" != \"\")&Subject=$util.urlEncode($subject)#end",
        );
        self.add(
            "WebhookMethod",
            json!({
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "ResourceId": r#ref(&resource),
                    "HttpMethod": "POST",
                    "AuthorizationType": "NONE",
                    "ApiKeyRequired": self.o.webhook_key,
                    "Integration": {
                        "Type": "AWS",
                        "IntegrationHttpMethod": "POST",
                        "Uri": sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:sns:action/Publish"),
                        "Credentials": att(&role, "Arn"),
                        "PassthroughBehavior": "NEVER",
                        "RequestParameters": {
                            "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'",
                        },
                        "RequestTemplates": {
                            "application/json": { "Fn::Sub": [request, { "Topic": r#ref(&self.id("Topic")) }] },
                        },
                        "IntegrationResponses": [
                            { "StatusCode": "200", "ResponseTemplates": { "application/json": "{\"status\": \"queued\"}" } },
                            { "StatusCode": "400", "SelectionPattern": "4\\d{2}" },
                            { "StatusCode": "500", "SelectionPattern": "5\\d{2}" },
                        ],
                    },
                    "MethodResponses": [{ "StatusCode": "200" }, { "StatusCode": "400" }, { "StatusCode": "500" }],
                },
            }),
        );
        // The deployment creates the stage, throttled; a separate AWS::ApiGateway::Stage would add nothing here.
        self.add(
            "WebhookDeployment",
            json!({
                "Type": "AWS::ApiGateway::Deployment",
                "DependsOn": [method],
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "StageName": WEBHOOK_STAGE,
                    "StageDescription": {
                        "ThrottlingRateLimit": WEBHOOK_RATE_LIMIT,
                        "ThrottlingBurstLimit": WEBHOOK_BURST_LIMIT,
                    },
                },
            }),
        );
        self.refs.insert(
            "webhookEndpoint".into(),
            sub(&format!(
                "https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{WEBHOOK_STAGE}/webhooks"
            )),
        );
        if self.o.webhook_key {
            let (key, plan) = (self.id("WebhookKey"), self.id("WebhookUsagePlan"));
            self.add(
                "WebhookKey",
                json!({
                    "Type": "AWS::ApiGateway::ApiKey",
                    "Properties": { "Enabled": true, "Description": "Key for the watchbot webhook" },
                }),
            );
            self.add(
                "WebhookUsagePlan",
                json!({
                    "Type": "AWS::ApiGateway::UsagePlan",
                    "DependsOn": [deployment],
                    "Properties": {
                        "ApiStages": [{ "ApiId": r#ref(&api), "Stage": WEBHOOK_STAGE }],
                        "Throttle": { "RateLimit": WEBHOOK_RATE_LIMIT, "BurstLimit": WEBHOOK_BURST_LIMIT },
                    },
                }),
            );
            self.add(
                "WebhookUsagePlanKey",
                json!({
                    "Type": "AWS::ApiGateway::UsagePlanKey",
                    "Properties": { "KeyId": r#ref(&key), "KeyType": "API_KEY", "UsagePlanId": r#ref(&plan) },
                }),
            );
            // The key's id: `aws apigateway get-api-key --api-key <id> --include-value` prints the token.
            self.refs.insert("webhookKey".into(), r#ref(&key));
        }
    }

    fn log_forwarding(&mut self, function: Value) {
        let (log_group, permission) = (self.id("LogGroup"), self.id("LogForwardingPermission"));
        self.add(
            "LogForwardingPermission",
            json!({
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": function,
                    "Principal": "logs.amazonaws.com",
                    "SourceArn": att(&log_group, "Arn"),
                    "SourceAccount": r#ref("AWS::AccountId"),
                },
            }),
        );
        self.add(
            "LogForwarding",
            json!({
                "Type": "AWS::Logs::SubscriptionFilter",
                "DependsOn": [permission],
                "Properties": { "LogGroupName": r#ref(&log_group), "FilterPattern": "", "DestinationArn": function },
            }),
        );
    }

    fn progress_table(&mut self) {
        let mut properties = json!({
            "AttributeDefinitions": [{ "AttributeName": "id", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "id", "KeyType": "HASH" }],
            "BillingMode": "PAY_PER_REQUEST",
        });
        if let BillingMode::Provisioned { read_capacity_units: read, write_capacity_units: write } = self.o.billing_mode
        {
            properties["BillingMode"] = json!("PROVISIONED");
            properties["ProvisionedThroughput"] = json!({ "ReadCapacityUnits": read, "WriteCapacityUnits": write });
        }
        self.add("ProgressTable", json!({ "Type": "AWS::DynamoDB::Table", "Properties": properties }));
        self.refs.insert("progressTable".into(), r#ref(&self.id("ProgressTable")));
    }
}

/// `[{"Name": ..., "Value": ...}]`, sorted by name.
fn env_list(env: BTreeMap<String, Value>) -> Value {
    Value::Array(env.into_iter().map(|(name, value)| json!({ "Name": name, "Value": value })).collect())
}
