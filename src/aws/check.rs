//! What `skyform check` asks AWS beyond the provider: the loaded credentials (never their
//! secret) and a policy simulation of the actions the next apply needs.

use std::time::SystemTime;

use aws_config::retry::RetryConfig;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_iam::error::DisplayErrorContext;

use super::{aws_err, AwsProvider};
use crate::aws::permissions::Grant;
use crate::engine::provider::ProviderError;

/// The non-secret facts about the credentials in use.
#[derive(Debug, Clone)]
pub(crate) struct CredentialInfo {
    pub(crate) access_key_id: String,
    pub(crate) session_token: bool,
    pub(crate) expiry: Option<SystemTime>,
}

/// The outcome of simulating the needed actions against the caller's policies.
#[derive(Debug, Clone)]
pub(crate) enum Simulation {
    /// Every (action, resource) that the policies do not allow.
    Denied(Vec<Grant>),
    /// The simulation itself could not run; the reason, as AWS gave it.
    Unavailable(String),
}

/// The IAM principal whose policies apply to a caller ARN: an assumed-role session is
/// judged by its role's policies.
pub(super) fn principal_of(caller_arn: &str) -> Option<String> {
    let rest = caller_arn.strip_prefix("arn:aws:sts::")?;
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let role = rest.split('/').next()?;
    Some(format!("arn:aws:iam::{account}:role/{role}"))
}

impl AwsProvider {
    /// Runs the credential chain once; the error text says why it found nothing.
    pub(crate) async fn load_credentials(&self) -> Result<CredentialInfo, String> {
        let Some(provider) = self.conf.credentials_provider() else {
            return Err("no credentials provider is configured".into());
        };
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        Ok(CredentialInfo {
            access_key_id: creds.access_key_id().to_string(),
            session_token: creds.session_token().is_some(),
            expiry: creds.expiry(),
        })
    }

    /// Asks IAM which of `grants` the principal's policies deny. One call per resource, and
    /// no retries: a simulation that fails says so at once instead of after the backoff.
    pub(crate) async fn simulate(&self, caller_arn: &str, grants: &[Grant]) -> Simulation {
        let principal = principal_of(caller_arn).unwrap_or_else(|| caller_arn.to_string());
        let mut by_resource: std::collections::BTreeMap<&str, Vec<String>> =
            std::collections::BTreeMap::new();
        for g in grants {
            by_resource
                .entry(g.resource.as_str())
                .or_default()
                .push(g.action.clone());
        }
        let mut denied = Vec::new();
        for (resource, actions) in by_resource {
            let mut marker: Option<String> = None;
            loop {
                let result = self
                    .iam
                    .simulate_principal_policy()
                    .policy_source_arn(&principal)
                    .set_action_names(Some(actions.clone()))
                    .resource_arns(resource)
                    .set_marker(marker.clone())
                    .customize()
                    .config_override(
                        aws_sdk_iam::config::Config::builder()
                            .retry_config(RetryConfig::disabled()),
                    )
                    .send()
                    .await;
                let out = match result {
                    Ok(out) => out,
                    Err(e) => {
                        let e: ProviderError = aws_err(e);
                        return Simulation::Unavailable(e.to_string());
                    }
                };
                for r in out.evaluation_results() {
                    if r.eval_decision().as_str() != "allowed" {
                        denied.push(Grant {
                            action: r.eval_action_name().to_string(),
                            resource: r.eval_resource_name().unwrap_or(resource).to_string(),
                            condition: None,
                        });
                    }
                }
                match out.marker() {
                    Some(m) if out.is_truncated() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
        }
        Simulation::Denied(denied)
    }
}

#[cfg(test)]
mod tests {
    use super::principal_of;

    #[test]
    fn an_assumed_role_session_is_judged_by_its_role() {
        assert_eq!(
            principal_of("arn:aws:sts::111111111111:assumed-role/admin/session-1").as_deref(),
            Some("arn:aws:iam::111111111111:role/admin")
        );
        assert_eq!(principal_of("arn:aws:iam::1:user/u"), None);
    }
}
