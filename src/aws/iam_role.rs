//! `aws_iam_role`: one `CreateRole` per create (its answer holds every attribute); the read is
//! the IAM snapshot's.

use serde_json::{json, Value as Json};

use super::iam_snapshot::IamSnapshot;
use super::resource::{absent_when_missing, iam_pairs, Named, Read, Recover, Resource};
use super::{aws_err, iam_tags, req, s, sync_iam_tags, tags_of, tags_value, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_iam_role",
    schema: include_str!("../../schemas/aws_iam_role.json"),
    read: Read::Snapshot(|snap, id, _| read(snap, id)),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, name, _| Box::pin(delete(p, name)),
    recover: Recover::UniqueName(|p, name| Box::pin(named(p, name))),
    describe_tagged: None,
    evidence: None,
};

/// What AWS says of a role, from whichever call said it.
struct Facts<'a> {
    name: &'a str,
    arn: &'a str,
    id: &'a str,
    path: &'a str,
    description: Option<&'a str>,
    trust: &'a str,
    max: Option<i32>,
    tags: Json,
}

fn attrs(f: Facts<'_>) -> Attrs {
    let Facts {
        name,
        arn,
        id,
        path,
        description,
        trust,
        max,
        tags,
    } = f;
    let mut a = Attrs::new();
    a.insert("name".into(), name.into());
    a.insert("id".into(), name.into());
    a.insert("arn".into(), arn.into());
    a.insert("unique_id".into(), id.into());
    a.insert("path".into(), path.into());
    a.insert("assume_role_policy".into(), trust.into());
    a.insert("max_session_duration".into(), json!(max.unwrap_or(3600)));
    a.insert("tags".into(), tags);
    if let Some(d) = description {
        a.insert("description".into(), d.into());
    }
    a
}

pub(super) fn read(snap: &IamSnapshot, name: &str) -> Option<Attrs> {
    let r = snap.roles.get(name)?;
    Some(attrs(Facts {
        name,
        arn: &r.arn,
        id: &r.role_id,
        path: &r.path,
        description: r.description.as_deref(),
        trust: &r.trust,
        max: r.max_session_duration,
        tags: r.tags.clone(),
    }))
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?;
    let trust = req(a, "assume_role_policy")?;
    let max = max_session_duration(a);
    let out = p
        .iam
        .create_role()
        .role_name(name)
        .path(s(a, "path").unwrap_or("/"))
        .assume_role_policy_document(trust)
        .set_description(s(a, "description").map(String::from))
        .set_max_session_duration(max)
        .set_tags(Some(iam_tags(&tags_of(a))).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(aws_err)?;
    let role = out.role().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreateRole returned no role").after_partial_write()
    })?;
    // CreateRole answers with the whole role, so there is no read-back. IAM is eventually
    // consistent, but what uses the role next (an instance profile, a policy attachment, an
    // inline policy, an instance) retries its own "not found" (`retry_propagation`), which a
    // GetRole here could not spare it: a role visible to one read may not be to the next.
    let tags = tags_value(a);
    Ok((
        name.to_string(),
        attrs(Facts {
            name,
            arn: role.arn(),
            id: role.role_id(),
            path: role.path(),
            description: s(a, "description"),
            trust,
            max,
            tags,
        }),
    ))
}

pub(super) async fn update(
    p: &AwsProvider,
    name: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut result = prior.clone();
    if let Some(trust) = s(a, "assume_role_policy") {
        if !s(prior, "assume_role_policy")
            .is_some_and(|old| crate::aws::policy::equivalent(old, trust))
        {
            p.iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(trust)
                .send()
                .await
                .map_err(aws_err)?;
            result.insert("assume_role_policy".into(), trust.into());
        }
    }
    let max = max_session_duration(a);
    if s(a, "description") != s(prior, "description")
        || a.get("max_session_duration") != prior.get("max_session_duration")
    {
        p.iam
            .update_role()
            .role_name(name)
            .description(s(a, "description").unwrap_or_default())
            .set_max_session_duration(max)
            .send()
            .await
            .map_err(aws_err)?;
        match s(a, "description") {
            Some(d) => result.insert("description".into(), d.into()),
            None => result.remove("description"),
        };
        result.insert("max_session_duration".into(), json!(max.unwrap_or(3600)));
    }
    sync_iam_tags!(
        p,
        prior,
        a,
        &mut result,
        untag_role,
        tag_role,
        role_name(name)
    )
    .await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    // A role cannot be deleted while an instance profile holds it; Terraform's provider
    // removes it from its profiles first, and so does skyform.
    let profiles = p
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws_err)?;
    for ip in profiles.instance_profiles() {
        p.iam
            .remove_role_from_instance_profile()
            .instance_profile_name(ip.instance_profile_name())
            .role_name(name)
            .send()
            .await
            .map_err(aws_err)?;
    }
    p.iam
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}

/// The role by this name, with its tags.
async fn named(p: &AwsProvider, name: &str) -> Result<Option<Named>, ProviderError> {
    absent_when_missing(
        p.iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| {
                o.role().map(|role| Named {
                    id: name.to_string(),
                    tags: iam_pairs(role.tags()),
                })
            }),
    )
}

/// `max_session_duration` as the SDK takes it. Out of `i32`'s range it saturates, so AWS
/// refuses it by name instead of receiving a wrapped, plausible-looking number.
fn max_session_duration(a: &Attrs) -> Option<i32> {
    a.get("max_session_duration")
        .and_then(Json::as_i64)
        .map(|n| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_session_duration_beyond_i32_saturates_instead_of_wrapping() {
        let with = |n: i64| {
            let mut a = Attrs::new();
            a.insert("max_session_duration".into(), json!(n));
            max_session_duration(&a)
        };
        assert_eq!(with(7200), Some(7200));
        // 2^32 + 3600 would wrap to a valid-looking 3600.
        assert_eq!(with((1_i64 << 32) + 3600), Some(i32::MAX));
        assert_eq!(with(-(1_i64 << 40)), Some(i32::MIN));
        assert_eq!(max_session_duration(&Attrs::new()), None);
    }
}
