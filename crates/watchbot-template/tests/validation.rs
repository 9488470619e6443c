//! Options that must be rejected, each with one line naming the option; and options whose effect is checked on the
//! generated template (what each option emits).

use serde_json::{Value, json};
use watchbot_template::{BillingMode, Options, template};

/// The smallest valid config; each case changes it.
fn base() -> Value {
    json!({
        "cluster": "processing",
        "service": "my-worker",
        "serviceVersion": "v1",
        "notificationEmail": "alerts@example.com",
    })
}

/// `base()` with `changes` applied (`null` removes a key), parsed: the error text must contain `expected`, be one
/// line, and name the option.
fn check(changes: Value, expected: &str) {
    let mut config = base();
    for (key, value) in changes.as_object().expect("changes are an object") {
        if value.is_null() {
            config.as_object_mut().unwrap().remove(key);
        } else {
            config[key] = value.clone();
        }
    }
    let error = match Options::from_value(&config).and_then(|options| template(&options)) {
        Ok(_) => panic!("config {config} was accepted; expected an error containing {expected:?}"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(expected), "config {config}\n  error: {error}\n  expected to contain: {expected}");
    assert!(!error.contains('\n'), "error is not one line: {error}");
}

#[test]
fn bad_options_are_rejected_naming_the_option() {
    let cases: &[(Value, &str)] = &[
        // Unknown options, with a hint for typos.
        (json!({"wrokers": 5}), "unknown option \"wrokers\", did you mean \"workers\"?"),
        (json!({"webbhookKey": true}), "unknown option \"webbhookKey\", did you mean \"webhookKey\"?"),
        (json!({"colour": "blue"}), "unknown option \"colour\" (expected one of: cluster, service,"),
        // Missing required options.
        (json!({"service": null}), "missing option \"service\""),
        (json!({"cluster": null}), "missing option \"cluster\""),
        (json!({"serviceVersion": null}), "missing option \"serviceVersion\""),
        (json!({"notificationEmail": null}), "missing option \"notificationEmail (or notificationTopic)\""),
        // Wrong types.
        (json!({"workers": "5"}), "option \"workers\": expected a whole number, got a string \"5\""),
        (json!({"workers": 1.5}), "option \"workers\": must be a whole number from 1 to 10000, got 1.5"),
        (json!({"reduce": "yes"}), "option \"reduce\": expected true or false, got a string \"yes\""),
        (json!({"backoff": "false"}), "option \"backoff\": expected true or false"),
        (json!({"service": 7}), "option \"service\": expected a string, got a number 7"),
        (json!({"cluster": {"name": "x"}}), "option \"cluster\": expected a string or a CloudFormation intrinsic"),
        (json!({"cluster": {"Ref": "A", "Fn::Sub": "b"}}), "option \"cluster\": expected a string or a"),
        (json!({"serviceVersion": 3}), "option \"serviceVersion\": expected a string or a CloudFormation intrinsic"),
        (json!({"env": ["A=1"]}), "option \"env\": expected an object of variables"),
        (json!({"env": {"A": {"x": 1}}}), "option \"env.A\": expected a string or a CloudFormation intrinsic"),
        (json!({"env": {"A B": "1"}}), "option \"env.A B\": a variable name has only letters, digits and _"),
        (json!({"env": {"MessageId": "1"}}), "option \"env.MessageId\": is set by watchbot itself"),
        (json!({"env": {"WorkTopic": "x"}}), "option \"env.WorkTopic\": is set by watchbot itself"),
        (json!({"permissions": {"Effect": "Allow"}}), "option \"permissions\": expected an array of IAM statements"),
        (
            json!({"permissions": [{"PolicyDocument": {"Statement": []}}]}),
            "option \"permissions[0]\": give the statements themselves, not a policy document",
        ),
        (json!({"permissions": [{"Effect": "Allow", "Resource": "*"}]}), "option \"permissions[0]\": needs \"Action\""),
        (
            json!({"permissions": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Effect": "allow"}]}),
            "option \"permissions[1]\": needs \"Effect\": \"Allow\" or \"Deny\"",
        ),
        (json!({"command": []}), "option \"command\": expected a command line or a non-empty array of strings"),
        (json!({"command": [1]}), "option \"command[0]\": expected a string or a CloudFormation intrinsic"),
        // Out of range, against SQS/CloudWatch/ECS limits.
        (json!({"workers": 0}), "option \"workers\": must be a whole number from 1 to 10000, got 0"),
        (json!({"watchers": 0}), "option \"watchers\": must be a whole number from 1 to 10000, got 0"),
        (json!({"messageTimeout": 0}), "option \"messageTimeout\": must be a whole number from 1 to 43200"),
        (json!({"messageTimeout": 43201}), "option \"messageTimeout\": must be a whole number from 1 to 43200"),
        (json!({"messageRetention": 59}), "option \"messageRetention\": must be a whole number from 60 to 1209600"),
        (json!({"deadLetterThreshold": 1001}), "option \"deadLetterThreshold\": must be a whole number from 1 to 1000"),
        (json!({"alarmPeriods": 289}), "option \"alarmPeriods\": must be a whole number from 1 to 288"),
        (json!({"reservation": {"memory": 0}}), "option \"reservation.memory\": expected a positive whole number"),
        (json!({"reservation": {"memory": 4}}), "option \"reservation.memory\": ECS needs at least 6 MiB"),
        (json!({"reservation": {"mem": 512}}), "option \"reservation.mem\": unknown key"),
        (
            json!({"reservation": {"memory": 512, "softMemory": 1024}}),
            "option \"reservation.softMemory\": must be below reservation.memory (512 MiB), got 1024",
        ),
        // Malformed names and paths.
        (json!({"mounts": "/data"}), "option \"mounts\": entry \"/data\" is not host:container"),
        (json!({"mounts": "/a:/b:/c"}), "option \"mounts\": entry \"/a:/b:/c\" is not host:container"),
        (json!({"mounts": "data:/data"}), "option \"mounts\": entry \"data:/data\" is not host:container"),
        (json!({"mounts": "/a:/data,/b:/data"}), "option \"mounts\": container path /data is mounted twice"),
        (json!({"mounts": ["/a:/b"]}), "option \"mounts\": expected \"host:container,...\""),
        (json!({"service": "My Worker"}), "option \"service\": \"My Worker\" is not an ECR repository name"),
        (json!({"service": ""}), "option \"service\": must not be empty"),
        (json!({"prefix": "my-bot"}), "option \"prefix\": \"my-bot\" must be letters and digits"),
        (json!({"prefix": "1st"}), "option \"prefix\": \"1st\" must be letters and digits, starting with a letter"),
        (json!({"cluster": "my cluster"}), "option \"cluster\": \"my cluster\" is neither a cluster ARN nor"),
        (json!({"kmsKey": "alias/secrets"}), "option \"kmsKey\": expected a KMS key ARN"),
        // Contradictory options.
        (
            json!({"notificationTopic": "arn:aws:sns:us-east-1:123456789012:alerts"}),
            "options \"notificationEmail\" and \"notificationTopic\": give one",
        ),
        (json!({"webhookKey": true}), "options \"webhookKey\" and \"webhook\": webhookKey needs webhook: true"),
        (
            json!({"readCapacityUnits": 5}),
            "options \"readCapacityUnits\" and \"reduce\": the progress table exists only with reduce: true",
        ),
        (json!({"writeCapacityUnits": 5, "reduce": false}), "options \"writeCapacityUnits\" and \"reduce\""),
        (json!({"billingMode": "PROVISIONED"}), "options \"billingMode\" and \"reduce\""),
        (
            json!({"reduce": true, "billingMode": "PAY_PER_REQUEST", "writeCapacityUnits": 5}),
            "options \"writeCapacityUnits\" and \"billingMode\": capacity units go with billingMode PROVISIONED",
        ),
        (
            json!({"reduce": true, "billingMode": "on-demand"}),
            "option \"billingMode\": expected \"PAY_PER_REQUEST\" or \"PROVISIONED\", got \"on-demand\"",
        ),
        (
            json!({"notifyAfterRetries": 10}),
            "options \"notifyAfterRetries\" and \"deadLetterThreshold\": notifyAfterRetries (10) must be below",
        ),
    ];
    for (changes, expected) in cases {
        check(changes.clone(), expected);
    }
}

#[test]
fn configs_that_are_not_objects_are_rejected() {
    assert_eq!(
        Options::from_json_str("[1]").unwrap_err().to_string(),
        "config must be a JSON object of options, got an array"
    );
    let error = Options::from_json_str("{\"workers\": ").unwrap_err().to_string();
    assert!(error.starts_with("config is not valid JSON: "), "{error}");
}

#[test]
fn a_config_with_a_key_twice_is_refused_naming_it() {
    // serde_json alone keeps the last value silently: the stack would deploy whichever came second.
    let error = Options::from_json_str(r#"{"service": "a", "serviceVersion": "1", "service": "b"}"#).unwrap_err();
    assert!(
        error.to_string().starts_with(r#"config is not valid JSON: the key "service" appears twice ($.service)"#),
        "{error}"
    );
}

fn generate(changes: Value) -> Value {
    let mut config = base();
    for (key, value) in changes.as_object().unwrap() {
        config[key] = value.clone();
    }
    template(&Options::from_value(&config).unwrap()).unwrap().to_json()
}

fn statements(template: &Value, role: &str) -> Vec<Value> {
    template["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect()
}

fn actions(template: &Value, role: &str) -> Vec<String> {
    let mut actions = Vec::new();
    for statement in statements(template, role) {
        match &statement["Action"] {
            Value::String(a) => actions.push(a.clone()),
            Value::Array(list) => actions.extend(list.iter().map(|a| a.as_str().unwrap().to_string())),
            _ => {}
        }
    }
    actions
}

#[test]
fn defaults_follow_the_seed() {
    let options = Options::from_value(&base()).unwrap();
    assert_eq!(
        (options.workers, options.watchers, options.message_timeout, options.message_retention),
        (1, 1, 600, 1_209_600)
    );
    assert_eq!((options.alarm_threshold, options.alarm_periods, options.dead_letter_threshold), (40, 24, 10));
    // Not the seed's: on demand (README, "Templates"), with the seed's 30/30 when provisioned without numbers.
    assert_eq!(options.billing_mode, BillingMode::PayPerRequest);
    assert_eq!(options.prefix, "Watchbot");
    assert_eq!(options.watchbot_version, json!(watchbot_template::DEFAULT_WATCHBOT_VERSION));
    assert!(options.backoff && !options.user && !options.webhook && !options.reduce && !options.privileged);
}

#[test]
fn no_kms_permission_without_kms_key_and_decrypt_on_that_key_alone_with_it() {
    let plain = generate(json!({}));
    assert!(!actions(&plain, "WatchbotWorkerRole").iter().any(|a| a.starts_with("kms:")));
    let key = "arn:aws:kms:us-east-1:123456789012:key/abc";
    let with_key = generate(json!({"kmsKey": key}));
    let kms: Vec<Value> = statements(&with_key, "WatchbotWorkerRole")
        .into_iter()
        .filter(|s| s["Action"].as_str().is_some_and(|a| a.starts_with("kms:")))
        .collect();
    assert_eq!(kms, vec![json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key})]);
}

#[test]
fn the_watcher_reads_its_log_group_with_get_log_events_alone() {
    let template = generate(json!({}));
    let logs: Vec<Value> = statements(&template, "WatchbotWatcherRole")
        .into_iter()
        .filter(|s| s["Action"].to_string().contains("logs:"))
        .collect();
    assert_eq!(
        logs,
        vec![json!({
            "Effect": "Allow",
            "Action": "logs:GetLogEvents",
            "Resource": {"Fn::GetAtt": ["WatchbotLogGroup", "Arn"]},
        })]
    );
}

#[test]
fn every_policy_has_a_version_and_no_star_resource_where_the_arn_is_known() {
    let template = generate(json!({"user": true, "webhook": true, "webhookKey": true, "reduce": true,
        "capacity": "FARGATE", "subnets": ["subnet-1"], "securityGroups": ["sg-1"]}));
    let mut checked = 0;
    for (id, resource) in template["Resources"].as_object().unwrap() {
        let properties = &resource["Properties"];
        let mut documents = Vec::new();
        if let Some(policies) = properties["Policies"].as_array() {
            documents.extend(policies.iter().map(|p| p["PolicyDocument"].clone()));
        }
        for key in ["PolicyDocument", "AssumeRolePolicyDocument"] {
            if properties[key].is_object() {
                documents.push(properties[key].clone());
            }
        }
        for document in documents {
            assert_eq!(document["Version"], "2012-10-17", "{id}");
            for statement in document["Statement"].as_array().unwrap() {
                checked += 1;
                if statement["Resource"] == "*" && statement["Action"] == "ecr:GetAuthorizationToken" {
                    // Fargate's execution role: the ECR token has no resource type either.
                    assert_eq!(id, "WatchbotExecutionRole");
                } else if statement["Resource"] == "*" {
                    // The exception: ecs:ListTasks has no resource type; it is held to the cluster instead.
                    assert_eq!(statement["Action"], "ecs:ListTasks", "{id}: {statement}");
                    assert!(statement["Condition"]["ArnEquals"]["ecs:cluster"].is_object(), "{id}: {statement}");
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} statements checked");
}

#[test]
fn reduce_mode_adds_the_table_its_permissions_and_the_worker_variable() {
    let plain = generate(json!({}));
    assert!(plain["Resources"]["WatchbotProgressTable"].is_null());
    assert!(!actions(&plain, "WatchbotWorkerRole").iter().any(|a| a.starts_with("dynamodb:")));

    // Capacity without a mode: provisioned, as the original's options meant.
    let reduce = generate(json!({"reduce": true, "readCapacityUnits": 7, "writeCapacityUnits": 9}));
    let table = &reduce["Resources"]["WatchbotProgressTable"]["Properties"];
    assert_eq!(table["KeySchema"], json!([{"AttributeName": "id", "KeyType": "HASH"}]));
    assert_eq!(table["AttributeDefinitions"], json!([{"AttributeName": "id", "AttributeType": "S"}]));
    assert_eq!(table["BillingMode"], "PROVISIONED");
    assert_eq!(table["ProvisionedThroughput"], json!({"ReadCapacityUnits": 7, "WriteCapacityUnits": 9}));
    let provisioned = generate(json!({"reduce": true, "billingMode": "PROVISIONED", "writeCapacityUnits": 9}));
    assert_eq!(
        provisioned["Resources"]["WatchbotProgressTable"]["Properties"]["ProvisionedThroughput"],
        json!({"ReadCapacityUnits": 30, "WriteCapacityUnits": 9})
    );
    for options in [json!({"reduce": true}), json!({"reduce": true, "billingMode": "PAY_PER_REQUEST"})] {
        let table = &generate(options)["Resources"]["WatchbotProgressTable"]["Properties"];
        assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
        assert!(table.get("ProvisionedThroughput").is_none(), "{table}");
    }
    let dynamo: Vec<Value> = statements(&reduce, "WatchbotWorkerRole")
        .into_iter()
        .filter(|s| s["Resource"] == json!({"Fn::GetAtt": ["WatchbotProgressTable", "Arn"]}))
        .collect();
    assert_eq!(dynamo[0]["Action"], json!(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]));
    let env = &reduce["Resources"]["WatchbotWorker"]["Properties"]["ContainerDefinitions"][0]["Environment"];
    assert!(
        env.as_array().unwrap().contains(&json!({"Name": "ProgressTable", "Value": {"Ref": "WatchbotProgressTable"}}))
    );
}

#[test]
fn watcher_environment_is_exactly_the_architecture_table() {
    let watchbot = template(&Options::from_value(&base()).unwrap()).unwrap();
    let env = watchbot.watcher_environment();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "Cluster",
            "Concurrency",
            "ContainerName",
            "DeadLetterQueueUrl",
            "ExponentialBackoff",
            "LogGroup",
            "LogLevel",
            "MessageTimeout",
            "NotificationTopic",
            "NotifyAfterRetries",
            "QueueUrl",
            "StackName",
            "TaskDefinition",
            "WorkTopic",
        ]
    );
    assert_eq!(env["Cluster"], "processing");
    assert_eq!(env["Concurrency"], "1");
    assert_eq!(env["ContainerName"], watchbot_template::WORKER_CONTAINER);
    assert_eq!(env["ExponentialBackoff"], "true");
    assert_eq!(env["LogLevel"], "info");
    assert_eq!(env["MessageTimeout"], "600");
    assert_eq!(env["NotificationTopic"], json!({"Ref": "WatchbotNotificationTopic"}));
    // The free function reads the same thing out of plain JSON.
    assert_eq!(watchbot_template::watcher_environment(watchbot.json(), "Watchbot"), Some(env));

    let tuned = generate(json!({"workers": 4, "backoff": false, "debugLogs": true, "notifyAfterRetries": 3}));
    let env = watchbot_template::watcher_environment(&tuned, "Watchbot").unwrap();
    assert_eq!((&env["Concurrency"], &env["ExponentialBackoff"]), (&json!("4"), &json!("false")));
    assert_eq!((&env["LogLevel"], &env["NotifyAfterRetries"]), (&json!("debug"), &json!("3")));
}

#[test]
fn worker_container_reflects_its_options() {
    let template = generate(json!({
        "command": "render --all",
        "mounts": "/mnt/a:/a, /mnt/b:/b",
        "privileged": true,
        "reservation": {"cpu": 256},
        "env": {"Zoom": 14, "Debug": true, "Bucket": {"Ref": "Bucket"}},
    }));
    let worker = &template["Resources"]["WatchbotWorker"]["Properties"];
    let container = &worker["ContainerDefinitions"][0];
    assert_eq!(container["Command"], json!(["/bin/sh", "-c", "render --all"]));
    assert_eq!(container["Privileged"], true);
    assert_eq!(container["Cpu"], 256);
    assert_eq!(container["MemoryReservation"], 512, "a default soft reservation so the task can be placed");
    assert_eq!(
        worker["Volumes"],
        json!([
            {"Name": "mount0", "Host": {"SourcePath": "/mnt/a"}},
            {"Name": "mount1", "Host": {"SourcePath": "/mnt/b"}},
        ])
    );
    assert_eq!(
        container["MountPoints"][1],
        json!({"SourceVolume": "mount1", "ContainerPath": "/b", "ReadOnly": false})
    );
    let env = container["Environment"].as_array().unwrap();
    assert!(env.contains(&json!({"Name": "Zoom", "Value": "14"})));
    assert!(env.contains(&json!({"Name": "Debug", "Value": "true"})));
    assert!(env.contains(&json!({"Name": "Bucket", "Value": {"Ref": "Bucket"}})));
    assert!(env.contains(&json!({"Name": "WorkTopic", "Value": {"Ref": "WatchbotTopic"}})));
    assert!(env.contains(&json!({"Name": "LogGroup", "Value": {"Ref": "WatchbotLogGroup"}})));
    assert_eq!(
        container["Image"],
        json!({"Fn::Sub": ["${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/my-worker:${Version}", {"Version": "v1"}]})
    );
}

#[test]
fn queue_has_redrive_to_the_dead_letter_queue() {
    let template = generate(json!({"deadLetterThreshold": 3, "messageTimeout": 900}));
    let queue = &template["Resources"]["WatchbotQueue"]["Properties"];
    assert_eq!(queue["VisibilityTimeout"], 900);
    assert_eq!(
        queue["RedrivePolicy"],
        json!({"deadLetterTargetArn": {"Fn::GetAtt": ["WatchbotDeadLetterQueue", "Arn"]}, "maxReceiveCount": 3})
    );
}

#[test]
fn optional_features_add_their_refs_only_when_enabled() {
    let plain = template(&Options::from_value(&base()).unwrap()).unwrap();
    let names: Vec<&str> = plain.refs().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["deadLetterQueueUrl", "logGroup", "notificationTopic", "queueArn", "queueName", "queueUrl", "topic"]
    );
    let mut config = base();
    for key in ["user", "webhook", "webhookKey", "reduce"] {
        config[key] = json!(true);
    }
    let full = template(&Options::from_value(&config).unwrap()).unwrap();
    for name in ["webhookEndpoint", "webhookKey", "accessKeyId", "secretAccessKey", "progressTable"] {
        assert!(full.refs().contains_key(name), "{name}");
    }
    assert_eq!(full.refs()["secretAccessKey"], json!({"Fn::GetAtt": ["WatchbotUserKey", "SecretAccessKey"]}));
    // Webhook without a key: the method is open and there is no key or usage plan.
    config["webhookKey"] = json!(false);
    let open = template(&Options::from_value(&config).unwrap()).unwrap();
    assert!(!open.refs().contains_key("webhookKey"));
    assert_eq!(open.json()["Resources"]["WatchbotWebhookMethod"]["Properties"]["ApiKeyRequired"], false);
    assert!(open.json()["Resources"]["WatchbotWebhookUsagePlan"].is_null());
}

#[test]
fn outputs_are_the_refs_without_secrets_and_exports_take_a_prefix() {
    let generate_with = |outputs: Value| {
        let mut config = base();
        config["user"] = json!(true);
        config["outputs"] = outputs;
        template(&Options::from_value(&config).unwrap()).unwrap().to_json()
    };
    let plain = generate_with(json!(true));
    let outputs = plain["Outputs"].as_object().unwrap();
    assert_eq!(outputs["WatchbotQueueUrl"]["Value"], json!({ "Ref": "WatchbotQueue" }));
    assert!(outputs["WatchbotQueueUrl"].get("Export").is_none());
    assert!(outputs.contains_key("WatchbotAccessKeyId"));
    assert!(!outputs.keys().any(|k| k.contains("Secret")), "a secret is never an output: {outputs:?}");
    let exported = generate_with(json!("tiles-"));
    assert_eq!(exported["Outputs"]["WatchbotTopic"]["Export"]["Name"], "tiles-WatchbotTopic");
    assert!(generate_with(json!(false)).get("Outputs").is_none());
    check(json!({ "outputs": "bad prefix!" }), "option \"outputs\": \"bad prefix!\" is not an export name prefix");
    check(json!({ "outputs": 3 }), "option \"outputs\": expected true, false or an export name prefix");
}
