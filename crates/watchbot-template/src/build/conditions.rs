//! Optional options given as references: a `{"Ref": ...}` may resolve to `""` at deploy time, meaning "not this
//! time". Each such option gets a Condition `<prefix>Has<Option>` (`Fn::Not` `Fn::Equals` `""`, as the original
//! did); the resources that exist only for it carry the Condition, and properties that use it are `Fn::If` with
//! `AWS::NoValue` (or `""` where a string must stay). A literal value needs no Condition: it is never empty.

use super::Builder;
use crate::options::is_intrinsic;
use serde_json::{Map, Value, json};

/// `{"Ref": "AWS::NoValue"}`: the property (or list item) is left out.
pub(super) fn no_value() -> Value {
    json!({ "Ref": "AWS::NoValue" })
}

/// `value` when the condition holds, else `otherwise`; `value` alone without a condition.
pub(super) fn when(condition: Option<&str>, value: Value, otherwise: Value) -> Value {
    match condition {
        Some(condition) => json!({ "Fn::If": [condition, value, otherwise] }),
        None => value,
    }
}

/// Whether a reference may resolve to `""`: any intrinsic but an `Fn::Sub` or `Fn::Join` with literal text of its
/// own (an ARN built from parts is never empty, and a Condition on it would be one cfn-lint calls unreachable).
fn may_be_empty(value: &Value) -> bool {
    if !is_intrinsic(value) {
        return false;
    }
    let literal_text = |text: &str| {
        let mut rest = text;
        let mut literal = String::new();
        while let Some(start) = rest.find("${") {
            literal.push_str(&rest[..start]);
            rest = rest[start..].find('}').map_or("", |end| &rest[start + end + 1..]);
        }
        literal.push_str(rest);
        !literal.is_empty()
    };
    match (value.get("Fn::Sub"), value.get("Fn::Join")) {
        (Some(Value::String(text)), _) => !literal_text(text),
        (Some(Value::Array(parts)), _) => !parts.first().and_then(Value::as_str).is_some_and(literal_text),
        (_, Some(join)) => {
            !join[1].as_array().is_some_and(|items| items.iter().any(|i| i.as_str().is_some_and(|s| !s.is_empty())))
        }
        _ => true,
    }
}

/// The optional options that accept a reference, by the name of their Condition.
fn optional_references<'o>(builder: &Builder<'o>) -> Vec<(&'static str, Option<&'o Value>)> {
    let o = builder.o;
    vec![
        ("NotificationTopic", o.notification_topic.as_ref()),
        ("NotificationEmail", o.notification_email.as_ref()),
        ("LogAggregation", o.log_aggregation_function.as_ref()),
        ("KmsKey", o.kms_key.as_ref()),
        ("WatchbotVersion", Some(&o.watchbot_version)),
        ("ReservationMemory", o.reservation.memory.as_ref()),
        ("ReservationSoftMemory", o.reservation.soft_memory.as_ref()),
        ("ReservationCpu", o.reservation.cpu.as_ref()),
    ]
}

impl Builder<'_> {
    /// The Condition of an optional option (`NotificationTopic`, `LogAggregation`, ...) when it is a reference.
    pub(super) fn condition(&self, option: &str) -> Option<String> {
        optional_references(self)
            .into_iter()
            .find(|(name, value)| *name == option && value.is_some_and(may_be_empty))
            .map(|(name, _)| self.id(&format!("Has{name}")))
    }

    /// The Conditions section: one per optional option given as a reference.
    pub(super) fn conditions(&self) -> Map<String, Value> {
        let mut conditions = Map::new();
        for (name, value) in optional_references(self) {
            if let Some(value) = value.filter(|v| may_be_empty(v)) {
                conditions
                    .insert(self.id(&format!("Has{name}")), json!({ "Fn::Not": [{ "Fn::Equals": [value, ""] }] }));
            }
        }
        conditions
    }

    /// The Condition under which there is a notification topic: the user's topic, or the new one of an email.
    pub(super) fn notification_condition(&self) -> Option<String> {
        self.condition("NotificationTopic").or_else(|| self.condition("NotificationEmail"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_built_around_literal_text_are_never_empty() {
        assert!(may_be_empty(&json!({"Ref": "Topic"})));
        assert!(may_be_empty(&json!({"Fn::Sub": "${Topic}"})));
        assert!(may_be_empty(&json!({"Fn::ImportValue": "x"})));
        assert!(may_be_empty(&json!({"Fn::Join": ["", [{"Ref": "A"}, ""]]})));
        assert!(!may_be_empty(&json!({"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:1:t"})));
        assert!(!may_be_empty(&json!({"Fn::Sub": ["v-${X}", {"X": {"Ref": "A"}}]})));
        assert!(!may_be_empty(&json!({"Fn::Join": [":", ["arn", {"Ref": "A"}]]})));
        assert!(!may_be_empty(&json!("literal")));
    }
}
