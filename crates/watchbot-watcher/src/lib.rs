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
//! - [`aws`]: adapters on the AWS SDK (SQS queue, SNS topic/notifier, ECS runner, task logs, stack resources, KMS
//!   decryption for `watchbot decrypt-env`), SDK errors as one line, and
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
//!
//! The loop on one machine: the embedded queue, a child process per message, notifications in the state folder,
//! and a shutdown future (here: the first delete, seen through an [`EventSink`]; the binaries use SIGTERM):
//!
//! ```rust
//! use std::time::Duration;
//! use watchbot_watcher::events::{Event, EventSink};
//! use watchbot_watcher::local::notifier::LocalNotifier;
//! use watchbot_watcher::local::process::{ProcessRunner, ProcessRunnerConfig};
//! use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
//! use watchbot_watcher::ports::{OutgoingMessage, Queue};
//! use watchbot_watcher::{Ports, WatcherConfig};
//!
//! /// Says when a message was deleted (its task exited 0).
//! struct OnDelete(tokio::sync::mpsc::UnboundedSender<()>);
//!
//! impl EventSink for OnDelete {
//!     fn emit(&self, event: &Event) {
//!         if matches!(event, Event::Deleted { .. }) {
//!             let _ = self.0.send(());
//!         }
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let state = tempfile::tempdir()?;
//! let queue = LocalQueue::open(state.path(), LocalQueueConfig::default())?;
//! let message = OutgoingMessage { body: "tile 4/5/6".into(), attributes: Default::default(), delay: Duration::ZERO };
//! queue.send(message).await?;
//!
//! // Each task gets the message in its environment ($Message, $MessageId, ...); exit 0 deletes it.
//! let script = r#"test "$Message" = "tile 4/5/6""#;
//! let runner = ProcessRunner::new(ProcessRunnerConfig::new("/bin/sh", vec!["-c".into(), script.into()]));
//! let (deleted, mut on_delete) = tokio::sync::mpsc::unbounded_channel();
//! let ports = Ports::new(queue.clone(), runner, LocalNotifier::new(state.path())).with_events(OnDelete(deleted));
//! let mut config = WatcherConfig::default();
//! config.receive_wait = Duration::from_millis(200);
//!
//! let summary = watchbot_watcher::run(ports, &config, async move { on_delete.recv().await; }).await?;
//! assert_eq!((summary.received, summary.succeeded, summary.failed), (1, 1, 0));
//! # Ok(())
//! # }
//! ```

// Every public item says what it is for (a library users depend on).
#![warn(missing_docs)]

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

/// The worker log format the task output is forwarded in (`output::OutputConfig::format`), re-exported so that a
/// user names the same version without a dependency of their own.
pub use watchbot_log;

pub use decide::{ExitCodeTable, Outcome};
pub use events::{Event, EventSink};
pub use run::{Error, Jitter, OnShutdown, Ports, RunSummary, TaskSizeLimit, WatcherConfig, run};
