//! The `watchbot-watcher` binary run by the watcher container: configured only by the environment variables the
//! template's watcher task definition sets. Runs ECS tasks until SIGTERM/SIGINT, then stops gracefully and exits 0;
//! a missing or malformed variable is one line naming it and exit 1, a work queue it cannot read at start (no such
//! queue, access denied, no credentials) one line and exit 69 (`service::Exit`).

use std::process::ExitCode;
use watchbot_watcher::config;
use watchbot_watcher::service::{self, Program};

fn main() -> ExitCode {
    match service::serve_env(&config::environment(std::env::vars_os()), Program::Container) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("watchbot-watcher: {error}");
            ExitCode::from(error.exit().code())
        }
    }
}
