//! The DynamoDB store's reading of DynamoDB's answers, on aws-smithy-mocks: what moto cannot show reliably.
//!
//! moto's UpdateItem and TransactWriteItems take no lock (see `scenarios.rs`). DynamoDB applies and answers writes
//! of one item one at a time; the mocks here do the same (every answer is computed under one mutex), so 200
//! concurrent complete-part calls must yield exactly one "finished the job" and replays that change nothing, in
//! both layouts. The counter layout's mock also cancels some transactions with `TransactionConflict`, as DynamoDB
//! does when two transactions meet on one item, and the store must send those again.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, TransactionCanceledException};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use watchbot_progress::{DynamoStore, Error, Layout, Store};

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
    (DynamoStore::new(client, "progress").with_layout(Layout::Set), update)
}

/// Completes parts `1..=total` of "job", every call at once, and returns the answers in part order.
async fn complete_all(store: &DynamoStore, total: u64) -> Vec<watchbot_progress::Completion> {
    let tasks: Vec<_> = (1..=total)
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_answers_map_to_exactly_one_finisher() {
    const TOTAL: u64 = 200;
    let table: Table = Arc::default();
    table.lock().unwrap().insert("job".into(), Job { total: TOTAL, parts: (1..=TOTAL).collect() });
    let (store, update) = store(&table);

    let results = complete_all(&store, TOTAL).await;
    assert_eq!(update.num_calls() as u64, TOTAL, "one request per complete-part");
    assert_eq!(results.iter().filter(|r| r.finished_job).count(), 1, "exactly one call finishes the job");
    assert!(results.iter().all(|r| !r.replay && r.all_done == (r.remaining == 0)), "{results:?}");
    let remaining: HashSet<u64> = results.iter().map(|r| r.remaining).collect();
    assert_eq!(remaining, (0..TOTAL).collect(), "every call saw its own step");
    assert!(table.lock().unwrap()["job"].parts.is_empty());

    // Replays: the condition fails and the ALL_OLD item says the job is done; nobody finishes it again.
    let replays = complete_all(&store, TOTAL).await;
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

// ---- the counter layout ----

type Items = Arc<Mutex<HashMap<String, HashMap<String, AttributeValue>>>>;

fn n(value: Option<&AttributeValue>) -> u64 {
    match value {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("expected a number, got {other:?}"),
    }
}

fn reason(code: &str, item: Option<HashMap<String, AttributeValue>>) -> CancellationReason {
    CancellationReason::builder().code(code).set_item(item).build()
}

/// The counter layout's requests, answered as DynamoDB does, one at a time: TransactWriteItems (Put of the part's
/// item if absent + Update of the job's counter under its condition, all or nothing) and GetItem. Every
/// `conflict_every`-th transaction is cancelled with `TransactionConflict` instead, changing nothing.
fn counter_store(items: &Items, conflict_every: usize) -> (DynamoStore, Rule, Rule, Arc<AtomicUsize>) {
    let (writes, conflicts) = (items.clone(), Arc::new(AtomicUsize::new(0)));
    let (calls, conflicts_seen) = (Arc::new(AtomicUsize::new(0)), conflicts.clone());
    let transact = mock!(Client::transact_write_items).then_compute_response(move |input| {
        let [put, update] = input.transact_items() else { panic!("two actions: {input:?}") };
        let (put, update) = (put.put().expect("a Put first"), update.update().expect("an Update second"));
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(#id)"));
        assert_eq!(
            update.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
        if calls.fetch_add(1, Ordering::SeqCst) % conflict_every == conflict_every - 1 {
            conflicts_seen.fetch_add(1, Ordering::SeqCst);
            let reasons = vec![reason("None", None), reason("TransactionConflict", None)];
            let cancelled = TransactionCanceledException::builder().set_cancellation_reasons(Some(reasons)).build();
            return MockResponse::Error(TransactWriteItemsError::TransactionCanceledException(cancelled));
        }
        let part_id = key(Some(put.item()));
        let job_id = key(Some(update.key()));
        let part = n(update.expression_attribute_values().and_then(|v| v.get(":part")));
        let finish = match update.update_expression() {
            "SET #remaining = #remaining - :one" => false,
            "SET #remaining = :zero" => true,
            other => panic!("unexpected update {other:?}"),
        };
        let mut items = writes.lock().unwrap();
        let part_done = items.contains_key(&part_id);
        let job = items.get(&job_id).cloned();
        let job_ok = job.as_ref().is_some_and(|job| {
            let (total, remaining) = (n(job.get("total")), n(job.get("remaining")));
            total >= part && if finish { remaining == 1 } else { remaining > 1 }
        });
        if part_done || !job_ok {
            let reasons = vec![
                reason(if part_done { "ConditionalCheckFailed" } else { "None" }, None),
                if job_ok { reason("None", None) } else { reason("ConditionalCheckFailed", job) },
            ];
            let cancelled = TransactionCanceledException::builder().set_cancellation_reasons(Some(reasons)).build();
            return MockResponse::Error(TransactWriteItemsError::TransactionCanceledException(cancelled));
        }
        items.insert(part_id.clone(), put.item().clone());
        let job = items.get_mut(&job_id).unwrap();
        let remaining = if finish { 0 } else { n(job.get("remaining")) - 1 };
        job.insert("remaining".into(), AttributeValue::N(remaining.to_string()));
        MockResponse::Output(TransactWriteItemsOutput::builder().build())
    });
    let reads = items.clone();
    let get = mock!(Client::get_item).then_compute_output(move |input| {
        GetItemOutput::builder().set_item(reads.lock().unwrap().get(&key(input.key())).cloned()).build()
    });
    let rules = [&transact, &get];
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()));
    (DynamoStore::new(client, "progress"), transact, get, conflicts)
}

fn counter_job(items: &Items, id: &str, total: u64, remaining: u64) {
    items.lock().unwrap().insert(
        id.to_owned(),
        HashMap::from([
            ("id".to_owned(), AttributeValue::S(id.to_owned())),
            ("total".to_owned(), AttributeValue::N(total.to_string())),
            ("remaining".to_owned(), AttributeValue::N(remaining.to_string())),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_layout_answers_map_to_exactly_one_finisher() {
    const TOTAL: u64 = 200;
    let items: Items = Arc::default();
    counter_job(&items, "job", TOTAL, TOTAL);
    let (store, transact, get, conflicts) = counter_store(&items, 7);
    let results = complete_all(&store, TOTAL).await;
    let conflicted = conflicts.load(Ordering::SeqCst);
    assert!(conflicted > 0, "the mock cancelled some transactions with a conflict");
    let finishers: Vec<_> = results.iter().filter(|r| r.finished_job).collect();
    assert_eq!(finishers.len(), 1, "exactly one call finishes the job: {results:?}");
    assert!(finishers[0].all_done && finishers[0].remaining == 0);
    assert!(results.iter().all(|r| !r.replay && r.all_done == (r.remaining == 0)), "{results:?}");
    assert!(results.iter().all(|r| r.remaining < TOTAL), "each answer counts its own completion: {results:?}");
    {
        let items = items.lock().unwrap();
        assert_eq!(n(items["job"].get("remaining")), 0);
        assert!((1..=TOTAL).all(|part| items.contains_key(&format!("job\u{1f}{part}"))), "every part recorded");
    }
    // One transaction per call, the last part's second one, and one per conflict sent again; one read per call
    // that only decremented (the finisher knows it left 0).
    assert_eq!(transact.num_calls(), TOTAL as usize + 1 + conflicted, "transactions");
    assert_eq!(get.num_calls(), TOTAL as usize - 1, "reads");

    // Replays: the part's condition fails and the job's ALL_OLD item says the job is done; nobody finishes again.
    let (transactions, reads) = (transact.num_calls(), get.num_calls());
    let replays = complete_all(&store, TOTAL).await;
    assert!(replays.iter().all(|r| r.replay && r.all_done && !r.finished_job && r.remaining == 0), "{replays:?}");
    let conflicted = conflicts.load(Ordering::SeqCst) - conflicted;
    assert_eq!(transact.num_calls() - transactions, TOTAL as usize + conflicted, "a replay is one transaction");
    assert_eq!(get.num_calls(), reads, "and no read: the cancellation carries the job's item");
}

#[tokio::test]
async fn a_cancelled_transaction_tells_replays_ranges_and_unknown_jobs_apart() {
    let items: Items = Arc::default();
    counter_job(&items, "job", 3, 3);
    let (store, _, _, _) = counter_store(&items, usize::MAX);
    let first = store.complete_part("job", 2).await.unwrap();
    assert!(!first.finished_job && !first.replay && first.remaining == 2, "{first:?}");
    // A replay mid-job: only the part's condition fails; the count comes from a read.
    let replay = store.complete_part("job", 2).await.unwrap();
    assert!(replay.replay && !replay.all_done && !replay.finished_job && replay.remaining == 2, "{replay:?}");
    assert!(matches!(store.complete_part("job", 4).await, Err(Error::PartOutOfRange { part: 4, total: 3, .. })));
    assert!(matches!(store.complete_part("ghost", 1).await, Err(Error::UnknownJob { .. })));
    store.complete_part("job", 1).await.unwrap();
    let last = store.complete_part("job", 3).await.unwrap();
    assert!(last.finished_job && last.all_done && last.remaining == 0, "{last:?}");
    // A counter that disagrees with the part items is reported, not papered over.
    counter_job(&items, "broken", 2, 0);
    assert!(matches!(store.complete_part("broken", 1).await, Err(Error::Malformed { .. })));
}

#[tokio::test]
async fn a_transaction_that_keeps_conflicting_is_a_dynamodb_error_and_changes_nothing() {
    let items: Items = Arc::default();
    counter_job(&items, "job", 2, 2);
    let (store, transact, _, _) = counter_store(&items, 1);
    match store.complete_part("job", 1).await {
        Err(Error::DynamoDb { operation: "TransactWriteItems", .. }) => {}
        other => panic!("expected a DynamoDB error, got {other:?}"),
    }
    assert_eq!(transact.num_calls(), 12, "sent 12 times in all");
    assert_eq!(n(items.lock().unwrap()["job"].get("remaining")), 2);
}
