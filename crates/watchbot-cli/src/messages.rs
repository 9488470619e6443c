//! A `--messages` file: one JSON object per line, `{"message": ..., "subject": ...}` (blank lines skipped), read
//! whole and checked before anything is sent, so a bad line sends nothing. Errors name the file and line in the
//! user's terms; what SQS or SNS would refuse (a NUL byte, a 200-character subject) is refused here as production
//! would, and a message too large for an ECS task is warned about.

use crate::Failure;
use serde_json::Value;
use std::path::Path;
use watchbot_watcher::limits;
use watchbot_watcher::local::queue::subject_attributes;
use watchbot_watcher::ports::OutgoingMessage;

/// What one line of a file must look like, for error messages.
const SHAPE: &str = r#"each line is {"message": ..., "subject": "..."}, the subject optional"#;

/// Reads and checks every line of `file`; `warn` gets a line for each message that would not fit an ECS task.
pub fn read(file: &Path, mut warn: impl FnMut(String)) -> Result<Vec<OutgoingMessage>, Failure> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
    let mut messages = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{} line {}", file.display(), n + 1);
        let (subject, body) = parse_line(line).map_err(|why| Failure::new(format!("{at}: {why}; nothing was sent")))?;
        if let Some(warning) = limits::ecs_fit_warning(subject.as_deref(), &body) {
            warn(format!("{at}: {warning}"));
        }
        messages.push(OutgoingMessage {
            body,
            attributes: subject_attributes(subject.as_deref()),
            ..OutgoingMessage::default()
        });
    }
    Ok(messages)
}

/// One line: its subject and body, or why it is not a message.
fn parse_line(line: &str) -> Result<(Option<String>, String), String> {
    let value: Value = watchbot_template::parse_strict(line).map_err(|e| {
        if e.is_data() {
            // A repeated key: serde's own words name it.
            return e.to_string().split(" at line ").next().unwrap_or_default().to_string();
        }
        let what = if e.is_eof() { "unfinished JSON" } else { "not JSON" };
        format!("{what} (column {}; {SHAPE})", e.column())
    })?;
    let Value::Object(mut object) = value else {
        return Err(format!("not a JSON object ({SHAPE})"));
    };
    if let Some(key) = object.keys().find(|k| !matches!(k.as_str(), "message" | "subject")) {
        return Err(format!("unknown key {key:?} ({SHAPE})"));
    }
    let subject = match object.remove("subject") {
        None | Some(Value::Null) => None,
        Some(Value::String(subject)) => Some(subject),
        Some(_) => return Err("\"subject\" is not a string".to_string()),
    };
    // A message is text; a JSON object or number is sent as its JSON text, as a user would have quoted it.
    let body = match object.remove("message") {
        None => return Err(format!("no \"message\" ({SHAPE})")),
        Some(Value::Null) => return Err("\"message\" is null".to_string()),
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    };
    if body.is_empty() {
        return Err("\"message\" is empty".to_string());
    }
    limits::check_message(subject.as_deref(), &body)?;
    Ok((subject, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_say_what_is_wrong_in_the_users_terms() {
        assert_eq!(parse_line(r#"{"subject": "s", "message": "a"}"#), Ok((Some("s".into()), "a".into())));
        assert_eq!(parse_line(r#"{"message": {"k": 1}}"#), Ok((None, "{\"k\":1}".into())));
        let error = |line| parse_line(line).unwrap_err();
        assert!(error("{message: 1}").starts_with("not JSON (column 2;"), "{}", error("{message: 1}"));
        assert!(error(r#"{"message": "a""#).starts_with("unfinished JSON"));
        assert!(error(r#"["message"]"#).starts_with("not a JSON object"));
        assert!(error(r#"{"mesage": "typo"}"#).starts_with("unknown key \"mesage\""));
        assert!(error(r#"{"subject": "s"}"#).starts_with("no \"message\""));
        assert_eq!(error(r#"{"message": ""}"#), "\"message\" is empty");
        assert_eq!(error(r#"{"message": "a", "message": "b"}"#), "the key \"message\" appears twice ($.message)");
        assert_eq!(error(r#"{"message": "a", "subject": 3}"#), "\"subject\" is not a string");
        assert!(error(r#"{"message": "a\u0000b"}"#).contains("U+0000"));
        let long_subject = format!(r#"{{"message": "a", "subject": "{}"}}"#, "s".repeat(200));
        assert!(error(&long_subject).contains("over SNS's limit of 100"));
    }

    #[test]
    fn a_file_is_read_whole_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.jsonl");
        let big = "x".repeat(20_000);
        std::fs::write(&file, format!("{{\"message\": \"a\"}}\n\n{{\"message\": \"{big}\"}}\n")).unwrap();
        let mut warnings = Vec::new();
        let messages = read(&file, |w| warnings.push(w)).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("m.jsonl line 3: this message needs"), "{warnings:?}");
        std::fs::write(&file, "{\"message\": \"a\"}\n{\"mesage\": \"typo\"}\n").unwrap();
        let error = read(&file, |_| ()).unwrap_err().to_string();
        assert!(error.contains("m.jsonl line 2: unknown key \"mesage\""), "{error}");
        assert!(error.ends_with("nothing was sent"), "{error}");
    }
}
