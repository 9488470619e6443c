//! The ECS task runner: RunTask with container overrides, `startedBy` = message id.
//!
//! - `launch`: RunTask (count 1) on the cluster with the task definition, the task environment as container overrides
//!   of `container_name`, `startedBy` = the message id (so `find_running` can adopt the task after a duplicate receive),
//!   the launch type or the capacity provider strategy, and an `awsvpcConfiguration` when subnets are given
//!   (required on Fargate: the FARGATE launch type, or a strategy of FARGATE/FARGATE_SPOT). Calls pass a token
//!   bucket (`run_task_per_second`) first: ECS throttles RunTask, and Fargate allows about 20 launches a second.
//!   RunTask `failures` (e.g. `RESOURCE:MEMORY`) and throttling answer [`Launch::NotPlaced`]: the task did not start,
//!   the loop keeps the message and retries placement later, and the task is not counted as failed. Each call carries
//!   a `clientToken`, so the SDK's own retries of one call (after a timeout or a 5xx) cannot start two tasks; after
//!   such an ambiguous failure the next launch of the same spec reuses that token, so a task ECS started but did not
//!   report (and ListTasks does not show yet) is answered again instead of started twice.
//! - `find_running`: ListTasks by `startedBy` and desired status RUNNING (pending tasks included).
//! - `poll`: DescribeTasks, 100 tasks per call (the API's limit). A STOPPED task reports the exit code of the container
//!   named `container_name` and its `stoppedReason`; a task ECS no longer knows (`failures` with reason MISSING, or
//!   absent from the answer) reports `Stopped { exit_code: None, reason: "task no longer exists" }`. Any other per-task
//!   failure reports it as still running, so a transient fault never turns into a task failure; `messageTimeout`
//!   bounds how long that can last.
//! - `stop`: StopTask with the reason (truncated to ECS's 255 characters); a task that is already gone is not an
//!   error.
//!
//! SDK errors map to [`PortErrorKind`]: throttling, 5xx (`ServerException`), timeouts and network failures are
//! `Transient`; a missing cluster or task definition is `NotFound` (the loop holds the message rather than fail it);
//! everything else (bad parameters, access denied) is `Rejected`.
//! A transient error from RunTask is ambiguous (the task may have started): the loop's next attempt should look for
//! the task with `find_running` first, which `startedBy` makes possible.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride, DesiredStatus, KeyValuePair,
    NetworkConfiguration, TaskOverride,
};

mod rate;
mod settings;

use rate::RateLimiter;
pub use settings::{CapacityProviderItem, EcsRunnerConfig, LaunchType, UnknownLaunchType};

use crate::aws::error::{explain, unsent_kind};
use crate::ports::{Launch, PortError, PortErrorKind, TaskOutput, TaskRunner, TaskSpec, TaskState};

/// ECS's limit on tasks per DescribeTasks call.
pub const DESCRIBE_TASKS_BATCH: usize = 100;
/// ECS's limit on the length of `startedBy`.
pub const STARTED_BY_MAX: usize = 128;
/// ECS's limit on the length of a StopTask reason.
pub const STOP_REASON_MAX: usize = 255;
/// The default RunTask rate limit, in calls per second.
pub const DEFAULT_RUN_TASK_PER_SECOND: f64 = 10.0;

/// Runs one ECS task per message; implements [`TaskRunner`] with task ARNs as handles.
pub struct EcsRunner {
    client: aws_sdk_ecs::Client,
    config: EcsRunnerConfig,
    /// Where the tasks' output is read from (their awslogs streams); `None`: no output for notifications.
    logs: Option<super::logs::TaskLogs>,
    limiter: RateLimiter,
    tokens: ClientTokens,
}

impl EcsRunner {
    /// A runner on this client (built by the caller from `aws-config`'s standard chain).
    pub fn new(client: aws_sdk_ecs::Client, config: EcsRunnerConfig) -> EcsRunner {
        let limiter = RateLimiter::new(config.run_task_per_second);
        EcsRunner { client, config, limiter, tokens: ClientTokens::default(), logs: None }
    }

    /// The same runner, reading a stopped task's output from its log stream (for notifications).
    pub fn with_logs(mut self, logs: super::logs::TaskLogs) -> EcsRunner {
        self.logs = Some(logs);
        self
    }

    /// The runner's config.
    pub fn config(&self) -> &EcsRunnerConfig {
        &self.config
    }

    fn network_configuration(&self) -> Result<Option<NetworkConfiguration>, PortError> {
        if self.config.subnets.is_empty() {
            if self.config.is_fargate() {
                return Err(PortError::new(PortErrorKind::Rejected, "Fargate tasks need subnets"));
            }
            return Ok(None);
        }
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.config.subnets.clone()))
            .set_security_groups((!self.config.security_groups.is_empty()).then(|| self.config.security_groups.clone()))
            // Only Fargate takes `assignPublicIp`; ECS rejects it for tasks on EC2 instances.
            .set_assign_public_ip(self.config.is_fargate().then_some(if self.config.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            }))
            .build()
            .map_err(|e| PortError::new(PortErrorKind::Rejected, format!("bad network configuration: {e}")))?;
        Ok(Some(NetworkConfiguration::builder().awsvpc_configuration(vpc).build()))
    }

    /// The launch type RunTask sends: none when a capacity provider strategy is sent instead.
    fn launch_type(&self) -> Option<aws_sdk_ecs::types::LaunchType> {
        self.config
            .capacity_provider_strategy
            .is_empty()
            .then(|| aws_sdk_ecs::types::LaunchType::from(self.config.launch_type.as_str()))
    }

    fn capacity_provider_strategy(&self) -> Result<Option<Vec<CapacityProviderStrategyItem>>, PortError> {
        if self.config.capacity_provider_strategy.is_empty() {
            return Ok(None);
        }
        let mut items = Vec::new();
        for item in &self.config.capacity_provider_strategy {
            // ECS's limits (1000, 100000) fit an i32; the parser enforces them.
            let item = CapacityProviderStrategyItem::builder()
                .capacity_provider(&item.name)
                .weight(i32::try_from(item.weight).unwrap_or(i32::MAX))
                .base(i32::try_from(item.base).unwrap_or(i32::MAX))
                .build()
                .map_err(|e| PortError::new(PortErrorKind::Rejected, format!("bad capacity provider strategy: {e}")))?;
            items.push(item);
        }
        Ok(Some(items))
    }

    async fn describe_batch(&self, arns: &[String]) -> Result<Vec<(String, TaskState)>, PortError> {
        let answer = self
            .client
            .describe_tasks()
            .cluster(&self.config.cluster)
            .set_tasks(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("DescribeTasks", e))?;
        let mut found: HashMap<&str, TaskState> = HashMap::new();
        for task in answer.tasks() {
            let Some(arn) = task.task_arn() else { continue };
            found.insert(arn, task_state(task, &self.config.container_name));
        }
        for failure in answer.failures() {
            let Some(arn) = failure.arn() else { continue };
            if failure.reason() == Some("MISSING") {
                found.entry(arn).or_insert_with(gone);
            } else {
                // Not an answer about the task itself: keep it running; the message timeout bounds this.
                found.entry(arn).or_insert(TaskState::Running);
            }
        }
        Ok(arns.iter().map(|arn| (arn.clone(), found.remove(arn.as_str()).unwrap_or_else(gone))).collect())
    }
}

impl TaskRunner for EcsRunner {
    type Handle = String;

    async fn find_running(&self, message_id: &str) -> Result<Option<String>, PortError> {
        let answer = self
            .client
            .list_tasks()
            .cluster(&self.config.cluster)
            .started_by(started_by(message_id))
            .desired_status(DesiredStatus::Running)
            .send()
            .await
            .map_err(|e| port_error("ListTasks", e))?;
        Ok(answer.task_arns().first().cloned())
    }

    async fn launch(&self, spec: &TaskSpec) -> Result<Launch<String>, PortError> {
        let network = self.network_configuration()?;
        let token = self.tokens.token_for(spec);
        self.limiter.acquire().await;
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&self.config.container_name)
                    .set_environment(Some(environment(&spec.env)))
                    .build(),
            )
            .build();
        let result = self
            .client
            .run_task()
            .cluster(&self.config.cluster)
            .task_definition(&self.config.task_definition)
            .count(1)
            .started_by(started_by(&spec.message_id))
            .client_token(&token)
            .set_launch_type(self.launch_type())
            .set_capacity_provider_strategy(self.capacity_provider_strategy()?)
            .set_network_configuration(network)
            .overrides(overrides)
            .send()
            .await;
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => {
                let throttled = matches!(&error, SdkError::ServiceError(context)
                if is_throttling(
                    context.err().code().unwrap_or(""),
                    context.err().message().unwrap_or(""),
                    context.raw().status().as_u16(),
                ));
                let error = port_error("RunTask", error);
                if throttled {
                    self.tokens.settled(spec);
                    return Ok(Launch::NotPlaced { reason: format!("throttled: {}", error.message) });
                }
                if error.is_transient() {
                    // The task may have started: the retry of this spec must carry the same token.
                    self.tokens.ambiguous(spec, token);
                } else {
                    self.tokens.settled(spec);
                }
                return Err(error);
            }
        };
        self.tokens.settled(spec);
        if let Some(arn) = answer.tasks().iter().find_map(|task| task.task_arn()) {
            return Ok(Launch::Started(arn.to_string()));
        }
        let reasons: Vec<String> = answer
            .failures()
            .iter()
            .map(|failure| match (failure.reason(), failure.detail()) {
                (Some(reason), Some(detail)) => format!("{reason} ({detail})"),
                (Some(reason), None) => reason.to_string(),
                (None, Some(detail)) => detail.to_string(),
                (None, None) => "unknown".to_string(),
            })
            .collect();
        if reasons.is_empty() {
            return Err(PortError::transient("ecs RunTask returned neither a task nor a failure"));
        }
        Ok(Launch::NotPlaced { reason: reasons.join("; ") })
    }

    async fn poll(&self, handles: &[String]) -> Result<Vec<(String, TaskState)>, PortError> {
        let mut states = Vec::with_capacity(handles.len());
        for batch in handles.chunks(DESCRIBE_TASKS_BATCH) {
            states.extend(self.describe_batch(batch).await?);
        }
        Ok(states)
    }

    /// The newest ~50 KB of the task's awslogs stream (`aws::logs`).
    async fn output(&self, handle: &String) -> TaskOutput {
        match &self.logs {
            Some(logs) => logs.tail(handle).await,
            None => TaskOutput::Unavailable("the watcher has no LogGroup, so the task's log stream is unknown".into()),
        }
    }

    async fn stop(&self, handle: &String, reason: &str) -> Result<(), PortError> {
        let reason: String = reason.chars().take(STOP_REASON_MAX).collect();
        match self.client.stop_task().cluster(&self.config.cluster).task(handle).reason(reason).send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = port_error("StopTask", error);
                // Stopping a task that is already gone is what the caller wanted.
                if error.kind == PortErrorKind::Rejected && error.message.to_ascii_lowercase().contains("not found") {
                    return Ok(());
                }
                Err(error)
            }
        }
    }
}

fn gone() -> TaskState {
    TaskState::Stopped { exit_code: None, reason: "task no longer exists".to_string() }
}

/// The state of one described task: running until ECS says STOPPED, then the exit code of our container.
fn task_state(task: &aws_sdk_ecs::types::Task, container_name: &str) -> TaskState {
    if task.last_status() != Some("STOPPED") {
        return TaskState::Running;
    }
    let container = task.containers().iter().find(|c| c.name() == Some(container_name));
    let exit_code = container.and_then(|c| c.exit_code());
    let mut reason = task.stopped_reason().filter(|why| !why.is_empty()).unwrap_or("task stopped").to_string();
    match container {
        None => reason.push_str(&format!(" (no container named {container_name:?} in the task)")),
        Some(c) => {
            if let Some(why) = c.reason().filter(|why| !why.is_empty()) {
                reason.push_str(&format!(" ({container_name}: {why})"));
            }
        }
    }
    TaskState::Stopped { exit_code, reason }
}

/// The task environment as ECS key-value pairs (sorted, as the map is).
fn environment(env: &BTreeMap<String, String>) -> Vec<KeyValuePair> {
    env.iter().map(|(name, value)| KeyValuePair::builder().name(name).value(value).build()).collect()
}

/// The `startedBy` tag for a message id. ECS allows up to 128 letters, digits, `-`, `/` and `_`; SQS message ids
/// (UUIDs) pass unchanged. Any other id maps to a sanitized prefix plus a hash of the whole id, so the mapping stays
/// deterministic (`find_running` computes the same tag) and distinct ids stay distinct.
pub fn started_by(message_id: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_');
    if !message_id.is_empty() && message_id.len() <= STARTED_BY_MAX && message_id.chars().all(allowed) {
        return message_id.to_string();
    }
    let prefix: String =
        message_id.chars().map(|c| if allowed(c) { c } else { '_' }).take(STARTED_BY_MAX - 17).collect();
    format!("{prefix}-{:016x}", fnv1a(message_id.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// A fresh idempotency token for one RunTask call (32 hex digits; ECS allows 64 printable characters).
fn client_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// RunTask tokens of ambiguous launches (timeout, 5xx), by message id, kept with the spec they were sent with: ECS
/// answers a repeated token with the task it started, but only for identical parameters.
#[derive(Default)]
struct ClientTokens {
    pending: Mutex<HashMap<String, (TaskSpec, String)>>,
}

/// Ambiguous launches remembered at most; past it the oldest knowledge is dropped (the loop still checks ListTasks).
const MAX_PENDING_TOKENS: usize = 10_000;

impl ClientTokens {
    /// The token for launching `spec`: the one of its last ambiguous launch, else a fresh one.
    fn token_for(&self, spec: &TaskSpec) -> String {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get(&spec.message_id) {
            Some((sent, token)) if sent == spec => token.clone(),
            _ => client_token(),
        }
    }

    fn ambiguous(&self, spec: &TaskSpec, token: String) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING_TOKENS {
            pending.clear();
        }
        pending.insert(spec.message_id.clone(), (spec.clone(), token));
    }

    fn settled(&self, spec: &TaskSpec) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&spec.message_id);
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
];

/// Whether a service error is ECS (or the SDK's gateway) asking us to slow down.
fn is_throttling(code: &str, message: &str, status: u16) -> bool {
    THROTTLING_CODES.contains(&code) || status == 429 || message.to_ascii_lowercase().contains("rate exceeded")
}

/// Maps an SDK error to a [`PortError`] naming the ECS action and the service's error code.
fn port_error<E>(action: &str, error: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = format!("{error:?}");
    port_error_text(action, error).with_detail(detail)
}

fn port_error_text<E>(action: &str, error: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::TimeoutError(_) => PortError::transient(format!("ecs {action} timed out")),
        SdkError::DispatchFailure(_) => {
            PortError::new(unsent_kind(&error), format!("ecs {action} could not be sent: {}", explain(&error)))
        }
        SdkError::ResponseError(_) => {
            PortError::transient(format!("ecs {action} got an unreadable response: {}", explain(&error)))
        }
        SdkError::ServiceError(context) => {
            let service = context.err();
            let code = service.code().unwrap_or("unknown");
            let text = service.message().unwrap_or("");
            let status = context.raw().status().as_u16();
            let message = format!("ecs {action} failed: {code}: {text}").trim_end_matches([':', ' ']).to_string();
            let kind = classify(code, text, status);
            PortError::new(kind, message)
        }
        _ => PortError::new(PortErrorKind::Rejected, format!("ecs {action} could not be built: {error}")),
    }
}

/// The class of a service error, from its code, message and HTTP status.
fn classify(code: &str, message: &str, status: u16) -> PortErrorKind {
    if is_throttling(code, message, status) || code == "ServerException" || status >= 500 {
        PortErrorKind::Transient
    } else if code == "ClusterNotFoundException" || is_missing_task_definition(code, message) {
        PortErrorKind::NotFound
    } else {
        PortErrorKind::Rejected
    }
}

/// ECS reports a task definition that does not exist as a `ClientException` ("TaskDefinition not found.", or
/// "Unable to describe task definition.").
fn is_missing_task_definition(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase().replace(' ', "");
    code == "ClientException"
        && (message.contains("taskdefinitionnotfound") || message.contains("unabletodescribetaskdefinition"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ambiguous_launch_token_is_reused_for_the_same_spec_only() {
        let tokens = ClientTokens::default();
        let spec = TaskSpec { message_id: "m".into(), env: BTreeMap::from([("a".into(), "1".into())]) };
        let first = tokens.token_for(&spec);
        assert_ne!(tokens.token_for(&spec), first, "fresh while nothing is pending");
        tokens.ambiguous(&spec, first.clone());
        assert_eq!(tokens.token_for(&spec), first);
        // Another receive of the message (another receive count in its env) is another launch.
        let other = TaskSpec { env: BTreeMap::from([("a".into(), "2".into())]), ..spec.clone() };
        assert_ne!(tokens.token_for(&other), first);
        tokens.settled(&spec);
        assert_ne!(tokens.token_for(&spec), first);
    }

    #[test]
    fn started_by_keeps_sqs_message_ids_and_sanitizes_others() {
        let uuid = "e2c045cc-5606-4950-964b-20877900bccb";
        assert_eq!(started_by(uuid), uuid);
        assert_eq!(started_by("a/b_c-D"), "a/b_c-D");
        let odd = started_by("a b:c");
        assert!(odd.starts_with("a_b_c-"), "{odd}");
        assert_ne!(odd, started_by("a_b_c"));
        assert_ne!(started_by("a b"), started_by("a:b"));
        assert_eq!(odd, started_by("a b:c"), "deterministic");
        let long = "x".repeat(200);
        assert_eq!(started_by(&long).len(), STARTED_BY_MAX);
        assert_ne!(started_by(&long), started_by(&"x".repeat(201)));
        assert!(started_by("").len() == 17);
        for tag in [odd, started_by(&long), started_by("ünï")] {
            assert!(tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_')), "{tag}");
        }
    }

    #[test]
    fn service_errors_are_classified() {
        assert_eq!(classify("ThrottlingException", "Rate exceeded", 400), PortErrorKind::Transient);
        assert_eq!(classify("ClientException", "Rate exceeded", 400), PortErrorKind::Transient);
        assert_eq!(classify("ServerException", "", 500), PortErrorKind::Transient);
        assert_eq!(classify("InternalFailure", "", 503), PortErrorKind::Transient);
        assert_eq!(classify("ClusterNotFoundException", "", 400), PortErrorKind::NotFound);
        assert_eq!(classify("ClientException", "TaskDefinition not found.", 400), PortErrorKind::NotFound);
        assert_eq!(classify("ClientException", "Unable to describe task definition.", 400), PortErrorKind::NotFound);
        assert_eq!(classify("InvalidParameterException", "bad", 400), PortErrorKind::Rejected);
        assert_eq!(classify("AccessDeniedException", "", 400), PortErrorKind::Rejected);
    }
}
