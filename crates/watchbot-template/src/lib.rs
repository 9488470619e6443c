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

mod build;
mod error;
mod merge;
mod options;

pub use build::{Template, WATCHER_CONTAINER, WORKER_CONTAINER, template, watcher_environment};
pub use error::{Error, MergeError};
pub use merge::merge;
pub use options::{Options, Reservation};

/// The watcher image tag used when `watchbotVersion` is not given: this crate's version, as `v<version>`.
pub const DEFAULT_WATCHBOT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
