//! The watcher's integration tests, one test binary with a module per concern (one link of the SDK and the test
//! support instead of eight): environment config, the queue conformance suite (local queue and SQS on moto), the ECS
//! runner on moto and on `aws-smithy-mocks`, the local queue, the loop on the emulator, the process runner, task output (pipes, and CloudWatch Logs on moto), the outcome metrics (`metrics`, on mocks), and the
//! loop's scenarios on the in-process fakes (`watchbot_watcher::testing`).
//!
//! Run one module with `cargo test -p watchbot-watcher --test tests loop_scenarios::`.

mod config;
mod conformance;
mod dead_lettering;
mod ecs;
mod ecs_mocks;
mod image;
mod local_queue;
mod loop_aws;
mod loop_scenarios;
mod metrics;
mod process;
mod task_output;
