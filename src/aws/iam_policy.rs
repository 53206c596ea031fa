//! `aws_iam_policy`. A new document becomes a new default version; when the policy already
//! has five versions (AWS's limit), the oldest non-default one is deleted first. Also the data
//! source of that name, which finds a managed policy (local or AWS's) by ARN or name.

use super::iam_snapshot::IamSnapshot;
use super::resource::{iam_pairs, DataSource, Named, Read, Recover, Resource};
use super::{aws_err, iam_tags, req, s, sync_iam_tags, tags_of, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

/// A policy's id is its ARN; its name is unique in the account, so it is found by that.
pub(super) const TYPE: Resource = Resource {
    name: "aws_iam_policy",
    schema: include_str!("../../schemas/aws_iam_policy.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, id)),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, arn, _| Box::pin(delete(p, arn)),
    recover: Recover::UniqueName(|p, name| Box::pin(named(p, name))),
    describe_tagged: None,
    evidence: None,
};

pub(super) const DATA: DataSource = DataSource {
    name: "aws_iam_policy",
    schema: include_str!("../../schemas/data/aws_iam_policy.json"),
    read: |p, args| Box::pin(find(p, args)),
};

pub(super) fn read(snap: &IamSnapshot, arn: &str) -> Option<Attrs> {
    let p = snap.policies.get(arn)?;
    let mut a = Attrs::new();
    a.insert("arn".into(), arn.into());
    a.insert("id".into(), arn.into());
    a.insert("name".into(), p.name.clone().into());
    a.insert("path".into(), p.path.clone().into());
    a.insert("policy_id".into(), p.policy_id.clone().into());
    a.insert("policy".into(), p.document.clone().into());
    a.insert("tags".into(), p.tags.clone());
    if let Some(d) = &p.description {
        a.insert("description".into(), d.clone().into());
    }
    Some(a)
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?;
    let doc = req(a, "policy")?;
    let out = p
        .iam
        .create_policy()
        .policy_name(name)
        .path(s(a, "path").unwrap_or("/"))
        .policy_document(doc)
        .set_description(s(a, "description").map(String::from))
        .set_tags(Some(iam_tags(&tags_of(a))).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(aws_err)?;
    let pol = out.policy().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreatePolicy returned no policy").after_partial_write()
    })?;
    let arn = pol.arn().unwrap_or_default().to_string();
    let mut result = a.clone();
    result.insert("arn".into(), arn.clone().into());
    result.insert("id".into(), arn.clone().into());
    result.insert(
        "policy_id".into(),
        pol.policy_id().unwrap_or_default().into(),
    );
    Ok((arn, result))
}

pub(super) async fn update(
    p: &AwsProvider,
    arn: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut result = prior.clone();
    if let Some(doc) = s(a, "policy") {
        if !s(prior, "policy").is_some_and(|old| crate::aws::policy::equivalent(old, doc)) {
            let versions = p
                .iam
                .list_policy_versions()
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws_err)?;
            let mut old: Vec<_> = versions
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .collect();
            if versions.versions().len() >= 5 {
                old.sort_by_key(|v| v.create_date().map(|d| (d.secs(), d.subsec_nanos())));
                if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
                    p.iam
                        .delete_policy_version()
                        .policy_arn(arn)
                        .version_id(oldest)
                        .send()
                        .await
                        .map_err(aws_err)?;
                }
            }
            p.iam
                .create_policy_version()
                .policy_arn(arn)
                .policy_document(doc)
                .set_as_default(true)
                .send()
                .await
                .map_err(aws_err)?;
            result.insert("policy".into(), doc.into());
        }
    }
    sync_iam_tags!(
        p,
        prior,
        a,
        &mut result,
        untag_policy,
        tag_policy,
        policy_arn(arn)
    )
    .await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, arn: &str) -> Result<(), ProviderError> {
    // AWS refuses to delete a policy that still has non-default versions.
    let versions = p
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(aws_err)?;
    for v in versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
    {
        if let Some(id) = v.version_id() {
            p.iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await
                .map_err(aws_err)?;
        }
    }
    p.iam
        .delete_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}

/// Every managed policy in `scope` (local, AWS's, or both when `None`) under `path_prefix`,
/// page by page: IAM has no lookup by name.
async fn list(
    p: &AwsProvider,
    scope: Option<aws_sdk_iam::types::PolicyScopeType>,
    path_prefix: Option<&str>,
) -> Result<Vec<aws_sdk_iam::types::Policy>, ProviderError> {
    p.iam
        .list_policies()
        .set_scope(scope)
        .set_path_prefix(path_prefix.map(String::from))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)
}

/// The local policy by this name, with its ARN and tags. There is no `GetPolicy` by name: the
/// account's local policies are listed.
async fn named(p: &AwsProvider, name: &str) -> Result<Option<Named>, ProviderError> {
    let policies = list(p, Some(aws_sdk_iam::types::PolicyScopeType::Local), None).await?;
    let Some(arn) = policies
        .iter()
        .find(|pol| pol.policy_name() == Some(name))
        .and_then(|pol| pol.arn().map(String::from))
    else {
        return Ok(None);
    };
    let tags = p
        .iam
        .list_policy_tags()
        .policy_arn(&arn)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(Some(Named {
        id: arn,
        tags: iam_pairs(tags.tags()),
    }))
}

/// The ARN of the one policy, local or AWS's, with this name under `path_prefix`. IAM has no
/// lookup by name, so the policies are listed, as Terraform's provider does.
async fn arn_by_name(
    p: &AwsProvider,
    name: &str,
    path_prefix: Option<&str>,
) -> Result<String, ProviderError> {
    let policies = list(p, None, path_prefix).await?;
    let arns: Vec<&str> = policies
        .iter()
        .filter(|pol| pol.policy_name() == Some(name))
        .filter_map(|pol| pol.arn())
        .collect();
    let under = path_prefix.map_or(String::new(), |pre| format!(" under path {pre:?}"));
    match arns.as_slice() {
        [arn] => Ok((*arn).to_string()),
        [] => Err(ProviderError::new(
            "NoSuchEntity",
            format!("no IAM policy is named {name:?}{under}"),
        )),
        several => Err(ProviderError::new(
            "TooManyResults",
            format!(
                "{} IAM policies are named {name:?}{under} ({}); give arn or path_prefix to choose one",
                several.len(),
                several.join(", ")
            ),
        )),
    }
}

/// `data "aws_iam_policy"`: the policy by `arn`, or by `name` (and `path_prefix`), with the
/// document of its default version.
async fn find(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let arn = match (s(args, "arn"), s(args, "name")) {
        (Some(arn), _) => arn.to_string(),
        (None, Some(name)) => arn_by_name(p, name, s(args, "path_prefix")).await?,
        (None, None) => {
            return Err(ProviderError::new(
                "NoFilter",
                "data \"aws_iam_policy\" needs arn or name to choose a policy",
            ))
        }
    };
    let got = p
        .iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .map_err(aws_err)?;
    let Some(policy) = got.policy() else {
        return Err(ProviderError::new(
            "NoSuchEntity",
            format!("IAM returned no policy for {arn}"),
        ));
    };
    let version = p
        .iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(policy.default_version_id().unwrap_or("v1"))
        .send()
        .await
        .map_err(aws_err)?;
    let raw = version
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or_default();
    // AWS URL-encodes the document; the attribute holds it as JSON, as Terraform's does.
    let document =
        super::policy::parse_document(raw).map_or_else(|| raw.to_string(), |d| d.to_string());
    let mut a = args.clone();
    a.insert("arn".into(), arn.clone().into());
    a.insert("id".into(), arn.into());
    a.insert(
        "name".into(),
        policy.policy_name().unwrap_or_default().into(),
    );
    a.insert("path".into(), policy.path().unwrap_or_default().into());
    a.insert(
        "description".into(),
        policy.description().unwrap_or_default().into(),
    );
    a.insert(
        "policy_id".into(),
        policy.policy_id().unwrap_or_default().into(),
    );
    a.insert(
        "attachment_count".into(),
        policy.attachment_count().unwrap_or(0).into(),
    );
    a.insert("policy".into(), document.into());
    a.insert("tags".into(), super::tags_json(policy.tags()));
    Ok(a)
}
