//! `watchbot progress <command> <job-id>` (and `watchbot-progress`): reduce-mode progress of a map-reduce job, in
//! the DynamoDB table or the embedded store that `--table` / `$ProgressTable` names.
//!
//! Output as the original's: complete-part prints `true`/`false` (are all parts complete), status prints the
//! status JSON, the other commands print nothing. `--json` prints a richer JSON object for every command.
//! Each subcommand has its own flags and `--help`; a usage error (a missing or unknown flag, one that does not
//! apply to the subcommand) exits 2, a bad value or an unknown job is one line on stderr and exit 1, and a DynamoDB
//! request that fails (unreachable, no credentials, access denied, no such table) is one line naming the table and
//! exit 69. A local store's folder must exist, and only `set-total` creates a store file.

use crate::Failure;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use watchbot_progress::{Address, AnyStore, JobState, Layout, SetTotal, Store, status_json, status_json_detailed};

/// Arguments of `watchbot progress`: one subcommand, each with its own flags and `--help`.
#[derive(Debug, clap::Args)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the job's status JSON (`{"progress": 0..1, ...}`); `--watch` follows it until the job ends.
    Status {
        #[command(flatten)]
        common: Common,
        /// Also report whether this part is complete (`partComplete`).
        #[arg(short = 'p', long, value_name = "N")]
        part: Option<String>,
        /// Keep watching until the job completes (exit 0) or fails (exit 1): a progress bar on a terminal, a line
        /// per change otherwise. A job that does not exist yet is waited for.
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between polls.
        #[arg(long, value_name = "SECONDS", default_value = "1", requires = "watch")]
        interval: String,
        /// With --watch: give up (exit 1) after this many seconds.
        #[arg(long, value_name = "SECONDS", requires = "watch")]
        timeout: Option<String>,
    },
    /// Set the number of parts of a new job (1 to 1,000,000,000; to 50,000 in the set layout); the same total again
    /// is a no-op.
    SetTotal {
        #[command(flatten)]
        common: Common,
        /// The number of parts.
        #[arg(short = 't', long, value_name = "N", required = true)]
        total: String,
    },
    /// Store JSON metadata with the job (for the reduce step).
    SetMetadata {
        #[command(flatten)]
        common: Common,
        /// The metadata, as JSON.
        #[arg(short = 'm', long, value_name = "JSON", required = true)]
        metadata: String,
    },
    /// Mark a part complete; prints whether all parts are now complete (`true`/`false`).
    CompletePart {
        #[command(flatten)]
        common: Common,
        /// The part number (1..=total).
        #[arg(short = 'p', long, value_name = "N", required = true)]
        part: String,
    },
    /// Mark the job failed, with why.
    FailJob {
        #[command(flatten)]
        common: Common,
        /// Why the job failed.
        #[arg(short = 'r', long, value_name = "TEXT", required = true)]
        reason: String,
    },
    /// Record that the reduce message was sent (so a replayed last part does not send it again).
    ReduceSent {
        #[command(flatten)]
        common: Common,
    },
}

/// What every subcommand takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// The job's id (any non-empty text, e.g. the id the map step generated).
    #[arg(value_name = "JOB_ID", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    job_id: String,

    /// The progress table: a DynamoDB table name or ARN, or a SQLite file path (or `file:` URL) for local runs.
    #[arg(long, value_name = "ADDR", env = "ProgressTable", hide_env_values = true)]
    table: Option<String>,

    /// How a new job records its parts (set-total): `counter` (the default: the same cost per part whatever the
    /// job's size) or `set` (the original's, for a table shared with the original's workers). Jobs keep theirs.
    #[arg(long, value_name = "LAYOUT", env = "ProgressLayout", hide_env_values = true)]
    layout: Option<String>,

    /// Print a richer JSON object (complete-part: whether this call finished the job; status: counts).
    #[arg(long)]
    json: bool,
}

/// What to do, validated before any request.
#[derive(Debug)]
enum Request {
    Status { part: Option<u64>, watch: Option<Watch> },
    SetTotal(u64),
    SetMetadata(serde_json::Value),
    CompletePart(u64),
    FailJob(String),
    ReduceSent,
}

/// How `status --watch` polls.
#[derive(Debug, Clone, Copy)]
struct Watch {
    interval: Duration,
    timeout: Option<Duration>,
}

fn positive(flag: &str, value: &str) -> Result<u64, Failure> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Failure::new(format!("{flag} must be a whole number of at least 1, got {value:?}"))),
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, Failure> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Failure::new(format!("{flag} must be a positive number of seconds, got {value:?}")))
}

/// The request and the flags every command shares; values are checked here (exit 1), usage by clap (exit 2).
fn parse_request(command: Command) -> Result<(Common, Request), Failure> {
    Ok(match command {
        Command::Status { common, part, watch, interval, timeout } => {
            let part = part.as_deref().map(|p| positive("--part", p)).transpose()?;
            let watch = watch
                .then(|| {
                    Ok::<_, Failure>(Watch {
                        interval: seconds("--interval", &interval)?,
                        timeout: timeout.as_deref().map(|t| seconds("--timeout", t)).transpose()?,
                    })
                })
                .transpose()?;
            (common, Request::Status { part, watch })
        }
        Command::SetTotal { common, total } => (common, Request::SetTotal(positive("--total", &total)?)),
        Command::CompletePart { common, part } => (common, Request::CompletePart(positive("--part", &part)?)),
        Command::SetMetadata { common, metadata } => {
            let value = watchbot_template::parse_strict(&metadata)
                .map_err(|e| Failure::new(format!("--metadata is not JSON ({e}): {metadata:?}")))?;
            (common, Request::SetMetadata(value))
        }
        Command::FailJob { common, reason } => (common, Request::FailJob(reason)),
        Command::ReduceSent { common } => (common, Request::ReduceSent),
    })
}

/// A local store must be where `watchbot local` (or a `set-total`) made it: a folder that does not exist is a typo
/// or the wrong working directory, and creating a store there would track the job where no worker looks. Only
/// `set-total` creates a store file, in an existing folder.
fn check_local_store(path: &std::path::Path, creates: bool) -> Result<(), Failure> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !folder.is_dir() {
        return Err(Failure::new(format!(
            "--table {}: the folder {} does not exist (`watchbot local` creates its store in its state folder)",
            path.display(),
            folder.display()
        )));
    }
    if !creates && !path.exists() {
        return Err(Failure::new(format!(
            "--table {}: progress store not found (no such file; `watchbot local` or `set-total` creates it)",
            path.display()
        )));
    }
    Ok(())
}

/// Runs `watchbot progress`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let (common, request) = parse_request(args.command)?;
    let layout = match common.layout.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => Layout::default(),
        Some(layout) => layout.parse().map_err(|e| Failure::new(format!("--layout (or $ProgressLayout): {e}")))?,
    };
    let table = common
        .table
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::new("no progress table: pass --table ADDR or set $ProgressTable"))?;
    let address: Address =
        table.parse().map_err(|e: watchbot_progress::AddressError| failure(watchbot_progress::Error::from(e)))?;
    if let Address::Local { path } = &address {
        check_local_store(path, matches!(request, Request::SetTotal(_)))?;
    }
    let runtime = crate::aws::runtime()?;
    runtime.block_on(async {
        let aws = if address.needs_aws() { Some(crate::aws::load().await) } else { None };
        let store = address.open(aws.as_ref().map(crate::aws::Aws::sdk_config)).await.map_err(failure)?;
        let store = store.with_layout(layout);
        execute(&store, &common.job_id, request, common.json).await
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
        Request::Status { part, watch: Some(how) } => return watch(store, job, part, how, detailed).await,
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
    // The plain form byte for byte as the original prints it (`StatusReport`'s Display).
    if detailed { to_json(&status_json_detailed(job, state)) } else { status_json(state).to_string() }
}

/// Polls the status until the job completes (exit 0) or fails (exit 1). On a terminal an indicatif bar is redrawn;
/// otherwise a status line is printed whenever it changes, so logs and pipes get a readable history.
async fn watch(
    store: &AnyStore,
    job: &str,
    part: Option<u64>,
    how: Watch,
    detailed: bool,
) -> Result<ExitCode, Failure> {
    let terminal = std::io::stdout().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut last_line = String::new();
    let deadline = how.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut said_waiting = false;
    loop {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            let seconds = how.timeout.unwrap_or_default().as_secs_f64();
            return Err(Failure::new(format!("job {job:?}: --timeout of {seconds} s reached before it ended")));
        }
        let Some(state) = store.status(job, part).await.map_err(failure)? else {
            // The map step may not have set the total yet: wait for the job, saying so once.
            if !said_waiting {
                eprintln!("watchbot: job {job:?} does not exist yet (no total set): waiting for it to appear");
                said_waiting = true;
            }
            tokio::time::sleep(how.interval).await;
            continue;
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
        tokio::time::sleep(how.interval).await;
    }
}
