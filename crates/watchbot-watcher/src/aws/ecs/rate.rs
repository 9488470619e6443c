//! The RunTask rate limit: a token bucket of one second's worth of calls (GCRA).

use std::sync::Mutex;
use std::time::Duration;

/// A token bucket of one second's worth of calls (at least one), refilled continuously; callers wait their turn in
/// the order they arrive. Implemented as GCRA: one "theoretical arrival time" under a lock, the wait outside it.
pub(super) struct RateLimiter {
    interval: Option<Duration>,
    burst: Duration,
    next: Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub(super) fn new(per_second: f64) -> RateLimiter {
        if !per_second.is_finite() || per_second <= 0.0 {
            return RateLimiter { interval: None, burst: Duration::ZERO, next: Mutex::new(None) };
        }
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let capacity = per_second.floor().max(1.0);
        let burst = interval.mul_f64(capacity - 1.0);
        RateLimiter { interval: Some(interval), burst, next: Mutex::new(None) }
    }

    pub(super) async fn acquire(&self) {
        let Some(interval) = self.interval else { return };
        let now = tokio::time::Instant::now();
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // An idle limiter's arrival time lags behind now: that is a full bucket, no more.
            let tat = next.map_or(now, |tat| tat.max(now));
            *next = Some(tat + interval);
            // Allowed once the arrival time is within one burst of now.
            tat.checked_sub(self.burst).map_or(now, |start| start.max(now))
        };
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(4.0);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        // A full bucket of 4 at once, then one every 250 ms.
        assert!(times[..4].iter().all(|t| *t == Duration::ZERO), "{times:?}");
        for (n, t) in times.iter().enumerate().skip(4) {
            assert_eq!(*t, Duration::from_millis(250) * (n as u32 - 3), "call {n}: {times:?}");
        }
        // After an idle period the bucket refills, but never beyond one second's worth.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(idle.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_paces_concurrent_callers() {
        let limiter = std::sync::Arc::new(RateLimiter::new(2.0));
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort();
        let expected: Vec<Duration> =
            [0, 0, 500, 1000, 1500, 2000].iter().map(|ms| Duration::from_millis(*ms)).collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn no_limit_when_the_rate_is_not_positive() {
        assert!(RateLimiter::new(0.0).interval.is_none());
        assert!(RateLimiter::new(f64::NAN).interval.is_none());
        assert!(RateLimiter::new(-1.0).interval.is_none());
    }
}
