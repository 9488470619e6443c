//! Test support shared by every crate's tests: one moto server per test binary, on a free loopback port; programs
//! run with deadlines ([`process`]); the ECS client that repairs moto's answers (`ecs`, feature `ecs`); the test
//! worker image and an Engine client (`docker`, feature `docker`).
//!
//! [`moto()`] starts `moto`'s threaded server the first time it is called in a test binary and hands back a
//! [`Moto`] that every test of that binary shares. Tests isolate themselves with [`unique_name`] (moto keeps one
//! account for everybody, so names are the isolation). The server dies with the test binary: it watches its
//! standard input, which closes when our process exits, however it exits.
//!
//! ```no_run
//! # async fn example() {
//! let moto = watchbot_testing::moto();
//! let config = moto.sdk_config().await;
//! let queue_name = watchbot_testing::unique_name("jobs");
//! # let _ = (config, queue_name);
//! # }
//! ```
//!
//! Which Python runs moto: `$WATCHBOT_TEST_PYTHON` if set, else the virtualenv that `cargo xtask test` prepares in
//! `target/tools/venv`, else `python3` from `PATH`. If none can import moto, the first test to ask fails with one
//! line saying how to install it.
//!
//! [`proxy::FaultProxy`] sits in front of moto and makes chosen calls hang, for tests of how the watcher lives with
//! slow and dead connections.

pub mod proxy;

#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "ecs")]
pub mod ecs;
pub mod process;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long moto may take to start (a cold Python import of moto takes a few seconds on a loaded machine).
const MOTO_START_DEADLINE: Duration = Duration::from_secs(120);

/// The moto version the project is tested against; `cargo xtask test` installs exactly this one.
pub const MOTO_VERSION: &str = "5.2.1";
/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's fixed account id, which appears in every ARN it makes.
pub const ACCOUNT_ID: &str = "123456789012";

const INSTALL_HINT: &str =
    "moto is not installed: run `cargo xtask test` (installs it), or `pip install 'moto[server]==5.2.1'`";

// Runs moto in a thread, prints the port it bound, and exits as soon as stdin closes (our process is gone).
const LAUNCHER: &str = r#"
import os, sys, logging
logging.disable(logging.CRITICAL)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
os._exit(0)
"#;

/// A running moto server on loopback, shared by every test in one test binary.
pub struct Moto {
    endpoint: String,
    python: PathBuf,
    // Held so the pipe stays open for as long as the test binary lives; its closing stops the server.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// The shared moto server of this test binary, started on first use.
///
/// Panics with one line naming the install command when moto cannot be started: a test that needs the emulator
/// must fail loudly, never skip.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| match Moto::start() {
        Ok(moto) => moto,
        Err(message) => panic!("{message}"),
    })
}

impl Moto {
    fn start() -> Result<Moto, String> {
        let python = find_python().ok_or_else(|| INSTALL_HINT.to_string())?;
        let log_path = std::env::temp_dir().join(format!("watchbot-moto-{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            // moto's server must not pick up a developer's real AWS settings.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}; {INSTALL_HINT}", python.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        // Read on a thread, so that a server that never prints its port fails the test after a deadline.
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = send.send(read);
        });
        let line = match receive.recv_timeout(MOTO_START_DEADLINE) {
            Ok(read) => read.map_err(|e| format!("moto did not start: {e}"))?,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "moto did not print its port within {MOTO_START_DEADLINE:?}; see {}",
                    log_path.display()
                ));
            }
        };
        let port: u16 = line.trim().parse().map_err(|_| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log.lines().last().unwrap_or("no output");
            format!("moto did not start ({last}); see {}", log_path.display())
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            python,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK config pointed at moto: test credentials, the test region, and few retries so failures show fast.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials = aws_credential_types::Credentials::new("testing", "testing", None, None, "watchbot-testing");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(credentials)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(std::time::Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await
    }

    /// Environment for a child process (the `watchbot` CLI, a worker script) so that `aws-config`'s standard chain
    /// points it at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// Applies [`Moto::env`] to a command, and removes settings that would point it elsewhere.
    pub fn configure(&self, command: &mut Command) {
        command.env_remove("AWS_PROFILE").env_remove("AWS_SESSION_TOKEN");
        for (key, value) in self.env() {
            command.env(key, value);
        }
    }

    /// Runs a Python snippet with boto3 (moto's own Python) against this server and returns its stdout, trimmed.
    /// For fixtures the project's crates do not otherwise need (e.g. EC2 subnets for Fargate).
    /// The snippet gets `endpoint` and `region` variables and a `client(name)` helper. It must finish within
    /// [`process::DEFAULT_DEADLINE`].
    pub fn python(&self, snippet: &str) -> String {
        let prelude = format!(
            "import boto3\nendpoint = {endpoint:?}\nregion = {REGION:?}\n\
             def client(name):\n    return boto3.client(name, endpoint_url=endpoint, region_name=region, \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n",
            endpoint = self.endpoint
        );
        let mut command = process::TestCommand::new(&self.python);
        command.arg("-c").arg(format!("{prelude}{snippet}"));
        command.stdout().trim().to_string()
    }
}

/// A name no other test (in this or another test binary) has used: `<prefix>-<pid>-<counter>-<random>`.
/// Safe for SQS queue, SNS topic, DynamoDB table, ECS cluster and CloudFormation stack names.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos ^ fastrand::u32(..))
}

/// The workspace root (where `Cargo.toml` with `[workspace]` lives).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.parent())
        .expect("crates/watchbot-testing sits two levels below the workspace root")
        .to_path_buf()
}

fn find_python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(python) = std::env::var_os("WATCHBOT_TEST_PYTHON") {
        candidates.push(PathBuf::from(python));
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    candidates.push(target.join("tools/venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    candidates.into_iter().find(|python| {
        let Ok(mut child) = Command::new(python)
            .args(["-c", "import moto.server, werkzeug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        // A Python that cannot import moto within the deadline is as good as none (and is not left running).
        let started = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if started.elapsed() < MOTO_START_DEADLINE => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    })
}
