//! A plan as Markdown, for a CI job to post on a pull request: the counts, what is destroyed
//! or replaced called out first, a table of every change, drift in its own section, and the
//! full human plan folded away in a `<details>` block.

use std::fmt::Write as _;

use crate::engine::diff::Action;
use crate::engine::plan::{DriftKind, Plan};
use crate::render::human::{render_plan, Style};

fn action_word(a: Action) -> &'static str {
    match a {
        Action::NoOp => "no-op",
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "**replace**",
        Action::Delete => "**destroy**",
        Action::Read => "read during apply",
    }
}

/// Table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(crate) fn plan_markdown(plan: &Plan, schemas: &crate::lang::schema::Registry) -> String {
    let mut out = String::new();
    let (add, change, destroy) = plan.counts();
    let title = if plan.refresh_only {
        format!(
            "{} object(s) to record in the state (refresh only)",
            plan.drift.len()
        )
    } else if plan.has_changes() {
        format!("{add} to add, {change} to change, {destroy} to destroy")
    } else {
        "no changes".to_string()
    };
    let _ = writeln!(out, "### skyform plan: {title}\n");
    if !plan.excludes.is_empty() {
        let _ = writeln!(
            out,
            "> **Partial plan:** {}.\n",
            crate::render::human::partial_scope(plan, &|a| format!("`{a}`"))
        );
    } else if !plan.targets.is_empty() {
        let list: Vec<String> = plan.targets.iter().map(|t| format!("`{t}`")).collect();
        let _ = writeln!(
            out,
            "> **Partial plan:** limited with `--target` to {}.\n",
            list.join(", ")
        );
    }
    let dangerous: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Replace | Action::Delete))
        .collect();
    if !dangerous.is_empty() {
        out.push_str("**Destroyed or replaced:**\n\n");
        for c in &dangerous {
            let why: Vec<String> = c
                .changes
                .iter()
                .filter(|ch| ch.forces_replacement)
                .map(|ch| format!("`{}`", ch.name))
                .collect();
            let reason = match (c.reason.as_deref(), why.is_empty()) {
                (Some(r), _) => format!(" ({r})"),
                (None, false) => format!(
                    " ({} {} replacement)",
                    why.join(", "),
                    if why.len() == 1 { "forces" } else { "force" }
                ),
                (None, true) => String::new(),
            };
            let done = if c.action == Action::Replace {
                "**replaced**"
            } else {
                "**destroyed**"
            };
            let _ = writeln!(out, "- `{}` will be {done}{reason}", c.addr);
        }
        out.push('\n');
    }
    if !plan.moves.is_empty() {
        out.push_str("**Moved** (renamed in the state, not recreated):\n\n");
        for m in &plan.moves {
            let _ = writeln!(out, "- `{}` has moved to `{}`", m.from, m.to);
        }
        out.push('\n');
    }
    if !plan.forget.is_empty() {
        out.push_str("**Forgotten** (leave the state, stay in AWS):\n\n");
        for (addr, id) in &plan.forget {
            let _ = writeln!(out, "- `{addr}` (`{id}`)");
        }
        out.push('\n');
    }
    let changed: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    if !changed.is_empty() {
        out.push_str("| Address | Action | Attributes |\n|---|---|---|\n");
        // Destroys and replacements first, then the rest, each in address order.
        let mut rows = changed.clone();
        rows.sort_by_key(|c| {
            (
                !matches!(c.action, Action::Replace | Action::Delete),
                c.addr.clone(),
            )
        });
        for c in rows {
            let attrs: Vec<String> = c
                .changes
                .iter()
                .map(|ch| format!("`{}`", ch.name))
                .collect();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                cell(&c.addr.to_string()),
                action_word(c.action),
                cell(&attrs.join(", "))
            );
        }
        out.push('\n');
    }
    if !plan.drift.is_empty() {
        out.push_str("#### Drift: changed outside skyform\n\n| Address | Change |\n|---|---|\n");
        for d in &plan.drift {
            let what = match &d.kind {
                DriftKind::Deleted => "deleted".to_string(),
                DriftKind::Changed(ch) => {
                    let names: Vec<String> = ch.iter().map(|c| format!("`{}`", c.name)).collect();
                    format!("changed: {}", names.join(", "))
                }
            };
            let _ = writeln!(out, "| `{}` | {} |", cell(&d.addr.to_string()), cell(&what));
        }
        out.push('\n');
    }
    let full = render_plan(plan, schemas, Style { color: false });
    out.push_str("<details><summary>Full plan</summary>\n\n```\n");
    out.push_str(full.trim_matches('\n'));
    out.push_str("\n```\n\n</details>\n");
    out
}
