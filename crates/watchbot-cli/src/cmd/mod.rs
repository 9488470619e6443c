//! One module per subcommand.

pub mod local;
pub mod log;
pub mod logs;
pub mod merge;
pub mod progress;
pub mod send;
pub mod template;
pub mod watch;
