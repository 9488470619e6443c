//! A job item's attributes read and written as the original JavaScript `watchbot-progress` does (through the
//! DynamoDB document client), so the two share a table: `metadata` is stored as the JSON value's DynamoDB form (an
//! object is a map `M`, an array a list `L`, a string `S`, a number `N`, `BOOL`, `NULL`), and read back from any
//! form either side has written, our earlier `S` of JSON text included. Nothing the original can write is an
//! error here: a `total` that is a string or not a whole number, no `total` at all (its complete-part, fail-job,
//! set-metadata and reduce-sent create an item on an unknown job), an `error` that is not a string, sets and
//! binary values in `metadata`.

use super::Item;
use crate::js;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

/// The DynamoDB form of a JSON value, as the document client converts it: numbers as the text JavaScript would
/// send (whole numbers exactly).
pub(super) fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) if n.is_f64() => AttributeValue::N(n.as_f64().map_or_else(|| n.to_string(), js::number_text)),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
    }
}

/// A DynamoDB number as the document client reads it: a JavaScript number (a double).
fn number(text: &str) -> Value {
    text.trim().parse::<f64>().map_or(Value::Null, js::number_value)
}

/// A Buffer as `JSON.stringify` writes one: `{"type":"Buffer","data":[bytes]}`.
fn buffer(blob: &Blob) -> Value {
    serde_json::json!({"type": "Buffer", "data": blob.as_ref()})
}

/// The JSON value the document client reads from an attribute (`JSON.stringify` of it). A map's keys are sorted:
/// the SDK does not keep the order DynamoDB sent them in.
pub(super) fn to_json(attribute: &AttributeValue) -> Value {
    match attribute {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(to_json).collect()),
        AttributeValue::M(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), to_json(&map[k]))).collect::<Map<_, _>>())
        }
        // Sets serialize as their values (the document client's DynamoDBSet has `toJSON`).
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(items.iter().map(|n| number(n)).collect()),
        AttributeValue::B(blob) => buffer(blob),
        AttributeValue::Bs(blobs) => Value::Array(blobs.iter().map(buffer).collect()),
        _ => Value::Null,
    }
}

/// The job's metadata. A string that holds a JSON object or array is the form our earlier versions wrote (JSON text
/// in an `S`); any other string is the original's string metadata.
pub(super) fn metadata(item: &Item) -> Option<Value> {
    match item.get("metadata")? {
        AttributeValue::S(text) => match serde_json::from_str::<Value>(text) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => Some(value),
            _ => Some(Value::String(text.clone())),
        },
        other => Some(to_json(other)),
    }
}

/// The fail-job reason: a string as it is; anything else (the original's library takes any value) as its JSON
/// text; `NULL` as none.
pub(super) fn error(item: &Item) -> Option<String> {
    match item.get("error")? {
        AttributeValue::S(reason) => Some(reason.clone()),
        AttributeValue::Null(_) => None,
        other => Some(to_json(other).to_string()),
    }
}

/// The job's number of parts, `None` when the item has none the original's set-total could have written: a
/// number (or, from its library, a numeric string) of at least 1, whole parts counted (`2.5` has parts 1 and 2,
/// as its set-total wrote them).
pub(super) fn total(item: &Item) -> Option<u64> {
    let text = match item.get("total")? {
        AttributeValue::N(text) | AttributeValue::S(text) => text,
        _ => return None,
    };
    let total = text.trim().parse::<f64>().ok().filter(|t| t.is_finite() && *t >= 1.0)?;
    Some(total.floor().min(u64::MAX as f64) as u64)
}

/// The set layout's pending parts: how many (the set's size, as the original counts it), and whether `part` is
/// among them. An absent attribute is the empty set (DynamoDB removes a set's last element with the attribute).
pub(super) fn pending(item: &Item, part: Option<u64>) -> (u64, bool) {
    match item.get("parts") {
        Some(AttributeValue::Ns(parts)) => {
            let has = part.is_some_and(|p| parts.iter().any(|n| n.trim().parse::<f64>() == Ok(p as f64)));
            (parts.len() as u64, has)
        }
        _ => (0, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn metadata_goes_to_dynamodb_as_the_document_client_sends_it_and_comes_back() {
        let value = json!({"name": "x", "n": 1, "f": 0.5, "big": 1e21, "ok": true, "none": null, "list": [1, "a"]});
        let AttributeValue::M(map) = to_attribute(&value) else { panic!("an object is a map") };
        assert_eq!(map["n"], AttributeValue::N("1".into()));
        assert_eq!(map["big"], AttributeValue::N("1e+21".into()));
        assert_eq!(map["none"], AttributeValue::Null(true));
        assert_eq!(map["list"], AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::S("a".into())]));
        assert_eq!(to_json(&AttributeValue::M(map)), value);
        assert_eq!(to_attribute(&json!("text")), AttributeValue::S("text".into()));
    }

    #[test]
    fn every_metadata_form_is_read() {
        let read = |value: AttributeValue| metadata(&item(&[("metadata", value)]));
        assert_eq!(read(AttributeValue::S(r#"{"a":1}"#.into())), Some(json!({"a": 1})), "our earlier JSON text");
        assert_eq!(read(AttributeValue::S("[1]".into())), Some(json!([1])));
        assert_eq!(read(AttributeValue::S("42".into())), Some(json!("42")), "a string, not our earlier form");
        assert_eq!(read(AttributeValue::S("plain".into())), Some(json!("plain")));
        assert_eq!(read(AttributeValue::N("1.50".into())), Some(json!(1.5)));
        assert_eq!(read(AttributeValue::Ns(vec!["2".into(), "1".into()])), Some(json!([2, 1])));
        assert_eq!(read(AttributeValue::B(Blob::new(vec![1, 2]))), Some(json!({"type": "Buffer", "data": [1, 2]})));
        assert_eq!(metadata(&item(&[])), None);
    }

    #[test]
    fn totals_the_original_can_write() {
        let total_of = |value: AttributeValue| total(&item(&[("total", value)]));
        assert_eq!(total_of(AttributeValue::N("3".into())), Some(3));
        assert_eq!(total_of(AttributeValue::N("2.5".into())), Some(2));
        assert_eq!(total_of(AttributeValue::S("4".into())), Some(4));
        assert_eq!(total_of(AttributeValue::N("0".into())), None);
        assert_eq!(total_of(AttributeValue::Bool(true)), None);
        assert_eq!(total(&item(&[])), None);
        let parts = item(&[("parts", AttributeValue::Ns(vec!["1".into(), "3".into()]))]);
        assert_eq!(pending(&parts, Some(3)), (2, true));
        assert_eq!(pending(&parts, Some(2)), (2, false));
        assert_eq!(pending(&item(&[]), Some(1)), (0, false));
        assert_eq!(error(&item(&[("error", AttributeValue::N("42".into()))])).as_deref(), Some("42"));
    }
}
