//! `aws_iam_instance_profile`: the profile and the one role it carries.
//!
//! A create is two calls, `CreateInstanceProfile` then `AddRoleToInstanceProfile`. The first
//! carries skyform's tags, so a profile left without its role by an interrupted apply is found
//! by them and adopted; the plan then adds the role as an ordinary update. Neither is followed by
//! a read: `CreateInstanceProfile` answers with every attribute.

use super::iam_snapshot::IamSnapshot;
use super::resource::{absent_when_missing, iam_pairs, Named, Read, Recover, Resource};
use super::{
    after_made, aws_err, iam_tags, is_not_found, req, retry_propagation, s, sync_iam_tags, tags_of,
    tags_value, AwsProvider,
};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_iam_instance_profile",
    schema: include_str!("../../schemas/aws_iam_instance_profile.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, id)),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, name, _| Box::pin(delete(p, name)),
    recover: Recover::UniqueName(|p, name| Box::pin(named(p, name))),
    describe_tagged: None,
    evidence: None,
};

pub(super) fn read(snap: &IamSnapshot, name: &str) -> Option<Attrs> {
    let ip = snap.profiles.get(name)?;
    let mut a = Attrs::new();
    a.insert("name".into(), name.into());
    a.insert("id".into(), name.into());
    a.insert("arn".into(), ip.arn.clone().into());
    a.insert("unique_id".into(), ip.id.clone().into());
    a.insert("path".into(), ip.path.clone().into());
    if let Some(role) = ip.roles.first() {
        a.insert("role".into(), role.clone().into());
    }
    a.insert("tags".into(), ip.tags.clone());
    Some(a)
}

/// Makes the profile hold exactly `role` (or none).
async fn set_role(p: &AwsProvider, name: &str, role: Option<&str>) -> Result<(), ProviderError> {
    let current = p
        .iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(aws_err)?;
    let held: Vec<String> = current
        .instance_profile()
        .map(|ip| {
            ip.roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .collect()
        })
        .unwrap_or_default();
    for r in held.iter().filter(|r| Some(r.as_str()) != role) {
        p.iam
            .remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(r)
            .send()
            .await
            .map_err(aws_err)?;
    }
    if let Some(role) = role.filter(|r| !held.iter().any(|h| h == r)) {
        add_role(p, name, role).await?;
    }
    Ok(())
}

/// Puts `role` into the profile, which holds none.
async fn add_role(p: &AwsProvider, name: &str, role: &str) -> Result<(), ProviderError> {
    // "Invalid IAM Instance Profile name" and "role not found" right after creation are IAM
    // propagating, not errors.
    retry_propagation(
        || async {
            p.iam
                .add_role_to_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
                .await
                .map_err(aws_err)
        },
        is_not_found,
    )
    .await
    .map(|_| ())
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?;
    let out = p
        .iam
        .create_instance_profile()
        .instance_profile_name(name)
        .path(s(a, "path").unwrap_or("/"))
        .set_tags(Some(iam_tags(&tags_of(a))).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(aws_err)?;
    let ip = out.instance_profile().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreateInstanceProfile returned nothing")
            .after_partial_write()
    })?;
    let mut result = a.clone();
    result.insert("id".into(), name.into());
    result.insert("arn".into(), ip.arn().into());
    result.insert("unique_id".into(), ip.instance_profile_id().into());
    result.insert("tags".into(), tags_value(a));
    if let Some(role) = s(a, "role") {
        // A profile just made holds no role: no GetInstanceProfile to learn which.
        after_made(add_role(p, name, role)).await?;
    }
    Ok((name.to_string(), result))
}

pub(super) async fn update(
    p: &AwsProvider,
    name: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    set_role(p, name, s(a, "role")).await?;
    let mut result = prior.clone();
    match s(a, "role") {
        Some(r) => result.insert("role".into(), r.into()),
        None => result.remove("role"),
    };
    sync_iam_tags!(
        p,
        prior,
        a,
        &mut result,
        untag_instance_profile,
        tag_instance_profile,
        instance_profile_name(name)
    )
    .await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    set_role(p, name, None).await?;
    p.iam
        .delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}

/// The instance profile by this name, with its tags.
async fn named(p: &AwsProvider, name: &str) -> Result<Option<Named>, ProviderError> {
    absent_when_missing(
        p.iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| {
                o.instance_profile().map(|profile| Named {
                    id: name.to_string(),
                    tags: iam_pairs(profile.tags()),
                })
            }),
    )
}
