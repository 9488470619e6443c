//! End-to-end tests of `watchbot decrypt-env` on moto's KMS: a key created and values encrypted with boto3, then
//! the command exec'd with the plaintexts (the same process, no shell), or `export` lines that a shell's `eval`
//! turns back into exactly the plaintexts; a value that fails is one line naming the variable, never its value,
//! and the command does not start.

use crate::util::{TestDir, watchbot};

/// A text no shell quoting of the careless kind survives: quotes, spaces, newlines, `$`, backquotes, backslashes.
const AWKWARD: &str = "it's \"quoted\" $HOME `id` \\n\nsecond line; $(exit 9) 'x'  ";

/// `secure:` values for `(name, plaintext bytes)`, encrypted under a fresh key on moto.
fn encrypted(values: &[(&str, &[u8])]) -> Vec<(String, String)> {
    let list: Vec<String> = values.iter().map(|(name, bytes)| format!("({name:?}, bytes({bytes:?}))")).collect();
    let snippet = format!(
        "import base64\nkms = client('kms')\nkey = kms.create_key()['KeyMetadata']['KeyId']\n\
         for name, text in [{}]:\n    blob = kms.encrypt(KeyId=key, Plaintext=text)['CiphertextBlob']\n    \
         print(name, 'secure:' + base64.b64encode(blob).decode())\n",
        list.join(", ")
    );
    watchbot_testing::moto()
        .python(&snippet)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("name and value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn the_command_is_execd_with_every_secure_value_decrypted() {
    let values = encrypted(&[("API_TOKEN", b"t0ken"), ("DB_PASSWORD", AWKWARD.as_bytes())]);
    let dir = TestDir::new();
    let mut command = watchbot(&dir);
    command.moto(watchbot_testing::moto()).env("PLAIN", "as it was").envs_from(&values);
    // `$$` is the shell's own pid: the watchbot process itself, since the command replaced it (exec, no child).
    let script = r#"echo "$$"; printf '%s|%s|%s' "$API_TOKEN" "$DB_PASSWORD" "$PLAIN""#;
    let mut child = command.args(["decrypt-env", "--", "sh", "-c", script]).spawn();
    let pid = child.next_line().expect("the pid line");
    assert_eq!(pid, child.id().to_string(), "the command runs in watchbot's own process");
    let finished = child.wait().assert_success();
    assert_eq!(finished.stdout(), format!("{pid}\nt0ken|{AWKWARD}|as it was"), "{finished}");
    assert!(finished.stderr().is_empty(), "{finished}");
}

#[test]
fn without_a_command_it_prints_export_lines_that_eval_turns_back_into_the_plaintexts() {
    let values = encrypted(&[("DB_PASSWORD", AWKWARD.as_bytes()), ("EMPTYISH", b" ")]);
    let dir = TestDir::new();
    let mut command = watchbot(&dir);
    command.moto(watchbot_testing::moto()).env("PLAIN", "untouched").envs_from(&values);
    let printed = command.args(["decrypt-env"]).stdout();
    // One `export` line per value, sorted by name (a value's newline stays inside its quotes).
    assert_eq!(printed.lines().filter(|l| l.starts_with("export ")).count(), 2, "{printed}");
    assert!(printed.starts_with("export DB_PASSWORD='it'\\''s "), "{printed}");
    assert!(!printed.contains("PLAIN"), "only the secure values are exported: {printed}");

    // What a Dockerfile's `eval "$(watchbot decrypt-env)"` gets.
    let script = format!("eval \"$({} decrypt-env)\"; printf '%s|%s' \"$DB_PASSWORD\" \"$EMPTYISH\"", watchbot_path());
    let mut shell = dir.command("sh");
    shell.moto(watchbot_testing::moto()).envs_from(&values);
    assert_eq!(shell.args(["-c", &script]).stdout(), format!("{AWKWARD}| "));
}

#[test]
fn a_value_that_cannot_be_decrypted_names_its_variable_and_the_command_never_starts() {
    let good = encrypted(&[("GOOD", b"fine"), ("BINARY", &[0xff, 0x00, 0xfe])]);
    let cases: [(&str, String, i32, &str); 3] = [
        ("MISTYPED", "secure:c2VjcmV0 LXZhbHVl!".to_owned(), 1, "not base64"),
        // Valid base64, but no ciphertext moto's KMS made: KMS refuses it.
        ("FORGED", "secure:c2VjcmV0LXZhbHVlLXRoYXQtaXMtbm90LWEtY2lwaGVydGV4dA==".to_owned(), 69, "KMS"),
        ("BINARY", good[1].1.clone(), 1, "not UTF-8"),
    ];
    for (name, value, code, why) in cases {
        let dir = TestDir::new();
        let marker = dir.join("started");
        let mut command = watchbot(&dir);
        command.moto(watchbot_testing::moto()).envs_from(&good[..1]).env(name, &value);
        let script = format!("touch {}", marker.display());
        let out = command.args(["decrypt-env", "--", "sh", "-c", &script]).fails_with(code);
        let err = out.stderr();
        assert_eq!(err.trim().lines().count(), 1, "{out}");
        assert!(err.contains(&format!("${name}")) && err.contains(why), "{out}");
        let secret = value.trim_start_matches("secure:");
        assert!(!err.contains(secret) && !err.contains("fine"), "no value is shown: {out}");
        assert!(!marker.exists(), "the command must not start: {out}");
        assert!(out.stdout().is_empty(), "{out}");
        // Print mode fails the same way, printing no export line.
        let mut command = watchbot(&dir);
        command.moto(watchbot_testing::moto()).envs_from(&good[..1]).env(name, &value);
        let out = command.arg("decrypt-env").fails_with(code);
        assert!(out.stdout().is_empty(), "{out}");
    }
}

#[test]
fn without_secure_values_aws_is_never_called() {
    // No endpoint, no credentials: any request would fail.
    let dir = TestDir::new();
    let mut command = watchbot(&dir);
    for variable in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
        command.env_remove(variable);
    }
    command.env("AWS_EC2_METADATA_DISABLED", "true").env("PLAIN", "secure-ish: no");
    assert_eq!(command.args(["decrypt-env", "--", "printenv", "PLAIN"]).stdout(), "secure-ish: no\n");
    let out = watchbot(&dir).args(["decrypt-env", "--", "no-such-command-here"]).fails_with(1);
    assert!(out.stderr().contains("no-such-command-here"), "{out}");
    assert!(watchbot(&dir).arg("decrypt-env").env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").stdout().is_empty());
}

fn watchbot_path() -> String {
    env!("CARGO_BIN_EXE_watchbot").to_owned()
}

/// Sets each `(name, value)` pair on a command.
trait EnvsFrom {
    fn envs_from(&mut self, values: &[(String, String)]) -> &mut Self;
}

impl EnvsFrom for watchbot_testing::process::TestCommand {
    fn envs_from(&mut self, values: &[(String, String)]) -> &mut Self {
        for (name, value) in values {
            self.env(name, value);
        }
        self
    }
}
