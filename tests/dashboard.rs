//! `watchbot dashboard` and `watchbot local --dashboard`: the refusals on the command line, and the page in a real
//! browser (headless Chromium from Debian's packages, driven over WebDriver by fantoccini; `cargo xtask test`
//! installs `chromium` and `chromium-driver` when missing). The browser test runs the example worker with
//! `local --dashboard`, watches the run arrive in the page without a reload, redrives a dead letter from the page
//! and sees it run again; then, on `watchbot dashboard --state` over the same folder with no loop running, sees a
//! redrive move the counts and a purge (behind its confirmation) empty the dead letters. Every wait is on the DOM,
//! with a deadline. Screenshots go to `target/dashboard*.png` (the README's `docs/dashboard.png` is one of them).

use crate::util::{TestChild, TestCommand, TestDir, watchbot, workspace_path};
use fantoccini::{Client, ClientBuilder, Locator};
use std::time::Duration;
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ports::{Queue, ReceiveRequest};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn a_non_loopback_address_without_a_token_is_refused_before_anything_is_queued() {
    let dir = TestDir::new();
    let out = watchbot(&dir).args(["dashboard", "--state", "nowhere", "--listen", "0.0.0.0:0"]).fails_with(1);
    let line = out.stderr();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("--listen 0.0.0.0:0 is not a loopback address") && line.contains("--token"), "{line}");
    dir.write("messages.jsonl", "{\"message\": \"m\"}\n");
    let out = watchbot(&dir)
        .args(["local", "--state", "state", "--messages", "messages.jsonl", "--dashboard", "0.0.0.0:0"])
        .args(["--", "true"])
        .fails_with(1);
    assert!(out.stderr().contains("--dashboard 0.0.0.0:0 is not a loopback address"), "{}", out.stderr());
    assert!(out.stderr().contains("--dashboard-token"), "{}", out.stderr());
    let counts = LocalQueue::open(&dir.join("state"), LocalQueueConfig::default()).unwrap().counts().unwrap();
    assert_eq!(counts.visible, 0, "nothing was enqueued");
    let out = watchbot(&dir).args(["dashboard", "--state", "nowhere", "--listen", "nonsense"]).fails_with(2);
    assert!(out.stderr().contains("nonsense"), "{}", out.stderr());
}

/// The URL a dashboard printed (`dashboard: http://…/`).
fn url_of(child: &TestChild) -> String {
    loop {
        let line = child.next_line().expect("the dashboard's URL on stdout");
        if let Some(url) = line.strip_prefix("dashboard: ") {
            return url.to_string();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver on a free loopback port, and a headless Chromium session through it.
async fn browser(dir: &TestDir) -> (TestChild, Client) {
    let port = free_port();
    let mut driver = TestCommand::new("chromedriver");
    driver
        .when_missing("chromedriver is Debian's chromium-driver: `cargo xtask test` installs it (or apt-get install chromium chromium-driver)")
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".to_string()])
        .deadline(Duration::from_secs(300));
    let driver = driver.spawn();
    let address = format!("127.0.0.1:{port}");
    watchbot_testing::process::wait_for_async("chromedriver to listen", DEADLINE, || {
        std::net::TcpStream::connect(&address).is_ok()
    })
    .await;
    let profile = dir.join("chromium-profile");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1500",
        "--hide-scrollbars",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), "chrome".into());
    capabilities.insert("goog:chromeOptions".into(), serde_json::json!({ "args": args }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://{address}"))
        .await
        .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
    (driver, client)
}

/// The text of the element at `css` ("" while there is none).
async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `condition` holds of the text at `css`, looking every 50 ms; panics after the deadline with the text.
async fn until(client: &Client, css: &str, what: &str, condition: impl Fn(&str) -> bool) -> String {
    let started = tokio::time::Instant::now();
    loop {
        let now = text(client, css).await;
        if condition(&now) {
            return now;
        }
        assert!(started.elapsed() < DEADLINE, "waited {DEADLINE:?} for {what} (at {css}: {now:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many elements match `css`.
async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.map(|all| all.len()).unwrap_or(0)
}

async fn until_count(client: &Client, css: &str, what: &str, condition: impl Fn(usize) -> bool) {
    let started = tokio::time::Instant::now();
    loop {
        let n = count(client, css).await;
        if condition(n) {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "waited {DEADLINE:?} for {what} ({n} of {css})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| watchbot_testing::workspace_root().join("target"));
    let path = target.join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The dead letter whose message (shown after its subject) contains `message`: its id.
async fn dead_letter_id(client: &Client, message: &str) -> String {
    for letter in client.find_all(Locator::Css("#dead-letters .letter")).await.unwrap() {
        let shown = letter.find(Locator::Css(".msg")).await.unwrap().text().await.unwrap();
        if shown.contains(message) {
            return letter.attr("data-id").await.unwrap().expect("data-id");
        }
    }
    panic!("no dead letter shows {message:?}");
}

async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_local_run_live_and_redrives_and_purges_dead_letters() {
    let dir = TestDir::new();
    let state = dir.join("state");
    // The example worker and messages: a map-reduce job of 4 parts, a rejection, a retry (exit 4 once) and a flaky
    // message (exit 1 once). With one receive allowed, the retry and the flaky message become dead letters.
    let mut local = watchbot(&dir);
    local
        .args(["local", "--workers", "2", "--no-backoff", "--max-receive-count", "1", "--state"])
        .arg(&state)
        .arg("--messages")
        .arg(workspace_path("examples/messages.jsonl"))
        .args(["--dashboard", "127.0.0.1:0", "--"])
        .arg(workspace_path("examples/worker.sh"))
        .deadline(Duration::from_secs(300));
    let mut local = local.spawn();
    let url = url_of(&local);
    let (driver, client) = browser(&dir).await;
    client.goto(&url).await.unwrap();
    assert!(client.title().await.unwrap().starts_with("watchbot"));

    // The run arrives without a reload: the job's bar fills, the failures and dead letters appear.
    until(&client, "#jobs .job[data-id='job-1'] .num", "job-1 complete", |t| t.starts_with("4 / 4 parts · 100%")).await;
    until(&client, "#count-dead_letters", "two dead letters", |t| t == "2").await;
    until_count(&client, "#dead-letters .letter", "two dead letters listed", |n| n == 2).await;
    until(&client, "#count-visible", "nothing visible", |t| t == "0").await;
    until(&client, "#count-in_flight", "nothing in flight", |t| t == "0").await;
    until(&client, "#sum-succeeded", "the chart's successes", |t| t.parse::<u32>().unwrap_or(0) >= 6).await;
    until(&client, "#sum-rejected", "the chart's rejection", |t| t == "1").await;
    let flaky = dead_letter_id(&client, "crashes once").await;
    let failures_of_flaky = format!("#failures details[data-key^='f\u{1f}{flaky}\u{1f}']");
    until_count(&client, &failures_of_flaky, "the flaky message's failure", |n| n == 1).await;
    // Its attempts open with the worker's output.
    click(&client, &format!("{failures_of_flaky} summary")).await;
    until(&client, "#failures .attempts pre", "the attempt's output", |t| t.contains("crashing on the first try"))
        .await;
    screenshot(&client, "dashboard.png").await;

    // Redrive from the page: the message runs again (and, being flaky on its first receive, fails again).
    click(&client, &format!("#dead-letters .letter[data-id='{flaky}'] button.redrive")).await;
    until(&client, "#banner", "the redrive's answer", |t| t.contains("Sent back to the work queue: 1 dead letter"))
        .await;
    until_count(&client, &failures_of_flaky, "the redriven message's second run", |n| n == 2).await;
    until(&client, "#count-dead_letters", "it dead-lettered again", |t| t == "2").await;
    local.terminate();
    local.wait().assert_success();

    // The same page from `watchbot dashboard` on the folder, no loop running: the counts move and stay.
    let mut dashboard = watchbot(&dir);
    dashboard.args(["dashboard", "--listen", "127.0.0.1:0", "--state"]).arg(&state).deadline(Duration::from_secs(300));
    let dashboard = dashboard.spawn();
    client.goto(&url_of(&dashboard)).await.unwrap();
    until_count(&client, "#dead-letters .letter", "two dead letters listed", |n| n == 2).await;
    let retry = dead_letter_id(&client, "waits for a resource").await;
    click(&client, &format!("#dead-letters .letter[data-id='{retry}'] button.redrive")).await;
    until(&client, "#count-dead_letters", "one dead letter left", |t| t == "1").await;
    until(&client, "#count-visible", "the redriven message visible", |t| t == "1").await;
    until_count(&client, "#dead-letters .letter", "one dead letter listed", |n| n == 1).await;
    // A receive from outside (as a watcher's) shows in flight with its receive count and elapsed time.
    let queue = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap();
    let request = ReceiveRequest::new(1, Duration::ZERO, Some(Duration::from_secs(600)));
    let held = queue.receive(request).await.unwrap();
    assert_eq!(held.len(), 1);
    let row = format!("#running tr[data-id='{}'] td:nth-child(2)", held[0].message_id);
    until(&client, &row, "the held message in flight, receive 1", |t| t == "1").await;
    until(&client, "#count-in_flight", "one in flight", |t| t == "1").await;
    click(&client, "#purge").await;
    until(&client, "#purge-question", "the purge's question", |t| t.contains("Delete all 1 dead letters?")).await;
    assert_eq!(text(&client, "#count-dead_letters").await, "1", "nothing purged before the confirmation");
    click(&client, "#purge-yes").await;
    until(&client, "#count-dead_letters", "no dead letters", |t| t == "0").await;
    until(&client, "#dead-empty", "the empty list", |t| t == "No dead letters.").await;
    let counts = LocalQueue::open(&state, LocalQueueConfig::default()).unwrap().counts().unwrap();
    assert_eq!((counts.in_flight, counts.dead_lettered), (1, 0), "{counts:?}");

    // A phone's width: the same page in one column.
    client.set_window_size(390, 1400).await.unwrap();
    screenshot(&client, "dashboard-phone.png").await;
    client.close().await.unwrap();
    drop(driver);
}

/// The dashboard on a deployed stack (moto's CloudFormation, SQS and DynamoDB): the counts and the stack's progress
/// table read, a dead letter redriven over the API, as the page does it (plain HTTP from the test).
mod stack {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;

    struct Page {
        url: String,
        token: String,
        client: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    }

    impl Page {
        async fn open(url: String) -> Page {
            let client = HttpClient::builder(TokioExecutor::new()).build_http();
            let mut page = Page { url: url.trim_end_matches('/').to_string(), token: String::new(), client };
            let (status, html) = page.call("GET", "", None).await;
            assert_eq!(status, 200, "{html}");
            let token = html.split(r#"name="watchbot-token" content=""#).nth(1).and_then(|t| t.split('"').next());
            page.token = token.expect("the token in the page").to_string();
            page
        }

        async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, String) {
            let address = self.url.trim_start_matches("http://").trim_end_matches('/').to_string();
            let mut request = hyper::Request::builder()
                .method(method)
                .uri(format!("{}{}", self.url, if path.is_empty() { "/" } else { path }))
                .header("host", &address)
                .header("x-watchbot-token", &self.token);
            if body.is_some() {
                request =
                    request.header("origin", format!("http://{address}")).header("content-type", "application/json");
            }
            let body = Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default()));
            let response = tokio::time::timeout(DEADLINE, self.client.request(request.body(body).unwrap()))
                .await
                .expect("the dashboard answers within the deadline")
                .expect("an answer");
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.expect("the body").to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }

        async fn json(&self, path: &str) -> serde_json::Value {
            let (status, body) = self.call("GET", path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            serde_json::from_str(&body).unwrap()
        }
    }

    async fn physical(cloudformation: &aws_sdk_cloudformation::Client, stack: &str, logical: &str) -> String {
        let resources = cloudformation.describe_stack_resources().stack_name(stack).send().await.expect("resources");
        let resource = resources.stack_resources().iter().find(|r| r.logical_resource_id() == Some(logical));
        resource.and_then(|r| r.physical_resource_id()).expect(logical).to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stack_dashboard_reads_the_queues_and_jobs_and_redrives() {
        let moto = watchbot_testing::moto();
        let dir = TestDir::new();
        let sdk = moto.sdk_config().await;
        let stack = watchbot_testing::unique_name("dash-stack");
        let template = serde_json::json!({
            "Resources": {
                "WatchbotDeadLetterQueue": { "Type": "AWS::SQS::Queue" },
                "WatchbotQueue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": { "RedrivePolicy": {
                        "deadLetterTargetArn": { "Fn::GetAtt": ["WatchbotDeadLetterQueue", "Arn"] },
                        "maxReceiveCount": 3,
                    } },
                },
                "WatchbotProgressTable": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {
                        "AttributeDefinitions": [{ "AttributeName": "id", "AttributeType": "S" }],
                        "KeySchema": [{ "AttributeName": "id", "KeyType": "HASH" }],
                        "BillingMode": "PAY_PER_REQUEST",
                    },
                },
            },
        });
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let created = cloudformation.create_stack().stack_name(&stack).template_body(template.to_string()).send();
        created.await.expect("create stack");
        let dead = physical(&cloudformation, &stack, "WatchbotDeadLetterQueue").await;
        let work = physical(&cloudformation, &stack, "WatchbotQueue").await;
        let table = physical(&cloudformation, &stack, "WatchbotProgressTable").await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        sqs.send_message().queue_url(&dead).message_body("gave up").send().await.expect("send");
        let (set_total, complete) =
            (["progress", "set-total", "job-a", "--total", "4"], ["progress", "complete-part", "job-a", "--part", "2"]);
        for args in [&set_total, &complete] {
            watchbot(&dir).moto(moto).env("ProgressTable", &table).args(args.as_slice()).success();
        }

        let mut dashboard = watchbot(&dir);
        dashboard.moto(moto).args(["dashboard", "--listen", "127.0.0.1:0", "--stack", &stack]);
        let dashboard = dashboard.deadline(Duration::from_secs(120)).spawn();
        let page = Page::open(url_of(&dashboard)).await;
        let overview = page.json("/api/overview").await;
        assert_eq!(overview["remote"], true, "{overview}");
        assert_eq!(overview["status"]["dead_letters"], 1, "{overview}");
        assert_eq!(overview["status"]["in_flight_messages"], serde_json::Value::Null, "SQS cannot list them");
        let jobs = page.json("/api/jobs").await;
        assert_eq!(jobs["jobs"][0]["id"], "job-a", "{jobs}");
        assert_eq!((jobs["jobs"][0]["remaining"].as_u64(), jobs["jobs"][0]["percent"].as_u64()), (Some(3), Some(25)));
        let letters = page.json("/api/dead-letters").await;
        let id = letters["dead_letters"][0]["message_id"].as_str().expect("a dead letter").to_string();
        let (status, body) =
            page.call("POST", "/api/dead-letters/redrive", Some(serde_json::json!({ "ids": [id] }))).await;
        assert_eq!(status, 200, "{body}");
        let received = sqs.receive_message().queue_url(&work).send().await.expect("receive");
        assert_eq!(received.messages()[0].body(), Some("gave up"), "the dead letter is in the work queue");
        let overview = page.json("/api/overview").await;
        assert_eq!(overview["status"]["dead_letters"], 0, "{overview}");
        // The chart reads CloudWatch, which moto cannot answer in this SDK's protocol: a one-line error, not a hang.
        let (status, body) = page.call("GET", "/api/outcomes", None).await;
        assert!(status == 200 || body.contains("GetMetricData") && !body.contains('\n'), "{status} {body}");
    }
}
