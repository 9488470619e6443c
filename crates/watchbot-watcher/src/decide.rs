//! Pure decisions: exit code → outcome (a table, as data), backoff delay, notification text. No I/O, no clock:
//! the caller passes the time and the jitter.

use crate::ports::{Notification, TaskOutput};
use std::collections::BTreeMap;
use std::time::Duration;

/// What happens to a message after its task stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit 0: done; the message is deleted.
    Succeeded,
    /// Exit 3: the worker refused the message; it is deleted and a notification says so.
    Rejected,
    /// Exit 4: the worker asked for a retry; the message returns after the backoff delay, quietly.
    Returned,
    /// Any other exit, killed, timed out or failed to start: the message returns after the backoff delay, with a
    /// notification.
    Failed,
}

/// The actions an outcome implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Delete the message (else it returns to the queue after the backoff delay).
    pub delete: bool,
    /// Send a notification (subject to `notifyAfterRetries` for retried failures).
    pub notify: bool,
}

impl Outcome {
    /// What to do with the message.
    pub fn action(self) -> Action {
        match self {
            Outcome::Succeeded => Action { delete: true, notify: false },
            Outcome::Rejected => Action { delete: true, notify: true },
            Outcome::Returned => Action { delete: false, notify: false },
            Outcome::Failed => Action { delete: false, notify: true },
        }
    }

    /// The outcome's name in events and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Rejected => "rejected",
            Outcome::Returned => "returned",
            Outcome::Failed => "failed",
        }
    }
}

/// Exit code → outcome, as data, so a future option can remap codes (as AWS Batch's `evaluateOnExit` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodeTable {
    /// Explicit codes.
    pub codes: BTreeMap<i32, Outcome>,
    /// Any other code, and a task with no exit code (killed, failed to start).
    pub otherwise: Outcome,
}

impl Default for ExitCodeTable {
    /// behaviour.md §2: 0 delete, 3 delete + notify, 4 return quietly, anything else return + notify.
    fn default() -> ExitCodeTable {
        ExitCodeTable {
            codes: BTreeMap::from([(0, Outcome::Succeeded), (3, Outcome::Rejected), (4, Outcome::Returned)]),
            otherwise: Outcome::Failed,
        }
    }
}

impl ExitCodeTable {
    /// The outcome of a task that stopped with this exit code (`None`: killed or never started).
    pub fn outcome(&self, exit_code: Option<i32>) -> Outcome {
        exit_code.and_then(|code| self.codes.get(&code).copied()).unwrap_or(self.otherwise)
    }
}

/// Which failures notify: the stack's `notifyAfterRetries` and `notifyEachFailure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyRules {
    /// Failures are silent while the receive count is at most this.
    pub after_retries: u32,
    /// `false`: no failure notifies (the failure-rate alarm watches them); rejections and dead-lettering still do.
    pub each_failure: bool,
}

impl NotifyRules {
    /// Notify each failure after `after_retries` receives (the seed's behaviour).
    pub fn after(after_retries: u32) -> NotifyRules {
        NotifyRules { after_retries, each_failure: true }
    }
}

/// Whether a notification is due: `notifyAfterRetries` N silences failure notifications while the receive count is
/// at most N, `notifyEachFailure: false` silences them all. Rejections are final (the message is deleted), so they
/// always notify.
pub fn should_notify(outcome: Outcome, receive_count: u32, rules: NotifyRules) -> bool {
    match outcome {
        Outcome::Rejected => true,
        Outcome::Failed => rules.each_failure && receive_count > rules.after_retries,
        Outcome::Succeeded | Outcome::Returned => false,
    }
}

/// Whether this receive was the last one the queue's redrive policy allows (`maxReceiveCount`; `None`: no redrive
/// policy known): a message returned now goes to the dead-letter queue instead of being received again.
pub fn is_last_receive(receive_count: u32, max_receive_count: Option<u32>) -> bool {
    max_receive_count.is_some_and(|max| receive_count >= max)
}

/// What becomes of a finished message: deleted, returned for another try, or returned for the last time (its next
/// stop is the dead-letter queue), and whether people are told. Dead-lettering is never silent: a message returned on
/// its last receive is notified whatever its outcome (an exit 4 too) and whatever `notifyAfterRetries` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// Delete the message.
    pub delete: bool,
    /// Returned on its last allowed receive: the dead-letter queue is next, so it returns at once (no backoff: the
    /// queue moves it on the next receive).
    pub dead_letter_next: bool,
    /// Send a notification.
    pub notify: bool,
}

/// The [`Fate`] of a message whose task ended with `outcome` on receive `receive_count`.
pub fn fate(outcome: Outcome, receive_count: u32, max_receive_count: Option<u32>, rules: NotifyRules) -> Fate {
    let action = outcome.action();
    let dead_letter_next = !action.delete && is_last_receive(receive_count, max_receive_count);
    let notify = dead_letter_next || (action.notify && should_notify(outcome, receive_count, rules));
    Fate { delete: action.delete, dead_letter_next, notify }
}

/// SQS's maximum visibility timeout is 12 hours; a return delay must stay below it.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// How long a returned message stays invisible before its next try.
///
/// About `2^receive_count` seconds: `jitter` in `[0, 1)` (supplied by the caller) scales it within `[half, full)`,
/// so the first retry (receive count 1) waits at least 1 s. Capped below SQS's 12-hour maximum. `backoff: false`
/// returns the message at once.
pub fn backoff_delay(receive_count: u32, backoff: bool, jitter: f64) -> Duration {
    if !backoff {
        return Duration::ZERO;
    }
    // 2^16 s already exceeds the cap: saturate the exponent rather than overflow.
    let full = 2f64.powi(receive_count.clamp(0, 16) as i32);
    let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    let seconds = full * (0.5 + 0.5 * jitter);
    let cap = MAX_VISIBILITY.as_secs_f64() - 1.0;
    Duration::from_secs_f64(seconds.min(cap))
}

/// How long to wait before retrying placement (or an AWS call) after `attempt` failures (1-based): 1, 2, 4 ... s
/// with jitter in `[half, full)`, capped at `max`.
pub fn retry_delay(attempt: u32, max: Duration, jitter: f64) -> Duration {
    let full = 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    Duration::from_secs_f64(full * (0.5 + 0.5 * jitter)).min(max).max(Duration::from_millis(500).min(max))
}

/// When and how a held message's invisibility is renewed, from the heartbeat window `W` (the visibility each
/// receive and renewal asks for).
///
/// A renewal is due every `W/3`; each attempt has its own deadline (`W/15`, at most 4 s), after which it is dropped
/// and tried again `W/60` later (a failed one likewise), on its own, never behind another call. So a hold survives any
/// run of failed or hung renewals that ends in time for one more attempt: an outage of up to
/// `W − W/3 − 2·deadline − retry` (60 s window: 60 − 20 − 8 − 1 = 31 s) loses no hold, whatever the SDK's own
/// deadlines are. ARCHITECTURE.md ("The hold") has the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatTiming {
    /// How long after a receive or a successful renewal the next renewal is due.
    pub renew_every: Duration,
    /// The longest one renewal attempt may take before it is dropped and retried.
    pub attempt_deadline: Duration,
    /// The wait before retrying a failed renewal.
    pub retry_after: Duration,
}

/// The [`HeartbeatTiming`] of a heartbeat window.
pub fn heartbeat_timing(window: Duration) -> HeartbeatTiming {
    HeartbeatTiming {
        renew_every: window / 3,
        attempt_deadline: (window / 15).min(Duration::from_secs(4)),
        retry_after: window / 60,
    }
}

/// The longest outage of the queue (every renewal failing or hanging) that a hold of `window` is sure to survive.
pub fn tolerated_outage(window: Duration) -> Duration {
    let timing = heartbeat_timing(window);
    window.saturating_sub(timing.renew_every + timing.attempt_deadline * 2 + timing.retry_after)
}

/// SNS subjects must be shorter than 100 characters, one line, no control characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// The notification subject: `"<stack> failed processing message <id>"`, made one line and shortened on a char
/// boundary (ending in `...`) when it would exceed SNS's limit.
pub fn subject(stack_name: &str, message_id: &str) -> String {
    let text: String = format!("{stack_name} failed processing message {message_id}")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() <= MAX_SUBJECT_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(MAX_SUBJECT_CHARS - 3).collect();
    short.push_str("...");
    short
}

/// What happens next to a message that was notified about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Returned to the queue; visible again at this epoch-ms time.
    RetryAt(u64),
    /// Deleted from the queue.
    Removed,
    /// Copied to the dead-letter queue and deleted from the work queue (too large to run), or moved there by the
    /// queue's redrive policy.
    DeadLettered,
    /// Returned on the last receive the queue's redrive policy allows: the dead-letter queue is next.
    DeadLetterNext {
        /// The policy's `maxReceiveCount`.
        max_receive_count: u32,
    },
}

/// The facts a notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    /// The stack's name.
    pub stack_name: &'a str,
    /// Epoch ms of the event.
    pub now_ms: u64,
    /// The message id.
    pub message_id: &'a str,
    /// The outcome.
    pub outcome: Outcome,
    /// The task's exit code, if it had one.
    pub exit_code: Option<i32>,
    /// Why the task stopped (runner's words), or why it never ran.
    pub reason: &'a str,
    /// Receive count of this delivery.
    pub receive_count: u32,
    /// What happens next.
    pub next: NextStep,
    /// The task's environment (the message's variables and the rest).
    pub env: &'a BTreeMap<String, String>,
    /// The flags that name this queue to `watchbot dead-letter` (`--state DIR`, `--queue-url URL`), for the redrive
    /// command a dead-lettered message's notification shows; empty if not known.
    pub queue_flags: &'a str,
    /// What the task printed (`None`: no task ran, so there is no output to quote).
    pub output: Option<&'a TaskOutput>,
}

/// The most of a task's output a notification quotes: its newest 50 KB, in whole lines.
pub const MAX_QUOTED_OUTPUT: usize = 50 * 1024;

/// The most bytes of a notification body: SNS takes at most 256 KiB (262,144 bytes) per message; this leaves room
/// for the subject (at most 99 characters, 396 bytes) and the rest of the request.
pub const MAX_BODY_BYTES: usize = 260 * 1024 - 4 * 1024;

/// The closing section of a notification: the task's recent output, or why there is none.
pub fn output_section(output: Option<&TaskOutput>) -> String {
    match output {
        None => String::new(),
        Some(TaskOutput::Unavailable(why)) => format!("\nRecent output: not available: {why}\n"),
        Some(TaskOutput::Tail { text, .. }) if text.is_empty() => {
            "\nRecent output: none (the task printed nothing)\n".to_string()
        }
        Some(TaskOutput::Tail { text, omitted_bytes }) => {
            let mut start = text.len().saturating_sub(MAX_QUOTED_OUTPUT);
            if start > 0 {
                // From the first whole line in the window (or a char boundary, for one very long line).
                start = text[start..].find('\n').map(|n| start + n + 1).filter(|s| *s < text.len()).unwrap_or(start);
                while !text.is_char_boundary(start) {
                    start += 1;
                }
            }
            let quoted = &text[start..];
            let earlier = *omitted_bytes + start as u64;
            let lines = quoted.lines().count();
            let note = if earlier > 0 { format!(", {earlier} earlier bytes not shown") } else { String::new() };
            let what = if lines == 1 { "the last line".to_string() } else { format!("the last {lines} lines") };
            format!("\nRecent output ({what}{note}):\n{quoted}")
        }
    }
}

/// `text` cut to at most `max` bytes on a char boundary, saying how much was cut.
fn fit(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let note_room = 120;
    let mut end = max.saturating_sub(note_room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("\n... ({cut} more bytes not shown: SNS takes 256 KB per message)\n"));
    text
}

/// The notification for a report: subject within SNS's limit, body with when, which message, outcome, exit code,
/// stopped reason, receive count, what happens next, and the task's env lines.
pub fn notification(report: &Report<'_>) -> Notification {
    let exit = report.exit_code.map_or_else(|| "none".to_string(), |code| code.to_string());
    let next = match report.next {
        NextStep::RetryAt(ms) => format!("returned to the queue; retry at {}", rfc3339(ms)),
        NextStep::Removed => "removed from the queue".to_string(),
        NextStep::DeadLettered => "moved to the dead-letter queue".to_string(),
        NextStep::DeadLetterNext { max_receive_count } => format!(
            "the dead-letter queue (this was receive {} of the {max_receive_count} its redrive policy allows)",
            report.receive_count
        ),
    };
    let redrive = match report.next {
        NextStep::DeadLettered | NextStep::DeadLetterNext { .. } => {
            let flags = if report.queue_flags.is_empty() { String::new() } else { format!("{} ", report.queue_flags) };
            format!("To run it again: watchbot dead-letter redrive {flags}{}\n", report.message_id)
        }
        _ => String::new(),
    };
    let mut body = format!(
        "At {when}, {stack} {verb} message {id}.\n\n\
         Outcome: {outcome}\nExit code: {exit}\nStopped reason: {reason}\nReceive count: {count}\nNext: {next}\n\
         {redrive}\n\
         Message environment:\n",
        when = rfc3339(report.now_ms),
        stack = report.stack_name,
        verb = if report.outcome == Outcome::Rejected { "rejected" } else { "failed processing" },
        id = report.message_id,
        outcome = report.outcome.as_str(),
        reason = if report.reason.is_empty() { "none" } else { report.reason },
        count = report.receive_count,
    );
    for (key, value) in report.env {
        body.push_str(&format!("{key}={value}\n"));
    }
    // The output section ends the body whole; the environment above it gives way to it when both do not fit.
    let output = fit(output_section(report.output), MAX_BODY_BYTES / 2);
    let mut body = fit(body, MAX_BODY_BYTES - output.len());
    body.push_str(&output);
    Notification { subject: subject(report.stack_name, report.message_id), body }
}

/// Epoch milliseconds as an RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-28T06:02:21.123Z`.
pub fn rfc3339(epoch_ms: u64) -> String {
    let secs = epoch_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        epoch_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_60_s_window_survives_an_outage_of_30_s() {
        let timing = super::heartbeat_timing(std::time::Duration::from_secs(60));
        assert_eq!(timing.renew_every, std::time::Duration::from_secs(20));
        assert_eq!(timing.attempt_deadline, std::time::Duration::from_secs(4));
        assert_eq!(timing.retry_after, std::time::Duration::from_secs(1));
        assert_eq!(super::tolerated_outage(std::time::Duration::from_secs(60)), std::time::Duration::from_secs(31));
        // The renewal interval plus the worst renewal time stays inside the window, with margin.
        for secs in [3, 10, 60, 600, 43_200] {
            let window = std::time::Duration::from_secs(secs);
            let timing = super::heartbeat_timing(window);
            assert!(timing.renew_every + timing.attempt_deadline * 2 + timing.retry_after < window, "{secs}");
            assert!(super::tolerated_outage(window) >= window / 2 - std::time::Duration::from_millis(1), "{secs}");
        }
    }

    use super::*;

    #[test]
    fn default_exit_code_table() {
        let table = ExitCodeTable::default();
        let cases = [
            (Some(0), Outcome::Succeeded, true, false),
            (Some(3), Outcome::Rejected, true, true),
            (Some(4), Outcome::Returned, false, false),
            (Some(1), Outcome::Failed, false, true),
            (Some(2), Outcome::Failed, false, true),
            (Some(137), Outcome::Failed, false, true),
            (Some(-1), Outcome::Failed, false, true),
            (None, Outcome::Failed, false, true),
        ];
        for (code, outcome, delete, notify) in cases {
            assert_eq!(table.outcome(code), outcome, "exit {code:?}");
            assert_eq!(outcome.action(), Action { delete, notify }, "exit {code:?}");
        }
    }

    #[test]
    fn a_table_can_remap_codes() {
        let mut table = ExitCodeTable::default();
        table.codes.insert(75, Outcome::Returned);
        assert_eq!(table.outcome(Some(75)), Outcome::Returned);
        assert_eq!(table.outcome(Some(76)), Outcome::Failed);
    }

    #[test]
    fn notify_after_retries() {
        let cases = [
            (Outcome::Failed, 1, 0, true),
            (Outcome::Failed, 1, 2, false),
            (Outcome::Failed, 2, 2, false),
            (Outcome::Failed, 3, 2, true),
            (Outcome::Rejected, 1, 5, true),
            (Outcome::Returned, 9, 0, false),
            (Outcome::Succeeded, 9, 0, false),
        ];
        for (outcome, count, after, expected) in cases {
            assert_eq!(
                should_notify(outcome, count, NotifyRules::after(after)),
                expected,
                "{outcome:?} count {count} after {after}"
            );
        }
    }

    #[test]
    fn the_last_receive_always_notifies_and_goes_to_the_dead_letter_queue() {
        let max = Some(3);
        // Every non-deleting outcome on the last receive: dead-letter next, notified (exit 4 and a silenced
        // failure too); before it, the usual rules.
        for outcome in [Outcome::Failed, Outcome::Returned] {
            assert_eq!(
                fate(outcome, 3, max, NotifyRules::after(10)),
                Fate { delete: false, dead_letter_next: true, notify: true }
            );
            assert!(fate(outcome, 4, max, NotifyRules::after(0)).dead_letter_next, "past the limit (a policy lowered)");
            assert!(!fate(outcome, 2, max, NotifyRules::after(10)).dead_letter_next);
        }
        assert!(!fate(Outcome::Returned, 2, max, NotifyRules::after(0)).notify);
        assert!(fate(Outcome::Failed, 2, max, NotifyRules::after(0)).notify);
        // Deleted outcomes never dead-letter; no known policy never does.
        assert_eq!(
            fate(Outcome::Succeeded, 3, max, NotifyRules::after(0)),
            Fate { delete: true, dead_letter_next: false, notify: false }
        );
        assert_eq!(
            fate(Outcome::Rejected, 3, max, NotifyRules::after(0)),
            Fate { delete: true, dead_letter_next: false, notify: true }
        );
        assert!(!fate(Outcome::Failed, 100, None, NotifyRules::after(0)).dead_letter_next);
        assert!(is_last_receive(1, Some(1)) && !is_last_receive(0, Some(1)) && !is_last_receive(5, None));
    }

    #[test]
    fn without_each_failure_only_rejections_and_dead_lettering_notify() {
        let quiet = NotifyRules { after_retries: 0, each_failure: false };
        assert!(!fate(Outcome::Failed, 1, Some(3), quiet).notify);
        assert!(!should_notify(Outcome::Failed, 9, quiet));
        assert!(fate(Outcome::Failed, 3, Some(3), quiet).notify, "the last receive: dead-letter next");
        assert!(fate(Outcome::Rejected, 1, Some(3), quiet).notify);
        assert!(!fate(Outcome::Returned, 1, Some(3), quiet).notify);
    }

    #[test]
    fn backoff_delays() {
        let secs = |count, jitter| backoff_delay(count, true, jitter).as_secs_f64();
        let cases =
            [(1, 0.0, 1.0), (1, 0.999, 1.999), (2, 0.0, 2.0), (3, 0.5, 6.0), (10, 0.0, 512.0), (10, 0.5, 768.0)];
        for (count, jitter, expected) in cases {
            assert!(
                (secs(count, jitter) - expected).abs() < 1e-6,
                "count {count} jitter {jitter}: {}",
                secs(count, jitter)
            );
        }
        // Never below half, never at or above the full value, first retry at least 1 s.
        for count in 1..=20 {
            for jitter in [0.0, 0.25, 0.999_999] {
                let full = 2f64.powi(count as i32).min(43_199.0);
                let delay = secs(count, jitter);
                assert!(delay >= (full / 2.0).min(43_199.0) - 1e-9 && delay <= full, "count {count}: {delay}");
                assert!(delay >= 1.0);
                assert!(delay < 43_200.0);
            }
        }
        assert_eq!(backoff_delay(u32::MAX, true, 0.9), Duration::from_secs(43_199));
        assert_eq!(backoff_delay(0, true, 0.0), Duration::from_millis(500));
        // Bad jitter from a caller is clamped, not trusted.
        assert_eq!(backoff_delay(1, true, f64::NAN), Duration::from_secs(1));
        assert_eq!(backoff_delay(1, true, 7.0), Duration::from_secs(2));
    }

    #[test]
    fn no_backoff_returns_at_once() {
        for count in [1, 5, 100] {
            assert_eq!(backoff_delay(count, false, 0.7), Duration::ZERO);
        }
    }

    #[test]
    fn retry_delays() {
        let max = Duration::from_secs(60);
        assert_eq!(retry_delay(1, max, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(2, max, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(4, max, 0.999_999).as_secs(), 7);
        assert_eq!(retry_delay(30, max, 0.5), max);
    }

    #[test]
    fn subject_fits_sns() {
        assert_eq!(subject("stack", "abc"), "stack failed processing message abc");
        let long = subject(&"é".repeat(150), "id");
        assert_eq!(long.chars().count(), 99);
        assert!(long.ends_with("..."));
        assert!(long.starts_with("éé"));
        let exact = subject(&"s".repeat(99 - " failed processing message x".len()), "x");
        assert_eq!(exact.chars().count(), 99);
        assert!(!exact.ends_with("..."));
        assert_eq!(subject("a\nb", "c"), "a b failed processing message c");
    }

    #[test]
    fn notification_body_says_everything() {
        let env = BTreeMap::from([("Message".to_string(), "hi".to_string()), ("MessageId".to_string(), "m-1".into())]);
        let report = Report {
            stack_name: "prod",
            now_ms: 1_795_845_741_123,
            message_id: "m-1",
            outcome: Outcome::Failed,
            exit_code: Some(1),
            reason: "Essential container in task exited",
            receive_count: 2,
            next: NextStep::RetryAt(1_795_845_745_123),
            env: &env,
            queue_flags: "--state .watchbot",
            output: None,
        };
        let n = notification(&report);
        assert_eq!(n.subject, "prod failed processing message m-1");
        assert_eq!(
            n.body,
            "At 2026-11-28T06:02:21.123Z, prod failed processing message m-1.\n\n\
             Outcome: failed\nExit code: 1\nStopped reason: Essential container in task exited\nReceive count: 2\n\
             Next: returned to the queue; retry at 2026-11-28T06:02:25.123Z\n\n\
             Message environment:\nMessage=hi\nMessageId=m-1\n"
        );
        let rejected = notification(&Report {
            outcome: Outcome::Rejected,
            exit_code: None,
            reason: "",
            next: NextStep::Removed,
            ..report.clone()
        });
        assert!(rejected.body.contains("prod rejected message m-1"));
        assert!(rejected.body.contains("Exit code: none\nStopped reason: none\n"));
        assert!(rejected.body.contains("Next: removed from the queue\n"));
        let dead = notification(&Report { next: NextStep::DeadLettered, ..report.clone() });
        assert!(dead.body.contains("Next: moved to the dead-letter queue\n"), "{}", dead.body);
        assert!(dead.body.contains("To run it again: watchbot dead-letter redrive --state .watchbot m-1\n"));
        let last = notification(&Report { next: NextStep::DeadLetterNext { max_receive_count: 2 }, ..report });
        assert!(
            last.body.contains(
                "Next: the dead-letter queue (this was receive 2 of the 2 its redrive policy allows)\n\
                 To run it again: watchbot dead-letter redrive --state .watchbot m-1\n\nMessage environment:"
            ),
            "{}",
            last.body
        );
        assert!(!last.body.contains("retry at"));
    }

    #[test]
    fn notifications_end_with_the_output_and_fit_sns() {
        let env = BTreeMap::from([("Message".to_string(), "x".repeat(300 * 1024))]);
        let output = TaskOutput::Tail { text: "first\nboom: disk full\n".into(), omitted_bytes: 0 };
        let report = Report {
            stack_name: "prod",
            now_ms: 0,
            message_id: "m-1",
            outcome: Outcome::Failed,
            exit_code: Some(1),
            reason: "exited with code 1",
            receive_count: 1,
            next: NextStep::Removed,
            env: &env,
            queue_flags: "",
            output: Some(&output),
        };
        let n = notification(&report);
        assert!(n.body.len() <= MAX_BODY_BYTES, "{}", n.body.len());
        assert!(n.body.ends_with("Recent output (the last 2 lines):\nfirst\nboom: disk full\n"), "{}", &n.body[..200]);
        assert!(n.body.contains("more bytes not shown: SNS takes 256 KB per message"));
        // A flood quotes its newest 50 KB, from a line start, and says how much came before.
        let flood: String = (0..20_000).map(|n| format!("line {n}\n")).collect();
        let output = TaskOutput::Tail { text: flood, omitted_bytes: 7 };
        let section = output_section(Some(&output));
        assert!(section.len() <= MAX_QUOTED_OUTPUT + 100, "{}", section.len());
        assert!(section.ends_with("line 19999\n"));
        let quoted = section.split_once("):\n").unwrap().1;
        assert!(quoted.starts_with("line "), "{}", &quoted[..20]);
        assert!(section.contains("earlier bytes not shown"));
        let why = TaskOutput::Unavailable("no permission to read log stream w/w/t".into());
        assert_eq!(
            output_section(Some(&why)),
            "\nRecent output: not available: no permission to read log stream w/w/t\n"
        );
        let silent = TaskOutput::Tail { text: String::new(), omitted_bytes: 0 };
        assert!(output_section(Some(&silent)).contains("the task printed nothing"));
        assert_eq!(output_section(None), "");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_845_741_123), "2026-11-28T06:02:21.123Z");
    }
}
