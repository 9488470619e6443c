//! The stack's outcomes over time from CloudWatch metrics ([`Outcomes`] for [`MetricOutcomes`]): the template's
//! metric filters count the watchers' `finished` events in the namespace `Watchbot/<stack name>` as `Succeeded`,
//! `Failed` and `Rejected`; one `GetMetricData` reads the three sums per minute of a window.

use super::error::port_error;
use crate::ops::OpsError;
use crate::ops::outcomes::{Minute, Outcomes, bucket, window};
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat};

/// The metric names of the outcomes charted, with the outcome each counts.
pub const METRICS: [(&str, &str); 3] = [("Succeeded", "succeeded"), ("Failed", "failed"), ("Rejected", "rejected")];

/// The namespace of a stack's metrics.
pub fn namespace(stack_name: &str) -> String {
    format!("Watchbot/{stack_name}")
}

/// A stack's outcome metrics.
#[derive(Debug, Clone)]
pub struct MetricOutcomes {
    client: Client,
    namespace: String,
}

impl MetricOutcomes {
    /// The metrics in `namespace` (see [`namespace`]).
    pub fn new(client: Client, namespace: impl Into<String>) -> MetricOutcomes {
        MetricOutcomes { client, namespace: namespace.into() }
    }

    /// The namespace read.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl Outcomes for MetricOutcomes {
    async fn per_minute(&self, now_ms: u64, minutes: u32) -> Result<Vec<Minute>, OpsError> {
        let mut minutes = window(now_ms, minutes);
        let (Some(first), Some(last)) = (minutes.first().copied(), minutes.last().copied()) else {
            return Ok(minutes);
        };
        let mut request = self
            .client
            .get_metric_data()
            .start_time(DateTime::from_millis(first.start_ms as i64))
            .end_time(DateTime::from_millis(last.start_ms as i64 + 60_000));
        for (name, outcome) in METRICS {
            let metric = Metric::builder().namespace(&self.namespace).metric_name(name).build();
            let stat = MetricStat::builder().metric(metric).period(60).stat("Sum").build();
            request = request.metric_data_queries(
                MetricDataQuery::builder().id(outcome).metric_stat(stat).return_data(true).build(),
            );
        }
        let response = request.send().await.map_err(|e| OpsError::Port(port_error("cloudwatch GetMetricData", &e)))?;
        for result in response.metric_data_results() {
            let outcome = result.id().unwrap_or_default();
            for (time, value) in result.timestamps().iter().zip(result.values()) {
                let ms = time.to_millis().unwrap_or(0).max(0) as u64;
                bucket(&mut minutes, ms, outcome, value.max(0.0).round() as u64);
            }
        }
        Ok(minutes)
    }
}
