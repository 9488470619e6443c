//! `watchbot merge`: CloudFormation templates (JSON files) → one template; conflicting keys are an error.

use crate::Failure;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `watchbot merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The templates, merged in this order (JSON).
    #[arg(required = true, value_name = "TEMPLATE.json")]
    pub templates: Vec<PathBuf>,
    /// Write the merged template here instead of stdout (atomically: a complete file or none).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `watchbot merge`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut templates = Vec::with_capacity(args.templates.len());
    for path in &args.templates {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::from_error(&e).context(format!("cannot read {}", path.display())))?;
        let value: serde_json::Value = watchbot_template::parse_strict(&text)
            .map_err(|e| Failure::from_error(&e).context(format!("{} is not valid JSON", path.display())))?;
        templates.push(value);
    }
    let merged = watchbot_template::merge(&templates).map_err(|e| {
        // The library counts templates from 0; name the file instead.
        let message = name_files(&e.to_string(), &args.templates);
        Failure::new(message)
    })?;
    write_json(&merged, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Replaces `template N` in a merge error with the file's path.
fn name_files(message: &str, paths: &[PathBuf]) -> String {
    let mut message = message.to_string();
    for (index, path) in paths.iter().enumerate().rev() {
        message = message.replace(&format!("template {index} "), &format!("{} ", path.display()));
        message = message.replace(&format!("template {index}:"), &format!("{}:", path.display()));
    }
    message
}

/// Writes pretty JSON with a final newline to stdout, or to `output` through a temporary file in the same folder
/// renamed into place, so a failure never leaves a partial template behind.
pub(crate) fn write_json(value: &serde_json::Value, output: Option<&Path>) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    match output {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::from_error(&e).context("cannot write to stdout"))?;
        }
        Some(path) => {
            let context = || format!("cannot write {}", path.display());
            let name =
                path.file_name().ok_or_else(|| Failure::new(format!("{} is not a file name", path.display())))?;
            // Same folder, so the rename is atomic; the pid keeps two concurrent runs apart.
            let temporary = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
            let written = std::fs::File::create(&temporary)
                .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()))
                .and_then(|()| std::fs::rename(&temporary, path));
            if let Err(error) = written {
                let _ = std::fs::remove_file(&temporary);
                return Err(Failure::from_error(&error).context(context()));
            }
        }
    }
    Ok(())
}
