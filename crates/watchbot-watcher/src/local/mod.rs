//! Adapters of the ports for one machine: the embedded SQLite queue, the child-process runner, the file notifier,
//! and the attempt history.

pub mod history;
pub mod notifier;
pub mod process;
pub mod program;
pub mod queue;
