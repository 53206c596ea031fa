//! How long each drift has been seen, for `skyform drift`: the key of a drifted attribute (or
//! of an object that is gone), the first-seen map carried from one run to the next (drift
//! still there keeps its time, new drift gets now, drift that went away is dropped), and the
//! age as people say it ("3 days").

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::engine::plan::{Drift, DriftKind};
use crate::lang::address::Address;

/// The key of one drift: the address and the attribute, or the address alone for an object
/// that is gone (its attributes no longer say anything).
pub(crate) fn key(addr: &Address, attr: Option<&str>) -> String {
    match attr {
        Some(a) => format!("{addr} {a}"),
        None => addr.to_string(),
    }
}

/// Every key of `drift`, in its order.
pub(crate) fn keys(drift: &[Drift]) -> Vec<String> {
    drift
        .iter()
        .flat_map(|d| match &d.kind {
            DriftKind::Deleted => vec![key(&d.addr, None)],
            DriftKind::Changed(changes) => changes
                .iter()
                .map(|c| key(&d.addr, Some(&c.name)))
                .collect(),
        })
        .collect()
}

/// The first-seen map after a run that found `drift` at `now`: earlier times are kept for
/// drift still there, and only for it.
pub(crate) fn carried(
    earlier: &BTreeMap<String, String>,
    drift: &[Drift],
    now: SystemTime,
) -> BTreeMap<String, String> {
    let now = humantime::format_rfc3339_seconds(now).to_string();
    keys(drift)
        .into_iter()
        .map(|k| {
            let since = earlier.get(&k).cloned().unwrap_or_else(|| now.clone());
            (k, since)
        })
        .collect()
}

/// How long ago `since` (RFC 3339) was, in its largest whole unit; `None` when it does not
/// parse (a hand-edited state), so that the caller shows the time alone.
pub(crate) fn age(since: &str, now: SystemTime) -> Option<String> {
    let then = humantime::parse_rfc3339(since).ok()?;
    // A clock that went back shows as "less than a minute", not as an error.
    let d = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    let (n, unit) = match d {
        0..60 => return Some("less than a minute".into()),
        60..3_600 => (d / 60, "minute"),
        3_600..86_400 => (d / 3_600, "hour"),
        _ => (d / 86_400, "day"),
    };
    Some(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::diff::AttrChange;
    use crate::lang::value::Value;

    fn changed(addr: &str, attrs: &[&str]) -> Drift {
        Drift {
            addr: addr.parse().unwrap(),
            kind: DriftKind::Changed(
                attrs
                    .iter()
                    .map(|a| AttrChange {
                        name: (*a).to_string(),
                        before: Value::String("a".into()),
                        after: Value::String("b".into()),
                        forces_replacement: false,
                    })
                    .collect(),
            ),
            prior: serde_json::Map::new(),
            live: Some(serde_json::Map::new()),
        }
    }

    #[test]
    fn drift_still_there_keeps_its_first_seen_time_new_drift_gets_now_and_gone_drift_is_dropped() {
        let now = humantime::parse_rfc3339("2026-11-29T10:00:00Z").unwrap();
        let earlier = BTreeMap::from([
            (
                "aws_iam_role.r description".to_string(),
                "2026-11-26T10:00:00Z".to_string(),
            ),
            (
                "aws_iam_role.old".to_string(),
                "2026-11-20T10:00:00Z".to_string(),
            ),
        ]);
        let mut gone = changed("aws_security_group.sg", &[]);
        gone.kind = DriftKind::Deleted;
        let drift = [changed("aws_iam_role.r", &["description", "tags"]), gone];
        let seen = carried(&earlier, &drift, now);
        assert_eq!(
            seen,
            BTreeMap::from([
                (
                    "aws_iam_role.r description".to_string(),
                    "2026-11-26T10:00:00Z".to_string()
                ),
                (
                    "aws_iam_role.r tags".to_string(),
                    "2026-11-29T10:00:00Z".to_string()
                ),
                (
                    "aws_security_group.sg".to_string(),
                    "2026-11-29T10:00:00Z".to_string()
                ),
            ])
        );
        assert!(carried(&seen, &[], now).is_empty());
    }

    #[test]
    fn an_age_is_said_in_its_largest_whole_unit() {
        let now = humantime::parse_rfc3339("2026-11-29T10:00:00Z").unwrap();
        let age_of = |since: &str| age(since, now);
        assert_eq!(age_of("2026-11-26T09:00:00Z").as_deref(), Some("3 days"));
        assert_eq!(age_of("2026-11-29T09:00:00Z").as_deref(), Some("1 hour"));
        assert_eq!(age_of("2026-11-29T09:58:00Z").as_deref(), Some("2 minutes"));
        assert_eq!(
            age_of("2026-11-29T09:59:59Z").as_deref(),
            Some("less than a minute")
        );
        assert_eq!(
            age_of("2026-11-30T10:00:00Z").as_deref(),
            Some("less than a minute")
        );
        assert_eq!(age_of("yesterday"), None);
    }
}
