//! A resource's `lifecycle { ... }` block, parsed and checked as Terraform checks it. What each
//! field does to a plan or an apply is the engine's (`engine::lifecycle`); this module owns only
//! what the block says.

use hcl_edit::expr::Expression;
use hcl_edit::structure::Block;
use hcl_edit::Span as _;

use crate::lang::address::{Address, Mode};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::eval::{references, RefTarget};
use crate::lang::expr::Expr;

/// What `ignore_changes` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum IgnoreChanges {
    #[default]
    None,
    /// `ignore_changes = all`.
    All,
    Attrs(Vec<String>),
}

impl IgnoreChanges {
    pub(crate) fn ignores(&self, attr: &str) -> bool {
        match self {
            IgnoreChanges::None => false,
            IgnoreChanges::All => true,
            // `tags_all` is made from `tags` (and the provider's default tags): ignoring
            // `tags` ignores it too, or an ignored tag would still be planned through it.
            IgnoreChanges::Attrs(names) => names
                .iter()
                .any(|n| n == attr || (n == "tags" && attr == "tags_all")),
        }
    }
}

/// A `precondition` or `postcondition` block.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) condition: Expr,
    pub(crate) error_message: Expr,
}

/// One `replace_triggered_by` entry: a resource, and optionally one of its attributes.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) addr: Address,
    pub(crate) attr: Option<String>,
    pub(crate) expr: Expr,
}

/// The `lifecycle` block of a resource or data source; the default is no block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lifecycle {
    pub(crate) create_before_destroy: bool,
    pub(crate) prevent_destroy: bool,
    pub(crate) ignore_changes: IgnoreChanges,
    pub(crate) replace_triggered_by: Vec<Trigger>,
    pub(crate) preconditions: Vec<Condition>,
    pub(crate) postconditions: Vec<Condition>,
}

impl Lifecycle {
    /// The expressions whose references order the graph: a resource is planned after what its
    /// triggers and conditions read.
    pub(crate) fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.replace_triggered_by.iter().map(|t| &t.expr).chain(
            self.preconditions
                .iter()
                .chain(&self.postconditions)
                .flat_map(|c| [&c.condition, &c.error_message]),
        )
    }
}

/// The arguments of a managed resource's lifecycle; a data source takes only the conditions.
const MANAGED: [&str; 4] = [
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
];

/// Parses `lifecycle { ... }` in `owner` (a resource or data source address).
pub(crate) fn parse(
    block: &Block,
    owner: &Address,
    file: usize,
    diags: &mut Diagnostics,
) -> Lifecycle {
    let span = |r: Option<std::ops::Range<usize>>| Span::new(file, r);
    let expr = |e: &Expression| Expr {
        expr: Box::new(e.clone()),
        span: span(e.span()),
    };
    let mut out = Lifecycle::default();
    if !block.labels.is_empty() {
        diags.push(
            Diagnostic::error(format!("a lifecycle block takes no labels, in {owner}"))
                .named("lifecycle")
                .at(span(block.ident.span())),
        );
    }
    for attr in block.body.attributes() {
        let key = attr.key.as_str();
        let at = span(attr.value.span());
        if owner.mode == Mode::Data && MANAGED.contains(&key) {
            diags.push(
                Diagnostic::error(format!(
                    "Unsupported argument: {key:?} is not expected in the lifecycle of a data source ({owner}); only precondition and postcondition blocks are"
                ))
                .named(key)
                .at(span(attr.key.span())),
            );
            continue;
        }
        match key {
            "create_before_destroy" | "prevent_destroy" => {
                let Expression::Bool(b) = &attr.value else {
                    diags.push(
                        Diagnostic::error(format!(
                            "lifecycle.{key} in {owner} must be true or false (a literal: it is read before anything is evaluated)"
                        ))
                        .named(key)
                        .at(at),
                    );
                    continue;
                };
                if key == "prevent_destroy" {
                    out.prevent_destroy = *b.value();
                } else {
                    out.create_before_destroy = *b.value();
                }
            }
            "ignore_changes" => out.ignore_changes = ignore_changes(&attr.value, owner, &at, diags),
            "replace_triggered_by" => {
                let Expression::Array(items) = &attr.value else {
                    diags.push(
                        Diagnostic::error(format!(
                            "lifecycle.replace_triggered_by in {owner} must be a list of resource references"
                        ))
                        .named(key)
                        .at(at),
                    );
                    continue;
                };
                for item in items {
                    match trigger(item) {
                        Some((addr, a)) => out.replace_triggered_by.push(Trigger {
                            addr,
                            attr: a,
                            expr: expr(item),
                        }),
                        None => diags.push(
                            Diagnostic::error(format!(
                                "Invalid replace_triggered_by expression in {owner}: only a reference to a managed resource, or to one of its attributes, is allowed"
                            ))
                            .named("replace_triggered_by")
                            .at(span(item.span())),
                        ),
                    }
                }
            }
            other => {
                let mut d = Diagnostic::error(format!(
                    "unknown argument {other:?} in the lifecycle of {owner}"
                ))
                .named(other)
                .at(span(attr.key.span()));
                if let Some(s) = crate::lang::diagnostic::did_you_mean(other, MANAGED) {
                    d = d.note(format!("did you mean {s:?}?"));
                }
                diags.push(d);
            }
        }
    }
    for inner in block.body.blocks() {
        let kind = inner.ident.as_str();
        let list = match kind {
            "precondition" => &mut out.preconditions,
            "postcondition" => &mut out.postconditions,
            other => {
                diags.push(
                    Diagnostic::error(format!(
                        "unexpected block {other:?} in the lifecycle of {owner}; only precondition and postcondition blocks belong here"
                    ))
                    .named(other)
                    .at(span(inner.ident.span())),
                );
                continue;
            }
        };
        let what = format!("the {kind} block in the lifecycle of {owner}");
        list.extend(condition(inner, file, &what, diags));
    }
    out
}

/// A `condition` / `error_message` block (a precondition, a postcondition, a check's assert):
/// both are required and nothing else belongs; `what` names the block in messages.
pub(crate) fn condition(
    block: &Block,
    file: usize,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Condition> {
    let span = |r: Option<std::ops::Range<usize>>| Span::new(file, r);
    let get = |name: &str| {
        block.body.get_attribute(name).map(|a| Expr {
            expr: Box::new(a.value.clone()),
            span: span(a.value.span()),
        })
    };
    for attr in block.body.attributes() {
        let key = attr.key.as_str();
        if key != "condition" && key != "error_message" {
            diags.push(
                Diagnostic::error(format!(
                    "unknown argument {key:?} in {what}; it takes condition and error_message"
                ))
                .named(key)
                .at(span(attr.key.span())),
            );
        }
    }
    match (get("condition"), get("error_message")) {
        (Some(condition), Some(error_message)) => Some(Condition {
            condition,
            error_message,
        }),
        (c, _) => {
            let missing = if c.is_none() {
                "condition"
            } else {
                "error_message"
            };
            diags.push(
                Diagnostic::error(format!(
                    "Missing required argument: {what} needs {missing:?}"
                ))
                .named(block.ident.as_str())
                .at(span(block.ident.span())),
            );
            None
        }
    }
}

/// `ignore_changes = all` or a list of attribute names (bare, or quoted as Terraform 0.11 wrote
/// them).
fn ignore_changes(
    value: &Expression,
    owner: &Address,
    at: &Span,
    diags: &mut Diagnostics,
) -> IgnoreChanges {
    let bad = |diags: &mut Diagnostics| {
        diags.push(
            Diagnostic::error(format!(
                "lifecycle.ignore_changes in {owner} must be all or a list of attribute names"
            ))
            .named("ignore_changes")
            .at(at.clone()),
        );
        IgnoreChanges::None
    };
    match value {
        Expression::Variable(v) if v.as_str() == "all" => IgnoreChanges::All,
        Expression::Array(items) => {
            let mut names = Vec::new();
            for item in items {
                match item {
                    Expression::Variable(v) => names.push(v.as_str().to_string()),
                    Expression::String(s) => names.push(s.value().clone()),
                    // `tags["Name"]` and deeper paths: the top-level attribute is what skyform
                    // compares, so the whole attribute is ignored.
                    Expression::Traversal(t) => match &t.expr {
                        Expression::Variable(v) => names.push(v.as_str().to_string()),
                        _ => return bad(diags),
                    },
                    _ => return bad(diags),
                }
            }
            IgnoreChanges::Attrs(names)
        }
        _ => bad(diags),
    }
}

/// The resource (and attribute) a `replace_triggered_by` entry names.
fn trigger(item: &Expression) -> Option<(Address, Option<String>)> {
    if !matches!(item, Expression::Traversal(_)) {
        return None;
    }
    let (refs, funcs) = references(item);
    let [r] = refs.as_slice() else { return None };
    match &r.target {
        RefTarget::Resource(a) if funcs.is_empty() && a.mode == Mode::Managed => {
            Some((a.clone(), r.attr.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::config::load_str;

    fn load(lifecycle: &str) -> (Lifecycle, Vec<String>) {
        let text = format!(
            "resource \"aws_iam_user\" \"u\" {{\n  name = \"a\"\n  lifecycle {{\n{lifecycle}\n  }}\n}}\nresource \"aws_iam_role\" \"r\" {{\n  name = \"r\"\n  assume_role_policy = \"{{}}\"\n}}\n"
        );
        let (config, diags) = load_str(&[("m.sky.hcl", &text)], crate::aws::schemas::registry());
        let msgs = diags.0.iter().map(|d| d.message.clone()).collect();
        let lc = config
            .resources
            .get(&Address::managed("aws_iam_user", "u"))
            .map(|b| b.lifecycle.clone())
            .unwrap_or_default();
        (lc, msgs)
    }

    #[test]
    fn every_lifecycle_argument_is_read() {
        let (lc, msgs) = load(
            "create_before_destroy = true\nprevent_destroy = true\nignore_changes = [tags, \"path\"]\nreplace_triggered_by = [aws_iam_role.r, aws_iam_role.r.name]\nprecondition {\n condition = true\n error_message = \"pre\"\n}\npostcondition {\n condition = self.name != \"\"\n error_message = \"post\"\n}",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(lc.create_before_destroy);
        assert!(lc.prevent_destroy);
        assert_eq!(
            lc.ignore_changes,
            IgnoreChanges::Attrs(vec!["tags".into(), "path".into()])
        );
        assert!(lc.ignore_changes.ignores("tags") && !lc.ignore_changes.ignores("name"));
        let triggers: Vec<(String, Option<String>)> = lc
            .replace_triggered_by
            .iter()
            .map(|t| (t.addr.to_string(), t.attr.clone()))
            .collect();
        assert_eq!(
            triggers,
            [
                ("aws_iam_role.r".to_string(), None),
                ("aws_iam_role.r".to_string(), Some("name".to_string()))
            ]
        );
        assert_eq!(lc.preconditions.len(), 1);
        assert_eq!(lc.postconditions.len(), 1);
    }

    #[test]
    fn ignore_changes_all_ignores_every_attribute() {
        let (lc, msgs) = load("ignore_changes = all");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(lc.ignore_changes.ignores("anything"));
    }

    #[test]
    fn a_malformed_lifecycle_gets_terraforms_errors() {
        for (body, want) in [
            ("prevent_destroy = var.x", "must be true or false"),
            ("ignore_changes = \"tags\"", "must be all or a list"),
            (
                "replace_triggered_by = [var.x]",
                "Invalid replace_triggered_by",
            ),
            (
                "replace_triggered_by = [\"aws_iam_role.r\"]",
                "Invalid replace_triggered_by",
            ),
            (
                "prevent_destroi = true",
                "unknown argument \"prevent_destroi\"",
            ),
            (
                "precondition {\n condition = true\n}",
                "needs \"error_message\"",
            ),
            ("destroy {}", "unexpected block \"destroy\""),
        ] {
            let (_, msgs) = load(body);
            assert!(msgs.iter().any(|m| m.contains(want)), "{body}: {msgs:?}");
        }
    }

    #[test]
    fn a_data_source_lifecycle_takes_only_conditions() {
        let (config, diags) = load_str(
            &[(
                "d.sky.hcl",
                "data \"aws_caller_identity\" \"me\" {\n  lifecycle {\n    prevent_destroy = true\n    postcondition {\n      condition = self.account_id != \"\"\n      error_message = \"no account\"\n    }\n  }\n}\n",
            )],
            crate::aws::schemas::registry(),
        );
        assert_eq!(diags.errors(), 1, "{diags:?}");
        assert!(diags.0[0]
            .message
            .contains("Unsupported argument: \"prevent_destroy\""));
        let d = &config.resources[&Address::data("aws_caller_identity", "me")];
        assert_eq!(d.lifecycle.postconditions.len(), 1);
    }

    #[test]
    fn ignore_changes_names_only_settable_attributes_of_the_type() {
        let src = |names: &str| {
            format!("resource \"aws_iam_user\" \"u\" {{\n  name = \"a\"\n  lifecycle {{\n    ignore_changes = [{names}]\n  }}\n}}\n")
        };
        let errors = |names: &str| {
            let (config, diags) = load_str(
                &[("m.sky.hcl", &src(names))],
                crate::aws::schemas::registry(),
            );
            assert!(diags.is_empty(), "{diags:?}");
            crate::lang::validate::check(&config)
                .0
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
        };
        assert!(errors("tags").is_empty());
        assert!(errors("tagz")[0].contains("names \"tagz\", which the type does not have"));
        assert!(errors("arn")[0].contains("computed by AWS"));
    }
}
