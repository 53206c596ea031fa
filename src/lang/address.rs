//! Resource addresses: `aws_iam_role.r`, `data.aws_caller_identity.current`,
//! `aws_iam_role.r[0]`, `module.net["a"].aws_subnet.s["b"]`.
//!
//! The address is the identity of a resource across configuration, plan and state: the module
//! instance it lives in (empty at the root), its mode, type and name, and its instance key
//! under `count` or `for_each`. The configuration knows blocks (no keys anywhere, see
//! `config_addr`); plans and state know instances.

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

/// One step of a module path: `module.net` or `module.net["a"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ModuleStep {
    pub(crate) name: String,
    pub(crate) key: Option<InstanceKey>,
}

/// A module instance: the steps from the root (empty for the root module).
pub(crate) type ModuleInstance = Vec<ModuleStep>;

impl fmt::Display for ModuleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module.{}", self.name)?;
        match &self.key {
            Some(k) => write!(f, "{k}"),
            None => Ok(()),
        }
    }
}

/// `module.a["k"].module.b` (empty for the root).
pub(crate) fn module_text(module: &[ModuleStep]) -> String {
    module
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// `module.a["k"].module.b.`, the prefix of what is declared in a module instance (empty for
/// the root).
pub(crate) fn module_prefix(module: &[ModuleStep]) -> String {
    module.iter().fold(String::new(), |mut out, s| {
        out.push_str(&s.to_string());
        out.push('.');
        out
    })
}

// The module path comes first, so that the root's resources sort before any module's and
// keep the order they had before modules existed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub(crate) module: ModuleInstance,
    pub(crate) mode: Mode,
    pub(crate) type_name: String,
    pub(crate) name: String,
    pub(crate) key: Option<InstanceKey>,
}

impl Address {
    pub(crate) fn managed(type_name: impl Into<String>, name: impl Into<String>) -> Address {
        Address {
            module: Vec::new(),
            mode: Mode::Managed,
            type_name: type_name.into(),
            name: name.into(),
            key: None,
        }
    }

    pub(crate) fn data(type_name: impl Into<String>, name: impl Into<String>) -> Address {
        Address {
            module: Vec::new(),
            mode: Mode::Data,
            type_name: type_name.into(),
            name: name.into(),
            key: None,
        }
    }

    /// The address of the block this is an instance of, in the same module instance: the
    /// address without its own key.
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

    /// The same block in module instance `module`.
    pub(crate) fn in_module(&self, module: &[ModuleStep]) -> Address {
        Address {
            module: module.to_vec(),
            ..self.clone()
        }
    }

    /// The block as the configuration declares it: no key on it or on its modules.
    pub(crate) fn config_addr(&self) -> Address {
        Address {
            module: self
                .module
                .iter()
                .map(|s| ModuleStep {
                    name: s.name.clone(),
                    key: None,
                })
                .collect(),
            key: None,
            ..self.clone()
        }
    }

    /// The names of the modules the block is declared in (`["net"]` for `module.net[0].x.y`).
    pub(crate) fn module_path(&self) -> Vec<String> {
        self.module.iter().map(|s| s.name.clone()).collect()
    }

    /// The address inside its own module: what that module's configuration calls it.
    pub(crate) fn local(&self) -> Address {
        Address {
            module: Vec::new(),
            key: None,
            ..self.clone()
        }
    }

    /// Whether this is `block` itself or one of its instances (in the same module instance).
    pub(crate) fn is_instance_of(&self, block: &Address) -> bool {
        self.module == block.module
            && self.mode == block.mode
            && self.type_name == block.type_name
            && self.name == block.name
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

    /// The key a value selects: a string, or a whole non-negative number.
    pub(crate) fn from_value(v: &crate::lang::value::Value) -> Option<InstanceKey> {
        use crate::lang::value::Value;
        match v {
            Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => {
                // Whole and non-negative, checked just above.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(InstanceKey::Int(*n as u64))
            }
            Value::String(s) => Some(InstanceKey::Str(s.clone())),
            _ => None,
        }
    }

    /// `[0]` or `["a"]`, as written after a name.
    fn parse(text: &str) -> Option<InstanceKey> {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        if let Ok(n) = inner.parse::<u64>() {
            return Some(InstanceKey::Int(n));
        }
        // The key is written as an HCL string, whose escapes are JSON's.
        inner
            .starts_with('"')
            .then(|| serde_json::from_str(inner).ok())
            .flatten()
            .map(InstanceKey::Str)
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
        for step in &self.module {
            write!(f, "{step}.")?;
        }
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
#[error("invalid resource address {0:?}: expected TYPE.NAME or data.TYPE.NAME, optionally with an [index] and after module.NAME steps")]
pub struct AddressError(pub(crate) String);

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits `module.a["x.y"].aws_x.b[0]` into `name[key]` parts at the dots outside brackets
/// and strings.
fn parts(s: &str) -> Option<Vec<(&str, Option<InstanceKey>)>> {
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0usize);
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' => depth += 1,
            b']' => depth = depth.checked_sub(1)?,
            b'.' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return None;
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(|part| match part.find('[') {
            Some(i) => InstanceKey::parse(&part[i..]).map(|k| (&part[..i], Some(k))),
            None => Some((part, None)),
        })
        .collect()
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        let err = || AddressError(s.to_string());
        let parts = parts(s).ok_or_else(err)?;
        let mut rest = parts.as_slice();
        let mut module = Vec::new();
        while let [("module", None), (name, key), tail @ ..] = rest {
            if !is_ident(name) || tail.is_empty() {
                return Err(err());
            }
            module.push(ModuleStep {
                name: (*name).to_string(),
                key: key.clone(),
            });
            rest = tail;
        }
        let (mode, t, n, key) = match rest {
            [("data", None), (t, None), (n, key)] => (Mode::Data, *t, *n, key.clone()),
            [(t, None), (n, key)] => (Mode::Managed, *t, *n, key.clone()),
            _ => return Err(err()),
        };
        if !is_ident(t) || !is_ident(n) {
            return Err(err());
        }
        Ok(Address {
            module,
            mode,
            type_name: t.to_string(),
            name: n.to_string(),
            key,
        })
    }
}

/// What `--exclude` names: a resource (a block, or one instance of it) or a whole module
/// (`module.net`, `module.net["a"]`). A step or resource written without a key covers every
/// instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    Resource(Address),
    Module(ModuleInstance),
}

/// Whether the module instance `m` is `pattern` or inside it, a keyless step covering every
/// key.
fn module_covers(pattern: &[ModuleStep], m: &[ModuleStep]) -> bool {
    m.len() >= pattern.len()
        && pattern
            .iter()
            .zip(m)
            .all(|(p, s)| p.name == s.name && (p.key.is_none() || p.key == s.key))
}

impl Scope {
    /// Whether `a` (a block or an instance) is what this names or inside it.
    pub(crate) fn covers(&self, a: &Address) -> bool {
        match self {
            Scope::Module(m) => module_covers(m, &a.module),
            Scope::Resource(r) => {
                r.module.len() == a.module.len()
                    && module_covers(&r.module, &a.module)
                    && r.mode == a.mode
                    && r.type_name == a.type_name
                    && r.name == a.name
                    && (r.key.is_none() || r.key == a.key)
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(a) => write!(f, "{a}"),
            Scope::Module(m) => write!(f, "{}", module_text(m)),
        }
    }
}

impl FromStr for Scope {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Scope, AddressError> {
        if let Ok(a) = s.parse::<Address>() {
            return Ok(Scope::Resource(a));
        }
        let err = || AddressError(s.to_string());
        let parts = parts(s).ok_or_else(err)?;
        let mut module = Vec::new();
        for pair in parts.chunks(2) {
            match pair {
                [("module", None), (name, key)] if is_ident(name) => module.push(ModuleStep {
                    name: (*name).to_string(),
                    key: key.clone(),
                }),
                _ => return Err(err()),
            }
        }
        Ok(Scope::Module(module))
    }
}

/// Written as their text, in plan files.
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclude_names_a_block_an_instance_or_a_module_and_covers_what_is_inside() {
        let inst: Address = "module.net[\"a\"].aws_subnet.s[0]".parse().unwrap();
        let other: Address = "module.net[\"b\"].aws_subnet.s[0]".parse().unwrap();
        let module: Scope = "module.net".parse().unwrap();
        assert!(module.covers(&inst) && module.covers(&other));
        let keyed: Scope = "module.net[\"a\"]".parse().unwrap();
        assert!(keyed.covers(&inst) && !keyed.covers(&other));
        let block: Scope = "module.net.aws_subnet.s".parse().unwrap();
        assert!(block.covers(&inst) && block.covers(&other));
        let one: Scope = "aws_iam_user.u[\"a\"]".parse().unwrap();
        assert!(one.covers(&"aws_iam_user.u[\"a\"]".parse().unwrap()));
        assert!(!one.covers(&"aws_iam_user.u[\"b\"]".parse().unwrap()));
        assert!(!module.covers(&"aws_iam_role.r".parse().unwrap()));
        assert_eq!(keyed.to_string(), "module.net[\"a\"]");
        assert!("module".parse::<Scope>().is_err());
        assert!("module.net.x".parse::<Scope>().is_err());
        assert!("".parse::<Scope>().is_err());
    }

    #[test]
    fn addresses_round_trip_through_their_text_form() {
        for s in [
            "aws_iam_role.r",
            "data.aws_caller_identity.current",
            "aws_iam_role.r[0]",
            "aws_iam_role.r[\"a\"]",
            "aws_iam_role.r[\"with \\\"quotes\\\" and ]\"]",
            "module.net.aws_subnet.s",
            "module.net[\"a.b\"].module.inner[2].data.aws_vpc.v[\"x\"]",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for s in [
            "",
            "aws_iam_role",
            "a.b.c.d",
            "aws_iam_role.r[",
            "1x.y",
            "module.net",
            "module.net.x",
            "aws_iam_role[0].r",
        ] {
            assert!(s.parse::<Address>().is_err(), "{s}");
        }
    }
}
