//! The watcher's own terminal output: every line the watcher writes to stdout or stderr (events, forwarded task
//! output, local notifications) goes through [`write()`], which writes whole lines under one lock. A front end that
//! draws a live status line on stderr (`watchbot local`) sets it with [`set_status`]: each write then clears that
//! line first and redraws it after, so output and the status line never share a line.

use std::io::Write;
use std::sync::Mutex;

/// Which of the watcher's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The live status line drawn on stderr, if any.
static STATUS: Mutex<Option<String>> = Mutex::new(None);

const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

fn status() -> std::sync::MutexGuard<'static, Option<String>> {
    STATUS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `bytes` (whole lines) to `stream` in one `write_all`, around the status line. Errors (a closed stream)
/// are ignored: the watcher must not stop because nobody reads its output.
pub fn write(stream: Stream, bytes: &[u8]) {
    let status = status();
    let mut stderr = std::io::stderr().lock();
    if status.is_some() {
        let _ = stderr.write_all(CLEAR_LINE);
    }
    match stream {
        Stream::Stderr => drop(stderr.write_all(bytes)),
        Stream::Stdout => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
        }
    }
    if let Some(line) = status.as_deref() {
        let _ = stderr.write_all(line.as_bytes());
    }
    let _ = stderr.flush();
}

/// Draws `line` as the live status line on stderr (no newline), replacing the one drawn before; `None` clears it
/// and stops redrawing it.
pub fn set_status(line: Option<String>) {
    let mut status = status();
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(CLEAR_LINE);
    if let Some(line) = line.as_deref() {
        let _ = stderr.write_all(line.as_bytes());
    }
    let _ = stderr.flush();
    *status = line;
}
