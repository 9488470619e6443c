//! End-to-end tests of `watchbot progress` and `watchbot-progress`: output as the original's, one-line errors with
//! exit 1, many OS processes completing parts of one job at once (embedded store and DynamoDB on moto), and
//! `status --watch` on a pipe.

use crate::util::{Finished, TestChild, TestCommand, TestDir, wait_for, watchbot, watchbot_progress};
use std::time::Duration;

/// A fresh embedded store in the test's folder; the folder lives as long as the returned guard.
fn embedded_table() -> (TestDir, String) {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.join("state")).unwrap(); // as `watchbot local` leaves it
    let path = dir.join("state/progress.sqlite").to_str().unwrap().to_owned();
    (dir, path)
}

fn run_ok(command: &mut TestCommand) -> String {
    command.stdout()
}

fn assert_one_line_error(out: &Finished, needle: &str) {
    assert_eq!(out.code(), Some(1), "{out}");
    let err = out.stderr();
    assert_eq!(err.lines().count(), 1, "one line:\n{out}");
    assert!(err.starts_with("watchbot: ") && err.contains(needle), "should mention {needle:?}:\n{out}");
}

#[test]
fn original_commands_and_output_on_the_embedded_store() {
    let (dir, table) = embedded_table();
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress(&dir);
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
    let out = run_ok(watchbot(&dir).args(["progress", "status", "job-1", "--json", "--table", &table]));
    let detailed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detailed["total"], 4);
    assert_eq!(detailed["complete"], true);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let (dir, table) = embedded_table();
    let progress = |args: &[&str]| watchbot_progress(&dir).args(args).env("ProgressTable", &table).output();
    run_ok(watchbot_progress(&dir).args(["set-total", "job", "-t", "3", "--table", &table]));
    assert_one_line_error(&progress(&["complete-part", "nope", "-p", "1"]), "job \"nope\" not found");
    assert_one_line_error(&progress(&["set-total", "job", "-t", "5"]), "already has a total of 3");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "4"]), "part 4 is outside 1..=3");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "0"]), "--part must be");
    assert_one_line_error(&progress(&["complete-part", "job", "-p", "two"]), "--part must be");
    assert_one_line_error(&progress(&["set-total", "huge", "-t", "1000000001"]), "over the limit of 1000000000 parts");
    assert_one_line_error(
        &progress(&["set-total", "huge", "-t", "50001", "--layout", "set"]),
        "over the limit of 50000 parts per job in the set layout",
    );
    assert_one_line_error(&progress(&["set-total", "huge", "-t", "3", "--layout", "sets"]), "--layout");
    let mut bogus = watchbot_progress(&dir);
    bogus.args(["set-total", "huge", "-t", "3"]).env("ProgressTable", &table).env("ProgressLayout", "bogus");
    assert_one_line_error(&bogus.output(), "$ProgressLayout");
    assert_one_line_error(&progress(&["set-metadata", "job", "-m", "{nope"]), "--metadata is not JSON");
    assert_one_line_error(&progress(&["set-metadata", "job", "-m", r#"{"a":1,"a":2}"#]), "appears twice");
    assert_one_line_error(&progress(&["fail-job", "ghost", "-r", "x"]), "not found");
    assert_one_line_error(&watchbot_progress(&dir).args(["status", "job"]).output(), "no progress table");
    assert_one_line_error(
        &watchbot_progress(&dir).args(["status", "job", "--table", "not a table"]).output(),
        "invalid progress table address",
    );
    // A store path whose folder does not exist is an error naming it, and creates nothing; so is a missing store
    // file for anything but set-total.
    let nowhere = dir.join("no/such/dir/p.sqlite");
    for args in [["status", "j"], ["set-total", "j"]] {
        let mut command = watchbot_progress(&dir);
        command.args(args).arg("--table").arg(&nowhere);
        if args[0] == "set-total" {
            command.args(["-t", "5"]);
        }
        assert_one_line_error(&command.output(), "the folder");
    }
    assert!(!dir.join("no").exists(), "no folder was created");
    let absent = dir.join("state/absent.sqlite");
    let out = watchbot_progress(&dir).args(["status", "j", "--table"]).arg(&absent).output();
    assert_one_line_error(&out, "progress store not found");
    assert!(!absent.exists());
    // Nothing above changed the job.
    assert_eq!(progress(&["status", "job"]).assert_success().stdout(), "{\"progress\":0}\n");
}

/// Starts one process per part at once (all running before any is awaited), then collects their `--json` answers.
fn complete_all_at_once(
    dir: &TestDir,
    configure: &dyn Fn(&mut TestCommand),
    job: &str,
    parts: impl Iterator<Item = u64>,
) -> Vec<serde_json::Value> {
    let children: Vec<TestChild> = parts
        .map(|part| {
            let mut command = watchbot_progress(dir);
            command.args(["complete-part", job, "-p", &part.to_string(), "--json"]);
            configure(&mut command);
            command.spawn()
        })
        .collect();
    children
        .into_iter()
        .map(|mut child| serde_json::from_str(&child.wait().assert_success().stdout()).unwrap())
        .collect()
}

fn count(answers: &[serde_json::Value], field: &str) -> usize {
    answers.iter().filter(|a| a[field] == true).count()
}

#[test]
fn many_processes_complete_parts_of_one_embedded_job() {
    let (dir, table) = embedded_table();
    let configure = |command: &mut TestCommand| {
        command.env("ProgressTable", &table);
    };
    const TOTAL: u64 = 40;
    run_ok(watchbot_progress(&dir).args(["set-total", "job", "-t", &TOTAL.to_string(), "--table", &table]));
    let answers = complete_all_at_once(&dir, &configure, "job", 1..=TOTAL);
    assert_eq!(count(&answers, "finished"), 1, "exactly one process finished the job: {answers:?}");
    assert_eq!(count(&answers, "replay"), 0);
    // Every process saw its own step: the remaining counts are 0..TOTAL, each once.
    let mut remaining: Vec<u64> = answers.iter().map(|a| a["remaining"].as_u64().unwrap()).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..TOTAL).collect::<Vec<_>>());
    // Replays from many processes at once: all say done, none claims the finish.
    let replays = complete_all_at_once(&dir, &configure, "job", (1..=TOTAL).step_by(3));
    assert!(replays.iter().all(|a| a["complete"] == true && a["finished"] == false && a["replay"] == true));
    assert_eq!(run_ok(watchbot_progress(&dir).args(["status", "job", "--table", &table])), "{\"progress\":1}\n");
}

#[test]
fn processes_racing_on_a_fresh_file_all_get_answers() {
    // No file yet: every process creates the schema and switches to WAL at the same moment.
    let (dir, table) = embedded_table();
    let children: Vec<TestChild> = (0..8)
        .map(|_| watchbot_progress(&dir).args(["set-total", "fresh", "-t", "5", "--json", "--table", &table]).spawn())
        .collect();
    let created = children
        .into_iter()
        .map(|mut child| {
            let out = child.wait().assert_success();
            serde_json::from_str::<serde_json::Value>(&out.stdout()).unwrap()["created"] == true
        })
        .filter(|created| *created)
        .count();
    assert_eq!(created, 1, "exactly one process created the job; the others found the same total");
}

#[test]
fn dynamodb_on_moto_through_the_cli() {
    let moto = watchbot_testing::moto();
    let dir = TestDir::new();
    let table = watchbot_testing::unique_name("progress");
    moto.python(&format!(
        "client('dynamodb').create_table(TableName={table:?}, \
         AttributeDefinitions=[{{'AttributeName': 'id', 'AttributeType': 'S'}}], \
         KeySchema=[{{'AttributeName': 'id', 'KeyType': 'HASH'}}], BillingMode='PAY_PER_REQUEST')"
    ));
    let arn = format!("arn:aws:dynamodb:{}:{}:table/{table}", watchbot_testing::REGION, watchbot_testing::ACCOUNT_ID);
    // The set layout: racing processes on moto's UpdateItem, whose answers are asserted below for what they are
    // worth. moto's TransactWriteItems is not safe to race at all (a cancelled one restores a copy of the table
    // taken when it began), so the counter layout runs one process at a time on moto (next test), and concurrently
    // on the embedded store and on aws-smithy-mocks.
    let configure = |command: &mut TestCommand| {
        command.moto(moto).env("ProgressTable", &arn).env("ProgressLayout", "set");
    };
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress(&dir);
        command.args(args);
        configure(&mut command);
        command
    };
    assert_eq!(run_ok(&mut progress(&["set-total", "map-1", "-t", "30"])), "");
    assert_one_line_error(&progress(&["set-total", "map-1", "-t", "31"]).output(), "already has a total of 30");
    assert_one_line_error(&progress(&["complete-part", "ghost", "-p", "1"]).output(), "not found");
    assert_one_line_error(&progress(&["complete-part", "map-1", "-p", "31"]).output(), "outside 1..=30");
    let answers = complete_all_at_once(&dir, &configure, "map-1", 1..=30);
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
    let out = progress(&["status", "map-1", "--table", "no-such-table"]).env_remove("ProgressTable").fails_with(69);
    assert_eq!(
        out.stderr(),
        "watchbot: cannot use DynamoDB table no-such-table (GetItem): ResourceNotFoundException: Requested resource \
         not found\n",
        "{out}"
    );
}

/// Usage errors (a missing or unknown flag, one that does not apply, no job id, an unknown subcommand) exit 2 with
/// clap's message, under both names; each subcommand has its own help.
#[test]
fn usage_errors_exit_2_and_each_subcommand_has_its_help() {
    let (dir, table) = embedded_table();
    for args in [
        vec!["complete-part", "job"],
        vec!["set-total", "job"],
        vec!["fail-job", "job"],
        vec!["explode", "job"],
        vec!["status"],
        vec!["status", ""],
        vec!["status", "j", "--total", "5"],
        vec!["status", "j", "--timeout", "5"],
    ] {
        let mut under_watchbot = watchbot(&dir);
        under_watchbot.arg("progress");
        for mut command in [watchbot_progress(&dir), under_watchbot] {
            let out = command.env("ProgressTable", &table).args(&args).fails_with(2);
            assert!(out.stderr().starts_with("error: "), "{args:?}: {out}");
        }
    }
    let help = watchbot(&dir).args(["progress", "set-total", "--help"]).stdout();
    assert!(help.contains("--total <N>") && help.contains("Usage: watchbot progress set-total"), "{help}");
    let help = watchbot_progress(&dir).arg("--help").stdout();
    assert!(help.contains("Usage: watchbot-progress") && help.contains("complete-part"), "{help}");
    assert!(!help.contains("watchbot progress"), "{help}");
}

/// `--watch` on a job whose total is not set yet waits for it (saying so once), then follows it; `--timeout` ends
/// the wait with exit 1.
#[test]
fn status_watch_waits_for_a_job_that_does_not_exist_yet() {
    let (dir, table) = embedded_table();
    run_ok(watchbot_progress(&dir).args(["set-total", "other", "-t", "1", "--table", &table]));
    let mut watcher = watchbot(&dir)
        .args(["progress", "status", "later", "--watch", "--interval", "0.05", "--table", &table])
        .deadline(Duration::from_secs(30))
        .spawn();
    let waiting = "watchbot: job \"later\" does not exist yet (no total set): waiting for it to appear\n";
    wait_for("the waiting line", Duration::from_secs(20), || watcher.stderr_so_far() == waiting);
    run_ok(watchbot_progress(&dir).args(["set-total", "later", "-t", "1", "--table", &table]));
    assert_eq!(watcher.next_line().expect("a status line"), "{\"progress\":0}");
    run_ok(watchbot_progress(&dir).args(["complete-part", "later", "-p", "1", "--table", &table]));
    assert_eq!(watcher.next_line().expect("a status line"), "{\"progress\":1}");
    watcher.wait().assert_success();

    let out = watchbot(&dir)
        .args(["progress", "status", "never", "--watch", "--interval", "0.05", "--timeout", "0.2", "--table", &table])
        .output();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr().ends_with("watchbot: job \"never\": --timeout of 0.2 s reached before it ended\n"), "{out}");
}

#[test]
fn jobs_of_both_layouts_on_moto_through_the_cli() {
    let moto = watchbot_testing::moto();
    let dir = TestDir::new();
    let table = watchbot_testing::unique_name("progress");
    let python = |snippet: &str| moto.python(&format!("table = {table:?}\n{snippet}"));
    python(
        "client('dynamodb').create_table(TableName=table, \
         AttributeDefinitions=[{'AttributeName': 'id', 'AttributeType': 'S'}], \
         KeySchema=[{'AttributeName': 'id', 'KeyType': 'HASH'}], BillingMode='PAY_PER_REQUEST')",
    );
    let progress = |args: &[&str]| {
        let mut command = watchbot_progress(&dir);
        command.args(args).moto(moto).env("ProgressTable", &table);
        command
    };
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_str(&run_ok(&mut progress(args))).unwrap() };
    let item = |id: &str| {
        python(&format!(
            "import json\nitem = client('dynamodb').get_item(TableName=table, Key={{'id': {{'S': {id:?}}}}}, \
             ConsistentRead=True).get('Item')\nprint(json.dumps(item, sort_keys=True))"
        ))
    };
    let items = || python("print(client('dynamodb').scan(TableName=table, Select='COUNT')['Count'])");

    // A job in the original's shape, as the original's workers create it: continued in its shape by our CLI
    // (whose default layout for new jobs is the counter).
    python(
        "client('dynamodb').put_item(TableName=table, \
         Item={'id': {'S': 'orig'}, 'total': {'N': '3'}, 'parts': {'NS': ['1', '2', '3']}})",
    );
    let first = json(&["complete-part", "orig", "-p", "2", "--json"]);
    assert_eq!((first["finished"].clone(), first["remaining"].clone()), (false.into(), 2.into()), "{first}");
    assert_eq!(json(&["complete-part", "orig", "-p", "2", "--json"])["replay"], true);
    assert_eq!(run_ok(&mut progress(&["status", "orig", "-p", "2"])), "{\"progress\":0.33,\"partComplete\":true}\n");
    assert_eq!(item("orig"), r#"{"id": {"S": "orig"}, "parts": {"NS": ["1", "3"]}, "total": {"N": "3"}}"#);
    assert_eq!(run_ok(&mut progress(&["complete-part", "orig", "-p", "1"])), "false\n");
    let last = json(&["complete-part", "orig", "-p", "3", "--json"]);
    assert_eq!((last["finished"].clone(), last["complete"].clone()), (true.into(), true.into()), "{last}");
    assert_eq!(item("orig"), r#"{"id": {"S": "orig"}, "total": {"N": "3"}}"#, "still the original's shape");
    assert_eq!(items(), "1", "no item of the counter layout was written");
    assert_eq!(run_ok(&mut progress(&["status", "orig"])), "{\"progress\":1}\n");

    // A new job: the counter layout, answering the same.
    assert_eq!(json(&["set-total", "new", "-t", "3", "--json"])["created"], true);
    assert_eq!(item("new"), r#"{"id": {"S": "new"}, "remaining": {"N": "3"}, "total": {"N": "3"}}"#);
    assert_eq!(json(&["complete-part", "new", "-p", "2", "--json"])["remaining"], 2);
    assert_eq!(json(&["complete-part", "new", "-p", "2", "--json"])["replay"], true);
    assert_eq!(run_ok(&mut progress(&["status", "new", "-p", "2"])), "{\"progress\":0.33,\"partComplete\":true}\n");
    assert_eq!(run_ok(&mut progress(&["complete-part", "new", "-p", "1"])), "false\n");
    let last = json(&["complete-part", "new", "-p", "3", "--json"]);
    assert_eq!((last["finished"].clone(), last["complete"].clone()), (true.into(), true.into()), "{last}");
    assert_eq!(items(), "5", "the two jobs and the new job's three parts");
    assert_eq!(run_ok(&mut progress(&["status", "new"])), "{\"progress\":1}\n");
    // --layout set creates a job in the original's shape, for a table shared with the original's workers.
    run_ok(&mut progress(&["set-total", "for-old-workers", "-t", "2", "--layout", "set"]));
    assert_eq!(
        item("for-old-workers"),
        r#"{"id": {"S": "for-old-workers"}, "parts": {"NS": ["1", "2"]}, "total": {"N": "2"}}"#
    );
    // The original's fail-job and set-metadata on it (a map): our status prints what the original's would.
    python(
        "client('dynamodb').update_item(TableName=table, Key={'id': {'S': 'for-old-workers'}}, \
         UpdateExpression='SET #m = :m, #e = :e', ExpressionAttributeNames={'#m': 'metadata', '#e': 'error'}, \
         ExpressionAttributeValues={':m': {'M': {'n': {'N': '1e21'}, 'list': {'L': [{'S': 'a'}]}}}, \
         ':e': {'S': 'boom'}})",
    );
    assert_eq!(
        run_ok(&mut progress(&["status", "for-old-workers"])),
        "{\"progress\":0,\"failed\":\"boom\",\"metadata\":{\"list\":[\"a\"],\"n\":1e+21}}\n"
    );
    // Ours writes metadata as the original does: a map.
    run_ok(&mut progress(&["set-metadata", "for-old-workers", "-m", r#"{"k": [1, 2.5]}"#]));
    assert!(
        item("for-old-workers").contains(r#""metadata": {"M": {"k": {"L": [{"N": "1"}, {"N": "2.5"}]}}}"#),
        "{}",
        item("for-old-workers")
    );
}

#[test]
fn status_watch_prints_lines_on_a_pipe_and_stops_when_done() {
    let (dir, table) = embedded_table();
    run_ok(watchbot_progress(&dir).args(["set-total", "w", "-t", "2", "--table", &table]));
    let mut watcher = watchbot(&dir)
        .args(["progress", "status", "w", "--watch", "--interval", "0.05", "--table", &table])
        .deadline(Duration::from_secs(30))
        .spawn();
    // Each step waits for the watcher's line, so the test does not depend on timing (and fails, rather than
    // hangs, when a line never comes).
    let next_line = |watcher: &TestChild| watcher.next_line().expect("a status line");
    assert_eq!(next_line(&watcher), "{\"progress\":0}");
    run_ok(watchbot_progress(&dir).args(["complete-part", "w", "-p", "1", "--table", &table]));
    assert_eq!(next_line(&watcher), "{\"progress\":0.5}", "a line when the status changes, none while it does not");
    run_ok(watchbot_progress(&dir).args(["complete-part", "w", "-p", "2", "--table", &table]));
    assert_eq!(next_line(&watcher), "{\"progress\":1}");
    assert_eq!(watcher.next_line(), None, "the watch ends when the job completes");
    watcher.wait().assert_success();

    // A failed job stops the watch with exit 1 and the reason.
    run_ok(watchbot_progress(&dir).args(["set-total", "f", "-t", "2", "--table", &table]));
    run_ok(watchbot_progress(&dir).args(["fail-job", "f", "-r", "tile 2 is corrupt", "--table", &table]));
    let out = watchbot(&dir).args(["progress", "status", "f", "--watch", "--table", &table]).output();
    assert_one_line_error(&out, "job \"f\" failed: tile 2 is corrupt");
}
