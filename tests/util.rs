//! Helpers for running the `watchbot` binaries in tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `watchbot` binary under test.
pub fn watchbot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watchbot"))
}

/// Runs a command and returns its output.
pub fn output(command: &mut Command) -> Output {
    command.output().expect("run watchbot")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A path under the workspace root.
pub fn workspace_path(relative: &str) -> PathBuf {
    watchbot_testing::workspace_root().join(relative)
}
