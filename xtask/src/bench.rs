//! `cargo xtask bench [NAME]`: benchmarks that print figures. Targets live here, never in timed tests.
//!
//! Each benchmark is an example of the crate it measures, built in release mode:
//! `watcher` (crates/watchbot-watcher/examples/bench_watcher.rs), `local` (crates/watchbot-cli/examples/bench_local.rs),
//! `progress` (crates/watchbot-progress/examples/bench_progress.rs).

use crate::{Result, run};
use std::process::Command;

const BENCHES: &[(&str, &str, &str)] = &[
    ("watcher", "watchbot-watcher", "bench_watcher"),
    ("local", "watchbot-cli", "bench_local"),
    ("progress", "watchbot-progress", "bench_progress"),
];

/// Runs the named benchmark, or all of them.
pub fn run_bench(args: &[String]) -> Result {
    let venv = crate::tools::ensure_python_tools()?;
    let selected: Vec<_> = match args.first().map(String::as_str) {
        None | Some("all") => BENCHES.iter().collect(),
        Some(name) => BENCHES.iter().filter(|(n, _, _)| *n == name).collect(),
    };
    if selected.is_empty() {
        let names: Vec<_> = BENCHES.iter().map(|(n, _, _)| *n).collect();
        return Err(format!("unknown benchmark; choose one of: {}", names.join(", ")));
    }
    for (_, package, example) in selected {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["run", "--release", "--quiet", "-p", package, "--example", example, "--"])
            .args(&args[1.min(args.len())..]);
        run(crate::tools::with_venv(&mut command, &venv))?;
    }
    Ok(())
}
