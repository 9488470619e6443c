//! End-to-end tests of `watchbot log` and `watchbot-log`: arguments, stdin streamed line by line, JSON lines.

use crate::util::{TestDir, watchbot, watchbot_log};
use std::io::Write;

/// Checks `[<RFC 1123 date>] [worker] [<id>] <text>` and returns the text.
fn text_of<'a>(line: &'a str, id: &str) -> &'a str {
    // `[Thu, 28 Jul 2016 00:12:37 GMT]` is 31 characters.
    assert!(line.len() > 31 && line.starts_with('['), "not a log line: {line:?}");
    let (date, rest) = line.split_at(31);
    assert!(date.ends_with(" GMT]") && date.as_bytes()[4] == b',', "bad date in {line:?}");
    let prefix = format!(" [worker] [{id}] ");
    rest.strip_prefix(&prefix).unwrap_or_else(|| panic!("expected {prefix:?} after the date in {line:?}"))
}

#[test]
fn arguments_are_one_line_with_the_message_id() {
    let text = watchbot(&TestDir::new()).args(["log", "eggs", "and beans"]).env("MessageId", "e2c045cc").stdout();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert_eq!(text_of(text.lines().next().unwrap(), "e2c045cc"), "eggs and beans");
}

/// Arguments that are not UTF-8 pass through as the same bytes do on stdin (a shell's `$(printf 'caf\xe9')`).
#[test]
fn argument_bytes_that_are_not_utf8_pass_through() {
    use std::os::unix::ffi::OsStrExt;
    let out = watchbot(&TestDir::new())
        .arg("log")
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .arg("ok")
        .env("MessageId", "m-8")
        .success();
    let text = out.stdout_bytes();
    assert!(text.ends_with(b"[m-8] caf\xe9 ok\n"), "{out}");
    assert_eq!(text.iter().filter(|b| **b == b'\n').count(), 1, "{out}");
}

#[test]
fn the_original_binary_name_works_and_unset_id_has_a_placeholder() {
    let text = watchbot_log(&TestDir::new()).arg("hello").env_remove("MessageId").stdout();
    assert_eq!(text_of(text.trim_end_matches('\n'), "no-message-id"), "hello");
}

#[test]
fn stdin_lines_are_each_prefixed_and_bytes_pass_through() {
    let out = watchbot(&TestDir::new())
        .arg("log")
        .env("MessageId", "m-7")
        .stdin(&b"one\n\ncaf\xe9 \xff\nlast without newline"[..])
        .success();
    let lines: Vec<&[u8]> = out.stdout_bytes().split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[4], b"", "output ends with a newline");
    let texts: Vec<&[u8]> =
        lines[..4].iter().map(|l| &l[l.windows(6).position(|w| w == b"[m-7] ").unwrap() + 6..]).collect();
    assert_eq!(texts, [&b"one"[..], b"", b"caf\xe9 \xff", b"last without newline"]);
}

#[test]
fn stdin_lines_appear_before_stdin_closes() {
    let mut child = watchbot_log(&TestDir::new()).env("MessageId", "stream").stdin_piped().spawn();
    let mut stdin = child.stdin();
    for word in ["first", "second"] {
        stdin.write_all(format!("{word}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        // stdin stays open: the line must come out now, not at EOF (a line held back fails after the deadline).
        let line = child.next_line().expect("a line while stdin is open");
        assert_eq!(text_of(&line, "stream"), word);
    }
    drop(stdin);
    assert_eq!(child.next_line(), None);
    child.wait().assert_success();
}

#[test]
fn stdin_without_newlines_is_cut_at_the_line_limit_while_it_streams() {
    // A `\r` progress bar or binary input never ends a line: it must come out in lines of at most 256 KiB as it
    // arrives, not pile up in memory until a newline or EOF.
    const MAX_LINE: usize = 256 * 1024;
    let mut child = watchbot_log(&TestDir::new()).env("MessageId", "bar").stdin_piped().spawn();
    let mut stdin = child.stdin();
    let bar: Vec<u8> = b"\r[#####     ] 50%".iter().copied().cycle().take(MAX_LINE + MAX_LINE / 2).collect();
    stdin.write_all(&bar).unwrap();
    stdin.flush().unwrap();
    // stdin stays open and no newline was written: the first full-length piece must arrive anyway.
    let first = child.next_line().expect("a line cut at the limit");
    assert_eq!(first.len() - first.find("[bar] ").unwrap() - "[bar] ".len(), MAX_LINE);
    drop(stdin);
    let rest = child.next_line().expect("the rest at EOF");
    assert!(rest.ends_with(std::str::from_utf8(&bar[MAX_LINE..]).unwrap()));
    assert_eq!(child.next_line(), None);
    child.wait().assert_success();
}

#[test]
fn json_lines_on_request() {
    let dir = TestDir::new();
    let text = watchbot(&dir).args(["log", "--json", "a \"quoted\" word"]).env("MessageId", "j-1").stdout();
    let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(value["messageId"], "j-1");
    assert_eq!(value["msg"], "a \"quoted\" word");
    let time = value["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    // Field order as documented: time, messageId, msg.
    assert!(text.starts_with("{\"time\":"), "{text}");

    let out = watchbot(&dir).args(["log", "--json"]).env_remove("MessageId").stdin("x\ny\n").stdout();
    let msgs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["msg"], "y");
    assert_eq!(msgs[0]["messageId"], serde_json::Value::Null);
}
