//! The parts of Terraform's JSON plan that describe the configuration and the state rather
//! than the changes: `variables`, `configuration` (provider configurations, resources with
//! their `expressions`, outputs, module calls), the `values` representation of a state
//! (`prior_state`, and `skyform show --json` without a plan file) and `timestamp`; and the
//! pieces of a resource object that the plan's JSON (`render::json`) shares with these.
//!
//! `variables`, `configuration` and `timestamp` are made when the plan is (`described`) and
//! kept with it, so that `show --json PLANFILE` prints them without the configuration at hand.
//! Like the rest of skyform's JSON, they hold no secret: a sensitive variable's value, the
//! default of a sensitive variable, and a literal written in a sensitive attribute or output
//! are left out (Terraform prints them in clear text).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value as Json};

use crate::engine::plan::{sensitive_of, Workspace};
use crate::lang::address::InstanceKey;
use crate::lang::address::{Address, Mode, ModuleStep};
use crate::lang::config::{Config, Expr, ProviderBlock, Repetition};
use crate::lang::eval::{references, EvalCtx, RefTarget, Reference};
use crate::lang::schema::Registry;
use crate::state::Attrs;
use crate::state::State;

/// The provider's full name, as Terraform writes it in `provider_name` and `full_name`.
pub(crate) const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

/// The Terraform language version skyform implements, written as `terraform_version`: the key
/// by which tools (checkov among them) recognise a Terraform plan or state at all.
pub(crate) const TERRAFORM_VERSION: &str = "1.9.0";

/// The JSON plan and state format version, Terraform's current one.
pub(crate) const FORMAT_VERSION: &str = "1.2";

/// What a plan's JSON says of the workspace it was made from: `variables`, `configuration`
/// and `timestamp`, as one object whose keys go into the plan's top level.
pub(crate) fn described(ws: &Workspace) -> Json {
    let variables: Map<String, Json> = ws
        .vars
        .values
        .iter()
        .map(|(name, v)| {
            let value = if ws.vars.sensitive.contains(name) {
                Json::Null
            } else {
                v.to_json()
            };
            (name.clone(), json!({ "value": value }))
        })
        .collect();
    json!({
        "variables": variables,
        "configuration": configuration(&ws.config),
        "timestamp": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    })
}

/// Terraform's `configuration`: the provider configurations and the root module.
fn configuration(config: &Config) -> Json {
    let mut providers = Map::new();
    providers.insert("aws".into(), provider_config(config, "", &config.provider));
    for (alias, block) in &config.aliases {
        providers.insert(
            crate::lang::config::provider_name(alias),
            provider_config(config, alias, block),
        );
    }
    let root_keys = |alias: &str| crate::lang::config::provider_name(alias);
    json!({
        "provider_config": providers,
        "root_module": module(config, &[], &root_keys),
    })
}

fn provider_config(config: &Config, alias: &str, block: &ProviderBlock) -> Json {
    let mut expressions = Map::new();
    for (name, e) in [
        ("region", &block.region),
        ("profile", &block.profile),
        ("default_tags", &block.default_tags),
    ] {
        if let Some(e) = e {
            expressions.insert(name.into(), expression(config, e, false));
        }
    }
    let mut m = Map::new();
    m.insert("name".into(), "aws".into());
    m.insert("full_name".into(), PROVIDER.into());
    if !alias.is_empty() {
        m.insert("alias".into(), alias.into());
    }
    m.insert("expressions".into(), Json::Object(expressions));
    Json::Object(m)
}

/// One module's configuration. `provider_key` maps a provider alias as this module writes it
/// to the key of the root's `provider_config` it resolves to (through the calls' `providers`),
/// so that a tool can follow every resource to a configuration that exists.
fn module(config: &Config, path: &[String], provider_key: &dyn Fn(&str) -> String) -> Json {
    let resources: Vec<Json> = config
        .resources
        .values()
        .map(|block| {
            let mut addr = block.addr.clone();
            addr.module = path
                .iter()
                .map(|name| ModuleStep {
                    name: name.clone(),
                    key: None,
                })
                .collect();
            let sensitive = sensitive_of(config.schemas, &addr);
            let mut m = Map::new();
            m.insert("address".into(), addr.to_string().into());
            m.insert(
                "mode".into(),
                match addr.mode {
                    Mode::Managed => "managed",
                    Mode::Data => "data",
                }
                .into(),
            );
            m.insert("type".into(), addr.type_name.clone().into());
            m.insert("name".into(), addr.name.clone().into());
            let alias = block.provider.as_ref().map_or("", |(a, _)| a.as_str());
            m.insert("provider_config_key".into(), provider_key(alias).into());
            m.insert(
                "expressions".into(),
                Json::Object(
                    block
                        .attrs
                        .iter()
                        .map(|(k, a)| {
                            (
                                k.clone(),
                                expression(config, &a.value, sensitive.contains(k)),
                            )
                        })
                        .collect(),
                ),
            );
            m.insert("schema_version".into(), 0.into());
            repetition(config, block.repetition.as_ref(), &mut m);
            if !block.depends_on.is_empty() {
                m.insert(
                    "depends_on".into(),
                    block.depends_on.iter().map(|(d, _)| d.clone()).collect(),
                );
            }
            Json::Object(m)
        })
        .collect();
    let outputs: Map<String, Json> = config
        .outputs
        .iter()
        .map(|(name, o)| {
            let mut m = Map::new();
            if let Some(e) = &o.value {
                m.insert("expression".into(), expression(config, e, o.sensitive));
            }
            if o.sensitive {
                m.insert("sensitive".into(), true.into());
            }
            if let Some(d) = &o.description {
                m.insert("description".into(), d.clone().into());
            }
            (name.clone(), Json::Object(m))
        })
        .collect();
    let variables: Map<String, Json> = config
        .variables
        .iter()
        .map(|(name, v)| {
            let mut m = Map::new();
            if let (Some(d), false) = (&v.default, v.sensitive) {
                if let Some(value) = constant(config, d) {
                    m.insert("default".into(), value);
                }
            }
            if let Some(d) = &v.description {
                m.insert("description".into(), d.clone().into());
            }
            if v.sensitive {
                m.insert("sensitive".into(), true.into());
            }
            (name.clone(), Json::Object(m))
        })
        .collect();
    let module_calls: Map<String, Json> = config
        .modules
        .iter()
        .map(|(name, call)| {
            let mut child_path = path.to_vec();
            child_path.push(name.clone());
            // The module's alias, through the call's `providers`, to the root's key; an alias
            // the call does not pass is the caller's own of that name (its default, for "").
            let child_key = |alias: &str| match call.providers.get(alias) {
                Some((caller_alias, _)) => provider_key(caller_alias),
                None => provider_key(alias),
            };
            let mut m = Map::new();
            m.insert("source".into(), call.source.clone().into());
            m.insert(
                "expressions".into(),
                Json::Object(
                    call.inputs
                        .iter()
                        .map(|(k, a)| {
                            let sensitive =
                                call.config.variables.get(k).is_some_and(|v| v.sensitive);
                            (k.clone(), expression(config, &a.value, sensitive))
                        })
                        .collect(),
                ),
            );
            repetition(config, call.repetition.as_ref(), &mut m);
            m.insert(
                "module".into(),
                module(&call.config, &child_path, &child_key),
            );
            (name.clone(), Json::Object(m))
        })
        .collect();
    let mut m = Map::new();
    if !outputs.is_empty() {
        m.insert("outputs".into(), Json::Object(outputs));
    }
    m.insert("resources".into(), Json::Array(resources));
    if !module_calls.is_empty() {
        m.insert("module_calls".into(), Json::Object(module_calls));
    }
    if !variables.is_empty() {
        m.insert("variables".into(), Json::Object(variables));
    }
    Json::Object(m)
}

fn repetition(config: &Config, r: Option<&Repetition>, m: &mut Map<String, Json>) {
    match r {
        Some(Repetition::Count(e)) => {
            m.insert("count_expression".into(), expression(config, e, false));
        }
        Some(Repetition::ForEach(e)) => {
            m.insert("for_each_expression".into(), expression(config, e, false));
        }
        None => {}
    }
}

/// Terraform's expression representation: `{"references": [...]}` when the expression reads
/// anything, else `{"constant_value": v}` when it is a constant (no function call either, as
/// in Terraform, which evaluates it with no context). A sensitive one gives no value.
fn expression(config: &Config, e: &Expr, sensitive: bool) -> Json {
    let (refs, _) = references(&e.expr);
    if !refs.is_empty() {
        let mut seen = BTreeSet::new();
        let list: Vec<Json> = refs
            .iter()
            .flat_map(reference_texts)
            .filter(|t| seen.insert(t.clone()))
            .map(Json::String)
            .collect();
        return json!({ "references": list });
    }
    match (sensitive, constant(config, e)) {
        (false, Some(v)) => json!({ "constant_value": v }),
        _ => json!({}),
    }
}

/// A constant expression's value: one that reads nothing and calls no function.
fn constant(config: &Config, e: &Expr) -> Option<Json> {
    let (refs, funcs) = references(&e.expr);
    if !refs.is_empty() || !funcs.is_empty() {
        return None;
    }
    let (v, _) = EvalCtx::new(config.dir.clone()).eval_top(&e.expr).ok()?;
    (!v.contains_unknown()).then(|| v.to_json())
}

/// A reference as Terraform lists it: the whole traversal, then each shorter prefix that is
/// still an object (`aws_vpc.main.id`, `aws_vpc.main`; with an instance key,
/// `aws_iam_user.u[0].arn`, `aws_iam_user.u[0]`, `aws_iam_user.u`).
fn reference_texts(r: &Reference) -> Vec<String> {
    let key = r.index.as_ref().and_then(|e| match e {
        hcl_edit::expr::Expression::Number(n) => Some(format!("[{}]", n.value())),
        hcl_edit::expr::Expression::String(s) => Some(format!("[{:?}]", s.value().as_str())),
        _ => None,
    });
    match (&r.target, r.attr.as_ref().or(r.indexed_attr.as_ref())) {
        (RefTarget::Resource(a), attr) => {
            let base = resource_base(a);
            let mut out = Vec::new();
            if let Some(k) = &key {
                if let Some(attr) = attr {
                    out.push(format!("{base}{k}.{attr}"));
                }
                out.push(format!("{base}{k}"));
            } else if let Some(attr) = attr {
                out.push(format!("{base}.{attr}"));
            }
            out.push(base);
            out
        }
        (RefTarget::Module(name), Some(attr)) if r.attr.is_some() => {
            vec![format!("module.{name}.{attr}"), format!("module.{name}")]
        }
        _ => vec![r.text.clone()],
    }
}

fn resource_base(a: &Address) -> String {
    match a.mode {
        Mode::Managed => format!("{}.{}", a.type_name, a.name),
        Mode::Data => format!("data.{}.{}", a.type_name, a.name),
    }
}

/// Terraform's `values` representation of a state: its outputs, and its resources under
/// `root_module`, those of modules under `child_modules`. Sensitive values are `null`, and
/// marked in `sensitive_values`.
pub(crate) fn state_values(state: &State, schemas: &Registry) -> Json {
    let resources: Vec<(Address, Json)> = state
        .resources
        .iter()
        .map(|(addr, r)| {
            let mut sensitive = sensitive_of(schemas, addr);
            sensitive.extend(r.sensitive.iter().cloned());
            let mut m = identity(addr);
            m.insert("schema_version".into(), 0.into());
            m.insert("values".into(), redacted_attrs(&r.attrs, &sensitive));
            m.insert("sensitive_values".into(), sensitive_marks(&sensitive));
            (addr.clone(), Json::Object(m))
        })
        .collect();
    let outputs: Map<String, Json> = state
        .outputs
        .iter()
        .map(|(name, o)| {
            let value = if o.sensitive {
                Json::Null
            } else {
                o.value.clone()
            };
            (
                name.clone(),
                json!({ "sensitive": o.sensitive, "value": value }),
            )
        })
        .collect();
    json!({
        "outputs": outputs,
        "root_module": module_tree(&resources, &[]),
    })
}

/// The resources of the module instance `at` and, under `child_modules`, those of the
/// module instances below it, as Terraform nests them.
pub(crate) fn module_tree(resources: &[(Address, Json)], at: &[ModuleStep]) -> Json {
    let here: Vec<Json> = resources
        .iter()
        .filter(|(a, _)| a.module == at)
        .map(|(_, j)| j.clone())
        .collect();
    let mut children: Vec<&[ModuleStep]> = Vec::new();
    for (a, _) in resources {
        if a.module.len() > at.len() && a.module.starts_with(at) {
            let child = &a.module[..=at.len()];
            if !children.contains(&child) {
                children.push(child);
            }
        }
    }
    let mut m = Map::new();
    if !at.is_empty() {
        m.insert(
            "address".into(),
            crate::lang::address::module_text(at).into(),
        );
    }
    m.insert("resources".into(), Json::Array(here));
    if !children.is_empty() {
        m.insert(
            "child_modules".into(),
            children
                .into_iter()
                .map(|c| module_tree(resources, c))
                .collect(),
        );
    }
    Json::Object(m)
}

/// `skyform show --json` without a plan file: the state as Terraform's `values` document.
pub(crate) fn state_json(state: &State, schemas: &Registry) -> Json {
    json!({
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "skyform_version": env!("CARGO_PKG_VERSION"),
        "values": state_values(state, schemas),
    })
}

/// The address fields every resource object carries.
pub(crate) fn identity(addr: &Address) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("address".into(), addr.to_string().into());
    if !addr.module.is_empty() {
        m.insert(
            "module_address".into(),
            crate::lang::address::module_text(&addr.module).into(),
        );
    }
    m.insert(
        "mode".into(),
        match addr.mode {
            Mode::Managed => "managed",
            Mode::Data => "data",
        }
        .into(),
    );
    m.insert("type".into(), addr.type_name.clone().into());
    m.insert("name".into(), addr.name.clone().into());
    match &addr.key {
        Some(InstanceKey::Int(i)) => {
            m.insert("index".into(), (*i).into());
        }
        Some(InstanceKey::Str(s)) => {
            m.insert("index".into(), s.clone().into());
        }
        None => {}
    }
    m.insert("provider_name".into(), PROVIDER.into());
    m
}

pub(crate) fn redacted_attrs(
    attrs: &Attrs,
    sensitive: &std::collections::BTreeSet<String>,
) -> Json {
    Json::Object(
        attrs
            .iter()
            .map(|(k, v)| {
                let v = if sensitive.contains(k) {
                    Json::Null
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

pub(crate) fn sensitive_marks(names: &std::collections::BTreeSet<String>) -> Json {
    if names.is_empty() {
        return json!({});
    }
    Json::Object(
        names
            .iter()
            .map(|n| (n.clone(), Json::Bool(true)))
            .collect(),
    )
}
