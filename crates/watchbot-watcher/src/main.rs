//! The `watchbot-watcher` binary run by the watcher container: configured only by the environment variables the
//! template's watcher task definition sets (a missing or malformed one: one line naming it, exit 1). Runs ECS tasks
//! until SIGTERM/SIGINT, then stops gracefully and exits 0.

use std::collections::BTreeMap;
use std::process::ExitCode;
use watchbot_watcher::aws::ecs::EcsRunner;
use watchbot_watcher::aws::sns::SnsTopic;
use watchbot_watcher::aws::sqs::SqsQueue;
use watchbot_watcher::config::{self, Source};
use watchbot_watcher::service::{self, Service, ServiceNotifier};

fn main() -> ExitCode {
    // Lossy, so a stray non-UTF-8 variable elsewhere in the environment cannot crash the watcher.
    let vars: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect();
    let env = match config::from_env(&vars, Source::Container) {
        Ok(env) => env,
        Err(error) => {
            eprintln!("watchbot-watcher: {error}");
            return ExitCode::from(1);
        }
    };
    let Some(ecs) = env.ecs.clone() else {
        eprintln!("watchbot-watcher: the container runs ECS tasks, but no ECS settings were read");
        return ExitCode::from(1);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("watchbot-watcher: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let sdk = service::sdk_config().await;
        let sqs = service::sqs_client(&sdk);
        let service = Service {
            queue: SqsQueue::new(sqs.clone(), env.queue_url.clone()),
            dead_letter: env.dead_letter_queue_url.clone().map(|url| SqsQueue::new(sqs.clone(), url)),
            notifier: match &env.notification_topic {
                Some(arn) => ServiceNotifier::Sns(SnsTopic::new(aws_sdk_sns::Client::new(&sdk), arn.clone())),
                None => ServiceNotifier::Log,
            },
            runner: EcsRunner::new(aws_sdk_ecs::Client::new(&sdk), service::ecs_runner_config(&ecs)),
        };
        service::serve(service, &env).await
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("watchbot-watcher: {error}");
            ExitCode::from(1)
        }
    }
}
