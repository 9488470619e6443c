//! `watchbot local`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot local`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot local`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot local` is not built yet"))
}
