//! The process runner against real `sh -c` children: exit codes, signals, environment, stop (SIGTERM then SIGKILL
//! of the whole process group), failure to start, adoption by message id, reaping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use watchbot_watcher::local::process::{ProcessHandle, ProcessRunner, ProcessRunnerConfig};
use watchbot_watcher::ports::{Launch, TaskRunner, TaskSpec, TaskState};

fn shell(script: &str) -> ProcessRunner {
    ProcessRunner::new(ProcessRunnerConfig::new("sh", vec!["-c".into(), script.into()]))
}

fn spec(message_id: &str, env: &[(&str, &str)]) -> TaskSpec {
    TaskSpec {
        message_id: message_id.to_string(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }
}

async fn start(runner: &ProcessRunner, spec: &TaskSpec) -> ProcessHandle {
    match runner.launch(spec).await.expect("launch") {
        Launch::Started(handle) => handle,
        other => panic!("expected a started task, got {other:?}"),
    }
}

/// Polls until the task stops (at most 20 s, generous for a loaded machine); returns its final state.
async fn finish(runner: &ProcessRunner, handle: ProcessHandle) -> TaskState {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states = runner.poll(&[handle]).await.expect("poll");
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].0, handle);
        if states[0].1 != TaskState::Running {
            return states[0].1.clone();
        }
        assert!(Instant::now() < deadline, "task {handle} still running after 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} never written", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process exists, zombies included (a zombie keeps its /proc entry until it is reaped).
fn process_exists(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself contain spaces or parentheses.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

#[tokio::test]
async fn exit_codes_are_reported() {
    for code in [0, 1, 3, 4, 42, 255] {
        let runner = shell(&format!("exit {code}"));
        let handle = start(&runner, &spec("m", &[])).await;
        assert_eq!(
            finish(&runner, handle).await,
            TaskState::Stopped { exit_code: Some(code), reason: format!("exited with code {code}") }
        );
    }
}

#[tokio::test]
async fn a_child_killed_by_a_signal_has_no_exit_code() {
    let runner = shell("kill -9 $$");
    let handle = start(&runner, &spec("m", &[])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: None, reason: "killed by signal 9".into() }
    );
}

#[tokio::test]
async fn the_environment_is_inherited_plus_the_task_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let runner = shell(&format!(
        "printf '%s|%s|%s|%s\\n' \"$Message\" \"$MessageId\" \"$Subject\" \"$(command -v sh)\" > {}",
        out.display()
    ));
    let message = "line one\nline \"two\" with $dollar and 'quotes' and ünïcode";
    let handle = start(&runner, &spec("id-1", &[("Message", message), ("MessageId", "id-1"), ("Subject", "")])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
    let seen = std::fs::read_to_string(&out).unwrap();
    let fields: Vec<&str> = seen.trim_end_matches('\n').split('|').collect();
    assert_eq!(fields[0], message);
    assert_eq!(fields[1], "id-1");
    assert_eq!(fields[2], "");
    // `sh` was found through the inherited PATH.
    assert!(fields[3].ends_with("/sh"), "PATH not inherited: {seen:?}");
}

#[tokio::test]
async fn the_task_env_overrides_an_inherited_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("home.txt");
    let runner = shell(&format!("echo \"$HOME\" > {}", out.display()));
    let handle = start(&runner, &spec("m", &[("HOME", "/from/the/task")])).await;
    finish(&runner, handle).await;
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "/from/the/task\n");
}

#[tokio::test]
async fn working_dir_and_arguments_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProcessRunnerConfig::new(
        "sh",
        vec!["-c".into(), "pwd > out.txt; echo \"$0 $1\" >> out.txt".into(), "a".into(), "b".into()],
    );
    config.working_dir = Some(dir.path().to_path_buf());
    let runner = ProcessRunner::new(config);
    let handle = start(&runner, &spec("m", &[])).await;
    finish(&runner, handle).await;
    let text = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(text, format!("{}\na b\n", real.display()));
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_stopped_task_saying_why() {
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("/nonexistent/worker", vec![]));
    let handle = start(&runner, &spec("m", &[])).await;
    match finish(&runner, handle).await {
        TaskState::Stopped { exit_code: None, reason } => {
            assert!(reason.starts_with("failed to start: /nonexistent/worker: "), "{reason}");
            assert!(reason.contains("No such file"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // It is not "running" for adoption purposes.
    assert_eq!(runner.find_running("m").await.unwrap(), None);

    // A bad working folder is the same kind of failure.
    let mut config = ProcessRunnerConfig::new("true", vec![]);
    config.working_dir = Some("/nonexistent/folder".into());
    let runner = ProcessRunner::new(config);
    let handle = start(&runner, &spec("m", &[])).await;
    assert!(
        matches!(finish(&runner, handle).await, TaskState::Stopped { exit_code: None, reason } if reason.starts_with("failed to start"))
    );
}

#[tokio::test]
async fn stop_sends_sigterm_and_the_worker_may_exit_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    // The worker traps SIGTERM, cleans up, and exits 0; `wait` lets the trap run while `sleep` is interrupted.
    let runner = shell(&format!(
        "trap 'echo cleaned > {}/cleaned; exit 0' TERM; echo ok > {}; sleep 30 & wait",
        dir.path().display(),
        ready.display()
    ));
    let handle = start(&runner, &spec("m", &[])).await;
    wait_for_file(&ready).await;
    let started = Instant::now();
    runner.stop(&handle, "watcher shutting down").await.unwrap();
    let state = finish(&runner, handle).await;
    assert_eq!(
        state,
        TaskState::Stopped {
            exit_code: Some(0),
            reason: "exited with code 0 after stop (watcher shutting down)".into()
        }
    );
    assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM not delivered promptly");
    assert_eq!(std::fs::read_to_string(dir.path().join("cleaned")).unwrap(), "cleaned\n");
}

#[tokio::test]
async fn stop_kills_the_whole_group_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let signals = dir.path().join("signals");
    // The shell notes SIGTERM in a file and keeps waiting; its `sleep` ignores SIGTERM (a subshell set that before
    // `exec`): only SIGKILL ends them.
    let grace = Duration::from_secs(1);
    let mut config = ProcessRunnerConfig::new(
        "sh",
        vec![
            "-c".into(),
            format!(
                "trap 'echo term >> {}' TERM; (trap '' TERM; exec sleep 60) & echo $$ $! > {}; while :; do wait; done",
                signals.display(),
                pids.display()
            ),
        ],
    );
    config.stop_grace = grace;
    let runner = ProcessRunner::new(config);
    let handle = start(&runner, &spec("m", &[])).await;
    let text = wait_for_file(&pids).await;
    let ids: Vec<u32> = text.split_whitespace().map(|p| p.parse().unwrap()).collect();
    // The owning task records the pid just after the spawn returns; the child may have written its file before that.
    let deadline = Instant::now() + Duration::from_secs(20);
    while runner.pid(&handle).is_none() {
        assert!(Instant::now() < deadline, "pid never recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(runner.pid(&handle), Some(ids[0]));
    let started = Instant::now();
    runner.stop(&handle, "message timeout").await.unwrap();
    // The worker says it got SIGTERM; it is then still running, unless the grace period is already over.
    assert_eq!(wait_for_file(&signals).await, "term\n");
    let polled = runner.poll(&[handle]).await.unwrap()[0].1.clone();
    let state = if polled == TaskState::Running {
        finish(&runner, handle).await
    } else {
        assert!(started.elapsed() >= grace, "stopped within the grace period: {polled:?}");
        polled
    };
    assert!(started.elapsed() >= grace, "killed after {:?}, before the grace period ended", started.elapsed());
    assert_eq!(
        state,
        TaskState::Stopped { exit_code: None, reason: "killed by signal 9 after stop (message timeout)".into() }
    );
    // The grandchild (`sleep`) was in the group and died too (it is reaped by init once orphaned).
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(ids[1]) && process_state(ids[1]) != Some('Z') {
        assert!(Instant::now() < deadline, "grandchild {} survived the stop", ids[1]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stopping_a_finished_or_unknown_task_is_harmless() {
    let runner = shell("exit 0");
    let handle = start(&runner, &spec("m", &[])).await;
    // Wait for the exit itself (the runner's wake-up), then stop the finished task before anyone polls it.
    tokio::time::timeout(Duration::from_secs(20), runner.changed()).await.expect("the child exits within 20 s");
    runner.stop(&handle, "late").await.unwrap();
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
    runner.stop(&handle, "later").await.unwrap();
    runner.stop(&ProcessHandle(999), "never issued").await.unwrap();
}

#[tokio::test]
async fn finished_tasks_are_reported_once_then_forgotten() {
    let runner = shell("exit 5");
    let handle = start(&runner, &spec("m", &[])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(5), reason: "exited with code 5".into() }
    );
    let gone = TaskState::Stopped { exit_code: None, reason: "task no longer exists".into() };
    assert_eq!(runner.poll(&[handle]).await.unwrap(), vec![(handle, gone.clone())]);
    assert_eq!(runner.poll(&[ProcessHandle(12345)]).await.unwrap(), vec![(ProcessHandle(12345), gone)]);
}

#[tokio::test]
async fn find_running_adopts_by_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    // Each child runs until the test creates the release file.
    let runner = shell(&format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()));
    let a = start(&runner, &spec("message-a", &[])).await;
    let b = start(&runner, &spec("message-b", &[])).await;
    assert_ne!(a, b);
    assert_eq!(runner.find_running("message-a").await.unwrap(), Some(a));
    assert_eq!(runner.find_running("message-b").await.unwrap(), Some(b));
    assert_eq!(runner.find_running("message-c").await.unwrap(), None);
    assert_eq!(runner.running(), 2);
    std::fs::write(&release, "").unwrap();
    finish(&runner, a).await;
    finish(&runner, b).await;
    assert_eq!(runner.find_running("message-a").await.unwrap(), None);
    assert_eq!(runner.running(), 0);
}

#[tokio::test]
async fn children_are_reaped_without_being_polled() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let runner = shell(&format!("while [ ! -e {} ]; do sleep 0.02; done", release.display()));
    let handles = [start(&runner, &spec("a", &[])).await, start(&runner, &spec("b", &[])).await];
    // The children are spawned by their owning tasks: wait until both have a pid.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids: Vec<u32> = loop {
        let pids: Vec<u32> = handles.iter().filter_map(|h| runner.pid(h)).collect();
        if pids.len() == handles.len() {
            break pids;
        }
        assert!(Instant::now() < deadline, "children never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    std::fs::write(&release, "").unwrap();
    // Nobody polls: the owning tasks must still reap the children, leaving no zombie behind.
    for pid in pids {
        while process_exists(pid) {
            assert!(Instant::now() < deadline, "child {pid} not reaped (state {:?})", process_state(pid));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_stop_asked_before_the_child_is_spawned_is_carried_out() {
    let runner = shell("sleep 30");
    let handle = start(&runner, &spec("m", &[])).await;
    // At once, before the owning task has necessarily spawned the child.
    runner.stop(&handle, "shutdown").await.unwrap();
    let started = Instant::now();
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: None, reason: "killed by signal 15 after stop (shutdown)".into() }
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_children_at_once() {
    let runner = std::sync::Arc::new(shell("exit $((${N} % 7))"));
    let mut handles = Vec::new();
    for n in 0..40 {
        let handle = start(&runner, &spec(&format!("m{n}"), &[("N", &n.to_string())])).await;
        handles.push((n, handle));
    }
    for (n, handle) in handles {
        let code = n % 7;
        assert_eq!(
            finish(&runner, handle).await,
            TaskState::Stopped { exit_code: Some(code), reason: format!("exited with code {code}") }
        );
    }
}

#[tokio::test]
async fn changed_resolves_when_a_child_exits() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let runner = shell(&format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()));
    let handle = start(&runner, &spec("m", &[])).await;
    // Nothing has exited yet: `changed` stays pending.
    assert!(tokio::time::timeout(Duration::from_millis(200), runner.changed()).await.is_err());
    std::fs::write(&release, "").unwrap();
    tokio::time::timeout(Duration::from_secs(20), runner.changed()).await.expect("changed after the exit");
    // The exit is visible to the poll that follows the wake-up.
    assert_eq!(
        runner.poll(&[handle]).await.unwrap()[0].1,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
}

#[tokio::test]
async fn a_program_that_is_not_executable_fails_to_start_with_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let worker = dir.path().join("worker.sh");
    std::fs::write(&worker, "#!/bin/sh\nexit 0\n").unwrap();
    // Not executable (0644): the exec fails with EACCES, named in the reason.
    let runner = ProcessRunner::new(ProcessRunnerConfig::new(&worker, vec![]));
    let handle = start(&runner, &spec("m", &[])).await;
    match finish(&runner, handle).await {
        TaskState::Stopped { exit_code: None, reason } => {
            assert!(reason.starts_with(&format!("failed to start: {}: ", worker.display())), "{reason}");
            assert!(reason.contains("Permission denied"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_environment_string_over_128_kib_fails_to_start_and_one_that_fits_runs() {
    // Linux refuses (E2BIG) an environment string over 128 KiB (`NAME=value` and its NUL).
    let fits = "0".repeat(128 * 1024 - "Big=".len() - 1);
    let runner = shell("test ${#Big} -gt 100000");
    let handle = start(&runner, &spec("m", &[("Big", &fits)])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
    let handle = start(&runner, &spec("m", &[("Big", &format!("{fits}0"))])).await;
    match finish(&runner, handle).await {
        TaskState::Stopped { exit_code: None, reason } => {
            assert!(reason.starts_with("failed to start: sh: "), "{reason}");
            assert!(reason.contains("Argument list too long"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_program_name_is_looked_up_in_the_tasks_path() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = dir.path().join("out");
    let worker = bin.join("my-worker");
    std::fs::write(&worker, format!("#!/bin/sh\necho \"$0\" > {}\n", out.display())).unwrap();
    std::fs::set_permissions(&worker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A folder earlier in PATH holding a non-executable file of that name is skipped, as by execvp.
    let shadow = dir.path().join("shadow");
    std::fs::create_dir(&shadow).unwrap();
    std::fs::write(shadow.join("my-worker"), "not a program").unwrap();
    let path = format!("{}:/nonexistent:{}:/usr/bin:/bin", shadow.display(), bin.display());
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("my-worker", vec![]));
    let handle = start(&runner, &spec("m", &[("PATH", &path)])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{}\n", worker.display()));
    // Not found anywhere in that PATH: ENOENT, named.
    let runner = ProcessRunner::new(ProcessRunnerConfig::new("no-such-worker", vec![]));
    let handle = start(&runner, &spec("m", &[("PATH", &path)])).await;
    assert!(matches!(finish(&runner, handle).await, TaskState::Stopped { exit_code: None, reason }
            if reason == "failed to start: no-such-worker: No such file or directory (os error 2)"));
}

#[tokio::test]
async fn a_bad_working_folder_is_named() {
    let mut config = ProcessRunnerConfig::new("true", vec![]);
    config.working_dir = Some("/nonexistent/folder".into());
    let runner = ProcessRunner::new(config);
    let handle = start(&runner, &spec("m", &[])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped {
            exit_code: None,
            reason: "failed to start: true: working folder /nonexistent/folder: No such file or directory (os error 2)"
                .into()
        }
    );
}

#[tokio::test]
async fn the_child_reads_dev_null_with_no_signal_blocked_and_sigpipe_at_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The watcher (Rust) ignores SIGPIPE and its spawner threads block every signal: none of that reaches the worker.
    let runner = shell(&format!(
        "readlink /proc/self/fd/0 > {0}; exec grep -E '^(SigBlk|SigIgn)' /proc/self/status >> {0}",
        out.display()
    ));
    let handle = start(&runner, &spec("m", &[])).await;
    assert_eq!(
        finish(&runner, handle).await,
        TaskState::Stopped { exit_code: Some(0), reason: "exited with code 0".into() }
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("/dev/null"), "{text}");
    let mask = |line: Option<&str>, name: &str| {
        let line = line.unwrap_or_default();
        let hex = line.strip_prefix(name).map(str::trim).unwrap_or_else(|| panic!("{name} missing: {text}"));
        u64::from_str_radix(hex, 16).unwrap()
    };
    assert_eq!(mask(lines.next(), "SigBlk:"), 0, "{text}");
    let sigpipe = 1u64 << (13 - 1);
    assert_eq!(mask(lines.next(), "SigIgn:") & sigpipe, 0, "{text}");
}

/// Set in the copy of this test binary that plays the watcher in `children_die_with_a_killed_watcher`.
const WATCHER_PID_FILE: &str = "WATCHBOT_TEST_WATCHER_PID_FILE";
const WATCHER_DIE: &str = "WATCHBOT_TEST_WATCHER_DIE_WITH_WATCHER";

/// The guarantee itself: a watcher killed with SIGKILL takes its children with it (and, as a check that the test can
/// fail, without `die_with_watcher` they outlive it). This test binary runs again as the watcher.
#[tokio::test]
async fn children_die_with_a_killed_watcher() {
    if let Ok(pid_file) = std::env::var(WATCHER_PID_FILE) {
        return play_the_watcher(Path::new(&pid_file), std::env::var(WATCHER_DIE).as_deref() == Ok("1")).await;
    }
    for die_with_watcher in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut watcher = std::process::Command::new(std::env::current_exe().unwrap())
            // The test binary runs this very test again (its name within the one watcher test binary).
            .args(["process::children_die_with_a_killed_watcher", "--exact", "--test-threads", "1"])
            .env(WATCHER_PID_FILE, &pid_file)
            .env(WATCHER_DIE, if die_with_watcher { "1" } else { "0" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let child: u32 = loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Some(pid) = text.strip_suffix('\n')
            {
                break pid.parse().unwrap();
            }
            assert!(watcher.try_wait().unwrap().is_none(), "the watcher exited before starting its child");
            assert!(Instant::now() < deadline, "the watcher never started its child");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        watcher.kill().unwrap(); // SIGKILL
        watcher.wait().unwrap();
        let alive = || process_exists(child) && process_state(child) != Some('Z');
        if die_with_watcher {
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive() {
                assert!(Instant::now() < deadline, "child {child} outlived its killed watcher");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            let survived = alive();
            let _ = std::process::Command::new("kill").args(["-9", &child.to_string()]).status();
            assert!(survived, "without die_with_watcher the child should outlive the watcher");
        }
    }
}

async fn play_the_watcher(pid_file: &Path, die_with_watcher: bool) {
    let mut config = ProcessRunnerConfig::new("sleep", vec!["60".into()]);
    config.die_with_watcher = die_with_watcher;
    let runner = ProcessRunner::new(config);
    let handle = start(&runner, &spec("m", &[])).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(pid) = runner.pid(&handle) {
            break pid;
        }
        assert!(Instant::now() < deadline, "child never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let partial = pid_file.with_extension("partial");
    std::fs::write(&partial, format!("{pid}\n")).unwrap();
    std::fs::rename(&partial, pid_file).unwrap();
    // Killed by the test long before this ends.
    finish(&runner, handle).await;
}
