//! `watchbot-log`: the original's command name for `watchbot log`.

fn main() -> std::process::ExitCode {
    watchbot_cli::main_as("log")
}
