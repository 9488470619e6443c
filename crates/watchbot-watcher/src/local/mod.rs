//! Adapters of the ports for one machine: the embedded SQLite queue, the child-process runner, the container runner
//! (feature `docker`), the file notifier, and the attempt history.

#[cfg(feature = "docker")]
pub mod docker;
pub mod history;
pub mod notifier;
pub mod process;
pub mod program;
pub mod queue;
mod slots;

/// The SQLite layer whose errors (and `rusqlite`'s) the queue's and the history's errors carry, re-exported so that a
/// user names the same versions without a dependency of their own.
pub use watchbot_sqlite;
