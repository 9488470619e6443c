//! `watchbot template`: a watchbot config (JSON options) → the CloudFormation template, or its `.ref`s.

use crate::Failure;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `watchbot template`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The options, as a JSON file (the original's camelCase names; see the README).
    #[arg(long, value_name = "FILE.json")]
    pub config: PathBuf,
    /// Write the template here instead of stdout (atomically: a complete file or none).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the `.ref`s (references into the template, for your own Outputs and resources) instead.
    #[arg(long)]
    pub refs: bool,
}

/// Runs `watchbot template`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| Failure::from_error(&e).context(format!("cannot read {}", args.config.display())))?;
    let options = watchbot_template::Options::from_json_str(&text)
        .map_err(|e| Failure::from_error(&e).context(args.config.display()))?;
    let template =
        watchbot_template::template(&options).map_err(|e| Failure::from_error(&e).context(args.config.display()))?;
    for warning in options.warnings() {
        eprintln!("watchbot: warning: {}: {warning}", args.config.display());
    }
    let value = if args.refs { serde_json::to_value(template.refs())? } else { template.to_json() };
    super::merge::write_json(&value, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
