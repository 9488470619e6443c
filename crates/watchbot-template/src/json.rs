//! JSON text as a [`serde_json::Value`], refusing an object with the same key twice: `serde_json` keeps the last
//! one silently, so a config with `"service"` twice would deploy whichever came second. The error names the key and
//! where it is (`$.env.Name` style path).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses JSON text; an object with a repeated key is an error naming it.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Strict { path: "$".to_string() }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A value at `path` (for the error's wording).
struct Strict {
    path: String,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict { path: format!("{}[{}]", self.path, items.len()) })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice ({path})")));
            }
            let value = map.next_value_seed(Strict { path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_with_their_path() {
        assert_eq!(parse_strict(r#"{"a": [1, {"b": 2.5}], "c": null}"#).unwrap()["a"][1]["b"], 2.5);
        let error = parse_strict(r#"{"service": "a", "service": "b"}"#).unwrap_err().to_string();
        assert!(error.starts_with(r#"the key "service" appears twice ($.service)"#), "{error}");
        let error = parse_strict(r#"{"env": {"A": 1, "A": 2}}"#).unwrap_err().to_string();
        assert!(error.contains("($.env.A)"), "{error}");
        assert!(parse_strict(r#"[{"x": 1}, {"x": 2}]"#).is_ok(), "the same key in two objects is fine");
        assert!(parse_strict("{} extra").is_err());
    }
}
