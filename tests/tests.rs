//! End-to-end tests of the `watchbot` CLI: one test binary, a module per command. Every binary runs through
//! `util` (a `TestCommand` in a fresh folder, from `watchbot_testing::process`): each wait on a child has a deadline
//! and each failure shows what ran, what it waited for, and the child's stdout and stderr.

mod dashboard;
mod decrypt_env;
mod docker;
mod exit_codes;
mod heartbeat;
mod local;
mod log;
mod logs;
mod merge;
mod operating;
mod progress;
mod send;
mod template;
mod util;
mod watch;
