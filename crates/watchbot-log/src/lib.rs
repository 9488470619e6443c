//! Worker log lines prefixed with the time and the message id: `[<RFC 1123 time>] [worker] [<MessageId>] text`.
//!
//! The format is the original watchbot's, so existing log searches keep working:
//!
//! ```text
//! [Thu, 28 Jul 2016 00:12:37 GMT] [worker] [e2c045cc-5606-4950-964b-20877900bccb] eggs and beans
//! ```
//!
//! - [`log!`] writes one line to stdout with the process's `$MessageId` (the task environment watchbot gives a worker).
//! - [`Logger`] is the typed form: a message id, a [`Format`] (text or JSON lines) and a [`Clock`] (a seam for tests).
//! - [`PrefixWriter`] (sync, [`std::io::Write`]) and [`AsyncPrefixWriter`] (tokio [`AsyncWrite`](tokio::io::AsyncWrite)) prefix every line
//!   written through them, so a child's stdout can be piped through one (the original's `logStream`). A partial line
//!   is held until its newline, until it reaches [`WriterConfig::max_line`] bytes, or until the writer is done with
//!   it: sync `flush`/`finish`/drop, async `shutdown`/[`AsyncPrefixWriter::flush_partial_line`]. The async `flush`
//!   keeps it held, because `tokio::io::copy` flushes whenever its reader pauses and must not split lines.
//!   Bytes that are not UTF-8 pass through unchanged in text format (JSON lines replace them with U+FFFD).
//!
//! When `$MessageId` is unset or empty the id is [`NO_MESSAGE_ID`] (`no-message-id`), not the original's `undefined`.
//!
//! In a worker (the README's example; it runs `echo` as the child):
//!
//! ```rust
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::io::Write;
//!
//! watchbot_log::log!("processing {} tiles", 42);           // one line on stdout, $MessageId from the task's env
//!
//! // Prefix everything a child writes (the original's logStream); partial lines wait for their newline.
//! let logger = watchbot_log::Logger::from_env();
//! let mut child = tokio::process::Command::new("echo").arg("tile 1 of 42")
//!     .stdout(std::process::Stdio::piped()).spawn()?;
//! let mut out = logger.async_writer(tokio::io::stdout());
//! tokio::io::copy(&mut child.stdout.take().unwrap(), &mut out).await?;
//! tokio::io::AsyncWriteExt::shutdown(&mut out).await?;      // writes a last line without newline
//!
//! let mut sync = logger.writer(std::io::stderr());          // std::io::Write works the same way
//! writeln!(sync, "done")?;
//! # child.wait().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A fixed message id and clock give a line to compare:
//!
//! ```rust
//! use std::time::{Duration, UNIX_EPOCH};
//! use watchbot_log::{FixedClock, Logger};
//!
//! let logger = Logger::new(Some("e2c045cc-5606-4950-964b-20877900bccb"))
//!     .with_clock(FixedClock(UNIX_EPOCH + Duration::from_secs(1_469_664_757)));
//! assert_eq!(
//!     logger.render("eggs and beans"),
//!     "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [e2c045cc-5606-4950-964b-20877900bccb] eggs and beans\n"
//! );
//! ```

// Every public item says what it is for (a library users depend on).
#![warn(missing_docs)]

mod writer;

pub use writer::{AsyncPrefixWriter, PrefixWriter, WriterConfig};

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The id written when a line has no message id (`$MessageId` unset or empty: e.g. a script run by hand).
pub const NO_MESSAGE_ID: &str = "no-message-id";

/// The environment variable the watcher sets to the id of the message a task processes.
pub const MESSAGE_ID_VAR: &str = "MessageId";

/// Where log lines get their time: the system clock, or a fixed one in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always answers the same time (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// How a line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `[<RFC 1123 time>] [worker] [<MessageId>] text`, the original's format.
    #[default]
    Text,
    /// One JSON object per line: `{"time":"2016-07-28T00:12:37.000Z","messageId":"…","msg":"…"}`; `messageId` is
    /// `null` when there is none.
    Json,
}

/// Writes log lines for one message id in one format, with one clock.
#[derive(Clone)]
pub struct Logger {
    message_id: Option<String>,
    format: Format,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("message_id", &self.message_id).field("format", &self.format).finish()
    }
}

impl Logger {
    /// A text logger for `message_id` (`None` or empty: [`NO_MESSAGE_ID`]) on the system clock.
    pub fn new(message_id: Option<&str>) -> Logger {
        let message_id = message_id.filter(|id| !id.is_empty()).map(str::to_owned);
        Logger { message_id, format: Format::Text, clock: Arc::new(SystemClock) }
    }

    /// A text logger for the `$MessageId` of this process: what a worker running under watchbot wants.
    ///
    /// This reads the task's environment on purpose: `$MessageId` is how watchbot hands the message to a worker.
    pub fn from_env() -> Logger {
        Logger::new(std::env::var(MESSAGE_ID_VAR).ok().as_deref())
    }

    /// The same logger writing `format`.
    pub fn with_format(mut self, format: Format) -> Logger {
        self.format = format;
        self
    }

    /// The same logger reading time from `clock`.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Logger {
        self.clock = Arc::new(clock);
        self
    }

    /// The message id lines carry, if any.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// The format lines are written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// `text` as log lines, each ending in `\n`. Text with several lines gives one prefixed line per line, so every
    /// line can be found by its message id; empty text gives one line with empty text.
    pub fn render(&self, text: &str) -> String {
        let mut out = Vec::new();
        self.render_bytes_into(text.as_bytes(), &mut out);
        // Valid UTF-8 in, valid UTF-8 out.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends `text` (any bytes) as log lines to `out`. Text format copies the bytes unchanged after the prefix.
    pub fn render_bytes_into(&self, text: &[u8], out: &mut Vec<u8>) {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let now = self.clock.now();
        for line in text.split(|b| *b == b'\n') {
            self.render_line_at(now, line, out);
        }
    }

    /// Appends exactly one line (`line` holds no `\n`) at the clock's time: what the writers use.
    pub(crate) fn render_one(&self, line: &[u8], out: &mut Vec<u8>) {
        self.render_line_at(self.clock.now(), line, out);
    }

    /// Appends exactly one line (which must not contain `\n`) at time `now`.
    fn render_line_at(&self, now: SystemTime, line: &[u8], out: &mut Vec<u8>) {
        match self.format {
            Format::Text => {
                let id = self.message_id.as_deref().unwrap_or(NO_MESSAGE_ID);
                let _ = write!(out, "[{}] [worker] [{id}] ", httpdate::fmt_http_date(now));
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            Format::Json => {
                let entry = JsonLine {
                    time: rfc3339_millis(now),
                    message_id: self.message_id.as_deref(),
                    msg: String::from_utf8_lossy(line),
                };
                let _ = serde_json::to_writer(&mut *out, &entry);
                out.push(b'\n');
            }
        }
    }

    /// Writes `text` as log lines to `out` in one `write_all`, so lines from several threads do not interleave.
    pub fn write_to(&self, out: &mut impl Write, text: &str) -> std::io::Result<()> {
        out.write_all(self.render(text).as_bytes())
    }

    /// Writes `text` as log lines to stdout; errors (a closed stdout) are ignored, as `println!` users expect from
    /// a logger that must not take the worker down.
    pub fn log(&self, text: &str) {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        let _ = self.write_to(&mut lock, text).and_then(|()| lock.flush());
    }

    /// A writer that prefixes every line written to it and passes the lines to `inner`.
    pub fn writer<W: Write>(&self, inner: W) -> PrefixWriter<W> {
        PrefixWriter::new(self.clone(), inner, WriterConfig::default())
    }

    /// An async writer that prefixes every line written to it and passes the lines to `inner`.
    pub fn async_writer<W: tokio::io::AsyncWrite + Unpin>(&self, inner: W) -> AsyncPrefixWriter<W> {
        AsyncPrefixWriter::new(self.clone(), inner, WriterConfig::default())
    }
}

/// One JSON log line, fields in this order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: String,
    #[serde(rename = "messageId")]
    message_id: Option<&'a str>,
    msg: std::borrow::Cow<'a, str>,
}

/// The process-wide logger of [`log!`]: text format, `$MessageId` read once.
pub fn default_logger() -> &'static Logger {
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    LOGGER.get_or_init(Logger::from_env)
}

/// Writes one log line to stdout with `format!` arguments, prefixed with the time and this process's `$MessageId`:
///
/// ```
/// let breakfast = "eggs and beans";
/// watchbot_log::log!("This is something that I want logged: {breakfast}");
/// // [Thu, 28 Jul 2016 00:12:37 GMT] [worker] [e2c045cc-…] This is something that I want logged: eggs and beans
/// ```
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::default_logger().log(&::std::format!($($arg)*))
    };
}

/// `2016-07-28T00:12:37.000Z`: the time of JSON lines, which log tools parse more readily than RFC 1123.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

// Howard Hinnant's days → civil date algorithm (proleptic Gregorian), so no date crate is needed.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Thu, 28 Jul 2016 00:12:37 GMT: the original README's example.
    pub(crate) fn example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_469_664_757)
    }

    fn logger(id: Option<&str>) -> Logger {
        Logger::new(id).with_clock(FixedClock(example_time()))
    }

    #[test]
    fn text_line_matches_the_original_byte_for_byte() {
        let line = logger(Some("e2c045cc-5606-4950-964b-20877900bccb")).render("eggs and beans");
        assert_eq!(
            line,
            "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [e2c045cc-5606-4950-964b-20877900bccb] eggs and beans\n"
        );
    }

    #[test]
    fn missing_or_empty_message_id_gets_the_placeholder() {
        let expected = "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [no-message-id] hi\n";
        assert_eq!(logger(None).render("hi"), expected);
        assert_eq!(logger(Some("")).render("hi"), expected);
    }

    #[test]
    fn every_line_of_multi_line_text_is_prefixed() {
        let out = logger(Some("m")).render("one\ntwo\n");
        assert_eq!(
            out,
            "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m] one\n[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m] two\n"
        );
        assert_eq!(logger(Some("m")).render(""), "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m] \n");
    }

    #[test]
    fn json_lines_carry_time_id_and_text() {
        let out = logger(Some("m-1")).with_format(Format::Json).render("a \"quoted\" word");
        assert_eq!(
            out,
            "{\"time\":\"2016-07-28T00:12:37.000Z\",\"messageId\":\"m-1\",\"msg\":\"a \\\"quoted\\\" word\"}\n"
        );
        let out = logger(None).with_format(Format::Json).render("x");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["messageId"], serde_json::Value::Null);
    }

    #[test]
    fn invalid_utf8_passes_through_in_text_format() {
        let mut out = Vec::new();
        logger(Some("m")).render_bytes_into(b"caf\xe9", &mut out);
        assert!(out.ends_with(b"[m] caf\xe9\n"), "{out:?}");
    }

    #[test]
    fn rfc3339_handles_leap_years_and_millis() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.250Z
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_250);
        assert_eq!(rfc3339_millis(t), "2024-02-29T23:59:59.250Z");
        assert_eq!(rfc3339_millis(example_time()), "2016-07-28T00:12:37.000Z");
    }
}
