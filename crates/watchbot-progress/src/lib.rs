//! Reduce-mode progress: a map-reduce job's parts, tracked in DynamoDB in production and in an embedded SQLite
//! store locally, behind one store trait.
//!
//! A job is created with a total number of parts ([`Store::set_total`]); workers report parts done
//! ([`Store::complete_part`]); among all calls for distinct parts exactly one learns that it finished the job
//! ([`Completion::finished_job`]), which is the one that should send the reduce message. Replays (at-least-once
//! delivery runs a part twice) are safe: they change nothing and answer with the job's state.
//!
//! The backend follows the table address ([`Address`]): a DynamoDB table ARN or name, or a SQLite file path (or
//! `file:` URL). [`open`] turns an address into an [`AnyStore`]; the CLI and local mode both use it.
//!
//! A job's parts are kept in one of two [`Layout`]s, chosen by the store's layout when the job is created and kept
//! for the job's life: [`Layout::Counter`] (the default: a counter and one record per completed part, so a
//! complete-part costs the same whatever the job's size) or [`Layout::Set`] (the original's: every pending part in
//! one DynamoDB number set, at most 50,000 parts). Every store reads and continues jobs of both layouts.
//!
//! Differences from the original watchbot-progress, all deliberate: completing a part of an unknown job is an error
//! (the original answered "done"); `set_total` on an existing job with another total is an error and with the same
//! total a no-op (the original silently reset progress); parts outside `1..=total` are errors; every write to an
//! unknown job is an error.
//!
//! Set a total, complete parts and learn which call finished the job, on the embedded store (a SQLite file; in
//! production the same calls go to DynamoDB):
//!
//! ```rust
//! use watchbot_progress::{SetTotal, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), watchbot_progress::Error> {
//! let dir = tempfile::tempdir().expect("a temporary folder");
//! let path = dir.path().join("progress.sqlite");
//! let store = watchbot_progress::open(path.to_str().unwrap(), None).await?;
//! assert_eq!(store.set_total("job-1", 3).await?, SetTotal::Created);
//! let mut finishers = Vec::new();
//! for part in [2, 1, 3, 3] {
//!     let done = store.complete_part("job-1", part).await?;
//!     if done.finished_job {
//!         finishers.push(part); // the one call that should send the reduce message
//!     }
//! }
//! assert_eq!(finishers, [3]); // the replay of part 3 finished nothing
//! let status = store.status("job-1", Some(2)).await?;
//! assert_eq!(status_json(status.as_ref()).to_string(), r#"{"progress":1,"partComplete":true}"#);
//! # Ok(())
//! # }
//! # use watchbot_progress::status_json;
//! ```
//!
//! On AWS, with the table the template's `reduce` option creates (the README's example; not run here, it needs
//! AWS):
//!
//! ```rust,no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (job, part) = ("job-1", 7);
//! use watchbot_progress::Store;
//!
//! let address = std::env::var("ProgressTable")?;
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let store = watchbot_progress::open(&address, Some(&sdk)).await?;   // new jobs in the counter layout
//! // let store = store.with_layout(watchbot_progress::Layout::Set);     // ... or in the original's
//! store.set_total(job, 200).await?;
//! let done = store.complete_part(job, part).await?;
//! if done.finished_job {
//!     // this call completed the last part: send the reduce message (once)
//! }
//! let status = store.status(job, None).await?;                // Option<JobState>
//! println!("{}", watchbot_progress::status_json(status.as_ref()));   // the original's JSON, byte for byte
//! # Ok(())
//! # }
//! ```

// Every public item says what it is for (a library users depend on).
#![warn(missing_docs)]

mod address;
mod dynamo;
mod embedded;
mod js;
pub mod sdk;

/// The embedded store's SQLite layer, whose errors [`Error::Database`] carries (and its `rusqlite`, whose errors
/// [`Error::Sqlite`] carries).
pub use watchbot_sqlite;

pub use address::{Address, AddressError, open};
pub use dynamo::DynamoStore;
pub use embedded::EmbeddedStore;

use serde_json::{Value, json};
use std::future::Future;
use std::str::FromStr;

/// How a job's parts are recorded. Chosen when a job is created (the store's layout); a job keeps its layout, and
/// every store reads and continues jobs of both, so workers of both kinds can share a table during a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A job record with a `remaining` counter, plus one small record per completed part written in the same
    /// transaction: a complete-part costs a constant number of small writes, up to [`MAX_COUNTER_TOTAL`] parts.
    #[default]
    Counter,
    /// The original watchbot-progress layout: every pending part number in one DynamoDB number set, so a
    /// complete-part rewrites an item that grows with the job; at most [`MAX_SET_TOTAL`] parts.
    Set,
}

impl Layout {
    /// The most parts a job of this layout may have, on every store.
    pub const fn max_total(self) -> u64 {
        match self {
            Layout::Counter => MAX_COUNTER_TOTAL,
            Layout::Set => MAX_SET_TOTAL,
        }
    }

    /// The name used by `--layout` and `$ProgressLayout`.
    pub const fn name(self) -> &'static str {
        match self {
            Layout::Counter => "counter",
            Layout::Set => "set",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = Error;

    fn from_str(text: &str) -> Result<Layout, Error> {
        match text.trim() {
            "counter" => Ok(Layout::Counter),
            "set" => Ok(Layout::Set),
            other => Err(Error::Invalid(format!(
                "progress layout must be \"counter\" (the default) or \"set\" (the original's), got {other:?}"
            ))),
        }
    }
}

/// What went wrong in a progress operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job has no record (set-total was never called for it).
    #[error("job {job:?} not found (set its total first)")]
    UnknownJob {
        /// The job id.
        job: String,
    },
    /// set-total on an existing job with a different total.
    #[error("job {job:?} already has a total of {existing} parts, not {requested}")]
    TotalMismatch {
        /// The job id.
        job: String,
        /// The total on record.
        existing: u64,
        /// The total asked for.
        requested: u64,
    },
    /// A part number outside `1..=total`.
    #[error("part {part} is outside 1..={total} for job {job:?}")]
    PartOutOfRange {
        /// The job id.
        job: String,
        /// The part asked for.
        part: u64,
        /// The job's total.
        total: u64,
    },
    /// Bad input caught before any request: an empty job id, a zero total or part.
    #[error("{0}")]
    Invalid(String),
    /// A table address that is neither a DynamoDB table nor a file path.
    #[error("invalid progress table address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A DynamoDB request failed.
    #[error("dynamodb {operation} on table {table} failed")]
    DynamoDb {
        /// The API operation (`UpdateItem`, ...).
        operation: &'static str,
        /// The table name.
        table: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded store failed.
    #[error("progress store {path} failed")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The embedded store's file could not be opened, or a call on it did not finish (its blocking task panicked).
    #[error("progress store failed")]
    Database(#[from] watchbot_sqlite::Error),
    /// A stored record that does not have the expected shape (written by something else).
    #[error("job {job:?} has a malformed record: {reason}")]
    Malformed {
        /// The job id.
        job: String,
        /// What is wrong.
        reason: String,
    },
}

/// The result of [`Store::set_total`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTotal {
    /// The job was created with this total.
    Created,
    /// The job already had this total: nothing changed (a replayed map message does not reset progress).
    AlreadySet,
}

/// The result of [`Store::complete_part`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Every part of the job is complete (also true for a replay after the job finished).
    pub all_done: bool,
    /// This call completed the last part. Among all calls for a job, exactly one gets `true`.
    pub finished_job: bool,
    /// The part was already complete before this call (a replay); nothing changed.
    pub replay: bool,
    /// Parts still to complete after this call. Exact in the set layout and on the embedded store; in the counter
    /// layout on DynamoDB it is read just after the write, so it may already count concurrent completions.
    pub remaining: u64,
}

/// A job's record.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    /// Number of parts; 0 for a record without one (in a table shared with the original's workers, whose
    /// fail-job, set-metadata, complete-part and reduce-sent create a record for a job that has no total yet).
    pub total: u64,
    /// Parts not yet complete.
    pub remaining: u64,
    /// The reason given to fail-job, if the job failed.
    pub failed: Option<String>,
    /// The metadata given to set-metadata.
    pub metadata: Option<Value>,
    /// reduce-sent was called.
    pub reduce_sent: bool,
    /// Whether the part asked about in [`Store::status`] is complete.
    pub part_complete: Option<bool>,
}

impl JobState {
    /// Progress in hundredths, floored: 199 of 200 parts is 99, never a rounded-up 100.
    pub fn progress_percent(&self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // u128: no overflow for any u64 total.
        ((u128::from(self.total - self.remaining.min(self.total)) * 100) / u128::from(self.total)) as u64
    }

    /// All parts are complete (never for a record without a total).
    pub fn is_complete(&self) -> bool {
        self.total > 0 && self.remaining == 0
    }
}

/// Progress as the original printed it: a number with at most two decimals, floored; `1` and `0` without decimals.
fn progress_number(percent: u64) -> Value {
    if percent.is_multiple_of(100) { json!(percent / 100) } else { json!(percent as f64 / 100.0) }
}

/// The original's status JSON: `{progress, failed?, metadata?, partComplete?, reduceSent?}`, in that order when
/// serialized; `{"progress":0}` for an unknown job.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Fraction of parts complete, floored to two decimals; `null` for a record without a total, as the original.
    pub progress: Value,
    /// The fail-job reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The set-metadata JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Whether the part asked about is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_complete: Option<bool>,
    /// `true` once reduce-sent was called (absent before, as in the original).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduce_sent: Option<bool>,
}

/// The status report of a job's record (`None`: unknown job). As in the original, a `failed` or `metadata` that
/// JavaScript finds false (an empty reason; metadata `null`, `false`, `0` or `""`) is left out.
pub fn status_json(state: Option<&JobState>) -> StatusReport {
    match state {
        None => {
            StatusReport { progress: json!(0), failed: None, metadata: None, part_complete: None, reduce_sent: None }
        }
        Some(state) => StatusReport {
            // The original divides by a missing total: NaN, which JSON.stringify writes as null.
            progress: if state.total == 0 { Value::Null } else { progress_number(state.progress_percent()) },
            failed: state.failed.clone().filter(|reason| !reason.is_empty()),
            metadata: state.metadata.clone().filter(js::is_truthy),
            part_complete: state.part_complete,
            reduce_sent: state.reduce_sent.then_some(true),
        },
    }
}

/// The report exactly as the original's `watchbot-progress status` prints it (`JSON.stringify`): its keys in
/// order, numbers as JavaScript writes them (`1e+21`; integers beyond 2^53 rounded to a double, as it reads them),
/// an object's integer-like keys first. `serde_json::to_string` of the report has the same keys and values but
/// writes numbers its own way.
impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::from("{\"progress\":");
        js::write_json(&mut out, &self.progress);
        if let Some(failed) = &self.failed {
            out.push_str(",\"failed\":");
            js::write_string(&mut out, failed);
        }
        if let Some(metadata) = &self.metadata {
            out.push_str(",\"metadata\":");
            js::write_json(&mut out, metadata);
        }
        if let Some(part_complete) = self.part_complete {
            out.push_str(if part_complete { ",\"partComplete\":true" } else { ",\"partComplete\":false" });
        }
        if self.reduce_sent == Some(true) {
            out.push_str(",\"reduceSent\":true");
        }
        out.push('}');
        f.write_str(&out)
    }
}

/// The richer status of `--json`: the job id, whether it exists, the original's fields, and the counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedStatus {
    /// The job id.
    pub job: String,
    /// The job has a record.
    pub exists: bool,
    /// Fraction complete, floored to two decimals.
    pub progress: Value,
    /// Number of parts (absent for an unknown job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Parts not yet complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Every part is complete.
    pub complete: bool,
    /// The fail-job reason, or `null`.
    pub failed: Option<String>,
    /// The metadata, or `null`.
    pub metadata: Option<Value>,
    /// Whether the part asked about is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_complete: Option<bool>,
    /// reduce-sent was called.
    pub reduce_sent: bool,
}

/// The detailed status of a job's record (`None`: unknown job).
pub fn status_json_detailed(job: &str, state: Option<&JobState>) -> DetailedStatus {
    let report = status_json(state);
    DetailedStatus {
        job: job.to_owned(),
        exists: state.is_some(),
        progress: report.progress,
        total: state.map(|s| s.total).filter(|total| *total > 0),
        remaining: state.filter(|s| s.total > 0).map(|s| s.remaining),
        complete: state.is_some_and(JobState::is_complete),
        failed: report.failed,
        metadata: report.metadata,
        part_complete: report.part_complete,
        reduce_sent: state.is_some_and(|s| s.reduce_sent),
    }
}

/// Where a job's progress lives. Every operation is atomic on its own; no lock is held between calls.
pub trait Store: Send + Sync {
    /// Creates the job with `total` parts (≥ 1). The same total again is a no-op; another total is an error.
    fn set_total(&self, job: &str, total: u64) -> impl Future<Output = Result<SetTotal, Error>> + Send;

    /// Marks `part` (in `1..=total`) complete. On DynamoDB: one UpdateItem for a job in the set layout; one
    /// TransactWriteItems and one GetItem for a job in the counter layout (two transactions for the last part).
    fn complete_part(&self, job: &str, part: u64) -> impl Future<Output = Result<Completion, Error>> + Send;

    /// The job's record, `None` if unknown. With `part`, [`JobState::part_complete`] says whether it is complete.
    fn status(&self, job: &str, part: Option<u64>) -> impl Future<Output = Result<Option<JobState>, Error>> + Send;

    /// Records that the job failed, with a reason.
    fn fail_job(&self, job: &str, reason: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Stores JSON metadata with the job (replacing earlier metadata).
    fn set_metadata(&self, job: &str, metadata: &Value) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records that the reduce message was sent. `true` when this call recorded it, `false` if it already was, so
    /// a worker can send the reduce message at most once per job when it asks first.
    fn reduce_sent(&self, job: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Up to `limit` jobs with their records (the dashboard's progress bars): the embedded store's newest first;
    /// DynamoDB's in the table's order, from a `Scan` of at most [`LIST_SCAN_PAGES`] pages (part records skipped).
    /// [`JobList::more`] says that jobs were left out.
    fn list_jobs(&self, limit: usize) -> impl Future<Output = Result<JobList, Error>> + Send;
}

/// The most pages (of at most 1 MB each) of the DynamoDB table one [`Store::list_jobs`] scans: a table with many
/// part records (counter layout) is not read whole for a listing.
pub const LIST_SCAN_PAGES: usize = 4;

/// Jobs as [`Store::list_jobs`] lists them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobList {
    /// The jobs found: id and record.
    pub jobs: Vec<(String, JobState)>,
    /// More jobs may exist than were listed (the limit, or the scan's page budget, was reached).
    pub more: bool,
}

/// A store of either kind, as [`open`] returns it.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// DynamoDB.
    DynamoDb(DynamoStore),
    /// Embedded SQLite.
    Embedded(EmbeddedStore),
}

impl AnyStore {
    /// The same store, creating new jobs in `layout` (jobs that exist keep theirs).
    pub fn with_layout(self, layout: Layout) -> AnyStore {
        match self {
            AnyStore::DynamoDb(store) => AnyStore::DynamoDb(store.with_layout(layout)),
            AnyStore::Embedded(store) => AnyStore::Embedded(store.with_layout(layout)),
        }
    }

    /// The layout of the jobs this store creates.
    pub fn layout(&self) -> Layout {
        match self {
            AnyStore::DynamoDb(store) => store.layout(),
            AnyStore::Embedded(store) => store.layout(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::DynamoDb($store) => $call.await,
            AnyStore::Embedded($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn set_total(&self, job: &str, total: u64) -> Result<SetTotal, Error> {
        delegate!(self, s => s.set_total(job, total))
    }
    async fn complete_part(&self, job: &str, part: u64) -> Result<Completion, Error> {
        delegate!(self, s => s.complete_part(job, part))
    }
    async fn status(&self, job: &str, part: Option<u64>) -> Result<Option<JobState>, Error> {
        delegate!(self, s => s.status(job, part))
    }
    async fn fail_job(&self, job: &str, reason: &str) -> Result<(), Error> {
        delegate!(self, s => s.fail_job(job, reason))
    }
    async fn set_metadata(&self, job: &str, metadata: &Value) -> Result<(), Error> {
        delegate!(self, s => s.set_metadata(job, metadata))
    }
    async fn reduce_sent(&self, job: &str) -> Result<bool, Error> {
        delegate!(self, s => s.reduce_sent(job))
    }
    async fn list_jobs(&self, limit: usize) -> Result<JobList, Error> {
        delegate!(self, s => s.list_jobs(limit))
    }
}

/// Separates a job id from a part number in the key of a completed part's record (counter layout), so no part
/// record's key is a job's key; job ids may not contain it.
pub(crate) const PART_SEPARATOR: char = '\u{1f}';

/// Checks what every adapter needs before a request: a non-empty job id of at most 1024 bytes (DynamoDB's key
/// limit is 2048; the margin keeps error messages short, and leaves room for a part record's key), without the
/// unit separator U+001F (which separates job and part in a part record's key).
pub(crate) fn check_job(job: &str) -> Result<(), Error> {
    if job.is_empty() {
        return Err(Error::Invalid("job id must not be empty".into()));
    }
    if job.len() > 1024 {
        return Err(Error::Invalid(format!("job id is {} bytes; at most 1024 are allowed", job.len())));
    }
    if job.contains(PART_SEPARATOR) {
        return Err(Error::Invalid("job id must not contain the control character U+001F".into()));
    }
    Ok(())
}

/// The most bytes of a fail-job reason or of set-metadata's JSON text, on every store: with the largest set-layout
/// job (about 190 KB of pending parts) both still fit DynamoDB's 400 KB item.
pub const MAX_TEXT: usize = 100 * 1024;

/// A reason or metadata text within [`MAX_TEXT`].
pub(crate) fn check_text(job: &str, what: &str, text: &str) -> Result<(), Error> {
    check_job(job)?;
    if text.len() > MAX_TEXT {
        return Err(Error::Invalid(format!(
            "{what} is {} bytes; at most {MAX_TEXT} are stored with a job (DynamoDB items are at most 400 KB)",
            text.len()
        )));
    }
    Ok(())
}

/// A fail-job reason: not empty (the original's status would not show an empty one), within [`MAX_TEXT`].
pub(crate) fn check_reason(job: &str, reason: &str) -> Result<(), Error> {
    check_text(job, "the reason", reason)?;
    if reason.is_empty() {
        return Err(Error::Invalid("the reason must not be empty".into()));
    }
    Ok(())
}

/// Metadata both stores keep alike: its JSON text within [`MAX_TEXT`], nested at most 32 levels (the `metadata`
/// attribute itself counted, as DynamoDB counts) and with numbers
/// in DynamoDB's range (magnitudes from 1e-130 to below 1e126, or 0), which DynamoDB would otherwise refuse.
pub(crate) fn check_metadata(job: &str, metadata: &Value, text: &str) -> Result<(), Error> {
    fn walk(value: &Value, depth: usize) -> Result<(), String> {
        if depth > 31 {
            return Err("is nested more than 32 levels deep (DynamoDB's limit)".into());
        }
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(x) if x == 0.0 || (1e-130..1e126).contains(&x.abs()) => Ok(()),
                _ => Err(format!("holds the number {n}, outside DynamoDB's range (1e-130 to 1e126)")),
            },
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, depth + 1)),
            Value::Object(map) => map.values().try_for_each(|item| walk(item, depth + 1)),
            _ => Ok(()),
        }
    }
    check_text(job, "the metadata", text)?;
    walk(metadata, 0).map_err(|why| Error::Invalid(format!("the metadata {why}")))
}

/// Part numbers start at 1.
pub(crate) fn check_part(job: &str, part: u64) -> Result<(), Error> {
    check_job(job)?;
    if part == 0 {
        return Err(Error::Invalid("part numbers start at 1; got 0".into()));
    }
    Ok(())
}

/// The most parts of a job in the set layout, on every store. The DynamoDB item holds every pending part number in
/// one number set, and an item is at most 400 KB: 50,000 five-digit numbers take about 200 KB, while totals from
/// ~60,000 up fail with an obscure ValidationException. The embedded store enforces the same limit, so a job that
/// runs locally also runs in production.
pub const MAX_SET_TOTAL: u64 = 50_000;

/// The most parts of a job in the counter layout, on every store. No item grows with the job, so this is a bound
/// against typos rather than a storage limit: a billion part records are over 100 GB in DynamoDB, and at a few
/// hundred completions per second on one job's counter they take more than a month.
pub const MAX_COUNTER_TOTAL: u64 = 1_000_000_000;

/// Totals are in `1..=layout.max_total()`.
pub(crate) fn check_total(job: &str, total: u64, layout: Layout) -> Result<(), Error> {
    check_job(job)?;
    if total == 0 {
        return Err(Error::Invalid("total must be at least 1; got 0".into()));
    }
    let max = layout.max_total();
    if total > max {
        let why = match layout {
            Layout::Set => {
                "in the set layout (DynamoDB keeps every pending part in one item of at most 400 KB); use the \
                 counter layout or split the job"
            }
            Layout::Counter => "in the counter layout; split the job",
        };
        return Err(Error::Invalid(format!("total {total} is over the limit of {max} parts per job {why}")));
    }
    Ok(())
}

/// After a part was found not to be pending: is it out of range, or a replay?
pub(crate) fn not_pending(job: &str, part: u64, total: u64, remaining: u64) -> Result<Completion, Error> {
    if part > total {
        return Err(Error::PartOutOfRange { job: job.to_owned(), part, total });
    }
    Ok(Completion { all_done: remaining == 0, finished_job: false, replay: true, remaining })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(total: u64, remaining: u64) -> JobState {
        JobState { total, remaining, failed: None, metadata: None, reduce_sent: false, part_complete: None }
    }

    fn report(state: Option<&JobState>) -> Value {
        serde_json::to_value(status_json(state)).unwrap()
    }

    #[test]
    fn progress_is_floored_to_two_decimals() {
        assert_eq!(report(Some(&state(200, 199))), json!({"progress": 0}));
        assert_eq!(report(Some(&state(3, 2))), json!({"progress": 0.33}));
        assert_eq!(report(Some(&state(3, 1))), json!({"progress": 0.66}));
        assert_eq!(report(Some(&state(200, 1))), json!({"progress": 0.99}));
        assert_eq!(report(Some(&state(4, 2))), json!({"progress": 0.5}));
        assert_eq!(serde_json::to_string(&status_json(Some(&state(4, 0)))).unwrap(), r#"{"progress":1}"#);
        assert_eq!(serde_json::to_string(&status_json(None)).unwrap(), r#"{"progress":0}"#);
    }

    #[test]
    fn optional_fields_appear_only_when_set_in_the_original_order() {
        let mut s = state(2, 1);
        s.failed = Some("boom".into());
        s.metadata = Some(json!({"k": [1, 2]}));
        s.part_complete = Some(false);
        s.reduce_sent = true;
        assert_eq!(
            serde_json::to_string(&status_json(Some(&s))).unwrap(),
            r#"{"progress":0.5,"failed":"boom","metadata":{"k":[1,2]},"partComplete":false,"reduceSent":true}"#
        );
        let detailed = serde_json::to_value(status_json_detailed("j", Some(&state(2, 0)))).unwrap();
        assert_eq!(detailed["complete"], json!(true));
        assert_eq!(detailed["reduceSent"], json!(false));
        assert_eq!(serde_json::to_value(status_json_detailed("j", None)).unwrap()["exists"], json!(false));
    }
}
