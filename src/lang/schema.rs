//! Resource and data source schemas: the JSON form a provider's schema files are written in,
//! and the parsed `Registry` a provider hands the engine (`Rules::schemas`). The AWS schemas
//! are `schemas/*.json`, embedded by `aws::schemas`.
//!
//! The schema files are the only place attributes are defined. From them come validation (an
//! unknown or missing attribute, a wrong type), the diff (a changed `force_new` attribute means
//! replacement; `json` attributes compare semantically), rendering (computed attributes show as
//! "(known after apply)", sensitive ones are masked) and the `skyform schema` reference.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::lang::value::Value;

/// The type of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrType {
    String,
    Number,
    Bool,
    /// A string holding a JSON document (an IAM policy), compared semantically.
    Json,
    List(Box<AttrType>),
    Set(Box<AttrType>),
    Map(Box<AttrType>),
    /// The object a nested block (`ingress { ... }`) stands for: its fields, each with a type,
    /// whether it must be given, and a default.
    Object(BTreeMap<String, Field>),
    /// A variable's `tuple([...])`: a list whose elements each have their own type.
    Tuple(Vec<AttrType>),
    /// A variable's `any`: the value is kept as given.
    Any,
}

/// A field of a nested block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) ty: AttrType,
    pub(crate) required: bool,
    pub(crate) default: Option<Value>,
    pub(crate) description: String,
}

impl AttrType {
    pub(crate) fn parse(s: &str) -> Option<AttrType> {
        let s = s.trim();
        let inner = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .and_then(AttrType::parse)
        };
        Some(match s {
            "string" => AttrType::String,
            "number" => AttrType::Number,
            "bool" => AttrType::Bool,
            "json" => AttrType::Json,
            _ if s.starts_with("list(") => AttrType::List(Box::new(inner("list(")?)),
            _ if s.starts_with("set(") => AttrType::Set(Box::new(inner("set(")?)),
            _ if s.starts_with("map(") => AttrType::Map(Box::new(inner("map(")?)),
            _ => return None,
        })
    }

    pub(crate) fn name(&self) -> String {
        match self {
            AttrType::String => "string".into(),
            AttrType::Number => "number".into(),
            AttrType::Bool => "bool".into(),
            AttrType::Json => "json".into(),
            AttrType::List(t) => format!("list({})", t.name()),
            AttrType::Set(t) => format!("set({})", t.name()),
            AttrType::Map(t) => format!("map({})", t.name()),
            AttrType::Object(_) => "object".into(),
            AttrType::Tuple(ts) => format!(
                "tuple([{}])",
                ts.iter().map(AttrType::name).collect::<Vec<_>>().join(", ")
            ),
            AttrType::Any => "any".into(),
        }
    }

    /// Converts a value to this type the way HCL does (a number where a string is expected
    /// becomes a string), or says why it cannot. Unknowns pass through.
    pub(crate) fn conform(&self, value: Value) -> Result<Value, String> {
        let mismatch = |v: &Value| format!("expected {}, found {}", self.name(), v.type_name());
        match (self, value) {
            (_, Value::Unknown) => Ok(Value::Unknown),
            (_, Value::Null) => Ok(Value::Null),
            (AttrType::Any, v) => Ok(v),
            (AttrType::Tuple(ts), Value::List(items)) if ts.len() == items.len() => ts
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (t, v))| t.conform(v).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            (AttrType::Tuple(ts), Value::List(items)) => Err(format!(
                "expected a tuple of {} elements, found {}",
                ts.len(),
                items.len()
            )),
            (AttrType::String, v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                Ok(Value::String(v.to_template_string().unwrap_or_default()))
            }
            (AttrType::Json, Value::String(s)) => {
                match serde_json::from_str::<serde_json::Value>(&s) {
                    Ok(_) => Ok(Value::String(s)),
                    Err(e) => Err(format!("not a valid JSON document: {e}")),
                }
            }
            (AttrType::Number, Value::Number(n)) => Ok(Value::Number(n)),
            (AttrType::Number, Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Value::Number)
                .map_err(|_| format!("expected number, found string {s:?}")),
            (AttrType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (AttrType::Bool, Value::String(s)) if s == "true" || s == "false" => {
                Ok(Value::Bool(s == "true"))
            }
            (AttrType::List(t), Value::List(items)) => items
                .into_iter()
                .map(|i| t.conform(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            (AttrType::Set(t), Value::List(items)) => {
                let mut items = items
                    .into_iter()
                    .map(|i| t.conform(i))
                    .collect::<Result<Vec<_>, _>>()?;
                crate::lang::functions::sort_set(&mut items);
                Ok(Value::List(items))
            }
            (AttrType::Object(fields), Value::Object(mut map)) => {
                let mut out = BTreeMap::new();
                if let Some(extra) = map.keys().find(|k| !fields.contains_key(*k)) {
                    return Err(format!(
                        "unexpected attribute {extra:?}; expected one of {}",
                        fields.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                for (name, f) in fields {
                    let v = map.remove(name).unwrap_or(Value::Null);
                    let v = f.ty.conform(v).map_err(|e| format!("{name}: {e}"))?;
                    let v = match v {
                        Value::Null if f.required => {
                            return Err(format!("the attribute {name:?} is required"))
                        }
                        Value::Null => f.default.clone().unwrap_or(Value::Null),
                        v => v,
                    };
                    out.insert(name.clone(), v);
                }
                Ok(Value::Object(out))
            }
            (AttrType::Map(t), Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| t.conform(v).map(|v| (k, v)))
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Value::Object),
            (_, v) => Err(mismatch(&v)),
        }
    }
}

/// How an attribute gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AttrMode {
    Required,
    Optional,
    Computed,
    /// Set by the user or, when absent, by AWS.
    OptionalComputed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttr {
    #[serde(rename = "type")]
    type_name: String,
    mode: AttrMode,
    #[serde(default)]
    force_new: bool,
    #[serde(default)]
    sensitive: bool,
    default: Option<serde_json::Value>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    description: String,
    /// The fields of a nested block; the attribute's type is then `set(object)`, or
    /// `list(object)` where the blocks' order means something (a policy's statements).
    block: Option<BTreeMap<String, RawField>>,
    /// A check on the value's form, named here and carried out by the provider's
    /// `check_format` (for AWS, `vpc_cidr`: an IPv4 network, /16 to /28).
    format: Option<String>,
    /// What a `json` attribute holds (`iam_policy`): the provider compares documents of a kind
    /// it knows semantically, and the others as JSON.
    kind: Option<String>,
    /// A bool attribute that, when true, makes a change of this one replace the object
    /// (`user_data` with `user_data_replace_on_change`); otherwise it changes in place.
    force_new_if: Option<String>,
    /// Attributes that may not be set together with this one (Terraform's `ConflictsWith`).
    #[serde(default)]
    conflicts_with: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    required: bool,
    default: Option<serde_json::Value>,
    #[serde(default)]
    description: String,
    /// The fields of a block inside this nested block (a statement's `principals { ... }`);
    /// the field's type is then `set(object)` or `list(object)`.
    block: Option<BTreeMap<String, RawField>>,
}

/// The type of nested blocks of these fields: `set(object)` or `list(object)`.
fn block_type(
    owner: &str,
    type_name: &str,
    fields: &BTreeMap<String, RawField>,
) -> Result<AttrType, String> {
    let mut out = BTreeMap::new();
    for (f, raw) in fields {
        let ty = match &raw.block {
            Some(inner) => block_type(&format!("{owner}.{f}"), &raw.type_name, inner)?,
            None => AttrType::parse(&raw.type_name)
                .ok_or_else(|| format!("{owner}.{f}: unknown type {}", raw.type_name))?,
        };
        out.insert(
            f.clone(),
            Field {
                ty,
                required: raw.required,
                default: raw.default.as_ref().map(Value::from_json),
                description: raw.description.clone(),
            },
        );
    }
    let object = Box::new(AttrType::Object(out));
    match type_name {
        "set(object)" => Ok(AttrType::Set(object)),
        "list(object)" => Ok(AttrType::List(object)),
        _ => Err(format!(
            "{owner}: a block attribute has type set(object) or list(object)"
        )),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    description: String,
    attributes: BTreeMap<String, RawAttr>,
    /// Attribute names Terraform's provider documents for this type that skyform lacks: setting
    /// one is "not supported yet", not a typo.
    #[serde(default)]
    unsupported: Vec<String>,
}

/// One attribute of a schema.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub(crate) ty: AttrType,
    pub(crate) mode: AttrMode,
    pub(crate) force_new: bool,
    pub(crate) sensitive: bool,
    pub(crate) default: Option<Value>,
    pub(crate) enum_values: Option<Vec<String>>,
    pub(crate) description: String,
    /// Written as nested blocks (`ingress { ... }`), not as `name = value`.
    pub(crate) block: bool,
    pub(crate) format: Option<String>,
    /// For a `json` attribute, what kind of document it holds.
    pub(crate) kind: Option<String>,
    /// The bool attribute whose `true` makes a change of this one a replacement.
    pub(crate) force_new_if: Option<String>,
    /// Attributes that may not be set together with this one.
    pub(crate) conflicts_with: Vec<String>,
}

impl Attr {
    /// Whether the user may set it in configuration.
    pub(crate) fn settable(&self) -> bool {
        self.mode != AttrMode::Computed
    }

    /// Whether a change of this attribute replaces the object, given the desired values of
    /// the others: always for `force_new`, and for `force_new_if` when that attribute is true.
    pub(crate) fn forces_new(&self, desired: &BTreeMap<String, Value>) -> bool {
        self.force_new
            || self
                .force_new_if
                .as_ref()
                .is_some_and(|cond| desired.get(cond) == Some(&Value::Bool(true)))
    }
}

/// The schema of one resource or data source type.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) type_name: String,
    pub(crate) description: String,
    pub(crate) attributes: BTreeMap<String, Attr>,
    /// Terraform's attributes for this type that skyform does not have yet.
    pub(crate) unsupported: Vec<String>,
}

impl Schema {
    fn parse(text: &str) -> Result<Schema, String> {
        let raw: RawSchema = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut attributes = BTreeMap::new();
        for (name, a) in raw.attributes {
            let ty = match &a.block {
                Some(fields) => block_type(&name, &a.type_name, fields)?,
                None => AttrType::parse(&a.type_name)
                    .ok_or_else(|| format!("{name}: unknown type {}", a.type_name))?,
            };
            let default = a.default.as_ref().map(Value::from_json);
            attributes.insert(
                name,
                Attr {
                    ty,
                    mode: a.mode,
                    force_new: a.force_new,
                    sensitive: a.sensitive,
                    default,
                    enum_values: a.enum_values,
                    description: a.description,
                    block: a.block.is_some(),
                    format: a.format.clone(),
                    kind: a.kind.clone(),
                    force_new_if: a.force_new_if,
                    conflicts_with: a.conflicts_with,
                },
            );
        }
        for (name, a) in &attributes {
            if let Some(cond) = &a.force_new_if {
                if attributes.get(cond).map(|c| &c.ty) != Some(&AttrType::Bool) {
                    return Err(format!(
                        "{name}: force_new_if names {cond}, not a bool attribute"
                    ));
                }
            }
            for other in &a.conflicts_with {
                if attributes.get(other).is_none_or(|o| !o.settable()) || other == name {
                    return Err(format!(
                        "{name}: conflicts_with names {other}, not another settable attribute"
                    ));
                }
            }
        }
        if let Some(both) = raw.unsupported.iter().find(|n| attributes.contains_key(*n)) {
            return Err(format!("{both} is both an attribute and unsupported"));
        }
        Ok(Schema {
            type_name: raw.type_name,
            description: raw.description,
            attributes,
            unsupported: raw.unsupported,
        })
    }

    /// Whether Terraform has this attribute or block on the type and skyform does not yet
    /// (the schema's `unsupported`): a gap, not a typo.
    pub(crate) fn lacks(&self, name: &str) -> bool {
        self.unsupported.iter().any(|n| n == name)
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&Attr> {
        self.attributes.get(name)
    }

    pub(crate) fn settable_names(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|(_, a)| a.settable())
            .map(|(n, _)| n.as_str())
    }

    /// A Markdown reference table of the attributes.
    pub(crate) fn to_markdown(&self, kind: &str) -> String {
        let mut out = format!("## {kind} `{}`\n\n{}\n\n", self.type_name, self.description);
        out.push_str(
            "| attribute | type | mode | force_new | sensitive | default | description |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|\n");
        for (name, a) in &self.attributes {
            let mode = match a.mode {
                AttrMode::Required => "required",
                AttrMode::Optional => "optional",
                AttrMode::Computed => "computed",
                AttrMode::OptionalComputed => "optional, computed",
            };
            let default = a
                .default
                .as_ref()
                .map_or(String::new(), |d| format!("`{d}`"));
            let force_new = match (&a.force_new_if, a.force_new) {
                (_, true) => "yes".to_string(),
                (Some(cond), false) => format!("if `{cond}`"),
                (None, false) => String::new(),
            };
            let mut description = a.description.clone();
            if !a.conflicts_with.is_empty() {
                let names: Vec<String> =
                    a.conflicts_with.iter().map(|n| format!("`{n}`")).collect();
                description.push_str(&format!(" Conflicts with {}.", names.join(", ")));
            }
            out.push_str(&format!(
                "| `{name}` | {} | {mode} | {force_new} | {} | {default} | {description} |\n",
                a.ty.name(),
                if a.sensitive { "yes" } else { "" },
            ));
        }
        for (name, a) in &self.attributes {
            blocks_markdown(&mut out, name, &a.ty);
        }
        out
    }
}

/// The field table of the nested blocks of type `ty` written as `name { ... }`, then those of
/// the blocks inside them (`statement.principals { ... }`).
fn blocks_markdown(out: &mut String, name: &str, ty: &AttrType) {
    let (AttrType::Set(inner) | AttrType::List(inner)) = ty else {
        return;
    };
    let AttrType::Object(fields) = inner.as_ref() else {
        return;
    };
    let kind = if matches!(ty, AttrType::Set(_)) {
        "compared as a set"
    } else {
        "in the order written"
    };
    out.push_str(&format!(
        "\n`{name} {{ ... }}` blocks (any number, {kind}):\n\n| field | type | required | default | description |\n|---|---|---|---|---|\n"
    ));
    for (f, field) in fields {
        let default = field
            .default
            .as_ref()
            .map_or(String::new(), |d| format!("`{d}`"));
        out.push_str(&format!(
            "| `{f}` | {} | {} | {default} | {} |\n",
            field.ty.name(),
            if field.required { "yes" } else { "" },
            field.description
        ));
    }
    for (f, field) in fields {
        blocks_markdown(out, &format!("{name}.{f}"), &field.ty);
    }
}

/// All schemas of one provider, parsed once.
#[derive(Debug, Default)]
pub struct Registry {
    pub(crate) resources: BTreeMap<String, Schema>,
    pub(crate) data: BTreeMap<String, Schema>,
    /// Resource types the provider deliberately does not implement, with the reason and what
    /// to use instead.
    pub(crate) refused: BTreeMap<String, String>,
}

/// No resource type at all: what a configuration that was loaded against no provider knows.
static EMPTY: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::default);

impl Default for &'static Registry {
    fn default() -> Self {
        &EMPTY
    }
}

impl Registry {
    /// Parses a provider's schemas, given as (type name, JSON text) pairs.
    ///
    /// # Panics
    /// When a schema is invalid: providers embed their schema files in the binary, and a test
    /// of each provider parses them all, so a failure here is a build defect, not bad input.
    pub(crate) fn parse(resources: &[(&str, &str)], data: &[(&str, &str)]) -> Registry {
        let parse_all = |list: &[(&str, &str)]| -> BTreeMap<String, Schema> {
            list.iter()
                .map(|(name, text)| {
                    let schema = Schema::parse(text)
                        .unwrap_or_else(|e| panic!("embedded schema {name} is invalid: {e}"));
                    ((*name).to_string(), schema)
                })
                .collect()
        };
        Registry {
            resources: parse_all(resources),
            data: parse_all(data),
            refused: BTreeMap::new(),
        }
    }

    /// The registry with resource types that are refused on purpose, as (type, reason) pairs.
    #[must_use]
    pub(crate) fn with_refused(mut self, refused: &[(&str, &str)]) -> Registry {
        self.refused = refused
            .iter()
            .map(|(t, why)| ((*t).to_string(), (*why).to_string()))
            .collect();
        self
    }
}

impl Registry {
    pub(crate) fn get(&self, mode: crate::lang::address::Mode, type_name: &str) -> Option<&Schema> {
        match mode {
            crate::lang::address::Mode::Managed => self.resources.get(type_name),
            crate::lang::address::Mode::Data => self.data.get(type_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conform_converts_primitives_and_rejects_mismatches() {
        assert_eq!(
            AttrType::String.conform(Value::Number(3.0)),
            Ok(Value::string("3"))
        );
        assert!(AttrType::Number.conform(Value::List(vec![])).is_err());
        assert!(AttrType::Json.conform(Value::string("{not json")).is_err());
        let map = AttrType::parse("map(string)").unwrap();
        assert!(map.conform(Value::string("x")).is_err());
    }

    #[test]
    fn a_block_inside_a_nested_block_is_a_list_or_set_of_objects_and_nothing_else() {
        let text = |inner_type: &str| {
            format!(
                r#"{{"type": "t", "attributes": {{"statement": {{"type": "list(object)", "mode": "optional", "block": {{
                    "principals": {{"type": "{inner_type}", "block": {{"type": {{"type": "string", "required": true}}}}}}
                }}}}}}}}"#
            )
        };
        let schema = Schema::parse(&text("set(object)")).unwrap();
        let AttrType::List(statement) = &schema.attributes["statement"].ty else {
            panic!("{:?}", schema.attributes["statement"].ty)
        };
        let AttrType::Object(fields) = statement.as_ref() else {
            panic!("{statement:?}")
        };
        assert_eq!(fields["principals"].ty.name(), "set(object)");
        let md = schema.to_markdown("data source");
        assert!(md.contains("`statement.principals { ... }` blocks"), "{md}");
        let e = Schema::parse(&text("string")).unwrap_err();
        assert!(e.contains("statement.principals"), "{e}");
    }
}
