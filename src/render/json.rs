//! Terraform's JSON plan representation (`terraform show -json`), so that existing plan
//! tooling can read skyform's plans: `format_version`, `resource_changes[]` with
//! `change.actions`, `before`, `after`, `after_unknown`, `resource_drift[]`, `output_changes`
//! and `planned_values`.
//!
//! One difference is deliberate: Terraform prints sensitive values in clear text and only
//! marks them in `before_sensitive`/`after_sensitive`; skyform marks them the same way and
//! writes `null` in their place, since plans are posted on pull requests.

use serde_json::{json, Map, Value as Json};

use crate::engine::diff::Action;
use crate::engine::plan::{DriftKind, Plan, ResourceChange};
use crate::lang::address::Address;
use crate::lang::value::Value;

use crate::render::json_config::{
    identity, redacted_attrs, sensitive_marks, FORMAT_VERSION, TERRAFORM_VERSION,
};

/// `resource_drift`: each object changed outside skyform, as Terraform writes it.
pub(crate) fn resource_drift(plan: &Plan, schemas: &crate::lang::schema::Registry) -> Vec<Json> {
    plan.drift
        .iter()
        .map(|d| {
            let sensitive = plan.sensitive_attrs(schemas, &d.addr);
            let mut m = identity(&d.addr);
            let (acts, after) = match (&d.kind, &d.live) {
                (DriftKind::Deleted, _) | (_, None) => (json!(["delete"]), Json::Null),
                (DriftKind::Changed(_), Some(live)) => {
                    (json!(["update"]), redacted_attrs(live, &sensitive))
                }
            };
            m.insert(
                "change".into(),
                json!({
                    "actions": acts,
                    "before": redacted_attrs(&d.prior, &sensitive),
                    "after": after,
                    "before_sensitive": sensitive_marks(&sensitive),
                    "after_sensitive": sensitive_marks(&sensitive),
                }),
            );
            Json::Object(m)
        })
        .collect()
}

fn actions(a: Action, create_before_destroy: bool) -> Json {
    match a {
        Action::Replace if create_before_destroy => json!(["create", "delete"]),
        Action::NoOp => json!(["no-op"]),
        Action::Create => json!(["create"]),
        Action::Update => json!(["update"]),
        // skyform replaces by deleting first: IAM names are unique.
        Action::Replace => json!(["delete", "create"]),
        Action::Delete => json!(["delete"]),
        Action::Read => json!(["read"]),
    }
}

/// Known values as JSON, with unknown parts left out (Terraform's `after`).
fn known(v: &Value) -> Json {
    match v {
        Value::Unknown => Json::Null,
        Value::List(items) => Json::Array(items.iter().map(known).collect()),
        Value::Object(m) => Json::Object(
            m.iter()
                .filter(|(_, v)| !matches!(v, Value::Unknown))
                .map(|(k, v)| (k.clone(), known(v)))
                .collect(),
        ),
        other => other.to_json(),
    }
}

/// Terraform's `after_unknown`: `true` where a value is unknown, mirrored into collections.
fn unknown_marks(v: &Value) -> Option<Json> {
    match v {
        Value::Unknown => Some(Json::Bool(true)),
        Value::List(items) if v.contains_unknown() => Some(Json::Array(
            items
                .iter()
                .map(|i| unknown_marks(i).unwrap_or(Json::Bool(false)))
                .collect(),
        )),
        Value::Object(m) if v.contains_unknown() => Some(Json::Object(
            m.iter()
                .filter_map(|(k, v)| unknown_marks(v).map(|u| (k.clone(), u)))
                .collect(),
        )),
        _ => None,
    }
}

fn after_of(c: &ResourceChange) -> Json {
    if c.action == Action::Delete {
        return Json::Null;
    }
    Json::Object(
        c.after
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Unknown))
            .map(|(k, v)| {
                let v = if c.sensitive.contains(k) {
                    Json::Null
                } else {
                    known(v)
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

fn resource_change(c: &ResourceChange) -> Json {
    let mut m = identity(&c.addr);
    let after_unknown = if c.action == Action::Delete {
        json!({})
    } else {
        Json::Object(
            c.after
                .iter()
                .filter_map(|(k, v)| unknown_marks(v).map(|u| (k.clone(), u)))
                .collect(),
        )
    };
    let mut change = Map::new();
    change.insert("actions".into(), actions(c.action, c.create_before_destroy));
    change.insert(
        "before".into(),
        c.before
            .as_ref()
            .map_or(Json::Null, |b| redacted_attrs(b, &c.sensitive)),
    );
    change.insert("after".into(), after_of(c));
    change.insert("after_unknown".into(), after_unknown);
    change.insert("before_sensitive".into(), sensitive_marks(&c.sensitive));
    change.insert(
        "after_sensitive".into(),
        if c.action == Action::Delete {
            Json::Bool(false)
        } else {
            sensitive_marks(&c.sensitive)
        },
    );
    if c.action == Action::Replace {
        let paths: Vec<Json> = c
            .changes
            .iter()
            .filter(|ch| ch.forces_replacement)
            .map(|ch| json!([ch.name]))
            .collect();
        change.insert("replace_paths".into(), Json::Array(paths));
    }
    m.insert("change".into(), Json::Object(change));
    if let Some(id) = &c.importing {
        if let Some(Json::Object(change)) = m.get_mut("change") {
            change.insert("importing".into(), json!({ "id": id }));
        }
    }
    if let Some(from) = &c.previous_address {
        m.insert("previous_address".into(), from.to_string().into());
    }
    let reason = crate::engine::plan::Reason::action_reason(c.reason.as_ref(), c.action);
    if let Some(r) = reason {
        m.insert("action_reason".into(), r.into());
    }
    Json::Object(m)
}

/// The whole JSON plan.
pub(crate) fn plan_json(plan: &Plan, schemas: &crate::lang::schema::Registry) -> Json {
    let mut resource_changes: Vec<Json> = plan.changes.iter().map(resource_change).collect();
    // Terraform 1.7's form for what a `removed` block forgets.
    resource_changes.extend(plan.forget.iter().map(|(addr, _)| {
        let mut m = identity(addr);
        m.insert(
            "change".into(),
            json!({"actions": ["forget"], "before": null, "after": null}),
        );
        Json::Object(m)
    }));
    let resource_drift = resource_drift(plan, schemas);
    let output_changes: Map<String, Json> = plan
        .outputs
        .iter()
        .map(|o| {
            let before = match (&o.before, o.sensitive) {
                (Some(_), true) | (None, _) => Json::Null,
                (Some(b), false) => b.clone(),
            };
            let after = match (&o.after, o.sensitive) {
                (Some(_), true) | (None, _) => Json::Null,
                (Some(a), false) => known(a),
            };
            let acts = match (&o.before, &o.after) {
                (None, Some(_)) => json!(["create"]),
                (Some(_), None) => json!(["delete"]),
                (Some(b), Some(a)) if a.contains_unknown() || &a.to_json() != b => {
                    json!(["update"])
                }
                _ => json!(["no-op"]),
            };
            let unknown = o.after.as_ref().is_some_and(Value::contains_unknown);
            (
                o.name.clone(),
                json!({
                    "actions": acts,
                    "before": before,
                    "after": after,
                    "after_unknown": unknown,
                    "before_sensitive": o.sensitive,
                    "after_sensitive": o.sensitive,
                }),
            )
        })
        .collect();
    let planned: Vec<(Address, Json)> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| {
            let mut m = identity(&c.addr);
            m.insert("schema_version".into(), 0.into());
            m.insert("values".into(), after_of(c));
            m.insert("sensitive_values".into(), sensitive_marks(&c.sensitive));
            (c.addr.clone(), Json::Object(m))
        })
        .collect();
    let planned_outputs: Map<String, Json> = plan
        .outputs
        .iter()
        .filter_map(|o| {
            let after = o.after.as_ref()?;
            let mut m = Map::new();
            m.insert("sensitive".into(), o.sensitive.into());
            // Terraform leaves out the value of an output not known until apply.
            if !after.contains_unknown() {
                let value = if o.sensitive {
                    Json::Null
                } else {
                    known(after)
                };
                m.insert("value".into(), value);
            }
            Some((o.name.clone(), Json::Object(m)))
        })
        .collect();
    let mut out = json!({
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "skyform_version": env!("CARGO_PKG_VERSION"),
        "applyable": plan.has_effect(),
        "complete": plan.targets.is_empty(),
        "errored": false,
        "planned_values": {
            "outputs": planned_outputs,
            "root_module": crate::render::json_config::module_tree(&planned, &[]),
        },
        "resource_drift": resource_drift,
        "resource_changes": resource_changes,
        "output_changes": output_changes,
        "prior_state": {
            "format_version": FORMAT_VERSION,
            "terraform_version": TERRAFORM_VERSION,
            "values": crate::render::json_config::state_values(&plan.state, schemas),
        },
        "relevant_attributes": relevant_attributes(plan),
    });
    if let Json::Object(m) = &mut out {
        if let Some(Json::Object(described)) = &plan.described {
            m.extend(described.clone());
        }
        if let Some(recovery) = recovery_json(plan) {
            m.insert("skyform_recovery".into(), recovery);
        }
    }
    out
}

/// Terraform's `relevant_attributes`: the attributes changed outside skyform that the plan
/// takes into account. skyform reports drift only where it matters to the plan (ignored
/// attributes are dropped before), so these are the drifted attributes, one path each.
fn relevant_attributes(plan: &Plan) -> Json {
    plan.drift
        .iter()
        .filter_map(|d| match &d.kind {
            DriftKind::Changed(changes) => Some((d, changes)),
            DriftKind::Deleted => None,
        })
        .flat_map(|(d, changes)| {
            changes
                .iter()
                .map(|c| json!({"resource": d.addr.to_string(), "attribute": [c.name]}))
        })
        .collect()
}

/// What recovery found (skyform's own key; Terraform has nothing like it): the objects apply
/// will record, with the reason when they are to be replaced, the tagged objects left alone,
/// and the warnings. `None` when there is nothing, so that ordinary plans are Terraform's.
fn recovery_json(plan: &Plan) -> Option<Json> {
    let rec = &plan.recovery;
    if rec.adopted.is_empty() && rec.strays.is_empty() && rec.warnings.is_empty() {
        return None;
    }
    let adopted: Vec<Json> = rec
        .adopted
        .iter()
        .map(|r| {
            json!({
                "address": r.addr.to_string(),
                "id": r.id,
                "replace_reason": rec.replace.get(&r.addr),
            })
        })
        .collect();
    let strays: Vec<Json> = rec
        .strays
        .iter()
        .map(|s| json!({"address": s.addr.to_string(), "id": s.id}))
        .collect();
    Some(json!({"adopted": adopted, "tagged_not_in_state": strays, "warnings": rec.warnings}))
}
