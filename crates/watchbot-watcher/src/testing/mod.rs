//! In-process fakes of the ports, for the loop's scenarios (and other crates' tests, with the `test-util` feature).
//!
//! Time is tokio's, so tests run with `#[tokio::test(start_paused = true)]` and jump through minutes at once. Every
//! fake is a cheap handle (clone it, give one to the loop, keep one to look inside) and records its calls, so a
//! test asserts the exact deletes and visibility changes. [`Recorder`] keeps the loop's events.

mod notifier;
mod queue;
mod recorder;
mod runner;

pub use notifier::RecordingNotifier;
pub use queue::{FakeQueue, QueueCall};
pub use recorder::Recorder;
pub use runner::{FakeRunner, RunnerCall, Script};

use std::sync::{Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Epoch ms the fake clock starts at.
pub const EPOCH_MS: u64 = 1_795_000_000_000;
