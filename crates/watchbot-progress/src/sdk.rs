//! The AWS SDK crates whose types this crate's API takes ([`crate::open`]'s `SdkConfig`, [`crate::DynamoStore::new`]'s
//! client), re-exported so that a user names the same versions without a dependency of their own:
//! `watchbot_progress::sdk::aws_config::load_defaults(...)`.

pub use aws_config;
pub use aws_sdk_dynamodb;
