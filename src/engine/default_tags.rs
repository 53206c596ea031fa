//! The provider's `default_tags`, with Terraform's AWS provider's semantics: a taggable
//! resource (one whose schema has a computed `tags_all` beside `tags`) gets `tags_all`, the
//! default tags merged under its own `tags` (its own win). `tags_all` is what the provider is
//! sent and what is compared with the cloud; `tags` stays what the block says. So a change of
//! the default tags updates every taggable resource in place, and an object whose tags equal
//! `tags_all` has no change and no drift.
//!
//! Providers know only the tags an object carries: what they return holds all of them under
//! `tags` (see `Provider`). `split` turns that back into `tags_all` (all of them) and `tags`
//! (those the block accounts for), from what was last sent, so that refresh needs no
//! configuration: the keys that only the default tags put there are left out of `tags`.

use std::collections::BTreeMap;

use crate::lang::address::{Address, Mode};
use crate::lang::config::Config;
use crate::lang::diagnostic::Diagnostic;
use crate::lang::schema::{AttrType, Schema};
use crate::lang::value::Value;
use crate::state::Attrs;

/// The computed attribute that holds every tag the object should carry.
pub(crate) const TAGS_ALL: &str = "tags_all";
const TAGS: &str = "tags";

/// Whether a schema's type takes the default tags.
pub(crate) fn taggable(schema: &Schema) -> bool {
    schema.attr(TAGS_ALL).is_some() && schema.attr(TAGS).is_some()
}

/// Whether a block of the configuration takes the default tags (so reads what they read).
pub(crate) fn applies(config: &Config, addr: &Address) -> bool {
    addr.mode == Mode::Managed
        && config
            .schemas
            .get(Mode::Managed, &addr.type_name)
            .is_some_and(taggable)
}

/// Whether the diff compares a computed attribute: `tags_all`, once there is a value to
/// compare it with (a state written before it existed has none).
pub(crate) fn compared(name: &str, desired: &BTreeMap<String, Value>) -> bool {
    name == TAGS_ALL && desired.get(name).is_some_and(|v| !v.is_null())
}

/// What a diagnostic about the default tags calls them.
pub(crate) const OWNER: &str = "provider \"aws\" default_tags";

/// Adds the desired `tags_all` to a taggable resource's evaluated attributes, marking it
/// sensitive when either side is. Unknown while either side is. `evaluated` is the default
/// tags' expression evaluated in the resource's context, with whether it read a secret.
pub(crate) fn add_tags_all(
    default_tags: Option<&crate::lang::config::Expr>,
    schema: &Schema,
    evaluated: Option<(Value, bool)>,
    attrs: &mut BTreeMap<String, Value>,
    sensitive: &mut std::collections::BTreeSet<String>,
) -> Result<(), Diagnostic> {
    if !taggable(schema) {
        return Ok(());
    }
    let defaults = match (default_tags, evaluated) {
        (Some(e), Some((v, secret))) => {
            if secret {
                sensitive.insert(TAGS_ALL.into());
            }
            AttrType::Map(Box::new(AttrType::String))
                .conform(v)
                .map_err(|m| {
                    Diagnostic::error(format!("wrong type for {OWNER}: {m}"))
                        .named("default_tags")
                        .at(e.span.clone())
                })?
        }
        _ => Value::Null,
    };
    if sensitive.contains(TAGS) {
        sensitive.insert(TAGS_ALL.into());
    }
    let merged = merge(&defaults, attrs.get(TAGS).unwrap_or(&Value::Null));
    attrs.insert(TAGS_ALL.into(), merged);
    Ok(())
}

/// The default tags with the resource's own over them; null when there are none, as for a
/// resource without tags, so that an untagged object is sent no tags at all.
fn merge(defaults: &Value, tags: &Value) -> Value {
    let side = |v: &Value| match v {
        Value::Null => Some(BTreeMap::new()),
        Value::Object(m) => Some(m.clone()),
        _ => None,
    };
    match (side(defaults), side(tags)) {
        (Some(mut all), Some(own)) => {
            all.extend(own);
            if all.is_empty() {
                Value::Null
            } else {
                Value::Object(all)
            }
        }
        _ => Value::Unknown,
    }
}

/// Splits what a provider returned for a taggable type (every tag under `tags`) into
/// `tags_all` and `tags`, given the attributes it was last sent (`sent`: the planned ones
/// after a create or update, the state's before a refresh). A key that `sent` had in
/// `tags_all` but not in `tags` came from the default tags, so it is not the block's.
pub(crate) fn split(schema: &Schema, attrs: &mut Attrs, sent: &Attrs) {
    if !taggable(schema) {
        return;
    }
    let keys = |a: &Attrs, name: &str| -> Vec<String> {
        a.get(name)
            .and_then(serde_json::Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let own = keys(sent, TAGS);
    let defaulted: Vec<String> = keys(sent, TAGS_ALL)
        .into_iter()
        .filter(|k| !own.contains(k))
        .collect();
    // A provider that echoes what it was sent returns `tags_all` itself; it is then the whole.
    let all = match attrs.get(TAGS_ALL).or_else(|| attrs.get(TAGS)) {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let mine: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .filter(|(k, _)| !defaulted.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attrs.insert(TAGS_ALL.into(), serde_json::Value::Object(all));
    attrs.insert(TAGS.into(), serde_json::Value::Object(mine));
}

/// The attributes as a provider takes them: every tag to send under `tags`, the way the
/// object carries them.
pub(crate) fn flatten(mut attrs: Attrs) -> Attrs {
    if let Some(all) = attrs.remove(TAGS_ALL) {
        attrs.insert(TAGS.into(), all);
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vpc() -> &'static Schema {
        &crate::aws::schemas::registry().resources["aws_vpc"]
    }

    fn attrs(v: serde_json::Value) -> Attrs {
        match v {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            _ => Attrs::new(),
        }
    }

    #[test]
    fn the_resource_s_own_tags_win_over_the_default_ones() {
        let d = Value::Object(BTreeMap::from([
            ("env".into(), Value::string("prod")),
            ("team".into(), Value::string("core")),
        ]));
        let own = Value::Object(BTreeMap::from([("team".into(), Value::string("net"))]));
        assert_eq!(
            merge(&d, &own),
            Value::Object(BTreeMap::from([
                ("env".into(), Value::string("prod")),
                ("team".into(), Value::string("net")),
            ]))
        );
        assert_eq!(merge(&d, &Value::Unknown), Value::Unknown);
        assert_eq!(merge(&Value::Null, &Value::Null), Value::Null);
    }

    #[test]
    fn a_tag_only_the_defaults_put_there_is_not_the_block_s() {
        let sent = attrs(json!({
            "tags": {"Name": "a", "env": "prod"},
            "tags_all": {"Name": "a", "env": "prod", "team": "core"},
        }));
        let mut read =
            attrs(json!({"tags": {"Name": "a", "env": "prod", "team": "core", "x": "1"}}));
        split(vpc(), &mut read, &sent);
        assert_eq!(read["tags"], json!({"Name": "a", "env": "prod", "x": "1"}));
        assert_eq!(
            read["tags_all"],
            json!({"Name": "a", "env": "prod", "team": "core", "x": "1"})
        );
    }

    #[test]
    fn a_state_from_before_default_tags_keeps_every_tag_as_the_block_s() {
        let sent = attrs(json!({"tags": {"Name": "a"}}));
        let mut read = attrs(json!({"tags": {"Name": "a", "other": "b"}}));
        split(vpc(), &mut read, &sent);
        assert_eq!(read["tags"], json!({"Name": "a", "other": "b"}));
        assert_eq!(read["tags_all"], read["tags"]);
    }

    #[test]
    fn every_managed_type_with_tags_has_tags_all_and_no_data_source_does() {
        let reg = crate::aws::schemas::registry();
        for (name, s) in &reg.resources {
            assert_eq!(
                s.attr(TAGS).is_some(),
                s.attr(TAGS_ALL).is_some(),
                "{name}: tags and tags_all go together"
            );
            if let Some(a) = s.attr(TAGS_ALL) {
                assert!(!a.settable(), "{name}.tags_all is computed");
            }
        }
        for (name, s) in &reg.data {
            assert!(s.attr(TAGS_ALL).is_none(), "data {name} has no tags_all");
        }
    }

    #[test]
    fn default_tags_read_locals_and_a_change_of_them_updates_in_place_then_converges() {
        use crate::engine::tests::{plan_and_apply, plan_only, workspace};
        let src = |env: &str| {
            format!(
                "locals {{\n  common = {{ env = \"{env}\" }}\n}}\n\
                 provider \"aws\" {{\n  default_tags {{\n    tags = local.common\n  }}\n}}\n\
                 resource \"aws_iam_user\" \"u\" {{\n  name = \"u\"\n  tags = {{ Name = \"u\" }}\n}}\n"
            )
        };
        let p = crate::engine::fake::FakeProvider::<crate::aws::AwsProvider>::default();
        let mut store = crate::state::MemoryState::default();
        let (planned, report) = plan_and_apply(&p, &workspace(&src("dev"), &[]), &mut store);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(
            planned.changes[0].after[TAGS_ALL],
            Value::Object(BTreeMap::from([
                ("Name".into(), Value::string("u")),
                ("env".into(), Value::string("dev")),
            ]))
        );
        let user = p.cloud.borrow().objects[&("aws_iam_user".to_string(), "u".to_string())].clone();
        assert_eq!(
            user[TAGS],
            json!({"Name": "u", "env": "dev"}),
            "the cloud got tags_all"
        );
        let opts = crate::engine::plan::PlanOptions::default();
        let same = plan_only(&p, &workspace(&src("dev"), &[]), &mut store, &opts);
        assert!(
            !same.has_changes() && same.drift.is_empty(),
            "{:?}",
            same.changes
        );

        let ws = workspace(&src("prod"), &[]);
        let (changed, _) = plan_and_apply(&p, &ws, &mut store);
        let names: Vec<&str> = changed.changes[0]
            .changes
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, [TAGS_ALL], "only tags_all changes");
        let again = plan_only(&p, &ws, &mut store, &opts);
        assert!(
            !again.has_changes() && again.drift.is_empty(),
            "{:?}",
            again.changes
        );
    }
}
