//! Semantic comparison of IAM policy documents.
//!
//! AWS returns documents URL-encoded from some APIs and raw from others, reorders nothing but
//! accepts a string wherever a one-element list is allowed. Two documents are equal here when
//! they grant the same thing: `"Action": "s3:*"` equals `"Action": ["s3:*"]`, and the order of
//! actions, resources and statements does not matter.

use serde_json::Value as Json;

pub(crate) use crate::lang::document::parse_document;

/// Keys whose values are sets of strings in IAM's grammar.
const SET_KEYS: &[&str] = &[
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "AWS",
    "Service",
    "Federated",
    "CanonicalUser",
];

fn normalize(v: &Json, key: Option<&str>) -> Json {
    let is_set = key.is_some_and(|k| SET_KEYS.contains(&k));
    match v {
        // A lone statement object is the same as a list of one.
        Json::Object(_) if key == Some("Statement") => {
            normalize(&Json::Array(vec![v.clone()]), key)
        }
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize(v, Some(k))))
                .collect(),
        ),
        Json::Array(items) if key == Some("Statement") => {
            let mut items: Vec<Json> = items.iter().map(|i| normalize(i, None)).collect();
            items.sort_by_key(ToString::to_string);
            Json::Array(items)
        }
        Json::Array(items) if is_set => {
            let mut items: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), String::from))
                .collect();
            items.sort();
            items.dedup();
            Json::Array(items.into_iter().map(Json::String).collect())
        }
        Json::String(s) if is_set => Json::Array(vec![Json::String(s.clone())]),
        Json::Array(items) => Json::Array(items.iter().map(|i| normalize(i, None)).collect()),
        _ => v.clone(),
    }
}

/// The canonical form of a document, for comparison and fingerprints.
pub(crate) fn canonical(text: &str) -> Option<String> {
    Some(normalize(&parse_document(text)?, None).to_string())
}

/// Whether two documents mean the same; falls back to text equality when either is not JSON.
pub(crate) fn equivalent(a: &str, b: &str) -> bool {
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_single_element_list_are_equivalent() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let b = r#"{"Statement":[{"Resource":["*"],"Action":["s3:*"],"Effect":"Allow"}],"Version":"2012-10-17"}"#;
        assert!(equivalent(a, b));
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let raw = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["b","a"],"Resource":"*"}]}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(raw, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let reordered = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["a","b"],"Resource":"*"}}"#;
        assert!(equivalent(&encoded, reordered));
    }

    #[test]
    fn a_different_grant_is_not_equivalent() {
        let a = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let b = r#"{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
        assert!(!equivalent(a, b));
    }
}
