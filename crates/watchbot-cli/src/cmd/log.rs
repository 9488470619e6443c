//! `watchbot log`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot log`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot log`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot log` is not built yet"))
}
