//! The `watchbot` binary: see `watchbot_cli` for the commands.

fn main() -> std::process::ExitCode {
    watchbot_cli::main()
}
