//! `cargo package` of the library crates, as crates.io would build them: each packaged alone (its manifest
//! normalized, path dependencies by version, its readme), then built from the package (`cargo package` verifies).
//!
//! Our manifests say `publish = false` until the owners decide to publish, and `cargo package` of several crates
//! that depend on one another builds the later ones against the earlier packages only when they may be published
//! (it stages them in a local registry); with `publish = false` it looks for `watchbot-sqlite` on crates.io and fails.
//! So the check runs on a copy of the workspace (`target/package-check/workspace`, the files git knows, as they are
//! in the working tree) whose root manifest says `publish = true` instead of `false`; nothing is published, and the
//! workspace itself keeps its setting. `--offline`: the registry cache the build filled is enough, so CI never
//! needs crates.io for it. The build shares the workspace's target folder, so only our crates are compiled again.

use crate::{Result, root, run, target_dir};
use std::path::Path;
use std::process::Command;

/// The library crates, dependencies first.
pub const LIBRARIES: &[&str] =
    &["watchbot-sqlite", "watchbot-log", "watchbot-template", "watchbot-progress", "watchbot-watcher"];

/// Packages and verifies every library crate.
pub fn package_libraries() -> Result {
    let copy = target_dir().join("package-check/workspace");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(|e| format!("cannot clear {}: {e}", copy.display()))?;
    }
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !listed.status.success() {
        return Err("git ls-files failed: the package check copies the files git knows".into());
    }
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file).map_err(|e| e.to_string())?);
        let from = root().join(relative);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = copy.join(relative);
        std::fs::create_dir_all(to.parent().unwrap_or(&copy)).map_err(|e| e.to_string())?;
        std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
    let publishable = unpublished_removed(&text)?;
    std::fs::write(&manifest, publishable).map_err(|e| e.to_string())?;
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(["package", "--offline", "--allow-dirty"]);
    for library in LIBRARIES {
        command.args(["-p", library]);
    }
    command.env("CARGO_TARGET_DIR", target_dir()).env("CARGO_TERM_PROGRESS_WHEN", "never");
    // `run` works in the workspace root; the package check runs in the copy.
    run(command.arg("--manifest-path").arg(&manifest))
}

/// The root manifest with `publish = true` for its `publish = false` (an error if there is none: the check would
/// be moot).
fn unpublished_removed(manifest: &str) -> Result<String> {
    if !manifest.lines().any(|line| line.trim() == "publish = false") {
        return Err("the root Cargo.toml has no `publish = false` line (update xtask/src/package.rs)".into());
    }
    let lines: Vec<&str> =
        manifest.lines().map(|line| if line.trim() == "publish = false" { "publish = true" } else { line }).collect();
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_publish_line_changes() {
        let manifest = "[workspace.package]\nversion = \"0.1.0\"\npublish = false\n";
        let publishable = "[workspace.package]\nversion = \"0.1.0\"\npublish = true\n";
        assert_eq!(super::unpublished_removed(manifest).unwrap(), publishable);
        assert!(super::unpublished_removed("[package]\n").is_err());
    }
}
