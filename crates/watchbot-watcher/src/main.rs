//! The `watchbot-watcher` binary run by the watcher container: configured only by the environment variables the
//! template's watcher task definition sets. Runs ECS tasks until SIGTERM/SIGINT, then stops gracefully and exits 0;
//! a missing or malformed variable is one line naming it and exit 1, a work queue it cannot read at start (no such
//! queue, access denied, no credentials) one line and exit 69 (`service::Exit`). It takes no arguments: `--help`
//! prints what it does and the variables it reads, `--version` its version, anything else is a usage error (2).

use std::process::ExitCode;
use watchbot_watcher::config::{self, Need};
use watchbot_watcher::service::{self, Exit, Program};

fn help() -> String {
    let mut text = String::from(
        "The watchbot watcher: polls the SQS work queue, runs one ECS task per message (RunTask with the message in \
         its environment), and deletes or returns each message by the task's exit code. It runs in the watcher \
         container of a watchbot stack, configured only by environment variables (the template sets them); to run \
         a watcher by hand, use `watchbot watch`.\n\nUsage: watchbot-watcher\n\nEnvironment variables:\n",
    );
    for (name, need) in config::VARIABLES {
        let need = match need {
            Need::Container | Need::Ecs | Need::Always => "required",
            Need::Optional => "optional",
        };
        text.push_str(&format!("  {name:<20} {need}\n"));
    }
    text.push_str(
        "\nExit codes: 0 after a graceful stop (SIGTERM/SIGINT), 1 a missing or malformed variable, 2 usage, 69 the \
         work queue cannot be read at start.\n",
    );
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("watchbot-watcher {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("watchbot-watcher: unexpected argument {other:?}: it takes none (see --help)");
            return ExitCode::from(Exit::Usage.code());
        }
    }
    match service::serve_env(&config::environment(std::env::vars_os()), Program::Container) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("watchbot-watcher: {error}");
            ExitCode::from(error.exit().code())
        }
    }
}
