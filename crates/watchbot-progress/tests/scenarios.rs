//! One scenario suite, written once and run against both stores: DynamoDB on moto and the embedded SQLite file.
//!
//! The many-processes case of the embedded store lives in the CLI tests (`tests/progress.rs`), which spawn the
//! built `watchbot-progress` binary.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::json;
use std::collections::HashSet;
use watchbot_progress::{AnyStore, Error, MAX_TOTAL, SetTotal, Store, status_json};

/// Creates a table shaped as the template's ProgressTable (hash key `id`, string) and returns its name.
async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    let table = watchbot_testing::unique_name("progress");
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    table
}

async fn dynamo_store() -> AnyStore {
    let config = watchbot_testing::moto().sdk_config().await;
    let table = create_table(&aws_sdk_dynamodb::Client::new(&config)).await;
    // Through the public address path, as the CLI opens it.
    watchbot_progress::open(&table, Some(&config)).await.expect("open dynamodb store")
}

async fn embedded_store(dir: &tempfile::TempDir) -> AnyStore {
    let path = dir.path().join("nested/progress.sqlite");
    watchbot_progress::open(path.to_str().unwrap(), None).await.expect("open embedded store")
}

fn job() -> String {
    watchbot_testing::unique_name("job")
}

fn report(state: Option<&watchbot_progress::JobState>) -> serde_json::Value {
    serde_json::to_value(status_json(state)).unwrap()
}

// ---- the suite ----

async fn unknown_jobs_are_errors<S: Store>(store: &S) {
    let job = job();
    assert_eq!(store.status(&job, None).await.unwrap(), None);
    assert_eq!(serde_json::to_value(status_json(None)).unwrap(), json!({"progress": 0}));
    assert!(matches!(store.complete_part(&job, 1).await, Err(Error::UnknownJob { .. })));
    assert!(matches!(store.fail_job(&job, "boom").await, Err(Error::UnknownJob { .. })));
    assert!(matches!(store.set_metadata(&job, &json!({})).await, Err(Error::UnknownJob { .. })));
    assert!(matches!(store.reduce_sent(&job).await, Err(Error::UnknownJob { .. })));
    // Nothing was created by the failed writes.
    assert_eq!(store.status(&job, None).await.unwrap(), None);
}

async fn totals_and_part_ranges<S: Store>(store: &S) {
    let job = job();
    assert!(matches!(store.set_total(&job, 0).await, Err(Error::Invalid(_))));
    // Over the limit: the same error on both stores, naming the value and the limit, and nothing created.
    match store.set_total(&job, MAX_TOTAL + 1).await {
        Err(Error::Invalid(text)) => assert!(text.contains("50001") && text.contains("50000"), "{text}"),
        other => panic!("expected an error over MAX_TOTAL, got {other:?}"),
    }
    assert!(matches!(store.set_total(&job, u64::MAX).await, Err(Error::Invalid(_))));
    assert_eq!(store.status(&job, None).await.unwrap(), None);
    // At the limit: fits (on moto, within DynamoDB's 400 KB item size, which it enforces).
    let big = format!("{job}-big");
    assert_eq!(store.set_total(&big, MAX_TOTAL).await.unwrap(), SetTotal::Created);
    assert_eq!(store.complete_part(&big, MAX_TOTAL).await.unwrap().remaining, MAX_TOTAL - 1);
    assert!(matches!(store.set_total("", 3).await, Err(Error::Invalid(_))));
    assert_eq!(store.set_total(&job, 3).await.unwrap(), SetTotal::Created);
    assert_eq!(store.set_total(&job, 3).await.unwrap(), SetTotal::AlreadySet);
    match store.set_total(&job, 4).await {
        Err(Error::TotalMismatch { existing: 3, requested: 4, .. }) => {}
        other => panic!("expected a total mismatch, got {other:?}"),
    }
    assert!(matches!(store.complete_part(&job, 0).await, Err(Error::Invalid(_))));
    assert!(matches!(store.complete_part(&job, 4).await, Err(Error::PartOutOfRange { part: 4, total: 3, .. })));
    assert!(matches!(store.status(&job, Some(4)).await, Err(Error::PartOutOfRange { .. })));
    // The rejected calls changed nothing.
    assert_eq!(store.status(&job, None).await.unwrap().unwrap().remaining, 3);
}

async fn progress_steps_and_replays<S: Store>(store: &S) {
    let job = job();
    store.set_total(&job, 3).await.unwrap();
    let status = |part| store.status(&job, part);
    assert_eq!(report(status(Some(2)).await.unwrap().as_ref()), json!({"progress": 0, "partComplete": false}));

    let first = store.complete_part(&job, 2).await.unwrap();
    assert!(!first.all_done && !first.finished_job && !first.replay && first.remaining == 2, "{first:?}");
    assert_eq!(report(status(Some(2)).await.unwrap().as_ref()), json!({"progress": 0.33, "partComplete": true}));

    let replay = store.complete_part(&job, 2).await.unwrap();
    assert!(replay.replay && !replay.all_done && !replay.finished_job && replay.remaining == 2, "{replay:?}");

    store.complete_part(&job, 3).await.unwrap();
    assert_eq!(report(status(None).await.unwrap().as_ref()), json!({"progress": 0.66}));
    let last = store.complete_part(&job, 1).await.unwrap();
    assert!(last.all_done && last.finished_job && !last.replay && last.remaining == 0, "{last:?}");
    assert_eq!(
        serde_json::to_string(&status_json(status(Some(1)).await.unwrap().as_ref())).unwrap(),
        r#"{"progress":1,"partComplete":true}"#
    );

    // After the job is done: replays say done but never "finished"; set-total with the same total does not reset.
    for part in 1..=3 {
        let again = store.complete_part(&job, part).await.unwrap();
        assert!(again.all_done && !again.finished_job && again.replay, "{again:?}");
    }
    assert_eq!(store.set_total(&job, 3).await.unwrap(), SetTotal::AlreadySet);
    assert!(store.status(&job, None).await.unwrap().unwrap().is_complete());
}

/// How strictly a backend answers concurrent completions.
#[derive(Clone, Copy, PartialEq)]
enum Answers {
    /// Updates of one item are applied and answered one at a time, as DynamoDB and the embedded store do: exactly
    /// one call finishes the job, and each call sees its own `remaining`.
    Serialised,
    /// moto: its UpdateItem takes no lock, and builds UPDATED_NEW from the live item after the update, so under
    /// concurrency a call may see a later call's removal too (two calls can both see the empty set), and two calls
    /// racing to drop the emptied attribute can make one fail with a 500 whose SDK retry then answers "replay".
    /// Only what survives that race is asserted here; the exactly-once mapping of DynamoDB's answers is covered by
    /// `dynamodb_answers_map_to_exactly_one_finisher` on aws-smithy-mocks, which answers one call at a time.
    Racy,
}

async fn concurrent_completions_finish_once<S: Store + Clone + 'static>(store: &S, total: u64, answers: Answers) {
    let job = job();
    store.set_total(&job, total).await.unwrap();
    let run_all = |store: S, job: String| async move {
        let tasks: Vec<_> = (1..=total)
            .map(|part| {
                let (store, job) = (store.clone(), job.clone());
                tokio::spawn(async move { store.complete_part(&job, part).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().expect("complete-part"));
        }
        results
    };
    let results = run_all(store.clone(), job.clone()).await;
    let finished = results.iter().filter(|r| r.finished_job).count();
    match answers {
        Answers::Serialised => {
            assert_eq!(finished, 1, "exactly one call finishes the job");
            assert!(results.iter().all(|r| !r.replay));
            // The remaining counts seen are all distinct: every call saw its own step.
            let remaining: HashSet<u64> = results.iter().map(|r| r.remaining).collect();
            assert_eq!(remaining.len() as u64, total, "each completion removed exactly one part");
        }
        Answers::Racy => assert!(finished >= 1, "at least the call that emptied the set finishes the job"),
    }
    let state = store.status(&job, None).await.unwrap().unwrap();
    assert!(state.is_complete() && state.total == total, "every part is done: {state:?}");

    // Every part replayed at once: all answer done, none claims to have finished (a replay changes nothing, so
    // this holds on moto too).
    let replays = run_all(store.clone(), job.clone()).await;
    assert!(replays.iter().all(|r| r.all_done && r.replay && !r.finished_job), "{replays:?}");
}

async fn failure_metadata_and_reduce<S: Store>(store: &S) {
    let job = job();
    store.set_total(&job, 2).await.unwrap();
    // Keys that are DynamoDB reserved words, nesting, unicode: stored and returned as given.
    let metadata = json!({"total": 7, "parts": [1, 2], "name": "r\u{e9}sum\u{e9}", "nested": {"size": null}});
    store.set_metadata(&job, &metadata).await.unwrap();
    store.fail_job(&job, "disk full on part 2").await.unwrap();
    assert!(store.reduce_sent(&job).await.unwrap(), "the first reduce-sent records it");
    assert!(!store.reduce_sent(&job).await.unwrap(), "a second reduce-sent says it was already sent");
    let state = store.status(&job, None).await.unwrap().unwrap();
    assert_eq!(
        report(Some(&state)),
        json!({"progress": 0, "failed": "disk full on part 2", "metadata": metadata, "reduceSent": true})
    );
    // Metadata is replaced, not merged.
    store.set_metadata(&job, &json!(["list"])).await.unwrap();
    assert_eq!(store.status(&job, None).await.unwrap().unwrap().metadata, Some(json!(["list"])));
}

async fn suite<S: Store + Clone + 'static>(store: S, concurrent: u64, answers: Answers) {
    unknown_jobs_are_errors(&store).await;
    totals_and_part_ranges(&store).await;
    progress_steps_and_replays(&store).await;
    failure_metadata_and_reduce(&store).await;
    concurrent_completions_finish_once(&store, concurrent, answers).await;
}

// ---- the two stores ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_on_moto() {
    suite(dynamo_store().await, 200, Answers::Racy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    suite(embedded_store(&dir).await, 200, Answers::Serialised).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_with_several_connections_to_one_file() {
    // Several stores on one file behave as several processes do (each its own connection and SQLite locks).
    let dir = tempfile::tempdir().unwrap();
    let stores = [embedded_store(&dir).await, embedded_store(&dir).await, embedded_store(&dir).await];
    let job = job();
    stores[0].set_total(&job, 90).await.unwrap();
    let tasks: Vec<_> = (1..=90u64)
        .map(|part| {
            let (store, job) = (stores[(part % 3) as usize].clone(), job.clone());
            tokio::spawn(async move { store.complete_part(&job, part).await.unwrap() })
        })
        .collect();
    let mut finished = 0;
    for task in tasks {
        finished += usize::from(task.await.unwrap().finished_job);
    }
    assert_eq!(finished, 1);
    assert!(stores[2].status(&job, None).await.unwrap().unwrap().is_complete());
}

#[tokio::test]
async fn moto_rejects_reserved_words_unescaped() {
    // Proves the emulator enforces DynamoDB's reserved words, so the suite above passing means our expressions
    // escape them.
    let config = watchbot_testing::moto().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = create_table(&client).await;
    let result = client
        .update_item()
        .table_name(&table)
        .key("id", AttributeValue::S("j".into()))
        .update_expression("SET total = :t")
        .expression_attribute_values(":t", AttributeValue::N("1".into()))
        .send()
        .await;
    let error = result.expect_err("moto must reject an unescaped reserved word");
    let text = format!("{:?}", error);
    assert!(text.contains("reserved keyword"), "{text}");
}

#[tokio::test]
async fn the_dynamodb_item_has_the_documented_shape() {
    let config = watchbot_testing::moto().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = create_table(&client).await;
    let arn = format!("arn:aws:dynamodb:{}:{}:table/{table}", watchbot_testing::REGION, watchbot_testing::ACCOUNT_ID);
    let store = watchbot_progress::open(&arn, Some(&config)).await.unwrap();
    let job = job();
    store.set_total(&job, 2).await.unwrap();
    store.complete_part(&job, 1).await.unwrap();
    let item = client
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S(job.clone()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["total"], AttributeValue::N("2".into()));
    assert_eq!(item["parts"], AttributeValue::Ns(vec!["2".into()]));
    store.complete_part(&job, 2).await.unwrap();
    let item =
        client.get_item().table_name(&table).key("id", AttributeValue::S(job)).send().await.unwrap().item.unwrap();
    assert!(!item.contains_key("parts"), "an empty set is removed: {item:?}");
}
