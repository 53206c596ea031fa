//! The `aws_iam_policy_document` data source: an IAM policy built from `statement` blocks and
//! merged with source and override documents, computed locally as Terraform's AWS provider
//! does, so that configurations written for Terraform give the same JSON without an AWS call.
//!
//! The layout follows the provider's (`Version`, `Id`, `Statement`; within a statement `Sid`,
//! `Effect`, `Action`, `NotAction`, `Resource`, `NotResource`, `Principal`, `NotPrincipal`,
//! `Condition`): one value is written as a string, several as a list in the provider's
//! (reverse-sorted) order. IAM accepts both forms and `aws::policy` compares them as equal, so
//! a role whose trust policy is such a document plans clean after apply.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::ec2_common::strings;
use super::resource::DataSource;
use super::s;
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const DATA: DataSource = DataSource {
    name: "aws_iam_policy_document",
    schema: include_str!("../../schemas/data/aws_iam_policy_document.json"),
    read: |_, args| Box::pin(async move { read(args) }),
};

/// One value or several: IAM's `"s3:*"` or `["s3:*", "ec2:*"]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The provider's form of a set of strings: deduplicated, a lone value as a string, several
    /// in reverse-sorted order; `None` for none, so that the key is left out.
    fn of(mut items: Vec<String>) -> Option<OneOrMany> {
        items.sort_unstable_by(|a, b| b.cmp(a));
        items.dedup();
        match items.len() {
            0 => None,
            1 => items.pop().map(OneOrMany::One),
            _ => Some(OneOrMany::Many(items)),
        }
    }

    /// Values as written (condition values keep their order).
    fn ordered(mut items: Vec<String>) -> OneOrMany {
        if items.len() == 1 {
            if let Some(one) = items.pop() {
                return OneOrMany::One(one);
            }
        }
        OneOrMany::Many(items)
    }
}

/// A statement in the provider's key order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    #[serde(skip_serializing_if = "String::is_empty")]
    sid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    effect: String,
    #[serde(rename = "Action", skip_serializing_if = "Option::is_none")]
    actions: Option<OneOrMany>,
    #[serde(rename = "NotAction", skip_serializing_if = "Option::is_none")]
    not_actions: Option<OneOrMany>,
    #[serde(rename = "Resource", skip_serializing_if = "Option::is_none")]
    resources: Option<OneOrMany>,
    #[serde(rename = "NotResource", skip_serializing_if = "Option::is_none")]
    not_resources: Option<OneOrMany>,
    #[serde(rename = "Principal", skip_serializing_if = "Option::is_none")]
    principals: Option<Json>,
    #[serde(rename = "NotPrincipal", skip_serializing_if = "Option::is_none")]
    not_principals: Option<Json>,
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    conditions: BTreeMap<String, BTreeMap<String, OneOrMany>>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(rename = "Statement")]
    statements: Vec<Statement>,
}

impl Document {
    /// Terraform's merge: a newer document's version and id win; a statement with a sid
    /// replaces the one with that sid in place, every other statement is appended.
    fn merge(&mut self, newer: Document) {
        if !newer.version.is_empty() {
            self.version = newer.version;
        }
        if !newer.id.is_empty() {
            self.id = newer.id;
        }
        for st in newer.statements {
            let same = (!st.sid.is_empty())
                .then(|| self.statements.iter_mut().find(|o| o.sid == st.sid))
                .flatten();
            match same {
                Some(old) => *old = st,
                None => self.statements.push(st),
            }
        }
    }
}

fn invalid(message: String) -> ProviderError {
    ProviderError::new("InvalidPolicyDocument", message)
}

/// `{ type = "Service", identifiers = [...] }` blocks as IAM's `Principal` value: types merge
/// their identifiers, and a lone `*` of type `*` is the bare `"*"` (IAM refuses
/// `{"AWS": "*"}` in some trust policies, so the provider writes it so).
fn principals(blocks: Option<&Json>) -> Option<Json> {
    let blocks = blocks.and_then(Json::as_array)?;
    let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in blocks {
        let ty = b.get("type").and_then(Json::as_str).unwrap_or_default();
        by_type
            .entry(ty.to_string())
            .or_default()
            .extend(strings(b.get("identifiers")));
    }
    if by_type.is_empty() {
        return None;
    }
    if by_type.len() == 1 && by_type.get("*").is_some_and(|ids| ids == &["*"]) {
        return Some(Json::from("*"));
    }
    let map = by_type
        .into_iter()
        .filter_map(|(ty, ids)| {
            let v = serde_json::to_value(OneOrMany::of(ids)?).ok()?;
            Some((ty, v))
        })
        .collect();
    Some(Json::Object(map))
}

/// A `statement` block of the configuration, written as IAM's JSON statement so that it is
/// read like the statements of source and override documents.
fn from_block(b: &Json) -> Result<Statement, ProviderError> {
    let mut conditions: BTreeMap<String, serde_json::Map<String, Json>> = BTreeMap::new();
    for c in b
        .get("condition")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let test = c.get("test").and_then(Json::as_str).unwrap_or_default();
        let variable = c.get("variable").and_then(Json::as_str).unwrap_or_default();
        conditions.entry(test.to_string()).or_default().insert(
            variable.to_string(),
            c.get("values").cloned().unwrap_or(Json::Null),
        );
    }
    let effect = b.get("effect").and_then(Json::as_str).unwrap_or_default();
    let mut st = serde_json::Map::new();
    for (from, to) in [
        ("sid", "Sid"),
        ("actions", "Action"),
        ("not_actions", "NotAction"),
        ("resources", "Resource"),
        ("not_resources", "NotResource"),
    ] {
        if let Some(v) = b.get(from) {
            st.insert(to.into(), v.clone());
        }
    }
    st.insert(
        "Effect".into(),
        if effect.is_empty() { "Allow" } else { effect }.into(),
    );
    if let Some(p) = principals(b.get("principals")) {
        st.insert("Principal".into(), p);
    }
    if let Some(p) = principals(b.get("not_principals")) {
        st.insert("NotPrincipal".into(), p);
    }
    st.insert(
        "Condition".into(),
        Json::Object(
            conditions
                .into_iter()
                .map(|(k, v)| (k, Json::Object(v)))
                .collect(),
        ),
    );
    from_json(&Json::Object(st), "a statement block")
}

/// A value of a JSON document's statement that may be a string or a list of them.
fn json_strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), String::from))
            .collect(),
        Some(Json::Bool(_) | Json::Number(_)) => v.map(ToString::to_string).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A `Principal` as a document holds it, in the provider's form again.
fn json_principal(v: Option<&Json>) -> Option<Json> {
    match v? {
        Json::String(s) => Some(Json::String(s.clone())),
        Json::Object(map) => Some(Json::Object(
            map.iter()
                .filter_map(|(ty, ids)| {
                    let v = serde_json::to_value(OneOrMany::of(json_strings(Some(ids)))?).ok()?;
                    Some((ty.clone(), v))
                })
                .collect(),
        )),
        _ => None,
    }
}

/// A statement of a source or override document.
fn from_json(v: &Json, which: &str) -> Result<Statement, ProviderError> {
    let Json::Object(map) = v else {
        return Err(invalid(format!("a statement of {which} is not an object")));
    };
    let list = |key: &str| OneOrMany::of(json_strings(map.get(key)));
    let mut conditions: BTreeMap<String, BTreeMap<String, OneOrMany>> = BTreeMap::new();
    if let Some(Json::Object(tests)) = map.get("Condition") {
        for (test, vars) in tests {
            let Json::Object(vars) = vars else {
                return Err(invalid(format!(
                    "the condition {test:?} of {which} is not an object"
                )));
            };
            for (var, values) in vars {
                conditions
                    .entry(test.clone())
                    .or_default()
                    .insert(var.clone(), OneOrMany::ordered(json_strings(Some(values))));
            }
        }
    }
    let text = |key: &str| map.get(key).and_then(Json::as_str).unwrap_or_default();
    Ok(Statement {
        sid: text("Sid").to_string(),
        effect: text("Effect").to_string(),
        actions: list("Action"),
        not_actions: list("NotAction"),
        resources: list("Resource"),
        not_resources: list("NotResource"),
        principals: json_principal(map.get("Principal")),
        not_principals: json_principal(map.get("NotPrincipal")),
        conditions,
    })
}

/// A source or override document given as JSON text.
fn parse(text: &str, which: &str) -> Result<Document, ProviderError> {
    let v: Json = serde_json::from_str(text)
        .map_err(|e| invalid(format!("{which} is not a JSON policy document: {e}")))?;
    let statements = match v.get("Statement") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| from_json(i, which))
            .collect::<Result<_, _>>()?,
        Some(one) => vec![from_json(one, which)?],
    };
    let text = |key: &str| v.get(key).and_then(Json::as_str).unwrap_or_default();
    Ok(Document {
        version: text("Version").to_string(),
        id: text("Id").to_string(),
        statements,
    })
}

fn documents(args: &Attrs, key: &str) -> Result<Vec<Document>, ProviderError> {
    strings(args.get(key))
        .iter()
        .enumerate()
        .map(|(i, text)| parse(text, &format!("{key}[{i}]")))
        .collect()
}

/// The merged document: sources, then this document's statements, then the overrides.
fn build(args: &Attrs) -> Result<Document, ProviderError> {
    let mut doc = Document::default();
    for source in documents(args, "source_policy_documents")? {
        doc.merge(source);
    }
    let statements: Vec<Statement> = args
        .get("statement")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(from_block)
        .collect::<Result<_, _>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for st in statements.iter().filter(|st| !st.sid.is_empty()) {
        if !seen.insert(st.sid.as_str()) {
            return Err(invalid(format!(
                "found duplicate sid ({}): the statements of one policy document need unique sids",
                st.sid
            )));
        }
    }
    doc.merge(Document {
        version: s(args, "version").unwrap_or("2012-10-17").to_string(),
        id: s(args, "policy_id").unwrap_or_default().to_string(),
        statements,
    });
    for over in documents(args, "override_policy_documents")? {
        doc.merge(over);
    }
    Ok(doc)
}

pub(super) fn read(args: &Attrs) -> Result<Attrs, ProviderError> {
    let doc = build(args)?;
    let pretty = serde_json::to_string_pretty(&doc).map_err(|e| invalid(e.to_string()))?;
    let minified = serde_json::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
    let mut a = args.clone();
    a.insert(
        "id".into(),
        crate::lang::digest::sha256(minified.as_bytes()).into(),
    );
    a.insert("json".into(), pretty.into());
    a.insert("minified_json".into(), minified.into());
    Ok(a)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(args: Json) -> Attrs {
        let Json::Object(args) = args else {
            panic!("{args}")
        };
        read(&args).unwrap()
    }

    fn statement(extra: Json) -> Json {
        let mut st = json!({
            "sid": null, "effect": "Allow", "actions": null, "not_actions": null,
            "resources": null, "not_resources": null, "principals": null,
            "not_principals": null, "condition": null
        });
        if let (Json::Object(st), Json::Object(extra)) = (&mut st, extra) {
            st.extend(extra);
        }
        st
    }

    #[test]
    fn a_trust_policy_is_laid_out_as_terraform_writes_it() {
        let out = run(json!({
            "version": "2012-10-17",
            "statement": [statement(json!({
                "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}]
            }))]
        }));
        assert_eq!(
            out["json"],
            r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "sts:AssumeRole",
      "Principal": {
        "Service": "ec2.amazonaws.com"
      }
    }
  ]
}"#
        );
        assert_eq!(
            out["minified_json"],
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"ec2.amazonaws.com"}}]}"#
        );
    }

    #[test]
    fn several_values_are_a_list_and_conditions_group_by_test() {
        let out = run(json!({
            "statement": [statement(json!({
                "sid": "Spot",
                "effect": "Deny",
                "not_actions": ["ec2:RunInstances", "iam:CreateServiceLinkedRole", "ec2:RunInstances"],
                "resources": ["*"],
                "not_principals": [
                    {"type": "AWS", "identifiers": ["arn:aws:iam::1:root"]},
                    {"type": "AWS", "identifiers": ["arn:aws:iam::2:root"]}
                ],
                "condition": [
                    {"test": "StringEquals", "variable": "iam:AWSServiceName", "values": ["spot.amazonaws.com"]},
                    {"test": "StringEquals", "variable": "aws:RequestedRegion", "values": ["eu-west-1", "us-east-1"]}
                ]
            }))]
        }));
        let doc: Json = serde_json::from_str(out["json"].as_str().unwrap()).unwrap();
        assert_eq!(
            doc["Statement"][0],
            json!({
                "Sid": "Spot",
                "Effect": "Deny",
                "NotAction": ["iam:CreateServiceLinkedRole", "ec2:RunInstances"],
                "Resource": "*",
                "NotPrincipal": {"AWS": ["arn:aws:iam::2:root", "arn:aws:iam::1:root"]},
                "Condition": {"StringEquals": {
                    "iam:AWSServiceName": "spot.amazonaws.com",
                    "aws:RequestedRegion": ["eu-west-1", "us-east-1"]
                }}
            })
        );
        assert_eq!(doc["Version"], "2012-10-17");
    }

    #[test]
    fn a_lone_wildcard_principal_is_the_bare_star() {
        let out = run(json!({
            "statement": [statement(json!({
                "actions": ["s3:GetObject"],
                "principals": [{"type": "*", "identifiers": ["*"]}]
            }))]
        }));
        let doc: Json = serde_json::from_str(out["json"].as_str().unwrap()).unwrap();
        assert_eq!(doc["Statement"][0]["Principal"], "*");
    }

    #[test]
    fn sources_come_first_and_overrides_replace_statements_by_sid() {
        let source = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"Read","Effect":"Allow","Action":["s3:GetObject"],"Resource":"*"},
            {"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}"#;
        let over = r#"{"Statement":{"Sid":"Write","Effect":"Deny","Action":"s3:PutObject","Resource":"*"}}"#;
        let out = run(json!({
            "source_policy_documents": [source],
            "override_policy_documents": [over],
            "statement": [
                statement(json!({"sid": "Read", "actions": ["s3:ListBucket"], "resources": ["*"]})),
                statement(json!({"sid": "Write", "actions": ["s3:PutObject"], "resources": ["*"]})),
                statement(json!({"actions": ["logs:PutLogEvents"], "resources": ["*"]}))
            ]
        }));
        let doc: Json = serde_json::from_str(out["json"].as_str().unwrap()).unwrap();
        let summary: Vec<(Json, Json, Json)> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["Sid"].clone(), s["Effect"].clone(), s["Action"].clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (json!("Read"), json!("Allow"), json!("s3:ListBucket")),
                (Json::Null, json!("Allow"), json!("ec2:Describe*")),
                (json!("Write"), json!("Deny"), json!("s3:PutObject")),
                (Json::Null, json!("Allow"), json!("logs:PutLogEvents")),
            ]
        );
    }

    #[test]
    fn duplicate_sids_and_broken_source_documents_are_errors() {
        let Json::Object(dup) = json!({"statement": [
            statement(json!({"sid": "A", "actions": ["s3:*"]})),
            statement(json!({"sid": "A", "actions": ["ec2:*"]}))
        ]}) else {
            unreachable!()
        };
        let e = read(&dup).unwrap_err();
        assert!(e.message.contains("duplicate sid (A)"), "{}", e.message);
        let Json::Object(broken) = json!({"source_policy_documents": ["{nope"]}) else {
            unreachable!()
        };
        let e = read(&broken).unwrap_err();
        assert!(
            e.message.contains("source_policy_documents[0]"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_document_equals_what_iam_returns_semantically() {
        let out = run(json!({
            "statement": [statement(json!({
                "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}]
            }))]
        }));
        let from_iam = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}"#;
        assert!(crate::aws::policy::equivalent(
            out["json"].as_str().unwrap(),
            from_iam
        ));
    }
}
