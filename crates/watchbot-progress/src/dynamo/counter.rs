//! The counter layout's complete-part on DynamoDB: a constant number of small writes whatever the job's size.
//!
//! A job's item carries `remaining` (N); each completed part has an item of its own, `{id: "<job>\u{1f}<part>"}`
//! (job ids cannot contain U+001F, so no part's key is a job's). A complete-part is one TransactWriteItems of two
//! actions, applied together or not at all:
//!
//! 1. Put the part's item, if `attribute_not_exists(#id)` (a replay fails here and changes nothing);
//! 2. Update the job's item `SET #remaining = #remaining - :one`, if `#remaining > :one AND #total >= :part` (an
//!    unknown job or a part out of range fails here).
//!
//! The update's condition keeps the counter at 1 or more, so no call of this kind can finish the job. The call that
//! finds `remaining` at 1 (its transaction cancelled by that condition alone) sends a second transaction, the same
//! Put with `SET #remaining = :zero` if `#remaining = :one`: DynamoDB serializes writes of one item, so exactly one
//! such transaction succeeds, and its caller is the finisher. Transactions return no values, so a call that only
//! decremented reads `remaining` afterwards (a strongly consistent GetItem, which may count concurrent completions
//! too); a cancelled one learns the job's item from its cancellation reason (`ALL_OLD`).
//!
//! Two transactions on one job's item at the same moment cancel one another (`TransactionConflict`); they are sent
//! again after a jittered backoff, which changes nothing since a cancelled transaction wrote nothing.
//!
//! Cost per call: the transaction writes two items under 1 KB, 2 write units each (transactions cost double), plus a
//! read of one unit: 4 write units and 1 read unit, whatever the job's size. IAM: the Put and the Update need
//! `dynamodb:PutItem` and `dynamodb:UpdateItem`, the reads `dynamodb:GetItem`; there is no transaction action.

use super::{Attempt, DynamoStore, Item, malformed, number};
use crate::{Completion, Error, PART_SEPARATOR};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::time::Duration;

/// How many times a request cancelled by a transaction conflict is sent, in all.
pub(super) const MAX_ATTEMPTS: u32 = 12;

/// The wait before attempt `attempt + 1`: exponential from 20 ms to 1 s, with full jitter over its upper half.
pub(super) fn backoff(attempt: u32) -> Duration {
    let ceiling = (20u64 << attempt.min(6)).min(1000);
    Duration::from_millis(ceiling / 2 + fastrand::u64(0..=ceiling / 2))
}

/// The key of the item that records `part` of `job` as complete.
pub(crate) fn part_key(job: &str, part: u64) -> String {
    format!("{job}{PART_SEPARATOR}{part}")
}

/// Whether `part` of a counter-layout job is recorded as complete (one consistent GetItem).
pub(super) async fn part_recorded(store: &DynamoStore, job: &str, part: u64) -> Result<bool, Error> {
    Ok(store.get(&part_key(job, part)).await?.is_some())
}

/// The transaction of one complete-part: decrement (`finish` false) or take the counter from 1 to 0.
fn transaction(store: &DynamoStore, job: &str, part: u64, finish: bool) -> Result<[TransactWriteItem; 2], Error> {
    let built = |e: aws_sdk_dynamodb::error::BuildError| malformed(job, &format!("request not built: {e}"));
    let put = Put::builder()
        .table_name(&store.table)
        .item("id", AttributeValue::S(part_key(job, part)))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", "id")
        .build()
        .map_err(built)?;
    let (update, condition) = if finish {
        ("SET #remaining = :zero", "#remaining = :one AND #total >= :part")
    } else {
        ("SET #remaining = #remaining - :one", "#remaining > :one AND #total >= :part")
    };
    let mut update = Update::builder()
        .table_name(&store.table)
        .key("id", AttributeValue::S(job.to_owned()))
        .update_expression(update)
        .condition_expression(condition)
        .expression_attribute_names("#remaining", "remaining")
        .expression_attribute_names("#total", "total")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":part", AttributeValue::N(part.to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    if finish {
        update = update.expression_attribute_values(":zero", AttributeValue::N("0".into()));
    }
    let update = update.build().map_err(built)?;
    Ok([TransactWriteItem::builder().put(put).build(), TransactWriteItem::builder().update(update).build()])
}

/// The cancellation reasons of a cancelled transaction; `None` for any other failure.
fn reasons<R>(error: &SdkError<TransactWriteItemsError, R>) -> Option<&[CancellationReason]> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(e.cancellation_reasons()),
        _ => None,
    }
}

fn failed_condition(reason: Option<&CancellationReason>) -> bool {
    reason.and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

/// complete-part of a counter-layout job ([`Attempt::OtherLayout`] for a set-layout job).
pub(super) async fn complete(store: &DynamoStore, job: &str, part: u64) -> Result<Attempt, Error> {
    let mut finish = false;
    let mut attempt = 0;
    loop {
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(transaction(store, job, part, finish)?.to_vec()))
            .send()
            .await;
        let error = match result {
            Ok(_) if finish => {
                return Ok(Attempt::Done(Completion {
                    all_done: true,
                    finished_job: true,
                    replay: false,
                    remaining: 0,
                }));
            }
            Ok(_) => {
                let remaining = remaining(store, job).await?;
                let done = Completion { all_done: remaining == 0, finished_job: false, replay: false, remaining };
                return Ok(Attempt::Done(done));
            }
            Err(error) => error,
        };
        let Some(reasons) = reasons(&error) else { return Err(store.failed("TransactWriteItems", error)) };
        attempt += 1;
        if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
            if attempt >= MAX_ATTEMPTS {
                return Err(store.failed("TransactWriteItems", error));
            }
            tokio::time::sleep(backoff(attempt - 1)).await;
            continue;
        }
        let part_done = failed_condition(reasons.first());
        let job_item: Option<Option<&Item>> = failed_condition(reasons.get(1)).then(|| reasons[1].item());
        let item = match job_item {
            // The job's condition held, so only the part's failed: a replay.
            None if part_done => return replay(remaining(store, job).await?),
            None => return Err(store.failed("TransactWriteItems", error)),
            // ALL_OLD returns the item when there is one.
            Some(None) => return Err(Error::UnknownJob { job: job.to_owned() }),
            Some(Some(item)) if !super::is_counter(item) => return Ok(Attempt::OtherLayout),
            Some(Some(item)) => item,
        };
        let Some(total) = super::item::total(item) else { return Err(Error::UnknownJob { job: job.to_owned() }) };
        let remaining = number(job, item, "remaining")?;
        if part > total {
            return Err(Error::PartOutOfRange { job: job.to_owned(), part, total });
        }
        if part_done {
            return replay(remaining);
        }
        match remaining {
            // The last part, not yet recorded: try to finish.
            1 if !finish => finish = true,
            // Counts only go down, so this is a job deleted and created again meanwhile: start over.
            2.. if finish && attempt < MAX_ATTEMPTS => finish = false,
            _ => {
                let reason = format!("`remaining` is {remaining} while part {part} is not recorded as complete");
                return Err(malformed(job, &reason));
            }
        }
    }
}

fn replay(remaining: u64) -> Result<Attempt, Error> {
    Ok(Attempt::Done(Completion { all_done: remaining == 0, finished_job: false, replay: true, remaining }))
}

/// The job's `remaining`, read consistently after a write.
async fn remaining(store: &DynamoStore, job: &str) -> Result<u64, Error> {
    let item = store.get(job).await?.ok_or_else(|| Error::UnknownJob { job: job.to_owned() })?;
    number(job, &item, "remaining")
}
