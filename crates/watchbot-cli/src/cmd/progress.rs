//! `watchbot progress <command> <job-id>` (and `watchbot-progress`): reduce-mode progress of a map-reduce job, in
//! the DynamoDB table or the embedded store that `--table` / `$ProgressTable` names.
//!
//! Output as the original's: complete-part prints `true`/`false` (are all parts complete), status prints the
//! status JSON, the other commands print nothing. `--json` prints a richer JSON object for every command.
//! Every bad input is one line on stderr and exit 1; a DynamoDB request that fails (unreachable, no credentials,
//! access denied, no such table) is one line naming the table and exit 69.

use crate::Failure;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use watchbot_progress::{Address, AnyStore, JobState, Layout, SetTotal, Store, status_json, status_json_detailed};

const COMMANDS: &str = "status, set-total, set-metadata, complete-part, fail-job, reduce-sent";

/// Arguments of `watchbot progress`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "watchbot progress <status|set-total|set-metadata|complete-part|fail-job|reduce-sent> <JOB_ID> \
                      [OPTIONS]"
)]
pub struct Args {
    /// One of: status, set-total, set-metadata, complete-part, fail-job, reduce-sent.
    command: Option<String>,

    /// The job's id (any non-empty text, e.g. the id the map step generated).
    job_id: Option<String>,

    /// set-total: the number of parts (1 to 1,000,000,000; to 50,000 in the set layout).
    #[arg(short = 't', long, value_name = "N")]
    total: Option<String>,

    /// complete-part: the part number (1..=total); status: also report whether this part is complete.
    #[arg(short = 'p', long, value_name = "N")]
    part: Option<String>,

    /// set-metadata: JSON to store with the job.
    #[arg(short = 'm', long, value_name = "JSON")]
    metadata: Option<String>,

    /// fail-job: why the job failed.
    #[arg(short = 'r', long, value_name = "TEXT")]
    reason: Option<String>,

    /// The progress table: a DynamoDB table name or ARN, or a SQLite file path (or `file:` URL) for local runs.
    #[arg(long, value_name = "ADDR", env = "ProgressTable")]
    table: Option<String>,

    /// set-total: how a new job records its parts: `counter` (the default: the same cost per part whatever the
    /// job's size) or `set` (the original's, for a table shared with the original's workers). Jobs keep theirs.
    #[arg(long, value_name = "LAYOUT", env = "ProgressLayout")]
    layout: Option<String>,

    /// Print a richer JSON object (complete-part: whether this call finished the job; status: counts).
    #[arg(long)]
    json: bool,

    /// status: keep watching until the job completes (exit 0) or fails (exit 1); a progress bar on a terminal,
    /// a line per change otherwise.
    #[arg(long)]
    watch: bool,

    /// status --watch: seconds between polls.
    #[arg(long, value_name = "SECONDS", default_value = "1")]
    interval: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Status,
    SetTotal,
    SetMetadata,
    CompletePart,
    FailJob,
    ReduceSent,
}

/// What to do, validated before any request.
#[derive(Debug)]
enum Request {
    Status { part: Option<u64>, watch: Option<Duration> },
    SetTotal(u64),
    SetMetadata(serde_json::Value),
    CompletePart(u64),
    FailJob(String),
    ReduceSent,
}

fn positive(flag: &str, value: &str) -> Result<u64, Failure> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Failure::new(format!("{flag} must be a whole number of at least 1, got {value:?}"))),
    }
}

fn required<'a>(value: &'a Option<String>, flag: &str, op: &str) -> Result<&'a str, Failure> {
    value.as_deref().ok_or_else(|| Failure::new(format!("{op} needs {flag}")))
}

fn parse_request(args: &Args) -> Result<(String, Request), Failure> {
    let command = args.command.as_deref().ok_or_else(|| Failure::new(format!("missing command: one of {COMMANDS}")))?;
    let op = match command {
        "status" => Op::Status,
        "set-total" => Op::SetTotal,
        "set-metadata" => Op::SetMetadata,
        "complete-part" => Op::CompletePart,
        "fail-job" => Op::FailJob,
        "reduce-sent" => Op::ReduceSent,
        other => return Err(Failure::new(format!("unknown command {other:?}: use one of {COMMANDS}"))),
    };
    let job = args.job_id.clone().filter(|j| !j.is_empty());
    let job =
        job.ok_or_else(|| Failure::new(format!("{command} needs a job id: watchbot progress {command} <job-id>")))?;
    if args.watch && op != Op::Status {
        return Err(Failure::new("--watch goes with status only"));
    }
    let request = match op {
        Op::Status => {
            let part = args.part.as_deref().map(|p| positive("--part", p)).transpose()?;
            let watch = if args.watch {
                let seconds: f64 =
                    args.interval.trim().parse().ok().filter(|s: &f64| s.is_finite() && *s > 0.0).ok_or_else(|| {
                        Failure::new(format!(
                            "--interval must be a positive number of seconds, got {:?}",
                            args.interval
                        ))
                    })?;
                Some(Duration::from_secs_f64(seconds))
            } else {
                None
            };
            Request::Status { part, watch }
        }
        Op::SetTotal => Request::SetTotal(positive("--total", required(&args.total, "--total N", command)?)?),
        Op::CompletePart => Request::CompletePart(positive("--part", required(&args.part, "--part N", command)?)?),
        Op::SetMetadata => {
            let text = required(&args.metadata, "--metadata JSON", command)?;
            let value = serde_json::from_str(text)
                .map_err(|e| Failure::new(format!("--metadata is not JSON ({e}): {text:?}")))?;
            Request::SetMetadata(value)
        }
        Op::FailJob => Request::FailJob(required(&args.reason, "--reason TEXT", command)?.to_owned()),
        Op::ReduceSent => Request::ReduceSent,
    };
    Ok((job, request))
}

/// Runs `watchbot progress`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let (job, request) = parse_request(&args)?;
    let layout = match args.layout.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => Layout::default(),
        Some(layout) => layout.parse().map_err(|e| Failure::new(format!("--layout (or $ProgressLayout): {e}")))?,
    };
    let table = args
        .table
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::new("no progress table: pass --table ADDR or set $ProgressTable"))?;
    let address: Address =
        table.parse().map_err(|e: watchbot_progress::AddressError| failure(watchbot_progress::Error::from(e)))?;
    let runtime = crate::aws::runtime()?;
    runtime.block_on(async {
        let aws = if address.needs_aws() { Some(crate::aws::load().await) } else { None };
        let store = address.open(aws.as_ref().map(crate::aws::Aws::sdk_config)).await.map_err(failure)?;
        let store = store.with_layout(layout);
        execute(&store, &job, request, args.json).await
    })
}

/// A progress error as a failure: a failed DynamoDB request is a service failure naming the table (one line, no
/// SDK dump); everything else (an unknown job, a part out of range, a bad address, the embedded store) is bad input.
fn failure(error: watchbot_progress::Error) -> Failure {
    match &error {
        watchbot_progress::Error::DynamoDb { operation, table, source } => Failure::service(format!(
            "cannot use DynamoDB table {table} ({operation}): {}",
            crate::aws::explain(source.as_ref())
        )),
        _ => Failure::from_error(&error),
    }
}

fn print_line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| Failure::from(e).context("cannot write to stdout"))
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

async fn execute(store: &AnyStore, job: &str, request: Request, detailed: bool) -> Result<ExitCode, Failure> {
    match request {
        Request::Status { part, watch: None } => {
            let state = store.status(job, part).await.map_err(failure)?;
            print_line(&status_line(job, state.as_ref(), detailed))?;
        }
        Request::Status { part, watch: Some(interval) } => return watch(store, job, part, interval, detailed).await,
        Request::SetTotal(total) => {
            let outcome = store.set_total(job, total).await.map_err(failure)?;
            if detailed {
                print_line(&to_json(&json!({"job": job, "total": total, "created": outcome == SetTotal::Created})))?;
            }
        }
        Request::CompletePart(part) => {
            let done = store.complete_part(job, part).await.map_err(failure)?;
            if detailed {
                print_line(&to_json(&json!({
                    "job": job,
                    "part": part,
                    "complete": done.all_done,
                    "finished": done.finished_job,
                    "replay": done.replay,
                    "remaining": done.remaining,
                })))?;
            } else {
                print_line(if done.all_done { "true" } else { "false" })?;
            }
        }
        Request::SetMetadata(metadata) => {
            store.set_metadata(job, &metadata).await.map_err(failure)?;
            if detailed {
                print_line(&to_json(&json!({"job": job, "metadata": metadata})))?;
            }
        }
        Request::FailJob(reason) => {
            store.fail_job(job, &reason).await.map_err(failure)?;
            if detailed {
                print_line(&to_json(&json!({"job": job, "failed": reason})))?;
            }
        }
        Request::ReduceSent => {
            let first = store.reduce_sent(job).await.map_err(failure)?;
            if detailed {
                print_line(&to_json(&json!({"job": job, "reduceSent": true, "first": first})))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_line(job: &str, state: Option<&JobState>, detailed: bool) -> String {
    if detailed { to_json(&status_json_detailed(job, state)) } else { to_json(&status_json(state)) }
}

/// Polls the status until the job completes (exit 0) or fails (exit 1). On a terminal an indicatif bar is redrawn;
/// otherwise a status line is printed whenever it changes, so logs and pipes get a readable history.
async fn watch(
    store: &AnyStore,
    job: &str,
    part: Option<u64>,
    interval: Duration,
    detailed: bool,
) -> Result<ExitCode, Failure> {
    let terminal = std::io::stdout().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut last_line = String::new();
    loop {
        let Some(state) = store.status(job, part).await.map_err(failure)? else {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return Err(Failure::new(format!("job {job:?} not found (set its total first)")));
        };
        if terminal {
            let bar = bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(state.total);
                let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} parts {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(job.to_owned());
                bar
            });
            bar.set_position(state.total - state.remaining.min(state.total));
        } else {
            let line = status_line(job, Some(&state), detailed);
            if line != last_line {
                print_line(&line)?;
                last_line = line;
            }
        }
        if let Some(reason) = &state.failed {
            if let Some(bar) = &bar {
                bar.abandon_with_message(format!("failed: {reason}"));
            }
            return Err(Failure::new(format!("job {job:?} failed: {reason}")));
        }
        if state.is_complete() {
            if let Some(bar) = &bar {
                bar.finish_with_message("complete");
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(interval).await;
    }
}
