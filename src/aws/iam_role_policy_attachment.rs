//! `aws_iam_role_policy_attachment`, with id `ROLE/POLICY_ARN` (role names hold no `/`).

use super::iam_snapshot::IamSnapshot;
use super::{aws_err, is_not_found, req, retry_propagation, AwsProvider};
use crate::provider::ProviderError;
use crate::state::Attrs;

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/')
        .ok_or_else(|| ProviderError::new("InvalidId", format!("{id:?} is not ROLE/POLICY_ARN")))
}

fn attrs(role: &str, arn: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("role".into(), role.into());
    a.insert("policy_arn".into(), arn.into());
    a.insert("id".into(), format!("{role}/{arn}").into());
    a
}

pub fn read(snap: &IamSnapshot, id: &str) -> Option<Attrs> {
    let (role, arn) = split(id).ok()?;
    snap.roles
        .get(role)?
        .attached
        .contains(arn)
        .then(|| attrs(role, arn))
}

pub async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let (role, arn) = (req(a, "role")?, req(a, "policy_arn")?);
    // A role or policy created a moment ago may not be visible to IAM yet.
    retry_propagation(
        || async {
            p.iam
                .attach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws_err)
        },
        is_not_found,
    )
    .await?;
    Ok((format!("{role}/{arn}"), attrs(role, arn)))
}

pub async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    let (role, arn) = split(id)?;
    p.iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}
