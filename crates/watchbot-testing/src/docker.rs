//! The test worker image and a Docker Engine client for tests (feature `docker`).
//!
//! No registry can be reached here, so nothing is pulled: [`worker_image`] imports Debian's busybox-static as the
//! whole root file system of an image (`/bin/busybox`, a link per applet, `/tmp`), through the Engine API's import
//! (`POST /images/create?fromSrc=-`), and tags it [`WORKER_IMAGE`]. Its CMD prints [`DEFAULT_CMD_LINE`], so a test can
//! tell the image's CMD from an override. The binary comes from `target/tools/busybox` (`cargo xtask test` puts it
//! there with `apt-get download busybox-static`) or `$WATCHBOT_TEST_BUSYBOX`. The image is built once per machine:
//! a later call finds it by its tag.
//!
//! Each call runs on a runtime of its own (on a thread), so synchronous tests and any test runtime can use them.

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test worker image's tag (bump the version when its contents change).
pub const WORKER_IMAGE: &str = "watchbot-test-worker:v2";
/// What the test worker image's own CMD prints.
pub const DEFAULT_CMD_LINE: &str = "the image default command";

const INSTALL_HINT: &str = "busybox-static is missing: run `cargo xtask install-tools` (or `cargo xtask test`), which \
                            puts it in target/tools/busybox (apt-get download busybox-static)";

/// The static busybox binary the image is made of.
pub fn busybox() -> PathBuf {
    if let Some(path) = std::env::var_os("WATCHBOT_TEST_BUSYBOX") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("tools/busybox/bin/busybox")
}

/// Runs `f` on a current-thread runtime of its own, on a thread of its own (callable from inside another runtime).
pub fn block_on<T: Send + 'static, F: Future<Output = T> + Send + 'static>(f: F) -> T {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        runtime.block_on(f)
    })
    .join()
    .expect("the Docker call's thread panicked")
}

/// A client of the Engine at `DOCKER_HOST` (or the default socket), its API version negotiated. Panics with one
/// line when no Engine answers: the tests of containers need one.
pub async fn docker() -> Docker {
    let docker = Docker::connect_with_defaults().expect("a Docker Engine address (DOCKER_HOST)");
    match docker.negotiate_version().await {
        Ok(docker) => docker,
        Err(error) => panic!("no Docker Engine answers (tests of containers need one; `docker info` checks): {error}"),
    }
}

/// The test worker image's tag, imported the first time it is asked for on this machine.
pub fn worker_image() -> String {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    IMAGE.get_or_init(|| block_on(build_worker_image(None))).clone().unwrap_or_else(|error| panic!("{error}"))
}

/// The test worker image's tag for [`WATCHBOT_IMAGE`]: the worker image plus `program` as `/bin/watchbot` and the
/// shared libraries it links (as `ldd` lists them, at their own paths). Imported anew once per test binary, since
/// the program changes with every build.
pub fn worker_image_with_watchbot(program: &Path) -> String {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let program = program.to_path_buf();
    IMAGE.get_or_init(|| block_on(build_worker_image(Some(program)))).clone().unwrap_or_else(|error| panic!("{error}"))
}

/// The tag of [`worker_image_with_watchbot`].
pub const WATCHBOT_IMAGE: &str = "watchbot-test-worker:with-watchbot";

/// Copies `program` and the libraries it links into the root file system `root`.
fn add_program(root: &Path, program: &Path) -> Result<(), String> {
    std::fs::copy(program, root.join("bin/watchbot")).map_err(|e| format!("{}: {e}", program.display()))?;
    // The same reading of `ldd` as the watcher image's (`cargo xtask image`): a library it cannot find is an error.
    for library in xtask::image::shared_libraries(program)? {
        let to = root.join(library.strip_prefix("/").unwrap_or(&library));
        std::fs::create_dir_all(to.parent().expect("a library's folder")).map_err(|e| e.to_string())?;
        std::fs::copy(&library, &to).map_err(|e| format!("{}: {e}", library.display()))?;
    }
    Ok(())
}

async fn build_worker_image(program: Option<PathBuf>) -> Result<String, String> {
    let docker = docker().await;
    let image = if program.is_some() { WATCHBOT_IMAGE } else { WORKER_IMAGE };
    if program.is_none() && docker.inspect_image(WORKER_IMAGE).await.is_ok() {
        return Ok(WORKER_IMAGE.to_string());
    }
    let busybox = busybox();
    if !busybox.exists() {
        return Err(format!("{INSTALL_HINT} (looked for {})", busybox.display()));
    }
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.path().join("tmp")).map_err(|e| e.to_string())?;
    std::fs::copy(&busybox, bin.join("busybox")).map_err(|e| format!("{}: {e}", busybox.display()))?;
    let list = Command::new(&busybox).arg("--list").output().map_err(|e| format!("{}: {e}", busybox.display()))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| format!("{applet}: {e}"))?;
    }
    if let Some(program) = &program {
        add_program(root.path(), program)?;
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["--owner=0", "--group=0", "-cf", "-", "."])
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !tar.status.success() {
        return Err(format!("tar failed: {}", String::from_utf8_lossy(&tar.stderr)));
    }
    let (repo, tag) = image.split_once(':').expect("the tag has a version");
    let changes = vec![
        "ENV PATH=/bin".to_string(),
        "ENV TMPDIR=/tmp".to_string(),
        format!(r#"CMD ["/bin/sh", "-c", "echo {DEFAULT_CMD_LINE}"]"#),
    ];
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(tag).changes(changes).build();
    let mut progress = docker.create_image(Some(options), Some(bollard::body_full(tar.stdout.into())), None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| format!("cannot import the test worker image: {e}"))?;
    }
    Ok(image.to_string())
}

/// The ids of the containers (running or not) carrying `label` = `value`.
pub fn containers_labelled(label: &str, value: &str) -> Vec<String> {
    let filter = format!("{label}={value}");
    block_on(async move {
        let filters = HashMap::from([("label", vec![filter])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = docker().await.list_containers(Some(options)).await.expect("the Engine lists containers");
        found.into_iter().filter_map(|c| c.id).collect()
    })
}
