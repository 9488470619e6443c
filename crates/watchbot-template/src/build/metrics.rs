//! Metrics from the watcher's JSON events (CloudWatch metric filters on the log group), the failure-rate alarm, and
//! the dashboard. Namespace `Watchbot/<stack name>`; metric names [`METRICS`] (ARCHITECTURE.md, "Metrics").

use super::{Builder, att, r#ref};
use serde_json::{Value, json};

/// The namespace of every watchbot metric: one per stack.
pub const NAMESPACE: &str = "Watchbot/${AWS::StackName}";

/// `(metric name, filter pattern on the watcher's JSON events, value)`: outcomes count 1 per finished task, the
/// duration is the task's `duration_ms`, `NotPlaced` counts RunTask placement failures (capacity, throttling).
pub const METRICS: &[(&str, &str, &str)] = &[
    ("Succeeded", r#"{ $.event = "finished" && $.outcome = "succeeded" }"#, "1"),
    ("Failed", r#"{ $.event = "finished" && $.outcome = "failed" }"#, "1"),
    ("Rejected", r#"{ $.event = "finished" && $.outcome = "rejected" }"#, "1"),
    ("NotPlaced", r#"{ $.event = "not_placed" }"#, "1"),
    ("TaskDuration", r#"{ $.event = "finished" && $.duration_ms = * }"#, "$.duration_ms"),
];

/// The failure rate, in percent of finished tasks (exit 4 is not finished work: it is left out).
const FAILURE_RATE: &str = "100 * FILL(failed, 0) / (FILL(succeeded, 0) + FILL(failed, 0) + FILL(rejected, 0))";

fn namespace() -> Value {
    json!({ "Fn::Sub": NAMESPACE })
}

impl Builder<'_> {
    /// One metric filter per entry of [`METRICS`] on the log group.
    pub(super) fn metric_filters(&mut self) {
        for (name, pattern, value) in METRICS {
            let mut transformation = json!({
                "MetricNamespace": namespace(),
                "MetricName": name,
                "MetricValue": value,
                "Unit": if *name == "TaskDuration" { "Milliseconds" } else { "Count" },
            });
            // Counts are 0 on every other line, so the failure rate has data whenever the watcher logs anything.
            if *value == "1" {
                transformation["DefaultValue"] = json!(0);
            }
            self.add(
                &format!("{name}Metric"),
                json!({
                    "Type": "AWS::Logs::MetricFilter",
                    "Properties": {
                        "LogGroupName": r#ref(&self.id("LogGroup")),
                        "FilterPattern": pattern,
                        "MetricTransformations": [transformation],
                    },
                }),
            );
        }
    }

    /// Failed / (succeeded + failed + rejected) over `failureRatePeriods` minutes above `failureRateThreshold` %.
    pub(super) fn failure_rate_alarm(&mut self) {
        let o = self.o;
        let period = o.failure_rate_periods * 60;
        let stat = |id: &str, metric: &str| {
            json!({
                "Id": id,
                "MetricStat": {
                    "Metric": { "Namespace": namespace(), "MetricName": metric },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": false,
            })
        };
        let mut properties = json!({
            "AlarmDescription": format!(
                "More than {}% of finished tasks failed over {} minutes",
                o.failure_rate_threshold, o.failure_rate_periods
            ),
            "Metrics": [
                stat("succeeded", "Succeeded"),
                stat("failed", "Failed"),
                stat("rejected", "Rejected"),
                { "Id": "rate", "Expression": FAILURE_RATE, "Label": "Failure rate (%)", "ReturnData": true },
            ],
            "EvaluationPeriods": 1,
            "Threshold": o.failure_rate_threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        });
        properties["AlarmActions"] = self.alarm_actions();
        self.add("FailureRateAlarm", json!({ "Type": "AWS::CloudWatch::Alarm", "Properties": properties }));
    }

    /// The stack's dashboard: the queue (depth, in flight, oldest message, dead letters), outcomes per minute, task
    /// duration, running tasks (ECS Container Insights, when the cluster has it on).
    pub(super) fn dashboard(&mut self) {
        let sqs = |title: &str, metric: &str, queue: &str, stat: &str| {
            widget(title, json!([["AWS/SQS", metric, "QueueName", format!("${{{queue}}}"), { "stat": stat }]]))
        };
        let outcomes: Vec<Value> = ["Succeeded", "Failed", "Rejected", "NotPlaced"]
            .iter()
            .map(|metric| json!(["Watchbot/${AWS::StackName}", metric, { "stat": "Sum", "period": 60 }]))
            .collect();
        let durations: Vec<Value> = ["Average", "p90", "Maximum"]
            .iter()
            .map(|stat| json!(["Watchbot/${AWS::StackName}", "TaskDuration", { "stat": stat, "label": stat }]))
            .collect();
        let widgets = vec![
            sqs("Queue depth", "ApproximateNumberOfMessagesVisible", "Queue", "Maximum"),
            sqs("In flight", "ApproximateNumberOfMessagesNotVisible", "Queue", "Maximum"),
            sqs("Age of the oldest message (s)", "ApproximateAgeOfOldestMessage", "Queue", "Maximum"),
            sqs("Dead letters", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue", "Maximum"),
            widget("Outcomes per minute", Value::Array(outcomes)),
            widget("Task duration (ms)", Value::Array(durations)),
            widget(
                "Running tasks (Container Insights)",
                json!([
                    ["ECS/ContainerInsights", "TaskCount", "ClusterName", "${Cluster}", "TaskDefinitionFamily",
                        "${WorkerFamily}", { "label": "workers" }],
                    ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "${Cluster}", "ServiceName",
                        "${ServiceName}", { "label": "watchers" }],
                ]),
            ),
        ];
        let widgets: Vec<Value> = widgets
            .into_iter()
            .enumerate()
            .map(|(i, mut w)| {
                w["x"] = json!((i % 3) * 8);
                w["y"] = json!((i / 3) * 6);
                w
            })
            .collect();
        let body = serde_json::to_string(&crate::sorted(json!({ "widgets": widgets }))).unwrap_or_default();
        let worker = r#ref(&self.id("Worker"));
        let family = json!({ "Fn::Select": [0, { "Fn::Split": [":", { "Fn::Select": [1, { "Fn::Split": [
            "task-definition/", worker] }] }] }] });
        let variables = json!({
            "Queue": att(&self.id("Queue"), "QueueName"),
            "DeadLetterQueue": att(&self.id("DeadLetterQueue"), "QueueName"),
            "Cluster": self.cluster_name(),
            "WorkerFamily": family,
            "ServiceName": att(&self.id("Service"), "Name"),
        });
        self.add(
            "Dashboard",
            json!({
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": { "DashboardBody": { "Fn::Sub": [body, variables] } },
            }),
        );
    }

    /// The cluster's name, for metric dimensions: a literal as it is (the part after `cluster/` of an ARN), an
    /// intrinsic (an ARN, as the IAM conditions need) split.
    fn cluster_name(&self) -> Value {
        match &self.o.cluster {
            Value::String(text) => Value::String(text.rsplit('/').next().unwrap_or(text).to_string()),
            other => json!({ "Fn::Select": [1, { "Fn::Split": ["cluster/", other] }] }),
        }
    }
}

/// A time-series widget of these metrics, per minute.
fn widget(title: &str, metrics: Value) -> Value {
    json!({
        "type": "metric",
        "width": 8,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "view": "timeSeries",
            "region": "${AWS::Region}",
            "period": 60,
        },
    })
}
