//! The pure decision for one resource: create, update, replace or nothing, and which
//! attributes changed. Driven entirely by the schema: only settable attributes are compared,
//! `json` attributes compare by their kind's rule (the provider's) or as JSON, and a changed
//! `force_new` attribute (or a `force_new_if` one whose condition holds) means replacement.

use std::collections::BTreeMap;

use crate::engine::provider::Provider;
use crate::lang::schema::{AttrType, Schema};
use crate::lang::value::Value;
use crate::state::Attrs;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Action {
    NoOp,
    Create,
    Update,
    /// Delete, then create (IAM names are unique, so both cannot exist at once).
    Replace,
    Delete,
    /// A data source read during apply, since its configuration waits on values known only
    /// then, or its `depends_on` on a change (Terraform's `<=`).
    Read,
}

/// One attribute whose value will change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AttrChange {
    pub(crate) name: String,
    pub(crate) before: Value,
    pub(crate) after: Value,
    pub(crate) forces_replacement: bool,
}

/// Whether two values of an attribute type mean the same thing to the cloud. A `json`
/// attribute of a `kind` is compared by the provider's rule for that kind, if it has one, and
/// as JSON otherwise.
pub(crate) fn equal<P: Provider>(ty: &AttrType, kind: Option<&str>, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Unknown, _) | (_, Value::Unknown) => false,
        _ if a.is_empty_like()
            && b.is_empty_like()
            && !matches!(ty, AttrType::Bool | AttrType::Number) =>
        {
            true
        }
        (Value::String(x), Value::String(y)) if *ty == AttrType::Json => kind
            .and_then(|k| P::same_document(k, x, y))
            .unwrap_or_else(|| crate::lang::document::same_json(x, y)),
        (Value::List(_), Value::List(_)) if matches!(ty, AttrType::Set(_)) => {
            // Conforming fills a nested block's defaults and orders every inner set.
            let norm = |v: &Value| match ty.conform(v.clone()) {
                Ok(Value::List(items)) => items,
                _ => match v {
                    Value::List(items) => items.clone(),
                    _ => Vec::new(),
                },
            };
            let (mut x, mut y) = (norm(a), norm(b));
            crate::lang::functions::sort_set(&mut x);
            crate::lang::functions::sort_set(&mut y);
            x == y
        }
        _ => a == b,
    }
}

/// Compares the desired settable attributes with the live ones.
pub(crate) fn diff<P: Provider>(
    schema: &Schema,
    live: Option<&Attrs>,
    desired: &BTreeMap<String, Value>,
) -> (Action, Vec<AttrChange>) {
    let Some(live) = live else {
        return (Action::Create, Vec::new());
    };
    let mut changes = Vec::new();
    for (name, attr) in &schema.attributes {
        if !attr.settable() && !crate::engine::default_tags::compared(name, desired) {
            continue;
        }
        let after = desired.get(name).cloned().unwrap_or(Value::Null);
        if attr.mode == crate::lang::schema::AttrMode::OptionalComputed && after.is_null() {
            continue;
        }
        let before = live.get(name).map_or(Value::Null, Value::from_json);
        if !equal::<P>(&attr.ty, attr.kind.as_deref(), &before, &after) {
            changes.push(AttrChange {
                name: name.clone(),
                before,
                after,
                forces_replacement: attr.forces_new(desired),
            });
        }
    }
    let action = if changes.is_empty() {
        Action::NoOp
    } else if changes.iter().any(|c| c.forces_replacement) {
        Action::Replace
    } else {
        Action::Update
    };
    (action, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    // The AWS provider's rules: these tests use its schemas and its policy documents.
    use crate::aws::schemas::registry;
    use crate::aws::AwsProvider as Aws;

    fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    fn desired(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn no_prior_object_means_create() {
        let s = &registry().resources["aws_iam_role"];
        assert_eq!(diff::<Aws>(s, None, &desired(&[])).0, Action::Create);
    }

    #[test]
    fn an_equivalent_policy_and_absent_tags_are_no_change() {
        let s = &registry().resources["aws_iam_role"];
        let live = attrs(&[
            ("name", "r".into()),
            ("path", "/".into()),
            (
                "assume_role_policy",
                r#"{"Statement":[{"Action":["sts:AssumeRole"],"Effect":"Allow"}]}"#.into(),
            ),
            ("max_session_duration", 3600.into()),
            ("arn", "arn:x".into()),
        ]);
        let want = desired(&[
            ("name", Value::string("r")),
            ("path", Value::string("/")),
            (
                "assume_role_policy",
                Value::string(r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#),
            ),
            ("max_session_duration", Value::Number(3600.0)),
            ("tags", Value::Object(BTreeMap::new())),
        ]);
        let (action, changes) = diff::<Aws>(s, Some(&live), &want);
        assert_eq!(action, Action::NoOp, "{changes:?}");
    }

    #[test]
    fn a_force_new_change_means_replace_and_others_mean_update() {
        let s = &registry().resources["aws_iam_role"];
        let live = attrs(&[
            ("name", "r".into()),
            ("path", "/".into()),
            ("assume_role_policy", "{}".into()),
            ("max_session_duration", 3600.into()),
        ]);
        let mut want = desired(&[
            ("name", Value::string("r")),
            ("path", Value::string("/")),
            ("assume_role_policy", Value::string("{}")),
            ("max_session_duration", Value::Number(7200.0)),
        ]);
        assert_eq!(diff::<Aws>(s, Some(&live), &want).0, Action::Update);
        want.insert("name".into(), Value::string("r2"));
        let (action, changes) = diff::<Aws>(s, Some(&live), &want);
        assert_eq!(action, Action::Replace);
        assert!(changes
            .iter()
            .any(|c| c.name == "name" && c.forces_replacement));
    }
}
