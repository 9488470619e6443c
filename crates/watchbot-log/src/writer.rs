//! Writers that prefix every line written through them: sync ([`PrefixWriter`]) and tokio ([`AsyncPrefixWriter`]).
//!
//! Both share [`LineSplitter`]: bytes go in, complete prefixed lines come out; the tail after the last newline is
//! held until more bytes complete it, until it grows to [`WriterConfig::max_line`], or until the writer is done with
//! it: the sync writer's `flush`, `finish` or drop; the async writer's `shutdown` or
//! [`AsyncPrefixWriter::flush_partial_line`].
//!
//! Why the async `flush` does not cut a held line: `tokio::io::copy` calls `poll_flush` every time its reader is
//! pending, so a child that writes half a line, pauses, then writes the rest would come out as two log lines. A sync
//! `std::io::copy` never flushes, so the sync writer keeps the documented "flush writes the partial line out".

use crate::Logger;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWrite;

/// How a prefixing writer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// A partial line this long is written out as a line of its own, so a child that never writes a newline
    /// cannot grow our memory without bound. Default 256 KiB.
    pub max_line: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig { max_line: 256 * 1024 }
    }
}

/// Splits a byte stream into lines and renders each complete one with the logger's prefix.
#[derive(Debug)]
struct LineSplitter {
    logger: Logger,
    config: WriterConfig,
    partial: Vec<u8>,
}

impl LineSplitter {
    fn new(logger: Logger, config: WriterConfig) -> LineSplitter {
        LineSplitter { logger, config: WriterConfig { max_line: config.max_line.max(1) }, partial: Vec::new() }
    }

    /// Takes `buf`, appends every line it completes (prefixed, with its newline) to `out`.
    fn accept(&mut self, mut buf: &[u8], out: &mut Vec<u8>) {
        loop {
            let newline = buf.iter().position(|b| *b == b'\n');
            let segment = &buf[..newline.unwrap_or(buf.len())];
            if self.partial.is_empty() && newline.is_some() && segment.len() <= self.config.max_line {
                // The common case, a whole line in one write: no copy.
                self.logger.render_one(segment, out);
            } else {
                self.partial.extend_from_slice(segment);
                // Cut only when over the limit, so a line of exactly `max_line` bytes stays one line.
                while self.partial.len() > self.config.max_line {
                    let rest = self.partial.split_off(self.config.max_line);
                    self.logger.render_one(&self.partial, out);
                    self.partial = rest;
                }
                if newline.is_some() {
                    self.logger.render_one(&self.partial, out);
                    self.partial.clear();
                }
            }
            match newline {
                Some(end) => buf = &buf[end + 1..],
                None => break,
            }
        }
    }

    /// Emits the held partial line, if any, as a line of its own.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            self.logger.render_one(&self.partial, out);
            self.partial.clear();
        }
    }
}

/// A [`Write`] that prefixes every line written to it (the original's `logStream`) and writes the lines to an
/// inner writer. `flush` writes a held partial line out as a line; so does dropping the writer (errors ignored),
/// or [`PrefixWriter::finish`] (errors returned).
#[derive(Debug)]
pub struct PrefixWriter<W: Write> {
    lines: LineSplitter,
    inner: Option<W>,
    out: Vec<u8>,
}

impl<W: Write> PrefixWriter<W> {
    /// A writer prefixing lines with `logger` onto `inner`.
    pub fn new(logger: Logger, inner: W, config: WriterConfig) -> PrefixWriter<W> {
        PrefixWriter { lines: LineSplitter::new(logger, config), inner: Some(inner), out: Vec::new() }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.inner.as_ref().expect("inner writer present until finish")
    }

    /// The inner writer, mutably (writing to it directly bypasses the prefix).
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.as_mut().expect("inner writer present until finish")
    }

    /// Writes out a held partial line, flushes, and hands back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.inner.take().expect("inner writer present until finish"))
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.inner.as_mut().expect("inner writer present until finish").write_all(&self.out);
        self.out.clear();
        result
    }
}

impl<W: Write> Write for PrefixWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lines.accept(buf, &mut self.out);
        self.write_out()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lines.finish(&mut self.out);
        self.write_out()?;
        self.get_mut().flush()
    }
}

impl<W: Write> Drop for PrefixWriter<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.flush();
        }
    }
}

/// A tokio [`AsyncWrite`] that prefixes every line written to it and writes the lines to an inner writer, so a
/// child's stdout can be copied through it (`tokio::io::copy(&mut child_stdout, &mut writer)`).
///
/// `poll_flush` writes out complete lines and flushes the inner writer, but keeps holding a partial line (copy
/// flushes whenever its reader pauses, which must not split a line). `poll_shutdown` writes a held partial line out
/// as a line of its own, as does [`AsyncPrefixWriter::flush_partial_line`] without shutting the inner writer down;
/// after `copy` returns, call one of them for a last line without a newline. Nothing is written on drop (it cannot
/// await).
#[derive(Debug)]
pub struct AsyncPrefixWriter<W> {
    lines: LineSplitter,
    inner: W,
    pending: Vec<u8>,
    written: usize,
}

impl<W: AsyncWrite + Unpin> AsyncPrefixWriter<W> {
    /// A writer prefixing lines with `logger` onto `inner`.
    pub fn new(logger: Logger, inner: W, config: WriterConfig) -> AsyncPrefixWriter<W> {
        AsyncPrefixWriter { lines: LineSplitter::new(logger, config), inner, pending: Vec::new(), written: 0 }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Hands back the inner writer; a held partial line and unwritten lines are dropped (shut down first).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Writes a held partial line out as a line of its own, then flushes (the inner writer stays open).
    pub async fn flush_partial_line(&mut self) -> io::Result<()> {
        self.lines.finish(&mut self.pending);
        tokio::io::AsyncWriteExt::flush(self).await
    }

    /// Writes the rendered lines not yet taken by the inner writer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncPrefixWriter<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Back-pressure: take no new bytes while earlier lines are still waiting for the inner writer.
        ready!(this.poll_drain(cx))?;
        this.lines.accept(buf, &mut this.pending);
        // Start writing at once; what the inner writer cannot take now waits for the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Complete lines only: a held partial line waits for its newline (see the module docs).
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // `finish` empties the held line, so a shutdown polled again after Pending does not render it twice.
        let this = self.as_mut().get_mut();
        this.lines.finish(&mut this.pending);
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FixedClock, Format};
    use std::time::{Duration, UNIX_EPOCH};
    use tokio::io::AsyncWriteExt;

    const PREFIX: &str = "[Thu, 28 Jul 2016 00:12:37 GMT] [worker] [m-1] ";

    fn logger() -> Logger {
        Logger::new(Some("m-1")).with_clock(FixedClock(UNIX_EPOCH + Duration::from_secs(1_469_664_757)))
    }

    fn expected(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{PREFIX}{l}\n")).collect()
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut writer = logger().writer(Vec::new());
        for chunk in ["he", "llo\nwor", "ld\n", "\n", "tail"] {
            writer.write_all(chunk.as_bytes()).unwrap();
        }
        // Before flush the partial "tail" is held.
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["hello", "world", ""]));
        let out = writer.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected(&["hello", "world", "", "tail"]));
    }

    #[test]
    fn every_split_point_gives_the_same_output() {
        let input = b"alpha\nbeta gamma\n\ndelta\n";
        let want = expected(&["alpha", "beta gamma", "", "delta"]);
        for split in 0..=input.len() {
            let mut writer = logger().writer(Vec::new());
            writer.write_all(&input[..split]).unwrap();
            writer.write_all(&input[split..]).unwrap();
            assert_eq!(String::from_utf8(writer.finish().unwrap()).unwrap(), want, "split at {split}");
        }
    }

    #[test]
    fn dropping_the_writer_writes_the_partial_line() {
        let mut out = Vec::new();
        {
            let mut writer = logger().writer(&mut out);
            writer.write_all(b"no newline").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), expected(&["no newline"]));
    }

    #[test]
    fn invalid_utf8_split_across_writes_passes_through() {
        let mut writer = logger().writer(Vec::new());
        writer.write_all(b"caf\xc3").unwrap();
        writer.write_all(b"\xa9 \xff\xfe\n").unwrap();
        let out = writer.finish().unwrap();
        let mut want = PREFIX.as_bytes().to_vec();
        want.extend_from_slice(b"caf\xc3\xa9 \xff\xfe\n");
        assert_eq!(out, want);
    }

    #[test]
    fn overlong_partial_lines_are_cut() {
        let mut writer = PrefixWriter::new(logger(), Vec::new(), WriterConfig { max_line: 4 });
        writer.write_all(b"abcdefghij\nxy").unwrap();
        let out = writer.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected(&["abcd", "efgh", "ij", "xy"]));
    }

    #[test]
    fn json_format_through_the_writer() {
        let mut writer = logger().with_format(Format::Json).writer(Vec::new());
        writer.write_all(b"one\ntwo").unwrap();
        let out = String::from_utf8(writer.finish().unwrap()).unwrap();
        let msgs: Vec<String> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["msg"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(msgs, ["one", "two"]);
    }

    #[tokio::test]
    async fn async_writer_holds_partial_lines_until_shutdown() {
        let (client, mut server) = tokio::io::duplex(16);
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut out).await.unwrap();
            out
        });
        // A small duplex buffer forces the writer to wait on its inner writer (back-pressure).
        let mut writer = logger().async_writer(client);
        for chunk in ["first li", "ne\nsecond", " line\n", "caf\u{e9}", " partial"] {
            writer.write_all(chunk.as_bytes()).await.unwrap();
        }
        writer.shutdown().await.unwrap();
        drop(writer);
        let out = reader.await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected(&["first line", "second line", "caf\u{e9} partial"]));
    }

    #[tokio::test]
    async fn async_flush_keeps_the_partial_line_until_shutdown_or_flush_partial_line() {
        let mut writer = logger().async_writer(Vec::new());
        writer.write_all(b"a\nb").await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a"]));
        writer.flush().await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a"]), "flush does not cut the line");
        writer.write_all(b"c\nd").await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a", "bc"]));
        writer.flush_partial_line().await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a", "bc", "d"]));
        writer.write_all(b"e").await.unwrap();
        writer.shutdown().await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a", "bc", "d", "e"]));
    }

    #[tokio::test]
    async fn tokio_copy_from_a_reader_that_pauses_mid_line_keeps_lines_whole() {
        // `copy` flushes its writer whenever the reader is pending: each pause below is such a moment.
        let (mut child_stdout, mut reader) = tokio::io::duplex(64);
        let producer = tokio::spawn(async move {
            for chunk in ["half a li", "ne\nanother ", "one\nno newline at the end"] {
                child_stdout.write_all(chunk.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let mut writer = logger().async_writer(Vec::new());
        tokio::io::copy(&mut reader, &mut writer).await.unwrap();
        producer.await.unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["half a line", "another one"]));
        writer.shutdown().await.unwrap();
        let want = expected(&["half a line", "another one", "no newline at the end"]);
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), want);
    }

    #[test]
    fn sync_flush_writes_the_partial_line_as_documented() {
        let mut writer = logger().writer(Vec::new());
        writer.write_all(b"a\nb").unwrap();
        writer.flush().unwrap();
        assert_eq!(String::from_utf8_lossy(writer.get_ref()), expected(&["a", "b"]));
    }
}
