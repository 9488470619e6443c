//! `watchbot progress`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot progress`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot progress`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot progress` is not built yet"))
}
