//! The watcher: polls a queue, runs one task per message, and turns the task's exit code into what happens to the
//! message (0 delete, 3 delete and notify, 4 return quietly, anything else return with backoff and notify).
//!
//! Layout:
//! - [`ports`]: the traits through which the loop reaches the world (queue, task runner, notifier). No SDK types.
//! - [`decide`]: pure decisions (exit code → outcome, backoff delay, notification text): no I/O, no clock.
//! - [`message`]: message parsing (SNS envelope or raw), the task's environment, the ECS overrides size.
//! - [`run`](mod@run): the loop, generic over the ports: `run(ports, &config, shutdown)`.
//! - [`ops`]: the operator's view of a queue (status, dead letters listed, shown, redriven, deleted), behind the
//!   `Operate` port that the embedded queue and the SQS adapter implement, for `watchbot status` and `dead-letter`.
//! - [`events`]: the loop's typed events and sinks (JSON lines on stderr by default).
//! - [`console`]: the watcher's own stdout and stderr, whole lines around an optional live status line.
//! - [`output`]: a task's output, captured: lines forwarded with the message id, a bounded tail kept.
//! - [`service`]: the watcher as a service on SQS/SNS with a runner, stopped by SIGTERM/SIGINT: `serve_env`, the
//!   one wiring of both binaries, and the exit codes of watchbot's programs.
//! - [`config`]: the watcher's configuration from environment variables (the template's watcher task definition).
//! - [`aws`]: adapters on the AWS SDK (SQS queue, SNS topic/notifier, ECS runner), SDK errors as one line, and
//!   `aws::sdk`, the one place that loads `aws-config` and builds clients. The only module that names the SDK.
//! - [`local`]: adapters for one machine (embedded SQLite queue, child-process runner, container runner on the Docker
//!   Engine with the `docker` feature, file notifier).
//! - `testing` (tests, or the `test-util` feature): in-process fakes of the ports.
//!
//! Cargo features, all on by default, so that a crate that embeds the loop on one path does not compile the
//! other (as aws-lambda-rust-runtime has one feature per event source): `aws` (the AWS SDK: [`aws`], [`config`],
//! and with `local` also [`service`] and the `watchbot-watcher` binary), `local` (SQLite and libc: [`local`]) and
//! `docker` (bollard, with `local`: `local::docker`, and `watchbot watch --runner docker` in [`service`]).
//! The loop, the ports, the decisions and the events need neither.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod config;
pub mod console;
pub mod decide;
pub mod events;
pub mod limits;
#[cfg(feature = "local")]
pub mod local;
pub mod message;
pub mod ops;
pub mod output;
pub mod ports;
pub mod run;
#[cfg(all(feature = "aws", feature = "local"))]
pub mod service;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use decide::{ExitCodeTable, Outcome};
pub use events::{Event, EventSink};
pub use run::{Error, Jitter, OnShutdown, Ports, RunSummary, TaskSizeLimit, WatcherConfig, run};
