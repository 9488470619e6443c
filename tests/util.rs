//! Helpers for the CLI tests: the binaries under test, each a `TestCommand` that runs in a fresh folder with every
//! wait bounded and every failure reporting what ran, what it waited for and what came back (stdout, stderr). The
//! machinery is `watchbot_testing::process`; this file only knows where the binaries are.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use watchbot_testing::process::{Finished, TestChild, TestCommand, TestDir, lines, wait_for};
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig, QueueCounts};

/// The `watchbot` binary under test, run in `dir`.
pub fn watchbot(dir: &TestDir) -> TestCommand {
    binary(dir, env!("CARGO_BIN_EXE_watchbot"))
}

/// The `watchbot-log` binary (the original's name), run in `dir`.
pub fn watchbot_log(dir: &TestDir) -> TestCommand {
    binary(dir, env!("CARGO_BIN_EXE_watchbot-log"))
}

/// The `watchbot-progress` binary (the original's name), run in `dir`.
pub fn watchbot_progress(dir: &TestDir) -> TestCommand {
    binary(dir, env!("CARGO_BIN_EXE_watchbot-progress"))
}

fn binary(dir: &TestDir, path: &str) -> TestCommand {
    let mut command = dir.command(path);
    // A developer's own settings must not reach the binary under test.
    command.env_remove("ProgressTable").env_remove("MessageId").env_remove("QueueUrl");
    command
}

/// A path under the workspace root.
pub fn workspace_path(relative: &str) -> PathBuf {
    watchbot_testing::workspace_root().join(relative)
}

/// The numbers of `watchbot local`'s `summary:` line.
pub fn summary(stdout: &str) -> BTreeMap<String, u64> {
    let line = stdout.lines().find(|l| l.starts_with("summary: ")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    line["summary: ".len()..]
        .split(", ")
        .map(|part| {
            let (name, n) = part.rsplit_once(' ').unwrap();
            (name.to_string(), n.parse().unwrap())
        })
        .collect()
}

/// The counts of the embedded queue in a state folder.
pub fn counts(state: &Path) -> QueueCounts {
    LocalQueue::open(state, LocalQueueConfig::default()).unwrap().counts().unwrap()
}

/// An SQS queue's approximate counts (visible, in flight), read with one `GetQueueAttributes`.
pub fn sqs_counts(runtime: &tokio::runtime::Runtime, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let attributes = runtime.block_on(async {
        sqs.get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes")
    });
    let count = |name: Name| {
        let value = attributes.attributes().and_then(|a| a.get(&name).cloned()).unwrap_or_default();
        value.parse().unwrap_or_else(|_| panic!("{name}: {value:?} is not a count"))
    };
    (count(Name::ApproximateNumberOfMessages), count(Name::ApproximateNumberOfMessagesNotVisible))
}
