//! A plan as Markdown, for a CI job to post on a pull request: the counts, what is destroyed
//! or replaced called out first, a table of every change, drift in its own section, and the
//! full human plan folded away in a `<details>` block. A plan bigger than a comment may be
//! (`--markdown-limit`, GitHub's 65,535 characters by default) keeps its head whole and has its
//! full plan cut, then its table, with a note saying what was cut and where the rest is.

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

/// GitHub's cap on a pull request comment, in characters.
pub(crate) const COMMENT_LIMIT: usize = 65_535;

/// Room kept for the note that says what was cut: the longest note is well under this.
const NOTE_ROOM: usize = 400;

/// Where the rest of a cut plan is.
const ELSEWHERE: &str = "The whole plan is in the CI log (the human plan) and in the JSON plan (`skyform show PLANFILE --json`).";

fn size(s: &str) -> usize {
    s.chars().count()
}

/// The Markdown plan, at most `limit` characters when its head (counts, destroys and
/// replacements, moves) fits: the full plan is cut first, then the changes table and drift.
pub(crate) fn plan_markdown(
    plan: &Plan,
    schemas: &crate::lang::schema::Registry,
    limit: usize,
) -> String {
    let head = head(plan);
    let rows = table_rows(plan);
    let table = table(&rows);
    let drift = drift(plan);
    let full = render_plan(plan, schemas, Style { color: false });
    let full = full.trim_matches('\n');
    let whole = format!("{head}{table}{drift}{}", details("Full plan", full));
    if size(&whole) <= limit {
        return whole;
    }
    let wrapper = size(&details("Full plan (cut)", ""));
    let budget =
        limit.saturating_sub(size(&head) + size(&table) + size(&drift) + wrapper + NOTE_ROOM);
    let total_lines = full.lines().count();
    if budget > 0 {
        let (kept, lines) = first_lines(full, budget);
        let note = format!(
            "> **The full plan was cut to fit a comment** ({limit} characters): {lines} of {total_lines} lines shown, {} characters left out. {ELSEWHERE}\n",
            size(full) - size(&kept)
        );
        return format!(
            "{head}{table}{drift}{}{note}",
            details("Full plan (cut)", &kept)
        );
    }
    // Even the table is too big: as many rows as fit, then drift if it still fits.
    let room = limit.saturating_sub(size(&head) + size(&table_header()) + 1 + NOTE_ROOM);
    let mut used = 0;
    let mut kept: Vec<&String> = Vec::new();
    for r in &rows {
        if used + size(r) > room {
            break;
        }
        used += size(r);
        kept.push(r);
    }
    let mut cut_table = String::new();
    if !kept.is_empty() {
        cut_table.push_str(&table_header());
        for r in &kept {
            cut_table.push_str(r);
        }
        cut_table.push('\n');
    }
    let drift = if size(&drift) <= room - used {
        drift
    } else {
        String::new()
    };
    let note = format!(
        "> **The changes table was cut to fit a comment** ({limit} characters): {} of {} rows shown{}, and the full plan left out. {ELSEWHERE}\n",
        kept.len(),
        rows.len(),
        if drift.is_empty() && !plan.drift.is_empty() {
            ", drift left out"
        } else {
            ""
        }
    );
    format!("{head}{cut_table}{drift}{note}")
}

/// The first lines of `text` that fit in `budget` characters, and how many they are.
fn first_lines(text: &str, budget: usize) -> (String, usize) {
    let mut out = String::new();
    let mut n = 0;
    for line in text.lines() {
        if size(&out) + size(line) + 1 > budget {
            break;
        }
        out.push_str(line);
        out.push('\n');
        n += 1;
    }
    (out.trim_end_matches('\n').to_string(), n)
}

fn details(summary: &str, body: &str) -> String {
    format!("<details><summary>{summary}</summary>\n\n```\n{body}\n```\n\n</details>\n")
}

fn table_header() -> String {
    "| Address | Action | Attributes |\n|---|---|---|\n".to_string()
}

/// The title, the partial-plan note, and what is destroyed, replaced, moved or forgotten:
/// what a cut plan always keeps.
fn head(plan: &Plan) -> String {
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
            let reason = match (
                c.reason.as_ref().map(crate::engine::plan::Reason::text),
                why.is_empty(),
            ) {
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
    out
}

/// One line per change, destroys and replacements first, then the rest, each in address
/// order.
fn table_rows(plan: &Plan) -> Vec<String> {
    let mut rows: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    rows.sort_by_key(|c| {
        (
            !matches!(c.action, Action::Replace | Action::Delete),
            c.addr.clone(),
        )
    });
    rows.into_iter()
        .map(|c| {
            let attrs: Vec<String> = c
                .changes
                .iter()
                .map(|ch| format!("`{}`", ch.name))
                .collect();
            format!(
                "| `{}` | {} | {} |\n",
                cell(&c.addr.to_string()),
                action_word(c.action),
                cell(&attrs.join(", "))
            )
        })
        .collect()
}

fn table(rows: &[String]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = table_header();
    for r in rows {
        out.push_str(r);
    }
    out.push('\n');
    out
}

fn drift(plan: &Plan) -> String {
    let mut out = String::new();
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
    out
}
