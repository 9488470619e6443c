//! `cargo xtask bench progress`: requests per complete-part on DynamoDB (moto), counted by an SDK interceptor on
//! every transmitted attempt (must be 1), and latency per complete-part on the embedded store.
//!
//! Optional argument: the number of parts for the embedded run (default 5000).

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use watchbot_progress::{DynamoStore, EmbeddedStore, Store};

/// Counts HTTP attempts (retries included) the client transmits.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl CountRequests {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let parts: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);

    // ---- DynamoDB on moto: requests per call ----
    let sdk = watchbot_testing::moto().sdk_config().await;
    let table = watchbot_testing::unique_name("bench-progress");
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    let counter = CountRequests::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table);

    const DYNAMO_PARTS: u64 = 200;
    store.set_total("seq", DYNAMO_PARTS).await.unwrap();
    counter.take();
    let started = Instant::now();
    for part in 1..=DYNAMO_PARTS {
        store.complete_part("seq", part).await.unwrap();
    }
    let elapsed = started.elapsed();
    let sequential = counter.take();
    for part in 1..=DYNAMO_PARTS {
        assert!(store.complete_part("seq", part).await.unwrap().replay);
    }
    let replays = counter.take();

    store.set_total("par", DYNAMO_PARTS).await.unwrap();
    counter.take();
    let tasks: Vec<_> = (1..=DYNAMO_PARTS)
        .map(|part| {
            let store = store.clone();
            tokio::spawn(async move { store.complete_part("par", part).await.unwrap() })
        })
        .collect();
    let mut finished = 0;
    for task in tasks {
        finished += usize::from(task.await.unwrap().finished_job);
    }
    let concurrent = counter.take();

    println!("progress bench: DynamoDB (moto {})", watchbot_testing::MOTO_VERSION);
    println!(
        "  complete-part, {DYNAMO_PARTS} sequential calls: {:.2} requests per call ({sequential} requests)",
        sequential as f64 / DYNAMO_PARTS as f64
    );
    println!(
        "  complete-part, {DYNAMO_PARTS} concurrent calls: {:.2} requests per call ({concurrent} requests), \
         {finished} call(s) finished the job",
        concurrent as f64 / DYNAMO_PARTS as f64
    );
    println!(
        "  complete-part replay (part already complete): {:.2} requests per call",
        replays as f64 / DYNAMO_PARTS as f64
    );
    println!("  latency per call on moto (loopback, emulator-bound): {:.0} µs", micros(elapsed) / DYNAMO_PARTS as f64);

    // ---- embedded store: latency per call ----
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progress.sqlite");
    let store = EmbeddedStore::open(&path).await.unwrap();
    store.set_total("job", parts).await.unwrap();
    let mut latencies = Vec::with_capacity(parts as usize);
    let started = Instant::now();
    for part in 1..=parts {
        let t = Instant::now();
        store.complete_part("job", part).await.unwrap();
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    latencies.sort_unstable();
    let t = Instant::now();
    for _ in 0..1000 {
        store.status("job", Some(1)).await.unwrap();
    }
    let status = t.elapsed() / 1000;

    // Several connections (as several processes would) completing parts of one job at once.
    let stores = [
        EmbeddedStore::open(&path).await.unwrap(),
        EmbeddedStore::open(&path).await.unwrap(),
        EmbeddedStore::open(&path).await.unwrap(),
        EmbeddedStore::open(&path).await.unwrap(),
    ];
    stores[0].set_total("shared", parts).await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut part = i as u64 + 1;
                while part <= parts {
                    store.complete_part("shared", part).await.unwrap();
                    part += 4;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let shared = started.elapsed();

    println!("progress bench: embedded SQLite store ({parts} parts, WAL, synchronous=NORMAL)");
    println!(
        "  complete-part latency: mean {:.0} µs, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        micros(total) / parts as f64,
        micros(percentile(&latencies, 0.5)),
        micros(percentile(&latencies, 0.99)),
        micros(*latencies.last().unwrap())
    );
    println!("  status latency: {:.0} µs", micros(status));
    println!(
        "  4 connections on one file: {:.0} completions/s ({:.0} µs per call)",
        parts as f64 / shared.as_secs_f64(),
        micros(shared) / parts as f64
    );
}
