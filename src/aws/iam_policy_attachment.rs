//! `aws_iam_role_policy_attachment` and `aws_iam_user_policy_attachment`: one AWS concept (a
//! managed policy attached to a principal) with the principal swapped, so one implementation.
//! Ids are `NAME/POLICY_ARN`; role and user names hold no `/`.

use super::iam_snapshot::IamSnapshot;
use super::resource::{find_by_pair, Read, Recover, Resource};
use super::{aws_err, is_not_found, req, retry_propagation, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const ROLE_TYPE: Resource = Resource {
    name: "aws_iam_role_policy_attachment",
    schema: include_str!("../../schemas/aws_iam_role_policy_attachment.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, Principal::Role, id)),
    create: |p, a, _| Box::pin(create(p, Principal::Role, a)),
    update: None,
    delete: |p, id, _| Box::pin(delete(p, Principal::Role, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, Principal::Role, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

pub(super) const USER_TYPE: Resource = Resource {
    name: "aws_iam_user_policy_attachment",
    schema: include_str!("../../schemas/aws_iam_user_policy_attachment.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, Principal::User, id)),
    create: |p, a, _| Box::pin(create(p, Principal::User, a)),
    update: None,
    delete: |p, id, _| Box::pin(delete(p, Principal::User, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, Principal::User, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

/// Whom the policy is attached to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Principal {
    Role,
    User,
}

impl Principal {
    /// The attribute that names the principal.
    pub(super) fn key(self) -> &'static str {
        match self {
            Principal::Role => "role",
            Principal::User => "user",
        }
    }
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/')
        .ok_or_else(|| ProviderError::new("InvalidId", format!("{id:?} is not NAME/POLICY_ARN")))
}

fn attrs(who: Principal, name: &str, arn: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert(who.key().into(), name.into());
    a.insert("policy_arn".into(), arn.into());
    a.insert("id".into(), format!("{name}/{arn}").into());
    a
}

pub(super) fn read(snap: &IamSnapshot, who: Principal, id: &str) -> Option<Attrs> {
    let (name, arn) = split(id).ok()?;
    let attached = match who {
        Principal::Role => &snap.roles.get(name)?.attached,
        Principal::User => &snap.users.get(name)?.attached,
    };
    attached.contains(arn).then(|| attrs(who, name, arn))
}

pub(super) async fn create(
    p: &AwsProvider,
    who: Principal,
    a: &Attrs,
) -> Result<(String, Attrs), ProviderError> {
    let (name, arn) = (req(a, who.key())?, req(a, "policy_arn")?);
    // A principal or policy created a moment ago may not be visible to IAM yet.
    retry_propagation(
        || async {
            match who {
                Principal::Role => p
                    .iam
                    .attach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err),
                Principal::User => p
                    .iam
                    .attach_user_policy()
                    .user_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err),
            }
        },
        is_not_found,
    )
    .await?;
    Ok((format!("{name}/{arn}"), attrs(who, name, arn)))
}

pub(super) async fn delete(p: &AwsProvider, who: Principal, id: &str) -> Result<(), ProviderError> {
    let (name, arn) = split(id)?;
    match who {
        Principal::Role => p
            .iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
        Principal::User => p
            .iam
            .detach_user_policy()
            .user_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
    }
}

/// Attachments carry no tags and no id of their own: the pair is the object, and attaching it
/// again would change nothing, so an existing pair is what the create made.
async fn find(
    p: &AwsProvider,
    who: Principal,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    find_by_pair(p, lost, ctx, (who.key(), '/', "policy_arn")).await
}
