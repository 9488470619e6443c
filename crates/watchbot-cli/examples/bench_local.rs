//! `cargo xtask bench local`: local-mode throughput with `true` as the task and 4 workers, against spawning `true`
//! bare 4 at a time (`seq N | xargs -P4 -I{} true`; target ratio ≥ 0.7), and the embedded queue's operations per
//! second, under each fsync setting (`sends`, the default: sends fsynced, bookkeeping not; `full`; `normal`).
//!
//! Usage: `cargo xtask bench local [N]` (default N = 1000 messages).

use clap::Parser;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use watchbot_cli::cmd::local::Args;
use watchbot_watcher::local::queue::{Durability, LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{OutgoingMessage, Queue, ReceiveRequest};

#[derive(Debug, Parser)]
struct LocalCommand {
    #[command(flatten)]
    args: Args,
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("bench local: {n} messages, task `true`, 4 workers");

    let bare = time(|| {
        let status =
            Command::new("sh").arg("-c").arg(format!("seq {n} | xargs -P4 -I{{}} true")).status().expect("run xargs");
        assert!(status.success());
    });
    let bare_rate = n as f64 / bare.as_secs_f64();
    println!("  bare `seq {n} | xargs -P4 -I{{}} true`: {:.2} s, {bare_rate:.0} spawns/s", bare.as_secs_f64());

    for durability in [Durability::Sends, Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let queue = LocalQueue::open(&state, LocalQueueConfig { durability, ..LocalQueueConfig::default() }).unwrap();
        let messages = (0..n).map(|i| OutgoingMessage { body: format!("m{i}"), ..OutgoingMessage::default() });
        queue.send_all(messages.collect()).unwrap();
        drop(queue);
        let fsync = durability.name();
        let command = LocalCommand::parse_from([
            "local",
            "--state",
            &state.display().to_string(),
            "--workers",
            "4",
            "--until-empty",
            "--fsync",
            fsync,
            "--",
            "true",
        ]);
        let elapsed = time(|| {
            watchbot_cli::cmd::local::run(command.args).expect("watchbot local");
        });
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "  watchbot local (--fsync {}): {:.2} s, {rate:.0} messages/s, ratio to bare {:.2} (target >= 0.7)",
            durability.name(),
            elapsed.as_secs_f64(),
            rate / bare_rate
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for durability in [Durability::Sends, Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().expect("tempdir");
        runtime.block_on(queue_ops(dir.path(), durability, n));
    }
}

/// Embedded queue operations per second: single sends, receives of 10, batch deletes of 10.
async fn queue_ops(dir: &Path, durability: Durability, n: usize) {
    let queue = LocalQueue::open(dir, LocalQueueConfig { durability, ..LocalQueueConfig::default() }).unwrap();
    let start = Instant::now();
    for i in 0..n {
        queue.send(OutgoingMessage { body: format!("m{i}"), ..OutgoingMessage::default() }).await.unwrap();
    }
    let send = start.elapsed();
    let request = ReceiveRequest { max_messages: 10, wait: Duration::ZERO, visibility_timeout: None };
    let (mut receives, mut received, mut handles) = (0usize, 0usize, Vec::new());
    let start = Instant::now();
    loop {
        let batch = queue.receive(request).await.unwrap();
        if batch.is_empty() {
            break;
        }
        receives += 1;
        received += batch.len();
        handles.extend(batch.into_iter().map(|m| m.receipt_handle));
    }
    let receive = start.elapsed();
    assert_eq!(received, n);
    let start = Instant::now();
    let mut deletes = 0usize;
    for chunk in handles.chunks(10) {
        assert!(queue.delete_batch(chunk).await.unwrap().is_empty());
        deletes += 1;
    }
    let delete = start.elapsed();
    let per_s = |ops: usize, d: Duration| ops as f64 / d.as_secs_f64();
    println!(
        "  embedded queue (--fsync {}): send {:.0} ops/s; receive-10 {:.0} ops/s ({:.0} messages/s); \
         delete-batch-10 {:.0} ops/s ({:.0} messages/s)",
        durability.name(),
        per_s(n, send),
        per_s(receives, receive),
        per_s(received, receive),
        per_s(deletes, delete),
        per_s(n, delete)
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
