//! A deployed stack's resources by logical id (CloudFormation `DescribeStackResources`): how every command given
//! `--stack NAME` finds what the template made (`watchbot status`/`dead-letter`: `<prefix>Queue` and
//! `<prefix>DeadLetterQueue`; `watchbot logs`: `<prefix>LogGroup`). One request; a missing resource names the ones
//! of its type the stack does have, so a wrong `--prefix` explains itself.

use super::error::port_error;
use super::sdk::Aws;
use crate::ports::{PortError, PortErrorKind};
use std::collections::BTreeMap;

/// A stack's resources: logical id → (physical id, resource type).
#[derive(Debug, Clone)]
pub struct StackResources {
    stack: String,
    resources: BTreeMap<String, (String, String)>,
}

impl StackResources {
    /// The physical id of `logical_id` (a queue's URL, a log group's name ...), if the stack has it.
    pub fn physical(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id).map(|(physical, _)| physical.as_str())
    }

    /// The physical id of `logical_id`, or a `NotFound` error naming the stack's resources of `resource_type`.
    pub fn require(&self, logical_id: &str, resource_type: &str) -> Result<String, PortError> {
        if let Some(physical) = self.physical(logical_id) {
            return Ok(physical.to_string());
        }
        let same_type: Vec<&str> =
            self.resources.iter().filter(|(_, (_, kind))| kind == resource_type).map(|(id, _)| id.as_str()).collect();
        let has = if same_type.is_empty() { "none".to_string() } else { same_type.join(", ") };
        Err(PortError::new(
            PortErrorKind::NotFound,
            format!(
                "stack {} has no resource {logical_id} (is --prefix right? its {resource_type}: {has})",
                self.stack
            ),
        ))
    }
}

impl Aws {
    /// The resources of the deployed stack `stack`.
    pub async fn stack_resources(&self, stack: &str) -> Result<StackResources, PortError> {
        let client = aws_sdk_cloudformation::Client::new(self.sdk_config());
        let output = client.describe_stack_resources().stack_name(stack).send().await.map_err(|e| {
            let error = port_error("cloudformation DescribeStackResources", &e);
            if error.message.contains("does not exist") {
                return PortError::new(PortErrorKind::NotFound, format!("no stack named {stack}"));
            }
            error
        })?;
        let resources = output
            .stack_resources()
            .iter()
            .filter_map(|r| {
                let physical = r.physical_resource_id()?.to_string();
                Some((
                    r.logical_resource_id()?.to_string(),
                    (physical, r.resource_type().unwrap_or_default().to_string()),
                ))
            })
            .collect();
        Ok(StackResources { stack: stack.to_string(), resources })
    }
}
