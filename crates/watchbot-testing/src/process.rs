//! Running programs in tests, every wait with a deadline, every failure saying what ran, what it waited for and
//! what came back. Modelled on ripgrep's `TestCommand`.
//!
//! - [`TestDir`]: a fresh temporary folder (files, executable scripts, line-by-line reads), removed when dropped;
//!   [`TestDir::command`] runs a program in it.
//! - [`TestCommand`]: a [`Command`] that runs to its end within a deadline ([`DEFAULT_DEADLINE`] unless set):
//!   [`TestCommand::output`] (any exit), [`TestCommand::success`], [`TestCommand::stdout`], [`TestCommand::fails_with`]
//!   (an exit code), or [`TestCommand::spawn`] for a child the test talks to.
//! - [`TestChild`]: a running child whose stdout and stderr are read on threads, so that waiting for its next line,
//!   for a condition while it runs, or for its exit, each has a deadline. Dropping it kills it.
//! - [`wait_for`] / [`wait_for_async`]: poll a condition until it holds, failing after a deadline with what was
//!   awaited.
//!
//! libtest has no timeout: a wait without a deadline hangs the whole run instead of failing one test.
//!
//! ```no_run
//! use watchbot_testing::process::TestDir;
//! let dir = TestDir::new();
//! let script = dir.script("hello.sh", "echo hello");
//! assert_eq!(dir.command(&script).stdout(), "hello\n");
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a command may run, or a child be waited for, unless the test says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// How often [`wait_for`] checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` every 20 ms until it holds; panics after `deadline`, saying it was waiting for `what`.
pub fn wait_for(what: impl fmt::Display, deadline: Duration, mut condition: impl FnMut() -> bool) {
    wait_for_value(what, deadline, || condition().then_some(()))
}

/// Polls `probe` every 20 ms until it gives a value, and returns it; panics after `deadline`, saying it was waiting
/// for `what`.
pub fn wait_for_value<T>(what: impl fmt::Display, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < deadline, "waited {deadline:?} for {what}; it never happened");
        std::thread::sleep(POLL);
    }
}

/// [`wait_for`] on tokio's clock, for async tests (a blocking sleep would stall a current-thread runtime).
pub async fn wait_for_async(what: impl fmt::Display, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = tokio::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < deadline, "waited {deadline:?} for {what}; it never happened");
        tokio::time::sleep(POLL).await;
    }
}

/// A fresh temporary folder for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> TestDir {
        TestDir::new()
    }
}

impl TestDir {
    /// A new empty folder.
    pub fn new() -> TestDir {
        let dir = tempfile::Builder::new().prefix("watchbot-test-").tempdir().expect("create a temporary folder");
        TestDir { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the folder.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a file (creating its parent folders) and returns its path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes an executable `sh` script (`set -eu`, then `body`) and returns its path.
    pub fn script(&self, relative: impl AsRef<Path>, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(relative, format!("#!/bin/sh\nset -eu\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// The lines of a file in the folder; none when it does not exist (yet).
    pub fn lines(&self, relative: impl AsRef<Path>) -> Vec<String> {
        lines(&self.join(relative))
    }

    /// A command running `program` in this folder.
    pub fn command(&self, program: impl AsRef<OsStr>) -> TestCommand {
        let mut command = TestCommand::new(program);
        command.current_dir(self.path());
        command
    }
}

/// The lines of a file; none when it does not exist (yet).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// A command for a test: runs to its end within a deadline, or is spawned as a [`TestChild`]. Its stdin is empty
/// unless [`TestCommand::stdin`] or [`TestCommand::stdin_piped`] says otherwise.
#[derive(Debug)]
pub struct TestCommand {
    command: Command,
    deadline: Duration,
    stdin: Input,
    missing_hint: Option<String>,
}

#[derive(Debug)]
enum Input {
    Empty,
    Bytes(Vec<u8>),
    Piped,
}

impl TestCommand {
    /// A command running `program` (in the test's working folder; see [`TestDir::command`] for a fresh one).
    pub fn new(program: impl AsRef<OsStr>) -> TestCommand {
        TestCommand {
            command: Command::new(program),
            deadline: DEFAULT_DEADLINE,
            stdin: Input::Empty,
            missing_hint: None,
        }
    }

    /// What to tell the reader when the program cannot be started (how to install it).
    pub fn when_missing(&mut self, hint: impl Into<String>) -> &mut TestCommand {
        self.missing_hint = Some(hint.into());
        self
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut TestCommand {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut TestCommand {
        self.command.env_remove(key);
        self
    }

    /// Clears the environment (a machine with nothing set).
    pub fn env_clear(&mut self) -> &mut TestCommand {
        self.command.env_clear();
        self
    }

    /// Points the command's AWS settings at a moto server ([`crate::Moto::configure`]).
    pub fn moto(&mut self, moto: &crate::Moto) -> &mut TestCommand {
        moto.configure(&mut self.command);
        self
    }

    /// Sets the working folder.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut TestCommand {
        self.command.current_dir(dir);
        self
    }

    /// Feeds these bytes to stdin, then closes it.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Leaves stdin open for the test to write to ([`TestChild::stdin`]); for [`TestCommand::spawn`].
    pub fn stdin_piped(&mut self) -> &mut TestCommand {
        self.stdin = Input::Piped;
        self
    }

    /// How long the command may run (or, once spawned, how long each wait on it may take).
    pub fn deadline(&mut self, deadline: Duration) -> &mut TestCommand {
        self.deadline = deadline;
        self
    }

    /// The command line as a shell would show it, with its working folder.
    pub fn describe(&self) -> String {
        describe(&self.command)
    }

    /// Runs the command to its end and returns how it ended, whatever its exit status. Panics (killing it) when it
    /// has not exited after the deadline.
    pub fn output(&mut self) -> Finished {
        let mut child = self.spawn();
        child.wait()
    }

    /// [`TestCommand::output`], asserting exit 0.
    pub fn success(&mut self) -> Finished {
        self.output().assert_success()
    }

    /// The command's stdout, asserting exit 0.
    pub fn stdout(&mut self) -> String {
        self.success().stdout()
    }

    /// [`TestCommand::output`], asserting this exit code.
    pub fn fails_with(&mut self, code: i32) -> Finished {
        self.output().assert_code(code)
    }

    /// Starts the command: stdout and stderr are piped and read on threads (see [`TestChild`]).
    pub fn spawn(&mut self) -> TestChild {
        let what = self.describe();
        let stdin = match self.stdin {
            Input::Empty => Stdio::null(),
            Input::Bytes(_) | Input::Piped => Stdio::piped(),
        };
        let mut child =
            self.command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| {
                match &self.missing_hint {
                    Some(hint) => panic!("cannot start {what}: {e}; {hint}"),
                    None => panic!("cannot start {what}: {e}"),
                }
            });
        if let Input::Bytes(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            let bytes = bytes.clone();
            // On a thread: a child that does not read its stdin must not block the test (the deadline applies).
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        TestChild::new(child, what, self.deadline)
    }
}

/// How a command ended: its exit status and everything it wrote. Its `Display` is the report a failing assertion
/// prints: what ran, how it ended, stdout and stderr.
#[derive(Debug, Clone)]
pub struct Finished {
    what: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Finished {
    /// The exit status.
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// The exit code; `None` when a signal ended it.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout as it came.
    pub fn stdout_bytes(&self) -> &[u8] {
        &self.stdout
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with the report unless it exited 0.
    pub fn assert_success(self) -> Finished {
        assert!(self.status.success(), "expected exit 0:\n{self}");
        self
    }

    /// Panics with the report unless it exited with `code`.
    pub fn assert_code(self, code: i32) -> Finished {
        assert_eq!(self.status.code(), Some(code), "expected exit {code}:\n{self}");
        self
    }
}

impl fmt::Display for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ran: {}\nended: {}", self.what, self.status)?;
        write!(f, "{}", transcript(&self.stdout, &self.stderr))
    }
}

fn transcript(stdout: &[u8], stderr: &[u8]) -> String {
    let section = |name: &str, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if text.is_empty() {
            format!("--- {name}: (nothing)\n")
        } else {
            let newline = if text.ends_with('\n') { "" } else { "\n" };
            format!("--- {name}:\n{text}{newline}")
        }
    };
    format!("{}{}", section("stdout", stdout), section("stderr", stderr))
}

/// A running child whose stdout (line by line) and stderr are read on threads, so every wait has a deadline and
/// every failure shows what the child wrote so far. Killed (and reaped) when dropped, also when an assertion fails
/// first.
#[derive(Debug)]
pub struct TestChild {
    child: Child,
    what: String,
    deadline: Duration,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl TestChild {
    fn new(mut child: Child, what: String, deadline: Duration) -> TestChild {
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (send, lines) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("stdout is piped");
        let out_buffer = Arc::clone(&stdout);
        let out_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(out_pipe);
            let mut line = Vec::new();
            while let Ok(n) = reader.read_until(b'\n', &mut line) {
                if n == 0 {
                    break;
                }
                out_buffer.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&line);
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
                let _ = send.send(text);
                line.clear();
            }
        });
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let err_buffer = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                err_buffer.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&chunk[..n]);
            }
        });
        TestChild { child, what, deadline, lines, stdout, stderr, readers: vec![out_reader, err_reader], status: None }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, when the command was [`TestCommand::stdin_piped`]; dropping it closes it.
    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().unwrap_or_else(|| panic!("stdin of {} is not piped (or was taken)", self.what))
    }

    /// What the child wrote so far (stdout, stderr) and whether it is still running: for failure messages.
    pub fn report(&self) -> String {
        let stdout = self.stdout.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let stderr = self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let state = match self.status {
            Some(status) => format!("ended: {status}"),
            None => "still running".to_string(),
        };
        format!("ran: {}\n{state}\n{}", self.what, transcript(&stdout, &stderr))
    }

    /// stderr so far, as text.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// The next line of stdout (without its newline), `None` once stdout is closed; panics, with what the child
    /// wrote so far, when neither comes within the deadline.
    pub fn next_line(&self) -> Option<String> {
        self.next_line_within(self.deadline)
    }

    /// [`TestChild::next_line`] with this deadline.
    pub fn next_line_within(&self, deadline: Duration) -> Option<String> {
        match self.lines.recv_timeout(deadline) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("waited {deadline:?} for a line on stdout; none came\n{}", self.report())
            }
        }
    }

    /// Whether the child has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        self.try_status().is_some()
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.what));
        }
        self.status
    }

    /// Polls `condition` until it holds, while the child runs; panics, with what the child wrote so far, when the
    /// deadline passes first or the child exits first.
    pub fn wait_for(&mut self, what: impl fmt::Display, condition: impl FnMut() -> bool) {
        self.wait_for_every(POLL, what, condition)
    }

    /// [`TestChild::wait_for`], looking every `interval` (for a condition that costs a request to a server).
    pub fn wait_for_every(&mut self, interval: Duration, what: impl fmt::Display, mut condition: impl FnMut() -> bool) {
        let started = Instant::now();
        while !condition() {
            if self.has_exited() {
                panic!("waited for {what}, but the child exited first\n{}", self.report());
            }
            assert!(
                started.elapsed() < self.deadline,
                "waited {:?} for {what}; it never happened\n{}",
                self.deadline,
                self.report()
            );
            std::thread::sleep(interval);
        }
    }

    /// Sends SIGTERM (with `kill -TERM`, as a user would).
    pub fn terminate(&self) {
        let pid = self.id().to_string();
        TestCommand::new("kill").args(["-TERM", &pid]).deadline(Duration::from_secs(10)).success();
    }

    /// SIGKILL, and reaps it; returns at once, without waiting for its output (a process it started may still hold
    /// the pipes).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.what));
        self.status = Some(status);
        status
    }

    /// Waits for the child to exit and for its stdout and stderr to close, and returns how it ended; panics (killing
    /// it), with what it wrote so far, after the deadline.
    pub fn wait(&mut self) -> Finished {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.try_status() {
                break status;
            }
            if started.elapsed() > self.deadline {
                self.kill();
                panic!("waited {:?} for the child to exit; it did not (killed it)\n{}", self.deadline, self.report());
            }
            std::thread::sleep(POLL);
        };
        while self.readers.iter().any(|reader| !reader.is_finished()) {
            assert!(
                started.elapsed() < self.deadline,
                "the child exited, but its stdout or stderr stayed open for {:?} (a process it started holds them)\n{}",
                self.deadline,
                self.report()
            );
            std::thread::sleep(POLL);
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap_or_else(|p| p.into_inner()));
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        Finished { what: self.what.clone(), status, stdout, stderr }
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `program arg …` with shell-style quoting where needed, and the working folder when set.
fn describe(command: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut line = quote(command.get_program());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    if let Some(dir) = command.get_current_dir() {
        line.push_str(&format!(" (in {})", dir.display()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_text(run: impl FnOnce()) -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).expect_err("it panics");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn a_failure_reports_the_command_its_status_and_both_outputs() {
        let dir = TestDir::new();
        let script = dir.script("fail.sh", "echo to-stdout\necho to-stderr >&2\nexit 3");
        let text = panic_text(|| {
            dir.command(&script).arg("an arg").success();
        });
        assert!(text.contains("expected exit 0"), "{text}");
        assert!(text.contains("fail.sh 'an arg'") && text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("--- stdout:\nto-stdout\n") && text.contains("--- stderr:\nto-stderr\n"), "{text}");
        let finished = dir.command(&script).fails_with(3);
        assert_eq!((finished.stdout(), finished.stderr()), ("to-stdout\n".into(), "to-stderr\n".into()));
    }

    #[test]
    fn a_command_past_its_deadline_fails_instead_of_hanging() {
        let started = Instant::now();
        let text = panic_text(|| {
            TestCommand::new("sh").args(["-c", "echo begun; sleep 30"]).deadline(Duration::from_millis(300)).output();
        });
        assert!(started.elapsed() < Duration::from_secs(10), "failed at the deadline, not when the child ended");
        assert!(text.contains("waited 300ms for the child to exit") && text.contains("begun"), "{text}");
    }

    #[test]
    fn a_line_that_never_comes_fails_instead_of_hanging() {
        let mut command = TestCommand::new("sh");
        command.args(["-c", "echo first; echo err >&2; sleep 30"]);
        let child = command.spawn();
        assert_eq!(child.next_line().as_deref(), Some("first"));
        let started = Instant::now();
        let text = panic_text(|| {
            child.next_line_within(Duration::from_millis(200));
        });
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(text.contains("waited 200ms for a line on stdout") && text.contains("still running"), "{text}");
        drop(child); // kills `sleep`'s shell
    }

    #[test]
    fn stdin_bytes_reach_the_child_and_waits_for_a_condition_are_bounded() {
        let out = TestCommand::new("cat").stdin("one\ntwo").stdout();
        assert_eq!(out, "one\ntwo");
        let dir = TestDir::new();
        let marker = dir.join("marker");
        let mut child = dir.command("sh").args(["-c", "touch marker; sleep 30"]).spawn();
        child.wait_for("the marker file", || marker.exists());
        let text = panic_text(|| wait_for("something that never happens", Duration::from_millis(100), || false));
        assert!(text.contains("waited 100ms for something that never happens"), "{text}");
        let mut quick = TestCommand::new("true").spawn();
        let text = panic_text(|| quick.wait_for("a file nobody writes", || false));
        assert!(text.contains("the child exited first"), "{text}");
        drop(child);
    }
}
