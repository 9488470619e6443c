//! `--image`, `--config` and `--pull`, shared by `watchbot local` and `watchbot watch --runner docker`: each message
//! runs as one container of the image, with the options file of `watchbot template` applied to it as the template
//! applies it to the worker task definition (`env`, `command`, `mounts`, `privileged`, `reservation`; through
//! [`watchbot_template::WorkerContainer`], the one mapping of those options), and the check that the Docker Engine
//! answers and has the image, made before anything is received.

use crate::{Exit, Failure};
use std::path::{Path, PathBuf};
use watchbot_template::{LiteralContainer, Options, WorkerContainer};
use watchbot_watcher::local::docker::{Bind, DockerRunner, DockerRunnerConfig};

/// The container runner's flags.
#[derive(Debug, Default, clap::Args)]
pub struct ImageArgs {
    /// Run each message as one container of this image on the Docker Engine (`DOCKER_HOST`, or the default
    /// socket) instead of a command; a command after `--` overrides the image's CMD.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The options file of `watchbot template`: its env, command, mounts, privileged and reservation apply to each
    /// container as they do to the worker task definition.
    #[arg(long, value_name = "OPTIONS.json", requires = "image")]
    pub config: Option<PathBuf>,
    /// Pull the image when it is not on this machine (it is never pulled otherwise).
    #[arg(long, requires = "image")]
    pub pull: bool,
}

/// The container runner's config for these flags: the image, the options file's settings, `command` (after `--`,
/// over the options' `command`), the stack's label, and the Engine's address (`DOCKER_HOST`).
pub fn runner_config(
    args: &ImageArgs,
    image: &str,
    command: &[String],
    stack: &str,
    docker_host: Option<String>,
) -> Result<DockerRunnerConfig, Failure> {
    let mut config = DockerRunnerConfig::new(image, stack);
    if let Some(file) = &args.config {
        apply(&mut config, &literal_container(file)?);
    }
    if !command.is_empty() {
        config.command = Some(command.to_vec());
    }
    config.host = docker_host.filter(|host| !host.is_empty());
    config.pull = args.pull;
    Ok(config)
}

/// The options file's worker container, every value a literal.
pub fn literal_container(file: &Path) -> Result<LiteralContainer, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::from_error(&e).context(format!("cannot read {}", file.display())))?;
    let options = Options::from_json_str(&text).map_err(|e| Failure::from_error(&e).context(file.display()))?;
    WorkerContainer::from_options(&options).literal().map_err(|e| Failure::from_error(&e).context(file.display()))
}

/// The options' container settings, in the container runner's terms.
pub fn apply(config: &mut DockerRunnerConfig, container: &LiteralContainer) {
    config.env = container.env.clone();
    config.command = container.command.clone();
    config.binds.extend(container.mounts.iter().map(|m| Bind {
        host: m.host.clone(),
        container: m.container.clone(),
        read_only: m.read_only,
    }));
    config.privileged = container.privileged;
    config.memory_mib = container.memory_mib;
    config.memory_reservation_mib = container.memory_reservation_mib;
    config.cpu_units = container.cpu_units;
}

/// Connects to the Engine and checks the image (call inside a runtime, before the first receive): one line and
/// exit 69 when no Engine answers, 1 when the image is not there.
pub async fn connect(config: DockerRunnerConfig) -> Result<DockerRunner, Failure> {
    DockerRunner::connect(config).await.map_err(|error| {
        let exit = if error.is_bad_input() { Exit::BadInput } else { Exit::Service };
        Failure::new(error.to_string()).with_exit(exit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use watchbot_watcher::local::docker::create_body;
    use watchbot_watcher::ports::TaskSpec;

    /// The template's worker container definition and the container runner's create request, from the same options,
    /// say the same: the options' environment, the command, the mounts, privileged, memory and CPU.
    #[test]
    fn the_container_and_the_task_definition_agree() {
        let cases = [
            json!({}),
            json!({
                "env": {"Color": "blue", "Count": 3}, "command": ["work", "--hard"], "mounts": "/data:/in,/tmp/x:/out",
                "privileged": true, "reservation": {"memory": 300, "softMemory": 200, "cpu": 256},
            }),
            json!({"command": "echo hi", "reservation": {"memory": 64}}),
        ];
        for extra in cases {
            let mut options =
                json!({"cluster": "c", "service": "worker", "serviceVersion": "v1", "notificationEmail": "a@b.c"});
            options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let parsed = Options::from_value(&options).unwrap();
            let template = watchbot_template::template(&parsed).unwrap().to_json();
            let definition = &template["Resources"]["WatchbotWorker"]["Properties"];
            let container = &definition["ContainerDefinitions"][0];

            let mut config = DockerRunnerConfig::new("worker:v1", "s");
            apply(&mut config, &WorkerContainer::from_options(&parsed).literal().unwrap());
            let body = create_body(&config, &TaskSpec { message_id: "m".into(), env: BTreeMap::new() });
            let host = body.host_config.clone().unwrap();

            // The environment: the template's, less what the template itself adds (the watcher's task env).
            let task_def_env: Vec<String> = container["Environment"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|pair| !["WorkTopic", "LogGroup", "ProgressTable"].contains(&pair["Name"].as_str().unwrap()))
                .map(|pair| format!("{}={}", pair["Name"].as_str().unwrap(), pair["Value"].as_str().unwrap()))
                .collect();
            assert_eq!(body.env.clone().unwrap(), task_def_env, "{options}");
            let command = container.get("Command").map(|c| serde_json::from_value::<Vec<String>>(c.clone()).unwrap());
            assert_eq!(body.cmd, command, "{options}");
            let volumes: BTreeMap<&str, &str> = definition["Volumes"]
                .as_array()
                .map(|v| v.iter().map(|v| (v["Name"].as_str().unwrap(), v["Host"]["SourcePath"].as_str().unwrap())))
                .into_iter()
                .flatten()
                .collect();
            let binds: Vec<String> = container["MountPoints"]
                .as_array()
                .map(|points| {
                    points
                        .iter()
                        .map(|p| {
                            let ro = if p["ReadOnly"] == json!(true) { ":ro" } else { "" };
                            let host = volumes[p["SourceVolume"].as_str().unwrap()];
                            format!("{host}:{}{ro}", p["ContainerPath"].as_str().unwrap())
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(host.binds.unwrap_or_default(), binds, "{options}");
            assert_eq!(host.privileged.unwrap_or(false), container["Privileged"] == json!(true), "{options}");
            let mib = |v: &Value| v.as_i64().map(|n| n * 1024 * 1024);
            assert_eq!(host.memory, mib(&container["Memory"]), "{options}");
            assert_eq!(host.memory_reservation, mib(&container["MemoryReservation"]), "{options}");
            assert_eq!(host.cpu_shares, container["Cpu"].as_i64(), "{options}");
        }
    }

    #[test]
    fn a_command_after_the_separator_overrides_the_options_command() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("watchbot.json");
        let options = json!({"cluster": "c", "service": "w", "serviceVersion": "v1", "notificationEmail": "a@b.c",
                             "command": ["from-options"]});
        std::fs::write(&file, options.to_string()).unwrap();
        let args = ImageArgs { image: Some("w:dev".into()), config: Some(file), pull: false };
        let config = runner_config(&args, "w:dev", &[], "s", None).unwrap();
        assert_eq!(config.command, Some(vec!["from-options".to_string()]));
        let config = runner_config(&args, "w:dev", &["given".into()], "s", Some(String::new())).unwrap();
        assert_eq!((config.command, config.host), (Some(vec!["given".to_string()]), None));
    }

    #[test]
    fn an_expression_in_the_options_is_a_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("watchbot.json");
        let options = json!({"cluster": "c", "service": "w", "serviceVersion": "v1", "notificationEmail": "a@b.c",
                             "env": {"Bucket": {"Ref": "Bucket"}}});
        std::fs::write(&file, options.to_string()).unwrap();
        let error = literal_container(&file).unwrap_err().to_string();
        assert!(error.contains("env.Bucket") && !error.contains('\n'), "{error}");
    }
}
