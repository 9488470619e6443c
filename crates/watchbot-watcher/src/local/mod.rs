//! Adapters of the ports for one machine: the embedded SQLite queue, the child-process runner, the file notifier.

pub mod notifier;
pub mod process;
pub mod program;
pub mod queue;
