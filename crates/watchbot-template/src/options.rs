//! Typed watchbot options, parsed from JSON with the seed's camelCase names and defaults, and validated.
//!
//! Parsing is by hand, one option at a time, so every error is one line naming the option (serde's derive would
//! name the field inside a message about the struct, with a line and column the user does not need).

use crate::error::Error;
use serde_json::{Map, Value};

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
        };
        options.validate(map)?;
        Ok(options)
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

/// The options object, read one option at a time.
struct Raw<'a>(&'a Map<String, Value>);

impl Raw<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        // `null` is the same as leaving the option out, as in the original (undefined).
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(Error::invalid(name, "must not be empty")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::invalid(name, format!("expected a string, got {}", describe(other)))),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::invalid(name, format!("expected true or false, got {}", describe(other)))),
        }
    }

    fn integer(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(Error::invalid(name, format!("must be a whole number from {min} to {max}, got {n}"))),
            },
            Some(other) => Err(Error::invalid(name, format!("expected a whole number, got {}", describe(other)))),
        }
    }

    /// `billingMode` with the capacity options: capacity goes with PROVISIONED, and capacity given without a mode
    /// means PROVISIONED (an options file written for the original keeps its provisioned table).
    fn billing_mode(&self) -> Result<BillingMode, Error> {
        let read = self.integer("readCapacityUnits", 1, u64::from(u32::MAX))?;
        let write = self.integer("writeCapacityUnits", 1, u64::from(u32::MAX))?;
        let provisioned = BillingMode::Provisioned {
            read_capacity_units: read.unwrap_or(30),
            write_capacity_units: write.unwrap_or(30),
        };
        match self.string("billingMode")?.as_deref() {
            Some("PROVISIONED") => Ok(provisioned),
            Some("PAY_PER_REQUEST") => match (read, write) {
                (None, None) => Ok(BillingMode::PayPerRequest),
                (read, _) => Err(Error::Conflict {
                    first: if read.is_some() { "readCapacityUnits" } else { "writeCapacityUnits" },
                    second: "billingMode",
                    message: "capacity units go with billingMode PROVISIONED; a PAY_PER_REQUEST table has none".into(),
                }),
            },
            Some(other) => Err(Error::invalid(
                "billingMode",
                format!("expected \"PAY_PER_REQUEST\" or \"PROVISIONED\", got \"{other}\""),
            )),
            None if read.is_some() || write.is_some() => Ok(provisioned),
            None => Ok(BillingMode::PayPerRequest),
        }
    }

    /// A string or an intrinsic object.
    fn reference(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => reference(name, value).map(Some),
        }
    }

    fn permissions(&self) -> Result<Vec<Value>, Error> {
        let Some(value) = self.get("permissions") else { return Ok(Vec::new()) };
        let Value::Array(statements) = value else {
            return Err(Error::invalid(
                "permissions",
                format!("expected an array of IAM statements, got {}", describe(value)),
            ));
        };
        for (i, statement) in statements.iter().enumerate() {
            let name = format!("permissions[{i}]");
            let Value::Object(fields) = statement else {
                return Err(Error::invalid(
                    name,
                    format!("expected an IAM statement object, got {}", describe(statement)),
                ));
            };
            if fields.contains_key("PolicyDocument") || fields.contains_key("Statement") {
                return Err(Error::invalid(name, "give the statements themselves, not a policy document"));
            }
            match fields.get("Effect") {
                Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
                _ => return Err(Error::invalid(name, "needs \"Effect\": \"Allow\" or \"Deny\"")),
            }
            if !fields.contains_key("Action") && !fields.contains_key("NotAction") {
                return Err(Error::invalid(name, "needs \"Action\""));
            }
            if !fields.contains_key("Resource") && !fields.contains_key("NotResource") {
                return Err(Error::invalid(name, "needs \"Resource\""));
            }
            for key in fields.keys() {
                if !["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"]
                    .contains(&key.as_str())
                {
                    return Err(Error::invalid(name, format!("unknown IAM statement key \"{key}\"")));
                }
            }
        }
        Ok(statements.clone())
    }

    fn env(&self) -> Result<Map<String, Value>, Error> {
        let Some(value) = self.get("env") else { return Ok(Map::new()) };
        let Value::Object(vars) = value else {
            return Err(Error::invalid("env", format!("expected an object of variables, got {}", describe(value))));
        };
        let mut env = Map::new();
        for (key, value) in vars {
            let name = format!("env.{key}");
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::invalid(name, "a variable name has only letters, digits and _"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(Error::invalid(name, "is set by watchbot itself; choose another name"));
            }
            // ECS environment values are strings: numbers and booleans are written as text, as a user would expect.
            let value = match value {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => reference(&name, other)?,
            };
            env.insert(key.clone(), value);
        }
        Ok(env)
    }

    fn command(&self) -> Result<Option<Value>, Error> {
        match self.get("command") {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(Error::invalid("command", "must not be empty")),
            // A string is a shell command line, as a user typing it would mean it.
            Some(Value::String(s)) => Ok(Some(serde_json::json!(["/bin/sh", "-c", s]))),
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    reference(&format!("command[{i}]"), item)?;
                }
                Ok(Some(Value::Array(items.clone())))
            }
            Some(other) if is_intrinsic(other) => Ok(Some(other.clone())),
            Some(other) => Err(Error::invalid(
                "command",
                format!("expected a command line or a non-empty array of strings, got {}", describe(other)),
            )),
        }
    }

    fn mounts(&self) -> Result<Vec<(String, String)>, Error> {
        let Some(text) = self.get("mounts") else { return Ok(Vec::new()) };
        let Value::String(text) = text else {
            return Err(Error::invalid("mounts", format!("expected \"host:container,...\", got {}", describe(text))));
        };
        let mut mounts = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parts: Vec<&str> = entry.split(':').collect();
            match parts.as_slice() {
                [host, container] if host.starts_with('/') && container.starts_with('/') => {
                    if mounts.iter().any(|(_, c): &(String, String)| c == container) {
                        return Err(Error::invalid("mounts", format!("container path {container} is mounted twice")));
                    }
                    mounts.push((host.to_string(), container.to_string()));
                }
                _ => {
                    return Err(Error::invalid(
                        "mounts",
                        format!("entry \"{entry}\" is not host:container with two absolute paths"),
                    ));
                }
            }
        }
        Ok(mounts)
    }

    fn reservation(&self) -> Result<Reservation, Error> {
        let Some(value) = self.get("reservation") else { return Ok(Reservation::default()) };
        let Value::Object(fields) = value else {
            return Err(Error::invalid("reservation", format!("expected an object, got {}", describe(value))));
        };
        let mut reservation = Reservation::default();
        for (key, value) in fields {
            let name = format!("reservation.{key}");
            let slot = match key.as_str() {
                "memory" => &mut reservation.memory,
                "softMemory" => &mut reservation.soft_memory,
                "cpu" => &mut reservation.cpu,
                _ => {
                    return Err(Error::invalid(name, "unknown key (expected one of: memory, softMemory, cpu)"));
                }
            };
            match value {
                Value::Null => {}
                Value::Number(n) if n.as_u64().is_some_and(|v| v >= 1) => *slot = Some(value.clone()),
                other if is_intrinsic(other) => *slot = Some(other.clone()),
                other => {
                    return Err(Error::invalid(
                        name,
                        format!("expected a positive whole number, got {}", describe(other)),
                    ));
                }
            }
        }
        if let Some(Value::Number(memory)) = &reservation.memory
            && memory.as_u64().is_some_and(|m| m < 6)
        {
            return Err(Error::invalid("reservation.memory", "ECS needs at least 6 MiB"));
        }
        Ok(reservation)
    }

    fn outputs(&self) -> Result<crate::Outputs, Error> {
        match self.get("outputs") {
            None | Some(Value::Bool(false)) => Ok(crate::Outputs::None),
            Some(Value::Bool(true)) => Ok(crate::Outputs::Plain),
            Some(Value::String(prefix)) if crate::outputs::valid_export_prefix(prefix) => {
                Ok(crate::Outputs::Exported(prefix.clone()))
            }
            Some(Value::String(prefix)) => Err(Error::invalid(
                "outputs",
                format!("\"{prefix}\" is not an export name prefix (letters, digits, `:` and `-`, at most 200)"),
            )),
            Some(other) => Err(Error::invalid(
                "outputs",
                format!("expected true, false or an export name prefix, got {}", describe(other)),
            )),
        }
    }

    fn kms_key(&self) -> Result<Option<Value>, Error> {
        let Some(value) = self.reference("kmsKey")? else { return Ok(None) };
        // IAM statements name keys by ARN; a key id or alias would grant nothing.
        if let Value::String(s) = &value
            && !s.starts_with("arn:")
        {
            return Err(Error::invalid("kmsKey", format!("expected a KMS key ARN (arn:aws:kms:...), got \"{s}\"")));
        }
        Ok(Some(value))
    }
}

/// A literal string or an intrinsic object, else an error naming `name`.
fn reference(name: &str, value: &Value) -> Result<Value, Error> {
    match value {
        Value::String(s) if s.is_empty() => Err(Error::invalid(name, "must not be empty")),
        Value::String(_) => Ok(value.clone()),
        other if is_intrinsic(other) => Ok(other.clone()),
        other => Err(Error::invalid(
            name,
            format!("expected a string or a CloudFormation intrinsic ({{\"Ref\": ...}}), got {}", describe(other)),
        )),
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
