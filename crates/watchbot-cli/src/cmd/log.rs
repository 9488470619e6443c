//! `watchbot log [TEXT...]` (and `watchbot-log`): prints the text, or each line of stdin as soon as it is read,
//! prefixed with the time and the message id (`$MessageId`), or as JSON lines with `--json`.

use crate::Failure;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use watchbot_log::{Format, Logger};

/// Arguments of `watchbot log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Text to log as one line (the words joined by spaces). Without text, each line of stdin is logged. Bytes
    /// that are not UTF-8 pass through as they do from stdin.
    text: Vec<std::ffi::OsString>,

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
        use std::os::unix::ffi::OsStrExt;
        let words: Vec<&[u8]> = args.text.iter().map(|word| word.as_bytes()).collect();
        let mut line = words.join(&b' ');
        line.push(b'\n');
        // Through the same prefixing writer as stdin's lines (a newline in the text starts a new prefixed line).
        let mut writer = logger.writer(stdout.lock());
        writer.write_all(&line).map_err(write_failure)?;
        writer.finish().map_err(write_failure)?.flush().map_err(write_failure)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Stream: whatever stdin has is handed to the prefixing writer as it arrives (fill_buf/consume, never a whole
    // line in memory), and stdout is flushed after each chunk, so a long-running producer's lines show up at once.
    // The writer holds at most one partial line, cut at its `max_line`: a `\r` progress bar or binary input without
    // newlines cannot grow memory without bound. Only stdout is flushed per chunk, not the writer: its flush would
    // end a held partial line, splitting a line that arrives in two reads.
    let mut input = std::io::stdin().lock();
    let mut writer = logger.writer(stdout.lock());
    loop {
        let chunk = match input.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::from(e).context("cannot read stdin")),
        };
        let taken = chunk.len();
        writer.write_all(chunk).and_then(|()| writer.get_mut().flush()).map_err(write_failure)?;
        input.consume(taken);
    }
    // A last line without its newline is written out here.
    let _stdout = writer.finish().map_err(write_failure)?;
    Ok(ExitCode::SUCCESS)
}

fn write_failure(error: std::io::Error) -> Failure {
    Failure::from(error).context("cannot write to stdout")
}
