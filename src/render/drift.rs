//! The views of `skyform drift`: what changed outside skyform, per object and attribute, with
//! how long each change has been seen (`engine::drift_seen`), as text, as Terraform's
//! `resource_drift` entries with `first_seen` times, and as a Markdown table for a scheduled
//! CI job that files an issue.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Value as Json};

use crate::engine::drift_seen::{age, key};
use crate::engine::plan::{DriftKind, Plan};
use crate::lang::address::Address;
use crate::lang::schema::Registry;
use crate::render::human::{drift_blocks, value_text, Style};

/// When and since how long one drift was seen.
struct Seen<'a> {
    seen: &'a BTreeMap<String, String>,
    now: SystemTime,
}

impl Seen<'_> {
    fn since(&self, addr: &Address, attr: Option<&str>) -> Option<&str> {
        self.seen.get(&key(addr, attr)).map(String::as_str)
    }

    /// "seen for 3 days (since 2026-11-26T10:00:00Z)".
    fn text(&self, addr: &Address, attr: Option<&str>) -> Option<String> {
        let since = self.since(addr, attr)?;
        Some(match age(since, self.now) {
            Some(a) => format!("seen for {a} (since {since})"),
            None => format!("seen since {since}"),
        })
    }
}

/// How many attributes drifted, counting a gone object as one.
fn count(plan: &Plan) -> usize {
    plan.drift
        .iter()
        .map(|d| match &d.kind {
            DriftKind::Deleted => 1,
            DriftKind::Changed(c) => c.len(),
        })
        .sum()
}

/// The human report.
pub(crate) fn drift_text(
    plan: &Plan,
    schemas: &Registry,
    seen: &BTreeMap<String, String>,
    now: SystemTime,
    style: Style,
) -> String {
    if plan.drift.is_empty() {
        return "No drift: AWS matches the state for every object skyform manages.\n".into();
    }
    let seen = Seen { seen, now };
    let mut out = format!(
        "{}\n\n",
        style.bold("Drift: objects have changed outside of skyform")
    );
    out.push_str(&drift_blocks(plan, schemas, style, &|a, attr| {
        seen.text(a, attr)
    }));
    let _ = writeln!(
        out,
        "{} change(s) outside skyform on {} object(s). `skyform apply` undoes them unless the configuration is changed to match; `skyform refresh` records them in the state.",
        count(plan),
        plan.drift.len()
    );
    out
}

/// Terraform's `resource_drift` entries, each with `first_seen` (its earliest drift) and, for
/// a changed object, `first_seen_by_attribute`.
pub(crate) fn drift_json(plan: &Plan, schemas: &Registry, seen: &BTreeMap<String, String>) -> Json {
    let seen = Seen {
        seen,
        now: SystemTime::now(),
    };
    let entries: Vec<Json> = crate::render::json::resource_drift(plan, schemas)
        .into_iter()
        .zip(&plan.drift)
        .map(|(mut entry, d)| {
            let times: BTreeMap<&str, &str> = match &d.kind {
                DriftKind::Deleted => BTreeMap::new(),
                DriftKind::Changed(changes) => changes
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), seen.since(&d.addr, Some(&c.name))?)))
                    .collect(),
            };
            // RFC 3339 times of one form sort as text.
            let first = match &d.kind {
                DriftKind::Deleted => seen.since(&d.addr, None),
                DriftKind::Changed(_) => times.values().min().copied(),
            };
            if let Json::Object(m) = &mut entry {
                m.insert("first_seen".into(), json!(first));
                if matches!(d.kind, DriftKind::Changed(_)) {
                    m.insert("first_seen_by_attribute".into(), json!(times));
                }
            }
            entry
        })
        .collect();
    json!({
        "format_version": crate::render::json_config::FORMAT_VERSION,
        "terraform_version": crate::render::json_config::TERRAFORM_VERSION,
        "skyform_version": env!("CARGO_PKG_VERSION"),
        "timestamp": humantime::format_rfc3339_seconds(seen.now).to_string(),
        "resource_drift": entries,
    })
}

/// Table cells must not break the table, nor grow without bound.
fn cell(s: &str) -> String {
    const MOST: usize = 200;
    let s = s.replace('|', "\\|").replace('\n', " ");
    match s.char_indices().nth(MOST) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The Markdown report: one table row per drifted attribute (or gone object).
pub(crate) fn drift_markdown(
    plan: &Plan,
    schemas: &Registry,
    seen: &BTreeMap<String, String>,
    now: SystemTime,
) -> String {
    if plan.drift.is_empty() {
        return "### skyform drift: none\n\nAWS matches the state for every object skyform manages.\n"
            .into();
    }
    let seen = Seen { seen, now };
    let mut out = format!(
        "### skyform drift: {} change(s) outside skyform on {} object(s)\n\n| Resource | Attribute | Was | Now | Seen for | Since |\n|---|---|---|---|---|---|\n",
        count(plan),
        plan.drift.len()
    );
    let mut row = |addr: &Address, attr: Option<&str>, was: String, now: String| {
        let since = seen.since(addr, attr).unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{addr}` | {} | {} | {} | {} | {since} |",
            cell(attr.unwrap_or("(object deleted)")),
            cell(&was),
            cell(&now),
            age(since, seen.now).unwrap_or_default()
        );
    };
    for d in &plan.drift {
        let secret = plan.sensitive_attrs(schemas, &d.addr);
        let schema = schemas.resources.get(&d.addr.type_name);
        match &d.kind {
            DriftKind::Deleted => row(&d.addr, None, String::new(), String::new()),
            DriftKind::Changed(changes) => {
                for c in changes {
                    let ty = schema.and_then(|s| s.attr(&c.name)).map(|a| &a.ty);
                    let sensitive = secret.contains(&c.name);
                    row(
                        &d.addr,
                        Some(&c.name),
                        value_text(ty, &c.before, sensitive, 0),
                        value_text(ty, &c.after, sensitive, 0),
                    );
                }
            }
        }
    }
    out.push_str("\n`skyform apply` undoes these changes unless the configuration is changed to match; `skyform refresh` records them in the state.\n");
    out
}
