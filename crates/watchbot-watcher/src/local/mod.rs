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
