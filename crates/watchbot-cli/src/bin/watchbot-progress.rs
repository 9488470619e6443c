//! `watchbot-progress`: the original's command name for `watchbot progress`.

fn main() -> std::process::ExitCode {
    watchbot_cli::main_as("watchbot-progress", "progress", watchbot_cli::cmd::progress::run)
}
