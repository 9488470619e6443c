//! `watchbot watch`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot watch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot watch`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot watch` is not built yet"))
}
