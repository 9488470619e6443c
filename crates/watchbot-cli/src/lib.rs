//! The `watchbot` command line: thin glue over the library crates.
//!
//! One module per subcommand in [`cmd`], each with its clap `Args` and a `run(args) -> Result<ExitCode, Failure>`.
//! Only this crate reads the process environment for configuration; it hands the libraries typed configs.
//! Errors become one line on stderr (`watchbot: <what failed>`) and an exit code ([`Exit`]): 1 for bad input or
//! configuration, 2 for usage (clap's own), 69 when a service could not be reached or used. [`aws`] is the one
//! module that reaches AWS (through `watchbot_watcher::aws`); this crate names no SDK crate.

pub mod aws;
pub mod cmd;
pub mod container;
mod failure;
pub mod messages;

pub use failure::{Exit, Failure};

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Run data processing tasks in response to queued messages, on AWS or locally.
#[derive(Debug, Parser)]
#[command(name = "watchbot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CloudFormation template for a watchbot config.
    Template(cmd::template::Args),
    /// Merge CloudFormation templates into one.
    Merge(cmd::merge::Args),
    /// Run the watcher: poll the queue and run one task per message.
    Watch(cmd::watch::Args),
    /// Send a message to a topic or queue (what a worker uses for follow-up work).
    Send(cmd::send::Args),
    /// Print log lines prefixed with the time and the message id.
    Log(cmd::log::Args),
    /// Track reduce-mode progress of a map-reduce job.
    Progress(cmd::progress::Args),
    /// Run the whole loop on this machine, on an embedded queue.
    Local(cmd::local::Args),
    /// Show what is in a queue: visible, in flight, delayed, dead letters (locally or on SQS).
    Status(cmd::status::Args),
    /// List, show, redrive, delete or purge the messages in a queue's dead-letter queue.
    DeadLetter(cmd::dead_letter::Args),
    /// Show every attempt of a message with its task's output (local history, or CloudWatch Logs).
    Logs(cmd::logs::Args),
    /// Serve a dashboard of a queue in the browser: counts, outcomes, failures, dead letters, jobs.
    Dashboard(cmd::dashboard::Args),
    /// Decrypt the environment's `secure:` (KMS) values: exec COMMAND with them, or print `export` lines for eval.
    DecryptEnv(cmd::decrypt_env::Args),
}

/// Set (to anything) to print the full underlying error after a failure's one line.
pub const DEBUG_VARIABLE: &str = "WATCHBOT_DEBUG";

/// Entry point of the `watchbot` binary.
pub fn main() -> ExitCode {
    dispatch(Cli::parse())
}

/// Entry point of a binary that stands for one subcommand under the original's name (`watchbot-log` is
/// `watchbot log`): the same arguments, and help and usage that name the binary.
pub fn main_as<A: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    subcommand: &str,
    run: fn(A) -> Result<ExitCode, Failure>,
) -> ExitCode {
    let about = Cli::command().find_subcommand(subcommand).and_then(|c| c.get_about().cloned());
    let command =
        A::augment_args(clap::Command::new(name).version(env!("CARGO_PKG_VERSION"))).about(about.unwrap_or_default());
    let args = match A::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    report(run(args))
}

fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Template(args) => cmd::template::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Watch(args) => cmd::watch::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Log(args) => cmd::log::run(args),
        Command::Progress(args) => cmd::progress::run(args),
        Command::Local(args) => cmd::local::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::DeadLetter(args) => cmd::dead_letter::run(args),
        Command::Logs(args) => cmd::logs::run(args),
        Command::Dashboard(args) => cmd::dashboard::run(args),
        Command::DecryptEnv(args) => cmd::decrypt_env::run(args),
    };
    report(result)
}

fn report(result: Result<ExitCode, Failure>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("watchbot: {failure}");
            // The full error (an SDK error's `Debug` dump) only when asked for: it is for bug reports, not people.
            if let Some(detail) = failure.detail().filter(|_| std::env::var_os(DEBUG_VARIABLE).is_some()) {
                eprintln!("watchbot: debug: {detail}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
