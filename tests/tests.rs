//! End-to-end tests of the `watchbot` CLI: one test binary, a module per topic, small helpers in `util`.

mod exit_codes;
mod heartbeat;
mod local;
mod log;
mod merge;
mod progress;
mod send;
mod template;
mod util;
mod watch;
