//! Snapshots of generated templates (sorted keys): the minimal config (the bundled example), an open webhook, the seed README's S3-bucket example merged
//! with its service template (what a user deploys), and an everything-on config. Review changes with
//! `cargo xtask snapshots`; `cargo xtask snapshots --accept` writes them.

use serde_json::Value;
use std::path::PathBuf;
use watchbot_template::{Options, merge, template};

fn read_json(relative_to_crate: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative_to_crate);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn generate(config: &str) -> watchbot_template::Template {
    let options = Options::from_value(&read_json(config)).unwrap_or_else(|e| panic!("{config}: {e}"));
    template(&options).unwrap_or_else(|e| panic!("{config}: {e}"))
}

#[test]
fn minimal() {
    let template = generate("../../examples/config/minimal.json");
    insta::assert_json_snapshot!("minimal", template.json());
    insta::assert_json_snapshot!("minimal_refs", template.refs());
}

#[test]
fn everything_on() {
    let template = generate("tests/configs/everything.json");
    insta::assert_json_snapshot!("everything", template.json());
    insta::assert_json_snapshot!("everything_refs", template.refs());
}

/// Webhook without a key, a user, a cluster by name, a notification topic, extreme limits.
#[test]
fn open_webhook() {
    let template = generate("tests/configs/open-webhook.json");
    insta::assert_json_snapshot!("open_webhook", template.json());
}

/// Fargate (launch type, public IP, a task size from `reservation`), Fargate Spot (network ids as intrinsics, no
/// notification per failure, a custom failure-rate alarm) and a capacity provider strategy.
#[test]
fn fargate_capacities() {
    for (name, config) in [
        ("fargate", "tests/configs/fargate.json"),
        ("fargate_spot", "tests/configs/fargate-spot.json"),
        ("strategy", "tests/configs/strategy.json"),
    ] {
        insta::assert_json_snapshot!(name, generate(config).json());
    }
}

#[test]
fn seed_s3_bucket_example_merged_with_its_service_template() {
    let watchbot = generate("../../examples/s3-bucket/watchbot.json");
    let service = read_json("../../examples/s3-bucket/service.template.json");
    let merged = merge(&[service, watchbot.to_json()]).expect("the seed example merges");
    insta::assert_json_snapshot!("s3_bucket", merged);
}

#[test]
fn output_is_byte_for_byte_deterministic() {
    let first = serde_json::to_string(generate("tests/configs/everything.json").json()).unwrap();
    for _ in 0..5 {
        assert_eq!(serde_json::to_string(generate("tests/configs/everything.json").json()).unwrap(), first);
    }
}
