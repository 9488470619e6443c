//! Typed watchbot options, parsed from JSON with the seed's camelCase names and defaults, and validated.
//!
//! Parsing is by hand, one option at a time, so every error is one line naming the option (serde's derive would
//! name the field inside a message about the struct, with a line and column the user does not need).

use crate::error::Error;
use serde_json::{Map, Value};

pub(crate) mod capacity;
mod raw;
pub use capacity::{Capacity, CapacityProvider, FargateSize, Network, WATCHER_FARGATE_CPU, WATCHER_FARGATE_MEMORY};
use raw::Raw;

/// Every option name, in the order the README lists them (used in "unknown option" errors).
const OPTION_NAMES: &[&str] = &[
    "cluster",
    "service",
    "serviceVersion",
    "notificationEmail",
    "notificationTopic",
    "permissions",
    "env",
    "command",
    "watchbotVersion",
    "prefix",
    "user",
    "webhook",
    "webhookKey",
    "reduce",
    "billingMode",
    "readCapacityUnits",
    "writeCapacityUnits",
    "watchers",
    "workers",
    "backoff",
    "logAggregationFunction",
    "mounts",
    "reservation",
    "messageTimeout",
    "messageRetention",
    "deadLetterThreshold",
    "alarmThreshold",
    "alarmPeriods",
    "debugLogs",
    "notifyAfterRetries",
    "privileged",
    "outputs",
    "kmsKey",
    "capacity",
    "subnets",
    "securityGroups",
    "assignPublicIp",
    "failureRateThreshold",
    "failureRatePeriods",
    "notifyEachFailure",
];

/// Names the template itself sets in the worker's environment, or the watcher sets per message: a user's `env`
/// must not use them, because they would be silently overridden.
const RESERVED_ENV: &[&str] = &[
    "Subject",
    "Message",
    "MessageId",
    "SentTimestamp",
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "WorkTopic",
    "LogGroup",
    "ProgressTable",
];

/// SQS limits: visibility timeout at most 12 hours, retention from 60 s to 14 days, maxReceiveCount 1..=1000.
const MAX_VISIBILITY_TIMEOUT: u64 = 43_200;
const MIN_RETENTION: u64 = 60;
const MAX_RETENTION: u64 = 1_209_600;
const MAX_RECEIVE_COUNT: u64 = 1000;
/// CloudWatch alarms: EvaluationPeriods × Period may not exceed one day; our period is 300 s.
const MAX_ALARM_PERIODS: u64 = 86_400 / 300;
/// The failure-rate alarm's window is `failureRatePeriods` minutes, at most a day.
const MAX_FAILURE_RATE_PERIODS: u64 = 1440;
/// Defaults of the failure-rate alarm: more than 10 % of finished tasks failed over 5 minutes.
pub const DEFAULT_FAILURE_RATE_THRESHOLD: u64 = 10;
/// See [`DEFAULT_FAILURE_RATE_THRESHOLD`].
pub const DEFAULT_FAILURE_RATE_PERIODS: u64 = 5;

/// Memory/CPU of the worker container. Each value is a number or a CloudFormation intrinsic.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Reservation {
    /// Hard limit in MiB (`Memory`): the container is killed above it.
    pub memory: Option<Value>,
    /// Soft limit in MiB (`MemoryReservation`): what ECS reserves on the instance for placement.
    pub soft_memory: Option<Value>,
    /// CPU units (`Cpu`, 1024 = one vCPU).
    pub cpu: Option<Value>,
}

/// How the progress table is billed (`billingMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingMode {
    /// On demand (the default): no capacity to plan, bursts of completions are not throttled at a provisioned
    /// rate, and an idle table costs nothing but storage.
    PayPerRequest,
    /// Provisioned throughput, in capacity units per second (the original's only mode, 30 and 30 by default).
    Provisioned {
        /// `ReadCapacityUnits`.
        read_capacity_units: u64,
        /// `WriteCapacityUnits`.
        write_capacity_units: u64,
    },
}

/// Validated watchbot options. Values that CloudFormation users pass as references are kept as JSON: a string or
/// an intrinsic object (`{"Ref": ...}`, `{"Fn::...": ...}`). Made from JSON (`Options::from_json_str`); it grows with
/// every new option, so it is `#[non_exhaustive]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// ECS cluster (ARN or name) the watchers and workers run on.
    pub cluster: Value,
    /// The worker's ECR repository name (a literal: it is part of the image name and of nothing else).
    pub service: String,
    /// The worker image tag.
    pub service_version: Value,
    /// Email address subscribed to a new notification topic (exclusive with `notification_topic`).
    pub notification_email: Option<Value>,
    /// An existing SNS topic ARN for notifications (exclusive with `notification_email`).
    pub notification_topic: Option<Value>,
    /// Extra IAM statements for the worker role.
    pub permissions: Vec<Value>,
    /// Extra environment of the worker container, values as strings or intrinsics.
    pub env: Map<String, Value>,
    /// Overrides the image's CMD.
    pub command: Option<Value>,
    /// The watcher image tag.
    pub watchbot_version: Value,
    /// Prefix of every logical id.
    pub prefix: String,
    /// Create an IAM user (and access key) that may publish to the work topic.
    pub user: bool,
    /// Create an HTTPS endpoint that publishes POSTed jobs to the work topic.
    pub webhook: bool,
    /// Require an API key on the webhook.
    pub webhook_key: bool,
    /// Reduce mode: a DynamoDB progress table.
    pub reduce: bool,
    /// The progress table's billing, with its capacity when provisioned.
    pub billing_mode: BillingMode,
    /// Watcher tasks (the service's `DesiredCount`).
    pub watchers: u64,
    /// Tasks at once per watcher (its `Concurrency`).
    pub workers: u64,
    /// Exponential backoff of returned messages (the watcher's `ExponentialBackoff`).
    pub backoff: bool,
    /// ARN of a Lambda function that receives the log group's events.
    pub log_aggregation_function: Option<Value>,
    /// `(host path, container path)` pairs.
    pub mounts: Vec<(String, String)>,
    /// The worker container's memory and CPU.
    pub reservation: Reservation,
    /// Seconds a task may run (the queue's visibility timeout and the watcher's `MessageTimeout`).
    pub message_timeout: u64,
    /// Seconds the queue keeps a message.
    pub message_retention: u64,
    /// Receives before a message moves to the dead-letter queue.
    pub dead_letter_threshold: u64,
    /// Visible messages above which the queue-size alarm fires.
    pub alarm_threshold: u64,
    /// Five-minute periods the queue size must stay above the threshold.
    pub alarm_periods: u64,
    /// The watcher logs at `debug` instead of `info`.
    pub debug_logs: bool,
    /// Receives of a message whose failures stay quiet (the watcher's `NotifyAfterRetries`).
    pub notify_after_retries: u64,
    /// The worker container runs privileged.
    pub privileged: bool,
    /// KMS key ARN the worker may decrypt with (encrypted environment).
    pub kms_key: Option<Value>,
    /// Whether the refs become stack Outputs, and exported under which prefix.
    pub outputs: crate::Outputs,
    /// Where the watchers and tasks run.
    pub capacity: Capacity,
    /// The tasks' network on Fargate (`Some` exactly with Fargate capacity).
    pub network: Option<Network>,
    /// The worker's task size on Fargate (`Some` exactly with Fargate capacity).
    pub fargate_size: Option<FargateSize>,
    /// The failure-rate alarm fires above this percentage of finished tasks failed.
    pub failure_rate_threshold: u64,
    /// ... over this many minutes.
    pub failure_rate_periods: u64,
    /// Notify each failure (`false`: only rejections and dead-lettering notify; failures are left to the alarm).
    pub notify_each_failure: bool,
}

impl Options {
    /// Parses and validates options from JSON text.
    pub fn from_json_str(text: &str) -> Result<Options, Error> {
        let value: Value = crate::parse_strict(text).map_err(|e| Error::Json(e.to_string()))?;
        Options::from_value(&value)
    }

    /// Parses and validates options from a JSON value (an object of options).
    pub fn from_value(value: &Value) -> Result<Options, Error> {
        let Value::Object(map) = value else {
            return Err(Error::NotAnObject(json_type(value)));
        };
        for name in map.keys() {
            if !OPTION_NAMES.contains(&name.as_str()) {
                return Err(unknown_option(name));
            }
        }
        let raw = Raw(map);
        let options = Options {
            cluster: raw.reference("cluster")?.ok_or(Error::Missing("cluster"))?,
            service: raw.string("service")?.ok_or(Error::Missing("service"))?,
            service_version: raw.reference("serviceVersion")?.ok_or(Error::Missing("serviceVersion"))?,
            notification_email: raw.reference("notificationEmail")?,
            notification_topic: raw.reference("notificationTopic")?,
            permissions: raw.permissions()?,
            env: raw.env()?,
            command: raw.command()?,
            watchbot_version: raw
                .reference("watchbotVersion")?
                .unwrap_or_else(|| Value::String(crate::DEFAULT_WATCHBOT_VERSION.to_string())),
            prefix: raw.string("prefix")?.unwrap_or_else(|| "Watchbot".to_string()),
            user: raw.boolean("user")?.unwrap_or(false),
            webhook: raw.boolean("webhook")?.unwrap_or(false),
            webhook_key: raw.boolean("webhookKey")?.unwrap_or(false),
            reduce: raw.boolean("reduce")?.unwrap_or(false),
            billing_mode: raw.billing_mode()?,
            watchers: raw.integer("watchers", 1, 10_000)?.unwrap_or(1),
            workers: raw.integer("workers", 1, 10_000)?.unwrap_or(1),
            backoff: raw.boolean("backoff")?.unwrap_or(true),
            log_aggregation_function: raw.reference("logAggregationFunction")?,
            mounts: raw.mounts()?,
            reservation: raw.reservation()?,
            message_timeout: raw.integer("messageTimeout", 1, MAX_VISIBILITY_TIMEOUT)?.unwrap_or(600),
            message_retention: raw.integer("messageRetention", MIN_RETENTION, MAX_RETENTION)?.unwrap_or(MAX_RETENTION),
            dead_letter_threshold: raw.integer("deadLetterThreshold", 1, MAX_RECEIVE_COUNT)?.unwrap_or(10),
            alarm_threshold: raw.integer("alarmThreshold", 0, u64::from(u32::MAX))?.unwrap_or(40),
            alarm_periods: raw.integer("alarmPeriods", 1, MAX_ALARM_PERIODS)?.unwrap_or(24),
            debug_logs: raw.boolean("debugLogs")?.unwrap_or(false),
            notify_after_retries: raw.integer("notifyAfterRetries", 0, MAX_RECEIVE_COUNT)?.unwrap_or(0),
            privileged: raw.boolean("privileged")?.unwrap_or(false),
            kms_key: raw.kms_key()?,
            outputs: raw.outputs()?,
            capacity: raw.capacity()?,
            network: None,
            fargate_size: None,
            failure_rate_threshold: raw
                .integer("failureRateThreshold", 0, 99)?
                .unwrap_or(DEFAULT_FAILURE_RATE_THRESHOLD),
            failure_rate_periods: raw
                .integer("failureRatePeriods", 1, MAX_FAILURE_RATE_PERIODS)?
                .unwrap_or(DEFAULT_FAILURE_RATE_PERIODS),
            notify_each_failure: raw.boolean("notifyEachFailure")?.unwrap_or(true),
        };
        let mut options = options;
        options.network = raw.network(&options.capacity)?;
        if options.capacity.is_fargate() {
            options.fargate_size = Some(capacity::fargate_size(&options.reservation)?);
        }
        options.validate(map)?;
        Ok(options)
    }

    /// Options that are valid but probably not what was meant, one line each (`watchbot template` prints them on
    /// stderr; the template is generated all the same).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.webhook && !self.webhook_key {
            warnings.push(
                "\"webhook\" without \"webhookKey\": anyone who finds the endpoint can POST jobs to the queue \
                 (\"webhookKey\": true requires an API key)"
                    .to_string(),
            );
        }
        warnings
    }

    /// Checks between options: what each alone cannot tell.
    fn validate(&self, given: &Map<String, Value>) -> Result<(), Error> {
        validate_service(&self.service)?;
        if let Value::String(cluster) = &self.cluster
            && !cluster.starts_with("arn:")
            && !cluster.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                "cluster",
                format!("\"{cluster}\" is neither a cluster ARN nor a cluster name"),
            ));
        }
        validate_prefix(&self.prefix)?;
        if self.capacity.is_fargate() {
            if !self.mounts.is_empty() {
                return Err(Error::invalid("mounts", "host paths cannot be mounted on Fargate"));
            }
            if self.privileged {
                return Err(Error::invalid("privileged", "Fargate runs no privileged containers"));
            }
        }
        match (&self.notification_email, &self.notification_topic) {
            (Some(_), Some(_)) => {
                return Err(Error::Conflict {
                    first: "notificationEmail",
                    second: "notificationTopic",
                    message: "give one: an email subscribes to a new topic, a topic is used as it is".into(),
                });
            }
            (None, None) => return Err(Error::Missing("notificationEmail (or notificationTopic)")),
            _ => {}
        }
        if self.webhook_key && !self.webhook {
            return Err(Error::Conflict {
                first: "webhookKey",
                second: "webhook",
                message: "webhookKey needs webhook: true".into(),
            });
        }
        for option in ["billingMode", "readCapacityUnits", "writeCapacityUnits"] {
            if given.contains_key(option) && !self.reduce {
                return Err(Error::Conflict {
                    first: option,
                    second: "reduce",
                    message: "the progress table exists only with reduce: true".into(),
                });
            }
        }
        if self.dead_letter_threshold <= self.notify_after_retries {
            return Err(Error::Conflict {
                first: "notifyAfterRetries",
                second: "deadLetterThreshold",
                message: format!(
                    "notifyAfterRetries ({}) must be below deadLetterThreshold ({}), or failures would never notify",
                    self.notify_after_retries, self.dead_letter_threshold
                ),
            });
        }
        if let (Some(Value::Number(hard)), Some(Value::Number(soft))) =
            (&self.reservation.memory, &self.reservation.soft_memory)
            && soft.as_u64() >= hard.as_u64()
        {
            return Err(Error::invalid(
                "reservation.softMemory",
                format!("must be below reservation.memory ({hard} MiB), got {soft}"),
            ));
        }
        Ok(())
    }
}

/// `{"Ref": ...}`, `{"Fn::...": ...}` or `{"Condition": ...}`: an object with one key naming an intrinsic function.
pub(crate) fn is_intrinsic(value: &Value) -> bool {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let key = map.keys().next().map(String::as_str).unwrap_or_default();
            key == "Ref" || key.starts_with("Fn::")
        }
        _ => false,
    }
}

fn validate_service(service: &str) -> Result<(), Error> {
    // ECR repository names: lowercase letters, digits, and . _ - / between them.
    let ok = service.len() <= 256
        && service.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && service.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "service",
            format!("\"{service}\" is not an ECR repository name (lowercase letters, digits, . _ - /)"),
        ))
    }
}

fn validate_prefix(prefix: &str) -> Result<(), Error> {
    // Logical ids are alphanumeric; ours add up to ~25 characters to the prefix, within CloudFormation's 255.
    let ok = prefix.len() <= 200
        && prefix.chars().all(|c| c.is_ascii_alphanumeric())
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("prefix", format!("\"{prefix}\" must be letters and digits, starting with a letter")))
    }
}

fn unknown_option(name: &str) -> Error {
    let hint = OPTION_NAMES
        .iter()
        .map(|known| (edit_distance(&name.to_lowercase(), &known.to_lowercase()), known))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, known)| format!(", did you mean \"{known}\"?"))
        .unwrap_or_default();
    Error::UnknownOption { name: name.to_string(), hint, expected: OPTION_NAMES.join(", ") }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value's type and, for short scalars, the value itself: `a string "5"`.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() <= 40 => format!("a string \"{s}\""),
        Value::Number(n) => format!("a number {n}"),
        Value::Bool(b) => format!("a boolean {b}"),
        Value::Object(_) if !is_intrinsic(value) => "an object (not an intrinsic like {\"Ref\": ...})".to_string(),
        other => json_type(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("wrokers", "workers"), 2);
        assert_eq!(edit_distance("worker", "workers"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn intrinsics_are_single_key_function_objects() {
        assert!(is_intrinsic(&serde_json::json!({"Ref": "Cluster"})));
        assert!(is_intrinsic(&serde_json::json!({"Fn::Sub": "x"})));
        assert!(!is_intrinsic(&serde_json::json!({"Ref": "a", "Fn::Sub": "b"})));
        assert!(!is_intrinsic(&serde_json::json!({"name": "x"})));
    }
}
