//! Outcomes over time: how many attempts succeeded, failed and were rejected in each minute of a recent window, for
//! the dashboard's chart. Behind the [`Outcomes`] port: locally the attempt history of a state folder
//! ([`HistoryOutcomes`], `local::history`), on AWS the stack's CloudWatch metrics (`aws::metrics`, the metric filters
//! the template publishes in the namespace `Watchbot/<stack name>`). [`bucket`] is the pure part both share.

use super::OpsError;
use std::future::Future;

/// One minute's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Minute {
    /// Epoch ms of the minute's start (a multiple of 60,000).
    pub start_ms: u64,
    /// Attempts that succeeded (exit 0).
    pub succeeded: u64,
    /// Attempts that failed (returned to the queue with a notification).
    pub failed: u64,
    /// Attempts that were rejected (exit 3: deleted with a notification).
    pub rejected: u64,
}

/// The minutes of a window, oldest first: `minutes` of them, the last being the one that holds `now_ms`.
pub fn window(now_ms: u64, minutes: u32) -> Vec<Minute> {
    let last = now_ms - now_ms % 60_000;
    (0..u64::from(minutes))
        .rev()
        .map(|back| Minute { start_ms: last.saturating_sub(back * 60_000), ..Minute::default() })
        .collect()
}

/// Adds `count` attempts with outcome `outcome` (`succeeded`, `failed`, `rejected`; others are not charted) that
/// ended at `ended_ms` to the window's minute that holds it (ignored outside the window).
pub fn bucket(window: &mut [Minute], ended_ms: u64, outcome: &str, count: u64) {
    let Some(first) = window.first().map(|m| m.start_ms) else { return };
    if ended_ms < first {
        return;
    }
    let index = ((ended_ms - first) / 60_000) as usize;
    let Some(minute) = window.get_mut(index) else { return };
    match outcome {
        "succeeded" => minute.succeeded += count,
        "failed" => minute.failed += count,
        "rejected" => minute.rejected += count,
        _ => {}
    }
}

/// Where the counts of a queue's outcomes over time come from.
pub trait Outcomes: Send + Sync {
    /// The last `minutes` minutes up to `now_ms`, oldest first (see [`window`]).
    fn per_minute(&self, now_ms: u64, minutes: u32) -> impl Future<Output = Result<Vec<Minute>, OpsError>> + Send;
}

/// The outcomes recorded in a state folder's attempt history (`watchbot local`): an empty window while it has
/// none.
#[cfg(feature = "local")]
#[derive(Debug, Clone)]
pub struct HistoryOutcomes {
    state_dir: std::path::PathBuf,
}

#[cfg(feature = "local")]
impl HistoryOutcomes {
    /// The outcomes of the state folder `state_dir`.
    pub fn new(state_dir: impl Into<std::path::PathBuf>) -> HistoryOutcomes {
        HistoryOutcomes { state_dir: state_dir.into() }
    }
}

#[cfg(feature = "local")]
impl Outcomes for HistoryOutcomes {
    async fn per_minute(&self, now_ms: u64, minutes: u32) -> Result<Vec<Minute>, OpsError> {
        let mut minutes = window(now_ms, minutes);
        let Some(since) = minutes.first().map(|m| m.start_ms) else { return Ok(minutes) };
        let state_dir = self.state_dir.clone();
        let counts = tokio::task::spawn_blocking(move || match crate::local::history::History::open(&state_dir) {
            Ok(history) => history.outcomes_since(since).map_err(|e| e.to_string()),
            Err(crate::local::history::HistoryError::Missing(_)) => Ok(Vec::new()),
            Err(error) => Err(error.to_string()),
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| OpsError::Port(crate::ports::PortError::transient(e)))?;
        for (minute_ms, outcome, count) in counts {
            bucket(&mut minutes, minute_ms, &outcome, count);
        }
        Ok(minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_ends_with_the_current_minute_and_buckets_by_end_time() {
        let now = 10 * 60_000 + 30_000;
        let mut minutes = window(now, 3);
        assert_eq!(minutes.iter().map(|m| m.start_ms).collect::<Vec<_>>(), [480_000, 540_000, 600_000]);
        bucket(&mut minutes, 480_000, "succeeded", 2);
        bucket(&mut minutes, 599_999, "failed", 1);
        bucket(&mut minutes, 630_000, "rejected", 1);
        bucket(&mut minutes, 630_000, "returned", 5);
        bucket(&mut minutes, 479_999, "succeeded", 9);
        bucket(&mut minutes, 660_000, "succeeded", 9);
        assert_eq!((minutes[0].succeeded, minutes[1].failed, minutes[2].rejected), (2, 1, 1));
        assert_eq!(minutes.iter().map(|m| m.succeeded + m.failed + m.rejected).sum::<u64>(), 4);
    }
}

#[cfg(all(test, feature = "local"))]
mod history_tests {
    use super::*;
    use crate::local::history::History;
    use crate::ports::{Attempt, AttemptLog, TaskOutput};

    fn ended(outcome: &str, ended_ms: u64) -> Attempt {
        Attempt {
            message_id: "m".into(),
            subject: String::new(),
            receive_count: 1,
            started_ms: ended_ms,
            ended_ms,
            outcome: outcome.into(),
            exit_code: None,
            reason: String::new(),
            output: TaskOutput::Unavailable("none".into()),
        }
    }

    #[tokio::test]
    async fn the_history_is_counted_per_minute_and_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = HistoryOutcomes::new(dir.path());
        let now = 100 * 60_000 + 5_000;
        let empty = outcomes.per_minute(now, 60).await.unwrap();
        assert_eq!((empty.len(), empty.iter().map(|m| m.succeeded).sum::<u64>()), (60, 0), "no history yet");
        let history = History::create(dir.path()).unwrap();
        let (recorder, writer) = history.recorder().unwrap();
        for attempt in [
            ended("succeeded", now - 1_000),
            ended("succeeded", now - 6_000),
            ended("failed", now - 3 * 60_000),
            ended("rejected", now - 59 * 60_000),
            ended("returned", now - 1_000),
            ended("succeeded", now - 61 * 60_000),
        ] {
            recorder.record(attempt);
        }
        drop(recorder);
        writer.finish().unwrap();
        let minutes = outcomes.per_minute(now, 60).await.unwrap();
        let last = minutes[59];
        assert_eq!((last.start_ms, last.succeeded, last.failed, last.rejected), (100 * 60_000, 1, 0, 0), "{minutes:?}");
        // now - 6 s is the minute before (now is 5 s into its minute).
        assert_eq!((minutes[58].succeeded, minutes[56].failed, minutes[0].rejected), (1, 1, 1), "{minutes:?}");
        let total: u64 = minutes.iter().map(|m| m.succeeded + m.failed + m.rejected).sum();
        assert_eq!(total, 4, "returned is not charted, the attempt 61 minutes back is outside: {minutes:?}");
    }
}
