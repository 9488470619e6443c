//! `watchbot decrypt-env [-- COMMAND ARGS...]`: the environment's `secure:<base64 KMS ciphertext>` values
//! decrypted (the original's `decrypt-kms-env`, without a shell).
//!
//! With a command, it is exec'd (Unix `execvp`: the same process, no shell) with every `secure:` value replaced by
//! its plaintext and the rest of the environment as it was. Without one, `export NAME='plaintext'` lines are
//! printed for `eval "$(watchbot decrypt-env)"`, single-quoted (a `'` as `'\''`), so no plaintext is ever parsed
//! by the shell. Every value is decoded and decrypted before anything is printed or started: a value that fails
//! (bad base64, a KMS error, a plaintext that is not UTF-8 or holds a NUL byte) is one line naming the variable,
//! never its value, and exit 1 (69 when KMS could not be used); the command is not started. Without any
//! `secure:` value, AWS is not called at all.

use crate::Failure;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use watchbot_watcher::aws::kms::{SECURE_PREFIX, decode_ciphertext};

/// Arguments of `watchbot decrypt-env`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command to run with the decrypted environment (after `--`); without one, print `export` lines.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// An environment variable whose value is `secure:` ciphertext.
#[derive(Debug, PartialEq)]
pub struct Secure {
    /// The variable's name.
    pub name: String,
    /// The ciphertext, decoded from base64.
    pub ciphertext: Vec<u8>,
}

/// The `secure:` variables of an environment, decoded, sorted by name; a value with the prefix that
/// is not valid base64, or a name that is not UTF-8, is an error naming the variable (never its value).
/// `for_shell`: the names must also be shell identifiers (`export` lines for `eval`).
pub fn secure_values(
    env: impl IntoIterator<Item = (OsString, OsString)>,
    for_shell: bool,
) -> Result<Vec<Secure>, Failure> {
    let mut found = Vec::new();
    for (name, value) in env {
        let Some(base64) = value.as_bytes().strip_prefix(SECURE_PREFIX.as_bytes()) else { continue };
        let shown = name.to_string_lossy();
        let Some(name) = name.to_str() else {
            return Err(Failure::new(format!("${shown}: the variable's name is not UTF-8")));
        };
        if for_shell && !is_shell_name(name) {
            return Err(Failure::new(format!(
                "${name}: not a shell variable name, so it cannot be exported (run the command with `watchbot \
                 decrypt-env -- COMMAND` instead)"
            )));
        }
        let ciphertext = std::str::from_utf8(base64).ok().and_then(decode_ciphertext).ok_or_else(|| {
            Failure::new(format!("${name}: the value after {SECURE_PREFIX:?} is not base64 KMS ciphertext"))
        })?;
        found.push(Secure { name: name.to_owned(), ciphertext });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A plaintext as an environment value: UTF-8 (as the original requires) without NUL (which no environment
/// value can hold).
pub fn plaintext_value(name: &str, plaintext: Vec<u8>) -> Result<String, Failure> {
    let text = String::from_utf8(plaintext)
        .map_err(|_| Failure::new(format!("${name}: the decrypted value is not UTF-8 text")))?;
    if text.contains('\0') {
        return Err(Failure::new(format!("${name}: the decrypted value contains a NUL byte")));
    }
    Ok(text)
}

/// Whether `name` is a shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` in single quotes for a POSIX shell: nothing inside is interpreted, and a `'` is written `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The `export NAME='value'` lines for `eval`, one per variable.
pub fn export_lines(decrypted: &[(String, String)]) -> String {
    decrypted.iter().map(|(name, value)| format!("export {name}={}\n", shell_quote(value))).collect()
}

/// Runs `watchbot decrypt-env`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    // The process's own environment is the input of this command (not configuration of a library).
    let secure = secure_values(std::env::vars_os(), args.command.is_empty())?;
    let decrypted = if secure.is_empty() { Vec::new() } else { decrypt_all(secure)? };
    let Some((program, rest)) = args.command.split_first() else {
        print!("{}", export_lines(&decrypted));
        return Ok(ExitCode::SUCCESS);
    };
    exec(program, rest, &decrypted)
}

/// Every value decrypted, or the first failure (naming its variable).
fn decrypt_all(secure: Vec<Secure>) -> Result<Vec<(String, String)>, Failure> {
    let runtime = crate::aws::runtime()?;
    runtime.block_on(async {
        let kms = crate::aws::load().await.kms();
        let mut decrypted = Vec::with_capacity(secure.len());
        for Secure { name, ciphertext } in secure {
            let plaintext = kms.decrypt(ciphertext).await.map_err(|e| {
                crate::aws::port_failure(format!("${name}: cannot decrypt with KMS"), "kms Decrypt", &e)
            })?;
            let value = plaintext_value(&name, plaintext)?;
            decrypted.push((name, value));
        }
        Ok(decrypted)
    })
}

/// Replaces this process with `program` (`execvp`); returns only when that fails.
fn exec(program: &OsStr, args: &[OsString], decrypted: &[(String, String)]) -> Result<ExitCode, Failure> {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(program).args(args).envs(decrypted.iter().map(|(n, v)| (n, v))).exec();
    Err(Failure::new(format!("cannot run {:?}: {error}", program.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(n, v)| (OsString::from(n), OsString::from(v))).collect()
    }

    #[test]
    fn only_secure_values_are_taken_and_decoded() {
        let found = secure_values(env(&[("PLAIN", "x"), ("A", "secure:aGVsbG8="), ("B", "Secure:aGk=")]), true);
        assert_eq!(found.unwrap(), vec![Secure { name: "A".into(), ciphertext: b"hello".to_vec() }]);
    }

    #[test]
    fn a_bad_value_names_its_variable_and_never_its_value() {
        for value in ["secure:not base64!", "secure:", "secure:c2VjcmV0LXZhbHVl-"] {
            let failure = secure_values(env(&[("TOKEN", value)]), false).unwrap_err();
            let line = failure.to_string();
            assert!(line.starts_with("$TOKEN: "), "{line}");
            let secret = &value["secure:".len()..];
            assert!(secret.is_empty() || !line.contains(secret), "{line}");
            assert_eq!(failure.exit_code(), 1);
        }
        // A name the shell cannot export: an error for `eval`, fine for exec.
        assert!(secure_values(env(&[("my-token", "secure:aGk=")]), true).unwrap_err().to_string().contains("my-token"));
        assert_eq!(secure_values(env(&[("my-token", "secure:aGk=")]), false).unwrap().len(), 1);
        let not_utf8 = plaintext_value("K", vec![0xff, 0xfe]).unwrap_err().to_string();
        assert_eq!(not_utf8, "$K: the decrypted value is not UTF-8 text");
        assert!(plaintext_value("K", b"a\0b".to_vec()).unwrap_err().to_string().contains("NUL"));
    }

    #[test]
    fn names_that_a_shell_can_export() {
        for good in ["A", "_x", "Secret_2"] {
            assert!(is_shell_name(good), "{good}");
        }
        for bad in ["", "2A", "a-b", "a b", "é", "a=b"] {
            assert!(!is_shell_name(bad), "{bad}");
        }
    }

    #[test]
    fn export_lines_survive_eval_whatever_the_value() {
        let value = "it's a \"secret\" with $HOME, `ls`, \\n and\na newline; $(rm -rf /) 'quoted'";
        let lines = export_lines(&[("S".into(), value.into()), ("E".into(), String::new())]);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert!(lines.ends_with("export E=''\n"), "{lines}");
        // The shell gives back exactly the value.
        let script = format!("{lines}printf '%s' \"$S\"");
        let output = std::process::Command::new("sh").arg("-c").arg(&script).output().expect("sh runs");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8(output.stdout).unwrap(), value);
    }
}
