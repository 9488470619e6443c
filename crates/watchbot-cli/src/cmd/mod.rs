//! One module per subcommand.

pub mod dashboard;
pub mod dead_letter;
pub mod decrypt_env;
pub mod local;
pub mod log;
pub mod logs;
pub mod merge;
pub mod progress;
pub mod queue_address;
pub mod send;
pub mod status;
pub mod template;
pub mod watch;
