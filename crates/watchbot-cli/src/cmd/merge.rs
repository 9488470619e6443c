//! `watchbot merge`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot merge`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot merge`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot merge` is not built yet"))
}
