//! The DynamoDB store's reading of DynamoDB's answers, on aws-smithy-mocks: what moto cannot show reliably.
//!
//! moto's UpdateItem takes no lock and builds UPDATED_NEW from the live item, so under concurrency it may tell two
//! calls that the set is empty (see `scenarios.rs`). DynamoDB applies and answers updates of one item one at a
//! time; the mock here does the same (every answer is computed under one mutex), so 200 concurrent complete-part
//! calls must yield exactly one "finished the job", each call its own `remaining`, and replays that change nothing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use watchbot_progress::{DynamoStore, Error, Store};

/// One job's item as DynamoDB holds it: its total and the parts not yet complete.
#[derive(Debug)]
struct Job {
    total: u64,
    parts: BTreeSet<u64>,
}

type Table = Arc<Mutex<HashMap<String, Job>>>;

fn item(id: &str, job: &Job) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), AttributeValue::S(id.to_owned())),
        ("total".to_owned(), AttributeValue::N(job.total.to_string())),
    ]);
    // DynamoDB has no empty sets: the attribute disappears with the last part.
    if !job.parts.is_empty() {
        item.insert("parts".to_owned(), AttributeValue::Ns(job.parts.iter().map(u64::to_string).collect()));
    }
    item
}

fn key(input_key: Option<&HashMap<String, AttributeValue>>) -> String {
    match input_key.and_then(|k| k.get("id")) {
        Some(AttributeValue::S(id)) => id.clone(),
        other => panic!("the key is `id` (S), got {other:?}"),
    }
}

/// A store over a mocked table that answers complete-part (UpdateItem `DELETE #parts :part`) and GetItem the way
/// DynamoDB does, one request at a time.
fn store(table: &Table) -> (DynamoStore, Rule) {
    let updates = table.clone();
    let update = mock!(Client::update_item).then_compute_response(move |input| {
        assert_eq!(input.update_expression(), Some("DELETE #parts :part"));
        assert_eq!(input.return_values(), Some(&ReturnValue::UpdatedNew));
        assert_eq!(
            input.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
        let part: u64 = match input.expression_attribute_values().and_then(|v| v.get(":n")) {
            Some(AttributeValue::N(n)) => n.parse().unwrap(),
            other => panic!(":n is the part number, got {other:?}"),
        };
        let id = key(input.key());
        let mut table = updates.lock().unwrap();
        let job = table.get_mut(&id);
        match job {
            Some(job) if job.parts.contains(&part) => {
                job.parts.remove(&part);
                // UPDATED_NEW: the updated attribute as it is after this update, absent once the set is empty.
                let parts = item(&id, job).remove("parts");
                MockResponse::Output(
                    UpdateItemOutput::builder()
                        .set_attributes(parts.map(|p| HashMap::from([("parts".to_owned(), p)])))
                        .build(),
                )
            }
            found => {
                let old = found.map(|job| item(&id, job));
                let failure = ConditionalCheckFailedException::builder().message("The conditional request failed");
                MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(failure.set_item(old).build()))
            }
        }
    });
    let reads = table.clone();
    let get = mock!(Client::get_item).then_compute_output(move |input| {
        let id = key(input.key());
        GetItemOutput::builder().set_item(reads.lock().unwrap().get(&id).map(|job| item(&id, job))).build()
    });
    let rules = [&update, &get];
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()));
    (DynamoStore::new(client, "progress"), update)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_answers_map_to_exactly_one_finisher() {
    const TOTAL: u64 = 200;
    let table: Table = Arc::default();
    table.lock().unwrap().insert("job".into(), Job { total: TOTAL, parts: (1..=TOTAL).collect() });
    let (store, update) = store(&table);

    let run_all = |store: DynamoStore| async move {
        let tasks: Vec<_> = (1..=TOTAL)
            .map(|part| {
                let store = store.clone();
                tokio::spawn(async move { store.complete_part("job", part).await.expect("complete-part") })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    };
    let results = run_all(store.clone()).await;
    assert_eq!(update.num_calls() as u64, TOTAL, "one request per complete-part");
    assert_eq!(results.iter().filter(|r| r.finished_job).count(), 1, "exactly one call finishes the job");
    assert!(results.iter().all(|r| !r.replay && r.all_done == (r.remaining == 0)), "{results:?}");
    let remaining: HashSet<u64> = results.iter().map(|r| r.remaining).collect();
    assert_eq!(remaining, (0..TOTAL).collect(), "every call saw its own step");
    assert!(table.lock().unwrap()["job"].parts.is_empty());

    // Replays: the condition fails and the ALL_OLD item says the job is done; nobody finishes it again.
    let replays = run_all(store.clone()).await;
    assert!(replays.iter().all(|r| r.replay && r.all_done && !r.finished_job && r.remaining == 0), "{replays:?}");
    assert_eq!(update.num_calls() as u64, 2 * TOTAL, "a replay is one request too (ALL_OLD, no read)");
}

#[tokio::test]
async fn a_failed_condition_tells_replays_ranges_and_unknown_jobs_apart() {
    let table: Table = Arc::default();
    table.lock().unwrap().insert("job".into(), Job { total: 3, parts: BTreeSet::from([1, 3]) });
    let (store, _) = store(&table);
    let replay = store.complete_part("job", 2).await.unwrap();
    assert!(replay.replay && !replay.all_done && !replay.finished_job && replay.remaining == 2, "{replay:?}");
    assert!(matches!(store.complete_part("job", 4).await, Err(Error::PartOutOfRange { part: 4, total: 3, .. })));
    assert!(matches!(store.complete_part("ghost", 1).await, Err(Error::UnknownJob { .. })));
    let step = store.complete_part("job", 1).await.unwrap();
    assert!(!step.finished_job && step.remaining == 1, "{step:?}");
    let last = store.complete_part("job", 3).await.unwrap();
    assert!(last.finished_job && last.all_done && last.remaining == 0, "{last:?}");
}
