//! Ways to submit work from outside the stack: the IAM user and the API Gateway webhook.

use super::{Builder, WEBHOOK_BURST_LIMIT, WEBHOOK_RATE_LIMIT, WEBHOOK_STAGE, assume_role, att, policy, r#ref, sub};
use serde_json::{Value, json};

impl Builder<'_> {
    pub(super) fn publish_policy(&self, name: &str) -> Value {
        json!({
            "PolicyName": name,
            "PolicyDocument": policy(vec![json!({
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": r#ref(&self.id("Topic")),
            })]),
        })
    }

    pub(super) fn user(&mut self) {
        let (user, key) = (self.id("User"), self.id("UserKey"));
        self.add(
            "User",
            json!({ "Type": "AWS::IAM::User", "Properties": { "Policies": [self.publish_policy("publish-jobs")] } }),
        );
        self.add("UserKey", json!({ "Type": "AWS::IAM::AccessKey", "Properties": { "UserName": r#ref(&user) } }));
        self.refs.insert("accessKeyId".into(), r#ref(&key));
        self.refs.insert("secretAccessKey".into(), att(&key, "SecretAccessKey"));
    }

    pub(super) fn webhook(&mut self) {
        let (api, resource, method, role, deployment) = (
            self.id("WebhookApi"),
            self.id("WebhookResource"),
            self.id("WebhookMethod"),
            self.id("WebhookRole"),
            self.id("WebhookDeployment"),
        );
        self.add(
            "WebhookApi",
            json!({
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {
                    "Name": sub(&format!("${{AWS::StackName}}-{}-webhook", self.p)),
                    "Description": "Publishes POSTed jobs to the watchbot topic",
                },
            }),
        );
        self.add(
            "WebhookResource",
            json!({
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "ParentId": att(&api, "RootResourceId"),
                    "PathPart": "webhooks",
                },
            }),
        );
        self.add(
            "WebhookRole",
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role("apigateway.amazonaws.com"),
                    "Policies": [self.publish_policy("publish-jobs")],
                },
            }),
        );
        // A direct SNS integration: the POSTed JSON {"subject": ..., "message": ...} becomes a Publish call.
        let request = concat!(
            // No newline after #set: any whitespace would become part of the form body's first parameter name.
            "#set($subject = $input.path('$.subject'))",
            "Action=Publish&TopicArn=$util.urlEncode('${Topic}')",
            "&Message=$util.urlEncode($input.path('$.message'))",
            "#if(\"$!subject\" != \"\")&Subject=$util.urlEncode($subject)#end",
        );
        self.add(
            "WebhookMethod",
            json!({
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "ResourceId": r#ref(&resource),
                    "HttpMethod": "POST",
                    "AuthorizationType": "NONE",
                    "ApiKeyRequired": self.o.webhook_key,
                    "Integration": {
                        "Type": "AWS",
                        "IntegrationHttpMethod": "POST",
                        "Uri": sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:sns:action/Publish"),
                        "Credentials": att(&role, "Arn"),
                        "PassthroughBehavior": "NEVER",
                        "RequestParameters": {
                            "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'",
                        },
                        "RequestTemplates": {
                            "application/json": { "Fn::Sub": [request, { "Topic": r#ref(&self.id("Topic")) }] },
                        },
                        "IntegrationResponses": [
                            { "StatusCode": "200", "ResponseTemplates": { "application/json": "{\"status\": \"queued\"}" } },
                            { "StatusCode": "400", "SelectionPattern": "4\\d{2}" },
                            { "StatusCode": "500", "SelectionPattern": "5\\d{2}" },
                        ],
                    },
                    "MethodResponses": [{ "StatusCode": "200" }, { "StatusCode": "400" }, { "StatusCode": "500" }],
                },
            }),
        );
        // The deployment creates the stage, throttled; a separate AWS::ApiGateway::Stage would add nothing here.
        self.add(
            "WebhookDeployment",
            json!({
                "Type": "AWS::ApiGateway::Deployment",
                "DependsOn": [method],
                "Properties": {
                    "RestApiId": r#ref(&api),
                    "StageName": WEBHOOK_STAGE,
                    "StageDescription": {
                        "ThrottlingRateLimit": WEBHOOK_RATE_LIMIT,
                        "ThrottlingBurstLimit": WEBHOOK_BURST_LIMIT,
                    },
                },
            }),
        );
        self.refs.insert(
            "webhookEndpoint".into(),
            sub(&format!(
                "https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{WEBHOOK_STAGE}/webhooks"
            )),
        );
        if self.o.webhook_key {
            let (key, plan) = (self.id("WebhookKey"), self.id("WebhookUsagePlan"));
            self.add(
                "WebhookKey",
                json!({
                    "Type": "AWS::ApiGateway::ApiKey",
                    "Properties": { "Enabled": true, "Description": "Key for the watchbot webhook" },
                }),
            );
            self.add(
                "WebhookUsagePlan",
                json!({
                    "Type": "AWS::ApiGateway::UsagePlan",
                    "DependsOn": [deployment],
                    "Properties": {
                        "ApiStages": [{ "ApiId": r#ref(&api), "Stage": WEBHOOK_STAGE }],
                        "Throttle": { "RateLimit": WEBHOOK_RATE_LIMIT, "BurstLimit": WEBHOOK_BURST_LIMIT },
                    },
                }),
            );
            self.add(
                "WebhookUsagePlanKey",
                json!({
                    "Type": "AWS::ApiGateway::UsagePlanKey",
                    "Properties": { "KeyId": r#ref(&key), "KeyType": "API_KEY", "UsagePlanId": r#ref(&plan) },
                }),
            );
            // The key's id: `aws apigateway get-api-key --api-key <id> --include-value` prints the token.
            self.refs.insert("webhookKey".into(), r#ref(&key));
        }
    }
}
