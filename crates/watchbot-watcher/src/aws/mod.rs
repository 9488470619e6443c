//! Adapters of the ports on the AWS SDK, and the one place that loads `aws-config` and builds clients ([`sdk`]).
//! In this crate only this module tree imports `aws_sdk_*`, `aws_config` or `aws_credential_types`; the rest of the
//! watcher (the loop, `service`, `config`, the binary) reaches AWS through these types.

pub mod ecs;
pub mod error;
pub mod kms;
pub mod logs;
pub mod metrics;
pub mod operator;
pub mod sdk;
pub mod sns;
pub mod sqs;
pub mod stack;

/// The SDK crates whose types the adapters take (`aws_config::SdkConfig` in [`sdk::Aws::new`]), re-exported so that
/// a user names the same versions without a dependency of their own.
pub use aws_config;
