//! Optional resources: log forwarding to a Lambda function and the reduce-mode progress table.

use super::{Builder, att, r#ref};
use crate::options::BillingMode;
use serde_json::{Value, json};

impl Builder<'_> {
    pub(super) fn log_forwarding(&mut self, function: Value) {
        let (log_group, permission) = (self.id("LogGroup"), self.id("LogForwardingPermission"));
        let condition = self.condition("LogAggregation");
        let mut permission_resource = json!({
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": function,
                    "Principal": "logs.amazonaws.com",
                    "SourceArn": att(&log_group, "Arn"),
                    "SourceAccount": r#ref("AWS::AccountId"),
                },
        });
        let mut filter = json!({
            "Type": "AWS::Logs::SubscriptionFilter",
            "DependsOn": [permission],
            "Properties": { "LogGroupName": r#ref(&log_group), "FilterPattern": "", "DestinationArn": function },
        });
        // An empty function reference: neither resource (both would be created with an empty ARN and fail).
        if let Some(condition) = condition {
            permission_resource["Condition"] = json!(condition);
            filter["Condition"] = json!(condition);
        }
        self.add("LogForwardingPermission", permission_resource);
        self.add("LogForwarding", filter);
    }

    pub(super) fn progress_table(&mut self) {
        let mut properties = json!({
            "AttributeDefinitions": [{ "AttributeName": "id", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "id", "KeyType": "HASH" }],
            "BillingMode": "PAY_PER_REQUEST",
        });
        if let BillingMode::Provisioned { read_capacity_units: read, write_capacity_units: write } = self.o.billing_mode
        {
            properties["BillingMode"] = json!("PROVISIONED");
            properties["ProvisionedThroughput"] = json!({ "ReadCapacityUnits": read, "WriteCapacityUnits": write });
        }
        self.add("ProgressTable", json!({ "Type": "AWS::DynamoDB::Table", "Properties": properties }));
        self.refs.insert("progressTable".into(), r#ref(&self.id("ProgressTable")));
    }
}
