//! The metric filters on the watcher's events, the failure-rate alarm and the dashboard: names other tools read
//! (`Watchbot/<stack>`, `Succeeded`, `Failed`, `Rejected`, `NotPlaced`, `TaskDuration`), defaults, and errors.

use serde_json::{Value, json};
use watchbot_template::{Options, template};

fn generate(changes: Value) -> Value {
    let mut config = json!({
        "cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/processing",
        "service": "my-worker",
        "serviceVersion": "v1",
        "notificationEmail": "alerts@example.com",
    });
    for (key, value) in changes.as_object().unwrap() {
        config[key] = value.clone();
    }
    template(&Options::from_value(&config).expect("options")).expect("template").to_json()
}

#[test]
fn metric_filters_count_the_watchers_events_in_the_stacks_namespace() {
    let t = generate(json!({}));
    let expected = [
        ("Succeeded", r#"{ $.event = "finished" && $.outcome = "succeeded" }"#, "1", "Count"),
        ("Failed", r#"{ $.event = "finished" && $.outcome = "failed" }"#, "1", "Count"),
        ("Rejected", r#"{ $.event = "finished" && $.outcome = "rejected" }"#, "1", "Count"),
        ("NotPlaced", r#"{ $.event = "not_placed" }"#, "1", "Count"),
        ("TaskDuration", r#"{ $.event = "finished" && $.duration_ms = * }"#, "$.duration_ms", "Milliseconds"),
    ];
    for (name, pattern, value, unit) in expected {
        let filter = &t["Resources"][format!("Watchbot{name}Metric")];
        assert_eq!(filter["Type"], "AWS::Logs::MetricFilter", "{name}");
        let properties = &filter["Properties"];
        assert_eq!(properties["LogGroupName"], json!({"Ref": "WatchbotLogGroup"}));
        assert_eq!(properties["FilterPattern"], pattern);
        let metric = &properties["MetricTransformations"][0];
        assert_eq!(metric["MetricNamespace"], json!({"Fn::Sub": "Watchbot/${AWS::StackName}"}));
        assert_eq!(
            (&metric["MetricName"], &metric["MetricValue"], &metric["Unit"]),
            (&json!(name), &json!(value), &json!(unit))
        );
    }
}

#[test]
fn the_failure_rate_alarm_divides_failures_by_finished_tasks() {
    let t = generate(json!({}));
    let alarm = &t["Resources"]["WatchbotFailureRateAlarm"]["Properties"];
    assert_eq!(alarm["Threshold"], 10, "default: 10 %");
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(alarm["AlarmActions"], json!([{"Ref": "WatchbotNotificationTopic"}]));
    let metrics = alarm["Metrics"].as_array().unwrap();
    assert_eq!(metrics[0]["MetricStat"]["Period"], 300, "default: 5 minutes");
    assert_eq!(
        metrics[3]["Expression"],
        "100 * FILL(failed, 0) / (FILL(succeeded, 0) + FILL(failed, 0) + FILL(rejected, 0))"
    );
    let names: Vec<&Value> = metrics[..3].iter().map(|m| &m["MetricStat"]["Metric"]["MetricName"]).collect();
    assert_eq!(names, ["Succeeded", "Failed", "Rejected"]);

    let tuned = generate(json!({"failureRateThreshold": 25, "failureRatePeriods": 15}));
    let alarm = &tuned["Resources"]["WatchbotFailureRateAlarm"]["Properties"];
    assert_eq!((&alarm["Threshold"], &alarm["Metrics"][1]["MetricStat"]["Period"]), (&json!(25), &json!(900)));
    assert_eq!(alarm["AlarmDescription"], "More than 25% of finished tasks failed over 15 minutes");
}

#[test]
fn the_dashboard_shows_the_queue_outcomes_durations_and_tasks() {
    let t = generate(json!({}));
    let body = &t["Resources"]["WatchbotDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let widgets: Value = serde_json::from_str(body[0].as_str().unwrap()).unwrap();
    let titles: Vec<&str> =
        widgets["widgets"].as_array().unwrap().iter().map(|w| w["properties"]["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Queue depth",
            "In flight",
            "Age of the oldest message (s)",
            "Dead letters",
            "Outcomes per minute",
            "Task duration (ms)",
            "Running tasks (Container Insights)"
        ]
    );
    assert_eq!(body[1]["Cluster"], "processing");
    assert_eq!(body[1]["Queue"], json!({"Fn::GetAtt": ["WatchbotQueue", "QueueName"]}));
    // Every ${...} of the body is a variable given or a pseudo parameter.
    let text = body[0].as_str().unwrap();
    for part in text.split("${").skip(1) {
        let name = &part[..part.find('}').unwrap()];
        assert!(name.starts_with("AWS::") || body[1].get(name).is_some(), "{name}");
    }
}

#[test]
fn bad_alarm_options_are_one_line_errors() {
    let base = json!({"cluster": "c", "service": "s", "serviceVersion": "v", "notificationEmail": "a@b.c"});
    for (key, value, expected) in [
        (
            "failureRateThreshold",
            json!(100),
            "option \"failureRateThreshold\": must be a whole number from 0 to 99, got 100",
        ),
        ("failureRatePeriods", json!(0), "option \"failureRatePeriods\": must be a whole number from 1 to 1440, got 0"),
        ("notifyEachFailure", json!("no"), "option \"notifyEachFailure\": expected true or false"),
    ] {
        let mut config = base.clone();
        config[key] = value;
        let error = Options::from_value(&config).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
}
