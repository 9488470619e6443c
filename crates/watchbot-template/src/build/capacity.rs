//! Fargate and capacity providers: the task definitions' `awsvpc` network mode, task size and execution role; the
//! service's launch type or strategy and network; and the watcher's variables that make every RunTask the same.

use super::{Builder, assume_role, att, policy, sub, when};
use crate::options::capacity::{DEFAULT_FARGATE_CPU, DEFAULT_FARGATE_MEMORY};
use crate::options::{CapacityProvider, FargateSize, WATCHER_FARGATE_CPU, WATCHER_FARGATE_MEMORY};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A list for an environment variable: ids joined with commas (an `Fn::Join` when any is an intrinsic).
fn joined(list: &Value, separator: &str) -> Value {
    match list {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            Value::String(texts.join(separator))
        }
        other => json!({ "Fn::Join": [separator, other] }),
    }
}

/// A task size value as CloudFormation's task-level `Cpu` and `Memory` take it: a string (or the intrinsic).
fn size_text(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Object(map) if map.contains_key("Fn::If") => {
            let branches = map["Fn::If"].as_array().cloned().unwrap_or_default();
            json!({ "Fn::If": branches.iter().enumerate().map(|(i, b)| if i == 0 { b.clone() } else { size_text(b) }).collect::<Vec<_>>() })
        }
        other => other.clone(),
    }
}

/// `CapacityProviderStrategy` of the watcher's environment: `name:weight:base`, comma-separated.
fn strategy_text(strategy: &[CapacityProvider]) -> Value {
    let items: Vec<Value> = strategy
        .iter()
        .map(|p| {
            let (weight, base) = (p.weight.to_string(), p.base.to_string());
            match &p.capacity_provider {
                Value::String(name) => Value::String(format!("{name}:{weight}:{base}")),
                other => json!({ "Fn::Join": [":", [other, weight, base]] }),
            }
        })
        .collect();
    joined(&Value::Array(items), ",")
}

impl Builder<'_> {
    /// The role ECS uses to start Fargate tasks: pull the two images from the account's ECR, write the log group.
    pub(super) fn execution_role(&mut self) {
        let o = self.o;
        let repository = |name: &str| {
            sub(&format!("arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{name}"))
        };
        let statements = vec![
            // GetAuthorizationToken supports no resource type.
            json!({ "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*" }),
            json!({
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": [repository(&o.service), repository("watchbot")],
            }),
            json!({
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": att(&self.id("LogGroup"), "Arn"),
            }),
        ];
        self.add(
            "ExecutionRole",
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                    "Policies": [{ "PolicyName": "watchbot-execution", "PolicyDocument": policy(statements) }],
                },
            }),
        );
    }

    /// Makes a task definition's properties Fargate's: compatibility, `awsvpc`, task size, execution role.
    pub(super) fn fargate_task(&self, properties: &mut Value, cpu: &Value, memory: &Value) {
        properties["RequiresCompatibilities"] = json!(["FARGATE"]);
        properties["NetworkMode"] = json!("awsvpc");
        properties["Cpu"] = size_text(cpu);
        properties["Memory"] = size_text(memory);
        properties["ExecutionRoleArn"] = att(&self.id("ExecutionRole"), "Arn");
    }

    /// The worker's Fargate size, each value given as a reference guarded: an empty one falls back as if it had not
    /// been given (`memory`, then `softMemory`, then 512 MiB; `cpu`, then 256).
    pub(super) fn worker_fargate_size(&self, size: &FargateSize) -> (Value, Value) {
        let r = &self.o.reservation;
        let guard = |option: &str, value: Option<&Value>, otherwise: Value| match value {
            Some(value) => when(self.condition(option).as_deref(), value.clone(), otherwise),
            None => otherwise,
        };
        let cpu = match &r.cpu {
            Some(_) => guard("ReservationCpu", r.cpu.as_ref(), json!(DEFAULT_FARGATE_CPU)),
            None => size.cpu.clone(),
        };
        let soft = guard("ReservationSoftMemory", r.soft_memory.as_ref(), json!(DEFAULT_FARGATE_MEMORY));
        let memory = guard("ReservationMemory", r.memory.as_ref(), soft);
        (size_text(&cpu), size_text(&memory))
    }

    /// The watcher's task definition on Fargate: the smallest size.
    pub(super) fn fargate_watcher(&self, properties: &mut Value) {
        if self.o.network.is_some() {
            self.fargate_task(properties, &json!(WATCHER_FARGATE_CPU), &json!(WATCHER_FARGATE_MEMORY));
        }
    }

    /// The service's launch type or strategy, and its network on Fargate.
    pub(super) fn service_placement(&self, properties: &mut Value) {
        let o = self.o;
        if let Some(strategy) = o.capacity.strategy() {
            let items: Vec<Value> = strategy
                .iter()
                .map(|p| json!({ "CapacityProvider": p.capacity_provider, "Weight": p.weight, "Base": p.base }))
                .collect();
            properties["CapacityProviderStrategy"] = Value::Array(items);
        } else if o.capacity.is_fargate() {
            properties["LaunchType"] = json!("FARGATE");
        }
        if let Some(network) = &o.network {
            properties["NetworkConfiguration"] = json!({
                "AwsvpcConfiguration": {
                    "Subnets": network.subnets,
                    "SecurityGroups": network.security_groups,
                    "AssignPublicIp": if network.assign_public_ip { "ENABLED" } else { "DISABLED" },
                },
            });
        }
    }

    /// The watcher's `LaunchType` or `CapacityProviderStrategy`, and on Fargate `Subnets`, `SecurityGroups` and
    /// `AssignPublicIp`: every RunTask goes where the service runs, on the same network. Nothing for EC2.
    pub(super) fn placement_env(&self, env: &mut BTreeMap<String, Value>) {
        let o = self.o;
        if let Some(strategy) = o.capacity.strategy() {
            env.insert("CapacityProviderStrategy".into(), strategy_text(&strategy));
        } else if o.capacity.is_fargate() {
            env.insert("LaunchType".into(), json!("FARGATE"));
        }
        if let Some(network) = &o.network {
            env.insert("Subnets".into(), joined(&network.subnets, ","));
            env.insert("SecurityGroups".into(), joined(&network.security_groups, ","));
            env.insert("AssignPublicIp".into(), json!(network.assign_public_ip.to_string()));
        }
    }

    /// The roles the watcher hands to the tasks it runs: the worker's, and on Fargate the execution role.
    pub(super) fn passed_roles(&self) -> Value {
        let worker = att(&self.id("WorkerRole"), "Arn");
        match self.o.network {
            Some(_) => json!([worker, att(&self.id("ExecutionRole"), "Arn")]),
            None => worker,
        }
    }
}
