//! The `aws_caller_identity` data source and the identity behind the credentials.

use super::resource::DataSource;
use super::AwsProvider;
use crate::engine::provider::{Identity, ProviderError};
use crate::state::Attrs;

pub(super) const DATA: DataSource = DataSource {
    name: "aws_caller_identity",
    schema: include_str!("../../schemas/data/aws_caller_identity.json"),
    read: |p, _| Box::pin(read(p)),
};

/// What STS says of the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) account: String,
    pub(crate) arn: String,
    pub(crate) user_id: String,
}

pub(crate) async fn caller(p: &AwsProvider) -> Result<Caller, ProviderError> {
    let out = p
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(super::aws_err)?;
    Ok(Caller {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    })
}

/// The engine's view: the ARN is the principal, the account its tenant.
pub(crate) async fn identity(p: &AwsProvider) -> Result<Identity, ProviderError> {
    let c = caller(p).await?;
    Ok(Identity {
        tenant: c.account,
        principal: c.arn,
    })
}

pub(crate) async fn read(p: &AwsProvider) -> Result<Attrs, ProviderError> {
    let id = caller(p).await?;
    let mut a = Attrs::new();
    a.insert("account_id".into(), id.account.clone().into());
    a.insert("id".into(), id.account.into());
    a.insert("arn".into(), id.arn.into());
    a.insert("user_id".into(), id.user_id.into());
    Ok(a)
}
