//! `watchbot template`: not built yet.

use crate::Failure;
use std::process::ExitCode;

/// Arguments of `watchbot template`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `watchbot template`.
pub fn run(_args: Args) -> Result<ExitCode, Failure> {
    Err(Failure::new("`watchbot template` is not built yet"))
}
