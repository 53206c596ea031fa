//! `aws_iam_access_key`. AWS shows the secret once, at creation; refresh carries it over from
//! state, since no API returns it again.

use aws_sdk_iam::types::StatusType;

use super::iam_snapshot::IamSnapshot;
use super::{aws_err, is_not_found, req, retry_propagation, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub fn read(snap: &IamSnapshot, id: &str, prior: &Attrs) -> Option<Attrs> {
    let k = snap.keys.get(id)?;
    let mut a = Attrs::new();
    a.insert("id".into(), id.into());
    a.insert("user".into(), k.user.clone().into());
    a.insert("status".into(), k.status.clone().into());
    if let Some(secret) = prior.get("secret") {
        a.insert("secret".into(), secret.clone());
    }
    Some(a)
}

pub async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let user = req(a, "user")?;
    let out = retry_propagation(
        || async {
            p.iam
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .map_err(aws_err)
        },
        is_not_found,
    )
    .await?;
    let key = out
        .access_key()
        .ok_or_else(|| ProviderError::new("EmptyResponse", "CreateAccessKey returned no key"))?;
    let id = key.access_key_id().to_string();
    if s(a, "status") == Some("Inactive") {
        p.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(&id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(aws_err)?;
    }
    let mut result = a.clone();
    result.insert("id".into(), id.clone().into());
    result.insert("secret".into(), key.secret_access_key().into());
    result.insert("status".into(), s(a, "status").unwrap_or("Active").into());
    Ok((id, result))
}

pub async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let user = req(prior, "user")?;
    let status = s(a, "status").unwrap_or("Active");
    p.iam
        .update_access_key()
        .user_name(user)
        .access_key_id(id)
        .status(StatusType::from(status))
        .send()
        .await
        .map_err(aws_err)?;
    let mut result = prior.clone();
    result.insert("status".into(), status.into());
    Ok(result)
}

pub async fn delete(p: &AwsProvider, id: &str, prior: &Attrs) -> Result<(), ProviderError> {
    let user = req(prior, "user")?;
    p.iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(id)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}
