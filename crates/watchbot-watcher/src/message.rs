//! Message parsing (SNS envelope or raw body; never a crash), the task's environment, and the size of the ECS
//! container overrides that environment would need (ECS rejects more than 8,192 characters), and the runner's
//! [`TaskSizeLimit`] that a message over it breaks.

use crate::ports::ReceivedMessage;
use std::collections::BTreeMap;

/// A message's subject and text, as the task sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// SNS Subject, or the `Subject` message attribute of a raw message, or empty.
    pub subject: String,
    /// SNS Message, or the whole body of a raw message.
    pub message: String,
}

/// Reads a body: an SNS envelope (`{"Type":"Notification","Message":...}`) gives its Subject and Message; anything
/// else (raw delivery, direct SendMessage, not JSON) is the Message itself, with the Subject from a `Subject` message
/// attribute or empty.
pub fn parse(body: &str, attributes: &BTreeMap<String, String>) -> Parsed {
    if let Some(parsed) = parse_envelope(body) {
        return parsed;
    }
    Parsed { subject: attributes.get("Subject").cloned().unwrap_or_default(), message: body.to_string() }
}

fn parse_envelope(body: &str) -> Option<Parsed> {
    // Cheap check first: most raw bodies are not JSON objects.
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    // An SNS envelope says so; a user's own JSON that merely has a "Message" key is a raw body.
    let is_envelope = object.get("Type").and_then(|t| t.as_str()) == Some("Notification")
        || object.get("TopicArn").is_some_and(|t| t.is_string());
    if !is_envelope {
        return None;
    }
    let message = object.get("Message")?.as_str()?.to_string();
    let subject = object.get("Subject").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    Some(Parsed { subject, message })
}

/// The task's environment: the message's variables (behaviour.md §1, timestamps as epoch-ms strings) on top of
/// `task_env` (`WorkTopic`, `LogGroup`, the user's env ...), which cannot override them.
pub fn task_env(message: &ReceivedMessage, task_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let parsed = parse(&message.body, &message.attributes);
    let mut env = task_env.clone();
    env.insert("Subject".into(), parsed.subject);
    env.insert("Message".into(), parsed.message);
    env.insert("MessageId".into(), message.message_id.clone());
    env.insert("SentTimestamp".into(), message.sent_timestamp_ms.to_string());
    env.insert("ApproximateFirstReceiveTimestamp".into(), message.first_receive_timestamp_ms.to_string());
    env.insert("ApproximateReceiveCount".into(), message.receive_count.to_string());
    env
}

/// ECS's limit on the container overrides of one RunTask, in characters of JSON.
pub const ECS_OVERRIDES_LIMIT: usize = 8192;

/// Linux's limit on one environment string of a new process, `NAME=value` and its NUL (`MAX_ARG_STRLEN`, 32 pages).
pub const ENV_STRING_LIMIT: usize = 128 * 1024;

/// The variable whose `NAME=value` string is longest, and its size in bytes with the terminating NUL (`None` for an
/// empty environment).
pub fn largest_env_string(env: &BTreeMap<String, String>) -> Option<(&str, usize)> {
    env.iter().map(|(name, value)| (name.as_str(), name.len() + value.len() + 2)).max_by_key(|(_, size)| *size)
}

/// The size of the container overrides JSON the ECS runner sends for this environment:
/// `{"containerOverrides":[{"name":<container>,"environment":[{"name":..,"value":..},..]}]}`.
///
/// Counted in UTF-8 bytes, which is never less than the characters (or UTF-16 units) ECS may count, so a message
/// that fits here fits there.
pub fn overrides_size(container_name: &str, env: &BTreeMap<String, String>) -> usize {
    let environment: Vec<serde_json::Value> =
        env.iter().map(|(name, value)| serde_json::json!({ "name": name, "value": value })).collect();
    let overrides = serde_json::json!({
        "containerOverrides": [{ "name": container_name, "environment": environment }]
    });
    serde_json::to_string(&overrides).map(|s| s.len()).unwrap_or(usize::MAX)
}

/// A limit on the size of a task's environment, as the runner will pass it. A message over it is not run: it goes to
/// the dead-letter queue with a notification (it would fail the same way on every receive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSizeLimit {
    /// ECS container overrides.
    Overrides {
        /// The container the overrides name.
        container_name: String,
        /// The most characters of overrides JSON the runner accepts (ECS: 8,192).
        max_chars: usize,
    },
    /// A child process's environment: each `NAME=value` string (Linux: 128 KiB, `MAX_ARG_STRLEN`; exec fails with
    /// E2BIG past it).
    EnvString {
        /// The most bytes of one `NAME=value` string, its terminating NUL included.
        max_bytes: usize,
    },
}

impl TaskSizeLimit {
    /// ECS's limit for the container overrides of `container_name`.
    pub fn ecs(container_name: impl Into<String>) -> TaskSizeLimit {
        TaskSizeLimit::Overrides { container_name: container_name.into(), max_chars: ECS_OVERRIDES_LIMIT }
    }

    /// Linux's limit for each environment string of a child process (the process runner).
    pub fn process() -> TaskSizeLimit {
        TaskSizeLimit::EnvString { max_bytes: ENV_STRING_LIMIT }
    }

    /// Why `env` is over this limit, or `None` when it fits.
    pub fn exceeded_by(&self, env: &BTreeMap<String, String>) -> Option<String> {
        match self {
            TaskSizeLimit::Overrides { container_name, max_chars } => {
                let size = overrides_size(container_name, env);
                (size > *max_chars).then(|| {
                    format!(
                        "not run: its environment needs {size} characters of container overrides, over the limit of \
                         {max_chars}"
                    )
                })
            }
            TaskSizeLimit::EnvString { max_bytes } => {
                let (name, size) = largest_env_string(env)?;
                (size > *max_bytes).then(|| {
                    format!(
                        "not run: its environment variable {name} needs {size} bytes, over the limit of {max_bytes} \
                         bytes per variable of a child process"
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_bodies() {
        let envelope = r#"{"Type":"Notification","MessageId":"x","TopicArn":"arn:aws:sns:us-east-1:1:t","Subject":"hello","Message":"{\"a\":1}"}"#;
        let no_subject = r#"{"Type":"Notification","TopicArn":"arn","Subject":null,"Message":"body"}"#;
        let users_json = r#"{"Message":"not an envelope","Subject":"s"}"#;
        let cases = [
            (envelope, attrs(&[]), "hello", r#"{"a":1}"#),
            (no_subject, attrs(&[]), "", "body"),
            (users_json, attrs(&[]), "", users_json),
            ("plain text", attrs(&[("Subject", "attr subject")]), "attr subject", "plain text"),
            ("plain text", attrs(&[]), "", "plain text"),
            ("{not json", attrs(&[]), "", "{not json"),
            ("[1,2]", attrs(&[]), "", "[1,2]"),
            (r#"{"Type":"Notification","Message":5}"#, attrs(&[]), "", r#"{"Type":"Notification","Message":5}"#),
            ("bad \u{fffd} utf8", attrs(&[]), "", "bad \u{fffd} utf8"),
            ("", attrs(&[]), "", ""),
        ];
        for (body, attributes, subject, message) in cases {
            let parsed = parse(body, &attributes);
            assert_eq!(parsed, Parsed { subject: subject.into(), message: message.into() }, "body {body:?}");
        }
    }

    #[test]
    fn task_env_has_the_message_variables_on_top() {
        let message = ReceivedMessage {
            message_id: "m-1".into(),
            receipt_handle: "r".into(),
            body: r#"{"Type":"Notification","Subject":"s","Message":"m"}"#.into(),
            sent_timestamp_ms: 1000,
            first_receive_timestamp_ms: 2000,
            receive_count: 3,
            attributes: BTreeMap::new(),
        };
        let base = attrs(&[("WorkTopic", "arn:topic"), ("MessageId", "spoofed"), ("LogGroup", "lg")]);
        let env = task_env(&message, &base);
        assert_eq!(
            env,
            attrs(&[
                ("ApproximateFirstReceiveTimestamp", "2000"),
                ("ApproximateReceiveCount", "3"),
                ("LogGroup", "lg"),
                ("Message", "m"),
                ("MessageId", "m-1"),
                ("SentTimestamp", "1000"),
                ("Subject", "s"),
                ("WorkTopic", "arn:topic"),
            ])
        );
    }

    #[test]
    fn overrides_size_matches_the_json() {
        let env = attrs(&[("A", "1"), ("Quote", "say \"hi\"\n")]);
        let expected = r#"{"containerOverrides":[{"environment":[{"name":"A","value":"1"},{"name":"Quote","value":"say \"hi\"\n"}],"name":"worker"}]}"#;
        assert_eq!(overrides_size("worker", &env), expected.len());
        assert_eq!(
            overrides_size("worker", &BTreeMap::new()),
            r#"{"containerOverrides":[{"environment":[],"name":"worker"}]}"#.len()
        );
        // Multi-byte characters count by their UTF-8 length (conservative).
        let wide = attrs(&[("M", "é")]);
        let narrow = attrs(&[("M", "e")]);
        assert_eq!(overrides_size("w", &wide), overrides_size("w", &narrow) + 1);
        let big = attrs(&[("Message", &"x".repeat(ECS_OVERRIDES_LIMIT))]);
        assert!(overrides_size("w", &big) > ECS_OVERRIDES_LIMIT);
    }
}
