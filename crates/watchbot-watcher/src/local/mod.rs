//! Adapters of the ports for one machine: the embedded SQLite queue, the child-process runner, the file notifier,
//! and the attempt history.

pub mod history;
pub mod notifier;
pub mod process;
pub mod program;
pub mod queue;

/// The SQLite layer whose errors (and `rusqlite`'s) the queue's and the history's errors carry, re-exported so that a
/// user names the same versions without a dependency of their own.
pub use watchbot_sqlite;
