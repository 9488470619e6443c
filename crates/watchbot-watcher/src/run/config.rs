//! How the loop behaves: [`WatcherConfig`] and its parts, and the check that a config makes sense.

use super::Error;
use crate::decide;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::message::TaskSizeLimit;

/// What a graceful stop does with tasks still running. Either way their messages return to the queue at once and
/// are never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    /// Stop them (SIGTERM/StopTask) and wait up to `shutdown_grace` (child processes must not outlive the watcher).
    StopTasks,
    /// Leave them running: the next watcher to receive the message adopts the running task (ECS `startedBy`), so
    /// a redeploy of the watchers does not restart every job.
    LeaveRunning,
}

/// Where the loop takes its random jitter from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Uniform in `[0, 1)` (production).
    Random,
    /// Always this value (tests that assert exact delays).
    Fixed(f64),
}

impl Jitter {
    pub(crate) fn sample(self) -> f64 {
        match self {
            Jitter::Random => fastrand::f64(),
            Jitter::Fixed(value) => value,
        }
    }
}

/// How the loop behaves.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WatcherConfig {
    /// Tasks at once (messages held at once, waiting placement included).
    pub workers: usize,
    /// A task still running this long after its launch is stopped and counted as a failure.
    pub message_timeout: Duration,
    /// Returned messages wait about `2^receiveCount` s (`false`: visible again at once).
    pub backoff: bool,
    /// Failure notifications are silent while the receive count is at most this.
    pub notify_after_retries: u32,
    /// Whether each failure notifies (`false`: ordinary failures are left to the stack's failure-rate alarm; a
    /// rejection and a failure that sends the message to the dead-letter queue still notify).
    pub notify_each_failure: bool,
    /// The stack's name, for notification subjects.
    pub stack_name: String,
    /// Added to every task's environment (`WorkTopic`, `LogGroup`, `ProgressTable`, the user's env ...).
    pub task_env: BTreeMap<String, String>,
    /// Held messages are kept invisible this long at a time, renewed every third of it: a watcher that dies lets its
    /// messages reappear within one window.
    pub heartbeat_window: Duration,
    /// Long-polling wait of each receive (SQS: at most 20 s).
    pub receive_wait: Duration,
    /// How often running tasks are polled (one batched call for all of them).
    pub poll_interval: Duration,
    /// On shutdown, how long to wait for stopped tasks to end.
    pub shutdown_grace: Duration,
    /// What a graceful stop does with running tasks.
    pub on_shutdown: OnShutdown,
    /// Exit code → outcome.
    pub exit_codes: decide::ExitCodeTable,
    /// Size limit of the task's environment (ECS); `None` for runners without one.
    pub task_size_limit: Option<TaskSizeLimit>,
    /// Longest wait between placement retries (and retries of failed calls).
    pub max_retry_delay: Duration,
    /// Jitter source.
    pub jitter: Jitter,
    /// How long finished messages' deletes/returns and freed slots wait for company, so that deletes and receives
    /// go in batches of up to 10 (fewer requests per message on SQS). Zero: at once (local mode, where a request
    /// costs nothing).
    pub batch_linger: Duration,
    /// The queue's redrive threshold (`maxReceiveCount` of its RedrivePolicy; locally `--max-receive-count`), so a
    /// failure on the last allowed receive is known as such: notified as going to the dead-letter queue, counted as
    /// dead-lettered at once, and returned without a backoff. `None`: no redrive policy known.
    pub max_receive_count: Option<u32>,
    /// The flags that name this queue to watchbot's commands (`--state DIR`, `--queue-url URL`), shown in the
    /// redrive command of a dead-lettered message's notification.
    pub queue_flags: String,
}

impl Default for WatcherConfig {
    fn default() -> WatcherConfig {
        WatcherConfig {
            workers: 1,
            message_timeout: Duration::from_secs(600),
            backoff: true,
            notify_after_retries: 0,
            notify_each_failure: true,
            stack_name: "watchbot".into(),
            task_env: BTreeMap::new(),
            heartbeat_window: Duration::from_secs(60),
            receive_wait: Duration::from_secs(20),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            on_shutdown: OnShutdown::StopTasks,
            exit_codes: decide::ExitCodeTable::default(),
            task_size_limit: None,
            max_retry_delay: Duration::from_secs(60),
            jitter: Jitter::Random,
            batch_linger: Duration::ZERO,
            max_receive_count: None,
            queue_flags: String::new(),
        }
    }
}

impl WatcherConfig {
    /// Which failures notify, from `notify_after_retries` and `notify_each_failure`.
    pub fn notify_rules(&self) -> decide::NotifyRules {
        decide::NotifyRules { after_retries: self.notify_after_retries, each_failure: self.notify_each_failure }
    }
}

pub(super) fn validate(config: &WatcherConfig) -> Result<(), Error> {
    if config.workers == 0 {
        return Err(Error::Config("workers must be at least 1".into()));
    }
    if config.heartbeat_window < Duration::from_secs(3) {
        return Err(Error::Config("heartbeat window must be at least 3 s".into()));
    }
    if config.heartbeat_window > decide::MAX_VISIBILITY {
        return Err(Error::Config("heartbeat window must be at most 12 hours".into()));
    }
    if config.receive_wait > Duration::from_secs(20) {
        return Err(Error::Config("receive wait must be at most 20 s".into()));
    }
    if config.poll_interval.is_zero() {
        return Err(Error::Config("poll interval must be more than zero".into()));
    }
    Ok(())
}
