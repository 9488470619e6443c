//! [`RecordingNotifier`]: keeps the notifications sent, and can be made to fail or hang.

use super::lock;
use crate::ports::{Notification, Notifier, PortError};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records notifications; can be made to fail.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
    failures: Arc<Mutex<VecDeque<PortError>>>,
    hangs: Arc<Mutex<VecDeque<Duration>>>,
}

impl RecordingNotifier {
    /// Notifications sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }

    /// Makes the next `count` notifications fail.
    pub fn fail_next(&self, count: usize, error: PortError) {
        let mut failures = lock(&self.failures);
        for _ in 0..count {
            failures.push_back(error.clone());
        }
    }

    /// Makes the next `count` notifications hang for `duration` before they are sent.
    pub fn hang_next(&self, count: usize, duration: Duration) {
        let mut hangs = lock(&self.hangs);
        for _ in 0..count {
            hangs.push_back(duration);
        }
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, notification: &Notification) -> impl Future<Output = Result<(), PortError>> + Send {
        let notification = notification.clone();
        async move {
            let hang = lock(&self.hangs).pop_front();
            if let Some(duration) = hang {
                tokio::time::sleep(duration).await;
            }
            if let Some(error) = lock(&self.failures).pop_front() {
                return Err(error);
            }
            lock(&self.sent).push(notification);
            Ok(())
        }
    }
}
