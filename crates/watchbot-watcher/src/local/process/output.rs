//! Reading a child's stdout and stderr pipes into its [`Capture`], on a tokio task of its own: whole lines
//! forwarded as they come, and, when the owner says the child has exited, what is left in the pipes drained and the
//! tail handed back. The task then goes on forwarding until both pipes close (a worker's background children may
//! still write), and ends.
//!
//! Each read is at most [`READ_CHUNK`] bytes and is handed to the capture (and so to the sink) before the next one:
//! a task writing faster than the watcher's output takes it fills its pipe and waits (back-pressure), and the
//! watcher holds no more than the capture's bounds.

use super::spawn::Pipes;
use crate::console::Stream;
use crate::output::Capture;
use crate::ports::TaskOutput;
use tokio::net::unix::pipe::Receiver;
use tokio::sync::oneshot;

/// The most read from a pipe at once.
const READ_CHUNK: usize = 8 * 1024;

/// The owner's message when its child has exited: where to send the attempt's output.
pub(super) type Exited = oneshot::Receiver<oneshot::Sender<TaskOutput>>;

/// Starts reading both pipes (on the current runtime).
pub(super) fn read(pipes: Pipes, capture: Capture, exited: Exited) -> std::io::Result<()> {
    let stdout = Receiver::from_owned_fd(pipes.stdout)?;
    let stderr = Receiver::from_owned_fd(pipes.stderr)?;
    tokio::spawn(run(capture, [Some(stdout), Some(stderr)], exited));
    Ok(())
}

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

async fn run(mut capture: Capture, mut pipes: [Option<Receiver>; 2], mut exited: Exited) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut waiting_for_exit = true;
    loop {
        if pipes.iter().all(Option::is_none) && !waiting_for_exit {
            return;
        }
        tokio::select! {
            biased;
            ready = readable(&pipes[0]), if pipes[0].is_some() => {
                if ready.is_err() || !read_once(&mut capture, &mut pipes, 0, &mut buf) { pipes[0] = None; }
            }
            ready = readable(&pipes[1]), if pipes[1].is_some() => {
                if ready.is_err() || !read_once(&mut capture, &mut pipes, 1, &mut buf) { pipes[1] = None; }
            }
            reply = &mut exited, if waiting_for_exit => {
                waiting_for_exit = false;
                // Everything the child wrote is in the pipes now: take it before answering.
                for index in 0..2 {
                    while pipes[index].is_some() {
                        match try_read(&mut pipes, index, &mut buf) {
                            Read::Bytes(n) => capture.accept(STREAMS[index], &buf[..n]),
                            Read::Closed => pipes[index] = None,
                            Read::Empty => break,
                        }
                    }
                }
                capture.finish();
                if let Ok(reply) = reply {
                    let _ = reply.send(capture.output());
                }
            }
        }
    }
}

async fn readable(pipe: &Option<Receiver>) -> std::io::Result<()> {
    match pipe {
        Some(pipe) => pipe.readable().await,
        None => std::future::pending().await,
    }
}

enum Read {
    Bytes(usize),
    Empty,
    Closed,
}

fn try_read(pipes: &mut [Option<Receiver>; 2], index: usize, buf: &mut [u8]) -> Read {
    let Some(pipe) = pipes[index].as_ref() else { return Read::Closed };
    match pipe.try_read(buf) {
        Ok(0) => Read::Closed,
        Ok(n) => Read::Bytes(n),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Read::Empty,
        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => Read::Empty,
        Err(_) => Read::Closed,
    }
}

/// One read after a readiness; `false` once the pipe is closed.
fn read_once(capture: &mut Capture, pipes: &mut [Option<Receiver>; 2], index: usize, buf: &mut [u8]) -> bool {
    match try_read(pipes, index, buf) {
        Read::Bytes(n) => {
            capture.accept(STREAMS[index], &buf[..n]);
            true
        }
        Read::Empty => true,
        Read::Closed => false,
    }
}
