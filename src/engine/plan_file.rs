//! Saved plans: `skyform plan --out FILE`, then `skyform apply FILE` or `skyform show FILE`.
//!
//! A plan file is one header line, `skyform-plan 2 sha256:<hex>`, followed by a JSON body. The
//! checksum covers the body, so a flipped byte, a truncated copy or a file that is not a plan
//! is refused before anything is parsed. The body records what the plan was made from: a
//! digest of the configuration files and variable values, a digest of every file the
//! configuration read, the state's lineage and serial, and a fingerprint of the live attributes
//! of every resource the plan touches. `apply FILE` re-checks all of them, and that evaluating
//! the configuration again gives the planned values, and refuses a stale plan (Terraform checks
//! only the serial).
//!
//! A plan file holds no secret, because CI keeps it as a build artifact. Every sensitive value
//! (an attribute its schema marks sensitive, one derived from a sensitive input, a sensitive
//! output, a sensitive variable) is replaced by a digest salted with a random per-file salt
//! (`redact`): `apply FILE` can still prove that the secrets it is given again, and those it
//! evaluates, are the ones the plan was made with. The file is created with mode 0600.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::lang::digest::{hex, sha256};
use crate::lang::functions::{FILE_ABSENT, FILE_PRESENT};
use crate::lang::schema::Registry;

use crate::engine::diff::{Action, AttrChange};
use crate::engine::plan::{DriftKind, Plan, PlanOptions, Workspace};
use crate::lang::address::Address;
use crate::lang::config::Config;
use crate::lang::value::Value;
use crate::lang::variables::Vars;
use crate::state::Attrs;

const MAGIC: &str = "skyform-plan";
/// 2: sensitive values are redacted, variables and files are digested with a salt.
/// 3: a change's reason is a typed kind (`engine::plan::Reason`), no longer its words.
const VERSION: u32 = 3;

/// What a redacted value starts with; the rest is its salted digest.
const REDACTED: &str = "(sensitive value) sha256:";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedPlan {
    pub(crate) skyform_version: String,
    /// Random for each file (hex). Every digest in the file is salted with it, so that a
    /// digest cannot be looked up in a table computed in advance.
    pub(crate) salt: String,
    /// The configuration files' names and text, and the non-sensitive variable values.
    pub(crate) config_digest: String,
    /// The non-sensitive variable values the plan was made with; `apply FILE` uses these.
    pub(crate) variables: BTreeMap<String, Value>,
    /// A salted digest of each sensitive variable's value, never the value: `apply FILE` is
    /// given the values again and refuses the plan when one differs.
    pub(crate) sensitive_variables: BTreeMap<String, String>,
    /// Every file the configuration read (`file()`), by its path relative to the
    /// configuration directory, with a salted digest of its content.
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) lineage: String,
    pub(crate) serial: u64,
    /// For every resource the plan touches, a salted digest of the live attributes it read.
    pub(crate) fingerprints: BTreeMap<Address, String>,
    pub(crate) options: PlanOptions,
    /// The plan, with every sensitive value redacted.
    pub(crate) plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanFileError {
    #[error("{0} is not a skyform plan file")]
    NotAPlan(String),
    #[error("{path} was written by a newer skyform (plan format {found}); this one reads format {VERSION}")]
    TooNew { path: String, found: String },
    #[error("{path} was written by an older skyform (plan format {found}), whose plan files could hold secrets; make the plan again, and delete the old file")]
    TooOld { path: String, found: String },
    #[error("{0} is damaged or was edited: its checksum does not match its content; make the plan again")]
    Corrupt(String),
    #[error("cannot read the plan file {path}: {message}")]
    Io { path: String, message: String },
}

/// The digest of `bytes` salted with `salt`.
pub(crate) fn salted(salt: &str, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// The salted digest of a JSON value (`serde_json` sorts keys, so equal values digest equally).
fn json_digest(salt: &str, v: &serde_json::Value) -> String {
    salted(salt, &serde_json::to_vec(v).unwrap_or_default())
}

/// A sensitive JSON value as a plan file keeps it: null stays null (it hides nothing), any
/// other value becomes its salted digest.
fn redact_json(salt: &str, v: &serde_json::Value) -> serde_json::Value {
    if v.is_null() {
        serde_json::Value::Null
    } else {
        serde_json::Value::String(format!("{REDACTED}{}", json_digest(salt, v)))
    }
}

/// A sensitive planned value as a plan file keeps it: unknown and null stay as they are.
fn redact_value(salt: &str, v: &Value) -> Value {
    match v {
        Value::Unknown | Value::Null => v.clone(),
        v => Value::String(format!("{REDACTED}{}", json_digest(salt, &v.to_json()))),
    }
}

fn redact_attrs(salt: &str, attrs: &mut Attrs, names: &BTreeSet<String>) {
    for (k, v) in attrs.iter_mut() {
        if names.contains(k) {
            *v = redact_json(salt, v);
        }
    }
}

fn redact_changes(salt: &str, changes: &mut [AttrChange], names: &BTreeSet<String>) {
    for ch in changes.iter_mut().filter(|ch| names.contains(&ch.name)) {
        ch.before = redact_value(salt, &ch.before);
        ch.after = redact_value(salt, &ch.after);
    }
}

/// The plan with every sensitive value replaced by its salted digest: in the state it was
/// made against (attributes, intents, outputs) and in what recovery adopts, in each change's `before`, `after` and
/// attribute changes, in drift, in data source results and in outputs. Every redacted
/// attribute is listed in its change's `sensitive`, so that every renderer masks it.
pub(crate) fn redact(plan: &Plan, schemas: &Registry, salt: &str) -> Plan {
    let mut out = plan.clone();
    for c in &mut out.changes {
        let names = plan.sensitive_attrs(schemas, &c.addr);
        if let Some(before) = &mut c.before {
            redact_attrs(salt, before, &names);
        }
        for (k, v) in &mut c.after {
            if names.contains(k) {
                *v = redact_value(salt, v);
            }
        }
        redact_changes(salt, &mut c.changes, &names);
        c.sensitive.extend(names);
    }
    for d in &mut out.drift {
        let names = plan.sensitive_attrs(schemas, &d.addr);
        redact_attrs(salt, &mut d.prior, &names);
        if let Some(live) = &mut d.live {
            redact_attrs(salt, live, &names);
        }
        if let DriftKind::Changed(changes) = &mut d.kind {
            redact_changes(salt, changes, &names);
        }
    }
    for (addr, attrs) in &mut out.data {
        redact_attrs(salt, attrs, &plan.sensitive_attrs(schemas, addr));
    }
    for o in out.outputs.iter_mut().filter(|o| o.sensitive) {
        o.before = o.before.as_ref().map(|b| redact_json(salt, b));
        o.after = o.after.as_ref().map(|a| redact_value(salt, a));
    }
    for (addr, r) in &mut out.state.resources {
        redact_attrs(salt, &mut r.attrs, &plan.sensitive_attrs(schemas, addr));
    }
    // An intent's attributes may hold anything its block evaluated to, and a block removed
    // since has no schema or change left to say what was sensitive. Apply reads intents from
    // the store, not from the file, so the file keeps only their addresses and operations.
    for i in out.state.intents.values_mut() {
        i.attrs.clear();
        i.evidence.clear();
    }
    for o in out.state.outputs.values_mut().filter(|o| o.sensitive) {
        o.value = redact_json(salt, &o.value);
    }
    for r in &mut out.recovery.adopted {
        redact_attrs(salt, &mut r.attrs, &plan.sensitive_attrs(schemas, &r.addr));
    }
    out
}

/// The plan file for a plan made from `ws`: secrets redacted, sensitive variables and the
/// files the configuration read digested with a new random salt.
pub(crate) fn save(ws: &Workspace, plan: &Plan, options: &PlanOptions) -> SavedPlan {
    let salt = hex(&crate::state::random_bytes());
    let (sensitive, variables): (BTreeMap<String, Value>, BTreeMap<String, Value>) = ws
        .vars
        .values
        .clone()
        .into_iter()
        .partition(|(name, _)| ws.vars.sensitive.contains(name));
    SavedPlan {
        skyform_version: env!("CARGO_PKG_VERSION").into(),
        config_digest: config_digest(&ws.config, &variables),
        sensitive_variables: sensitive
            .iter()
            .map(|(name, v)| (name.clone(), json_digest(&salt, &v.to_json())))
            .collect(),
        variables,
        files: ws
            .files_read
            .digests()
            .into_iter()
            .map(|(path, digest)| (path, salted(&salt, digest.as_bytes())))
            .collect(),
        lineage: plan.state.lineage.clone(),
        serial: plan.state.serial,
        fingerprints: fingerprints(plan, &salt),
        options: options.clone(),
        plan: redact(plan, ws.config.schemas, &salt),
        salt,
    }
}

/// A digest of the configuration: each file's name and text, and the non-sensitive variable
/// values (sensitive ones have salted digests of their own).
pub(crate) fn config_digest(config: &Config, variables: &BTreeMap<String, Value>) -> String {
    let mut files: Vec<(&str, &str)> = config
        .sources
        .files
        .iter()
        .map(|f| (f.display.as_str(), f.text.as_str()))
        .collect();
    files.sort_unstable();
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    let vars = serde_json::to_vec(variables).unwrap_or_default();
    h.update(&vars);
    hex(&h.finalize())
}

/// Holds what `apply FILE` was given against what the plan was made with, and puts the plan's
/// non-sensitive variable values in place (the plan carries them). Returns the problems, each
/// naming the variable or file at fault and never showing a sensitive value.
pub(crate) fn check_inputs(saved: &SavedPlan, config: &Config, vars: &mut Vars) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, then) in &saved.variables {
        if vars.sensitive.contains(name) {
            // Sensitive now but not then: the configuration changed, as the digest says.
            continue;
        }
        if let Some(now) = vars.values.get(name) {
            if vars.given.contains(name) && now != then {
                problems.push(format!(
                    "var.{name} is given as {now}, but the plan was made with {then}"
                ));
            }
        }
        vars.values.insert(name.clone(), then.clone());
    }
    let plain: BTreeMap<String, Value> = vars
        .values
        .iter()
        .filter(|(name, _)| !vars.sensitive.contains(*name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if config_digest(config, &plain) != saved.config_digest {
        problems.push(
            "the configuration (*.sky.hcl/*.tf files or variable values) changed since it was made"
                .into(),
        );
    }
    for (name, digest) in &saved.sensitive_variables {
        let same = vars
            .values
            .get(name)
            .filter(|v| !v.contains_unknown())
            .is_some_and(|v| &json_digest(&saved.salt, &v.to_json()) == digest);
        if !same {
            problems.push(format!(
                "the value of sensitive variable {name:?} differs from the one it was made with (give the same value as when planning: --var, --var-file or SKYFORM_VAR_{name})"
            ));
        }
    }
    for (path, digest) in &saved.files {
        let full = config.dir.join(path);
        let is = |marker: &str| digest == &salted(&saved.salt, marker.as_bytes());
        if is(FILE_ABSENT) || is(FILE_PRESENT) {
            if full.is_file() != is(FILE_PRESENT) {
                let now = if full.is_file() {
                    "exists now"
                } else {
                    "is gone"
                };
                problems.push(format!(
                    "the file {path}, whose existence the configuration checks, {now}"
                ));
            }
            continue;
        }
        match std::fs::read(&full) {
            Ok(bytes) if &salted(&saved.salt, sha256(&bytes).as_bytes()) == digest => {}
            Ok(_) => problems.push(format!(
                "the file {path}, which the configuration reads, changed since it was made"
            )),
            Err(e) => problems.push(format!(
                "the file {path}, which the configuration reads, cannot be read now: {e}"
            )),
        }
    }
    problems
}

/// A salted digest of live attributes.
pub(crate) fn fingerprint(salt: &str, attrs: &Attrs) -> String {
    salted(salt, &serde_json::to_vec(attrs).unwrap_or_default())
}

/// The live attributes a plan read for each resource it touches: the changed resources, and
/// for a refresh-only plan the drifted ones. `None` means "read as gone".
pub(crate) fn touched(plan: &Plan) -> BTreeMap<Address, Option<Attrs>> {
    let mut out = BTreeMap::new();
    if plan.refresh_only {
        for d in &plan.drift {
            out.insert(d.addr.clone(), d.live.clone());
        }
    } else {
        for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
            out.insert(c.addr.clone(), c.before.clone());
        }
    }
    out
}

pub(crate) fn fingerprints(plan: &Plan, salt: &str) -> BTreeMap<Address, String> {
    touched(plan)
        .into_iter()
        .map(|(a, attrs)| {
            (
                a,
                attrs
                    .as_ref()
                    .map_or_else(|| "absent".into(), |x| fingerprint(salt, x)),
            )
        })
        .collect()
}

/// The file's bytes: the header with the body's checksum, then the body.
pub(crate) fn encode(saved: &SavedPlan) -> Vec<u8> {
    let body = serde_json::to_vec(saved).unwrap_or_default();
    let mut out = format!("{MAGIC} {VERSION} sha256:{}\n", sha256(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Reads a plan file's bytes; `path` is only for messages.
pub(crate) fn decode(path: &str, bytes: &[u8]) -> Result<SavedPlan, PlanFileError> {
    let not_a_plan = || PlanFileError::NotAPlan(path.to_string());
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(not_a_plan)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| not_a_plan())?;
    let mut parts = header.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(not_a_plan());
    }
    let version = parts.next().unwrap_or_default();
    if version.parse::<u32>().is_ok_and(|v| v < VERSION) {
        return Err(PlanFileError::TooOld {
            path: path.to_string(),
            found: version.to_string(),
        });
    }
    if version != VERSION.to_string() {
        return Err(PlanFileError::TooNew {
            path: path.to_string(),
            found: version.to_string(),
        });
    }
    let sum = parts
        .next()
        .and_then(|p| p.strip_prefix("sha256:"))
        .ok_or_else(|| PlanFileError::Corrupt(path.to_string()))?;
    let body = &bytes[newline + 1..];
    if sha256(body) != sum {
        return Err(PlanFileError::Corrupt(path.to_string()));
    }
    serde_json::from_slice(body).map_err(|_| PlanFileError::Corrupt(path.to_string()))
}

pub(crate) fn read(path: &std::path::Path) -> Result<SavedPlan, PlanFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PlanFileError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    decode(&shown, &bytes)
}

/// Writes the file whole or not at all: a temporary file renamed into place. The temporary
/// file is created with mode 0600 (`O_EXCL`, after removing any left by a crash, whose mode
/// could be anything), so the plan is never readable by others, not even for a moment.
pub(crate) fn write(path: &std::path::Path, saved: &SavedPlan) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp-skyform");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(&encode(saved))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The attributes that differ between what the plan read (`before`, as the file keeps it:
/// redacted) and what AWS says now, as lines. A sensitive attribute is compared by its salted
/// digest and named, never shown.
pub(crate) fn differences(
    before: Option<&Attrs>,
    now: Option<&Attrs>,
    sensitive: &BTreeSet<String>,
    salt: &str,
) -> Vec<String> {
    match (before, now) {
        (Some(_), None) => vec!["it has been deleted".into()],
        (None, Some(_)) => vec!["it now exists".into()],
        (None, None) => vec![],
        (Some(b), Some(n)) => {
            let keys: BTreeSet<&String> = b.keys().chain(n.keys()).collect();
            let mut lines = Vec::new();
            for k in keys {
                let secret = sensitive.contains(k);
                let now = n.get(k).map(|v| {
                    if secret {
                        redact_json(salt, v)
                    } else {
                        v.clone()
                    }
                });
                if b.get(k) == now.as_ref() {
                    continue;
                }
                lines.push(if secret {
                    format!("{k}: (sensitive value) changed")
                } else {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map_or_else(|| "null".to_string(), |v| Value::from_json(v).to_string())
                    };
                    format!("{k}: {} -> {}", show(b.get(k)), show(now.as_ref()))
                });
            }
            lines
        }
    }
}

/// Where evaluating the configuration again gives other planned values than the saved plan
/// holds, for each resource the plan changes (except those in `skip`, already reported) and
/// each output. Sensitive values are compared by their salted digests and never shown.
pub(crate) fn planned_differences(
    schemas: &Registry,
    saved: &SavedPlan,
    fresh: &Plan,
    skip: &BTreeSet<Address>,
) -> Vec<String> {
    let salt = saved.salt.as_str();
    let mut out = Vec::new();
    let mut compare = |what: String, then: Option<&Value>, now: Option<&Value>, secret: bool| {
        let now = now.map(|v| {
            if secret {
                redact_value(salt, v)
            } else {
                v.clone()
            }
        });
        if then == now.as_ref() {
            return;
        }
        let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_string(), Value::to_string);
        out.push(if secret {
            format!("  {what}: its sensitive value would now differ from the plan's")
        } else {
            format!(
                "  {what} would now be {} (the plan says {})",
                show(now.as_ref()),
                show(then)
            )
        });
    };
    for c in &saved.plan.changes {
        if c.action == Action::NoOp || skip.contains(&c.addr) {
            continue;
        }
        // A resource whose action differs is reported as such.
        let Some(f) = fresh
            .changes
            .iter()
            .find(|f| f.addr == c.addr && f.action == c.action)
        else {
            continue;
        };
        let secret: BTreeSet<String> = fresh
            .sensitive_attrs(schemas, &f.addr)
            .union(&c.sensitive)
            .cloned()
            .collect();
        let keys: BTreeSet<&String> = c.after.keys().chain(f.after.keys()).collect();
        for k in keys {
            compare(
                format!("{}.{k}", c.addr),
                c.after.get(k),
                f.after.get(k),
                secret.contains(k),
            );
        }
    }
    for o in &saved.plan.outputs {
        let f = fresh.outputs.iter().find(|f| f.name == o.name);
        compare(
            format!("output {:?}", o.name),
            o.after.as_ref(),
            f.and_then(|f| f.after.as_ref()),
            o.sensitive || f.is_some_and(|f| f.sensitive),
        );
    }
    out
}

/// How the recovery a plan was reviewed with differs from the one found now: what an
/// interrupted apply left (or an apply interrupted since) must be the same to apply the plan.
pub(crate) fn recovery_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let (then, now) = (&saved.recovery, &fresh.recovery);
    let adopted = |r: &crate::engine::reconcile::Recovery| -> Vec<(Address, String)> {
        r.adopted
            .iter()
            .map(|a| (a.addr.clone(), a.id.clone()))
            .collect()
    };
    let mut out = Vec::new();
    if then.settled != now.settled {
        out.push("  the operations an interrupted apply left open are not the ones the plan settles (an apply was interrupted since it was made)".to_string());
    }
    if adopted(then) != adopted(now) || then.replace != now.replace || then.strays != now.strays {
        out.push(
            "  what an interrupted apply left in AWS differs from what the plan found".to_string(),
        );
    }
    out
}

/// The saved plan made whole for execution: its actions, with what the fresh plan read in
/// place of what the file left out or redacted (the state as loaded from the store, live
/// attributes, drift, data source results). The stale checks proved those equal to what the
/// plan was made from; taking them from the fresh plan keeps secrets (an access key's secret
/// in state) that an apply from the redacted copy would lose.
///
/// The recovery is taken from the fresh plan too, after `recovery_differences` found it the
/// same as the saved one.
pub(crate) fn rejoin(mut saved: Plan, fresh: Plan) -> Plan {
    let mut before: BTreeMap<Address, Option<Attrs>> = fresh
        .changes
        .into_iter()
        .map(|c| (c.addr, c.before))
        .collect();
    for c in &mut saved.changes {
        if let Some(b) = before.remove(&c.addr) {
            c.before = b;
        }
    }
    let mut drift: BTreeMap<Address, crate::engine::plan::Drift> = fresh
        .drift
        .into_iter()
        .map(|d| (d.addr.clone(), d))
        .collect();
    for d in &mut saved.drift {
        if let Some(f) = drift.remove(&d.addr) {
            *d = f;
        }
    }
    saved.data = fresh.data;
    saved.state = fresh.state;
    saved.recovery = fresh.recovery;
    saved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> SavedPlan {
        SavedPlan {
            skyform_version: "test".into(),
            salt: "s".into(),
            config_digest: "d".into(),
            variables: BTreeMap::from([("n".into(), Value::Unknown)]),
            sensitive_variables: BTreeMap::new(),
            files: BTreeMap::new(),
            lineage: "l".into(),
            serial: 3,
            fingerprints: BTreeMap::new(),
            options: PlanOptions::default(),
            plan: Plan::default(),
        }
    }

    #[test]
    fn a_plan_file_round_trips() {
        let bytes = encode(&saved());
        let back = decode("p", &bytes).expect("decode");
        assert_eq!(back.serial, 3);
        assert_eq!(back.variables["n"], Value::Unknown);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = encode(&saved());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(decode("p", &b).is_err(), "flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(
                decode("p", &bytes[..n]).is_err(),
                "truncation to {n} accepted"
            );
        }
    }

    #[test]
    fn other_files_are_not_plans() {
        assert!(matches!(
            decode("p", b"resource \"x\" \"y\" {}\n"),
            Err(PlanFileError::NotAPlan(_))
        ));
        assert!(matches!(decode("p", b""), Err(PlanFileError::NotAPlan(_))));
        assert!(matches!(
            decode("p", b"skyform-plan 9 sha256:00\n{}"),
            Err(PlanFileError::TooNew { .. })
        ));
        assert!(matches!(
            decode("p", b"skyform-plan 1 sha256:00\n{}"),
            Err(PlanFileError::TooOld { .. })
        ));
    }

    const SECRETS: &str = r#"
variable "pw" { sensitive = true }
resource "aws_iam_user" "u" {
  name = "u"
  tags = { team = "t", pw = var.pw }
}
resource "aws_iam_access_key" "k" {
  user = aws_iam_user.u.name
}
output "secret" {
  value     = aws_iam_access_key.k.secret
  sensitive = true
}
"#;

    /// A plan that holds every kind of secret: the key's secret in state, in a change's
    /// `before` and `after`, in drift and in outputs; the old variable value in a derived tag
    /// (state, `before`, attribute changes, drift); the new one in `after`.
    fn plan_with_secrets() -> (crate::engine::plan::Workspace, Plan, String) {
        use crate::engine::tests::{plan_and_apply, run, workspace};
        use crate::state::StateStore as _;
        let p = crate::engine::fake::FakeProvider::default();
        let mut store = crate::state::MemoryState::default();
        plan_and_apply(&p, &workspace(SECRETS, &["pw=hunter2-first"]), &mut store);
        let key = &store.0.resources[&Address::managed("aws_iam_access_key", "k")];
        let secret = key.attrs["secret"].as_str().expect("secret").to_string();
        {
            let mut cloud = p.cloud.borrow_mut();
            let live = cloud
                .objects
                .get_mut(&("aws_iam_access_key".to_string(), key.id.clone()))
                .expect("key in the fake cloud");
            live.insert("status".into(), "Inactive".into());
        }
        let ws = workspace(SECRETS, &["pw=hunter2-second"]);
        let state = run(store.load()).expect("load");
        let plan = run(crate::engine::plan::plan(
            &p,
            &ws,
            state,
            &PlanOptions::default(),
        ))
        .expect("plan");
        (ws, plan, secret)
    }

    #[test]
    fn apply_records_which_attributes_came_from_a_sensitive_input() {
        let (_, plan, _) = plan_with_secrets();
        let user = &plan.state.resources[&Address::managed("aws_iam_user", "u")];
        let derived = ["tags".to_string(), "tags_all".to_string()];
        assert_eq!(user.sensitive, BTreeSet::from(derived));
        let key = &plan.state.resources[&Address::managed("aws_iam_access_key", "k")];
        assert!(key.sensitive.is_empty(), "{:?}", key.sensitive);
    }

    #[test]
    fn a_saved_plan_holds_no_sensitive_value_anywhere_in_its_bytes() {
        let (ws, plan, secret) = plan_with_secrets();
        let clear = serde_json::to_string(&plan).expect("json");
        for s in ["hunter2-first", "hunter2-second", secret.as_str()] {
            assert!(clear.contains(s), "the unredacted plan holds {s}");
        }
        assert!(!plan.drift.is_empty() && plan.has_resource_changes());

        let saved = save(&ws, &plan, &PlanOptions::default());
        let bytes = encode(&saved);
        let text = String::from_utf8_lossy(&bytes);
        for s in ["hunter2", secret.as_str()] {
            assert!(!text.contains(s), "the plan file holds {s}");
        }
        let back = decode("p", &bytes).expect("decode");
        assert!(back.sensitive_variables.contains_key("pw"));
        assert!(!back.variables.contains_key("pw"));
        // What was redacted is still masked by every renderer.
        let human = crate::render::human::render_plan(
            &back.plan,
            crate::aws::schemas::registry(),
            crate::render::human::Style { color: false },
        );
        assert!(!human.contains(REDACTED), "{human}");
        assert!(human.contains("(sensitive value)"), "{human}");
        let json =
            crate::render::json::plan_json(&back.plan, crate::aws::schemas::registry()).to_string();
        assert!(!json.contains(REDACTED), "{json}");
    }

    #[test]
    fn apply_inputs_are_held_against_the_digests_and_never_shown() {
        use crate::engine::tests::workspace;
        let (ws, plan, _) = plan_with_secrets();
        let saved = save(&ws, &plan, &PlanOptions::default());
        let mut same = workspace(SECRETS, &["pw=hunter2-second"]);
        assert_eq!(
            check_inputs(&saved, &same.config, &mut same.vars),
            Vec::<String>::new()
        );
        let mut other = workspace(SECRETS, &["pw=hunter2-third"]);
        let problems = check_inputs(&saved, &other.config, &mut other.vars);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("the value of sensitive variable \"pw\" differs"),
            "{problems:?}"
        );
        assert!(!problems[0].contains("hunter2"), "{problems:?}");
    }

    #[test]
    fn a_changed_sensitive_attribute_is_named_in_the_differences_but_not_shown() {
        let salt = "s";
        let names = BTreeSet::from(["secret".to_string()]);
        let live: Attrs =
            serde_json::from_str(r#"{"secret": "old", "status": "Active"}"#).expect("json");
        let mut then = live.clone();
        redact_attrs(salt, &mut then, &names);
        assert_eq!(
            differences(Some(&then), Some(&live), &names, salt),
            Vec::<String>::new()
        );
        let now: Attrs =
            serde_json::from_str(r#"{"secret": "new", "status": "Inactive"}"#).expect("json");
        let lines = differences(Some(&then), Some(&now), &names, salt);
        assert_eq!(
            lines,
            [
                "secret: (sensitive value) changed",
                "status: \"Active\" -> \"Inactive\""
            ]
        );
    }
}
