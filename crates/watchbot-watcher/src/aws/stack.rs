//! A deployed stack's resources by logical id (CloudFormation `DescribeStackResource`): how commands given
//! `--stack NAME` find what the template made (`watchbot logs --stack`: its `<prefix>LogGroup`).

use super::error::port_error;
use super::sdk::Aws;
use crate::ports::{PortError, PortErrorKind};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;

impl Aws {
    /// The physical id of the stack's resource `logical_id` (a log group's name, a queue's URL ...).
    pub async fn stack_resource(&self, stack: &str, logical_id: &str) -> Result<String, PortError> {
        let client = aws_sdk_cloudformation::Client::new(self.sdk_config());
        let output =
            client.describe_stack_resource().stack_name(stack).logical_resource_id(logical_id).send().await.map_err(
                |error| {
                    let port = port_error("cloudformation DescribeStackResource", &error);
                    let said = error.message().unwrap_or_default();
                    if said.contains("does not exist") || error.code() == Some("ValidationError") {
                        let what = if said.contains(logical_id) {
                            format!("stack {stack} has no resource {logical_id} (is --prefix right?)")
                        } else {
                            format!("no stack named {stack}")
                        };
                        return PortError::new(PortErrorKind::NotFound, what);
                    }
                    port
                },
            )?;
        output.stack_resource_detail().and_then(|detail| detail.physical_resource_id()).map(str::to_string).ok_or_else(
            || PortError::new(PortErrorKind::NotFound, format!("stack {stack} has no resource {logical_id}")),
        )
    }
}
