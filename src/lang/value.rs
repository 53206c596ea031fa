//! The value model shared by evaluation, diffing, state and rendering.
//!
//! `Value` is JSON plus one extra case, `Unknown`, for values that only exist after apply (an ARN
//! of a role that is not created yet). Unknowns propagate: any operation on an unknown is
//! unknown, which is how "(known after apply)" reaches the plan. Maps and objects are one case,
//! kept in a `BTreeMap`, so every rendering and every digest of a value is stable.

use std::collections::BTreeMap;
use std::fmt;

/// A configuration or resource value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
    /// Known only after apply.
    Unknown,
}

impl Value {
    pub(crate) fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The HCL type name, as used in error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Unknown => "unknown",
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True when this value or anything inside it is unknown.
    pub(crate) fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::contains_unknown),
            Value::Object(map) => map.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Converts a known value to JSON. Unknowns become `null`; callers that care check
    /// `contains_unknown` first.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    pub(crate) fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The string form used by templates and `tostring`: only primitives have one.
    pub(crate) fn to_template_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(format_number(*n)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Treats null, an empty list and an empty object as the same "nothing", the way AWS does
    /// for tags and other collections that it reports as absent when empty.
    pub(crate) fn is_empty_like(&self) -> bool {
        match self {
            Value::Null => true,
            Value::List(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            Value::String(s) => s.is_empty(),
            _ => false,
        }
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Whole numbers stay integers in JSON, so `3600` never becomes `3600.0`.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Formats a number the way HCL prints it: whole numbers without a fraction.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Quotes a string as an HCL string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push('$'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Value {
    /// One-line HCL rendering, used in messages and short plan lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{}", format_number(*n)),
            Value::String(s) => write!(f, "{}", quote(s)),
            Value::Unknown => write!(f, "(known after apply)"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Value::Object(map) => {
                write!(f, "{{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} = {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_round_trip_through_json_as_integers() {
        let v = Value::Number(3600.0);
        assert_eq!(v.to_json().to_string(), "3600");
        assert_eq!(Value::from_json(&v.to_json()), v);
    }

    #[test]
    fn unknown_inside_a_list_is_detected() {
        let v = Value::List(vec![Value::string("a"), Value::Unknown]);
        assert!(v.contains_unknown());
        assert!(!Value::List(vec![Value::string("a")]).contains_unknown());
    }

    #[test]
    fn strings_are_quoted_with_escapes() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
