//! The options object read one option at a time, each read a typed value or a one-line error naming the option.

use super::{BillingMode, RESERVED_ENV, Reservation, describe, is_intrinsic};
use crate::error::Error;
use serde_json::{Map, Value};

/// The options object, read one option at a time.
pub(super) struct Raw<'a>(pub(super) &'a Map<String, Value>);

impl Raw<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        // `null` is the same as leaving the option out, as in the original (undefined).
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(Error::invalid(name, "must not be empty")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::invalid(name, format!("expected a string, got {}", describe(other)))),
        }
    }

    pub(super) fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::invalid(name, format!("expected true or false, got {}", describe(other)))),
        }
    }

    pub(super) fn integer(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(Error::invalid(name, format!("must be a whole number from {min} to {max}, got {n}"))),
            },
            Some(other) => Err(Error::invalid(name, format!("expected a whole number, got {}", describe(other)))),
        }
    }

    /// `billingMode` with the capacity options: capacity goes with PROVISIONED, and capacity given without a mode
    /// means PROVISIONED (an options file written for the original keeps its provisioned table).
    pub(super) fn billing_mode(&self) -> Result<BillingMode, Error> {
        let read = self.integer("readCapacityUnits", 1, u64::from(u32::MAX))?;
        let write = self.integer("writeCapacityUnits", 1, u64::from(u32::MAX))?;
        let provisioned = BillingMode::Provisioned {
            read_capacity_units: read.unwrap_or(30),
            write_capacity_units: write.unwrap_or(30),
        };
        match self.string("billingMode")?.as_deref() {
            Some("PROVISIONED") => Ok(provisioned),
            Some("PAY_PER_REQUEST") => match (read, write) {
                (None, None) => Ok(BillingMode::PayPerRequest),
                (read, _) => Err(Error::Conflict {
                    first: if read.is_some() { "readCapacityUnits" } else { "writeCapacityUnits" },
                    second: "billingMode",
                    message: "capacity units go with billingMode PROVISIONED; a PAY_PER_REQUEST table has none".into(),
                }),
            },
            Some(other) => Err(Error::invalid(
                "billingMode",
                format!("expected \"PAY_PER_REQUEST\" or \"PROVISIONED\", got \"{other}\""),
            )),
            None if read.is_some() || write.is_some() => Ok(provisioned),
            None => Ok(BillingMode::PayPerRequest),
        }
    }

    /// A string or an intrinsic object.
    pub(super) fn reference(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => reference(name, value).map(Some),
        }
    }

    pub(super) fn permissions(&self) -> Result<Vec<Value>, Error> {
        let Some(value) = self.get("permissions") else { return Ok(Vec::new()) };
        let Value::Array(statements) = value else {
            return Err(Error::invalid(
                "permissions",
                format!("expected an array of IAM statements, got {}", describe(value)),
            ));
        };
        for (i, statement) in statements.iter().enumerate() {
            let name = format!("permissions[{i}]");
            let Value::Object(fields) = statement else {
                return Err(Error::invalid(
                    name,
                    format!("expected an IAM statement object, got {}", describe(statement)),
                ));
            };
            if fields.contains_key("PolicyDocument") || fields.contains_key("Statement") {
                return Err(Error::invalid(name, "give the statements themselves, not a policy document"));
            }
            match fields.get("Effect") {
                Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
                _ => return Err(Error::invalid(name, "needs \"Effect\": \"Allow\" or \"Deny\"")),
            }
            if !fields.contains_key("Action") && !fields.contains_key("NotAction") {
                return Err(Error::invalid(name, "needs \"Action\""));
            }
            if !fields.contains_key("Resource") && !fields.contains_key("NotResource") {
                return Err(Error::invalid(name, "needs \"Resource\""));
            }
            for key in fields.keys() {
                if !["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"]
                    .contains(&key.as_str())
                {
                    return Err(Error::invalid(name, format!("unknown IAM statement key \"{key}\"")));
                }
            }
        }
        Ok(statements.clone())
    }

    pub(super) fn env(&self) -> Result<Map<String, Value>, Error> {
        let Some(value) = self.get("env") else { return Ok(Map::new()) };
        let Value::Object(vars) = value else {
            return Err(Error::invalid("env", format!("expected an object of variables, got {}", describe(value))));
        };
        let mut env = Map::new();
        for (key, value) in vars {
            let name = format!("env.{key}");
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::invalid(name, "a variable name has only letters, digits and _"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(Error::invalid(name, "is set by watchbot itself; choose another name"));
            }
            // ECS environment values are strings: numbers and booleans are written as text, as a user would expect.
            let value = match value {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => reference(&name, other)?,
            };
            env.insert(key.clone(), value);
        }
        Ok(env)
    }

    pub(super) fn command(&self) -> Result<Option<Value>, Error> {
        match self.get("command") {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(Error::invalid("command", "must not be empty")),
            // A string is a shell command line, as a user typing it would mean it.
            Some(Value::String(s)) => Ok(Some(serde_json::json!(["/bin/sh", "-c", s]))),
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    reference(&format!("command[{i}]"), item)?;
                }
                Ok(Some(Value::Array(items.clone())))
            }
            Some(other) if is_intrinsic(other) => Ok(Some(other.clone())),
            Some(other) => Err(Error::invalid(
                "command",
                format!("expected a command line or a non-empty array of strings, got {}", describe(other)),
            )),
        }
    }

    pub(super) fn mounts(&self) -> Result<Vec<(String, String)>, Error> {
        let Some(text) = self.get("mounts") else { return Ok(Vec::new()) };
        let Value::String(text) = text else {
            return Err(Error::invalid("mounts", format!("expected \"host:container,...\", got {}", describe(text))));
        };
        let mut mounts = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parts: Vec<&str> = entry.split(':').collect();
            match parts.as_slice() {
                [host, container] if host.starts_with('/') && container.starts_with('/') => {
                    if mounts.iter().any(|(_, c): &(String, String)| c == container) {
                        return Err(Error::invalid("mounts", format!("container path {container} is mounted twice")));
                    }
                    mounts.push((host.to_string(), container.to_string()));
                }
                _ => {
                    return Err(Error::invalid(
                        "mounts",
                        format!("entry \"{entry}\" is not host:container with two absolute paths"),
                    ));
                }
            }
        }
        Ok(mounts)
    }

    pub(super) fn reservation(&self) -> Result<Reservation, Error> {
        let Some(value) = self.get("reservation") else { return Ok(Reservation::default()) };
        let Value::Object(fields) = value else {
            return Err(Error::invalid("reservation", format!("expected an object, got {}", describe(value))));
        };
        let mut reservation = Reservation::default();
        for (key, value) in fields {
            let name = format!("reservation.{key}");
            let slot = match key.as_str() {
                "memory" => &mut reservation.memory,
                "softMemory" => &mut reservation.soft_memory,
                "cpu" => &mut reservation.cpu,
                _ => {
                    return Err(Error::invalid(name, "unknown key (expected one of: memory, softMemory, cpu)"));
                }
            };
            match value {
                Value::Null => {}
                Value::Number(n) if n.as_u64().is_some_and(|v| v >= 1) => *slot = Some(value.clone()),
                other if is_intrinsic(other) => *slot = Some(other.clone()),
                other => {
                    return Err(Error::invalid(
                        name,
                        format!("expected a positive whole number, got {}", describe(other)),
                    ));
                }
            }
        }
        if let Some(Value::Number(memory)) = &reservation.memory
            && memory.as_u64().is_some_and(|m| m < 6)
        {
            return Err(Error::invalid("reservation.memory", "ECS needs at least 6 MiB"));
        }
        Ok(reservation)
    }

    pub(super) fn outputs(&self) -> Result<crate::Outputs, Error> {
        match self.get("outputs") {
            None | Some(Value::Bool(false)) => Ok(crate::Outputs::None),
            Some(Value::Bool(true)) => Ok(crate::Outputs::Plain),
            Some(Value::String(prefix)) if crate::outputs::valid_export_prefix(prefix) => {
                Ok(crate::Outputs::Exported(prefix.clone()))
            }
            Some(Value::String(prefix)) => Err(Error::invalid(
                "outputs",
                format!("\"{prefix}\" is not an export name prefix (letters, digits, `:` and `-`, at most 200)"),
            )),
            Some(other) => Err(Error::invalid(
                "outputs",
                format!("expected true, false or an export name prefix, got {}", describe(other)),
            )),
        }
    }

    pub(super) fn kms_key(&self) -> Result<Option<Value>, Error> {
        let Some(value) = self.reference("kmsKey")? else { return Ok(None) };
        // IAM statements name keys by ARN; a key id or alias would grant nothing.
        if let Value::String(s) = &value
            && !s.starts_with("arn:")
        {
            return Err(Error::invalid("kmsKey", format!("expected a KMS key ARN (arn:aws:kms:...), got \"{s}\"")));
        }
        Ok(Some(value))
    }
}

/// A literal string or an intrinsic object, else an error naming `name`.
pub(super) fn reference(name: &str, value: &Value) -> Result<Value, Error> {
    match value {
        Value::String(s) if s.is_empty() => Err(Error::invalid(name, "must not be empty")),
        Value::String(_) => Ok(value.clone()),
        other if is_intrinsic(other) => Ok(other.clone()),
        other => Err(Error::invalid(
            name,
            format!("expected a string or a CloudFormation intrinsic ({{\"Ref\": ...}}), got {}", describe(other)),
        )),
    }
}
