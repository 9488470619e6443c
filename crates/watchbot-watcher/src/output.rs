//! A task's output, captured by its runner: bytes in, whole lines out. Each line is forwarded to the watcher's own
//! output ([`OutputSink`]; by default the [`crate::console`]) prefixed with the message id by
//! `watchbot-log` (`[<time>] [worker] [<message id>] line`, or a JSON line), and the last
//! [`OutputConfig::tail_bytes`] of it are kept for the notification and the history ([`TaskOutput::Tail`]).
//!
//! Runner-neutral: the process runner feeds it from its pipes; a container runner reading a log stream could feed it
//! the same way. Bounded: a line longer than [`OutputConfig::max_line`] is cut there (the cut says so, the rest of
//! that line is dropped and counted), the tail is a bounded buffer of whole lines, and nothing else is held, so a
//! task that floods its output costs at most `max_line` + 2 × `tail_bytes` per stream. The runner reads only as
//! fast as the sink takes lines, so a flood slows the task down (its pipe fills) rather than growing memory.
//!
//! A line the task already wrote in that text format for its own message id (a worker using `watchbot log`) is
//! forwarded as it is, not prefixed twice.
//!
//! Lines are never merged: each stream (stdout, stderr) keeps its own partial line, and a line is only written out
//! whole (one `write` per batch of whole lines). Bytes that are not UTF-8 are forwarded as they are in text format,
//! replaced in JSON lines and in the kept tail.

use crate::console::{self, Stream};
use crate::ports::TaskOutput;
use std::sync::Arc;
use watchbot_log::{Format, Logger};

/// How a task's output is captured.
#[derive(Clone)]
pub struct OutputConfig {
    /// How many bytes of the latest output are kept per attempt (whole lines). Default 64 KiB.
    pub tail_bytes: usize,
    /// The longest line forwarded or kept; a longer one is cut here. Default 16 KiB.
    pub max_line: usize,
    /// Forwarded lines as text (`[<time>] [worker] [<id>] line`) or JSON lines.
    pub format: Format,
    /// Where forwarded lines go.
    pub sink: Arc<dyn OutputSink>,
}

impl std::fmt::Debug for OutputConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputConfig")
            .field("tail_bytes", &self.tail_bytes)
            .field("max_line", &self.max_line)
            .field("format", &self.format)
            .finish()
    }
}

impl Default for OutputConfig {
    fn default() -> OutputConfig {
        OutputConfig { tail_bytes: 64 * 1024, max_line: 16 * 1024, format: Format::Text, sink: Arc::new(Console) }
    }
}

/// Where forwarded task output goes: whole prefixed lines, from the stream the task wrote them to.
pub trait OutputSink: Send + Sync + 'static {
    /// Writes whole lines (each ending in `\n`).
    fn write_lines(&self, stream: Stream, lines: &[u8]);
}

/// The watcher's own stdout and stderr (a task's stdout lines to stdout, its stderr lines to stderr).
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl OutputSink for Console {
    fn write_lines(&self, stream: Stream, lines: &[u8]) {
        console::write(stream, lines);
    }
}

/// Drops every line (the kept tail is still kept): benchmarks, and callers that only want the tail.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl OutputSink for Discard {
    fn write_lines(&self, _stream: Stream, _lines: &[u8]) {}
}

/// The capture of one task's output.
pub struct Capture {
    logger: Logger,
    /// `] [worker] [<message id>] `: what follows the time in a line the task prefixed itself.
    own_prefix: Vec<u8>,
    config: OutputConfig,
    stdout: Partial,
    stderr: Partial,
    tail: Tail,
    rendered: Vec<u8>,
}

/// A stream's line not yet ended, and how much of it was cut off.
#[derive(Default)]
struct Partial {
    line: Vec<u8>,
    cut: u64,
}

impl Capture {
    /// A capture for the task of `message_id`.
    pub fn new(message_id: &str, config: OutputConfig) -> Capture {
        let logger = Logger::new(Some(message_id)).with_format(config.format);
        let max_line = config.max_line.max(1);
        let config = OutputConfig { max_line, ..config };
        Capture {
            own_prefix: format!("] [worker] [{message_id}] ").into_bytes(),
            logger,
            tail: Tail::new(config.tail_bytes),
            config,
            stdout: Partial::default(),
            stderr: Partial::default(),
            rendered: Vec::new(),
        }
    }

    /// Takes bytes the task wrote to `stream`: forwards and keeps every line they complete.
    pub fn accept(&mut self, stream: Stream, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|b| *b == b'\n');
            let segment = &bytes[..newline.unwrap_or(bytes.len())];
            let max_line = self.config.max_line;
            let partial = self.partial(stream);
            let room = max_line.saturating_sub(partial.line.len());
            partial.line.extend_from_slice(&segment[..segment.len().min(room)]);
            partial.cut += segment.len().saturating_sub(room) as u64;
            match newline {
                Some(end) => {
                    self.end_line(stream);
                    bytes = &bytes[end + 1..];
                }
                None => break,
            }
        }
        self.flush(stream);
    }

    /// The task has stopped: its unfinished lines are written out as lines.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let partial = self.partial(stream);
            if !partial.line.is_empty() || partial.cut > 0 {
                self.end_line(stream);
            }
            self.flush(stream);
        }
    }

    /// The kept tail, as the loop gets it.
    pub fn output(&self) -> TaskOutput {
        self.tail.output()
    }

    fn partial(&mut self, stream: Stream) -> &mut Partial {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Ends the stream's partial line: rendered for the sink, kept in the tail.
    fn end_line(&mut self, stream: Stream) {
        let max_line = self.config.max_line;
        let partial = self.partial(stream);
        let mut line = std::mem::take(&mut partial.line);
        let cut = std::mem::take(&mut partial.cut);
        if cut > 0 {
            line.extend_from_slice(format!(" [line cut at {max_line} bytes: {cut} more bytes dropped]").as_bytes());
        }
        if self.config.format == Format::Text && self.prefixed(&line) {
            self.rendered.extend_from_slice(&line);
            self.rendered.push(b'\n');
        } else {
            self.logger.render_bytes_into(&line, &mut self.rendered);
        }
        self.tail.push(&line);
        // The partial buffer is reused for the next line, without growing past `max_line`.
        line.clear();
        self.partial(stream).line = line;
    }

    /// Whether the line starts `[<RFC 1123 time, 29 bytes>] [worker] [<this message id>] `.
    fn prefixed(&self, line: &[u8]) -> bool {
        const TIME: usize = 29;
        line.first() == Some(&b'[') && line.get(TIME + 1..).is_some_and(|rest| rest.starts_with(&self.own_prefix))
    }

    fn flush(&mut self, stream: Stream) {
        if !self.rendered.is_empty() {
            self.config.sink.write_lines(stream, &self.rendered);
            self.rendered.clear();
        }
    }
}

/// The latest whole lines, at most `limit` bytes of them.
struct Tail {
    limit: usize,
    bytes: Vec<u8>,
    /// Where the kept lines start in `bytes` (lines before it are dropped, compacted away now and then).
    start: usize,
    omitted: u64,
}

impl Tail {
    fn new(limit: usize) -> Tail {
        Tail { limit: limit.max(1), bytes: Vec::new(), start: 0, omitted: 0 }
    }

    fn push(&mut self, line: &[u8]) {
        if line.len() + 1 > self.limit {
            // A line longer than the whole tail: keep its end, which is what a reader wants to see.
            self.omitted += (self.bytes.len() - self.start + line.len() + 1 - self.limit) as u64;
            self.bytes.clear();
            self.start = 0;
            self.bytes.extend_from_slice(&line[line.len() + 1 - self.limit.max(1)..]);
            self.bytes.push(b'\n');
            return;
        }
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        // Drop whole lines from the front until the rest fits.
        while self.bytes.len() - self.start > self.limit {
            let end = self.bytes[self.start..].iter().position(|b| *b == b'\n').map_or(self.bytes.len(), |p| p + 1);
            self.omitted += end as u64;
            self.start += end;
        }
        if self.start > self.limit {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }

    fn output(&self) -> TaskOutput {
        let text = String::from_utf8_lossy(&self.bytes[self.start..]).into_owned();
        TaskOutput::Tail { text, omitted_bytes: self.omitted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(Stream, Vec<u8>)>>);

    impl OutputSink for Lines {
        fn write_lines(&self, stream: Stream, lines: &[u8]) {
            self.0.lock().unwrap().push((stream, lines.to_vec()));
        }
    }

    fn capture(tail_bytes: usize, max_line: usize) -> (Capture, Arc<Lines>) {
        let lines = Arc::new(Lines::default());
        let config = OutputConfig { tail_bytes, max_line, format: Format::Text, sink: lines.clone() };
        (Capture::new("m-1", config), lines)
    }

    fn tail(capture: &Capture) -> (String, u64) {
        match capture.output() {
            TaskOutput::Tail { text, omitted_bytes } => (text, omitted_bytes),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_are_forwarded_whole_with_the_message_id_and_kept() {
        let (mut capture, lines) = capture(1024, 100);
        capture.accept(Stream::Stdout, b"one\ntw");
        capture.accept(Stream::Stderr, b"err\n");
        capture.accept(Stream::Stdout, b"o\nthree");
        capture.finish();
        let written = lines.0.lock().unwrap().clone();
        let text: Vec<(Stream, String)> =
            written.iter().map(|(s, b)| (*s, String::from_utf8_lossy(b).into_owned())).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].1.ends_with("] [worker] [m-1] one\n") && text[0].0 == Stream::Stdout, "{text:?}");
        assert!(text[1].1.ends_with("[m-1] err\n") && text[1].0 == Stream::Stderr, "{text:?}");
        assert!(text[2].1.ends_with("[m-1] two\n"), "{text:?}");
        assert!(text[3].1.ends_with("[m-1] three\n"), "{text:?}");
        assert_eq!(tail(&capture), ("one\nerr\ntwo\nthree\n".to_string(), 0));
    }

    #[test]
    fn a_line_the_task_prefixed_itself_is_not_prefixed_twice() {
        let (mut capture, lines) = capture(1024, 200);
        capture.accept(Stream::Stdout, b"[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m-1] mine\n");
        capture.accept(Stream::Stdout, b"[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m-2] another's\n");
        let written = lines.0.lock().unwrap().clone();
        assert_eq!(written[0].1, b"[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m-1] mine\n");
        assert!(written[1].1.ends_with(b"] [worker] [m-1] [Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m-2] another's\n"));
    }

    #[test]
    fn long_lines_are_cut_and_say_so() {
        let (mut capture, _) = capture(1024, 8);
        capture.accept(Stream::Stdout, b"0123456789abcdef\nok\n");
        let (text, _) = tail(&capture);
        assert_eq!(text, "01234567 [line cut at 8 bytes: 8 more bytes dropped]\nok\n");
    }

    #[test]
    fn the_tail_keeps_the_latest_whole_lines_within_its_limit() {
        let (mut capture, _) = capture(10, 100);
        for n in 0..1000 {
            capture.accept(Stream::Stdout, format!("line {n}\n").as_bytes());
        }
        let (text, omitted) = tail(&capture);
        assert_eq!(text, "line 999\n");
        assert!(omitted > 8000, "{omitted}");
        assert!(capture.tail.bytes.len() <= 2 * 10 + 10, "{}", capture.tail.bytes.len());
        // A line longer than the tail keeps its end.
        capture.accept(Stream::Stdout, b"abcdefghijklmnop\n");
        assert_eq!(tail(&capture).0, "hijklmnop\n");
    }

    #[test]
    fn invalid_utf8_is_forwarded_as_is_and_replaced_in_the_tail() {
        let (mut capture, lines) = capture(100, 100);
        capture.accept(Stream::Stdout, b"caf\xe9\n");
        assert!(lines.0.lock().unwrap()[0].1.ends_with(b"[m-1] caf\xe9\n"));
        assert_eq!(tail(&capture).0, "caf\u{fffd}\n");
    }
}
