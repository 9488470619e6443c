//! End-to-end tests of `watchbot progress` and `watchbot-progress`: output as the original's, one-line errors with
//! exit 1, many OS processes completing parts of one job at once (embedded store and DynamoDB on moto), and
//! `status --watch` on a pipe.

use crate::util::{output, stderr, stdout, watchbot};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a test waits for a child's next line or exit before it fails. libtest has no timeout, so a read with
/// none would hang the whole run instead of failing one test.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A child whose stdout is read line by line on a thread, so that waiting for a line has a deadline. The child is
/// killed when this is dropped, also when an assertion fails first.
pub(crate) struct ChildLines {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildLines {
    /// Takes the child's piped stdout.
    pub(crate) fn new(mut child: Child) -> ChildLines {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        ChildLines { child, lines }
    }

    /// The next line (without its newline), `None` at the end of stdout; panics after `deadline` without either.
    pub(crate) fn next_within(&self, deadline: Duration) -> Option<String> {
        match self.lines.recv_timeout(deadline) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("no line from the child within {deadline:?}"),
        }
    }

    /// [`ChildLines::next_within`] the [`DEADLINE`].
    pub(crate) fn next(&self) -> Option<String> {
        self.next_within(DEADLINE)
    }

    /// The child's stdin, if piped.
    pub(crate) fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for the child to exit; panics after the [`DEADLINE`].
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "the child did not exit within {DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to its end like [`output`], but fails (and kills it) when it has not exited after the
/// [`DEADLINE`].
pub(crate) fn output_within(command: &mut Command) -> Output {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn watchbot_progress() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchbot-progress"));
    command.env_remove("ProgressTable");
    command
}

/// A fresh embedded store in a temporary folder; the folder lives as long as the returned guard.
fn embedded_table() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/progress.sqlite").to_str().unwrap().to_owned();
    (dir, path)
}

fn run_ok(command: &mut Command) -> String {
    let out = output(command);
    assert!(out.status.success(), "{command:?} failed: {}", stderr(&out));
    stdout(&out)
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout {:?} stderr {:?}", stdout(out), stderr(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("watchbot: ") && err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn original_commands_and_output_on_the_embedded_store() {
    let (_dir, table) = embedded_table();
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress();
        command.args(args).env("ProgressTable", &table);
        command
    };
    assert_eq!(run_ok(&mut progress(&["set-total", "job-1", "-t", "4"])), "");
    assert_eq!(run_ok(&mut progress(&["set-total", "job-1", "--total", "4"])), "", "the same total is a no-op");
    assert_eq!(run_ok(&mut progress(&["status", "job-1"])), "{\"progress\":0}\n");
    assert_eq!(run_ok(&mut progress(&["complete-part", "job-1", "-p", "1"])), "false\n");
    assert_eq!(run_ok(&mut progress(&["complete-part", "job-1", "-p", "1"])), "false\n", "a replay");
    assert_eq!(run_ok(&mut progress(&["status", "job-1", "-p", "1"])), "{\"progress\":0.25,\"partComplete\":true}\n");
    assert_eq!(run_ok(&mut progress(&["set-metadata", "job-1", "-m", "{\"out\":\"s3://b/k\"}"])), "");
    assert_eq!(run_ok(&mut progress(&["complete-part", "job-1", "-p", "2"])), "false\n");
    assert_eq!(run_ok(&mut progress(&["complete-part", "job-1", "-p", "3"])), "false\n");
    let last = run_ok(&mut progress(&["complete-part", "job-1", "-p", "4", "--json"]));
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!((last["complete"].clone(), last["finished"].clone()), (true.into(), true.into()), "{last}");
    assert_eq!(run_ok(&mut progress(&["complete-part", "job-1", "-p", "4"])), "true\n", "a replay after the end");
    assert_eq!(run_ok(&mut progress(&["reduce-sent", "job-1"])), "");
    assert_eq!(
        run_ok(&mut progress(&["status", "job-1"])),
        "{\"progress\":1,\"metadata\":{\"out\":\"s3://b/k\"},\"reduceSent\":true}\n"
    );
    assert_eq!(run_ok(&mut progress(&["status", "unknown-job"])), "{\"progress\":0}\n");
    // `watchbot progress` is the same command, and --table overrides $ProgressTable.
    let out = run_ok(watchbot().args(["progress", "status", "job-1", "--json", "--table", &table]));
    let detailed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detailed["total"], 4);
    assert_eq!(detailed["complete"], true);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let (_dir, table) = embedded_table();
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress();
        command.args(args).env("ProgressTable", &table);
        output(&mut command)
    };
    run_ok(watchbot_progress().args(["set-total", "job", "-t", "3", "--table", &table]));
    assert_one_line_error(&progress(&["complete-part", "nope", "-p", "1"]), "job \"nope\" not found");
    assert_one_line_error(&progress(&["set-total", "job", "-t", "5"]), "already has a total of 3");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "4"]), "part 4 is outside 1..=3");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "0"]), "--part must be");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "two"]), "--part must be");
    assert_one_line_error(&progress(&["complete-part", "job"]), "complete-part needs --part");
    assert_one_line_error(&progress(&["set-total", "job"]), "set-total needs --total");
    assert_one_line_error(&progress(&["set-total", "huge", "-t", "50001"]), "over the limit of 50000 parts");
    assert_one_line_error(&progress(&["set-metadata", "job", "-m", "{nope"]), "--metadata is not JSON");
    assert_one_line_error(&progress(&["fail-job", "job"]), "fail-job needs --reason");
    assert_one_line_error(&progress(&["explode", "job"]), "unknown command \"explode\"");
    assert_one_line_error(&progress(&["status"]), "needs a job id");
    assert_one_line_error(&progress(&["fail-job", "ghost", "-r", "x"]), "not found");
    assert_one_line_error(&output(watchbot_progress().args(["status", "job"])), "no progress table");
    assert_one_line_error(
        &output(watchbot_progress().args(["status", "job", "--table", "not a table"])),
        "invalid progress table address",
    );
    // Nothing above changed the job.
    assert_eq!(stdout(&progress(&["status", "job"])), "{\"progress\":0}\n");
}

/// Starts one process per part at once (all running before any is awaited), then collects their `--json` answers.
fn complete_all_at_once(
    configure: &dyn Fn(&mut Command),
    job: &str,
    parts: impl Iterator<Item = u64>,
) -> Vec<serde_json::Value> {
    let children: Vec<Child> = parts
        .map(|part| {
            let mut command = watchbot_progress();
            command.args(["complete-part", job, "-p", &part.to_string(), "--json"]);
            configure(&mut command);
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "complete-part failed: {}", stderr(&out));
            serde_json::from_str(&stdout(&out)).unwrap()
        })
        .collect()
}

fn count(answers: &[serde_json::Value], field: &str) -> usize {
    answers.iter().filter(|a| a[field] == true).count()
}

#[test]
fn many_processes_complete_parts_of_one_embedded_job() {
    let (_dir, table) = embedded_table();
    let configure = |command: &mut Command| {
        command.env("ProgressTable", &table);
    };
    const TOTAL: u64 = 40;
    run_ok(watchbot_progress().args(["set-total", "job", "-t", &TOTAL.to_string(), "--table", &table]));
    let answers = complete_all_at_once(&configure, "job", 1..=TOTAL);
    assert_eq!(count(&answers, "finished"), 1, "exactly one process finished the job: {answers:?}");
    assert_eq!(count(&answers, "replay"), 0);
    // Every process saw its own step: the remaining counts are 0..TOTAL, each once.
    let mut remaining: Vec<u64> = answers.iter().map(|a| a["remaining"].as_u64().unwrap()).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..TOTAL).collect::<Vec<_>>());
    // Replays from many processes at once: all say done, none claims the finish.
    let replays = complete_all_at_once(&configure, "job", (1..=TOTAL).step_by(3));
    assert!(replays.iter().all(|a| a["complete"] == true && a["finished"] == false && a["replay"] == true));
    assert_eq!(run_ok(watchbot_progress().args(["status", "job", "--table", &table])), "{\"progress\":1}\n");
}

#[test]
fn processes_racing_on_a_fresh_file_all_get_answers() {
    // No file yet: every process creates the schema and switches to WAL at the same moment.
    let (_dir, table) = embedded_table();
    let children: Vec<Child> = (0..8)
        .map(|_| {
            watchbot_progress()
                .args(["set-total", "fresh", "-t", "5", "--json", "--table", &table])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let created = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["created"] == true
        })
        .filter(|created| *created)
        .count();
    assert_eq!(created, 1, "exactly one process created the job; the others found the same total");
}

#[test]
fn dynamodb_on_moto_through_the_cli() {
    let moto = watchbot_testing::moto();
    let table = watchbot_testing::unique_name("progress");
    moto.python(&format!(
        "client('dynamodb').create_table(TableName={table:?}, \
         AttributeDefinitions=[{{'AttributeName': 'id', 'AttributeType': 'S'}}], \
         KeySchema=[{{'AttributeName': 'id', 'KeyType': 'HASH'}}], BillingMode='PAY_PER_REQUEST')"
    ));
    let arn = format!("arn:aws:dynamodb:{}:{}:table/{table}", watchbot_testing::REGION, watchbot_testing::ACCOUNT_ID);
    let configure = |command: &mut Command| {
        moto.configure(command);
        command.env("ProgressTable", &arn);
    };
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress();
        command.args(args);
        configure(&mut command);
        command
    };
    assert_eq!(run_ok(&mut progress(&["set-total", "map-1", "-t", "30"])), "");
    assert_one_line_error(&output(&mut progress(&["set-total", "map-1", "-t", "31"])), "already has a total of 30");
    assert_one_line_error(&output(&mut progress(&["complete-part", "ghost", "-p", "1"])), "not found");
    assert_one_line_error(&output(&mut progress(&["complete-part", "map-1", "-p", "31"])), "outside 1..=30");
    let answers = complete_all_at_once(&configure, "map-1", 1..=30);
    // Not exactly one on moto: its UpdateItem takes no lock and answers from the live item, so two racing calls may
    // both see the empty set (DynamoDB answers one update at a time). The exactly-once mapping is proved on
    // aws-smithy-mocks (crates/watchbot-progress/tests/dynamo_mocks.rs) and by the embedded store above; here, at
    // least the call that emptied the set finishes the job, and every part ends up done.
    assert!(count(&answers, "finished") >= 1, "{answers:?}");
    assert_eq!(run_ok(&mut progress(&["status", "map-1"])), "{\"progress\":1}\n");
    assert_eq!(run_ok(&mut progress(&["complete-part", "map-1", "-p", "7"])), "true\n");
    assert_eq!(run_ok(&mut progress(&["fail-job", "map-1", "-r", "reduce input missing"])), "");
    assert_eq!(
        run_ok(&mut progress(&["status", "map-1", "-p", "7"])),
        "{\"progress\":1,\"failed\":\"reduce input missing\",\"partComplete\":true}\n"
    );
    // A table that does not exist: one line naming the operation and the table, exit 69 (a service that cannot be
    // used; README, "Exit codes of the commands").
    let out = output(&mut {
        let mut command = progress(&["status", "map-1", "--table", "no-such-table"]);
        command.env_remove("ProgressTable");
        command
    });
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "watchbot: cannot use DynamoDB table no-such-table (GetItem): ResourceNotFoundException: Requested resource \
         not found\n"
    );
}

#[test]
fn status_watch_prints_lines_on_a_pipe_and_stops_when_done() {
    let (_dir, table) = embedded_table();
    run_ok(watchbot_progress().args(["set-total", "w", "-t", "2", "--table", &table]));
    let mut watcher = ChildLines::new(
        watchbot()
            .args(["progress", "status", "w", "--watch", "--interval", "0.05", "--table", &table])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Each step waits for the watcher's line, so the test does not depend on timing (and fails, rather than
    // hangs, when a line never comes).
    let next_line = || watcher.next().expect("a status line");
    assert_eq!(next_line(), "{\"progress\":0}");
    run_ok(watchbot_progress().args(["complete-part", "w", "-p", "1", "--table", &table]));
    assert_eq!(next_line(), "{\"progress\":0.5}", "a line when the status changes, none while it does not");
    run_ok(watchbot_progress().args(["complete-part", "w", "-p", "2", "--table", &table]));
    assert_eq!(next_line(), "{\"progress\":1}");
    assert_eq!(watcher.next(), None, "the watch ends when the job completes");
    assert!(watcher.wait().success());

    // A failed job stops the watch with exit 1 and the reason.
    run_ok(watchbot_progress().args(["set-total", "f", "-t", "2", "--table", &table]));
    run_ok(watchbot_progress().args(["fail-job", "f", "-r", "tile 2 is corrupt", "--table", &table]));
    let out = output_within(watchbot().args(["progress", "status", "f", "--watch", "--table", &table]));
    assert_one_line_error(&out, "job \"f\" failed: tile 2 is corrupt");
}

#[test]
fn a_line_that_never_comes_fails_the_test_instead_of_hanging_it() {
    let child = Command::new("sleep").arg("10").stdout(Stdio::piped()).spawn().unwrap();
    let lines = ChildLines::new(child);
    let started = Instant::now();
    let waited =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lines.next_within(Duration::from_millis(200))));
    assert!(waited.is_err(), "no line and no end of output: the wait panics");
    assert!(started.elapsed() < Duration::from_secs(5), "after the deadline, not when the child ends");
    drop(lines); // kills `sleep`
}
