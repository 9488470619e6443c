//! The fault proxy: held requests hang for their time and are then dropped or forwarded, while every other request
//! (even one of the same target) passes through at once; every request is recorded.

use std::time::{Duration, Instant};
use watchbot_testing::proxy::{AfterHang, FaultProxy, Treatment};

const LIST: &str = "AmazonSQS.ListQueues";
const GET_URL: &str = "AmazonSQS.GetQueueUrl";

/// An SQS client that talks to moto through the proxy, without retries (a dropped request must show as an error).
async fn client(proxy: &FaultProxy) -> aws_sdk_sqs::Client {
    let sdk = watchbot_testing::moto().sdk_config().await;
    let config = aws_sdk_sqs::config::Builder::from(&sdk)
        .endpoint_url(proxy.endpoint())
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue().queue_name(name).send().await.expect("create queue through the proxy").queue_url.expect("url")
}

fn treatments(proxy: &FaultProxy, target: &str) -> Vec<Treatment> {
    proxy.requests_of(target).into_iter().map(|seen| seen.treatment).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_hangs_then_drops_while_the_next_one_passes() {
    let proxy = FaultProxy::start(watchbot_testing::moto().endpoint()).await.expect("start the proxy");
    let sqs = client(&proxy).await;
    let name = watchbot_testing::unique_name("proxy-drop");
    let url = create_queue(&sqs, &name).await;
    let hold = Duration::from_secs(3);
    proxy.hang(LIST, 1, hold, AfterHang::Drop);

    let held = tokio::spawn({
        let (sqs, name) = (sqs.clone(), name.clone());
        async move {
            let started = Instant::now();
            let result = sqs.list_queues().queue_name_prefix(name).send().await;
            (result.is_ok(), started.elapsed())
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.requests_of(LIST).is_empty() {
        assert!(Instant::now() < deadline, "the proxy never saw the first ListQueues");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The rule is used up: the next request of the same target passes at once, beside the held one.
    let started = Instant::now();
    let listed = sqs.list_queues().queue_name_prefix(&name).send().await.expect("the second ListQueues passes");
    assert!(started.elapsed() < hold, "waited {:?} behind the held request", started.elapsed());
    assert_eq!(listed.queue_urls(), [url]);

    let (ok, elapsed) =
        tokio::time::timeout(Duration::from_secs(30), held).await.expect("the held call ends").expect("join");
    assert!(!ok, "a dropped request is an error to the client");
    assert!(elapsed >= hold, "answered after {elapsed:?}, before the hang of {hold:?} was over");
    assert_eq!(treatments(&proxy, LIST), [Treatment::Held(hold, AfterHang::Drop), Treatment::Forwarded]);
    assert_eq!(treatments(&proxy, "AmazonSQS.CreateQueue"), [Treatment::Forwarded]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_can_be_forwarded_late() {
    let proxy = FaultProxy::start(watchbot_testing::moto().endpoint()).await.expect("start the proxy");
    let sqs = client(&proxy).await;
    let name = watchbot_testing::unique_name("proxy-late");
    let url = create_queue(&sqs, &name).await;
    let hold = Duration::from_secs(1);
    proxy.hang(GET_URL, 1, hold, AfterHang::Forward);

    let started = Instant::now();
    let call = sqs.get_queue_url().queue_name(&name).send();
    let answer = tokio::time::timeout(Duration::from_secs(30), call).await.expect("answered in time");
    assert_eq!(answer.expect("forwarded after the hang").queue_url(), Some(url.as_str()));
    assert!(started.elapsed() >= hold, "answered after {:?}, inside the hang", started.elapsed());
    assert_eq!(treatments(&proxy, GET_URL), [Treatment::Held(hold, AfterHang::Forward)]);
}

#[tokio::test]
async fn an_upstream_that_is_not_a_url_is_an_error() {
    let error = FaultProxy::start("not a url").await.expect_err("rejected");
    assert!(error.to_string().starts_with("upstream \"not a url\": "), "{error}");
}

#[tokio::test]
async fn an_upstream_without_a_host_is_an_error() {
    let error = FaultProxy::start("/just/a/path").await.expect_err("rejected");
    assert_eq!(error.to_string(), "upstream \"/just/a/path\": expected http://host:port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_a_rewritten_target_are_rewritten_and_others_pass_unchanged() {
    let proxy = FaultProxy::start(watchbot_testing::moto().endpoint()).await.expect("start the proxy");
    let sqs = client(&proxy).await;
    let name = watchbot_testing::unique_name("proxy-rewrite");
    let url = create_queue(&sqs, &name).await;
    // A longer body than moto's: the client reads all of it (the length follows the new body).
    proxy.rewrite("AmazonSQS.List", |body| {
        let text = std::str::from_utf8(body).ok()?;
        Some(text.replace("proxy-rewrite", "rewritten-by-the-proxy-rewrite").into_bytes())
    });
    let listed = sqs.list_queues().queue_name_prefix(&name).send().await.expect("list through the proxy");
    assert_eq!(listed.queue_urls(), [url.replace("proxy-rewrite", "rewritten-by-the-proxy-rewrite")]);
    let got = sqs.get_queue_url().queue_name(&name).send().await.expect("get url through the proxy");
    assert_eq!(got.queue_url(), Some(url.as_str()), "another target's answer is left as it is");
}
