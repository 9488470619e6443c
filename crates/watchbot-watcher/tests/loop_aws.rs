//! The loop once against the emulator with the real adapters: SQS queue and dead-letter queue, the ECS runner
//! (FARGATE on moto, which ends every task with exit code 0): a message runs as an ECS task and is deleted, a message
//! whose task another watcher already started is adopted (no second RunTask), and a message too large for ECS's
//! container overrides goes to the dead-letter queue with a notification.

use std::time::Duration;
use watchbot_watcher::aws::ecs::EcsRunner;
use watchbot_watcher::aws::sqs::SqsQueue;
use watchbot_watcher::events::Event;
use watchbot_watcher::ports::{Launch, TaskRunner, TaskSpec};
use watchbot_watcher::testing::{Recorder, RecordingNotifier};
use watchbot_watcher::{Jitter, Ports, TaskSizeLimit, WatcherConfig, run};

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue().queue_name(name).send().await.expect("create queue").queue_url().expect("url").to_string()
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
    out.messages().iter().map(|m| m.body().unwrap_or_default().to_string()).collect()
}

async fn started_by(ecs: &aws_sdk_ecs::Client, cluster: &str, message_id: &str) -> Vec<String> {
    let out = ecs.list_tasks().cluster(cluster).started_by(message_id).send().await.expect("list tasks");
    out.task_arns().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_runs_ecs_tasks_adopts_and_dead_letters_on_the_emulator() {
    let moto = watchbot_testing::moto();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let fixture = watchbot_testing::ecs::fixture().await;
    let (ecs, runner_config) = (fixture.client.clone(), crate::ecs::runner_config(&fixture));
    let name = watchbot_testing::unique_name("loop");
    let queue_url = create_queue(&sqs, &name).await;
    let dlq_url = create_queue(&sqs, &format!("{name}-dlq")).await;

    let send = |body: String| {
        let sqs = sqs.clone();
        let queue_url = queue_url.clone();
        async move {
            let out = sqs.send_message().queue_url(queue_url).message_body(body).send().await.expect("send");
            out.message_id().expect("id").to_string()
        }
    };
    let plain = send("hello".into()).await;
    let adopted = send("already running".into()).await;
    let big_body = "x".repeat(9000);
    let big = send(big_body.clone()).await;

    // Another watcher received the messages (and let them go: visible again at once) and already started the task
    // for `adopted`. The loop looks for a running task only from a message's second receive on.
    let seen = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).visibility_timeout(0);
    assert_eq!(seen.send().await.expect("receive").messages().len(), 3);
    let other = EcsRunner::new(ecs.clone(), runner_config.clone());
    let spec = TaskSpec { message_id: adopted.clone(), env: [("MessageId".to_string(), adopted.clone())].into() };
    assert!(matches!(other.launch(&spec).await.expect("launch"), Launch::Started(_)));

    let events = Recorder::default();
    let notifier = RecordingNotifier::default();
    let runner = EcsRunner::new(ecs.clone(), runner_config.clone());
    let ports = Ports::new(SqsQueue::new(sqs.clone(), queue_url.clone()), runner, notifier.clone())
        .with_dead_letter(SqsQueue::new(sqs.clone(), dlq_url.clone()))
        .with_events(events.clone());
    let mut config = WatcherConfig::default();
    config.workers = 3;
    config.receive_wait = Duration::from_secs(1);
    config.poll_interval = Duration::from_millis(200);
    config.task_size_limit = Some(TaskSizeLimit::ecs(&runner_config.container_name));
    config.jitter = Jitter::Fixed(0.0);
    let watch = events.clone();
    let done = async move {
        // Until both ECS tasks finished and the big message was dead-lettered (or a minute passed).
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let all = watch.events();
            let finished = all.iter().filter(|e| matches!(e, Event::Finished { .. })).count();
            let dead = all.iter().any(|e| matches!(e, Event::DeadLettered { .. }));
            let deleted = all.iter().filter(|e| matches!(e, Event::Deleted { .. })).count();
            if finished == 2 && dead && deleted == 3 {
                return;
            }
        }
    };
    let summary = run(ports, &config, done).await.expect("loop runs");
    let names = events.names();
    assert_eq!(
        (summary.received, summary.launched, summary.adopted, summary.succeeded, summary.dead_lettered),
        (3, 1, 1, 2, 1),
        "{names:?}"
    );
    assert_eq!(summary.failed, 0);

    // One task per message: ours for `plain` (its overrides carry the message), the other watcher's for `adopted`.
    assert_eq!(started_by(&ecs, &runner_config.cluster, &plain).await.len(), 1);
    assert_eq!(started_by(&ecs, &runner_config.cluster, &adopted).await.len(), 1);
    assert!(started_by(&ecs, &runner_config.cluster, &big).await.is_empty());
    let arn = started_by(&ecs, &runner_config.cluster, &plain).await.remove(0);
    // Events name the task by its ARN.
    assert!(
        events.events().contains(&Event::Launched { message_id: plain.clone(), task: arn.clone() }),
        "{:?}",
        events.events()
    );
    let described = ecs.describe_tasks().cluster(&runner_config.cluster).tasks(arn).send().await.expect("describe");
    let overrides = described.tasks()[0].overrides().expect("overrides").container_overrides()[0].clone();
    let env: Vec<(String, String)> = overrides
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
        .collect();
    assert!(env.contains(&("Message".to_string(), "hello".to_string())), "{env:?}");
    assert!(env.contains(&("MessageId".to_string(), plain.clone())), "{env:?}");
    // Received once by the other watcher, then by this loop.
    assert!(env.contains(&("ApproximateReceiveCount".to_string(), "2".to_string())), "{env:?}");

    // The work queue is empty; the big message is in the dead-letter queue, intact, and someone was told.
    assert!(receive_all(&sqs, &queue_url).await.is_empty());
    assert_eq!(receive_all(&sqs, &dlq_url).await, vec![big_body]);
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.ends_with(&big));
    assert!(sent[0].body.contains("over the limit of 8192"), "{}", sent[0].body);
}
