//! Resource addresses: `aws_iam_role.r`, `data.aws_caller_identity.current`.
//!
//! The address is the identity of a resource across configuration, plan and state. It already
//! carries an optional instance key so that `count` and `for_each` (`aws_iam_role.r[0]`,
//! `aws_iam_role.r["a"]`) can be added without changing how state is keyed.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Mode {
    Managed,
    Data,
}

/// The key of one instance of a resource with `count` or `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum InstanceKey {
    Int(u64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub(crate) mode: Mode,
    pub(crate) type_name: String,
    pub(crate) name: String,
    pub(crate) key: Option<InstanceKey>,
}

impl Address {
    pub(crate) fn managed(type_name: impl Into<String>, name: impl Into<String>) -> Address {
        Address {
            mode: Mode::Managed,
            type_name: type_name.into(),
            name: name.into(),
            key: None,
        }
    }

    pub(crate) fn data(type_name: impl Into<String>, name: impl Into<String>) -> Address {
        Address {
            mode: Mode::Data,
            type_name: type_name.into(),
            name: name.into(),
            key: None,
        }
    }

    /// The address of the block this is an instance of: the address without its key.
    pub(crate) fn base(&self) -> Address {
        Address {
            key: None,
            ..self.clone()
        }
    }

    /// The instance of this block with `key`.
    pub(crate) fn with_key(&self, key: Option<InstanceKey>) -> Address {
        Address {
            key,
            ..self.clone()
        }
    }

    /// Whether this is `block` itself or one of its instances.
    pub(crate) fn is_instance_of(&self, block: &Address) -> bool {
        self.mode == block.mode && self.type_name == block.type_name && self.name == block.name
    }
}

impl InstanceKey {
    /// The key as a value, as `count.index` and `each.key` show it.
    pub(crate) fn to_value(&self) -> crate::lang::value::Value {
        match self {
            #[allow(clippy::cast_precision_loss)]
            InstanceKey::Int(i) => crate::lang::value::Value::Number(*i as f64),
            InstanceKey::Str(s) => crate::lang::value::Value::String(s.clone()),
        }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{}]", crate::lang::value::quote(s)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == Mode::Data {
            write!(f, "data.")?;
        }
        write!(f, "{}.{}", self.type_name, self.name)?;
        match &self.key {
            None => Ok(()),
            Some(k) => write!(f, "{k}"),
        }
    }
}

/// Addresses are written as their text (`aws_iam_role.r`), in plan files as in state.
impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource address {0:?}: expected TYPE.NAME or data.TYPE.NAME")]
pub struct AddressError(pub(crate) String);

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        let err = || AddressError(s.to_string());
        let (base, key) = match s.find('[') {
            Some(i) => {
                let inner = s[i..]
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(err)?;
                let key = if let Ok(n) = inner.parse::<u64>() {
                    InstanceKey::Int(n)
                } else {
                    // The key is written as an HCL string, whose escapes are JSON's.
                    let unq: String = inner
                        .starts_with('"')
                        .then(|| serde_json::from_str(inner).ok())
                        .flatten()
                        .ok_or_else(err)?;
                    InstanceKey::Str(unq)
                };
                (&s[..i], Some(key))
            }
            None => (s, None),
        };
        let parts: Vec<&str> = base.split('.').collect();
        let (mode, t, n) = match parts.as_slice() {
            ["data", t, n] => (Mode::Data, *t, *n),
            [t, n] => (Mode::Managed, *t, *n),
            _ => return Err(err()),
        };
        if !is_ident(t) || !is_ident(n) {
            return Err(err());
        }
        Ok(Address {
            mode,
            type_name: t.to_string(),
            name: n.to_string(),
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_their_text_form() {
        for s in [
            "aws_iam_role.r",
            "data.aws_caller_identity.current",
            "aws_iam_role.r[0]",
            "aws_iam_role.r[\"a\"]",
            "aws_iam_role.r[\"with \\\"quotes\\\" and ]\"]",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for s in ["", "aws_iam_role", "a.b.c.d", "aws_iam_role.r[", "1x.y"] {
            assert!(s.parse::<Address>().is_err(), "{s}");
        }
    }
}
