//! A table shared with the original JavaScript `watchbot-progress` (v1.1.8, `lib/progress.js`): items put raw, in
//! exactly the shapes the original writes through the DynamoDB document client (its set-total's `parts` number
//! set, the attribute DynamoDB drops with the last part, a map `M` of metadata with lists, nulls, sets and binary,
//! an item holding only what its fail-job, set-metadata or reduce-sent wrote to a job without a total, a `--total
//! 2.5`), then read and continued by our store.
//!
//! [`items`] lists what the original's `status` prints for each item, without and with `-p 1`: those texts were
//! produced by running its `lib/progress.js` on node 20 against these items on moto (through aws-sdk v2's document
//! client conversion: numbers through `Number()`, sets as their values, buffers as `{"type":"Buffer",...}`), and
//! our `status` prints the same bytes, except where [`ours`] says otherwise: items only the original can write, and
//! the documented differences (README, "Sharing a table with the original's workers").

use super::{create_table, job};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use watchbot_progress::{AnyStore, Error, Layout, Store, status_json};

/// An attribute from DynamoDB's JSON form (`{"N": "1"}`, `{"M": {...}}`), as the original's requests carry it.
fn attribute(json: &Value) -> AttributeValue {
    let (kind, value) = json.as_object().and_then(|o| o.iter().next()).expect("one type key");
    let strings = || value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    match kind.as_str() {
        "S" => AttributeValue::S(value.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(value.as_str().unwrap().to_owned()),
        "BOOL" => AttributeValue::Bool(value.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings()),
        "NS" => AttributeValue::Ns(strings()),
        "B" => AttributeValue::B(Blob::new(
            value.as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect::<Vec<u8>>(),
        )),
        "L" => AttributeValue::L(value.as_array().unwrap().iter().map(attribute).collect()),
        "M" => AttributeValue::M(value.as_object().unwrap().iter().map(|(k, v)| (k.clone(), attribute(v))).collect()),
        other => panic!("unknown attribute type {other}"),
    }
}

/// Each item (without its `id`) and what the original's `status` prints for it, without and with `-p 1`.
fn items() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        // set-total 3.
        (
            "fresh",
            json!({"total": {"N": "3"}, "parts": {"NS": ["1", "2", "3"]}}),
            r#"{"progress":0}"#,
            r#"{"progress":0,"partComplete":false}"#,
        ),
        // Parts 1 and 2 complete; fail-job, set-metadata (nested, numbers JavaScript rewrites), reduce-sent.
        (
            "everything",
            json!({
                "total": {"N": "3"},
                "parts": {"NS": ["3"]},
                "error": {"S": "tile 7 is \"corrupt\"\n"},
                "metadata": {"M": {
                    "a": {"N": "1"},
                    "b": {"L": [{"S": "x"}, {"N": "1.50"}, {"BOOL": true}, {"NULL": true}, {"N": "-0.000001"}]},
                    "c": {"M": {"10": {"N": "1e21"}, "9": {"S": "é\u{1}"}, "x": {"M": {}}}},
                    "d": {"N": "12345678901234567890"}
                }},
                "reduceSent": {"BOOL": true}
            }),
            r#"{"progress":0.66,"failed":"tile 7 is \"corrupt\"\n","metadata":{"a":1,"b":["x",1.5,true,null,-0.000001],"c":{"9":"é\u0001","10":1e+21,"x":{}},"d":12345678901234567000},"reduceSent":true}"#,
            r#"{"progress":0.66,"failed":"tile 7 is \"corrupt\"\n","metadata":{"a":1,"b":["x",1.5,true,null,-0.000001],"c":{"9":"é\u0001","10":1e+21,"x":{}},"d":12345678901234567000},"partComplete":true,"reduceSent":true}"#,
        ),
        // Every part complete: DynamoDB removed the emptied set.
        ("complete", json!({"total": {"N": "2"}}), r#"{"progress":1}"#, r#"{"progress":1,"partComplete":true}"#),
        // Metadata that is a string, sets and a buffer (from the original's library).
        (
            "string metadata",
            json!({"total": {"N": "4"}, "parts": {"NS": ["2", "3", "4"]}, "metadata": {"S": "plain text"}}),
            r#"{"progress":0.25,"metadata":"plain text"}"#,
            r#"{"progress":0.25,"metadata":"plain text","partComplete":true}"#,
        ),
        (
            "sets and binary",
            json!({"total": {"N": "1"}, "parts": {"NS": ["1"]}, "metadata": {"M": {
                "b": {"B": [1, 2, 255]}, "ns": {"NS": ["1", "2.5"]}, "ss": {"SS": ["a", "b"]}
            }}}),
            r#"{"progress":0,"metadata":{"b":{"type":"Buffer","data":[1,2,255]},"ns":[1,2.5],"ss":["a","b"]}}"#,
            r#"{"progress":0,"metadata":{"b":{"type":"Buffer","data":[1,2,255]},"ns":[1,2.5],"ss":["a","b"]},"partComplete":false}"#,
        ),
        // Values JavaScript finds false are not printed.
        (
            "falsy",
            json!({"total": {"N": "1"}, "parts": {"NS": ["1"]}, "metadata": {"N": "0"}, "error": {"S": ""}}),
            r#"{"progress":0}"#,
            r#"{"progress":0,"partComplete":false}"#,
        ),
        (
            "falsy null",
            json!({"total": {"N": "1"}, "metadata": {"NULL": true}}),
            r#"{"progress":1}"#,
            r#"{"progress":1,"partComplete":true}"#,
        ),
        // A total from the original's library as a string.
        (
            "string total",
            json!({"total": {"S": "2"}, "parts": {"NS": ["2"]}}),
            r#"{"progress":0.5}"#,
            r#"{"progress":0.5,"partComplete":true}"#,
        ),
        // Written by the original to a job that has no total (its fail-job, set-metadata, reduce-sent, complete-part
        // create the item).
        ("only id", json!({}), r#"{"progress":null}"#, r#"{"progress":null,"partComplete":true}"#),
        ("failed before set-total", json!({"error": {"S": "boom"}}), r#"{"progress":null,"failed":"boom"}"#, ""),
        (
            "metadata before set-total",
            json!({"metadata": {"M": {"k": {"S": "v"}}}}),
            r#"{"progress":null,"metadata":{"k":"v"}}"#,
            "",
        ),
        (
            "reduce before set-total",
            json!({"reduceSent": {"BOOL": true}}),
            r#"{"progress":null,"reduceSent":true}"#,
            "",
        ),
        // `--total 2.5` (parts 1 and 2).
        (
            "fractional total",
            json!({"total": {"N": "2.5"}, "parts": {"NS": ["1", "2"]}}),
            r#"{"progress":0.2}"#,
            r#"{"progress":0.2,"partComplete":false}"#,
        ),
        // The original's float arithmetic: (50 - 21) / 50 * 100 is 57.99999999999999, floored to 57.
        (
            "29 of 50",
            json!({"total": {"N": "50"}, "parts": {"NS": (30..=50).map(|p| p.to_string()).collect::<Vec<_>>()}}),
            r#"{"progress":0.57}"#,
            r#"{"progress":0.57,"partComplete":true}"#,
        ),
        // Our earlier versions' metadata: JSON text in a string.
        (
            "our earlier metadata",
            json!({"total": {"N": "1"}, "parts": {"NS": ["1"]}, "metadata": {"S": "{\"a\":[1,2]}"}}),
            r#"{"progress":0,"metadata":"{\"a\":[1,2]}"}"#,
            r#"{"progress":0,"metadata":"{\"a\":[1,2]}","partComplete":false}"#,
        ),
    ]
}

/// Where we print something else, and why (README, "Sharing a table with the original").
fn ours(name: &str, with_part: bool) -> Option<&'static str> {
    Some(match (name, with_part) {
        // No part is complete before the job has a total.
        ("only id", true) => r#"{"progress":null,"partComplete":false}"#,
        // Exact: 29 of 50 parts are 0.58.
        ("29 of 50", false) => r#"{"progress":0.58}"#,
        ("29 of 50", true) => r#"{"progress":0.58,"partComplete":true}"#,
        // The total's whole parts: 0 of 2 done.
        ("fractional total", false) => r#"{"progress":0}"#,
        ("fractional total", true) => r#"{"progress":0,"partComplete":false}"#,
        // Read as the JSON it holds.
        ("our earlier metadata", false) => r#"{"progress":0,"metadata":{"a":[1,2]}}"#,
        ("our earlier metadata", true) => r#"{"progress":0,"metadata":{"a":[1,2]},"partComplete":false}"#,
        _ => return None,
    })
}

async fn put(client: &aws_sdk_dynamodb::Client, table: &str, id: &str, item: &Value) {
    let mut attributes: HashMap<String, AttributeValue> =
        item.as_object().unwrap().iter().map(|(k, v)| (k.clone(), attribute(v))).collect();
    attributes.insert("id".into(), AttributeValue::S(id.into()));
    client.put_item().table_name(table).set_item(Some(attributes)).send().await.expect("put the original's item");
}

async fn store_and_table() -> (AnyStore, aws_sdk_dynamodb::Client, String) {
    let config = watchbot_testing::moto().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = create_table(&client).await;
    (watchbot_progress::open(&table, Some(&config)).await.unwrap(), client, table)
}

#[tokio::test]
async fn status_prints_what_the_original_prints_for_its_items() {
    let (store, client, table) = store_and_table().await;
    for (name, item, original, original_with_part) in items() {
        let id = job();
        put(&client, &table, &id, &item).await;
        let plain = status_json(store.status(&id, None).await.unwrap().as_ref()).to_string();
        assert_eq!(plain, ours(name, false).unwrap_or(original), "{name}: {item}");
        if !original_with_part.is_empty() {
            let with_part = status_json(store.status(&id, Some(1)).await.unwrap().as_ref()).to_string();
            assert_eq!(with_part, ours(name, true).unwrap_or(original_with_part), "{name} -p 1: {item}");
        }
    }
}

/// No item the original can write makes one of our commands fail other than as documented for any job: an unknown
/// job (no total), a part out of range, another total.
#[tokio::test]
async fn every_command_works_on_every_item_the_original_writes() {
    let (store, client, table) = store_and_table().await;
    for layout in [Layout::Counter, Layout::Set] {
        let store = store.clone().with_layout(layout);
        for (name, item, _, _) in items() {
            let fresh = || async {
                let id = job();
                put(&client, &table, &id, &item).await;
                id
            };
            let acceptable = |result: Result<(), Error>, what: &str| match result {
                Ok(()) | Err(Error::UnknownJob { .. } | Error::PartOutOfRange { .. } | Error::TotalMismatch { .. }) => {
                }
                Err(other) => panic!("{name} ({layout}): {what} failed: {other:?} on {item}"),
            };
            let id = fresh().await;
            acceptable(store.complete_part(&id, 1).await.map(drop), "complete-part 1");
            acceptable(store.complete_part(&id, 3).await.map(drop), "complete-part 3");
            acceptable(store.status(&id, Some(3)).await.map(drop), "status -p 3");
            let id = fresh().await;
            acceptable(store.set_total(&id, 3).await.map(drop), "set-total");
            acceptable(store.status(&id, None).await.map(drop), "status after set-total");
            let id = fresh().await;
            acceptable(store.fail_job(&id, "late").await, "fail-job");
            acceptable(store.set_metadata(&id, &json!({"k": 1})).await, "set-metadata");
            acceptable(store.reduce_sent(&id).await.map(drop), "reduce-sent");
            let state = store.status(&id, None).await.unwrap().expect("the item exists");
            assert_eq!((state.failed.as_deref(), state.metadata), (Some("late"), Some(json!({"k": 1}))), "{name}");
        }
    }
}

#[tokio::test]
async fn a_job_the_original_began_is_continued_and_one_the_original_touched_first_gets_its_total() {
    let (store, client, table) = store_and_table().await;
    // The original's set-total 3 and its complete-part 1: ours completes the rest and finishes it once.
    let id = job();
    put(&client, &table, &id, &json!({"total": {"N": "3"}, "parts": {"NS": ["2", "3"]}})).await;
    assert!(store.complete_part(&id, 1).await.unwrap().replay, "part 1 was done by the original");
    assert!(!store.complete_part(&id, 2).await.unwrap().finished_job);
    let last = store.complete_part(&id, 3).await.unwrap();
    assert!(last.finished_job && last.all_done, "{last:?}");
    // The original's set-metadata before any set-total: ours adds the total (the default, counter layout) and
    // keeps the metadata, as the original's set-total would.
    let id = job();
    put(&client, &table, &id, &json!({"metadata": {"M": {"k": {"S": "v"}}}})).await;
    assert_eq!(store.set_total(&id, 2).await.unwrap(), watchbot_progress::SetTotal::Created);
    assert_eq!(store.set_total(&id, 2).await.unwrap(), watchbot_progress::SetTotal::AlreadySet);
    store.complete_part(&id, 2).await.unwrap();
    let status = status_json(store.status(&id, Some(2)).await.unwrap().as_ref()).to_string();
    assert_eq!(status, r#"{"progress":0.5,"metadata":{"k":"v"},"partComplete":true}"#);
}

#[tokio::test]
async fn metadata_is_written_as_the_original_writes_it() {
    let (store, client, table) = store_and_table().await;
    let id = job();
    store.clone().with_layout(Layout::Set).set_total(&id, 2).await.unwrap();
    let metadata = json!({"name": "x", "n": 7, "f": 0.25, "list": [true, null, "s"], "nested": {"deep": {}}});
    store.set_metadata(&id, &metadata).await.unwrap();
    let item = client.get_item().table_name(&table).key("id", AttributeValue::S(id.clone())).send().await.unwrap();
    let stored = item.item.unwrap().remove("metadata").unwrap();
    let expected = attribute(&json!({"M": {
        "name": {"S": "x"}, "n": {"N": "7"}, "f": {"N": "0.25"},
        "list": {"L": [{"BOOL": true}, {"NULL": true}, {"S": "s"}]}, "nested": {"M": {"deep": {"M": {}}}}
    }}));
    assert_eq!(stored, expected);
    assert_eq!(store.status(&id, None).await.unwrap().unwrap().metadata, Some(metadata));
}
