//! `aws_iam_user`.

use super::iam_snapshot::IamSnapshot;
use super::resource::{absent_when_missing, iam_pairs, Named, Read, Recover, Resource};
use super::{aws_err, iam_tags, req, s, sync_iam_tags, tags_of, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_iam_user",
    schema: include_str!("../../schemas/aws_iam_user.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, id)),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, name, _| Box::pin(delete(p, name)),
    recover: Recover::UniqueName(|p, name| Box::pin(named(p, name))),
    describe_tagged: None,
    evidence: None,
};

pub(super) fn read(snap: &IamSnapshot, name: &str) -> Option<Attrs> {
    let u = snap.users.get(name)?;
    let mut a = Attrs::new();
    a.insert("name".into(), name.into());
    a.insert("id".into(), name.into());
    a.insert("arn".into(), u.arn.clone().into());
    a.insert("unique_id".into(), u.user_id.clone().into());
    a.insert("path".into(), u.path.clone().into());
    a.insert("tags".into(), u.tags.clone());
    Some(a)
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?;
    let out = p
        .iam
        .create_user()
        .user_name(name)
        .path(s(a, "path").unwrap_or("/"))
        .set_tags(Some(iam_tags(&tags_of(a))).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(aws_err)?;
    let user = out.user().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreateUser returned no user").after_partial_write()
    })?;
    let mut result = a.clone();
    result.insert("id".into(), name.into());
    result.insert("arn".into(), user.arn().into());
    result.insert("unique_id".into(), user.user_id().into());
    Ok((name.to_string(), result))
}

pub(super) async fn update(
    p: &AwsProvider,
    name: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut result = prior.clone();
    if let Some(path) = s(a, "path").filter(|path| Some(*path) != s(prior, "path")) {
        p.iam
            .update_user()
            .user_name(name)
            .new_path(path)
            .send()
            .await
            .map_err(aws_err)?;
        result.insert("path".into(), path.into());
    }
    sync_iam_tags!(
        p,
        prior,
        a,
        &mut result,
        untag_user,
        tag_user,
        user_name(name)
    )
    .await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    p.iam
        .delete_user()
        .user_name(name)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}

/// The user by this name, with its tags.
async fn named(p: &AwsProvider, name: &str) -> Result<Option<Named>, ProviderError> {
    absent_when_missing(
        p.iam
            .get_user()
            .user_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| {
                o.user().map(|user| Named {
                    id: name.to_string(),
                    tags: iam_pairs(user.tags()),
                })
            }),
    )
}
