//! The `outputs` option: the watchbot's `.ref`s as stack Outputs, so `aws cloudformation describe-stacks` shows the
//! queue URL, topic ARN and the rest, optionally exported for other stacks (`Fn::ImportValue`). The IAM user's
//! secret access key is never an output: outputs are readable by anyone who may describe the stack.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Which refs become outputs: all but secrets.
const SECRET_REFS: &[&str] = &["secretAccessKey"];

/// What the `outputs` option asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Outputs {
    /// No Outputs section (the default, as the original).
    #[default]
    None,
    /// Outputs, not exported (`"outputs": true`).
    Plain,
    /// Outputs exported as `<prefix><OutputId>` (`"outputs": "my-stack-"`).
    Exported(String),
}

/// The Outputs section for these refs: one output `<prefix><Name>` per ref (`WatchbotQueueUrl` for `queueUrl`); a ref
/// in `conditions` (a reference that may be empty) is output only under its Condition.
pub(crate) fn section(
    setting: &Outputs,
    prefix: &str,
    refs: &BTreeMap<String, Value>,
    conditions: &BTreeMap<String, String>,
) -> Option<Value> {
    if *setting == Outputs::None {
        return None;
    }
    let mut outputs = Map::new();
    for (name, value) in refs.iter().filter(|(name, _)| !SECRET_REFS.contains(&name.as_str())) {
        let mut chars = name.chars();
        let title: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
        let id = format!("{prefix}{title}");
        let mut output = json!({ "Description": format!("watchbot {name}"), "Value": value });
        if let Some(condition) = conditions.get(name) {
            output["Condition"] = json!(condition);
            // Under its Condition, the ref's `Fn::If` on the same Condition is its first branch.
            if let Some([c, value, _]) = value.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice)
                && c == condition
            {
                output["Value"] = value.clone();
            }
        }
        if let Outputs::Exported(export) = setting {
            output["Export"] = json!({ "Name": format!("{export}{id}") });
        }
        outputs.insert(id, output);
    }
    Some(Value::Object(outputs))
}

/// Export names take letters, digits, `:` and `-` (CloudFormation's rule), at most 255 characters with the id.
pub(crate) fn valid_export_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 200
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-')
}
