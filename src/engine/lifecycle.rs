//! What a resource's `lifecycle` block does to a plan and an apply, with Terraform's
//! semantics: `ignore_changes` (the live value stands in for the configured one),
//! `replace_triggered_by`, `prevent_destroy`, and the `precondition` / `postcondition` checks.
//! `create_before_destroy` is carried on the planned change and ordered by `apply::operations`.

use std::collections::BTreeMap;

use crate::engine::diff::{Action, AttrChange};
use crate::lang::address::Address;
use crate::lang::config::{Config, ResourceBlock};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::eval::{EvalCtx, EvalError};
use crate::lang::lifecycle::{Condition, IgnoreChanges};
use crate::lang::value::Value;
use crate::state::Attrs;

/// The desired attributes with every ignored one replaced by what the object has now, so that
/// no difference in them is planned. A new object (`live` is `None`) takes the configuration.
pub(crate) fn ignoring(
    block: &ResourceBlock,
    live: Option<&Attrs>,
    desired: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    let ignore = &block.lifecycle.ignore_changes;
    let Some(live) = live else {
        return desired.clone();
    };
    let mut out = desired.clone();
    for (name, v) in &mut out {
        if ignore.ignores(name) {
            *v = live.get(name).map_or(Value::Null, Value::from_json);
        }
    }
    for (name, v) in live {
        if ignore.ignores(name) && !out.contains_key(name) {
            out.insert(name.clone(), Value::from_json(v));
        }
    }
    out
}

/// Drops the drift of ignored attributes: a change made outside skyform to an attribute whose
/// changes are ignored plans nothing, so it is no news either. Returns whether any is left.
pub(crate) fn drop_ignored(config: &Config, addr: &Address, changes: &mut Vec<AttrChange>) -> bool {
    if let Some(block) = config.block_of(addr) {
        changes.retain(|c| !block.lifecycle.ignore_changes.ignores(&c.name));
    }
    !changes.is_empty()
}

/// At apply, an update sends the object's current value of every ignored attribute, so that
/// a change made for another attribute does not carry the configured one along.
pub(crate) fn keep_ignored(block: &ResourceBlock, prior: &Attrs, planned: &mut Attrs) {
    let ignore = &block.lifecycle.ignore_changes;
    for (name, v) in prior {
        // `all` keeps what is configured as it is; a named attribute is kept even when the
        // configuration leaves it out, so the update does not clear it. Computed attributes
        // in `prior` are never named (validate checks the names), so none is sent.
        let named = matches!(ignore, IgnoreChanges::Attrs(names) if names.contains(name));
        if ignore.ignores(name) && (named || planned.contains_key(name)) {
            planned.insert(name.clone(), v.clone());
        }
    }
    planned.retain(|name, _| !ignore.ignores(name) || prior.contains_key(name));
}

/// The reason an existing object must be replaced because of `replace_triggered_by`: a named
/// resource is updated or replaced, or a named attribute of one changes, in this plan.
/// `changed(addr, attr)` says whether the plan changes that attribute of that resource.
pub(crate) fn triggered(
    block: &ResourceBlock,
    actions: &BTreeMap<Address, Action>,
    changed: impl Fn(&Address, &str) -> bool,
) -> Option<String> {
    block.lifecycle.replace_triggered_by.iter().find_map(|t| {
        let fired = match &t.attr {
            None => matches!(actions.get(&t.addr), Some(Action::Update | Action::Replace)),
            Some(attr) => actions.get(&t.addr) == Some(&Action::Replace) || changed(&t.addr, attr),
        };
        fired.then(|| {
            let what = t
                .attr
                .as_ref()
                .map_or_else(|| t.addr.to_string(), |a| format!("{}.{a}", t.addr));
            format!("replace_triggered_by {what}")
        })
    })
}

/// An error for every planned delete or replacement of a resource whose configuration sets
/// `prevent_destroy`. A resource removed from the configuration has no block left, so, as in
/// Terraform, its deletion is not prevented.
pub(crate) fn prevent_destroy<'a>(
    config: &Config,
    changes: impl IntoIterator<Item = (&'a Address, Action)>,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (addr, action) in changes {
        if !matches!(action, Action::Delete | Action::Replace) {
            continue;
        }
        let Some(block) = config.block_of(addr) else {
            continue;
        };
        if block.lifecycle.prevent_destroy {
            diags.push(
                Diagnostic::error("Instance cannot be destroyed")
                    .named(addr.to_string())
                    .at(block.span.clone())
                    .note(format!(
                        "Resource {addr} has lifecycle.prevent_destroy set, but the plan calls for \
                         this resource to be destroyed. To avoid this error and continue with the \
                         plan, either disable lifecycle.prevent_destroy or reduce the scope of the \
                         plan using the --target flag."
                    )),
            );
        }
    }
    diags
}

/// Which kind of condition is checked, for Terraform's wording.
#[derive(Clone, Copy)]
pub(crate) enum When {
    Pre,
    Post,
    /// An `assert` of a top-level `check` block.
    Assert,
}

/// Evaluates conditions; `self_value` is what `self` reads (postconditions). A condition that
/// is still unknown is left for later, as Terraform does. `eval_diag` words evaluation errors
/// as the caller's stage does.
pub(crate) fn check(
    ctx: &mut EvalCtx,
    conditions: &[Condition],
    owner: &str,
    (when, self_value): (When, Option<Value>),
    eval_diag: fn(EvalError, &Span, &str) -> Diagnostic,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    if conditions.is_empty() {
        return diags;
    }
    let (kind, failed) = match when {
        When::Pre => ("precondition", "Resource precondition failed"),
        When::Post => ("postcondition", "Resource postcondition failed"),
        When::Assert => ("assertion", "Check block assertion failed"),
    };
    let previous = ctx.roots.remove("self");
    if let Some(v) = self_value {
        ctx.roots.insert("self".into(), v);
    }
    for c in conditions {
        let name = owner.to_string();
        match ctx.eval_top(&c.condition.expr) {
            Ok((Value::Bool(true) | Value::Unknown, _)) => {}
            Ok((Value::Bool(false), _)) => {
                let message = match ctx.eval_top(&c.error_message.expr) {
                    Ok((Value::String(s), _)) => s,
                    Ok((other, _)) => other.to_template_string().unwrap_or_default(),
                    Err(e) => format!("(the error message could not be evaluated: {})", e.message),
                };
                diags.push(
                    Diagnostic::error(failed)
                        .named(name)
                        .at(c.condition.span.clone())
                        .note(message),
                );
            }
            Ok((other, _)) => diags.push(
                Diagnostic::error(format!(
                    "Invalid condition result: the {kind} of {owner} must be true or false, found {}",
                    other.type_name()
                ))
                .named(name)
                .at(c.condition.span.clone()),
            ),
            Err(e) => diags.push(eval_diag(e, &c.condition.span, &name)),
        }
    }
    ctx.roots.remove("self");
    if let Some(p) = previous {
        ctx.roots.insert("self".into(), p);
    }
    diags
}
