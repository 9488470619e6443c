//! The worker and watcher task definitions, their roles, and the service that runs the watchers.

use super::{
    Builder, WATCHER_CONTAINER, WATCHER_SOFT_MEMORY, WORKER_CONTAINER, assume_role, att, env_list, no_value, policy,
    r#ref, sub, when,
};
use crate::container::{DEFAULT_WORKER_SOFT_MEMORY, WorkerContainer};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

impl Builder<'_> {
    pub(super) fn worker(&mut self) {
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
            let statement = json!({ "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key });
            statements.push(self.guarded_statement("KmsKey", statement));
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
        // container runner (`container.rs`); references that may be empty are guarded here.
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
        // On Fargate the task's size is the limit (`fargate_task`); container-level values add nothing.
        let on_instances = o.fargate_size.is_none();
        let (memory_set, soft_set) = (self.condition("ReservationMemory"), self.condition("ReservationSoftMemory"));
        let cpu_set = self.condition("ReservationCpu");
        if on_instances && memory_set.is_none() && soft_set.is_none() && cpu_set.is_none() {
            // Literal values (or references that cannot be empty): the shared mapping as it is.
            let values =
                [("Memory", worker.memory), ("MemoryReservation", worker.memory_reservation), ("Cpu", worker.cpu)];
            for (key, value) in values {
                if let Some(value) = value {
                    container.insert(key.into(), value);
                }
            }
        } else if on_instances {
            // A value given as a reference may be empty: then it is left out, and the soft default applies when
            // neither memory value is left (what `WorkerContainer` gives when neither is set).
            let r = &o.reservation;
            let (memory_set, soft_set) = (memory_set.as_deref(), soft_set.as_deref());
            if let Some(memory) = &r.memory {
                container.insert("Memory".into(), when(memory_set, memory.clone(), no_value()));
            }
            let default_soft = json!(DEFAULT_WORKER_SOFT_MEMORY);
            match (&r.soft_memory, &r.memory) {
                (Some(soft), None) => {
                    container.insert("MemoryReservation".into(), when(soft_set, soft.clone(), default_soft));
                }
                (Some(soft), Some(_)) => {
                    let otherwise = when(memory_set, no_value(), default_soft);
                    container.insert("MemoryReservation".into(), when(soft_set, soft.clone(), otherwise));
                }
                (None, None) => {
                    container.insert("MemoryReservation".into(), default_soft);
                }
                (None, Some(_)) if memory_set.is_some() => {
                    container.insert("MemoryReservation".into(), when(memory_set, no_value(), default_soft));
                }
                (None, Some(_)) => {}
            }
            if let Some(cpu) = &r.cpu {
                container.insert("Cpu".into(), when(cpu_set.as_deref(), cpu.clone(), no_value()));
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
        if let Some(size) = &o.fargate_size {
            let (cpu, memory) = self.worker_fargate_size(size);
            self.fargate_task(&mut properties, &cpu, &memory);
        }
        self.add("Worker", json!({ "Type": "AWS::ECS::TaskDefinition", "Properties": properties }));
    }

    pub(super) fn watcher(&mut self) {
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
            when(
                self.notification_condition().as_deref(),
                json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": self.topic() }),
                no_value(),
            ),
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
            json!({ "Effect": "Allow", "Action": "iam:PassRole", "Resource": self.passed_roles() }),
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
        // Written only when off, so a default stack's environment is what it was before the option existed.
        if !o.notify_each_failure {
            env.insert("NotifyEachFailure".into(), json!("false"));
        }
        self.placement_env(&mut env);

        let mut properties = json!({
            "ContainerDefinitions": [{
                "Name": WATCHER_CONTAINER,
                "Image": { "Fn::Sub": [
                    "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/watchbot:${Version}",
                    { "Version": when(
                        self.condition("WatchbotVersion").as_deref(),
                        o.watchbot_version.clone(),
                        json!(crate::DEFAULT_WATCHBOT_VERSION),
                    ) },
                ]},
                "Essential": true,
                "MemoryReservation": WATCHER_SOFT_MEMORY,
                "Environment": env_list(env),
                "LogConfiguration": self.log_configuration(WATCHER_CONTAINER),
            }],
            "TaskRoleArn": att(&self.id("WatcherRole"), "Arn"),
        });
        self.fargate_watcher(&mut properties);
        self.add("Watcher", json!({ "Type": "AWS::ECS::TaskDefinition", "Properties": properties }));
        let mut service = json!({
            "Cluster": o.cluster,
            "TaskDefinition": r#ref(&self.id("Watcher")),
            "DesiredCount": o.watchers,
        });
        self.service_placement(&mut service);
        self.add("Service", json!({ "Type": "AWS::ECS::Service", "Properties": service }));
    }
}
