//! The harness itself: moto starts once per test binary and answers, SDK configs reach it, names do not collide.

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

#[tokio::test]
async fn the_same_server_serves_every_test_of_a_binary() {
    // One server: both calls hand back the same instance (not merely equal text), on loopback.
    let (first, second) = (watchbot_testing::moto(), watchbot_testing::moto());
    assert!(std::ptr::eq(first, second), "moto() started a second server");
    assert!(first.endpoint().starts_with("http://127.0.0.1:"), "{}", first.endpoint());
    // And it answers: a queue made through one handle is listed through a client built from the other.
    let name = watchbot_testing::unique_name("shared");
    let maker = aws_sdk_sqs::Client::new(&first.sdk_config().await);
    let url = maker.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.expect("url");
    let reader = aws_sdk_sqs::Client::new(&second.sdk_config().await);
    let listed = reader.list_queues().queue_name_prefix(&name).send().await.expect("list queues");
    assert_eq!(listed.queue_urls(), [url]);
    // A child process (boto3, in moto's own Python) reaches the same server and sees the queue.
    let seen = first.python(&format!("print(client('sqs').get_queue_url(QueueName={name:?})['QueueUrl'])"));
    assert!(seen.ends_with(&name), "{seen}");
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
