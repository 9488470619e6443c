//! `watchbot send`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot send`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot send`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot send` is not built yet"))
}
