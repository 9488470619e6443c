//! End-to-end tests of `watchbot merge`.

use crate::util::{output, stderr, stdout, watchbot, workspace_path};
use serde_json::{Value, json};
use std::path::PathBuf;

fn write(dir: &tempfile::TempDir, name: &str, value: &Value) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
    path
}

fn generated(prefix: &str) -> Value {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_path("examples/config/minimal.json")).unwrap())
            .unwrap();
    config["prefix"] = json!(prefix);
    watchbot_template::template(&watchbot_template::Options::from_value(&config).unwrap()).unwrap().to_json()
}

#[test]
fn merges_two_watchbots_and_a_user_template_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let user = json!({
        "Parameters": {"GitSha": {"Type": "String"}},
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"MapTopic": {"Value": {"Ref": "MapTopic"}}},
    });
    let paths = [
        write(&dir, "user.json", &user),
        write(&dir, "map.json", &generated("Map")),
        write(&dir, "reduce.json", &generated("Reduce")),
    ];
    let out = output(watchbot().arg("merge").args(&paths));
    assert!(out.status.success(), "{}", stderr(&out));
    let merged: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let templates = [user, generated("Map"), generated("Reduce")];
    assert_eq!(merged, watchbot_template::merge(&templates).unwrap());
    assert!(merged["Resources"]["MapQueue"].is_object() && merged["Resources"]["ReduceQueue"].is_object());
    assert!(merged["Resources"]["Bucket"].is_object());

    let target = dir.path().join("merged.json");
    let out = output(watchbot().arg("merge").args(&paths).arg("--output").arg(&target));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(serde_json::from_str::<Value>(&std::fs::read_to_string(&target).unwrap()).unwrap(), merged);
}

#[test]
fn a_conflict_exits_1_naming_section_key_and_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut changed = generated("Map");
    changed["Resources"]["MapQueue"]["Properties"]["VisibilityTimeout"] = json!(30);
    let first = write(&dir, "first.json", &generated("Map"));
    let second = write(&dir, "second.json", &changed);
    let target = dir.path().join("merged.json");
    let out = output(watchbot().arg("merge").arg(&first).arg(&second).arg("--output").arg(&target));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("conflicting Resources key \"MapQueue\""), "{err}");
    assert!(err.contains("second.json"), "{err}");
    assert!(!target.exists());
    // No temporary file is left behind either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn bad_inputs_exit_1_and_no_inputs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{").unwrap();
    let out = output(watchbot().arg("merge").arg(&broken));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.json is not valid JSON"), "{}", stderr(&out));

    let list = write(&dir, "list.json", &json!([1, 2]));
    let out = output(watchbot().arg("merge").arg(&list));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("list.json is not a JSON object"), "{}", stderr(&out));

    let out = output(watchbot().arg("merge").arg(dir.path().join("absent.json")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    let out = output(watchbot().arg("merge"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
