//! End-to-end tests of `watchbot merge`.

use crate::util::{TestDir, watchbot, workspace_path};
use serde_json::{Value, json};
use std::path::PathBuf;

fn write(dir: &TestDir, name: &str, value: &Value) -> PathBuf {
    dir.write(name, serde_json::to_string(value).unwrap())
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
    let dir = TestDir::new();
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
    let merged: Value = serde_json::from_str(&watchbot(&dir).arg("merge").args(&paths).stdout()).unwrap();
    let templates = [user, generated("Map"), generated("Reduce")];
    assert_eq!(merged, watchbot_template::merge(&templates).unwrap());
    assert!(merged["Resources"]["MapQueue"].is_object() && merged["Resources"]["ReduceQueue"].is_object());
    assert!(merged["Resources"]["Bucket"].is_object());

    let target = dir.join("merged.json");
    watchbot(&dir).arg("merge").args(&paths).arg("--output").arg(&target).success();
    assert_eq!(serde_json::from_str::<Value>(&std::fs::read_to_string(&target).unwrap()).unwrap(), merged);
}

#[test]
fn a_conflict_exits_1_naming_section_key_and_file_and_writes_nothing() {
    let dir = TestDir::new();
    let mut changed = generated("Map");
    changed["Resources"]["MapQueue"]["Properties"]["VisibilityTimeout"] = json!(30);
    let first = write(&dir, "first.json", &generated("Map"));
    let second = write(&dir, "second.json", &changed);
    let target = dir.join("merged.json");
    let out = watchbot(&dir).arg("merge").arg(&first).arg(&second).arg("--output").arg(&target).fails_with(1);
    let err = out.stderr();
    assert_eq!(err.lines().count(), 1, "{out}");
    assert!(err.contains("conflicting Resources key \"MapQueue\""), "{out}");
    assert!(err.contains("second.json"), "{out}");
    assert!(!target.exists());
    // No temporary file is left behind either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn bad_inputs_exit_1_and_no_inputs_is_a_usage_error() {
    let dir = TestDir::new();
    let broken = dir.write("broken.json", "{");
    let out = watchbot(&dir).arg("merge").arg(&broken).fails_with(1);
    assert!(out.stderr().contains("broken.json is not valid JSON"), "{out}");

    let list = write(&dir, "list.json", &json!([1, 2]));
    let out = watchbot(&dir).arg("merge").arg(&list).fails_with(1);
    assert!(out.stderr().contains("list.json is not a JSON object"), "{out}");

    let out = watchbot(&dir).arg("merge").arg(dir.join("absent.json")).fails_with(1);
    assert!(out.stderr().contains("cannot read"), "{out}");

    watchbot(&dir).arg("merge").fails_with(2);
}
