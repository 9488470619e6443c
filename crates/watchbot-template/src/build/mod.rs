//! Options → the CloudFormation resources of one watchbot, and its `.ref`s.
//!
//! Every logical id is `<prefix><Name>`, so two watchbots with different prefixes merge into one template. One file
//! per part of the stack: `queues` (queues, topic, queue alarms), `tasks` (task definitions, roles, service),
//! `access` (user, webhook), `extras` (log forwarding, progress table), `capacity` (Fargate and capacity providers),
//! `metrics` (metric filters, the failure-rate alarm, the dashboard).

use crate::error::Error;
use crate::options::Options;
use conditions::{no_value, when};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

mod access;
mod capacity;
mod conditions;
mod extras;
pub(crate) mod metrics;
mod queues;
mod tasks;

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
        self.metric_filters();
        self.failure_rate_alarm();
        if self.o.network.is_some() {
            self.execution_role();
        }
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
        self.dashboard();
        let conditions = self.conditions();
        let guarded: BTreeMap<String, String> =
            self.notification_condition().map(|c| ("notificationTopic".to_string(), c)).into_iter().collect();
        let mut json = json!({ "AWSTemplateFormatVersion": "2010-09-09", "Resources": Value::Object(self.resources) });
        if !conditions.is_empty() {
            json["Conditions"] = Value::Object(conditions);
        }
        if let Some(outputs) = crate::outputs::section(&self.o.outputs, self.p, &self.refs, &guarded) {
            json["Outputs"] = outputs;
        }
        Ok(Template { json: crate::sorted(json), refs: self.refs, prefix: self.p.to_string() })
    }

    /// The topic failures are reported to: a new one with an email subscription, or the user's.
    fn topic(&self) -> Value {
        match &self.o.notification_topic {
            Some(topic) => topic.clone(),
            None => r#ref(&self.id("NotificationTopic")),
        }
    }

    /// The notification topic as a string: `""` when its reference is empty (the watcher then logs notifications).
    fn notification_topic(&self) -> Value {
        when(self.notification_condition().as_deref(), self.topic(), json!(""))
    }

    /// `AlarmActions` of every alarm: the notification topic, none when its reference is empty.
    fn alarm_actions(&self) -> Value {
        when(self.notification_condition().as_deref(), json!([self.topic()]), no_value())
    }

    /// A policy statement that exists only with its option's Condition (a list item left out without it).
    fn guarded_statement(&self, option: &str, statement: Value) -> Value {
        when(self.condition(option).as_deref(), statement, no_value())
    }

    fn notifications(&mut self) {
        if let Some(email) = &self.o.notification_email {
            let mut topic = json!({
                "Type": "AWS::SNS::Topic",
                "Properties": { "Subscription": [{ "Endpoint": email, "Protocol": "email" }] },
            });
            if let Some(condition) = self.condition("NotificationEmail") {
                topic["Condition"] = json!(condition);
            }
            self.add("NotificationTopic", topic);
        }
        let topic = self.notification_topic();
        self.refs.insert("notificationTopic".into(), topic);
        self.add(
            "LogGroup",
            json!({ "Type": "AWS::Logs::LogGroup", "Properties": { "RetentionInDays": LOG_RETENTION_DAYS } }),
        );
        self.refs.insert("logGroup".into(), r#ref(&self.id("LogGroup")));
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
}

/// `[{"Name": ..., "Value": ...}]`, sorted by name.
fn env_list(env: BTreeMap<String, Value>) -> Value {
    Value::Array(env.into_iter().map(|(name, value)| json!({ "Name": name, "Value": value })).collect())
}
