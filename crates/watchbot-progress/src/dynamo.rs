//! The DynamoDB store: a table with hash key `id` (string), as the template creates it, holding jobs of both layouts.
//!
//! A job's item: `id` (S), `total` (N), `error` (S), `metadata` (the JSON value's DynamoDB form, a map `M` for an
//! object, as the original writes it; [`item`] reads every form either side writes), `reduceSent` (BOOL), and
//! - set layout (the original's): `parts` (NS of the parts not yet complete; DynamoDB removes the attribute when the
//!   set becomes empty);
//! - counter layout: `remaining` (N), and one item `{id: "<job>\u{1f}<part>"}` per completed part
//!   ([`counter`]).
//!
//! The shape of the item tells the layout (`remaining` present: counter), so a job continues in the layout it was
//! created in whatever the store's own layout, which decides only how new jobs are created and which complete-part
//! is tried first (a job of the other layout costs one request more per call). Every attribute goes through an
//! expression attribute name: `total`, `parts` and friends are DynamoDB reserved words.
//!
//! Set layout, complete-part is one UpdateItem: `DELETE #parts :part` under the condition `contains(#parts, :n)`,
//! returning UPDATED_NEW. DynamoDB applies updates of one item one at a time, so exactly one call removes the last
//! part, and only that call gets an answer without `parts`. When the condition fails (unknown job, part out of range,
//! a replay, or a counter-layout job), `ReturnValuesOnConditionCheckFailure=ALL_OLD` returns the item inside the
//! error, so telling the cases apart needs no second request either.

mod counter;
mod item;

use crate::{
    Completion, Error, JobList, JobState, LIST_SCAN_PAGES, Layout, PART_SEPARATOR, SetTotal, Store, check_job,
    check_metadata, check_part, check_reason, check_total, not_pending,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde_json::Value;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Progress in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    layout: Layout,
}

/// What a complete-part in one layout found.
enum Attempt {
    /// The answer.
    Done(Completion),
    /// The job is in the other layout.
    OtherLayout,
}

impl DynamoStore {
    /// A store over `table` (hash key `id`, string) through `client`, creating jobs in the counter layout.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table.into(), layout: Layout::default() }
    }

    /// The same store, creating new jobs in `layout` (jobs that exist keep theirs).
    pub fn with_layout(mut self, layout: Layout) -> DynamoStore {
        self.layout = layout;
        self
    }

    /// The layout of the jobs this store creates.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn failed<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Error::DynamoDb { operation, table: self.table.clone(), source: Box::new(error) }
    }

    /// A conditional update that only needs the job to exist.
    async fn update_existing(
        &self,
        job: &str,
        update: &str,
        name: (&str, &str),
        value: AttributeValue,
    ) -> Result<(), Error> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(job.to_owned()))
            .update_expression(update)
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names(name.0, name.1)
            .expression_attribute_values(":v", value);
        match update_retrying_conflicts(request).await {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(Error::UnknownJob { job: job.to_owned() }),
            Err(error) => Err(self.failed("UpdateItem", error)),
        }
    }
}

/// Sends an UpdateItem, again after a backoff while a transaction (a counter-layout complete-part) holds the item.
async fn update_retrying_conflicts(
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
> {
    let mut attempt = 0;
    loop {
        match request.clone().send().await {
            Err(error)
                if attempt + 1 < counter::MAX_ATTEMPTS
                    && error.as_service_error().is_some_and(|e| e.is_transaction_conflict_exception()) =>
            {
                tokio::time::sleep(counter::backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn is_condition_failure<R>(error: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>) -> bool {
    error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
}

/// The item carried by a ConditionalCheckFailed error, when asked for with ALL_OLD.
fn old_item_of_update<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
) -> Option<&Item> {
    match error.as_service_error()? {
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => e.item(),
        _ => None,
    }
}

fn number(job: &str, item: &Item, name: &str) -> Result<u64, Error> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| malformed(job, &format!("`{name}` is not a whole number"))),
        _ => Err(malformed(job, &format!("`{name}` is missing or not a number"))),
    }
}

fn malformed(job: &str, reason: &str) -> Error {
    Error::Malformed { job: job.to_owned(), reason: reason.to_owned() }
}

/// Whether an item is in the counter layout's shape.
fn is_counter(item: &Item) -> bool {
    item.contains_key("remaining")
}

/// The state of a job's item; `part_complete` is the answer for the part asked about, read by the caller. An item
/// without a total (the original's writes to a job before its set-total) has total 0 and no part complete.
fn job_state(job: &str, item: &Item, part_complete: Option<bool>) -> Result<JobState, Error> {
    let (total, remaining) = match item::total(item) {
        None => (0, 0),
        Some(total) if is_counter(item) => (total, number(job, item, "remaining")?),
        Some(total) => (total, item::pending(item, None).0),
    };
    Ok(JobState {
        total,
        remaining,
        failed: item::error(item),
        metadata: item::metadata(item),
        reduce_sent: matches!(item.get("reduceSent"), Some(AttributeValue::Bool(true))),
        part_complete,
    })
}

impl Store for DynamoStore {
    async fn set_total(&self, job: &str, total: u64) -> Result<SetTotal, Error> {
        check_total(job, total, self.layout)?;
        let (name, value) = match self.layout {
            Layout::Set => ("parts", AttributeValue::Ns((1..=total).map(|p| p.to_string()).collect())),
            Layout::Counter => ("remaining", AttributeValue::N(total.to_string())),
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(job.to_owned()))
            .item("total", AttributeValue::N(total.to_string()))
            .item(name, value.clone())
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "id")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(SetTotal::Created),
            Err(error) => {
                let old = match error.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e)) => {
                        e.item().cloned()
                    }
                    _ => return Err(self.failed("PutItem", error)),
                };
                // Without ALL_OLD support (an emulator), read the item.
                let old = match old {
                    Some(old) => old,
                    None => self.get(job).await?.ok_or_else(|| malformed(job, "vanished during set-total"))?,
                };
                let existing = match item::total(&old) {
                    Some(existing) => existing,
                    // An item the original's workers made before the total (its fail-job, set-metadata, ...): the
                    // total is added, and what they wrote is kept, as the original's set-total keeps it.
                    None => match self.add_total(job, total, (name, value)).await? {
                        None => return Ok(SetTotal::Created),
                        Some(existing) => existing,
                    },
                };
                if existing == total {
                    Ok(SetTotal::AlreadySet)
                } else {
                    Err(Error::TotalMismatch { job: job.to_owned(), existing, requested: total })
                }
            }
        }
    }

    async fn complete_part(&self, job: &str, part: u64) -> Result<Completion, Error> {
        check_part(job, part)?;
        // The store's own layout first; a job of the other layout says so in the first answer.
        let (first, second) = match self.layout {
            Layout::Set => (self.complete_in_set(job, part).await?, Layout::Counter),
            Layout::Counter => (counter::complete(self, job, part).await?, Layout::Set),
        };
        let answer = match (first, second) {
            (Attempt::Done(done), _) => return Ok(done),
            (Attempt::OtherLayout, Layout::Set) => self.complete_in_set(job, part).await?,
            (Attempt::OtherLayout, Layout::Counter) => counter::complete(self, job, part).await?,
        };
        match answer {
            Attempt::Done(done) => Ok(done),
            Attempt::OtherLayout => Err(malformed(job, "the item has neither layout's shape")),
        }
    }

    async fn status(&self, job: &str, part: Option<u64>) -> Result<Option<JobState>, Error> {
        if let Some(part) = part {
            check_part(job, part)?;
        } else {
            check_job(job)?;
        }
        let Some(item) = self.get(job).await? else { return Ok(None) };
        let part_complete = match (part, item::total(&item)) {
            (None, _) => None,
            // No total yet: no part is complete.
            (Some(_), None) => Some(false),
            (Some(part), Some(total)) if part > total => {
                return Err(Error::PartOutOfRange { job: job.to_owned(), part, total });
            }
            // The second read: the part's own item.
            (Some(part), Some(_)) if is_counter(&item) => Some(counter::part_recorded(self, job, part).await?),
            (Some(part), Some(_)) => Some(!item::pending(&item, Some(part)).1),
        };
        Ok(Some(job_state(job, &item, part_complete)?))
    }

    async fn fail_job(&self, job: &str, reason: &str) -> Result<(), Error> {
        check_reason(job, reason)?;
        self.update_existing(job, "SET #error = :v", ("#error", "error"), AttributeValue::S(reason.to_owned())).await
    }

    async fn set_metadata(&self, job: &str, metadata: &Value) -> Result<(), Error> {
        check_metadata(job, metadata, &metadata.to_string())?;
        let value = item::to_attribute(metadata);
        self.update_existing(job, "SET #metadata = :v", ("#metadata", "metadata"), value).await
    }

    async fn reduce_sent(&self, job: &str) -> Result<bool, Error> {
        check_job(job)?;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(job.to_owned()))
            .update_expression("SET #reduceSent = :t")
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#reduceSent)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#reduceSent", "reduceSent")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match update_retrying_conflicts(request).await {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => {
                let exists = match old_item_of_update(&error) {
                    Some(_) => true,
                    None => self.get(job).await?.is_some(),
                };
                if exists { Ok(false) } else { Err(Error::UnknownJob { job: job.to_owned() }) }
            }
            Err(error) => Err(self.failed("UpdateItem", error)),
        }
    }

    async fn list_jobs(&self, limit: usize) -> Result<JobList, Error> {
        let mut list = JobList::default();
        let mut start: Option<Item> = None;
        for page in 0..LIST_SCAN_PAGES {
            // Job items have a total; a counter-layout job's part records (`<job>\u{1f}<part>`) have none.
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#total)")
                .expression_attribute_names("#total", "total")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.failed("Scan", e))?;
            for item in output.items() {
                let Some(AttributeValue::S(id)) = item.get("id") else { continue };
                if id.contains(PART_SEPARATOR) {
                    continue;
                }
                if list.jobs.len() == limit {
                    list.more = true;
                    return Ok(list);
                }
                list.jobs.push((id.clone(), job_state(id, item, None)?));
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => {
                    start = Some(key);
                    list.more = page + 1 == LIST_SCAN_PAGES;
                }
                _ => break,
            }
        }
        Ok(list)
    }
}

impl DynamoStore {
    /// complete-part of a set-layout job: one conditional UpdateItem (see the module's documentation).
    async fn complete_in_set(&self, job: &str, part: u64) -> Result<Attempt, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(job.to_owned()))
            .update_expression("DELETE #parts :part")
            .condition_expression("attribute_exists(#id) AND contains(#parts, :n)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#parts", "parts")
            .expression_attribute_values(":part", AttributeValue::Ns(vec![part.to_string()]))
            .expression_attribute_values(":n", AttributeValue::N(part.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                // UPDATED_NEW lists `parts` unless this call emptied the set (DynamoDB then drops the attribute).
                let remaining = match output.attributes().and_then(|a| a.get("parts")) {
                    Some(AttributeValue::Ns(parts)) => parts.len() as u64,
                    _ => 0,
                };
                let done =
                    Completion { all_done: remaining == 0, finished_job: remaining == 0, replay: false, remaining };
                Ok(Attempt::Done(done))
            }
            Err(error) if is_condition_failure(&error) => {
                let old = match old_item_of_update(&error) {
                    Some(old) => Some(old.clone()),
                    // Without ALL_OLD support (an emulator), a second request tells the cases apart.
                    None => self.get(job).await?,
                };
                let Some(old) = old else {
                    return Err(Error::UnknownJob { job: job.to_owned() });
                };
                if is_counter(&old) {
                    return Ok(Attempt::OtherLayout);
                }
                let Some(total) = item::total(&old) else { return Err(Error::UnknownJob { job: job.to_owned() }) };
                not_pending(job, part, total, item::pending(&old, None).0).map(Attempt::Done)
            }
            Err(error) => Err(self.failed("UpdateItem", error)),
        }
    }

    /// Adds a total (and the layout's parts) to an item that has none; `Some(total)` when another call added one
    /// first.
    async fn add_total(&self, job: &str, total: u64, parts: (&str, AttributeValue)) -> Result<Option<u64>, Error> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(job.to_owned()))
            .update_expression("SET #total = :total, #parts = :parts")
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#total)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#parts", parts.0)
            .expression_attribute_values(":total", AttributeValue::N(total.to_string()))
            .expression_attribute_values(":parts", parts.1);
        match update_retrying_conflicts(request).await {
            Ok(_) => Ok(None),
            Err(error) if is_condition_failure(&error) => {
                let item = self.get(job).await?.ok_or_else(|| malformed(job, "vanished during set-total"))?;
                item::total(&item).map(Some).ok_or_else(|| malformed(job, "vanished during set-total"))
            }
            Err(error) => Err(self.failed("UpdateItem", error)),
        }
    }

    /// The job's item, read consistently (a worker's own write must be visible to its next status).
    async fn get(&self, job: &str) -> Result<Option<Item>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(job.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failed("GetItem", e))?;
        Ok(output.item)
    }
}
