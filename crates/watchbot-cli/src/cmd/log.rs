//! `watchbot log [TEXT...]` (and `watchbot-log`): prints the text, or each line of stdin as soon as it is read,
//! prefixed with the time and the message id (`$MessageId`), or as JSON lines with `--json`.

use crate::Failure;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use watchbot_log::{Format, Logger};

/// Arguments of `watchbot log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Text to log as one line (the words joined by spaces). Without text, each line of stdin is logged.
    text: Vec<String>,

    /// Write JSON lines (`{"time","messageId","msg"}`) instead of the `[time] [worker] [id] text` format.
    #[arg(long)]
    json: bool,

    /// The message id to prefix lines with; unset or empty gives `no-message-id`.
    #[arg(long, env = "MessageId", hide_env_values = true)]
    message_id: Option<String>,
}

/// Runs `watchbot log`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let format = if args.json { Format::Json } else { Format::Text };
    let logger = Logger::new(args.message_id.as_deref()).with_format(format);
    let stdout = std::io::stdout();
    if !args.text.is_empty() {
        let mut out = stdout.lock();
        logger.write_to(&mut out, &args.text.join(" ")).and_then(|()| out.flush()).map_err(write_failure)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Stream: each line is written and flushed as soon as it is read, so a long-running producer's lines show up
    // at once. stdout is locked once; its own line buffering is bypassed by the explicit flush.
    let mut input = std::io::stdin().lock();
    let mut writer = logger.writer(stdout.lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input.read_until(b'\n', &mut line).map_err(|e| Failure::from(e).context("cannot read stdin"))?;
        if read == 0 {
            break;
        }
        // A line without its newline (the last one) is written out by the flush.
        writer.write_all(&line).and_then(|()| writer.flush()).map_err(write_failure)?;
    }
    let _stdout = writer.finish().map_err(write_failure)?;
    Ok(ExitCode::SUCCESS)
}

fn write_failure(error: std::io::Error) -> Failure {
    Failure::from(error).context("cannot write to stdout")
}
