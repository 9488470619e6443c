//! Where the ECS runner starts tasks ([`EcsRunnerConfig`]): cluster, task definition, container, and the placement
//! (a launch type or a capacity provider strategy) with the `awsvpc` network. No SDK types: it is also the ECS part of
//! the watcher's configuration (`config`).

use super::DEFAULT_RUN_TASK_PER_SECOND;

/// How ECS runs the task: on the cluster's EC2 container instances, or on Fargate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchType {
    /// The cluster's own EC2 instances (the seed's default).
    #[default]
    Ec2,
    /// Fargate: needs subnets (and usually security groups) for the task's network interface.
    Fargate,
}

impl LaunchType {
    /// The ECS API's name: `EC2` or `FARGATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchType::Ec2 => "EC2",
            LaunchType::Fargate => "FARGATE",
        }
    }
}

impl std::fmt::Display for LaunchType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A launch type name that is neither `EC2` nor `FARGATE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected EC2 or FARGATE, got {0:?}{hint}", hint = spot_hint(.0))]
pub struct UnknownLaunchType(pub String);

fn spot_hint(name: &str) -> &'static str {
    if name.trim().eq_ignore_ascii_case("FARGATE_SPOT") {
        " (Fargate Spot is a capacity provider: CapacityProviderStrategy FARGATE_SPOT)"
    } else {
        ""
    }
}

/// The capacity providers ECS defines for Fargate.
pub const FARGATE_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];
/// ECS's limits on a strategy: providers, weight, base.
const MAX_PROVIDERS: usize = 20;
const MAX_WEIGHT: u32 = 1000;
const MAX_BASE: u32 = 100_000;

/// One capacity provider of a strategy: RunTask places `base` tasks on it first, then shares by `weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityProviderItem {
    /// The provider's name (`FARGATE`, `FARGATE_SPOT`, or an Auto Scaling group provider's).
    pub name: String,
    /// Relative share (0–1000).
    pub weight: u32,
    /// Tasks placed here before weights apply (0–100000).
    pub base: u32,
}

impl CapacityProviderItem {
    /// Parses a strategy as the watcher's `CapacityProviderStrategy` writes it: `NAME[:WEIGHT[:BASE]]`, comma-separated
    /// (weight 1 and base 0 when left out), e.g. `FARGATE:1:2,FARGATE_SPOT:3`. The error is one line.
    pub fn parse_strategy(text: &str) -> Result<Vec<CapacityProviderItem>, String> {
        let mut items: Vec<CapacityProviderItem> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let name = parts.next().unwrap_or_default().trim();
            let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.is_empty() || name.len() > 255 || !name.chars().all(valid) {
                return Err(format!("{entry:?} is not NAME[:WEIGHT[:BASE]] with a capacity provider name"));
            }
            let number = |part: Option<&str>, what: &str, default: u32, max: u32| match part {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u32>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(format!("the {what} of {name} must be a whole number from 0 to {max}, got {text:?}")),
                },
            };
            let weight = number(parts.next(), "weight", 1, MAX_WEIGHT)?;
            let base = number(parts.next(), "base", 0, MAX_BASE)?;
            if parts.next().is_some() {
                return Err(format!("{entry:?} is not NAME[:WEIGHT[:BASE]]"));
            }
            if items.iter().any(|item| item.name == name) {
                return Err(format!("{name} is in the strategy twice"));
            }
            items.push(CapacityProviderItem { name: name.to_string(), weight, base });
        }
        if items.is_empty() || items.len() > MAX_PROVIDERS {
            return Err(format!("a strategy has 1 to {MAX_PROVIDERS} capacity providers (NAME[:WEIGHT[:BASE]],...)"));
        }
        if items.iter().all(|item| item.weight == 0) {
            return Err("at least one capacity provider needs a weight above 0".into());
        }
        if items.iter().filter(|item| item.base > 0).count() > 1 {
            return Err("only one capacity provider of a strategy may have a base".into());
        }
        let fargate = items.iter().filter(|item| item.is_fargate()).count();
        if fargate > 0 && fargate < items.len() {
            return Err("a strategy cannot mix FARGATE/FARGATE_SPOT with Auto Scaling group capacity providers".into());
        }
        Ok(items)
    }

    /// Whether this is one of Fargate's providers.
    pub fn is_fargate(&self) -> bool {
        FARGATE_PROVIDERS.contains(&self.name.as_str())
    }
}

impl std::str::FromStr for LaunchType {
    type Err = UnknownLaunchType;

    /// `EC2` or `FARGATE`, in any case.
    fn from_str(s: &str) -> Result<LaunchType, UnknownLaunchType> {
        match s.trim().to_ascii_uppercase().as_str() {
            "EC2" => Ok(LaunchType::Ec2),
            "FARGATE" => Ok(LaunchType::Fargate),
            _ => Err(UnknownLaunchType(s.to_string())),
        }
    }
}

/// Where and how the ECS runner starts tasks: also the ECS part of the watcher's configuration
/// ([`crate::config::WatcherEnv::ecs`]), read from `Cluster`, `TaskDefinition`, `ContainerName`, `LaunchType`,
/// `Subnets` and `SecurityGroups`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EcsRunnerConfig {
    /// Cluster name or ARN.
    pub cluster: String,
    /// The worker task definition (family, family:revision, or ARN).
    pub task_definition: String,
    /// The container in that task definition that gets the environment and whose exit code counts.
    pub container_name: String,
    /// EC2 (default) or FARGATE; not sent when `capacity_provider_strategy` is given.
    pub launch_type: LaunchType,
    /// A capacity provider strategy, sent instead of the launch type (ECS takes one of the two). Empty: none.
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// Subnets for the task's network interface (`awsvpc` network mode; required by FARGATE). Empty: no network
    /// configuration is sent.
    pub subnets: Vec<String>,
    /// Security groups for that interface.
    pub security_groups: Vec<String>,
    /// Whether the interface gets a public IP (FARGATE tasks in public subnets need one to pull images).
    pub assign_public_ip: bool,
    /// RunTask calls per second at most (a token bucket holding one second's worth). Zero, negative or not finite:
    /// no limit.
    pub run_task_per_second: f64,
}

impl EcsRunnerConfig {
    /// Whether tasks run on Fargate: the FARGATE launch type, or a strategy of Fargate's providers. Fargate tasks
    /// need subnets and take `assignPublicIp`.
    pub fn is_fargate(&self) -> bool {
        match self.capacity_provider_strategy.as_slice() {
            [] => self.launch_type == LaunchType::Fargate,
            strategy => strategy.iter().all(CapacityProviderItem::is_fargate),
        }
    }

    /// A config for the EC2 launch type with the default rate limit.
    pub fn new(
        cluster: impl Into<String>,
        task_definition: impl Into<String>,
        container_name: impl Into<String>,
    ) -> EcsRunnerConfig {
        EcsRunnerConfig {
            cluster: cluster.into(),
            task_definition: task_definition.into(),
            container_name: container_name.into(),
            launch_type: LaunchType::Ec2,
            capacity_provider_strategy: Vec::new(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            run_task_per_second: DEFAULT_RUN_TASK_PER_SECOND,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_types_parse_and_print() {
        assert_eq!("EC2".parse::<LaunchType>(), Ok(LaunchType::Ec2));
        assert_eq!("fargate".parse::<LaunchType>(), Ok(LaunchType::Fargate));
        assert_eq!("SPOT".parse::<LaunchType>().unwrap_err().to_string(), "expected EC2 or FARGATE, got \"SPOT\"");
        assert_eq!(LaunchType::Fargate.to_string(), "FARGATE");
        assert_eq!(LaunchType::default(), LaunchType::Ec2);
        assert!("FARGATE_SPOT".parse::<LaunchType>().unwrap_err().to_string().contains("is a capacity provider"));
    }

    #[test]
    fn strategies_parse_with_defaults_and_one_line_errors() {
        let item = |name: &str, weight, base| CapacityProviderItem { name: name.into(), weight, base };
        assert_eq!(
            CapacityProviderItem::parse_strategy("FARGATE:1:2, FARGATE_SPOT:3,"),
            Ok(vec![item("FARGATE", 1, 2), item("FARGATE_SPOT", 3, 0)])
        );
        assert_eq!(CapacityProviderItem::parse_strategy("my-asg"), Ok(vec![item("my-asg", 1, 0)]));
        for (text, error) in [
            ("", "a strategy has 1 to 20 capacity providers"),
            ("FARGATE:x", "the weight of FARGATE must be a whole number from 0 to 1000, got \"x\""),
            ("FARGATE:1:100001", "the base of FARGATE must be a whole number from 0 to 100000"),
            ("FARGATE:1:0:9", "is not NAME[:WEIGHT[:BASE]]"),
            ("a b", "is not NAME[:WEIGHT[:BASE]] with a capacity provider name"),
            ("FARGATE:0", "at least one capacity provider needs a weight above 0"),
            ("FARGATE:1:1,FARGATE_SPOT:1:1", "only one capacity provider of a strategy may have a base"),
            ("FARGATE,FARGATE", "FARGATE is in the strategy twice"),
            ("FARGATE,my-asg", "cannot mix"),
        ] {
            let found = CapacityProviderItem::parse_strategy(text).unwrap_err();
            assert!(found.contains(error), "{text}: {found}");
        }
    }
}
