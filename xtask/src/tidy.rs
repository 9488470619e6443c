//! Tidy: tests that read the workspace's sources and fail when a rule that ARCHITECTURE.md states is broken (as
//! rust-analyzer's tidy tests do). Prose invariants drift; these do not. Each rule is a function over
//! `(path, text)` pairs, so its own test feeds it a file that breaks it and sees it fail.

use std::path::Path;

/// A source file: its path relative to the workspace root (with `/`), and its text.
pub struct Source {
    pub path: String,
    pub text: String,
}

/// Every `.rs` file under `crates/`, `tests/` and `xtask/`.
pub fn workspace_sources(root: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "xtask"] {
        crate::collect_files(&root.join(dir), ".rs", &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == "target"))
        .map(|path| Source {
            text: std::fs::read_to_string(&path).unwrap_or_default(),
            path: path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/"),
        })
        .collect()
}

/// Whether a path is library or binary source (not a test, an example or test support).
fn is_product_source(path: &str) -> bool {
    path.starts_with("crates/") && path.contains("/src/") && !path.starts_with("crates/watchbot-testing/")
}

/// The code of a file without its comments and string literals' doc text: lines that are comments are dropped, so
/// a rule about code is not tripped by prose that names what it forbids.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| (i + 1, line)).filter(|(_, line)| {
        let trimmed = line.trim_start();
        !(trimmed.starts_with("//") || trimmed.starts_with("/*") || trimmed.starts_with('*'))
    })
}

/// Files allowed to name the AWS SDK (`aws_sdk_*`, `aws_config`, `aws_smithy_*`, `aws_credential_types`): the
/// adapters. Prefixes of paths.
pub const SDK_ALLOWED: &[&str] = &[
    "crates/watchbot-watcher/src/aws/",
    "crates/watchbot-progress/src/dynamo.rs",
    // The DynamoDB store's layouts (`dynamo/counter.rs`): part of the same adapter.
    "crates/watchbot-progress/src/dynamo/",
    "crates/watchbot-progress/src/address.rs",
    // The SDK crates of the progress API, re-exported for its users (no code).
    "crates/watchbot-progress/src/sdk.rs",
];

/// The one file that loads aws-config's standard chain (which reads `AWS_*` variables and profiles).
pub const AWS_CONFIG_LOADER: &str = "crates/watchbot-watcher/src/aws/sdk.rs";

/// Only the adapters name the AWS SDK; the ports, the loop, the wiring and the commands do not.
pub fn check_sdk_use(sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources.iter().filter(|s| is_product_source(&s.path)) {
        if SDK_ALLOWED.iter().any(|allowed| source.path.starts_with(allowed)) {
            continue;
        }
        for (number, line) in code_lines(&source.text) {
            if ["aws_sdk_", "aws_config", "aws_smithy_", "aws_credential_types"].iter().any(|name| line.contains(name))
            {
                problems.push(format!(
                    "{}:{number}: names the AWS SDK outside the aws adapters: {}",
                    source.path,
                    line.trim()
                ));
            }
        }
    }
    problems
}

/// Files allowed to read the process environment for configuration: the binaries' entry points, the CLI, the
/// worker-side `Logger::from_env`, and the module that loads aws-config's standard chain.
pub const ENV_ALLOWED: &[&str] = &[
    "crates/watchbot-watcher/src/main.rs",
    "crates/watchbot-cli/src/cmd/watch.rs",
    "crates/watchbot-cli/src/cmd/local.rs",
    "crates/watchbot-cli/src/cmd/progress.rs",
    "crates/watchbot-cli/src/cmd/log.rs",
    // Not configuration: the environment is the input `decrypt-env` decrypts (and hands to its command).
    "crates/watchbot-cli/src/cmd/decrypt_env.rs",
    // `WATCHBOT_DEBUG`: whether a failure also prints the full underlying error.
    "crates/watchbot-cli/src/lib.rs",
    "crates/watchbot-log/src/lib.rs",
    // Not configuration: a child inherits the watcher's environment (as std's `Command` passes it on).
    "crates/watchbot-watcher/src/local/process/spawn.rs",
];

/// Libraries take typed configs: only the allowed files read the environment (`std::env::var*`, clap's
/// `env = "…"`), and only [`AWS_CONFIG_LOADER`] loads aws-config's chain.
pub fn check_env_reads(sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources.iter().filter(|s| is_product_source(&s.path)) {
        let allowed = ENV_ALLOWED.contains(&source.path.as_str());
        for (number, line) in code_lines(&source.text) {
            let reads = ["env::var", "env::vars", "env = \""].iter().any(|call| line.contains(call));
            if reads && !allowed {
                problems.push(format!("{}:{number}: reads the environment: {}", source.path, line.trim()));
            }
            if line.contains("aws_config::defaults") && source.path != AWS_CONFIG_LOADER {
                problems.push(format!("{}:{number}: loads aws-config outside {AWS_CONFIG_LOADER}", source.path));
            }
        }
    }
    problems
}

/// No library or binary source file longer than this (lines).
pub const MAX_SOURCE_LINES: usize = 700;

/// A file does one thing: none over [`MAX_SOURCE_LINES`].
pub fn check_file_length(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| is_product_source(&s.path))
        .filter(|s| s.text.lines().count() > MAX_SOURCE_LINES)
        .map(|s| format!("{}: {} lines, over {MAX_SOURCE_LINES}", s.path, s.text.lines().count()))
        .collect()
}

/// Every file opens with a `//!` line saying what it is for.
pub fn check_file_docs(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| format!("{}: does not open with a `//!` line", s.path))
        .collect()
}

/// The attribute that marks an ignored test, spelled in two parts so that this file does not contain it.
const IGNORE_ATTRIBUTE: &str = concat!("#[", "ignore");

/// No test is ignored: a test that cannot run fails and says why.
pub fn check_no_ignored_tests(sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources {
        for (number, line) in code_lines(&source.text) {
            if line.trim_start().starts_with(IGNORE_ATTRIBUTE) {
                problems.push(format!("{}:{number}: an ignored test", source.path));
            }
        }
    }
    problems
}

/// The pure crates link no AWS SDK: their manifests name none.
pub fn check_pure_manifests(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in ["watchbot-template", "watchbot-log", "watchbot-sqlite"] {
        let path = root.join("crates").join(krate).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().filter(|line| line.trim_start().starts_with("aws-")) {
            problems.push(format!("crates/{krate}/Cargo.toml: depends on the AWS SDK: {}", line.trim()));
        }
    }
    problems
}

/// The README's Rust examples are compiled: none is `ignore`, and each appears line for line in a documentation
/// example of a crate's sources (whose hidden `# ` lines may add a `main` and the setup), which `cargo test --doc`
/// compiles and runs.
pub fn check_readme_examples(readme: &str, sources: &[Source]) -> Vec<String> {
    let docs: Vec<String> = sources.iter().filter(|s| is_product_source(&s.path)).map(|s| doc_text(&s.text)).collect();
    let mut problems = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(lang) = line.strip_prefix("```").filter(|lang| lang.starts_with("rust")) else { continue };
        let block: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| !l.starts_with("```")).collect();
        if lang.contains("ignore") {
            problems.push(format!("README.md:{}: a Rust example marked `{lang}` is not compiled", number + 1));
        } else if !docs.iter().any(|doc| doc.contains(&format!("\n{}\n", block.join("\n")))) {
            problems.push(format!(
                "README.md:{}: this Rust example is in no crate's documentation, so no doctest compiles it",
                number + 1
            ));
        }
    }
    problems
}

/// The documentation comments of a file as text, without their hidden (`# `) example lines.
fn doc_text(text: &str) -> String {
    let mut doc = String::from("\n");
    for line in text.lines().map(str::trim_start) {
        let Some(rest) = line.strip_prefix("//!").or_else(|| line.strip_prefix("///")) else { continue };
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        if rest == "#" || rest.starts_with("# ") {
            continue;
        }
        doc.push_str(rest);
        doc.push('\n');
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Vec<Source> {
        workspace_sources(&crate::root())
    }

    fn assert_clean(rule: &str, problems: Vec<String>) {
        assert!(problems.is_empty(), "tidy rule '{rule}' is broken:\n{}", problems.join("\n"));
    }

    #[test]
    fn the_workspace_keeps_every_stated_invariant() {
        let sources = sources();
        assert!(sources.len() > 50, "found only {} sources: is the root right?", sources.len());
        assert_clean("only the aws adapters name the AWS SDK", check_sdk_use(&sources));
        assert_clean(
            "only binaries, the CLI, Logger::from_env and aws-config read the environment",
            check_env_reads(&sources),
        );
        assert_clean("no source file over 700 lines", check_file_length(&sources));
        assert_clean("every file opens with //!", check_file_docs(&sources));
        assert_clean("no ignored test", check_no_ignored_tests(&sources));
        assert_clean(
            "watchbot-template, watchbot-log and watchbot-sqlite link no AWS SDK",
            check_pure_manifests(&crate::root()),
        );
        let readme = std::fs::read_to_string(crate::root().join("README.md")).unwrap_or_default();
        assert_clean("the README's Rust examples are doctests", check_readme_examples(&readme, &sources));
    }

    fn file(path: &str, text: &str) -> Vec<Source> {
        vec![Source { path: path.into(), text: text.into() }]
    }

    #[test]
    fn each_rule_fails_on_a_file_that_breaks_it() {
        let loop_with_sdk = file("crates/watchbot-watcher/src/run/mod.rs", "//! The loop.\nuse aws_sdk_sqs::Client;\n");
        assert_eq!(check_sdk_use(&loop_with_sdk).len(), 1);
        let adapter = file("crates/watchbot-watcher/src/aws/sqs.rs", "//! SQS.\nuse aws_sdk_sqs::Client;\n");
        assert!(check_sdk_use(&adapter).is_empty());
        let prose = file("crates/watchbot-watcher/src/ports.rs", "//! Ports.\n/// Not aws_sdk_sqs types.\n");
        assert!(check_sdk_use(&prose).is_empty());
        let library_env = file("crates/watchbot-watcher/src/config.rs", "//! C.\nlet x = std::env::var(\"X\");\n");
        assert_eq!(check_env_reads(&library_env).len(), 1);
        let clap_env = file("crates/watchbot-cli/src/cmd/send.rs", "//! S.\n#[arg(long, env = \"QueueUrl\")]\n");
        assert_eq!(check_env_reads(&clap_env).len(), 1);
        let loader = file("crates/watchbot-cli/src/aws.rs", "//! A.\naws_config::defaults(v).load().await;\n");
        assert_eq!(check_env_reads(&loader).len(), 1);
        let long = file("crates/watchbot-watcher/src/run/mod.rs", &"//! Long.\n".repeat(701));
        assert_eq!(check_file_length(&long).len(), 1);
        let undocumented = file("crates/watchbot-log/src/writer.rs", "use std::io;\n");
        assert_eq!(check_file_docs(&undocumented).len(), 1);
        let ignored = file("tests/local.rs", &format!("//! T.\n#[test]\n{IGNORE_ATTRIBUTE}]\nfn t() {{}}\n"));
        assert_eq!(check_no_ignored_tests(&ignored).len(), 1);
        let test_support = file("crates/watchbot-testing/src/lib.rs", "//! T.\nuse aws_config::SdkConfig;\n");
        assert!(check_sdk_use(&test_support).is_empty());
        let documented =
            file("crates/watchbot-log/src/lib.rs", "//! ```\n//! # fn main() {\n//! let x = 1;\n//! ```\n");
        assert!(check_readme_examples("```rust\nlet x = 1;\n```\n", &documented).is_empty());
        assert_eq!(check_readme_examples("```rust\nlet y = 2;\n```\n", &documented).len(), 1);
        assert_eq!(check_readme_examples("```rust,ignore\nlet x = 1;\n```\n", &documented).len(), 1);
        assert!(check_readme_examples("```sh\nls\n```\n", &documented).is_empty());
    }
}
