//! `aws_iam_role_policy` and `aws_iam_user_policy`: an inline policy embedded in a role or a
//! user, one implementation with the principal swapped (as for the managed attachments). Ids are
//! `PRINCIPAL:NAME`, as Terraform's; IAM names hold no `:`. Refresh reads them from the IAM
//! snapshot, whose `GetAccountAuthorizationDetails` already lists every inline policy.

use super::iam_policy_attachment::Principal;
use super::iam_snapshot::IamSnapshot;
use super::resource::{find_by_pair, Read, Recover, Resource};
use super::{aws_err, is_not_found, req, retry_propagation, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const ROLE_TYPE: Resource = Resource {
    name: "aws_iam_role_policy",
    schema: include_str!("../../schemas/aws_iam_role_policy.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, Principal::Role, id)),
    create: |p, a, _| Box::pin(create(p, Principal::Role, a)),
    update: Some(|p, _, _, a, _| Box::pin(update(p, Principal::Role, a))),
    delete: |p, id, _| Box::pin(delete(p, Principal::Role, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, Principal::Role, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

pub(super) const USER_TYPE: Resource = Resource {
    name: "aws_iam_user_policy",
    schema: include_str!("../../schemas/aws_iam_user_policy.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, Principal::User, id)),
    create: |p, a, _| Box::pin(create(p, Principal::User, a)),
    update: Some(|p, _, _, a, _| Box::pin(update(p, Principal::User, a))),
    delete: |p, id, _| Box::pin(delete(p, Principal::User, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, Principal::User, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once(':')
        .ok_or_else(|| ProviderError::new("InvalidId", format!("{id:?} is not PRINCIPAL:NAME")))
}

fn attrs(who: Principal, principal: &str, name: &str, document: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert(who.key().into(), principal.into());
    a.insert("name".into(), name.into());
    a.insert("policy".into(), document.into());
    a.insert("id".into(), format!("{principal}:{name}").into());
    a
}

pub(super) fn read(snap: &IamSnapshot, who: Principal, id: &str) -> Option<Attrs> {
    let (principal, name) = split(id).ok()?;
    let inline = match who {
        Principal::Role => &snap.roles.get(principal)?.inline,
        Principal::User => &snap.users.get(principal)?.inline,
    };
    inline.get(name).map(|doc| attrs(who, principal, name, doc))
}

/// `PutRolePolicy` / `PutUserPolicy`: it creates or replaces the policy of that name, so create
/// and update are one call, and repeating it after a lost answer changes nothing.
async fn put(p: &AwsProvider, who: Principal, a: &Attrs) -> Result<Attrs, ProviderError> {
    let (principal, name, doc) = (req(a, who.key())?, req(a, "name")?, req(a, "policy")?);
    // A role or user created a moment ago may not be visible to IAM yet.
    retry_propagation(
        || async {
            match who {
                Principal::Role => p
                    .iam
                    .put_role_policy()
                    .role_name(principal)
                    .policy_name(name)
                    .policy_document(doc)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err),
                Principal::User => p
                    .iam
                    .put_user_policy()
                    .user_name(principal)
                    .policy_name(name)
                    .policy_document(doc)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err),
            }
        },
        is_not_found,
    )
    .await?;
    Ok(attrs(who, principal, name, doc))
}

async fn create(
    p: &AwsProvider,
    who: Principal,
    a: &Attrs,
) -> Result<(String, Attrs), ProviderError> {
    let result = put(p, who, a).await?;
    let id = s(&result, "id").unwrap_or_default().to_string();
    Ok((id, result))
}

/// Only `policy` can change in place (`name` and the principal are `force_new`), and the engine
/// calls this only when it differs semantically from what IAM holds.
async fn update(p: &AwsProvider, who: Principal, a: &Attrs) -> Result<Attrs, ProviderError> {
    put(p, who, a).await
}

async fn delete(p: &AwsProvider, who: Principal, id: &str) -> Result<(), ProviderError> {
    let (principal, name) = split(id)?;
    match who {
        Principal::Role => p
            .iam
            .delete_role_policy()
            .role_name(principal)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
        Principal::User => p
            .iam
            .delete_user_policy()
            .user_name(principal)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
    }
}

/// An inline policy carries no tags: its principal and name are the object. A policy found by
/// them is what the lost put made (or what it would have replaced, which the next plan
/// compares with the configuration like any other drift).
async fn find(
    p: &AwsProvider,
    who: Principal,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    find_by_pair(p, lost, ctx, (who.key(), ':', "name")).await
}
