//! The exit codes of watchbot's own programs (README, "Exit codes of the commands"), one test per class, through the
//! real binaries: 1 for bad input or configuration, 2 for usage, 69 when a service cannot be reached or used. Each
//! failure is one line on stderr; an AWS failure names the service and the resource and says what to do.

use crate::util::{Finished, TestCommand, TestDir, watchbot, watchbot_log, watchbot_progress};

const BAD_INPUT: i32 = 1;
const USAGE: i32 = 2;
const SERVICE: i32 = 69;

const NO_CREDENTIALS: &str =
    "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";

fn binary(dir: &TestDir, name: &str) -> TestCommand {
    match name {
        "watchbot-progress" => watchbot_progress(dir),
        "watchbot-log" => watchbot_log(dir),
        _ => watchbot(dir),
    }
}

/// A machine without AWS credentials (no keys, no profile files, no instance metadata) whose AWS endpoint refuses
/// connections, so nothing can reach a real account.
fn without_credentials(command: &mut TestCommand) -> &mut TestCommand {
    command
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/watchbot-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/watchbot-test/credentials")
        .env("AWS_ENDPOINT_URL", format!("http://{}", refusing_address()))
}

/// A loopback address nobody listens on: a port just given back by the kernel.
fn refusing_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// The last line of stderr (a watcher logs events before its error); asserts the exit code and one error line.
fn failure_line(out: &Finished, code: i32) -> String {
    let err = out.stderr();
    assert_eq!(out.code(), Some(code), "{out}");
    let errors: Vec<&str> = err.lines().filter(|line| !line.starts_with('{')).collect();
    assert_eq!(errors.len(), 1, "one error line besides JSON events: {out}");
    errors[0].to_string()
}

#[test]
fn bad_input_or_configuration_exits_1() {
    let dir = TestDir::new();
    let missing = dir.path().join("missing.json");
    let out = watchbot(&dir).arg("template").arg("--config").arg(&missing).output();
    assert!(failure_line(&out, BAD_INPUT).contains("missing.json"));
    let out = watchbot(&dir).args(["send", "--local", "--state"]).arg(dir.path()).args(["--message", "m"]).output();
    assert!(failure_line(&out, BAD_INPUT).contains("no local queue"));
    let out = watchbot(&dir).args(["send", "--topic", "arn:aws:sqs:us-east-1:1:q", "--message", "m"]).output();
    assert!(failure_line(&out, BAD_INPUT).contains("an ARN of neither a DynamoDB table"));
    let table = dir.path().join("progress.sqlite");
    let out = watchbot_progress(&dir).args(["complete-part", "job", "--part", "0", "--table"]).arg(&table).output();
    assert!(failure_line(&out, BAD_INPUT).contains("--part"));
    let out = watchbot_progress(&dir).args(["complete-part", "job", "--part", "1", "--table"]).arg(&table).output();
    assert!(failure_line(&out, BAD_INPUT).contains("not found"), "an unknown job is about the data, not a service");
    let out = without_credentials(&mut watchbot(&dir)).args(["watch", "--runner", "process", "--", "true"]).output();
    assert_eq!(
        failure_line(&out, BAD_INPUT),
        "watchbot: --queue-url (or environment variable QueueUrl) is required but not set"
    );
    let out = watchbot(&dir)
        .args([
            "watch",
            "--runner",
            "process",
            "--queue-url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "--workers",
            "0",
            "--",
            "true",
        ])
        .output();
    assert_eq!(failure_line(&out, BAD_INPUT), "watchbot: --workers: expected a whole number of at least 1, got \"0\"");
}

#[test]
fn usage_errors_exit_2() {
    for (name, args) in [
        ("watchbot", vec!["--no-such-flag"]),
        ("watchbot", vec!["no-such-command"]),
        ("watchbot", vec!["send", "--message", "m"]),
        ("watchbot", vec!["watch", "--runner", "spot"]),
        ("watchbot-progress", vec!["status", "job", "--no-such-flag"]),
        ("watchbot-log", vec!["--no-such-flag"]),
    ] {
        let out = binary(&TestDir::new(), name).args(&args).fails_with(USAGE);
        assert!(out.stderr().starts_with("error: "), "{name} {args:?}: {out}");
    }
}

#[test]
fn a_service_without_credentials_exits_69_in_one_line_naming_it() {
    let topic = "arn:aws:sns:us-east-1:123456789012:work";
    let dir = TestDir::new();
    let out = without_credentials(&mut watchbot(&dir)).args(["send", "--topic", topic, "--message", "m"]).output();
    assert_eq!(failure_line(&out, SERVICE), format!("watchbot: cannot publish to SNS topic {topic}: {NO_CREDENTIALS}"));

    let out = without_credentials(&mut watchbot_progress(&dir)).args(["status", "job", "--table", "jobs"]).output();
    assert_eq!(
        failure_line(&out, SERVICE),
        format!("watchbot: cannot use DynamoDB table jobs (GetItem): {NO_CREDENTIALS}")
    );

    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";
    let mut command = watchbot(&dir);
    let out = without_credentials(&mut command)
        .args(["watch", "--runner", "process", "--queue-url", queue, "--", "true"])
        .output();
    assert_eq!(
        failure_line(&out, SERVICE),
        format!(
            "watchbot: cannot receive from the work queue {queue} (QueueUrl): sqs ReceiveMessage: {NO_CREDENTIALS}"
        )
    );
}

/// As on a laptop with nothing configured: the standard chain ends at the instance metadata service, which does not
/// answer. The line says what to set, the watcher stops at once, and the SDK's full error shows only when asked for.
#[test]
fn without_credentials_and_without_instance_metadata_the_line_says_what_to_set() {
    let topic = "arn:aws:sns:us-east-1:123456789012:work";
    let dir = TestDir::new();
    let imds = format!("http://{}", refusing_address());
    let mut command = watchbot(&dir);
    without_credentials(&mut command)
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
    let out = command.args(["send", "--topic", topic, "--message", "m"]).output();
    assert_eq!(failure_line(&out, SERVICE), format!("watchbot: cannot publish to SNS topic {topic}: {NO_CREDENTIALS}"));

    let mut command = watchbot(&dir);
    without_credentials(&mut command)
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds)
        .env("WATCHBOT_DEBUG", "1");
    let out = command.args(["send", "--topic", topic, "--message", "m"]).output();
    assert_eq!(out.code(), Some(SERVICE), "{out}");
    let stderr = out.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with("watchbot: debug: DispatchFailure"), "{out}");

    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";
    let mut command = watchbot(&dir);
    without_credentials(&mut command)
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
    let out = command.args(["watch", "--runner", "process", "--queue-url", queue, "--", "true"]).output();
    assert_eq!(
        failure_line(&out, SERVICE),
        format!(
            "watchbot: cannot receive from the work queue {queue} (QueueUrl): sqs ReceiveMessage: {NO_CREDENTIALS}"
        )
    );
}

/// What is not an SQS queue URL ends `watch` before any receive, naming the flag (or the variable) and what was
/// probably meant.
#[test]
fn a_queue_url_that_is_not_an_sqs_url_exits_1_at_once() {
    let dir = TestDir::new();
    for (url, hint) in [
        ("file:/tmp/x", "that is a local path: the embedded queue runs with `watchbot local --state DIR`"),
        ("arn:aws:sqs:us-east-1:123456789012:jobs", "that is an ARN"),
        ("jobs", "expected https://sqs.<region>.amazonaws.com/<account>/<queue name>"),
        ("https://sqs.us-east-1.amazonaws.com/jobs", "expected https://"),
    ] {
        let out = without_credentials(&mut watchbot(&dir))
            .args(["watch", "--runner", "process", "--queue-url", url, "--", "true"])
            .output();
        let line = failure_line(&out, BAD_INPUT);
        assert!(line.starts_with(&format!("watchbot: --queue-url: {url:?} is not an SQS queue URL (")), "{line}");
        assert!(line.contains(hint), "{line}");
    }
    let out = without_credentials(&mut watchbot(&dir))
        .env("QueueUrl", "/tmp/x")
        .args(["watch", "--runner", "process", "--", "true"])
        .output();
    assert!(failure_line(&out, BAD_INPUT).starts_with("watchbot: environment variable QueueUrl: \"/tmp/x\" is not"));
}

#[test]
fn an_unreachable_service_exits_69_in_one_line() {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";
    let dir = TestDir::new();
    let mut command = watchbot(&dir);
    without_credentials(&mut command).env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing");
    let out = command.args(["send", "--queue-url", queue, "--message", "m"]).output();
    assert_eq!(
        failure_line(&out, SERVICE),
        format!("watchbot: cannot send to SQS queue {queue}: cannot connect to AWS: connection refused")
    );
}

#[test]
fn a_missing_queue_or_topic_on_moto_exits_69() {
    let moto = watchbot_testing::moto();
    let missing = format!("{}/123456789012/{}", moto.endpoint(), watchbot_testing::unique_name("missing"));
    let dir = TestDir::new();
    let out = watchbot(&dir)
        .moto(moto)
        .args(["watch", "--runner", "process", "--queue-url", &missing, "--", "true"])
        .output();
    let line = failure_line(&out, SERVICE);
    assert!(
        line.starts_with(&format!("watchbot: cannot receive from the work queue {missing} (QueueUrl): ")),
        "{line}"
    );

    let topic = format!("arn:aws:sns:us-east-1:123456789012:{}", watchbot_testing::unique_name("missing"));
    let out = watchbot(&dir).moto(moto).args(["send", "--topic", &topic, "--message", "m"]).output();
    assert!(failure_line(&out, SERVICE).starts_with(&format!("watchbot: cannot publish to SNS topic {topic}: ")));
}
