//! The watcher: polls a queue, runs one task per message, and turns the task's exit code into what happens to the
//! message (0 delete, 3 delete and notify, 4 return quietly, anything else return with backoff and notify).
//!
//! Layout:
//! - [`ports`]: the traits through which the loop reaches the world (queue, task runner, notifier). No SDK types.
//! - pure decisions (exit code → outcome, backoff delay, notification text): no I/O, no clock.
//! - the loop, generic over the ports: `run(ports, &config, shutdown)`.
//! - [`aws`]: adapters on the AWS SDK (SQS queue, SNS topic/notifier, ECS runner). The only module that imports
//!   `aws_sdk_*`.
//! - [`local`]: adapters for one machine (embedded SQLite queue, child-process runner, file notifier).

pub mod aws;
pub mod local;
pub mod ports;
