//! Where the embedded queue's time comes from: the [`Clock`] trait, the wall clock, and a manual clock for tests.

#[cfg(any(test, feature = "test-util"))]
use std::sync::Arc;
#[cfg(any(test, feature = "test-util"))]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(any(test, feature = "test-util"))]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the queue's time comes from: sent and first-receive timestamps, visibility windows, delays.
///
/// Production uses [`SystemClock`]; tests of visibility windows use `ManualClock` (feature `test-util`) and move
/// time on instead of waiting it out. Long polls still wake on real (tokio) time to look again, so a manual clock
/// moved during a poll is noticed within [`LocalQueueConfig::poll_interval`](super::LocalQueueConfig::poll_interval).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock that stands still until moved: [`ManualClock::advance`]. Clones share one time.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock at `start_ms` (milliseconds since the Unix epoch).
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
