//! The human plan, in Terraform's format: `# addr will be created`, `+ ~ - -/+` lines,
//! `# forces replacement`, `(known after apply)`, `(sensitive value)` and the summary line.
//! Resources are printed in address order, so the same plan always prints the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use owo_colors::OwoColorize;

use crate::engine::diff::Action;
use crate::engine::plan::{DriftKind, Plan, ResourceChange};
use crate::lang::address::Address;
use crate::lang::schema::{AttrType, Registry};
use crate::lang::value::{quote, Value};

/// Colouring on or off, chosen once by the command layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    fn sym(self, s: &str) -> String {
        if !self.color {
            return s.to_string();
        }
        match s.trim() {
            "+" => s.green().to_string(),
            "-" | "-/+" | "+/-" => s.red().to_string(),
            "~" => s.yellow().to_string(),
            _ => s.to_string(),
        }
    }

    pub(crate) fn bold(self, s: &str) -> String {
        if self.color {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    }
}

fn header(c: &ResourceChange) -> String {
    let what = match c.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Delete => "will be destroyed",
        Action::Replace => "must be replaced",
        Action::NoOp => "is unchanged",
        Action::Read => "will be read during apply",
    };
    let head = match c.reason.as_ref().map(crate::engine::plan::Reason::text) {
        Some(r) if c.action == Action::Delete => format!("# {} {what}\n  # (because {r})", c.addr),
        Some(r) if c.action == Action::Read => format!("# {} {what}\n  # ({r})", c.addr),
        Some(r) => format!("# {} {what} (because {r})", c.addr),
        None => format!("# {} {what}", c.addr),
    };
    let head = match &c.importing {
        Some(id) => format!(
            "{head}\n  # (imported from {})",
            crate::lang::value::quote(id)
        ),
        None => head,
    };
    match &c.previous_address {
        Some(from) => format!("{head}\n  # (moved from {from})"),
        None => head,
    }
}

/// Renders a value at an indentation, multi-line for JSON documents and collections.
pub(crate) fn value_text(
    ty: Option<&AttrType>,
    v: &Value,
    sensitive: bool,
    indent: usize,
) -> String {
    match (ty, v) {
        (_, Value::Unknown) => "(known after apply)".into(),
        _ if sensitive && !v.is_null() => "(sensitive value)".into(),
        (Some(AttrType::Json), Value::String(s)) => {
            let pad = " ".repeat(indent);
            let body = crate::lang::document::pretty(s)
                .lines()
                .map(|l| format!("{pad}    {l}"))
                .collect::<Vec<_>>()
                .join("\n");
            format!("jsonencode(\n{body}\n{pad})")
        }
        (_, Value::Object(map)) if !map.is_empty() => {
            let pad = " ".repeat(indent);
            let width = map.keys().map(|k| quote(k).len()).max().unwrap_or(0);
            let mut out = "{\n".to_string();
            for (k, val) in map {
                let _ = writeln!(out, "{pad}    {:width$} = {val}", quote(k));
            }
            out.push_str(&pad);
            out.push('}');
            out
        }
        (_, v) => v.to_string(),
    }
}

/// A line diff of two pretty JSON documents, for a changed policy.
fn json_diff(before: &str, after: &str, indent: usize, style: Style) -> String {
    let a: Vec<String> = crate::lang::document::pretty(before)
        .lines()
        .map(String::from)
        .collect();
    let b: Vec<String> = crate::lang::document::pretty(after)
        .lines()
        .map(String::from)
        .collect();
    // Longest common subsequence over lines; documents are small.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let pad = " ".repeat(indent);
    let mut out = String::from("jsonencode(\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "{pad}      {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "{pad}    {} {}", style.sym("-"), a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "{pad}    {} {}", style.sym("+"), b[j]);
            j += 1;
        }
    }
    let _ = write!(out, "{pad}  )");
    out
}

/// Whether an attribute is a set or list of nested blocks (`ingress { ... }`,
/// `metadata_options { ... }`).
fn is_block_set(ty: Option<&AttrType>) -> bool {
    matches!(ty, Some(AttrType::Set(inner) | AttrType::List(inner)) if matches!(inner.as_ref(), AttrType::Object(_)))
}

/// Nested blocks as Terraform shows them: one `name { ... }` per block, removed blocks with
/// `-` and added ones with `+`; blocks in both are left out.
fn block_set_lines(name: &str, before: &Value, after: &Value, style: Style) -> Vec<String> {
    let items = |v: &Value| match v {
        Value::List(items) => items.clone(),
        _ => Vec::new(),
    };
    let (b, a) = (items(before), items(after));
    let mut out = Vec::new();
    let mut block = |sym: &str, obj: &Value| {
        out.push(format!("      {} {name} {{", style.sym(sym)));
        if let Value::Object(fields) = obj {
            let shown: Vec<(&String, &Value)> = fields
                .iter()
                .filter(|(_, v)| {
                    !v.is_null()
                        && (!v.is_empty_like() || matches!(v, Value::Bool(_) | Value::Number(_)))
                })
                .collect();
            let width = shown.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in shown {
                out.push(format!("          {} {k:width$} = {v}", style.sym(sym)));
            }
        }
        out.push("        }".to_string());
    };
    for x in b.iter().filter(|x| !a.contains(x)) {
        block("-", x);
    }
    for x in a.iter().filter(|x| !b.contains(x)) {
        block("+", x);
    }
    out
}

fn resource_block(c: &ResourceChange, schemas: &Registry, style: Style) -> String {
    let schema = schemas.get(c.addr.mode, &c.addr.type_name);
    let ty = |name: &str| schema.and_then(|s| s.attr(name)).map(|a| &a.ty);
    let sym = match c.action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Replace if c.create_before_destroy => "+/-",
        Action::Replace => "-/+",
        Action::NoOp => " ",
        Action::Read => "<=",
    };
    let mut out = String::new();
    open_block(&mut out, style, sym, &header(c), &c.addr);
    let mut lines: Vec<(String, String, String, String)> = Vec::new(); // symbol, name, value, comment
    match c.action {
        Action::Create | Action::Read => {
            for (name, v) in &c.after {
                if is_block_set(ty(name)) && !c.sensitive.contains(name) {
                    for l in block_set_lines(name, &Value::Null, v, style) {
                        lines.push((String::new(), l, String::new(), String::new()));
                    }
                    continue;
                }
                if !v.is_null() && (!v.is_empty_like() || matches!(v, Value::String(_))) {
                    lines.push((
                        "+".into(),
                        name.clone(),
                        value_text(ty(name), v, c.sensitive.contains(name), 8),
                        String::new(),
                    ));
                }
            }
        }
        Action::Delete => {
            for (name, v) in c.before.iter().flatten() {
                let v = Value::from_json(v);
                if is_block_set(ty(name)) && !c.sensitive.contains(name) {
                    for l in block_set_lines(name, &v, &Value::Null, style) {
                        lines.push((String::new(), l, String::new(), String::new()));
                    }
                    continue;
                }
                if !v.is_empty_like() {
                    lines.push((
                        "-".into(),
                        name.clone(),
                        format!(
                            "{} -> null",
                            value_text(ty(name), &v, c.sensitive.contains(name), 8)
                        ),
                        String::new(),
                    ));
                }
            }
        }
        Action::Update | Action::Replace | Action::NoOp => {
            let changed: BTreeMap<&str, &crate::engine::diff::AttrChange> =
                c.changes.iter().map(|ch| (ch.name.as_str(), ch)).collect();
            for (name, v) in &c.after {
                let sensitive = c.sensitive.contains(name);
                if let Some(ch) = changed.get(name.as_str()) {
                    let comment = if ch.forces_replacement {
                        "# forces replacement".to_string()
                    } else {
                        String::new()
                    };
                    if is_block_set(ty(name)) && !sensitive {
                        for l in block_set_lines(name, &ch.before, &ch.after, style) {
                            lines.push((String::new(), l, String::new(), String::new()));
                        }
                        continue;
                    }
                    let (sym, text) = match (ty(name), &ch.before, &ch.after) {
                        (Some(AttrType::Json), Value::String(b), Value::String(a))
                            if !sensitive =>
                        {
                            ("~", json_diff(b, a, 8, style))
                        }
                        (_, b, a) if b.is_empty_like() && !a.is_empty_like() => {
                            ("+", value_text(ty(name), a, sensitive, 8))
                        }
                        (_, b, a) if a.is_null() => (
                            "-",
                            format!("{} -> null", value_text(ty(name), b, sensitive, 8)),
                        ),
                        (_, b, a) => (
                            "~",
                            format!(
                                "{} -> {}",
                                value_text(ty(name), b, sensitive, 8),
                                value_text(ty(name), a, sensitive, 8)
                            ),
                        ),
                    };
                    lines.push((sym.into(), name.clone(), text, comment));
                } else if v.contains_unknown() {
                    lines.push((
                        "~".into(),
                        name.clone(),
                        "(known after apply)".into(),
                        String::new(),
                    ));
                } else if (name == "id" || name == "name" || name == "arn") && !v.is_null() {
                    lines.push((
                        " ".into(),
                        name.clone(),
                        value_text(ty(name), v, sensitive, 8),
                        String::new(),
                    ));
                }
            }
        }
    }
    let width = lines
        .iter()
        .filter(|l| !l.0.is_empty() && !l.2.contains('\n'))
        .map(|l| l.1.len())
        .max()
        .unwrap_or(0);
    for (sym, name, value, comment) in &lines {
        // A pre-rendered line of a nested block.
        if sym.is_empty() {
            let _ = writeln!(out, "{name}");
            continue;
        }
        let name = if value.contains('\n') {
            name.clone()
        } else {
            format!("{name:width$}")
        };
        let comment = if comment.is_empty() {
            String::new()
        } else {
            format!(" {comment}")
        };
        let _ = writeln!(out, "      {} {name} = {value}{comment}", style.sym(sym));
    }
    out.push_str("    }\n");
    out
}

/// The `# header` line and the `sym resource "T" "n" {` line that open a resource block.
fn open_block(
    out: &mut String,
    style: Style,
    sym: &str,
    header: &str,
    addr: &crate::lang::address::Address,
) {
    let _ = writeln!(out, "  {}", style.bold(header));
    let mode = match addr.mode {
        crate::lang::address::Mode::Managed => "resource",
        crate::lang::address::Mode::Data => "data",
    };
    let _ = writeln!(
        out,
        "{} {mode} {} {} {{",
        pad_sym(style, sym),
        quote(&addr.type_name),
        quote(&addr.name)
    );
}

fn pad_sym(style: Style, sym: &str) -> String {
    format!("{sym:>3}").replace(sym, &style.sym(sym))
}

/// The drift section: what changed outside skyform since the last apply.
pub(crate) fn render_drift(plan: &Plan, schemas: &Registry, style: Style) -> String {
    if plan.drift.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}\n",
        style.bold("Note: Objects have changed outside of skyform")
    );
    out.push_str("skyform detected the following changes made outside of skyform since the last \"skyform apply\":\n\n");
    out.push_str(&drift_blocks(plan, schemas, style, &|_, _| None));
    if plan.refresh_only {
        out.push_str("This is a refresh-only plan: applying it records these changes in the state and changes nothing in AWS.\n");
    } else {
        out.push_str("Unless you have made equivalent changes to your configuration, the plan below undoes them.\n");
    }
    out
}

/// One block per drifted object, as Terraform shows drift; `note` may add a comment line
/// under an attribute (`Some(name)`) or a gone object (`None`), e.g. how long it was seen.
pub(crate) fn drift_blocks(
    plan: &Plan,
    schemas: &Registry,
    style: Style,
    note: &dyn Fn(&Address, Option<&str>) -> Option<String>,
) -> String {
    let mut out = String::new();
    for d in &plan.drift {
        let schema = schemas.resources.get(&d.addr.type_name);
        let ty = |name: &str| schema.and_then(|s| s.attr(name)).map(|a| &a.ty);
        let secret = plan.sensitive_attrs(schemas, &d.addr);
        match &d.kind {
            DriftKind::Deleted => {
                open_block(
                    &mut out,
                    style,
                    "-",
                    &format!("# {} has been deleted", d.addr),
                    &d.addr,
                );
                if let Some(n) = note(&d.addr, None) {
                    let _ = writeln!(out, "        # {n}");
                }
                for key in ["id", "name"] {
                    if let Some(v) = d.prior.get(key) {
                        let _ = writeln!(
                            out,
                            "      {} {key} = {} -> null",
                            style.sym("-"),
                            value_text(None, &Value::from_json(v), secret.contains(key), 8)
                        );
                    }
                }
                out.push_str("    }\n\n");
            }
            DriftKind::Changed(changes) => {
                open_block(
                    &mut out,
                    style,
                    "~",
                    &format!("# {} has changed", d.addr),
                    &d.addr,
                );
                for ch in changes {
                    let sensitive = secret.contains(&ch.name);
                    if is_block_set(ty(&ch.name)) && !sensitive {
                        for l in block_set_lines(&ch.name, &ch.before, &ch.after, style) {
                            let _ = writeln!(out, "{l}");
                        }
                    } else {
                        let text = match (ty(&ch.name), &ch.before, &ch.after) {
                            (Some(AttrType::Json), Value::String(b), Value::String(a))
                                if !sensitive =>
                            {
                                json_diff(b, a, 8, style)
                            }
                            (t, b, a) => format!(
                                "{} -> {}",
                                value_text(t, b, sensitive, 8),
                                value_text(t, a, sensitive, 8)
                            ),
                        };
                        let _ = writeln!(out, "      {} {} = {text}", style.sym("~"), ch.name);
                    }
                    if let Some(n) = note(&d.addr, Some(&ch.name)) {
                        let _ = writeln!(out, "        # {n}");
                    }
                }
                out.push_str("    }\n\n");
            }
        }
    }
    out
}

/// Terraform's warning for a plan limited with `--target`; `OpenTofu` gives it for
/// `--exclude` too.
fn targeting_warning(plan: &Plan, style: Style) -> String {
    if !plan.is_partial() {
        return String::new();
    }
    format!(
        "\n{}\n\nThe plan is partial: {}. The result may not be all the changes the configuration asks for, and outputs are not updated. Run a plan without --target or --exclude to see the rest.\n",
        style.bold("Warning: Resource targeting is in effect"),
        partial_scope(plan, &|a| a.to_string())
    )
}

/// What a partial plan covers, in words: "it covers only A and what it depends on, and
/// leaves out B and what depends on them". `name` writes each address.
pub(crate) fn partial_scope(plan: &Plan, name: &dyn Fn(&str) -> String) -> String {
    let (up, down) = ("what they depend on", "what depends on them");
    let mut parts = Vec::new();
    if !plan.targets.is_empty() {
        let list: Vec<String> = plan.targets.iter().map(|t| name(&t.to_string())).collect();
        parts.push(format!(
            "it covers only {} and {}",
            list.join(", "),
            if plan.destroy { down } else { up }
        ));
    }
    if !plan.excludes.is_empty() {
        let list: Vec<String> = plan.excludes.iter().map(|e| name(&e.to_string())).collect();
        parts.push(format!(
            "it leaves out {} and {}",
            list.join(", "),
            if plan.destroy { up } else { down }
        ));
    }
    parts.join(", and ")
}

/// What an interrupted apply left, as found by this plan, and the objects tagged with this
/// state's lineage that it leaves alone.
fn render_recovery(plan: &Plan, style: Style) -> String {
    let rec = &plan.recovery;
    let mut out = String::new();
    if !rec.adopted.is_empty() || !rec.warnings.is_empty() {
        let _ = writeln!(
            out,
            "\n{}\n",
            style.bold("Recovered from an interrupted apply (recorded in the state when this plan is applied):")
        );
        for r in &rec.adopted {
            let what = match rec.replace.get(&r.addr) {
                Some(why) => format!("will be replaced: {why}"),
                None => "exists in AWS but not in the state: adopted".to_string(),
            };
            let _ = writeln!(out, "  {} (id {}) {what}", r.addr, r.id);
        }
        for w in &rec.warnings {
            let _ = writeln!(out, "  {} {w}", style.bold("Warning:"));
        }
    }
    if !rec.strays.is_empty() {
        let _ = writeln!(
            out,
            "\n{}\n",
            style.bold("Tagged with this state's lineage, not in state (left alone; --prune-tagged deletes them):")
        );
        for s in &rec.strays {
            let _ = writeln!(out, "  {} (id {})", s.addr, s.id);
        }
    }
    out
}

/// The whole human plan.
pub(crate) fn render_plan(plan: &Plan, schemas: &Registry, style: Style) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_plan(&mut out, plan, schemas, style);
    out
}

/// The human plan, written piece by piece: `skyform plan` streams it to stdout, since a plan
/// of 100,000 changes is tens of megabytes that need not be held whole.
pub(crate) fn write_plan<W: std::fmt::Write>(
    out: &mut W,
    plan: &Plan,
    schemas: &Registry,
    style: Style,
) -> std::fmt::Result {
    out.write_str(&targeting_warning(plan, style))?;
    out.write_str(&render_recovery(plan, style))?;
    out.write_str(&render_drift(plan, schemas, style))?;
    if plan.refresh_only {
        if plan.drift.is_empty() {
            out.write_str(
                "\nNo changes. The state matches AWS; a refresh would record nothing.\n",
            )?;
        } else {
            writeln!(
                out,
                "\n{}",
                style.bold(&format!(
                    "Refresh: {} object(s) to record in the state.",
                    plan.drift.len()
                ))
            )?;
        }
        return Ok(());
    }
    if !plan.has_changes() {
        out.write_str("\nNo changes. Your infrastructure matches the configuration.\n")?;
        return Ok(());
    }
    let actions: BTreeSet<Action> = plan.changes.iter().map(|c| c.action).collect();
    if plan.has_resource_changes() {
        out.write_str("\nskyform will perform the following actions. Resource actions are indicated with these symbols:\n")?;
        let replaces = |cbd: bool| {
            plan.changes
                .iter()
                .any(|c| c.action == Action::Replace && c.create_before_destroy == cbd)
        };
        for (shown, sym, text) in [
            (actions.contains(&Action::Create), "+", "create"),
            (actions.contains(&Action::Update), "~", "update in-place"),
            (actions.contains(&Action::Delete), "-", "destroy"),
            (
                replaces(false),
                "-/+",
                "destroy and then create replacement",
            ),
            (replaces(true), "+/-", "create replacement and then destroy"),
            (
                actions.contains(&Action::Read),
                "<=",
                "read (data resources)",
            ),
        ] {
            if shown {
                writeln!(out, "  {} {text}", pad_sym(style, sym).trim_start())?;
            }
        }
        out.write_char('\n')?;
        for c in &plan.changes {
            match (&c.previous_address, c.action) {
                (_, Action::NoOp) if c.importing.is_some() => {
                    writeln!(
                        out,
                        "  {}\n",
                        style.bold(&format!(
                            "# {} will be imported (id {})",
                            c.addr,
                            crate::lang::value::quote(c.importing.as_deref().unwrap_or_default())
                        ))
                    )?;
                }
                (Some(from), Action::NoOp) => {
                    writeln!(
                        out,
                        "  {}\n",
                        style.bold(&format!("# {from} has moved to {}", c.addr))
                    )?;
                }
                (_, Action::NoOp) => {}
                _ => {
                    out.write_str(&resource_block(c, schemas, style))?;
                    out.write_char('\n')?;
                }
            }
        }
        for (addr, id) in &plan.forget {
            writeln!(
                out,
                "  {}\n  # (the object {id} stays in AWS; a removed block says destroy = false)\n",
                style.bold(&format!("# {addr} will no longer be managed by skyform"))
            )?;
        }
        let (add, change, destroy) = plan.counts();
        let imports = plan
            .changes
            .iter()
            .filter(|c| c.importing.is_some())
            .count();
        let import = if imports == 0 {
            String::new()
        } else {
            format!("{imports} to import, ")
        };
        let forget = if plan.forget.is_empty() {
            String::new()
        } else {
            format!(", {} to forget", plan.forget.len())
        };
        writeln!(
            out,
            "{}",
            style.bold(&format!(
                "Plan: {import}{add} to add, {change} to change, {destroy} to destroy{forget}."
            ))
        )?;
    }
    if plan.has_output_changes() {
        out.write_str("\nChanges to Outputs:\n")?;
        for o in &plan.outputs {
            let line = match (&o.before, &o.after) {
                (None, Some(a)) => format!(
                    "  {} {} = {}",
                    style.sym("+"),
                    o.name,
                    value_text(None, a, o.sensitive, 4)
                ),
                (Some(b), None) => format!(
                    "  {} {} = {} -> null",
                    style.sym("-"),
                    o.name,
                    value_text(None, &Value::from_json(b), o.sensitive, 4)
                ),
                (Some(b), Some(a)) if a.contains_unknown() || &a.to_json() != b => format!(
                    "  {} {} = {} -> {}",
                    style.sym("~"),
                    o.name,
                    value_text(None, &Value::from_json(b), o.sensitive, 4),
                    value_text(None, a, o.sensitive, 4)
                ),
                _ => continue,
            };
            out.write_str(&line)?;
            out.write_char('\n')?;
        }
    }
    Ok(())
}
