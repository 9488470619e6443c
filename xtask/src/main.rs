//! Project automation, run as `cargo xtask <command>`:
//!
//! - `test`: installs the pinned Python tools (moto, cfn-lint) into `target/tools/venv` when missing (and the CA
//!   certificates the watcher image copies from the host, `tools::ensure_image_tools`; and Debian's `chromium` and
//!   `chromium-driver` for the dashboard's browser test, `tools::ensure_chromium`; and busybox-static, the test
//!   worker image's program, into `target/tools/busybox`, `tools::ensure_busybox`), then runs
//!   `cargo fmt --check`, clippy with `-D warnings`, `cargo doc` with `-D warnings`, the watcher library without its default features (`aws`,
//!   `local`, `docker`, neither), every test of the workspace, its doctests, `cargo package`
//!   of the library crates, and cfn-lint over every template
//!   generated from `examples/config/*.json` and the snapshot configs. The one test command (README, `.ci/run`).
//! - `snapshots [--accept]`: runs the template snapshot tests and shows what changed; `--accept` writes them.
//! - `lint-templates`: cfn-lint over every generated template (part of `test`).
//! - `bench [NAME]`: prints benchmark figures (see `bench.rs`).
//! - `image [--profile PROFILE] [--tag TAG]`: builds the watcher (release unless told) and the watcher image from it,
//!   tagged `watchbot:v<version>`, without a registry (see `image.rs`).
//! - `package`: `cargo package` of the library crates, verified (part of `test`; see `package.rs`).
//!
//! Its tests (`tidy.rs`, run by `cargo test --workspace`) read the sources and fail when an invariant that
//! ARCHITECTURE.md states is broken.

mod bench;
mod package;
#[cfg(test)]
mod tidy;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("snapshots") => snapshots(args.iter().any(|a| a == "--accept")),
        Some("lint-templates") => tools::ensure_python_tools().and_then(|venv| lint_templates(&venv)),
        Some("install-tools") => tools::ensure_python_tools()
            .and_then(|_| tools::ensure_chromium())
            .and_then(|()| tools::ensure_busybox().map(|_| ())),
        Some("bench") => bench::run_bench(&args[1..]),
        Some("image") => image(&args[1..]),
        Some("package") => package::package_libraries(),
        _ => Err("usage: cargo xtask <test|snapshots [--accept]|lint-templates|install-tools|bench [NAME]|image \
                  [--profile PROFILE] [--tag TAG]|package>"
            .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace root").to_path_buf()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub fn run(command: &mut Command) -> Result {
    command.current_dir(root());
    eprintln!("xtask: running {command:?}");
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn test() -> Result {
    let venv = tools::ensure_python_tools()?;
    tools::ensure_image_tools()?;
    tools::ensure_chromium()?;
    tools::ensure_busybox()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The API documentation: no broken intra-doc link, no other rustdoc warning.
    run(cargo().args(["doc", "--quiet", "--no-deps", "--workspace"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    // The watcher's feature boundaries: the loop builds without the SDK and without SQLite, and each path alone.
    for features in [&[][..], &["--features", "aws"], &["--features", "local"], &["--features", "docker"]] {
        run(cargo()
            .args(["check", "--quiet", "-p", "watchbot-watcher", "--lib", "--no-default-features"])
            .args(features))?;
    }
    run(tools::with_venv(cargo().args(["test", "--workspace", "--all-targets"]), &venv))?;
    // Doctests are not part of --all-targets.
    run(tools::with_venv(cargo().args(["test", "--workspace", "--doc"]), &venv))?;
    package::package_libraries()?;
    lint_templates(&venv)?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// `cargo xtask image`: the watcher built with cargo (release unless `--profile` says otherwise), then the image.
fn image(args: &[String]) -> Result {
    let (mut profile, mut tag) = ("release".to_string(), xtask::image::default_tag());
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--profile" => profile = value.clone(),
            "--tag" => tag = value.clone(),
            other => {
                return Err(format!("unexpected argument {other:?}; usage: cargo xtask image [--profile P] [--tag T]"));
            }
        }
    }
    run(cargo().args(["build", "--profile", &profile, "-p", "watchbot-watcher", "--bin", "watchbot-watcher"]))?;
    // Cargo's folders: `dev` and `test` build into `debug`, `bench` into `release`, a custom profile into its name.
    let folder = match profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let build = xtask::image::ImageBuild {
        binary: target_dir().join(folder).join("watchbot-watcher"),
        context: target_dir().join("image/context"),
        tag: tag.clone(),
        labels: vec![("org.opencontainers.image.version".into(), env!("CARGO_PKG_VERSION").into())],
    };
    xtask::image::build(&build)?;
    eprintln!("xtask: built {tag} from {} (context {})", build.binary.display(), build.context.display());
    Ok(())
}

fn snapshots(accept: bool) -> Result {
    let mode = if accept { "always" } else { "new" };
    let status = cargo()
        .args(["test", "-p", "watchbot-template"])
        .env("INSTA_UPDATE", mode)
        .env("INSTA_FORCE_PASS", "1")
        .current_dir(root())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("template tests failed".into());
    }
    let mut pending = Vec::new();
    collect_files(&root().join("crates/watchbot-template"), ".snap.new", &mut pending);
    if pending.is_empty() {
        eprintln!("xtask: snapshots are up to date");
        return Ok(());
    }
    for new in &pending {
        let old = PathBuf::from(new.to_string_lossy().trim_end_matches(".new"));
        let _ = Command::new("diff").arg("-u").arg(&old).arg(new).status();
    }
    Err(format!(
        "{} snapshot(s) changed (shown above); run `cargo xtask snapshots --accept` to write them",
        pending.len()
    ))
}

/// Template configs whose generated templates must pass cfn-lint: `examples/config/*.json` and the snapshot configs.
fn template_configs() -> Vec<PathBuf> {
    let mut configs = Vec::new();
    for dir in ["examples/config", "crates/watchbot-template/tests/configs"] {
        collect_files(&root().join(dir), ".json", &mut configs);
    }
    configs.sort();
    configs
}

fn lint_templates(venv: &Path) -> Result {
    run(cargo().args(["build", "--quiet", "-p", "watchbot-cli", "--bin", "watchbot"]))?;
    let watchbot = target_dir().join("debug/watchbot");
    let out_dir = target_dir().join("templates");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let configs = template_configs();
    if configs.is_empty() {
        return Err("no template configs found in examples/config or the snapshot configs".into());
    }
    let mut templates = Vec::new();
    for config in &configs {
        let name = config.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let output = out_dir.join(format!("{name}.template.json"));
        run(Command::new(&watchbot).arg("template").arg("--config").arg(config).arg("--output").arg(&output))?;
        templates.push(output);
    }
    // Rules we ignore, and why, are in .cfnlintrc.yaml at the root.
    // Through the venv's Python: with --system-site-packages, pip installs no `cfn-lint` script when one is present.
    run(Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; from cfnlint.runner import main; sys.exit(main())"])
        .args(&templates))
    .map_err(|e| format!("cfn-lint found problems in generated templates: {e}"))?;
    eprintln!("xtask: cfn-lint passed on {} generated templates", templates.len());
    Ok(())
}

fn collect_files(dir: &Path, suffix: &str, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, suffix, into);
        } else if path.to_string_lossy().ends_with(suffix) {
            into.push(path);
        }
    }
}
