//! The `watchbot-watcher` binary run by the watcher container: configured only by the environment variables the
//! template's watcher task definition sets.

fn main() -> std::process::ExitCode {
    eprintln!("watchbot-watcher: not built yet");
    std::process::ExitCode::from(1)
}
