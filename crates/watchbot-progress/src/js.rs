//! JSON as the original JavaScript `watchbot-progress` prints it (`JSON.stringify` of what the DynamoDB document
//! client read), so that `status` prints the same bytes from either implementation: numbers as JavaScript's
//! `Number.prototype.toString` writes a double (`1e+21`, `0.000001`, 17 significant digits at most), object keys in
//! JavaScript's order (integer-like keys first, ascending, then the others in order), strings escaped as both
//! `JSON.stringify` and serde_json escape them. Also JavaScript's truthiness, which decides what the original omits.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// A double as JavaScript's `Number.prototype.toString` writes it (ECMAScript's Number::toString): the shortest
/// digits that read back as the same double, plain up to 21 digits before the point and from 6 zeros after it,
/// otherwise `d.ddde+N` / `d.ddde-N`. Not-finite values (which JSON has none of) are `null`, as in `JSON.stringify`.
pub fn number_text(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return "0".into(); // -0 too
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits, as ECMAScript asks: "d.ddd" then the exponent.
    let exponential = format!("{:e}", x.abs());
    let (mantissa, exponent) = exponential.split_once('e').unwrap_or((&exponential, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let n = exponent.parse::<i32>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exponent_sign = if n - 1 < 0 { '-' } else { '+' };
        let rest = if k == 1 { String::new() } else { format!(".{}", &digits[1..]) };
        format!("{}{rest}e{exponent_sign}{}", &digits[..1], (n - 1).abs())
    };
    format!("{sign}{body}")
}

/// A JSON number of a double: exact integers (up to 2^64) as integers, so serde_json writes `10`, not `10.0`.
pub fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 18_446_744_073_709_551_616.0 {
        if x >= 0.0 {
            return Value::from(x as u64);
        }
        if x >= -9_223_372_036_854_775_808.0 {
            return Value::from(x as i64);
        }
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// JavaScript's truthiness of a value the document client read: `null`, `false`, `0` and `""` are false.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Whether a key is an array index to JavaScript (a canonical integer below 2^32 − 1), which objects list first.
fn index_key(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n != u32::MAX && n.to_string() == key).then_some(n)
}

/// An object's keys in JavaScript's order: array indices ascending, then the others in the map's order.
pub fn js_key_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut indices: Vec<(u32, (&String, &Value))> =
        map.iter().filter_map(|entry| index_key(entry.0).map(|n| (n, entry))).collect();
    indices.sort_by_key(|(n, _)| *n);
    let others = map.iter().filter(|(key, _)| index_key(key).is_none());
    indices.into_iter().map(|(_, entry)| entry).chain(others).collect()
}

/// Appends `JSON.stringify(value)` to `out`.
pub fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Number(n) => out.push_str(&n.as_f64().map_or_else(|| n.to_string(), number_text)),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in js_key_order(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
        Value::Null | Value::Bool(_) => {
            let _ = write!(out, "{value}");
        }
    }
}

/// A string as `JSON.stringify` writes it: `"` and `\` escaped, `\b \f \n \r \t`, other controls as `\u00xx`
/// (lowercase), everything else as is. serde_json escapes exactly so.
pub fn write_string(out: &mut String, text: &str) {
    out.push_str(&Value::from(text).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        // Each pair is (a double, String(double) in node 20).
        for (x, js) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.57, "0.57"),
            (100.0, "100"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (12345678901234567890.0, "12345678901234567000"),
            (9007199254740993.0, "9007199254740992"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e-7, "1e-7"),
            (-2.5e-8, "-2.5e-8"),
            (123.456, "123.456"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(number_text(x), js, "{x:e}");
        }
    }

    #[test]
    fn objects_list_integer_keys_first_and_strings_escape_as_json_stringify() {
        let value = json!({"b": 1, "10": true, "a": [null, "x\n\"y\"\u{1}é"], "2": {}, "01": 0, "-1": 0.5});
        let mut out = String::new();
        write_json(&mut out, &value);
        // serde_json's map keeps insertion order when `preserve_order` is on and sorts otherwise; either way the
        // integer keys lead, ascending.
        assert!(out.starts_with(r#"{"2":{},"10":true,"#), "{out}");
        for part in [r#""a":[null,"x\n\"y\"\u0001é"]"#, r#""b":1"#, r#""01":0"#, r#""-1":0.5"#] {
            assert!(out.contains(part), "{out}");
        }
    }

    #[test]
    fn truthiness_and_integral_numbers() {
        for falsy in [json!(null), json!(false), json!(0), json!(0.0), json!("")] {
            assert!(!is_truthy(&falsy), "{falsy}");
        }
        for truthy in [json!({}), json!([]), json!("0"), json!(-1), json!(true)] {
            assert!(is_truthy(&truthy), "{truthy}");
        }
        assert_eq!(number_value(10.0).to_string(), "10");
        assert_eq!(number_value(-3.0).to_string(), "-3");
        assert_eq!(number_value(1.25).to_string(), "1.25");
        assert_eq!(number_value(1e300), json!(1e300));
    }
}
