//! The container runner against the machine's Docker Engine and the test worker image (busybox-static as a root
//! file system, `watchbot_testing::docker`): exit codes, the image's CMD and its override, output, the environment,
//! the options' settings and the labels, stop (SIGTERM, then SIGKILL after the grace), adoption by label after the
//! owning runner died, nothing left behind, and no Engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateContainerOptions;
use watchbot_testing::docker::{DEFAULT_CMD_LINE, block_on, containers_labelled, docker, worker_image};
use watchbot_watcher::local::docker::{
    Bind, ConnectError, DockerRunner, DockerRunnerConfig, MESSAGE_LABEL, STACK_LABEL,
};
use watchbot_watcher::ports::{Launch, PortErrorKind, TaskOutput, TaskRunner, TaskSpec, TaskState};

/// How long a container may take to do what a test waits for (generous for a loaded machine).
const DEADLINE: Duration = Duration::from_secs(60);

fn config(stack: &str, script: Option<&str>) -> DockerRunnerConfig {
    let mut config = DockerRunnerConfig::new(worker_image(), stack);
    config.command = script.map(|s| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()]);
    config.stop_grace = Duration::from_secs(1);
    config
}

fn stack() -> String {
    watchbot_testing::unique_name("docker-test")
}

fn spec(message_id: &str, env: &[(&str, &str)]) -> TaskSpec {
    TaskSpec {
        message_id: message_id.to_string(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }
}

async fn connect(config: DockerRunnerConfig) -> DockerRunner {
    DockerRunner::connect(config).await.expect("the Engine answers and has the test worker image")
}

async fn start(runner: &DockerRunner, spec: &TaskSpec) -> String {
    match runner.launch(spec).await.expect("launch") {
        Launch::Started(handle) => handle,
        other => panic!("expected a started container, got {other:?}"),
    }
}

/// Waits (on the runner's wake-up, bounded) until the container is reported stopped; its state and output.
async fn finish(runner: &DockerRunner, handle: &str) -> (TaskState, TaskOutput) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let states = runner.poll(&[handle.to_string()]).await.expect("poll");
        if states[0].1 != TaskState::Running {
            return (states[0].1.clone(), runner.output(&handle.to_string()).await);
        }
        assert!(Instant::now() < deadline, "container {handle} still running after {DEADLINE:?}");
        let _ = tokio::time::timeout(Duration::from_secs(1), runner.changed()).await;
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} never written", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(output: &TaskOutput) -> &str {
    match output {
        TaskOutput::Tail { text, .. } => text,
        TaskOutput::Unavailable(why) => panic!("no output: {why}"),
    }
}

fn stopped(code: i32) -> TaskState {
    TaskState::Stopped { exit_code: Some(code), reason: format!("exited with code {code}") }
}

fn assert_none_left(stack: &str) {
    let left = containers_labelled(STACK_LABEL, stack);
    assert!(left.is_empty(), "containers left behind for stack {stack}: {left:?}");
}

/// A folder the containers can write (bound at /work), and the bind.
fn shared_folder() -> (tempfile::TempDir, Bind) {
    let dir = tempfile::tempdir().unwrap();
    let bind = Bind { host: dir.path().display().to_string(), container: "/work".to_string(), read_only: false };
    (dir, bind)
}

#[tokio::test]
async fn exit_codes_are_the_containers_own_and_finished_containers_are_removed() {
    let stack = stack();
    let runner = connect(config(&stack, Some("exit $CODE"))).await;
    let mut handles = Vec::new();
    for code in [0, 3, 4, 42] {
        let value = code.to_string();
        handles.push((code, start(&runner, &spec(&format!("m-{code}"), &[("CODE", value.as_str())])).await));
    }
    for (code, handle) in handles {
        assert_eq!(finish(&runner, &handle).await.0, stopped(code));
    }
    assert_none_left(&stack);
}

#[tokio::test]
async fn the_images_cmd_runs_unless_overridden_and_output_is_captured() {
    let stack = stack();
    let runner = connect(config(&stack, None)).await;
    let handle = start(&runner, &spec("m-default", &[])).await;
    let (state, output) = finish(&runner, &handle).await;
    assert_eq!(state, stopped(0));
    assert_eq!(tail(&output), format!("{DEFAULT_CMD_LINE}\n"));

    let runner = connect(config(&stack, Some("echo to stdout; echo to stderr >&2; echo -n unfinished"))).await;
    let handle = start(&runner, &spec("m-override", &[])).await;
    let (state, output) = finish(&runner, &handle).await;
    assert_eq!(state, stopped(0));
    let text = tail(&output);
    for line in ["to stdout\n", "to stderr\n", "unfinished\n"] {
        assert!(text.contains(line), "{text:?}");
    }
    assert!(!text.contains(DEFAULT_CMD_LINE), "{text:?}");
    assert_none_left(&stack);
}

#[tokio::test]
async fn environment_settings_mounts_and_labels_apply_to_the_container() {
    let stack = stack();
    let (dir, bind) = shared_folder();
    let script = "env > /work/env.tmp && mv /work/env.tmp /work/env; while [ ! -e /work/go ]; do sleep 0.1; done";
    let mut config = config(&stack, Some(script));
    config.env = BTreeMap::from([("FromOptions".into(), "options".into()), ("Shadowed".into(), "options".into())]);
    config.binds = vec![bind];
    config.memory_mib = Some(64);
    config.memory_reservation_mib = Some(32);
    config.cpu_units = Some(256);
    let runner = connect(config).await;
    let env = [("MessageId", "m-env"), ("Shadowed", "task"), ("Message", "line one\nline two")];
    let handle = start(&runner, &spec("m-env", &env)).await;
    let env = wait_for_file(&dir.path().join("env")).await;
    for line in ["FromOptions=options", "Shadowed=task", "MessageId=m-env", "Message=line one\nline two"] {
        assert!(env.contains(&format!("{line}\n")), "{line:?} not in:\n{env}");
    }
    // The container carries the labels, and the Engine holds the settings.
    let labelled = containers_labelled(STACK_LABEL, &stack);
    assert_eq!(labelled, vec![handle.clone()]);
    assert_eq!(containers_labelled(MESSAGE_LABEL, "m-env"), vec![handle.clone()]);
    let id = handle.clone();
    let inspect = block_on(async move { docker().await.inspect_container(&id, None).await.expect("inspect") });
    let host = inspect.host_config.expect("host config");
    assert_eq!(
        (host.memory, host.memory_reservation, host.cpu_shares, host.privileged),
        (Some(64 << 20), Some(32 << 20), Some(256), Some(false))
    );
    assert_eq!(host.binds, Some(vec![format!("{}:/work", dir.path().display())]));

    std::fs::write(dir.path().join("go"), "").unwrap();
    assert_eq!(finish(&runner, &handle).await.0, stopped(0));
    assert_none_left(&stack);
}

#[tokio::test]
async fn a_stop_sends_sigterm_then_sigkill_after_the_grace() {
    let stack = stack();
    let (dir, bind) = shared_folder();
    // A worker that handles SIGTERM exits with its own code; one that ignores it (a shell as PID 1 without a trap
    // does) is killed after the grace: 137.
    let handles_term = "trap 'echo terminated; exit 143' TERM; touch /work/$MessageId; while :; do sleep 0.1; done";
    let ignores_term = "touch /work/$MessageId; while :; do sleep 0.1; done";
    let mut trapping = config(&stack, Some(handles_term));
    trapping.binds = vec![bind.clone()];
    let mut ignoring = config(&stack, Some(ignores_term));
    ignoring.binds = vec![bind];
    let (trapping, ignoring) = (connect(trapping).await, connect(ignoring).await);
    let polite = start(&trapping, &spec("m-polite", &[("MessageId", "m-polite")])).await;
    let stubborn = start(&ignoring, &spec("m-stubborn", &[("MessageId", "m-stubborn")])).await;
    for name in ["m-polite", "m-stubborn"] {
        let path = dir.path().join(name);
        let deadline = Instant::now() + DEADLINE;
        while !path.exists() {
            assert!(Instant::now() < deadline, "{name} never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    trapping.stop(&polite, "message timeout").await.unwrap();
    ignoring.stop(&stubborn, "message timeout").await.unwrap();
    let (state, output) = finish(&trapping, &polite).await;
    assert_eq!(
        state,
        TaskState::Stopped {
            exit_code: Some(143),
            reason: "exited with code 143 after stop (message timeout)".to_string()
        }
    );
    assert!(tail(&output).contains("terminated\n"), "{output:?}");
    let (state, _) = finish(&ignoring, &stubborn).await;
    assert_eq!(
        state,
        TaskState::Stopped {
            exit_code: Some(137),
            reason: "exited with code 137 after stop (message timeout)".to_string()
        }
    );
    assert_none_left(&stack);
}

#[tokio::test]
async fn a_new_runner_adopts_the_container_of_a_dead_one() {
    let stack = stack();
    let (dir, bind) = shared_folder();
    let script = "echo started >> /work/starts-$MessageId; while [ ! -e /work/go-$MessageId ]; do sleep 0.1; done; \
                  echo done; exit $CODE";
    let mut config = config(&stack, Some(script));
    config.binds = vec![bind];
    // The first runner lives on a runtime of its own, which ends (as a killed watcher does) with both containers
    // still running and nobody owning them.
    let first = config.clone();
    let (running, exiting) = block_on(async move {
        let runner = connect(first).await;
        let running = start(&runner, &spec("m-running", &[("MessageId", "m-running"), ("CODE", "0")])).await;
        let exiting = start(&runner, &spec("m-exiting", &[("MessageId", "m-exiting"), ("CODE", "3")])).await;
        (running, exiting)
    });
    wait_for_file(&dir.path().join("starts-m-running")).await;
    wait_for_file(&dir.path().join("starts-m-exiting")).await;
    // One of them exits while no runner owns it: its exit code is still the outcome of that run.
    std::fs::write(dir.path().join("go-m-exiting"), "").unwrap();
    let id = exiting.clone();
    block_on(async move {
        let docker = docker().await;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let inspect = docker.inspect_container(&id, None).await.expect("the exited container is still there");
            if inspect.state.and_then(|s| s.running) == Some(false) {
                return;
            }
            assert!(Instant::now() < deadline, "{id} did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let runner = connect(config).await;
    assert_eq!(runner.find_running("m-other").await.unwrap(), None);
    assert_eq!(runner.find_running("m-running").await.unwrap(), Some(running.clone()));
    assert_eq!(runner.find_running("m-running").await.unwrap(), Some(running.clone()), "found again, owned once");
    assert_eq!(runner.find_running("m-exiting").await.unwrap(), Some(exiting.clone()));
    let (state, output) = finish(&runner, &exiting).await;
    assert_eq!(state, stopped(3));
    assert!(tail(&output).contains("done\n"), "the adopted container's whole output: {output:?}");
    std::fs::write(dir.path().join("go-m-running"), "").unwrap();
    assert_eq!(finish(&runner, &running).await.0, stopped(0));
    for message in ["m-running", "m-exiting"] {
        let starts = std::fs::read_to_string(dir.path().join(format!("starts-{message}"))).unwrap();
        assert_eq!(starts, "started\n", "{message} ran once");
    }
    assert_none_left(&stack);
}

#[tokio::test]
async fn a_container_created_but_never_started_is_removed_not_adopted() {
    let stack = stack();
    let mut config = config(&stack, Some("echo never"));
    // Privileged, which this machine's Engine creates but cannot start (its own sandbox lacks the capabilities).
    config.privileged = true;
    let body = watchbot_watcher::local::docker::create_body(&config, &spec("m-created", &[]));
    let created = block_on(async move {
        let docker = docker().await;
        let id = docker.create_container(None::<CreateContainerOptions>, body).await.expect("create").id;
        let inspect = docker.inspect_container(&id, None).await.expect("inspect");
        assert_eq!(inspect.host_config.and_then(|h| h.privileged), Some(true));
        id
    });
    assert_eq!(containers_labelled(STACK_LABEL, &stack), vec![created]);
    let runner = connect(config).await;
    assert_eq!(runner.find_running("m-created").await.unwrap(), None);
    assert_none_left(&stack);
}

#[tokio::test]
async fn a_container_that_cannot_start_fails_its_launch_and_is_removed() {
    let stack = stack();
    let mut config = config(&stack, None);
    config.command = Some(vec!["/no/such/program".to_string()]);
    let runner = connect(config).await;
    let error = runner.launch(&spec("m-bad", &[])).await.expect_err("the Engine refuses to start it");
    assert_eq!(error.kind, PortErrorKind::Rejected, "{error:?}");
    assert!(error.message.contains("/no/such/program"), "{error:?}");
    assert!(!error.message.contains('\n'), "{error:?}");
    assert_none_left(&stack);
}

#[tokio::test]
async fn without_an_engine_or_the_image_connecting_says_so_in_one_line() {
    let mut dead = config(&stack(), None);
    dead.host = Some("unix:///nonexistent/docker.sock".to_string());
    let error = DockerRunner::connect(dead).await.expect_err("nothing answers there");
    assert!(matches!(error, ConnectError::Unreachable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("no Docker Engine answers at unix:///nonexistent/docker.sock: "), "{text}");
    assert!(!text.contains('\n') && !error.is_bad_input(), "{text}");

    let mut missing = config(&stack(), None);
    missing.image = "watchbot-test-no-such-image:never".to_string();
    let error = DockerRunner::connect(missing).await.expect_err("no such image");
    assert_eq!(error, ConnectError::NoImage { image: "watchbot-test-no-such-image:never".to_string() });
    assert!(error.is_bad_input());
}
