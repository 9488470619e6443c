//! The worker program of the process runner, checked before the first receive: a name is looked up in the tasks'
//! `PATH`, a path must be an executable file, and a script's interpreter (its `#!` line) must exist, so a typo
//! fails once, naming what is missing, instead of as a failed task per message (where the kernel's ENOENT would
//! name the script, which exists, rather than its missing interpreter).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the process runner looks when `PATH` is unset (as `local::process::spawn` does).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn executable(path: &Path) -> bool {
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn find_in_path(name: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path).map(|dir| dir.join(name)).find(|candidate| executable(candidate))
}

/// `program` as a path the tasks can exec, with `path` as their `PATH`; or one line saying what is wrong.
pub fn resolve(program: &str, path: &str) -> Result<PathBuf, String> {
    // Without a `PATH`, exec looks where `execvp` does.
    let path = if path.is_empty() { DEFAULT_PATH } else { path };
    let resolved = if program.contains('/') {
        let candidate = PathBuf::from(program);
        if !candidate.exists() {
            return Err(format!("worker command {program:?} does not exist"));
        }
        if !executable(&candidate) {
            return Err(format!("worker command {program:?} is not an executable file"));
        }
        candidate
    } else {
        find_in_path(program, path).ok_or_else(|| format!("worker command {program:?} was not found in PATH"))?
    };
    check_interpreter(program, &resolved, path)?;
    Ok(resolved)
}

/// A script's `#!` interpreter exists and is executable (and, for `#!/usr/bin/env NAME`, NAME is in `path`).
fn check_interpreter(program: &str, file: &Path, path: &str) -> Result<(), String> {
    let mut head = [0u8; 256];
    let read = std::fs::File::open(file).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    let Some(line) = head[..read].strip_prefix(b"#!") else { return Ok(()) };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next() else {
        return Err(format!("worker command {program:?} starts with `#!` but names no interpreter"));
    };
    let shebang = format!("#!{}", line.trim());
    if !executable(Path::new(interpreter)) {
        return Err(format!(
            "worker command {program:?}: the interpreter on its first line ({shebang}) is missing or not executable"
        ));
    }
    if Path::new(interpreter).file_name().is_some_and(|n| n == "env") {
        let name = words.find(|w| !w.starts_with('-'));
        if let Some(name) = name.filter(|n| !n.contains('=') && !n.contains('/'))
            && find_in_path(name, path).is_none()
        {
            return Err(format!(
                "worker command {program:?}: the interpreter on its first line ({shebang}) is not in PATH: {name}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, text: &str) -> String {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        file.display().to_string()
    }

    #[test]
    fn programs_resolve_and_their_interpreters_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = DEFAULT_PATH;
        let good = script(dir.path(), "good.sh", "#!/bin/sh\necho hi\n");
        assert_eq!(resolve(&good, path), Ok(PathBuf::from(&good)));
        let via_env = script(dir.path(), "env.sh", "#!/usr/bin/env sh\necho hi\n");
        assert!(resolve(&via_env, path).is_ok());
        let missing = script(dir.path(), "missing.sh", "#!/usr/bin/no-such-shell -e\necho hi\n");
        let error = resolve(&missing, path).unwrap_err();
        assert!(
            error.ends_with(
                "the interpreter on its first line (#!/usr/bin/no-such-shell -e) is missing or not executable"
            ),
            "{error}"
        );
        let env_missing = script(dir.path(), "envmissing.sh", "#!/usr/bin/env no-such-python3\n");
        let error = resolve(&env_missing, path).unwrap_err();
        assert!(error.ends_with("is not in PATH: no-such-python3"), "{error}");
        let binary = script(dir.path(), "binary", "\x7fELF...");
        assert!(resolve(&binary, path).is_ok(), "not a script: exec decides");
        assert_eq!(
            resolve("./no/such/worker", path).unwrap_err(),
            "worker command \"./no/such/worker\" does not exist"
        );
        assert!(resolve("no-such-worker-command", path).unwrap_err().ends_with("was not found in PATH"));
        assert_eq!(resolve("sh", path).map(|p| p.file_name().unwrap().to_owned()), Ok("sh".into()));
    }
}
