//! The `watchbot` command line: thin glue over the library crates.
//!
//! One module per subcommand in [`cmd`], each with its clap `Args` and a `run(args) -> Result<ExitCode, Failure>`.
//! Only this crate reads the process environment for configuration; it hands the libraries typed configs.
//! Errors become one line on stderr (`watchbot: <what failed>`) and exit code 1; clap's usage errors exit 2.

pub mod aws;
pub mod cmd;
mod failure;

pub use failure::Failure;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
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
}

/// Entry point of the `watchbot` binary.
pub fn main() -> ExitCode {
    dispatch(Cli::parse())
}

/// Entry point of a binary that stands for one subcommand (`watchbot-log` is `watchbot log`).
pub fn main_as(subcommand: &str) -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let program = args.first().cloned().unwrap_or_else(|| OsString::from("watchbot"));
    args.splice(0..1.min(args.len()), [program, OsString::from(subcommand)]);
    dispatch(Cli::parse_from(args))
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
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("watchbot: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
