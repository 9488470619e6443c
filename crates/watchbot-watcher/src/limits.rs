//! What SQS and SNS accept, checked before a message is sent anywhere: the embedded queue, `watchbot send` and
//! `watchbot local --messages` refuse what production would refuse (and say why), so a message that runs locally
//! can be published in production. Pure functions; the ECS runner's own limit is [`crate::message::TaskSizeLimit`].

use crate::message::{ECS_OVERRIDES_LIMIT, overrides_size};
use std::collections::BTreeMap;

/// The largest message body SQS and SNS take, in bytes (256 KiB).
pub const MAX_BODY_BYTES: usize = 262_144;

/// The longest subject SNS takes, in characters.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// Why SQS would refuse this body, or `Ok`: at most [`MAX_BODY_BYTES`], and only the characters SQS allows
/// (`#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`: no NUL or other control characters).
pub fn check_body(body: &str) -> Result<(), String> {
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "the message is {} bytes, over the {MAX_BODY_BYTES}-byte limit of SQS and SNS",
            body.len()
        ));
    }
    if let Some((at, c)) = body.char_indices().find(|(_, c)| !sqs_allows(*c)) {
        return Err(format!(
            "the message has the character U+{:04X} at byte {at}, which SQS refuses (control characters other than \
             tab, newline and carriage return)",
            c as u32
        ));
    }
    Ok(())
}

fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Why SNS would refuse this subject, or `Ok`: ASCII, at most [`MAX_SUBJECT_CHARS`] characters, no line breaks or
/// control characters, not starting with a space.
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(format!(
            "the subject is {} characters, over SNS's limit of {MAX_SUBJECT_CHARS}",
            subject.chars().count()
        ));
    }
    if let Some(c) = subject.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(format!(
            "the subject has the character {c:?}, which SNS refuses (subjects are ASCII without line breaks or \
             control characters)"
        ));
    }
    if subject.starts_with(' ') {
        return Err("the subject starts with a space, which SNS refuses".to_string());
    }
    Ok(())
}

/// Both checks, the subject's first.
pub fn check_message(subject: Option<&str>, body: &str) -> Result<(), String> {
    if let Some(subject) = subject.filter(|s| !s.is_empty()) {
        check_subject(subject)?;
    }
    check_body(body)
}

/// A warning when this message, run by the ECS runner, would not fit ECS's 8,192-character container overrides
/// (there it goes to the dead-letter queue unrun); `None` when it fits. Counted for a container named `worker`
/// with only the message's own variables, so a real task's environment is a little larger still.
pub fn ecs_fit_warning(subject: Option<&str>, message: &str) -> Option<String> {
    // Cheap first: JSON escaping at most doubles text SQS accepts (`"` and `\` only; control characters other than
    // tab and newlines are refused, and those escape to two characters), and the rest is under 400 characters; so
    // most messages need no measuring (a `--messages` file of 100,000 lines is checked line by line).
    let text = subject.map_or(0, str::len) + message.len();
    if 2 * text + 400 <= ECS_OVERRIDES_LIMIT {
        return None;
    }
    let mut env = BTreeMap::new();
    env.insert("Subject".to_string(), subject.unwrap_or_default().to_string());
    env.insert("Message".to_string(), message.to_string());
    env.insert("MessageId".to_string(), "00000000-0000-0000-0000-000000000000".to_string());
    for name in ["SentTimestamp", "ApproximateFirstReceiveTimestamp"] {
        env.insert(name.to_string(), "1700000000000".to_string());
    }
    env.insert("ApproximateReceiveCount".to_string(), "1".to_string());
    let size = overrides_size("worker", &env);
    (size > ECS_OVERRIDES_LIMIT).then(|| {
        format!(
            "this message needs at least {size} characters of ECS container overrides, over ECS's limit of \
             {ECS_OVERRIDES_LIMIT}: the ECS runner would send it to the dead-letter queue unrun (pass large data by \
             reference, e.g. an S3 URL)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_sqs() {
        assert!(check_body("tab\tnewline\ncr\r ünïcödé 🎉").is_ok());
        let nul = check_body("a\0b").unwrap_err();
        assert!(nul.contains("U+0000 at byte 1"), "{nul}");
        assert!(check_body("\u{1b}[31m").unwrap_err().contains("U+001B"));
        assert!(check_body("\u{FFFE}").is_err());
        assert!(check_body(&"x".repeat(MAX_BODY_BYTES)).is_ok());
        assert!(check_body(&"x".repeat(MAX_BODY_BYTES + 1)).unwrap_err().contains("262145 bytes"));
    }

    #[test]
    fn subjects_follow_sns() {
        assert!(check_subject("Reprocess tile 1/2/3!").is_ok());
        assert!(check_subject(&"s".repeat(100)).is_ok());
        assert!(check_subject(&"s".repeat(200)).unwrap_err().contains("200 characters"));
        assert!(check_subject("two\nlines").unwrap_err().contains("'\\n'"));
        assert!(check_subject("café").unwrap_err().contains("'é'"));
        assert!(check_subject(" lead").is_err());
        assert!(check_message(Some(""), "m").is_ok(), "an empty subject is no subject");
        assert!(check_message(Some("s"), "a\0").is_err());
    }

    #[test]
    fn the_ecs_warning_comes_only_for_messages_over_the_overrides() {
        assert_eq!(ecs_fit_warning(Some("s"), &"x".repeat(7_000)), None);
        assert_eq!(
            ecs_fit_warning(None, &"\"".repeat(3_800)),
            None,
            "measured when near: 7,600 escaped characters fit"
        );
        assert!(ecs_fit_warning(None, &"\"".repeat(4_200)).is_some(), "escaping counts: 8,400 characters do not");
        let warning = ecs_fit_warning(None, &"x".repeat(20_000)).expect("over");
        assert!(warning.contains("over ECS's limit of 8192"), "{warning}");
    }
}
