//! The harness itself: moto starts once per test binary, SDK configs reach it, names do not collide.

#[tokio::test]
async fn sdk_config_reaches_the_shared_moto_server() {
    let moto = watchbot_testing::moto();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let name = watchbot_testing::unique_name("harness");
    let url = sqs.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.expect("url");
    assert!(url.ends_with(&name), "{url} names the queue");
    let listed = sqs.list_queues().queue_name_prefix(&name).send().await.expect("list queues");
    assert_eq!(listed.queue_urls(), [url]);
}

#[test]
fn the_same_server_serves_every_test_of_a_binary() {
    assert_eq!(watchbot_testing::moto().endpoint(), watchbot_testing::moto().endpoint());
    assert!(watchbot_testing::moto().endpoint().starts_with("http://127.0.0.1:"));
}

#[test]
fn unique_names_differ() {
    let a = watchbot_testing::unique_name("x");
    let b = watchbot_testing::unique_name("x");
    assert_ne!(a, b);
    assert!(a.len() <= 80, "fits SQS's 80-character queue names: {a}");
}

#[test]
fn boto3_fixtures_run_against_the_same_server() {
    let moto = watchbot_testing::moto();
    let subnet = moto.python("print(client('ec2').describe_subnets()['Subnets'][0]['SubnetId'])");
    assert!(subnet.starts_with("subnet-"), "{subnet}");
}
