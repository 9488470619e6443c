//! Where tasks run (`capacity`: EC2, Fargate, Fargate Spot or a capacity provider strategy), the network of Fargate
//! tasks (`subnets`, `securityGroups`, `assignPublicIp`) and the task sizes Fargate accepts (from `reservation`).

use super::raw::{Raw, reference};
use super::{Reservation, describe, is_intrinsic};
use crate::error::Error;
use serde_json::{Map, Value};

/// ECS's limits on a capacity provider strategy item.
const MAX_WEIGHT: u64 = 1000;
const MAX_BASE: u64 = 100_000;
/// ECS takes at most this many capacity providers in one strategy.
const MAX_PROVIDERS: usize = 20;
/// The capacity providers ECS defines for Fargate; any other name is an Auto Scaling group's (EC2).
const FARGATE_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];
/// The watcher's task size on Fargate: the smallest Fargate takes (0.25 vCPU, 512 MiB).
pub const WATCHER_FARGATE_CPU: u64 = 256;
/// See [`WATCHER_FARGATE_CPU`].
pub const WATCHER_FARGATE_MEMORY: u64 = 512;
/// The worker's task size on Fargate when `reservation` gives none.
pub(crate) const DEFAULT_FARGATE_CPU: u64 = 256;
pub(crate) const DEFAULT_FARGATE_MEMORY: u64 = 512;

/// One entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityProvider {
    /// The provider's name (`FARGATE`, `FARGATE_SPOT`, or an Auto Scaling group provider's; a string or intrinsic).
    pub capacity_provider: Value,
    /// Relative share of the tasks (0–1000; default 1).
    pub weight: u64,
    /// Tasks placed on this provider before weights apply (0–100000; default 0).
    pub base: u64,
}

/// Where the watchers and their tasks run (`capacity`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Capacity {
    /// The cluster's EC2 instances (the default, the seed's architecture).
    #[default]
    Ec2,
    /// The `FARGATE` launch type.
    Fargate,
    /// The `FARGATE_SPOT` capacity provider (the cluster must have it associated).
    FargateSpot,
    /// A capacity provider strategy.
    Strategy(Vec<CapacityProvider>),
}

impl Capacity {
    /// Whether tasks run on Fargate (`awsvpc` networking, task-level size, an execution role).
    pub fn is_fargate(&self) -> bool {
        match self {
            Capacity::Ec2 => false,
            Capacity::Fargate | Capacity::FargateSpot => true,
            Capacity::Strategy(providers) => providers.iter().all(is_fargate_provider),
        }
    }

    /// The capacity provider strategy the service and RunTask use; `None` for a launch type.
    pub fn strategy(&self) -> Option<Vec<CapacityProvider>> {
        match self {
            Capacity::Ec2 | Capacity::Fargate => None,
            Capacity::FargateSpot => {
                Some(vec![CapacityProvider { capacity_provider: Value::from("FARGATE_SPOT"), weight: 1, base: 0 }])
            }
            Capacity::Strategy(providers) => Some(providers.clone()),
        }
    }
}

fn is_fargate_provider(provider: &CapacityProvider) -> bool {
    provider.capacity_provider.as_str().is_some_and(|name| FARGATE_PROVIDERS.contains(&name))
}

/// The network interface of Fargate tasks (`awsvpc`): the same for the watchers' service and every RunTask.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Subnet ids: an array of strings or intrinsics, or one intrinsic that is a list.
    pub subnets: Value,
    /// Security group ids, the same forms as `subnets`.
    pub security_groups: Value,
    /// Whether tasks get a public IP (tasks in public subnets without a NAT need one to pull their image).
    pub assign_public_ip: bool,
}

/// A Fargate task size: CPU units and MiB, each a number or an intrinsic.
#[derive(Debug, Clone, PartialEq)]
pub struct FargateSize {
    /// Task `Cpu`.
    pub cpu: Value,
    /// Task `Memory`.
    pub memory: Value,
}

impl Raw<'_> {
    /// `capacity`: a name or a strategy.
    pub(super) fn capacity(&self) -> Result<Capacity, Error> {
        let expected = "expected \"EC2\", \"FARGATE\", \"FARGATE_SPOT\" or an array of {\"capacityProvider\", \"weight\", \"base\"}";
        match self.get("capacity") {
            None => Ok(Capacity::Ec2),
            Some(Value::String(name)) => match name.as_str() {
                "EC2" => Ok(Capacity::Ec2),
                "FARGATE" => Ok(Capacity::Fargate),
                "FARGATE_SPOT" => Ok(Capacity::FargateSpot),
                other => Err(Error::invalid("capacity", format!("{expected}, got \"{other}\""))),
            },
            Some(Value::Array(items)) => strategy(items).map(Capacity::Strategy),
            Some(other) => Err(Error::invalid("capacity", format!("{expected}, got {}", describe(other)))),
        }
    }

    /// `subnets` or `securityGroups`: a non-empty array of strings or intrinsics, or one intrinsic (a list).
    fn id_list(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) if items.is_empty() => Err(Error::invalid(name, "must not be empty")),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    reference(&format!("{name}[{i}]"), item)?;
                }
                Ok(Some(Value::Array(items.clone())))
            }
            Some(value) if is_intrinsic(value) => Ok(Some(value.clone())),
            Some(other) => Err(Error::invalid(
                name,
                format!(
                    "expected an array of ids (strings or intrinsics) or an intrinsic list, got {}",
                    describe(other)
                ),
            )),
        }
    }

    /// The Fargate network: required with Fargate capacity, refused without.
    pub(super) fn network(&self, capacity: &Capacity) -> Result<Option<Network>, Error> {
        let subnets = self.id_list("subnets")?;
        let security_groups = self.id_list("securityGroups")?;
        let assign_public_ip = self.boolean("assignPublicIp")?;
        if !capacity.is_fargate() {
            for (name, given) in [
                ("subnets", subnets.is_some()),
                ("securityGroups", security_groups.is_some()),
                ("assignPublicIp", assign_public_ip.is_some()),
            ] {
                if given {
                    return Err(Error::invalid(
                        name,
                        "only applies to Fargate capacity (capacity is EC2: tasks use the instance's network)",
                    ));
                }
            }
            return Ok(None);
        }
        let needed = |name: &str| {
            Error::invalid(name, "is required with Fargate capacity (each task gets its own network interface)")
        };
        Ok(Some(Network {
            subnets: subnets.ok_or_else(|| needed("subnets"))?,
            security_groups: security_groups.ok_or_else(|| needed("securityGroups"))?,
            assign_public_ip: assign_public_ip.unwrap_or(false),
        }))
    }
}

fn strategy(items: &[Value]) -> Result<Vec<CapacityProvider>, Error> {
    if items.is_empty() || items.len() > MAX_PROVIDERS {
        return Err(Error::invalid("capacity", format!("a strategy has 1 to {MAX_PROVIDERS} capacity providers")));
    }
    let mut providers: Vec<CapacityProvider> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = format!("capacity[{i}]");
        let Value::Object(fields) = item else {
            return Err(Error::invalid(
                name,
                format!("expected {{\"capacityProvider\": ..., \"weight\": N, \"base\": N}}, got {}", describe(item)),
            ));
        };
        if let Some(key) = fields.keys().find(|k| !["capacityProvider", "weight", "base"].contains(&k.as_str())) {
            return Err(Error::invalid(
                name,
                format!("unknown key \"{key}\" (expected capacityProvider, weight, base)"),
            ));
        }
        let provider = match fields.get("capacityProvider") {
            None | Some(Value::Null) => return Err(Error::invalid(name, "needs \"capacityProvider\"")),
            Some(value) => reference(&format!("{name}.capacityProvider"), value)?,
        };
        if let Value::String(text) = &provider
            && !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                format!("{name}.capacityProvider"),
                format!("\"{text}\" is not a capacity provider name (letters, digits, - and _)"),
            ));
        }
        if provider.is_string() && providers.iter().any(|p| p.capacity_provider == provider) {
            return Err(Error::invalid(format!("{name}.capacityProvider"), "is already in the strategy"));
        }
        let weight = whole(fields, &name, "weight", MAX_WEIGHT)?.unwrap_or(1);
        let base = whole(fields, &name, "base", MAX_BASE)?.unwrap_or(0);
        providers.push(CapacityProvider { capacity_provider: provider, weight, base });
    }
    if providers.iter().all(|p| p.weight == 0) {
        return Err(Error::invalid("capacity", "at least one capacity provider needs a weight above 0"));
    }
    if providers.iter().filter(|p| p.base > 0).count() > 1 {
        return Err(Error::invalid("capacity", "only one capacity provider of a strategy may have a base"));
    }
    let fargate = providers.iter().filter(|p| is_fargate_provider(p)).count();
    if fargate > 0 && fargate < providers.len() {
        return Err(Error::invalid(
            "capacity",
            "a strategy cannot mix FARGATE/FARGATE_SPOT with Auto Scaling group capacity providers",
        ));
    }
    Ok(providers)
}

fn whole(fields: &Map<String, Value>, item: &str, key: &str, max: u64) -> Result<Option<u64>, Error> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= max) => Ok(n.as_u64()),
        Some(other) => Err(Error::invalid(
            format!("{item}.{key}"),
            format!("expected a whole number from 0 to {max}, got {}", describe(other)),
        )),
    }
}

/// The memory (MiB) Fargate accepts with each CPU size (Linux tasks): `(cpu, min, max, step)`.
const FARGATE_SIZES: &[(u64, u64, u64, u64)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16_384, 1024),
    (4096, 8192, 30_720, 1024),
    (8192, 16_384, 61_440, 4096),
    (16_384, 32_768, 122_880, 8192),
];

/// Whether Fargate runs a task of `cpu` units with `memory` MiB.
fn fargate_accepts(cpu: u64, memory: u64) -> bool {
    FARGATE_SIZES.iter().any(|&(c, min, max, step)| {
        c == cpu && (min..=max).contains(&memory) && (memory - min).is_multiple_of(step) && (c != 256 || memory != 1536)
    })
}

/// The worker's Fargate task size from `reservation`: `cpu` (default 256) and `memory`, else `softMemory` (default
/// 512). Literal numbers must be a pair Fargate accepts; intrinsics are passed on for the deploy to check.
pub(super) fn fargate_size(reservation: &Reservation) -> Result<FargateSize, Error> {
    let cpu = reservation.cpu.clone().unwrap_or_else(|| Value::from(DEFAULT_FARGATE_CPU));
    let memory = reservation
        .memory
        .clone()
        .or_else(|| reservation.soft_memory.clone())
        .unwrap_or_else(|| Value::from(DEFAULT_FARGATE_MEMORY));
    if let (Some(c), Some(m)) = (cpu.as_u64(), memory.as_u64())
        && !fargate_accepts(c, m)
    {
        let sizes: Vec<String> = FARGATE_SIZES
            .iter()
            .filter(|(size, ..)| *size == c)
            .map(|(_, min, max, step)| format!("{min} to {max} MiB in steps of {step}"))
            .collect();
        let hint = match sizes.first() {
            Some(range) => format!("cpu {c} takes {range}"),
            None => "cpu is one of 256, 512, 1024, 2048, 4096, 8192, 16384".to_string(),
        };
        return Err(Error::invalid(
            "reservation",
            format!("cpu {c} with memory {m} MiB is not a Fargate task size ({hint})"),
        ));
    }
    Ok(FargateSize { cpu, memory })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_sizes_are_the_documented_pairs() {
        for (cpu, memory) in [(256, 512), (256, 2048), (512, 4096), (1024, 3072), (4096, 30_720), (16_384, 122_880)] {
            assert!(fargate_accepts(cpu, memory), "{cpu}/{memory}");
        }
        for (cpu, memory) in [(256, 4096), (256, 1536), (512, 512), (1024, 2500), (8192, 18_432), (300, 1024)] {
            assert!(!fargate_accepts(cpu, memory), "{cpu}/{memory}");
        }
    }
}
