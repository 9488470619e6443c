//! `watchbot-log`: the original's command name for `watchbot log`.

fn main() -> std::process::ExitCode {
    watchbot_cli::main_as("watchbot-log", "log", watchbot_cli::cmd::log::run)
}
