//! The work queue, its dead-letter queue, the work topic that feeds it, and the queue alarms.

use super::{Builder, att, policy, r#ref};
use serde_json::json;

impl Builder<'_> {
    pub(super) fn queues_and_topic(&mut self) {
        let (queue, dead_letter, topic) = (self.id("Queue"), self.id("DeadLetterQueue"), self.id("Topic"));
        // Dead letters are kept as long as SQS allows, so nobody loses a failed job before looking at it.
        self.add(
            "DeadLetterQueue",
            json!({ "Type": "AWS::SQS::Queue", "Properties": { "MessageRetentionPeriod": 1_209_600 } }),
        );
        self.add(
            "Queue",
            json!({
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": self.o.message_timeout,
                    "MessageRetentionPeriod": self.o.message_retention,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": att(&dead_letter, "Arn"),
                        "maxReceiveCount": self.o.dead_letter_threshold,
                    },
                },
            }),
        );
        // The queue subscribes inline, so the subscription exists as soon as the topic does.
        self.add(
            "Topic",
            json!({
                "Type": "AWS::SNS::Topic",
                "Properties": { "Subscription": [{ "Endpoint": att(&queue, "Arn"), "Protocol": "sqs" }] },
            }),
        );
        self.add(
            "QueuePolicy",
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [r#ref(&queue)],
                    "PolicyDocument": policy(vec![json!({
                        "Sid": "SendFromTopic",
                        "Effect": "Allow",
                        "Principal": { "Service": "sns.amazonaws.com" },
                        "Action": "sqs:SendMessage",
                        "Resource": att(&queue, "Arn"),
                        "Condition": { "ArnEquals": { "aws:SourceArn": r#ref(&topic) } },
                    })]),
                },
            }),
        );
        self.refs.insert("topic".into(), r#ref(&topic));
        self.refs.insert("queueUrl".into(), r#ref(&queue));
        self.refs.insert("queueArn".into(), att(&queue, "Arn"));
        self.refs.insert("queueName".into(), att(&queue, "QueueName"));
        self.refs.insert("deadLetterQueueUrl".into(), r#ref(&dead_letter));
    }

    pub(super) fn alarms(&mut self) {
        let actions = self.alarm_actions();
        self.add(
            "QueueSizeAlarm",
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": format!(
                        "More than {} jobs waiting in the queue for {} minutes",
                        self.o.alarm_threshold, self.o.alarm_periods * 5
                    ),
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{ "Name": "QueueName", "Value": att(&self.id("Queue"), "QueueName") }],
                    "Statistic": "Average",
                    "Period": 300,
                    "EvaluationPeriods": self.o.alarm_periods,
                    "Threshold": self.o.alarm_threshold,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "AlarmActions": actions,
                },
            }),
        );
        self.add(
            "DeadLetterAlarm",
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": "Jobs failed too many times and are in the dead-letter queue",
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{ "Name": "QueueName", "Value": att(&self.id("DeadLetterQueue"), "QueueName") }],
                    "Statistic": "Maximum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": actions,
                },
            }),
        );
    }
}
