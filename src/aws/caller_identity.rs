//! The `aws_caller_identity` data source and the identity behind the credentials.

use super::resource::DataSource;
use super::AwsProvider;
use crate::engine::provider::{Identity, ProviderError};
use crate::state::Attrs;

pub(super) const DATA: DataSource = DataSource {
    name: "aws_caller_identity",
    read: |p, _| Box::pin(read(p)),
};

pub async fn identity(p: &AwsProvider) -> Result<Identity, ProviderError> {
    let out = p
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(super::aws_err)?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    })
}

pub async fn read(p: &AwsProvider) -> Result<Attrs, ProviderError> {
    let id = identity(p).await?;
    let mut a = Attrs::new();
    a.insert("account_id".into(), id.account.clone().into());
    a.insert("id".into(), id.account.into());
    a.insert("arn".into(), id.arn.into());
    a.insert("user_id".into(), id.user_id.into());
    Ok(a)
}
