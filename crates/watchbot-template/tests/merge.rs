//! `merge`: two watchbots with different prefixes and a user template merge cleanly; conflicts name section and key.

use serde_json::{Value, json};
use watchbot_template::{MergeError, Options, merge, template};

fn watchbot(prefix: &str) -> Value {
    let options = Options::from_value(&json!({
        "prefix": prefix,
        "cluster": {"Ref": "Cluster"},
        "service": "my-worker",
        "serviceVersion": {"Ref": "GitSha"},
        "notificationEmail": "alerts@example.com",
    }))
    .unwrap();
    template(&options).unwrap().to_json()
}

fn user_template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"Cluster": {"Type": "String"}, "GitSha": {"Type": "String"}},
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"Topic": {"Value": {"Ref": "MapTopic"}}},
    })
}

#[test]
fn two_watchbots_and_a_user_template_merge_cleanly() {
    let (map, reduce) = (watchbot("Map"), watchbot("Reduce"));
    let merged = merge(&[user_template(), map.clone(), reduce.clone()]).unwrap();
    let resources = merged["Resources"].as_object().unwrap();
    let count = |t: &Value| t["Resources"].as_object().unwrap().len();
    assert_eq!(resources.len(), 1 + count(&map) + count(&reduce));
    assert!(resources.contains_key("MapQueue") && resources.contains_key("ReduceQueue"));
    assert_eq!(merged["Parameters"], user_template()["Parameters"]);
    assert_eq!(merged["Outputs"], user_template()["Outputs"]);
    assert_eq!(merged["AWSTemplateFormatVersion"], "2010-09-09");
    // Merging the same template twice changes nothing: identical duplicates are allowed.
    assert_eq!(merge(&[merged.clone(), map]).unwrap(), merged);
}

#[test]
fn a_conflicting_resource_fails_naming_section_and_key() {
    let mut other = watchbot("Map");
    other["Resources"]["MapQueue"]["Properties"]["VisibilityTimeout"] = json!(30);
    let error = merge(&[watchbot("Map"), other]).unwrap_err();
    assert_eq!(error, MergeError::Conflict { section: "Resources".into(), key: "MapQueue".into(), index: 1 });
    assert_eq!(
        error.to_string(),
        "conflicting Resources key \"MapQueue\": template 1 defines it differently from an earlier template"
    );
}

#[test]
fn conflicting_parameters_and_outputs_fail_too() {
    let a = json!({"Parameters": {"Cluster": {"Type": "String"}}});
    let b = json!({"Parameters": {"Cluster": {"Type": "Number"}}});
    assert!(merge(&[a, b]).unwrap_err().to_string().starts_with("conflicting Parameters key \"Cluster\""));
    let a = json!({"Outputs": {"Topic": {"Value": "a"}}});
    let b = json!({"Outputs": {"Topic": {"Value": "b"}}});
    assert!(merge(&[a, b]).unwrap_err().to_string().starts_with("conflicting Outputs key \"Topic\""));
}

#[test]
fn malformed_templates_are_rejected() {
    assert_eq!(merge(&[json!([])]).unwrap_err().to_string(), "template 0 is not a JSON object");
    assert_eq!(
        merge(&[json!({}), json!({"Resource": {}})]).unwrap_err().to_string(),
        "template 1 has an unknown section \"Resource\""
    );
    assert_eq!(
        merge(&[json!({"Resources": []})]).unwrap_err().to_string(),
        "template 0: section \"Resources\" is not a JSON object"
    );
}
