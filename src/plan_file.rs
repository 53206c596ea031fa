//! Saved plans: `skyform plan --out FILE`, then `skyform apply FILE` or `skyform show FILE`.
//!
//! A plan file is one header line, `skyform-plan 1 sha256:<hex>`, followed by a JSON body. The
//! checksum covers the body, so a flipped byte, a truncated copy or a file that is not a plan
//! is refused before anything is parsed. The body records what the plan was made from: a
//! digest of the configuration files and variable values, the state's lineage and serial, and
//! a fingerprint of the live attributes of every resource the plan touches. `apply FILE`
//! re-checks all three and refuses a stale plan (Terraform checks only the serial).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::address::Address;
use crate::config::Config;
use crate::diff::Action;
use crate::plan::{Plan, PlanOptions};
use crate::state::Attrs;
use crate::value::Value;

const MAGIC: &str = "skyform-plan";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub skyform_version: String,
    pub config_digest: String,
    /// The variable values the plan was made with; `apply FILE` uses these.
    pub variables: BTreeMap<String, Value>,
    pub lineage: String,
    pub serial: u64,
    /// For every resource the plan touches, a digest of the live attributes it read.
    pub fingerprints: BTreeMap<Address, String>,
    pub options: PlanOptions,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("{0} is not a skyform plan file")]
    NotAPlan(String),
    #[error("{path} was written by a newer skyform (plan format {found}); this one reads format {VERSION}")]
    TooNew { path: String, found: String },
    #[error("{0} is damaged or was edited: its checksum does not match its content; make the plan again")]
    Corrupt(String),
    #[error("cannot read the plan file {path}: {message}")]
    Io { path: String, message: String },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A digest of everything the plan was evaluated from: each file's name and text, and the
/// variable values.
pub fn config_digest(config: &Config, variables: &BTreeMap<String, Value>) -> String {
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

/// A digest of live attributes (serde_json sorts keys, so equal maps digest equally).
pub fn fingerprint(attrs: &Attrs) -> String {
    sha256(&serde_json::to_vec(attrs).unwrap_or_default())
}

/// The live attributes a plan read for each resource it touches: the changed resources, and
/// for a refresh-only plan the drifted ones. `None` means "read as gone".
pub fn touched(plan: &Plan) -> BTreeMap<Address, Option<Attrs>> {
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

pub fn fingerprints(plan: &Plan) -> BTreeMap<Address, String> {
    touched(plan)
        .into_iter()
        .map(|(a, attrs)| {
            (
                a,
                attrs.as_ref().map_or_else(|| "absent".into(), fingerprint),
            )
        })
        .collect()
}

/// The file's bytes: the header with the body's checksum, then the body.
pub fn encode(saved: &SavedPlan) -> Vec<u8> {
    let body = serde_json::to_vec(saved).unwrap_or_default();
    let mut out = format!("{MAGIC} {VERSION} sha256:{}\n", sha256(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Reads a plan file's bytes; `path` is only for messages.
pub fn decode(path: &str, bytes: &[u8]) -> Result<SavedPlan, PlanFileError> {
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

pub fn read(path: &std::path::Path) -> Result<SavedPlan, PlanFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PlanFileError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    decode(&shown, &bytes)
}

/// Writes the file whole or not at all: a temporary file renamed into place.
pub fn write(path: &std::path::Path, saved: &SavedPlan) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-skyform");
    std::fs::write(&tmp, encode(saved))?;
    std::fs::rename(&tmp, path)
}

/// The attributes that differ between what the plan read and what AWS says now, as lines.
pub fn differences(before: Option<&Attrs>, now: Option<&Attrs>) -> Vec<String> {
    match (before, now) {
        (Some(_), None) => vec!["it has been deleted".into()],
        (None, Some(_)) => vec!["it now exists".into()],
        (None, None) => vec![],
        (Some(b), Some(n)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(n.keys()).collect();
            keys.into_iter()
                .filter(|k| b.get(*k) != n.get(*k))
                .map(|k| {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map_or_else(|| "null".to_string(), |v| Value::from_json(v).to_string())
                    };
                    format!("{k}: {} -> {}", show(b.get(k)), show(n.get(k)))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> SavedPlan {
        SavedPlan {
            skyform_version: "test".into(),
            config_digest: "d".into(),
            variables: BTreeMap::from([("n".into(), Value::Unknown)]),
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
    }
}
