//! The dashboard's outcome chart on AWS: `aws::metrics::MetricOutcomes` reads the stack's metrics
//! (`Watchbot/<stack>`: `Succeeded`, `Failed`, `Rejected`) with one GetMetricData. On `aws-smithy-mocks`: moto 5.2
//! does not speak CloudWatch's current protocol (Smithy RPC v2 CBOR), so it cannot answer this SDK's requests.

use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataInput, GetMetricDataOutput};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use watchbot_watcher::aws::metrics::{MetricOutcomes, namespace};
use watchbot_watcher::ops::outcomes::Outcomes;

const NOW_MS: u64 = 1_796_000_000_000 + 30_000;

fn minute(back: u64) -> DateTime {
    DateTime::from_millis((NOW_MS - NOW_MS % 60_000 - back * 60_000) as i64)
}

/// What the request must ask: the three sums per minute in the stack's namespace, over the window.
fn asks_for_the_stack_sums(input: &GetMetricDataInput) -> bool {
    let queries = input.metric_data_queries();
    let ids: Vec<&str> = queries.iter().filter_map(|q| q.id()).collect();
    let stats_ok = queries.iter().all(|q| {
        let stat = q.metric_stat();
        let metric = stat.and_then(|s| s.metric());
        stat.and_then(|s| s.period()) == Some(60)
            && stat.and_then(|s| s.stat()) == Some("Sum")
            && metric.and_then(|m| m.namespace()) == Some("Watchbot/my-stack")
    });
    let names: Vec<&str> = queries.iter().filter_map(|q| q.metric_stat()?.metric()?.metric_name()).collect();
    ids == ["succeeded", "failed", "rejected"]
        && names == ["Succeeded", "Failed", "Rejected"]
        && stats_ok
        && input.start_time() == Some(&minute(59))
        && input.end_time() == Some(&DateTime::from_millis(minute(0).to_millis().unwrap() + 60_000))
}

#[tokio::test]
async fn outcomes_per_minute_come_from_the_stack_metrics() {
    let rule =
        mock!(aws_sdk_cloudwatch::Client::get_metric_data).match_requests(asks_for_the_stack_sums).then_output(|| {
            let result = |id: &str, points: &[(u64, f64)]| {
                MetricDataResult::builder()
                    .id(id)
                    .set_timestamps(Some(points.iter().map(|(back, _)| minute(*back)).collect()))
                    .set_values(Some(points.iter().map(|(_, v)| *v).collect()))
                    .build()
            };
            GetMetricDataOutput::builder()
                .metric_data_results(result("succeeded", &[(0, 3.0), (2, 1.0), (120, 7.0)]))
                .metric_data_results(result("failed", &[(0, 1.0)]))
                .metric_data_results(result("rejected", &[(5, 1.0)]))
                .build()
        });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, &[&rule]);
    let outcomes = MetricOutcomes::new(client, namespace("my-stack"));
    assert_eq!(outcomes.namespace(), "Watchbot/my-stack");
    let minutes = outcomes.per_minute(NOW_MS, 60).await.unwrap();
    assert_eq!(rule.num_calls(), 1, "one GetMetricData, shaped as asks_for_the_stack_sums says");
    assert_eq!(minutes.len(), 60);
    let last = minutes[59];
    assert_eq!((last.succeeded, last.failed, last.rejected), (3, 1, 0), "{minutes:?}");
    assert_eq!((minutes[57].succeeded, minutes[54].rejected), (1, 1), "{minutes:?}");
    let total: u64 = minutes.iter().map(|m| m.succeeded + m.failed + m.rejected).sum();
    assert_eq!(total, 6, "the point two hours back is outside the window: {minutes:?}");
}
