//! The pinned Python tools (moto's server, cfn-lint) in a virtualenv of the project's own, `target/tools/venv`; and
//! Debian's Chromium and chromedriver for the dashboard's browser test ([`ensure_chromium`]).
//!
//! The virtualenv sees the system's site-packages, so a machine that already has the pinned versions installs
//! nothing; otherwise pip installs them there. Nothing global is touched, so a second run finds them in place.

use crate::{Result, root, run, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes sure the virtualenv holds the pinned tools; returns its directory.
pub fn ensure_python_tools() -> Result<PathBuf> {
    let venv = target_dir().join("tools/venv");
    let python = venv.join("bin/python");
    let requirements = root().join("xtask/python-requirements.txt");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(venv);
    }
    if !python.exists() {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&system_python).args(["-m", "venv", "--system-site-packages"]).arg(&venv))
            .map_err(|e| format!("{e}: Python 3 with the venv module is needed for the emulator"))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(venv)
}

/// Points a command's tests at the virtualenv's Python (the harness reads `WATCHBOT_TEST_PYTHON`).
pub fn with_venv<'a>(command: &'a mut Command, venv: &Path) -> &'a mut Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    command
        .env("WATCHBOT_TEST_PYTHON", venv.join("bin/python"))
        .env("PATH", std::env::join_paths(paths).unwrap_or(path))
}

/// Debian's packages of the browser test (`tests/dashboard.rs`): headless Chromium and its WebDriver server.
const CHROMIUM_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// Makes sure `chromium` and `chromedriver` are on `PATH`, installing Debian's packages with apt-get (as root; run
/// `apt-get update` first if the package lists are missing) when either is not.
pub fn ensure_chromium() -> Result {
    let found = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if found("chromium") && found("chromedriver") {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let sudo = |command: &str| {
        let mut c = if root { Command::new(command) } else { Command::new("sudo") };
        if !root {
            c.arg(command);
        }
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    eprintln!("xtask: installing {} for the dashboard's browser test", CHROMIUM_PACKAGES.join(" "));
    let install = || run(sudo("apt-get").args(["install", "-y", "-q"]).args(CHROMIUM_PACKAGES));
    install()
        .or_else(|_| run(sudo("apt-get").args(["update", "-q"])).and_then(|()| install()))
        .map_err(|e| format!("{e}: the browser test needs Debian's {} packages", CHROMIUM_PACKAGES.join(" and ")))
}

/// What the watcher image's tests need besides the engine: `ldd` (always there with glibc) and the host's CA
/// certificates, which `cargo xtask image` copies into the image; Debian's `ca-certificates` is installed if missing.
pub fn ensure_image_tools() -> Result {
    if Path::new("/etc/ssl/certs/ca-certificates.crt").is_file() {
        return Ok(());
    }
    run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "ca-certificates"]))
        .map_err(|e| format!("{e}: the watcher image needs the CA certificates of Debian's ca-certificates"))
}
