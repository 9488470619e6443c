//! Watchbot options → a CloudFormation template, and `merge` of templates. Pure: no AWS SDK, deterministic output.
//!
//! ```
//! let options = watchbot_template::Options::from_json_str(
//!     r#"{"cluster": "processing", "service": "my-worker", "serviceVersion": "v1", "notificationEmail": "a@b.c"}"#,
//! )
//! .unwrap();
//! let template = watchbot_template::template(&options).unwrap();
//! assert_eq!(template.refs()["topic"], serde_json::json!({"Ref": "WatchbotTopic"}));
//! assert_eq!(template.watcher_environment()["Concurrency"], "1");
//! let merged = watchbot_template::merge(&[template.to_json(), serde_json::json!({"Resources": {}})]).unwrap();
//! assert!(merged["Resources"]["WatchbotQueue"].is_object());
//! ```
//!
//! serde_json's `Map` is a `BTreeMap` here (no `preserve_order`), so every object is written with sorted keys and the
//! same options always give byte-identical JSON.

// Every public item says what it is for (a library users depend on).
#![warn(missing_docs)]

mod build;
mod container;
mod error;
mod json;
mod merge;
mod options;
mod outputs;

pub use build::metrics::{METRICS, NAMESPACE};
pub use build::{Template, WATCHER_CONTAINER, WORKER_CONTAINER, template, watcher_environment};
pub use container::{DEFAULT_WORKER_SOFT_MEMORY, LiteralContainer, Mount, WorkerContainer};
pub use error::{Error, MergeError};
pub use json::parse_strict;
pub use merge::merge;
pub use options::{
    BillingMode, Capacity, CapacityProvider, DEFAULT_FAILURE_RATE_PERIODS, DEFAULT_FAILURE_RATE_THRESHOLD, FargateSize,
    Network, Options, Reservation,
};
pub use outputs::Outputs;

/// `value` with every object's keys in sorted order, whatever serde_json's features: with `preserve_order` (which
/// other crates of a build may switch on, e.g. the AWS SDK's HTTP client) a `Map` keeps insertion order, and the
/// output must not depend on what else is linked.
pub fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(key, value)| (key, sorted(value))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The watcher image tag used when `watchbotVersion` is not given: this crate's version, as `v<version>`.
pub const DEFAULT_WATCHBOT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
