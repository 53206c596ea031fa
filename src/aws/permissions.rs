//! Least-privilege IAM policies: which actions, on which ARNs, a configuration needs.
//!
//! The actions each resource type's AWS calls need are a table, `schemas/permissions.json`,
//! kept next to the schemas so that a new resource type brings its permissions with it. This
//! module is pure: it turns a list of `Need`s (a resource, its values, and the operations
//! planned for it) and an account id into grants, and grants into a policy document.
//! `skyform policy` derives the needs from the configuration and a scope; `skyform check -v`
//! derives them from a real plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::engine::diff::Action;
use crate::engine::plan::{Plan, Workspace};
use crate::lang::address::{Address, Mode};
use crate::lang::value::Value;

const TABLE: &str = include_str!("../../schemas/permissions.json");

/// What skyform does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Read,
    Create,
    Update,
    Delete,
}

/// Which operations a policy must allow, from `--scope` and `--destroy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scope {
    pub(crate) apply: bool,
    pub(crate) destroy: bool,
}

impl Scope {
    /// `plan`, `apply`, `destroy` or `all`.
    pub(crate) fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "plan" => Scope::default(),
            "apply" => Scope {
                apply: true,
                destroy: false,
            },
            "destroy" => Scope {
                apply: false,
                destroy: true,
            },
            "all" => Scope {
                apply: true,
                destroy: true,
            },
            _ => return None,
        })
    }

    /// Reading is always in scope: every plan refreshes what state holds.
    fn operations(self) -> BTreeSet<Operation> {
        let mut ops = BTreeSet::from([Operation::Read]);
        if self.apply {
            ops.extend([Operation::Create, Operation::Update]);
        }
        if self.destroy {
            ops.insert(Operation::Delete);
        }
        ops
    }
}

/// One resource, with its values, and the operations to allow on it.
#[derive(Debug, Clone)]
pub(crate) struct Need {
    pub(crate) addr: Address,
    pub(crate) attrs: BTreeMap<String, Value>,
    pub(crate) ops: BTreeSet<Operation>,
}

/// One action on one resource ARN (or `*`), under a condition or none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Grant {
    pub(crate) action: String,
    pub(crate) resource: String,
    /// The statement's `Condition` object as JSON text (comparable and ordered; the map's
    /// keys are sorted, so equal conditions have equal text).
    pub(crate) condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)] // documentation for readers of the JSON file
    description: String,
    arns: BTreeMap<String, String>,
    resources: BTreeMap<String, Rules>,
    data: BTreeMap<String, Rules>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rules {
    #[serde(default)]
    read: Vec<Rule>,
    #[serde(default)]
    create: Vec<Rule>,
    #[serde(default)]
    update: Vec<Rule>,
    #[serde(default)]
    delete: Vec<Rule>,
}

impl Rules {
    fn of(&self, op: Operation) -> &[Rule] {
        match op {
            Operation::Read => &self.read,
            Operation::Create => &self.create,
            Operation::Update => &self.update,
            Operation::Delete => &self.delete,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    actions: Vec<String>,
    on: Option<String>,
    name: Option<String>,
    path: Option<String>,
    /// The object is named through another resource: the `take` attribute of the `from`
    /// resource whose `key` attribute equals this rule's `name` value (a cluster's instance
    /// profile gives the role that `iam:PassRole` is about).
    via: Option<Via>,
    /// An IAM `Condition` the grant carries (`iam:CreateServiceLinkedRole` only for the spot
    /// service).
    condition: Option<serde_json::Value>,
    /// The attribute that calls for the rule: it applies only when that attribute is set and
    /// not false or empty (`use_spot = true`, an `instance_market_options` block), or unknown.
    when: Option<String>,
}

/// Whether a rule's `when` attribute calls for it.
fn called_for(attrs: &BTreeMap<String, Value>, when: Option<&str>) -> bool {
    let Some(name) = when else { return true };
    match attrs.get(name) {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::List(items)) => !items.is_empty(),
        Some(Value::Object(fields)) => !fields.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Via {
    from: String,
    key: String,
    take: String,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    // The table ships inside the binary and a unit test parses it, so a failure here is a
    // build defect, not bad input.
    T.get_or_init(|| {
        serde_json::from_str(TABLE)
            .unwrap_or_else(|e| panic!("schemas/permissions.json is invalid: {e}"))
    })
}

fn rules_of(addr: &Address) -> Option<&'static Rules> {
    let t = table();
    match addr.mode {
        Mode::Managed => t.resources.get(&addr.type_name),
        Mode::Data => t.data.get(&addr.type_name),
    }
}

/// What a configuration needs for a scope, from values evaluated without AWS.
pub(crate) fn for_config(ws: &Workspace, scope: Scope) -> Vec<Need> {
    let (values, _) = crate::engine::plan::evaluate_static::<crate::aws::AwsProvider>(ws);
    let ops = scope.operations();
    values
        .into_iter()
        .map(|(addr, desired)| Need {
            ops: if addr.mode == Mode::Data {
                BTreeSet::from([Operation::Read])
            } else {
                ops.clone()
            },
            addr,
            attrs: desired.attrs,
        })
        .collect()
}

/// What applying `plan` needs: its operations, plus the reads the apply's own refresh makes.
pub(crate) fn for_plan(plan: &Plan) -> Vec<Need> {
    let mut needs: Vec<Need> = plan
        .data
        .keys()
        .map(|addr| Need {
            addr: addr.clone(),
            attrs: BTreeMap::new(),
            ops: BTreeSet::from([Operation::Read]),
        })
        .collect();
    for c in &plan.changes {
        let mut ops = BTreeSet::new();
        if c.before.is_some() {
            ops.insert(Operation::Read);
        }
        match c.action {
            Action::NoOp => {}
            Action::Create => {
                ops.insert(Operation::Create);
            }
            Action::Update => {
                ops.insert(Operation::Update);
            }
            Action::Replace => {
                ops.extend([Operation::Delete, Operation::Create]);
            }
            Action::Delete => {
                ops.insert(Operation::Delete);
            }
            // A data source read during apply needs what a read at plan time needs.
            Action::Read => {
                ops.insert(Operation::Read);
            }
        }
        // Deleted objects are named by what AWS last said; everything else by the plan.
        let mut attrs: BTreeMap<String, Value> = c
            .before
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect();
        for (k, v) in &c.after {
            if !v.is_null() {
                attrs.insert(k.clone(), v.clone());
            }
        }
        needs.push(Need {
            addr: c.addr.clone(),
            attrs,
            ops,
        });
    }
    needs
}

/// The value of a naming attribute: `None` when unset, `*` when not known yet.
fn part(attrs: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    match attrs.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => Some("*".into()),
    }
}

/// IAM paths begin and end with `/`; an unknown path must still match any depth.
fn normal_path(path: Option<&str>) -> String {
    match path {
        None | Some("") => "/".into(),
        Some("*") => "*/".into(),
        Some(p) => {
            let mut p = p.to_string();
            if !p.starts_with('/') {
                p.insert(0, '/');
            }
            if !p.ends_with('/') {
                p.push('/');
            }
            p
        }
    }
}

/// Every action on every resource that `needs` call for, in account `account`.
pub(crate) fn grants(needs: &[Need], account: &str) -> BTreeSet<Grant> {
    let t = table();
    // An object named by another resource's attribute (a role named in an instance profile)
    // lives at the path its own resource gives it, when the configuration has that resource.
    let mut paths: BTreeMap<(String, String), String> = BTreeMap::new();
    for need in needs {
        let Some(rules) = rules_of(&need.addr) else {
            continue;
        };
        for rule in [&rules.read, &rules.create, &rules.update, &rules.delete]
            .into_iter()
            .flatten()
        {
            if let (Some(kind), Some(n), Some(p)) = (&rule.on, &rule.name, &rule.path) {
                if let Some(name) = part(&need.attrs, n) {
                    let path = normal_path(part(&need.attrs, p).as_deref());
                    paths.insert((kind.clone(), name), path);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for need in needs {
        let Some(rules) = rules_of(&need.addr) else {
            continue;
        };
        for op in &need.ops {
            for rule in rules.of(*op) {
                if !called_for(&need.attrs, rule.when.as_deref()) {
                    continue;
                }
                let resource = match &rule.on {
                    None => "*".to_string(),
                    Some(kind) => {
                        let template = t.arns.get(kind).map_or("*", String::as_str);
                        let (name, path) = match &rule.name {
                            None => ("*".to_string(), "/".to_string()),
                            Some(attr) => {
                                let Some(mut name) = part(&need.attrs, attr) else {
                                    continue;
                                };
                                if let Some(via) = &rule.via {
                                    // Unknown unless the configuration declares the link.
                                    name = needs
                                        .iter()
                                        .filter(|n| n.addr.type_name == via.from)
                                        .find(|n| {
                                            part(&n.attrs, &via.key).as_deref()
                                                == Some(name.as_str())
                                        })
                                        .and_then(|n| part(&n.attrs, &via.take))
                                        .unwrap_or_else(|| "*".into());
                                }
                                let path = match &rule.path {
                                    Some(p) => normal_path(part(&need.attrs, p).as_deref()),
                                    None => paths
                                        .get(&(kind.clone(), name.clone()))
                                        .cloned()
                                        .unwrap_or_else(|| "/".into()),
                                };
                                (name, path)
                            }
                        };
                        template
                            .replace("{account}", account)
                            .replace("{path}", &path)
                            .replace("{name}", &name)
                    }
                };
                for action in &rule.actions {
                    out.insert(Grant {
                        action: action.clone(),
                        resource: resource.clone(),
                        condition: rule.condition.as_ref().map(ToString::to_string),
                    });
                }
            }
        }
    }
    // An action allowed on every resource without a condition needs no narrower grant besides.
    let everywhere: BTreeSet<String> = out
        .iter()
        .filter(|g| g.resource == "*" && g.condition.is_none())
        .map(|g| g.action.clone())
        .collect();
    out.retain(|g| (g.resource == "*" && g.condition.is_none()) || !everywhere.contains(&g.action));
    // Nor does an ARN that a wildcard ARN for the same action, under the same condition,
    // already covers.
    let wild: Vec<Grant> = out
        .iter()
        .filter(|g| g.resource != "*" && g.resource.contains('*'))
        .cloned()
        .collect();
    out.retain(|g| {
        !wild.iter().any(|w| {
            w.action == g.action
                && w.condition == g.condition
                && w.resource != g.resource
                && glob(&w.resource, &g.resource)
        })
    });
    out
}

/// IAM's ARN matching: `*` matches any run of characters, everything else itself.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The statement id for a group of resources: what kind of object they are.
fn sid(resources: &[String]) -> String {
    let kind = resources
        .first()
        .and_then(|r| r.rsplit(':').next())
        .map_or("*", |tail| tail.split('/').next().unwrap_or(tail));
    match kind {
        "*" => "AccountWide".into(),
        other => {
            let camel: String = other
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect();
            // The plural: Roles, InstanceProfiles, Policies.
            match camel.strip_suffix('y') {
                Some(stem) => format!("{stem}ies"),
                None => format!("{camel}s"),
            }
        }
    }
}

/// One string, or a list of them, the way the guide writes `Action` and `Resource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn of(mut items: Vec<String>) -> OneOrMany {
        if items.len() == 1 {
            OneOrMany::One(items.remove(0))
        } else {
            OneOrMany::Many(items)
        }
    }
}

/// What the S3 backend needs: the state's objects (`<key>*`, in every workspace), listing
/// them (`s3:ListBucket`, only under those prefixes), and with `kms_key_id` the key's use.
/// Every command needs them all: even a plan reads the snapshot and folds the journal, and a
/// writer locks, which puts and deletes the lock object.
pub(crate) fn backend_grants(
    s3: &crate::lang::terraform::S3Backend,
    account: &str,
) -> BTreeSet<Grant> {
    let grant = |action: &str, resource: String, condition: Option<String>| Grant {
        action: action.into(),
        resource,
        condition,
    };
    let workspaces = format!("{}/*/{}", s3.workspace_key_prefix, s3.key);
    let prefixes = serde_json::json!({
        "StringLike": {"s3:prefix": [format!("{}*", s3.key), format!("{}/*", s3.workspace_key_prefix)]}
    });
    let mut out = BTreeSet::from([grant(
        "s3:ListBucket",
        format!("arn:aws:s3:::{}", s3.bucket),
        Some(prefixes.to_string()),
    )]);
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        for key in [&s3.key, &workspaces] {
            out.insert(grant(
                action,
                format!("arn:aws:s3:::{}/{key}*", s3.bucket),
                None,
            ));
        }
    }
    if let Some(key) = &s3.kms_key_id {
        let region = s3.region.as_deref().unwrap_or("*");
        // An alias cannot be a policy's resource for the key's use; the key it names is
        // unknown here, so any key in the account is named, under the alias as condition.
        let (resource, condition) = if key.starts_with("arn:") && !key.contains(":alias/") {
            (key.clone(), None)
        } else if let Some(alias) = key
            .strip_prefix("alias/")
            .map(|a| format!("alias/{a}"))
            .or_else(|| key.split_once(":alias/").map(|(_, a)| format!("alias/{a}")))
        {
            (
                format!("arn:aws:kms:{region}:{account}:key/*"),
                Some(
                    serde_json::json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}})
                        .to_string(),
                ),
            )
        } else {
            (format!("arn:aws:kms:{region}:{account}:key/{key}"), None)
        };
        for action in ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"] {
            out.insert(grant(action, resource.clone(), condition.clone()));
        }
    }
    out
}

/// A policy statement, with its fields in the order AWS's own examples use.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Statement {
    pub(crate) sid: String,
    pub(crate) effect: &'static str,
    pub(crate) action: OneOrMany,
    pub(crate) resource: OneOrMany,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) condition: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Document {
    pub(crate) version: &'static str,
    pub(crate) statement: Vec<Statement>,
}

impl Document {
    pub(crate) fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    #[cfg(test)]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A policy document: one statement per group of resources that need the same actions under
/// the same condition, account-wide actions first, in a stable order.
pub(crate) fn document(grants: &BTreeSet<Grant>) -> Document {
    type Conditioned<'a, T> = (Option<&'a str>, T);
    let mut by_resource: BTreeMap<Conditioned<&str>, BTreeSet<&str>> = BTreeMap::new();
    for g in grants {
        by_resource
            .entry((g.condition.as_deref(), &g.resource))
            .or_default()
            .insert(&g.action);
    }
    let mut by_actions: BTreeMap<Conditioned<Vec<&str>>, Vec<String>> = BTreeMap::new();
    for ((condition, resource), actions) in by_resource {
        by_actions
            .entry((condition, actions.into_iter().collect()))
            .or_default()
            .push(resource.to_string());
    }
    let mut groups: Vec<(Conditioned<Vec<&str>>, Vec<String>)> = by_actions.into_iter().collect();
    // Conditioned statements follow the unconditioned ones of their resources.
    groups.sort_by_key(|g| {
        (
            g.1.first().is_none_or(|r| r != "*"),
            g.1.clone(),
            g.0 .0.map(String::from),
        )
    });
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let statement = groups
        .into_iter()
        .map(|((condition, actions), resources)| {
            let base = sid(&resources);
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            Statement {
                sid: if *n == 1 { base } else { format!("{base}{n}") },
                effect: "Allow",
                action: OneOrMany::of(actions.into_iter().map(String::from).collect()),
                resource: OneOrMany::of(resources),
                condition: condition.and_then(|c| serde_json::from_str(c).ok()),
            }
        })
        .collect();
    Document {
        version: "2012-10-17",
        statement,
    }
}

/// The document as a ready-to-apply `aws_iam_policy` resource named `name`.
pub(crate) fn resource_block(name: &str, doc: &Document) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        label.insert(0, '_');
    }
    let text = doc.to_pretty();
    let body = text.lines().fold(String::new(), |mut body, l| {
        body.push_str("    ");
        body.push_str(l);
        body.push('\n');
        body
    });
    format!(
        "resource \"aws_iam_policy\" \"{label}\" {{\n  name        = {}\n  description = \"What skyform needs to manage this configuration\"\n  policy      = <<-EOT\n{body}  EOT\n}}\n",
        crate::lang::value::quote(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::schemas::registry;

    fn need(addr: &str, attrs: &[(&str, Value)], ops: &[Operation]) -> Need {
        Need {
            addr: addr.parse().unwrap(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            ops: ops.iter().copied().collect(),
        }
    }

    #[test]
    fn the_table_covers_every_type_and_names_only_schema_attributes() {
        let t = table();
        let reg = registry();
        let covered: Vec<&String> = t.resources.keys().collect();
        assert_eq!(covered, reg.resources.keys().collect::<Vec<_>>());
        assert_eq!(
            t.data.keys().collect::<Vec<_>>(),
            reg.data.keys().collect::<Vec<_>>()
        );
        for (type_name, rules) in &t.resources {
            let schema = &reg.resources[type_name];
            for rule in [&rules.read, &rules.create, &rules.update, &rules.delete]
                .into_iter()
                .flatten()
            {
                for a in &rule.actions {
                    assert!(!a.contains('*'), "{type_name}: wildcard action {a}");
                    assert!(a.contains(':'), "{type_name}: {a}");
                }
                if let Some(kind) = &rule.on {
                    assert!(
                        t.arns.contains_key(kind),
                        "{type_name}: unknown kind {kind}"
                    );
                }
                for attr in rule.name.iter().chain(&rule.path).chain(&rule.when) {
                    assert!(schema.attr(attr).is_some(), "{type_name}.{attr}");
                }
                if let Some(via) = &rule.via {
                    let from = &reg.resources[&via.from];
                    assert!(from.attr(&via.key).is_some() && from.attr(&via.take).is_some());
                }
            }
        }
    }

    #[test]
    fn grants_are_scoped_to_the_named_objects_with_their_paths() {
        let needs = vec![
            need(
                "aws_iam_role.r",
                &[
                    ("name", Value::string("skypilot-v1")),
                    ("path", Value::string("/ops/")),
                ],
                &[Operation::Read, Operation::Create],
            ),
            need(
                "aws_iam_instance_profile.p",
                &[
                    ("name", Value::string("skypilot-v1")),
                    ("path", Value::string("/")),
                    ("role", Value::string("skypilot-v1")),
                ],
                &[Operation::Create],
            ),
        ];
        let g = grants(&needs, "123456789012");
        let has = |a: &str, r: &str| {
            g.contains(&Grant {
                action: a.into(),
                resource: r.into(),
                condition: None,
            })
        };
        assert!(has(
            "iam:CreateRole",
            "arn:aws:iam::123456789012:role/ops/skypilot-v1"
        ));
        // PassRole follows the role's own path, found through the role resource.
        assert!(has(
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/ops/skypilot-v1"
        ));
        assert!(has(
            "iam:CreateInstanceProfile",
            "arn:aws:iam::123456789012:instance-profile/skypilot-v1"
        ));
        assert!(has("iam:ListRoles", "*"));
        assert!(!g.iter().any(|g| g.action == "iam:DeleteRole"));
    }

    #[test]
    fn unknown_names_widen_to_a_wildcard_and_unset_ones_drop_the_rule() {
        let needs = vec![
            need(
                "aws_iam_role_policy_attachment.a",
                &[("role", Value::Unknown)],
                &[Operation::Create],
            ),
            need(
                "aws_iam_instance_profile.p",
                &[("name", Value::string("p"))],
                &[Operation::Create],
            ),
        ];
        let g = grants(&needs, "1");
        assert!(g.contains(&Grant {
            action: "iam:AttachRolePolicy".into(),
            resource: "arn:aws:iam::1:role/*".into(),
            condition: None,
        }));
        assert!(!g.iter().any(|g| g.action == "iam:PassRole"));
    }

    #[test]
    fn the_document_groups_resources_by_action_set_with_account_wide_first() {
        let needs = vec![need(
            "aws_iam_user.u",
            &[("name", Value::string("u"))],
            &[Operation::Read, Operation::Create, Operation::Delete],
        )];
        let doc = document(&grants(&needs, "1")).to_json();
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!(st[0]["Resource"], "*");
        assert_eq!(st[0]["Sid"], "AccountWide");
        assert_eq!(st[1]["Resource"], "arn:aws:iam::1:user/u");
        assert_eq!(st[1]["Sid"], "Users");
        assert_eq!(
            st[1]["Action"],
            serde_json::json!(["iam:CreateUser", "iam:DeleteUser", "iam:TagUser"])
        );
    }

    #[test]
    fn a_cluster_passes_the_role_of_its_instance_profile() {
        let needs = vec![
            need(
                "aws_iam_instance_profile.p",
                &[
                    ("name", Value::string("skypilot-v1")),
                    ("role", Value::string("skypilot-role")),
                ],
                &[Operation::Create],
            ),
            need(
                "aws_cluster.c",
                &[
                    ("name", Value::string("c")),
                    ("iam_instance_profile", Value::string("skypilot-v1")),
                ],
                &[Operation::Create],
            ),
        ];
        let g = grants(&needs, "1");
        assert!(g.contains(&Grant {
            action: "iam:PassRole".into(),
            resource: "arn:aws:iam::1:role/skypilot-role".into(),
            condition: None,
        }));
        assert!(g.contains(&Grant {
            action: "ec2:RunInstances".into(),
            resource: "arn:aws:ec2:*:1:instance/*".into(),
            condition: None,
        }));
        assert!(g.contains(&Grant {
            action: "ec2:RunInstances".into(),
            resource: "arn:aws:ec2:*::image/*".into(),
            condition: None,
        }));
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("arn:aws:iam::1:role/*", "arn:aws:iam::1:role/a/b"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c", "abcd"));
        assert!(glob("x", "x") && !glob("x", "y"));
    }

    #[test]
    fn the_resource_block_is_valid_configuration() {
        let doc = document(&BTreeSet::from([Grant {
            action: "iam:GetRole".into(),
            resource: "*".into(),
            condition: None,
        }]));
        let text = resource_block("skyform-operator", &doc);
        let (config, diags) =
            crate::lang::config::load_str(&[("p.sky.hcl", &text)], crate::aws::schemas::registry());
        assert!(!diags.has_errors(), "{text}");
        let block = config.resources.values().next().unwrap();
        assert_eq!(block.addr.to_string(), "aws_iam_policy.skyform-operator");
    }

    #[test]
    fn spot_brings_the_conditioned_service_linked_role_grant_in_its_own_statement() {
        let cluster = |spot: bool| {
            let c = need(
                "aws_cluster.c",
                &[
                    ("name", Value::string("c")),
                    ("use_spot", Value::Bool(spot)),
                ],
                &[Operation::Read, Operation::Create],
            );
            document(&grants(&[c], "1")).to_json()["Statement"]
                .as_array()
                .unwrap()
                .clone()
        };
        let statements = cluster(true);
        let conditioned: Vec<&serde_json::Value> = statements
            .iter()
            .filter(|s| s.get("Condition").is_some())
            .collect();
        assert_eq!(conditioned.len(), 1, "{statements:?}");
        assert_eq!(conditioned[0]["Action"], "iam:CreateServiceLinkedRole");
        assert_eq!(conditioned[0]["Resource"], "*");
        assert_eq!(
            conditioned[0]["Condition"],
            serde_json::json!({"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}})
        );
        // The account-wide unconditioned actions stay in a statement of their own.
        assert!(statements
            .iter()
            .any(|s| s["Resource"] == "*" && s.get("Condition").is_none()));
        let on_demand = serde_json::Value::from(cluster(false)).to_string();
        assert!(
            !on_demand.contains("CreateServiceLinkedRole"),
            "{on_demand}"
        );
    }
}
