//! ECS on moto for tests and the benchmark (feature `ecs`): an ECS client whose HTTP layer repairs one moto bug,
//! and a fixture (cluster + FARGATE task definition + moto's default subnet and security group).
//!
//! moto 5.2 answers RunTask and DescribeTasks with `containers[].cpu` (and `memory`) as JSON numbers, where the ECS
//! API model (and real ECS) has strings. boto3 does not mind; the Rust SDK's strict deserializer rejects the whole
//! response ("type mismatch: expected string"). The wrapper below turns those numbers into strings in ECS responses
//! before the SDK reads them. It touches nothing else, and only test clients use it.

use std::sync::OnceLock;

use aws_sdk_ecs::config::RuntimeComponents;
use aws_sdk_ecs::config::http::HttpRequest;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// The `X-Amz-Target` prefix of every ECS operation (for [`crate::proxy::FaultProxy::rewrite`]).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

/// The worker container's name in the fixture's task definition.
pub const CONTAINER: &str = "worker";

/// An ECS client on moto whose responses have moto's numeric container fields made strings.
pub fn client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::from_conf(builder(sdk_config).build())
}

/// The config builder behind [`client`], for callers that add to it (the benchmark adds a request counter).
pub fn builder(sdk_config: &aws_config::SdkConfig) -> aws_sdk_ecs::config::Builder {
    // moto is plain HTTP on loopback: the SDK's own hyper client without TLS is enough.
    let inner = sdk_config.http_client().unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    aws_sdk_ecs::config::Builder::from(sdk_config).http_client(SharedHttpClient::new(FixContainerFields { inner }))
}

/// moto's default subnet and security group (fetched once per process with boto3).
pub fn network() -> &'static (String, String) {
    static NETWORK: OnceLock<(String, String)> = OnceLock::new();
    NETWORK.get_or_init(|| {
        let out = crate::moto().python(
            "print(client('ec2').describe_subnets()['Subnets'][0]['SubnetId'])\n\
             print(client('ec2').describe_security_groups()['SecurityGroups'][0]['GroupId'])",
        );
        let mut lines = out.lines();
        (lines.next().expect("subnet").to_string(), lines.next().expect("security group").to_string())
    })
}

/// A cluster and FARGATE task definition on moto, made by [`fixture`].
#[derive(Debug, Clone)]
pub struct EcsFixture {
    /// An ECS client on moto (see [`client`]).
    pub client: aws_sdk_ecs::Client,
    /// The cluster's name.
    pub cluster: String,
    /// The task definition's ARN.
    pub task_definition: String,
    /// The container's name in it: [`CONTAINER`].
    pub container: String,
    /// moto's default subnet, for FARGATE's awsvpc network mode.
    pub subnet: String,
    /// moto's default security group.
    pub security_group: String,
}

/// A fresh cluster with a FARGATE task definition whose container is [`CONTAINER`], and the network settings a
/// FARGATE RunTask needs (moto's default subnet and security group).
pub async fn fixture() -> EcsFixture {
    let moto = crate::moto();
    let client = client(&moto.sdk_config().await);
    let cluster = crate::unique_name("cluster");
    let family = crate::unique_name("worker");
    client.create_cluster().cluster_name(&cluster).send().await.expect("create cluster");
    let container =
        aws_sdk_ecs::types::ContainerDefinition::builder().name(CONTAINER).image("worker:1").memory(256).build();
    let registered = client
        .register_task_definition()
        .family(&family)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(container)
        .send()
        .await
        .expect("register task definition");
    let task_definition = registered.task_definition().and_then(|td| td.task_definition_arn()).unwrap().to_string();
    let (subnet, security_group) = network().clone();
    EcsFixture { client, cluster, task_definition, container: CONTAINER.to_string(), subnet, security_group }
}

#[derive(Debug)]
struct FixContainerFields {
    inner: SharedHttpClient,
}

impl HttpClient for FixContainerFields {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FixConnector { inner: self.inner.http_connector(settings, components) })
    }
}

#[derive(Debug)]
struct FixConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for FixConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let response = inner.call(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(Box::new(e)))?
                .into_bytes();
            let fixed = repair_answer(&bytes).unwrap_or_else(|| bytes.to_vec());
            let mut fixed_response = Response::new(status, SdkBody::from(fixed.clone()));
            for (name, value) in headers.iter() {
                if !name.eq_ignore_ascii_case("content-length") {
                    fixed_response.headers_mut().append(name.to_string(), value.to_string());
                }
            }
            fixed_response.headers_mut().insert("content-length", fixed.len().to_string());
            Ok(fixed_response)
        })
    }
}

/// An ECS answer of moto's with `tasks[].containers[].{cpu,memory,memoryReservation}` numbers made strings; `None`
/// when it is not such a JSON document (left as it is). What [`client`] does to every answer, for a proxy in front of
/// a program whose client a test cannot wrap: `proxy.rewrite(TARGET_PREFIX, repair_answer)`.
pub fn repair_answer(body: &[u8]) -> Option<Vec<u8>> {
    let mut document: serde_json::Value = serde_json::from_slice(body).ok()?;
    let tasks: Vec<&mut serde_json::Value> = if document.get("tasks").is_some_and(|t| t.is_array()) {
        document["tasks"].as_array_mut()?.iter_mut().collect()
    } else if document.get("task").is_some() {
        vec![&mut document["task"]]
    } else {
        return None;
    };
    for task in tasks {
        let Some(containers) = task.get_mut("containers").and_then(|c| c.as_array_mut()) else { continue };
        for container in containers {
            for field in ["cpu", "memory", "memoryReservation"] {
                if let Some(value) = container.get_mut(field)
                    && value.is_number()
                {
                    *value = serde_json::Value::String(value.to_string());
                }
            }
        }
    }
    serde_json::to_vec(&document).ok()
}

#[cfg(test)]
mod tests {
    use super::repair_answer;

    #[test]
    fn numeric_container_fields_become_strings_and_nothing_else_changes() {
        let body =
            br#"{"tasks":[{"taskArn":"t","cpu":"256","containers":[{"name":"w","cpu":0,"memory":256,"exitCode":0}]}]}"#;
        let fixed: serde_json::Value = serde_json::from_slice(&repair_answer(body).unwrap()).unwrap();
        assert_eq!(
            fixed,
            serde_json::json!({"tasks":[{"taskArn":"t","cpu":"256",
                "containers":[{"name":"w","cpu":"0","memory":"256","exitCode":0}]}]})
        );
        let single = repair_answer(br#"{"task":{"containers":[{"memoryReservation":128}]}}"#).unwrap();
        assert_eq!(String::from_utf8(single).unwrap(), r#"{"task":{"containers":[{"memoryReservation":"128"}]}}"#);
        assert_eq!(repair_answer(b"not json"), None);
        assert_eq!(repair_answer(br#"{"clusters":[]}"#), None, "other answers are left as they are");
    }
}
