//! `cargo xtask bench progress`: the cost of a complete-part per layout and job size.
//!
//! DynamoDB (moto): requests per complete-part, counted per operation by an SDK interceptor on every transmitted
//! attempt; write and read units per complete-part, computed from the sizes of the items each call wrote, by
//! DynamoDB's sizing rules (moto's `ConsumedCapacity` is a constant 1.0 for UpdateItem whatever the size, and absent
//! for TransactWriteItems, so it measures nothing). A 1,000-part job is completed whole (the finishing call
//! included); bigger ones are measured on their first 100 calls, and the whole job's write units are computed.
//! Embedded store: completions per second, one connection in sequence and four at once.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use watchbot_progress::{DynamoStore, EmbeddedStore, Layout, Store};

const SIZES: [u64; 3] = [1_000, 10_000, 100_000];
/// Calls measured on jobs bigger than the first size.
const SAMPLE: u64 = 100;

/// Counts the HTTP attempts (retries included) the client transmits, per operation.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<Mutex<HashMap<String, usize>>>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

impl CountRequests {
    fn take(&self) -> HashMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

type Item = HashMap<String, AttributeValue>;

/// A number's size: about one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits = n.trim_start_matches('-').replace('.', "");
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::Ns(ns) => ns.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        other => panic!("no size rule for {other:?}"),
    }
}

/// An item's size by DynamoDB's rules: attribute names plus values.
fn item_size(item: Option<&Item>) -> usize {
    item.map_or(0, |item| item.iter().map(|(name, value)| name.len() + value_size(value)).sum())
}

/// Write units of one write of an item: its larger size, before or after, per started KB (at least 1).
fn write_units(before: usize, after: usize) -> f64 {
    before.max(after).div_ceil(1024).max(1) as f64
}

async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    let table = watchbot_testing::unique_name("bench-progress");
    client
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
    table
}

struct Measured {
    calls: u64,
    requests: HashMap<String, usize>,
    write_units: f64,
    read_units: f64,
    largest_item: usize,
}

/// Completes parts `1..=calls` of a fresh `total`-part job, computing each call's units from the items it wrote.
async fn measure(sdk: &aws_config::SdkConfig, layout: Layout, total: u64, calls: u64) -> Measured {
    let plain = aws_sdk_dynamodb::Client::new(sdk);
    let table = create_table(&plain).await;
    let counter = CountRequests::default();
    let config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), &table).with_layout(layout);
    let get = |id: String| {
        let request = plain.get_item().table_name(&table).key("id", AttributeValue::S(id)).consistent_read(true);
        async move { request.send().await.unwrap().item }
    };
    store.set_total("job", total).await.unwrap();
    counter.take();
    let mut measured = Measured { calls, requests: HashMap::new(), write_units: 0.0, read_units: 0.0, largest_item: 0 };
    for part in 1..=calls {
        let before = item_size(get("job".into()).await.as_ref());
        let done = store.complete_part("job", part).await.unwrap();
        assert!(!done.replay && done.finished_job == (part == total), "{done:?}");
        let after = item_size(get("job".into()).await.as_ref());
        let job_units = write_units(before, after);
        let requests = counter.take();
        let transactions = requests.get("TransactWriteItems").copied().unwrap_or(0) as f64;
        if transactions > 0.0 {
            // Transactions cost double; a cancelled one (the last part's first) is counted as if it committed.
            let part_item = item_size(get(format!("job\u{1f}{part}")).await.as_ref());
            measured.write_units += transactions * 2.0 * (write_units(0, part_item) + job_units);
        } else {
            measured.write_units += job_units;
        }
        // Strongly consistent reads: one unit per started 4 KB.
        measured.read_units +=
            requests.get("GetItem").copied().unwrap_or(0) as f64 * after.div_ceil(4096).max(1) as f64;
        measured.largest_item = measured.largest_item.max(before);
        for (operation, n) in requests {
            *measured.requests.entry(operation).or_default() += n;
        }
    }
    measured
}

/// The whole job's write units, computed: every call of a set-layout job rewrites the item as it is then.
fn whole_job_write_units(layout: Layout, total: u64) -> f64 {
    let name_sizes = "id".len() + 3 + "total".len() + number_size(&total.to_string()) + "parts".len();
    match layout {
        Layout::Set => {
            let mut set: usize = (1..=total).map(|p| number_size(&p.to_string())).sum();
            let mut units = 0.0;
            for part in 1..=total {
                units += write_units(name_sizes + set, 0);
                set -= number_size(&part.to_string());
            }
            units
        }
        // 4 per call, and the last part's cancelled first transaction.
        Layout::Counter => 4.0 * total as f64 + 4.0,
    }
}

fn per_call(requests: &HashMap<String, usize>, calls: u64) -> String {
    let mut names: Vec<_> = requests.iter().collect();
    names.sort();
    let text: Vec<String> = names.iter().map(|(op, n)| format!("{:.2} {op}", **n as f64 / calls as f64)).collect();
    text.join(" + ")
}

async fn embedded(layout: Layout, total: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progress.sqlite");
    let store = EmbeddedStore::open(&path).await.unwrap().with_layout(layout);
    store.set_total("job", total).await.unwrap();
    let started = Instant::now();
    for part in 1..=total {
        store.complete_part("job", part).await.unwrap();
    }
    let sequential = total as f64 / started.elapsed().as_secs_f64();

    // Four connections (as four processes would) completing parts of one job at once.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(EmbeddedStore::open(&path).await.unwrap().with_layout(layout));
    }
    stores[0].set_total("shared", total).await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(i, store)| {
            tokio::spawn(async move {
                let mut finished = 0;
                for part in (i as u64 + 1..=total).step_by(4) {
                    finished += usize::from(store.complete_part("shared", part).await.unwrap().finished_job);
                }
                finished
            })
        })
        .collect();
    let mut finished = 0;
    for task in tasks {
        finished += task.await.unwrap();
    }
    assert_eq!(finished, 1, "exactly one call finished the shared job");
    (sequential, total as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let sdk = watchbot_testing::moto().sdk_config().await;
    println!(
        "progress bench: DynamoDB on moto {} (requests counted on the wire; write/read units computed from item \
         sizes by DynamoDB's rules: moto reports a constant or no ConsumedCapacity)",
        watchbot_testing::MOTO_VERSION
    );
    println!(
        "  {:<8} {:>8}  {:<10} {:<38} {:>9} {:>8} {:>10} {:>14}",
        "layout", "parts", "measured", "requests per complete-part", "WU/call", "RU/call", "item max", "WU whole job"
    );
    for layout in [Layout::Counter, Layout::Set] {
        for total in SIZES {
            if total > layout.max_total() {
                println!(
                    "  {:<8} {:>8}  refused: over the {layout} layout's limit of {} parts",
                    layout.name(),
                    total,
                    layout.max_total()
                );
                continue;
            }
            let calls = if total == SIZES[0] { total } else { SAMPLE };
            let m = measure(&sdk, layout, total, calls).await;
            println!(
                "  {:<8} {:>8}  {:<10} {:<38} {:>9.2} {:>8.2} {:>8} B {:>14.0}",
                layout.name(),
                total,
                if calls == total { "all".to_owned() } else { format!("first {calls}") },
                per_call(&m.requests, m.calls),
                m.write_units / m.calls as f64,
                m.read_units / m.calls as f64,
                m.largest_item,
                whole_job_write_units(layout, total)
            );
        }
    }

    println!("progress bench: embedded SQLite store (WAL, synchronous=NORMAL; both layouts share one schema)");
    for layout in [Layout::Counter, Layout::Set] {
        for total in SIZES.into_iter().filter(|t| *t <= layout.max_total()) {
            let (sequential, shared) = embedded(layout, total).await;
            println!(
                "  {:<8} {:>8} parts: {:>7.0} completions/s on one connection, {:>7.0}/s on 4 connections at once",
                layout.name(),
                total,
                sequential,
                shared
            );
        }
    }
}
