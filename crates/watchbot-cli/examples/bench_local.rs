//! `cargo xtask bench local`: local-mode throughput with `true` as the task and 4 workers, against spawning `true`
//! bare 4 at a time (`seq N | xargs -P4 -I{} true`; target ratio ≥ 0.7), and the embedded queue's operations per
//! second, under each fsync setting (`sends`, the default: sends fsynced, bookkeeping not; `full`; `normal`).
//!
//! Then the cost of depth (issue 16): enqueueing 100,000 messages in one `send_all` (what `--messages` does), and
//! throughput with 1,000 messages worked off the top of a queue 1,000 and 100,000 deep (and 1,000,000 with
//! `--depth-million`): `watchbot local`'s messages/s (target: at 100,000 within 15% of 1,000), the embedded queue's
//! receive-10 + delete-10 messages/s, and how long `counts()` (the summary line's query) takes.
//!
//! Usage: `cargo xtask bench local [N] [--depth-million]` (default N = 1000 messages).

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let depth_million = args.iter().any(|a| a == "--depth-million");
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
        let queue = LocalQueue::open(&state, {
            let mut c = LocalQueueConfig::default();
            c.durability = durability;
            c
        })
        .unwrap();
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

    // SIGTERM ends the `watchbot local` runs below: listen for it first, so it can never kill this process.
    let _sigterm = runtime
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) })
        .expect("listen for SIGTERM");
    println!("bench local: depth (1,000 messages worked off the top of a queue of each depth; --fsync sends)");
    let mut depths = vec![1_000, 100_000];
    if depth_million {
        depths.push(1_000_000);
    }
    let mut local_rates = Vec::new();
    for depth in depths {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
        // 1,000 more than the depth: the queue's own receive-and-delete rate is measured on them first.
        let messages: Vec<_> = (0..depth + 1_000)
            .map(|i| OutgoingMessage { body: format!("m{i}"), ..OutgoingMessage::default() })
            .collect();
        let enqueue = time(|| drop(queue.send_all(messages).unwrap()));
        let counting = Instant::now();
        let counts = queue.counts().unwrap();
        let counting = counting.elapsed();
        assert_eq!(counts.visible, depth as u64 + 1_000);
        let ops = runtime.block_on(receive_delete_rate(&queue, 1_000));
        let rate = local_at_depth(&queue, &state, depth, 1_000);
        local_rates.push((depth, rate));
        println!(
            "  depth {depth:>9}: enqueue of depth + 1,000 (one send_all) {:.2} s; watchbot local {rate:.0} messages/s; \
             embedded queue receive-10 + delete-10 {ops:.0} messages/s; counts() {:.1} ms",
            enqueue.as_secs_f64(),
            counting.as_secs_f64() * 1000.0
        );
    }
    if let (Some((_, shallow)), Some((_, deep))) = (local_rates.first(), local_rates.get(1)) {
        println!("  watchbot local at depth 100,000 / depth 1,000: {:.2} (target >= 0.85)", deep / shallow);
    }
}

/// `watchbot local --workers 4 -- true` on the queue in `state` (`depth` messages), stopped with SIGTERM once it
/// has worked off `count` of them: their messages per second.
fn local_at_depth(queue: &LocalQueue, state: &Path, depth: usize, count: usize) -> f64 {
    let left = || {
        let counts = queue.counts().unwrap();
        (counts.visible + counts.in_flight + counts.delayed) as usize
    };
    let state = state.display().to_string();
    let command = LocalCommand::parse_from(["local", "--state", &state, "--workers", "4", "--", "true"]);
    let start = Instant::now();
    let run = std::thread::spawn(move || watchbot_cli::cmd::local::run(command.args).map(|_| ()));
    let deadline = start + Duration::from_secs(600);
    while depth - left() < count {
        assert!(Instant::now() < deadline && !run.is_finished(), "watchbot local did not work off {count} messages");
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    let done = depth - left();
    let status = Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status().expect("run kill");
    assert!(status.success());
    run.join().expect("watchbot local thread").expect("watchbot local");
    done as f64 / elapsed.as_secs_f64()
}

/// The embedded queue's receive-10 then delete-10 of `count` messages: messages per second.
async fn receive_delete_rate(queue: &LocalQueue, count: usize) -> f64 {
    let request = ReceiveRequest::new(10, Duration::ZERO, None);
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        let batch = queue.receive(request).await.unwrap();
        assert!(!batch.is_empty());
        let handles: Vec<String> = batch.into_iter().map(|m| m.receipt_handle).collect();
        assert!(queue.delete_batch(&handles).await.unwrap().is_empty());
        done += handles.len();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Embedded queue operations per second: single sends, receives of 10, batch deletes of 10.
async fn queue_ops(dir: &Path, durability: Durability, n: usize) {
    let queue = LocalQueue::open(dir, {
        let mut c = LocalQueueConfig::default();
        c.durability = durability;
        c
    })
    .unwrap();
    let start = Instant::now();
    for i in 0..n {
        queue.send(OutgoingMessage { body: format!("m{i}"), ..OutgoingMessage::default() }).await.unwrap();
    }
    let send = start.elapsed();
    let request = ReceiveRequest::new(10, Duration::ZERO, None);
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
