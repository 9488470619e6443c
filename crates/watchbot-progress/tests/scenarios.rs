//! One scenario suite, written once and run against both stores (DynamoDB on moto and the embedded SQLite file) in
//! both layouts (counter and set), plus jobs of one layout continued by a store of the other.
//!
//! moto applies neither UpdateItem nor TransactWriteItems atomically (no lock; a cancelled transaction restores a
//! copy of the whole table taken when it began, undoing writes that raced with it), so its runs go through
//! [`OneAtATime`]: the 200 completions are concurrent callers, answered one request-sequence at a time, as DynamoDB
//! serializes writes of one item. The exactly-once mapping of DynamoDB's answers under real concurrency is proved on
//! aws-smithy-mocks (`dynamo_mocks.rs`); the embedded store runs truly concurrent here. The many-processes case of
//! the embedded store lives in the CLI tests (`tests/progress.rs`), which spawn the built `watchbot-progress`.

mod original;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use watchbot_progress::{AnyStore, Completion, Error, JobState, Layout, MAX_TEXT, SetTotal, Store, status_json};

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

/// A fresh table on moto, opened through the public address path as the CLI opens it.
async fn dynamo_store() -> AnyStore {
    let config = watchbot_testing::moto().sdk_config().await;
    let table = create_table(&aws_sdk_dynamodb::Client::new(&config)).await;
    watchbot_progress::open(&table, Some(&config)).await.expect("open dynamodb store")
}

async fn embedded_store(dir: &tempfile::TempDir) -> AnyStore {
    let path = dir.path().join("nested/progress.sqlite");
    watchbot_progress::open(path.to_str().unwrap(), None).await.expect("open embedded store")
}

/// A store whose calls run one at a time (see the module's documentation: moto's writes are not atomic).
#[derive(Clone)]
struct OneAtATime(AnyStore, Arc<tokio::sync::Mutex<()>>);

impl OneAtATime {
    fn new(store: AnyStore) -> OneAtATime {
        OneAtATime(store, Arc::default())
    }
}

impl Store for OneAtATime {
    async fn set_total(&self, job: &str, total: u64) -> Result<SetTotal, Error> {
        let _turn = self.1.lock().await;
        self.0.set_total(job, total).await
    }
    async fn complete_part(&self, job: &str, part: u64) -> Result<Completion, Error> {
        let _turn = self.1.lock().await;
        self.0.complete_part(job, part).await
    }
    async fn status(&self, job: &str, part: Option<u64>) -> Result<Option<JobState>, Error> {
        let _turn = self.1.lock().await;
        self.0.status(job, part).await
    }
    async fn fail_job(&self, job: &str, reason: &str) -> Result<(), Error> {
        let _turn = self.1.lock().await;
        self.0.fail_job(job, reason).await
    }
    async fn set_metadata(&self, job: &str, metadata: &Value) -> Result<(), Error> {
        let _turn = self.1.lock().await;
        self.0.set_metadata(job, metadata).await
    }
    async fn reduce_sent(&self, job: &str) -> Result<bool, Error> {
        let _turn = self.1.lock().await;
        self.0.reduce_sent(job).await
    }
    async fn list_jobs(&self, limit: usize) -> Result<watchbot_progress::JobList, Error> {
        let _turn = self.1.lock().await;
        self.0.list_jobs(limit).await
    }
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
    // The separator of part records' keys is no part of a job id.
    assert!(matches!(store.set_total("a\u{1f}1", 1).await, Err(Error::Invalid(_))));
    // Nothing was created by the failed writes.
    assert_eq!(store.status(&job, None).await.unwrap(), None);
}

async fn totals_and_part_ranges<S: Store>(store: &S, layout: Layout) {
    let job = job();
    assert!(matches!(store.set_total(&job, 0).await, Err(Error::Invalid(_))));
    // Over the layout's limit: the same error on both stores, naming the value and the limit, and nothing created.
    let max = layout.max_total();
    match store.set_total(&job, max + 1).await {
        Err(Error::Invalid(text)) => {
            assert!(text.contains(&(max + 1).to_string()) && text.contains(&format!("limit of {max} ")), "{text}")
        }
        other => panic!("expected an error over {max}, got {other:?}"),
    }
    assert!(matches!(store.set_total(&job, u64::MAX).await, Err(Error::Invalid(_))));
    assert_eq!(store.status(&job, None).await.unwrap(), None);
    // At the limit: fits (on moto, within DynamoDB's 400 KB item size, which it enforces); a billion parts in the
    // counter layout cost what three do.
    let big = format!("{job}-big");
    assert_eq!(store.set_total(&big, max).await.unwrap(), SetTotal::Created);
    assert_eq!(store.complete_part(&big, max).await.unwrap().remaining, max - 1);
    assert_eq!(store.status(&big, Some(max)).await.unwrap().unwrap().part_complete, Some(true));
    assert_eq!(store.status(&big, Some(1)).await.unwrap().unwrap().part_complete, Some(false));
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

async fn concurrent_completions_finish_once<S: Store + Clone + 'static>(store: &S, total: u64) {
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
    assert_eq!(finished, 1, "exactly one call finishes the job");
    assert!(results.iter().all(|r| !r.replay));
    // The remaining counts seen are all distinct: every call saw its own step.
    let remaining: HashSet<u64> = results.iter().map(|r| r.remaining).collect();
    assert_eq!(remaining.len() as u64, total, "each completion removed exactly one part");
    let state = store.status(&job, None).await.unwrap().unwrap();
    assert!(state.is_complete() && state.total == total, "every part is done: {state:?}");

    // Every part replayed at once: all answer done, none claims to have finished.
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
    // Texts over the limit both stores share are refused before any request, and change nothing.
    let long = "x".repeat(MAX_TEXT + 1);
    assert!(matches!(store.fail_job(&job, &long).await, Err(Error::Invalid(text)) if text.contains("the reason")));
    assert!(
        matches!(store.set_metadata(&job, &json!(long)).await, Err(Error::Invalid(text)) if text.contains("metadata"))
    );
    store.set_metadata(&job, &json!("x".repeat(MAX_TEXT - 2))).await.expect("metadata at the limit fits");
    // What DynamoDB refuses (a number out of its range, nesting over 32 levels) is refused by both stores alike.
    let too_deep = (0..32).fold(json!(1), |inner, _| json!([inner]));
    for bad in [json!({"n": 1e300}), json!([1e-200]), too_deep] {
        assert!(matches!(store.set_metadata(&job, &bad).await, Err(Error::Invalid(t)) if t.contains("metadata")));
    }
    let deepest = (0..31).fold(json!(-1.5e125), |inner, _| json!([inner]));
    store.set_metadata(&job, &deepest).await.expect("31 levels below the attribute and a number in range fit");
    assert_eq!(store.status(&job, None).await.unwrap().unwrap().failed.as_deref(), Some("disk full on part 2"));
}

/// Jobs created by a store of one layout are continued in their own by a store of the other, and both answer the
/// same status: the migration case, where workers of both kinds share a table.
async fn jobs_continue_in_their_layout<S: Store>(set: &S, counter: &S) {
    for (creator, other) in [(set, counter), (counter, set)] {
        let job = job();
        creator.set_total(&job, 3).await.unwrap();
        assert_eq!(other.set_total(&job, 3).await.unwrap(), SetTotal::AlreadySet);
        assert!(matches!(other.set_total(&job, 4).await, Err(Error::TotalMismatch { existing: 3, .. })));
        let first = other.complete_part(&job, 2).await.unwrap();
        assert!(!first.finished_job && !first.replay && first.remaining == 2, "{first:?}");
        assert!(creator.complete_part(&job, 2).await.unwrap().replay);
        assert!(matches!(other.complete_part(&job, 4).await, Err(Error::PartOutOfRange { .. })));
        assert_eq!(creator.status(&job, Some(2)).await.unwrap(), other.status(&job, Some(2)).await.unwrap());
        assert_eq!(
            report(other.status(&job, Some(1)).await.unwrap().as_ref()),
            json!({"progress": 0.33, "partComplete": false})
        );
        creator.complete_part(&job, 1).await.unwrap();
        let last = other.complete_part(&job, 3).await.unwrap();
        assert!(last.finished_job && last.all_done && last.remaining == 0, "{last:?}");
        let again = creator.complete_part(&job, 3).await.unwrap();
        assert!(again.replay && again.all_done && !again.finished_job, "{again:?}");
        other.fail_job(&job, "late").await.unwrap();
        assert!(creator.reduce_sent(&job).await.unwrap());
        let state = creator.status(&job, Some(3)).await.unwrap();
        assert_eq!(state, other.status(&job, Some(3)).await.unwrap());
        assert_eq!(
            report(state.as_ref()),
            json!({"progress": 1, "failed": "late", "partComplete": true, "reduceSent": true})
        );
    }
}

async fn jobs_are_listed_without_their_part_records<S: Store>(store: &S) {
    let (a, b) = (job(), job());
    store.set_total(&a, 3).await.unwrap();
    store.set_total(&b, 2).await.unwrap();
    store.complete_part(&a, 2).await.unwrap();
    store.complete_part(&b, 1).await.unwrap();
    store.complete_part(&b, 2).await.unwrap();
    let list = store.list_jobs(10_000).await.unwrap();
    assert!(!list.more, "every job of a small table is listed");
    let find = |id: &str| list.jobs.iter().find(|(job, _)| job == id).map(|(_, state)| (state.total, state.remaining));
    assert_eq!(find(&a), Some((3, 2)));
    assert_eq!(find(&b), Some((2, 0)));
    assert!(list.jobs.iter().all(|(id, _)| !id.contains('\u{1f}')), "no part record is a job");
    let one = store.list_jobs(1).await.unwrap();
    assert_eq!((one.jobs.len(), one.more), (1, true));
}

async fn suite<S: Store + Clone + 'static>(store: S, layout: Layout) {
    jobs_are_listed_without_their_part_records(&store).await;
    unknown_jobs_are_errors(&store).await;
    totals_and_part_ranges(&store, layout).await;
    progress_steps_and_replays(&store).await;
    failure_metadata_and_reduce(&store).await;
    concurrent_completions_finish_once(&store, 200).await;
}

// ---- the two stores, in both layouts ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_on_moto_counter_layout() {
    let store = dynamo_store().await;
    assert_eq!(store.layout(), Layout::Counter, "the default layout");
    suite(OneAtATime::new(store), Layout::Counter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_on_moto_set_layout() {
    suite(OneAtATime::new(dynamo_store().await.with_layout(Layout::Set)), Layout::Set).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_sqlite_store_counter_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(&dir).await;
    assert_eq!(store.layout(), Layout::Counter, "the default layout");
    suite(store, Layout::Counter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_sqlite_store_set_layout() {
    let dir = tempfile::tempdir().unwrap();
    suite(embedded_store(&dir).await.with_layout(Layout::Set), Layout::Set).await;
}

#[tokio::test]
async fn dynamodb_jobs_continue_in_their_layout() {
    let store = dynamo_store().await;
    jobs_continue_in_their_layout(&store.clone().with_layout(Layout::Set), &store).await;
}

#[tokio::test]
async fn embedded_jobs_continue_in_their_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(&dir).await;
    jobs_continue_in_their_layout(&store.clone().with_layout(Layout::Set), &store).await;
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
async fn the_dynamodb_items_have_the_documented_shapes() {
    let config = watchbot_testing::moto().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = create_table(&client).await;
    let arn = format!("arn:aws:dynamodb:{}:{}:table/{table}", watchbot_testing::REGION, watchbot_testing::ACCOUNT_ID);
    let store = watchbot_progress::open(&arn, Some(&config)).await.unwrap();
    let get = |id: String| {
        let request = client.get_item().table_name(&table).key("id", AttributeValue::S(id)).consistent_read(true);
        async move { request.send().await.unwrap().item }
    };

    // The original's: every pending part in one number set, removed with the last part.
    let set = store.clone().with_layout(Layout::Set);
    let set_job = job();
    set.set_total(&set_job, 2).await.unwrap();
    set.complete_part(&set_job, 1).await.unwrap();
    let item = get(set_job.clone()).await.unwrap();
    assert_eq!(item["total"], AttributeValue::N("2".into()));
    assert_eq!(item["parts"], AttributeValue::Ns(vec!["2".into()]));
    assert!(!item.contains_key("remaining"));
    set.complete_part(&set_job, 2).await.unwrap();
    assert!(!get(set_job).await.unwrap().contains_key("parts"), "an empty set is removed");

    // The counter layout: a counter, and one item per completed part keyed `<job>\u{1f}<part>`.
    let job = job();
    store.set_total(&job, 2).await.unwrap();
    store.complete_part(&job, 1).await.unwrap();
    let item = get(job.clone()).await.unwrap();
    assert_eq!(item["total"], AttributeValue::N("2".into()));
    assert_eq!(item["remaining"], AttributeValue::N("1".into()));
    assert!(!item.contains_key("parts"));
    let part = get(format!("{job}\u{1f}1")).await.expect("the part's item");
    assert_eq!(part, std::collections::HashMap::from([("id".to_owned(), AttributeValue::S(format!("{job}\u{1f}1")))]));
    assert_eq!(get(format!("{job}\u{1f}2")).await, None);
    store.complete_part(&job, 2).await.unwrap();
    assert_eq!(get(job).await.unwrap()["remaining"], AttributeValue::N("0".into()));
}
