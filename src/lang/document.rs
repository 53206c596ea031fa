//! JSON documents held in string attributes (policies, mostly): parsed as the cloud may return
//! them, compared as JSON when no provider rule knows their kind, and pretty-printed for plans.

use serde_json::Value as Json;

/// Parses a document as a cloud may return it: JSON, or URL-encoded JSON (as AWS returns
/// policies from some APIs).
#[must_use]
pub fn parse_document(text: &str) -> Option<Json> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded.replace('+', " "))
        .ok()
        .or_else(|| serde_json::from_str(&decoded).ok())
}

/// Whether two documents are the same JSON value (key order and layout aside); text equality
/// when either is not JSON.
pub(crate) fn same_json(a: &str, b: &str) -> bool {
    match (parse_document(a), parse_document(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Pretty JSON for display, with keys in the user's order lost but stable.
pub(crate) fn pretty(text: &str) -> String {
    parse_document(text)
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}
