//! `capacity`, `subnets`, `securityGroups`, `assignPublicIp`: what Fargate, Fargate Spot and a strategy emit, and
//! the one-line errors of options that do not go together.

use serde_json::{Value, json};
use watchbot_template::{Options, template, watcher_environment};

fn config(changes: Value) -> Value {
    let mut config = json!({
        "cluster": "processing",
        "service": "my-worker",
        "serviceVersion": "v1",
        "notificationEmail": "alerts@example.com",
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroups": ["sg-1"],
        "capacity": "FARGATE",
    });
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            config.as_object_mut().unwrap().remove(key);
        } else {
            config[key] = value.clone();
        }
    }
    config
}

fn generate(changes: Value) -> Value {
    template(&Options::from_value(&config(changes)).expect("options")).expect("template").to_json()
}

fn error(changes: Value) -> String {
    match Options::from_value(&config(changes)).and_then(|o| template(&o)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fargate_task_definitions_run_in_awsvpc_with_a_task_size_and_the_execution_role() {
    let t = generate(json!({"reservation": {"cpu": 512, "memory": 2048, "softMemory": 1024}}));
    let resources = &t["Resources"];
    let worker = &resources["WatchbotWorker"]["Properties"];
    assert_eq!(worker["RequiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(worker["NetworkMode"], "awsvpc");
    assert_eq!((&worker["Cpu"], &worker["Memory"]), (&json!("512"), &json!("2048")));
    assert_eq!(worker["ExecutionRoleArn"], json!({"Fn::GetAtt": ["WatchbotExecutionRole", "Arn"]}));
    // The task's size is the limit: no container-level reservation.
    let container = &worker["ContainerDefinitions"][0];
    for key in ["Memory", "MemoryReservation", "Cpu"] {
        assert!(container.get(key).is_none(), "{key}: {container}");
    }
    let watcher = &resources["WatchbotWatcher"]["Properties"];
    assert_eq!((&watcher["Cpu"], &watcher["Memory"]), (&json!("256"), &json!("512")));
    assert_eq!(watcher["NetworkMode"], "awsvpc");
    assert_eq!(watcher["ExecutionRoleArn"], worker["ExecutionRoleArn"]);

    // The execution role pulls the two images and writes the log group; the watcher may pass it.
    let statements = &resources["WatchbotExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let actions: Vec<&Value> = statements.as_array().unwrap().iter().map(|s| &s["Action"]).collect();
    assert_eq!(actions[0], "ecr:GetAuthorizationToken");
    assert_eq!(statements[1]["Resource"].as_array().unwrap().len(), 2);
    assert_eq!(statements[2]["Resource"], json!({"Fn::GetAtt": ["WatchbotLogGroup", "Arn"]}));
    let watcher_statements =
        resources["WatchbotWatcherRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].clone();
    let pass = watcher_statements.as_array().unwrap().iter().find(|s| s["Action"] == "iam:PassRole").unwrap().clone();
    assert_eq!(
        pass["Resource"],
        json!([{"Fn::GetAtt": ["WatchbotWorkerRole", "Arn"]}, {"Fn::GetAtt": ["WatchbotExecutionRole", "Arn"]}])
    );

    let service = &resources["WatchbotService"]["Properties"];
    assert_eq!(service["LaunchType"], "FARGATE");
    assert_eq!(
        service["NetworkConfiguration"],
        json!({"AwsvpcConfiguration": {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroups": ["sg-1"],
            "AssignPublicIp": "DISABLED"}})
    );
    let env = watcher_environment(&t, "Watchbot").unwrap();
    assert_eq!(env["LaunchType"], "FARGATE");
    assert_eq!(env["Subnets"], "subnet-1,subnet-2");
    assert_eq!(env["SecurityGroups"], "sg-1");
    assert_eq!(env["AssignPublicIp"], "false");
    assert!(!env.contains_key("CapacityProviderStrategy"));
}

#[test]
fn fargate_spot_and_strategies_are_capacity_provider_strategies() {
    let spot = generate(json!({"capacity": "FARGATE_SPOT", "assignPublicIp": true}));
    let service = &spot["Resources"]["WatchbotService"]["Properties"];
    assert_eq!(
        service["CapacityProviderStrategy"],
        json!([{"CapacityProvider": "FARGATE_SPOT", "Weight": 1, "Base": 0}])
    );
    assert!(service.get("LaunchType").is_none());
    assert_eq!(service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"], "ENABLED");
    let env = watcher_environment(&spot, "Watchbot").unwrap();
    assert_eq!(env["CapacityProviderStrategy"], "FARGATE_SPOT:1:0");
    assert_eq!(env["AssignPublicIp"], "true");
    assert!(!env.contains_key("LaunchType"));

    let strategy = generate(json!({"capacity": [
        {"capacityProvider": "FARGATE", "base": 2},
        {"capacityProvider": "FARGATE_SPOT", "weight": 4},
    ]}));
    let env = watcher_environment(&strategy, "Watchbot").unwrap();
    assert_eq!(env["CapacityProviderStrategy"], "FARGATE:1:2,FARGATE_SPOT:4:0");

    // Auto Scaling group providers run on EC2 instances: no awsvpc, no network options.
    let asg = generate(json!({"capacity": [{"capacityProvider": {"Ref": "Provider"}, "weight": 1}], "subnets": null,
        "securityGroups": null}));
    let worker = &asg["Resources"]["WatchbotWorker"]["Properties"];
    assert!(worker.get("NetworkMode").is_none() && asg["Resources"]["WatchbotExecutionRole"].is_null());
    let env = watcher_environment(&asg, "Watchbot").unwrap();
    assert_eq!(
        env["CapacityProviderStrategy"],
        json!({"Fn::Join": [",", [{"Fn::Join": [":", [{"Ref": "Provider"}, "1", "0"]]}]]})
    );
    assert!(!env.contains_key("Subnets"));
}

#[test]
fn network_ids_may_be_intrinsics() {
    let list = json!({"Fn::Split": [",", {"Fn::ImportValue": "subnets"}]});
    let t = generate(json!({"subnets": list, "securityGroups": [{"Ref": "Group"}, "sg-2"]}));
    let vpc = &t["Resources"]["WatchbotService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"];
    assert_eq!(vpc["Subnets"], list);
    let env = watcher_environment(&t, "Watchbot").unwrap();
    assert_eq!(env["Subnets"], json!({"Fn::Join": [",", list]}));
    assert_eq!(env["SecurityGroups"], json!({"Fn::Join": [",", [{"Ref": "Group"}, "sg-2"]]}));
}

#[test]
fn ec2_stays_as_it_was() {
    let ec2 = generate(json!({"capacity": "EC2", "subnets": null, "securityGroups": null}));
    let default = generate(json!({"capacity": null, "subnets": null, "securityGroups": null}));
    assert_eq!(ec2, default);
    assert!(default["Resources"]["WatchbotService"]["Properties"].get("LaunchType").is_none());
    assert!(!watcher_environment(&default, "Watchbot").unwrap().contains_key("LaunchType"));
}

#[test]
fn options_that_do_not_go_together_are_one_line_errors() {
    let cases = [
        (json!({"subnets": null}), "option \"subnets\": is required with Fargate capacity"),
        (json!({"securityGroups": null}), "option \"securityGroups\": is required with Fargate capacity"),
        (json!({"capacity": "FARGATE_SPOT", "subnets": null}), "option \"subnets\": is required with Fargate"),
        (
            json!({"capacity": "EC2", "subnets": null, "securityGroups": null, "assignPublicIp": false}),
            "option \"assignPublicIp\": only applies to Fargate capacity",
        ),
        (json!({"capacity": null, "securityGroups": null}), "option \"subnets\": only applies to Fargate capacity"),
        (
            json!({"reservation": {"cpu": 256, "memory": 4096}}),
            "option \"reservation\": cpu 256 with memory 4096 MiB is not a Fargate task size (cpu 256 takes 512 to 2048 MiB in steps of 512)",
        ),
        (
            json!({"reservation": {"cpu": 300}}),
            "option \"reservation\": cpu 300 with memory 512 MiB is not a Fargate task size (cpu is one of",
        ),
        (
            json!({"capacity": "SPOT"}),
            "option \"capacity\": expected \"EC2\", \"FARGATE\", \"FARGATE_SPOT\" or an array",
        ),
        (json!({"capacity": []}), "option \"capacity\": a strategy has 1 to 20 capacity providers"),
        (json!({"capacity": [{"weight": 1}]}), "option \"capacity[0]\": needs \"capacityProvider\""),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE", "wieght": 1}]}),
            "option \"capacity[0]\": unknown key \"wieght\"",
        ),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE", "weight": 1001}]}),
            "option \"capacity[0].weight\": expected a whole number from 0 to 1000",
        ),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE", "weight": 0}]}),
            "at least one capacity provider needs a weight above 0",
        ),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE", "base": 1}, {"capacityProvider": "FARGATE_SPOT", "base": 1}]}),
            "only one capacity provider of a strategy may have a base",
        ),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE"}, {"capacityProvider": "FARGATE"}]}),
            "option \"capacity[1].capacityProvider\": is already in the strategy",
        ),
        (
            json!({"capacity": [{"capacityProvider": "FARGATE"}, {"capacityProvider": "my-asg"}]}),
            "cannot mix FARGATE/FARGATE_SPOT with Auto Scaling group",
        ),
        (
            json!({"capacity": [{"capacityProvider": "a:b"}]}),
            "option \"capacity[0].capacityProvider\": \"a:b\" is not a capacity provider name",
        ),
        (json!({"subnets": []}), "option \"subnets\": must not be empty"),
        (json!({"subnets": "subnet-1"}), "option \"subnets\": expected an array of ids"),
        (json!({"securityGroups": [""]}), "option \"securityGroups[0]\": must not be empty"),
        (json!({"mounts": "/a:/b"}), "option \"mounts\": host paths cannot be mounted on Fargate"),
        (json!({"privileged": true}), "option \"privileged\": Fargate runs no privileged containers"),
    ];
    for (changes, expected) in cases {
        let text = error(changes.clone());
        assert!(text.contains(expected), "{changes}: {text}\n  expected: {expected}");
        assert!(!text.contains('\n'), "{text}");
    }
}

#[test]
fn a_fargate_size_given_as_references_falls_back_when_they_are_empty() {
    let t = generate(json!({"reservation": {"cpu": {"Ref": "Cpu"}, "softMemory": {"Ref": "Soft"}}}));
    let worker = &t["Resources"]["WatchbotWorker"]["Properties"];
    assert_eq!(worker["Cpu"], json!({"Fn::If": ["WatchbotHasReservationCpu", {"Ref": "Cpu"}, "256"]}));
    assert_eq!(worker["Memory"], json!({"Fn::If": ["WatchbotHasReservationSoftMemory", {"Ref": "Soft"}, "512"]}));
    assert_eq!(
        t["Conditions"]["WatchbotHasReservationCpu"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "Cpu"}, ""]}]})
    );
}
