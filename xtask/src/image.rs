//! The watcher image without a registry: `cargo xtask image` and the image tests build it through [`build`].
//!
//! Nothing is pulled. The watcher binary built on the host (release for `cargo xtask image`, the test binary's own
//! debug build for the tests) goes into a build context this module assembles: the repository's `Dockerfile` and a
//! `rootfs/` folder holding the binary at `/usr/local/bin/watchbot-watcher`, every shared library `ldd` names for it
//! (at the path `ldd` prints, the dynamic loader included), the host's CA certificates (the AWS clients use rustls
//! with the system roots), a `passwd`/`group` naming the non-root user 65532 and an empty `/tmp`. The Dockerfile's
//! `rootfs` target lays that folder on `scratch`; `docker build` is the CLI's (a build tool may drive it), which
//! works with the classic builder as with BuildKit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The image name the template's watcher task definition runs (registry aside).
pub const IMAGE_NAME: &str = "watchbot";
/// Where the binary sits in the image (the Dockerfile's entrypoint).
pub const BINARY_PATH: &str = "usr/local/bin/watchbot-watcher";
/// The Dockerfile target that builds from the assembled `rootfs/` (no registry).
pub const ROOTFS_TARGET: &str = "rootfs";
/// Where the CA certificates go (and where Debian keeps them on the host).
const CA_CERTIFICATES: &str = "etc/ssl/certs/ca-certificates.crt";
/// The non-root user of both images: distroless's `nonroot`.
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "hosts: files dns\n";

/// `watchbot:v<version>`: the tag the template's watcher task definition expects by default (its
/// `DEFAULT_WATCHBOT_VERSION`; both crates take the workspace's version).
pub fn default_tag() -> String {
    format!("{IMAGE_NAME}:v{}", env!("CARGO_PKG_VERSION"))
}

/// The repository's Dockerfile.
pub fn dockerfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile")
}

/// What to build: which binary, into which context folder, under which tag and labels.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    /// The `watchbot-watcher` binary built on the host.
    pub binary: PathBuf,
    /// The build context to (re)create; anything in it is removed first.
    pub context: PathBuf,
    /// The image's tag, e.g. [`default_tag`].
    pub tag: String,
    /// Labels put on the image (`docker build --label`).
    pub labels: Vec<(String, String)>,
}

/// Assembles the context and runs `docker build --target rootfs`; the image is then tagged [`ImageBuild::tag`].
pub fn build(spec: &ImageBuild) -> Result<(), String> {
    assemble_context(&spec.binary, &spec.context)?;
    let mut command = Command::new("docker");
    command.args(["build", "--quiet", "--target", ROOTFS_TARGET, "--tag", &spec.tag]);
    for (key, value) in &spec.labels {
        command.arg("--label").arg(format!("{key}={value}"));
    }
    command.arg(&spec.context);
    let output = command.output().map_err(|e| format!("cannot run docker (is the Docker CLI installed?): {e}"))?;
    if !output.status.success() {
        // Docker's last line is the error ("Cannot connect to the Docker daemon ...", "COPY failed: ..."); the lines
        // before it are progress and the classic builder's deprecation notice.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().map(str::trim).rfind(|line| !line.is_empty()).unwrap_or("no output");
        return Err(format!("docker build of {} failed ({}): {last}", spec.tag, output.status));
    }
    Ok(())
}

/// Writes the build context for `binary` into `context`: the Dockerfile and `rootfs/` (see the module's text).
pub fn assemble_context(binary: &Path, context: &Path) -> Result<(), String> {
    if context.exists() {
        std::fs::remove_dir_all(context).map_err(|e| format!("cannot empty {}: {e}", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    copy(&dockerfile(), &context.join("Dockerfile"))?;
    copy(binary, &rootfs.join(BINARY_PATH))?;
    for library in shared_libraries(binary)? {
        copy(&library, &rootfs.join(library.strip_prefix("/").unwrap_or(&library)))?;
    }
    let certificates = Path::new("/").join(CA_CERTIFICATES);
    if !certificates.is_file() {
        return Err(format!(
            "{} not found: the image needs the host's CA certificates (apt-get install ca-certificates)",
            certificates.display()
        ));
    }
    copy(&certificates, &rootfs.join(CA_CERTIFICATES))?;
    for (path, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP), ("etc/nsswitch.conf", NSSWITCH)] {
        write(&rootfs.join(path), text)?;
    }
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    set_mode(&tmp, 0o1777)
}

/// The shared libraries `ldd` lists for `binary` (absolute paths, the dynamic loader included).
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd (Debian's libc-bin) on {}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("ldd {} failed: {}{}", binary.display(), text.trim(), stderr.trim()));
    }
    parse_ldd(&text).map_err(|line| format!("ldd {}: cannot resolve {line:?}", binary.display()))
}

/// The library paths in `ldd`'s output, or the first line naming a library it could not find.
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)`, or the
        // kernel's `linux-vdso.so.1 (0x...)`, which is no file.
        let path = match line.split_once("=>") {
            Some((_, resolved)) => resolved.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or(path).trim();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        } else if line.contains("=>") || line.contains("not found") {
            return Err(line.to_string());
        }
    }
    Ok(libraries)
}

/// Copies a file's content (through symbolic links) and permissions, making the parent folders.
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            ["/lib/x86_64-linux-gnu/libgcc_s.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
                .map(PathBuf::from)
        );
        assert_eq!(parse_ldd("\tlibfoo.so.1 => not found\n"), Err("libfoo.so.1 => not found".to_string()));
    }

    #[test]
    fn the_context_holds_the_binary_its_libraries_and_the_certificates() {
        let context = std::env::temp_dir().join(format!("watchbot-image-context-{}", std::process::id()));
        // Any dynamically linked program of the host serves: `ldd` itself is a script, so take the shell.
        let binary = Path::new("/bin/sh").canonicalize().unwrap();
        assemble_context(&binary, &context).unwrap();
        let rootfs = context.join("rootfs");
        assert!(context.join("Dockerfile").is_file());
        assert!(rootfs.join(BINARY_PATH).is_file());
        for library in shared_libraries(&binary).unwrap() {
            assert!(rootfs.join(library.strip_prefix("/").unwrap()).is_file(), "{} is missing", library.display());
        }
        assert!(rootfs.join(CA_CERTIFICATES).is_file());
        assert!(std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap().contains(":65532:65532:"));
        std::fs::remove_dir_all(&context).unwrap();
    }
}
