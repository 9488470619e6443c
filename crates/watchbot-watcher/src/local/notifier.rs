//! The local notifier: notifications to stderr (for the person at the terminal) and appended as JSON lines to
//! `notifications.jsonl` in the state folder (for scripts and tests).
//!
//! Each notification is appended with one `write` on a file opened with `O_APPEND`, so two watchers sharing a state
//! folder never interleave their lines.

use crate::ports::{Notification, Notifier, PortError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The notifications file's name inside the state folder.
pub const NOTIFICATIONS_FILE: &str = "notifications.jsonl";

/// Writes notifications to stderr and `<state>/notifications.jsonl`.
#[derive(Debug, Clone)]
pub struct LocalNotifier {
    path: PathBuf,
    stderr: bool,
}

impl LocalNotifier {
    /// A notifier writing to stderr and to `notifications.jsonl` in `state_dir`.
    pub fn new(state_dir: &Path) -> LocalNotifier {
        LocalNotifier { path: state_dir.join(NOTIFICATIONS_FILE), stderr: true }
    }

    /// The same, without the stderr copy (benchmarks, tests).
    pub fn file_only(state_dir: &Path) -> LocalNotifier {
        LocalNotifier { path: state_dir.join(NOTIFICATIONS_FILE), stderr: false }
    }

    /// The JSON-lines file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Notifier for LocalNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut line = serde_json::to_string(&serde_json::json!({
            "time_ms": time_ms,
            "subject": notification.subject,
            "body": notification.body,
        }))
        .map_err(|e| PortError::transient(format!("local notifier: {e}")))?;
        line.push('\n');
        if self.stderr {
            let mut text = format!("\n=== notification: {} ===\n", notification.subject);
            for body_line in notification.body.lines() {
                text.push_str("  ");
                text.push_str(body_line);
                text.push('\n');
            }
            // One write, so the block does not interleave with the workers' output mid-line (and clears the live line).
            crate::console::write(crate::console::Stream::Stderr, text.as_bytes());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(line.as_bytes())
        })
        .await
        .map_err(|e| PortError::transient(format!("local notifier: {e}")))?
        .map_err(|e| PortError::transient(format!("local notifier: cannot append to {}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_one_json_line_per_notification() {
        let dir = tempfile::tempdir().unwrap();
        let notifier = LocalNotifier::file_only(&dir.path().join("state"));
        for n in 0..2 {
            let notification = Notification { subject: format!("s{n}"), body: "line 1\nline 2".into() };
            notifier.notify(&notification).await.unwrap();
        }
        let text = std::fs::read_to_string(notifier.path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["subject"], "s1");
        assert_eq!(lines[0]["body"], "line 1\nline 2");
        assert!(lines[0]["time_ms"].as_u64().unwrap() > 0);
    }
}
