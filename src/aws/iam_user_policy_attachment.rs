//! `aws_iam_user_policy_attachment`, with id `USER/POLICY_ARN` (user names hold no `/`).

use super::iam_snapshot::IamSnapshot;
use super::{aws_err, is_not_found, req, retry_propagation, AwsProvider};
use crate::provider::ProviderError;
use crate::state::Attrs;

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/')
        .ok_or_else(|| ProviderError::new("InvalidId", format!("{id:?} is not USER/POLICY_ARN")))
}

fn attrs(user: &str, arn: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("user".into(), user.into());
    a.insert("policy_arn".into(), arn.into());
    a.insert("id".into(), format!("{user}/{arn}").into());
    a
}

pub fn read(snap: &IamSnapshot, id: &str) -> Option<Attrs> {
    let (user, arn) = split(id).ok()?;
    snap.users
        .get(user)?
        .attached
        .contains(arn)
        .then(|| attrs(user, arn))
}

pub async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let (user, arn) = (req(a, "user")?, req(a, "policy_arn")?);
    // A user or policy created a moment ago may not be visible to IAM yet.
    retry_propagation(
        || async {
            p.iam
                .attach_user_policy()
                .user_name(user)
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws_err)
        },
        is_not_found,
    )
    .await?;
    Ok((format!("{user}/{arn}"), attrs(user, arn)))
}

pub async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    let (user, arn) = split(id)?;
    p.iam
        .detach_user_policy()
        .user_name(user)
        .policy_arn(arn)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}
