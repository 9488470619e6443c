//! The worker container the options describe, runner-neutral: the options' `env`, `command`, `mounts`, `privileged`
//! and `reservation` as one [`WorkerContainer`]. It is the one mapping of those options: the template's worker task
//! definition writes it in ECS's terms (`build.rs`), and a local container runner (`watchbot local --image`) takes its
//! [`literal`](WorkerContainer::literal) form in the Docker Engine's terms, so the two cannot drift.

use crate::error::Error;
use crate::options::Options;
use serde_json::Value;
use std::collections::BTreeMap;

/// Soft memory reservation of the worker when `reservation` gives none: ECS on EC2 needs one of Memory and
/// MemoryReservation, and the original's empty default made stacks fail to create.
pub const DEFAULT_WORKER_SOFT_MEMORY: u64 = 512;

/// A host folder mounted into the worker container (the task definition's `Volumes` and `MountPoints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host path.
    pub host: String,
    /// Where it appears in the container.
    pub container: String,
    /// Whether the container may only read it (`mounts` are always read-write, as in the original).
    pub read_only: bool,
}

/// The worker container's settings from the options. Values are JSON: a literal, or a CloudFormation intrinsic.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerContainer {
    /// The options' `env` (the template adds `WorkTopic`, `LogGroup`, `ProgressTable`; the watcher adds the message).
    pub env: BTreeMap<String, Value>,
    /// Overrides the image's CMD: an array of strings (a `command` string is already `["/bin/sh", "-c", it]`).
    pub command: Option<Value>,
    /// Host folders mounted read-write.
    pub mounts: Vec<Mount>,
    /// Whether the container runs privileged.
    pub privileged: bool,
    /// The hard memory limit in MiB (`reservation.memory`): the container is killed above it.
    pub memory: Option<Value>,
    /// The soft memory reservation in MiB (`reservation.softMemory`, or [`DEFAULT_WORKER_SOFT_MEMORY`] when no
    /// memory is given at all).
    pub memory_reservation: Option<Value>,
    /// CPU units (`reservation.cpu`, 1024 = one vCPU): ECS's `Cpu`, which ECS passes to Docker as CPU shares.
    pub cpu: Option<Value>,
}

/// [`WorkerContainer`] with every value a literal: what a runner without CloudFormation can apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiteralContainer {
    /// The options' `env`.
    pub env: BTreeMap<String, String>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// Host folders mounted.
    pub mounts: Vec<Mount>,
    /// Whether the container runs privileged.
    pub privileged: bool,
    /// Hard memory limit, MiB.
    pub memory_mib: Option<u64>,
    /// Soft memory reservation, MiB.
    pub memory_reservation_mib: Option<u64>,
    /// CPU units (Docker CPU shares).
    pub cpu_units: Option<u64>,
}

impl WorkerContainer {
    /// The worker container of these options.
    pub fn from_options(o: &Options) -> WorkerContainer {
        let r = &o.reservation;
        let memory_reservation = match (&r.soft_memory, &r.memory) {
            (Some(soft), _) => Some(soft.clone()),
            (None, None) => Some(Value::from(DEFAULT_WORKER_SOFT_MEMORY)),
            (None, Some(_)) => None,
        };
        WorkerContainer {
            env: o.env.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
            command: o.command.clone(),
            mounts: o
                .mounts
                .iter()
                .map(|(host, container)| Mount { host: host.clone(), container: container.clone(), read_only: false })
                .collect(),
            privileged: o.privileged,
            memory: r.memory.clone(),
            memory_reservation,
            cpu: r.cpu.clone(),
        }
    }

    /// The same settings as literals; a CloudFormation intrinsic (`{"Ref": ...}`) is an error naming its option,
    /// since nothing outside a stack can resolve it.
    pub fn literal(&self) -> Result<LiteralContainer, Error> {
        let mut env = BTreeMap::new();
        for (name, value) in &self.env {
            env.insert(name.clone(), string(&format!("env.{name}"), value)?);
        }
        let command = match &self.command {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| string(&format!("command[{i}]"), item))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => return Err(not_literal("command", other)),
        };
        Ok(LiteralContainer {
            env,
            command,
            mounts: self.mounts.clone(),
            privileged: self.privileged,
            memory_mib: self.memory.as_ref().map(|v| number("reservation.memory", v)).transpose()?,
            memory_reservation_mib: self
                .memory_reservation
                .as_ref()
                .map(|v| number("reservation.softMemory", v))
                .transpose()?,
            cpu_units: self.cpu.as_ref().map(|v| number("reservation.cpu", v)).transpose()?,
        })
    }
}

fn string(option: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(not_literal(option, other)),
    }
}

fn number(option: &str, value: &Value) -> Result<u64, Error> {
    value.as_u64().ok_or_else(|| not_literal(option, value))
}

fn not_literal(option: &str, value: &Value) -> Error {
    Error::invalid(
        option.to_string(),
        format!("{value} is a CloudFormation expression, which only a deployed stack resolves; give a literal value"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(extra: Value) -> Options {
        let mut base = json!({"cluster": "c", "service": "s", "serviceVersion": "v1", "notificationEmail": "a@b.c"});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Options::from_value(&base).unwrap()
    }

    #[test]
    fn literal_options_become_a_literal_container() {
        let o = options(json!({
            "env": {"A": "1", "B": 2}, "command": "echo hi", "mounts": "/h:/c", "privileged": true,
            "reservation": {"memory": 256, "cpu": 512},
        }));
        let literal = WorkerContainer::from_options(&o).literal().unwrap();
        assert_eq!(literal.env, BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]));
        assert_eq!(literal.command, Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]));
        assert_eq!(literal.mounts, vec![Mount { host: "/h".into(), container: "/c".into(), read_only: false }]);
        assert!(literal.privileged);
        assert_eq!(
            (literal.memory_mib, literal.memory_reservation_mib, literal.cpu_units),
            (Some(256), None, Some(512))
        );
        let default = WorkerContainer::from_options(&options(json!({}))).literal().unwrap();
        assert_eq!(default.memory_reservation_mib, Some(DEFAULT_WORKER_SOFT_MEMORY));
    }

    #[test]
    fn an_intrinsic_is_an_error_naming_its_option() {
        let o = options(json!({"env": {"Bucket": {"Ref": "Bucket"}}}));
        let error = WorkerContainer::from_options(&o).literal().unwrap_err().to_string();
        assert!(error.contains("env.Bucket") && error.contains("CloudFormation expression"), "{error}");
        let o = options(json!({"reservation": {"cpu": {"Ref": "Cpu"}}}));
        let error = WorkerContainer::from_options(&o).literal().unwrap_err().to_string();
        assert!(error.contains("reservation.cpu"), "{error}");
    }
}
