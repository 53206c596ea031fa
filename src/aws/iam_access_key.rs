//! `aws_iam_access_key`. AWS shows the secret once, at creation; refresh carries it over from
//! state, since no API returns it again.

use aws_sdk_iam::types::StatusType;

use super::iam_snapshot::IamSnapshot;
use super::resource::{Read, Recover, Resource};
use super::{aws_err, is_not_found, req, retry_propagation, s, AwsProvider};
use crate::engine::provider::{Found, Lost, ProviderError};
use crate::state::Attrs;

/// An access key has no name and cannot carry tags: it is found again by the evidence recorded
/// before its create.
pub(super) const TYPE: Resource = Resource {
    name: "aws_iam_access_key",
    schema: include_str!("../../schemas/aws_iam_access_key.json"),
    read: Read::Snapshot(read),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior)),
    recover: Recover::Identity(|p, lost, _| Box::pin(find(p, lost))),
    describe_tagged: None,
    evidence: Some(|p, planned| Box::pin(evidence(p, planned))),
};

pub(super) fn read(snap: &IamSnapshot, id: &str, prior: &Attrs) -> Option<Attrs> {
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

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
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
    let key = out.access_key().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreateAccessKey returned no key").after_partial_write()
    })?;
    let id = key.access_key_id().to_string();
    // The secret is in hand now and never again: whatever happens next, the key is recorded.
    // If making it inactive fails, it is recorded as the active key it is, and the next plan
    // shows the status change still to make.
    let mut status = "Active";
    if s(a, "status") == Some("Inactive") {
        let made_inactive = p
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(&id)
            .status(StatusType::Inactive)
            .send()
            .await
            .is_ok();
        if made_inactive {
            status = "Inactive";
        }
    }
    let mut result = a.clone();
    result.insert("id".into(), id.clone().into());
    result.insert("secret".into(), key.secret_access_key().into());
    result.insert("status".into(), status.into());
    Ok((id, result))
}

pub(super) async fn update(
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

pub(super) async fn delete(p: &AwsProvider, id: &str, prior: &Attrs) -> Result<(), ProviderError> {
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

/// The ids of the user's access keys, or none when the user does not exist.
async fn access_key_ids(p: &AwsProvider, user: &str) -> Result<Vec<String>, ProviderError> {
    match p
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(aws_err)
    {
        Ok(out) => Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(String::from))
            .collect()),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// What to record before a create so that its object can be told from others later. An
/// access key has no name and cannot carry tags: the keys the user already had are what
/// prove, afterwards, which key the create made.
async fn evidence(p: &AwsProvider, planned: &Attrs) -> Result<Attrs, ProviderError> {
    let mut out = Attrs::new();
    if let Some(user) = s(planned, "user") {
        let ids = access_key_ids(p, user).await?;
        out.insert(EXISTING_KEYS.into(), ids.into());
    }
    Ok(out)
}

const EXISTING_KEYS: &str = "existing_key_ids";

/// The key an interrupted `CreateAccessKey` made, if it can be proven: a key of the user that
/// was not there before the call (the evidence) and that the state does not hold. Its secret
/// was shown only in the lost answer, so it is useless: it is adopted to be replaced.
async fn find(p: &AwsProvider, lost: Lost<'_>) -> Result<Found, ProviderError> {
    let Some(user) = s(lost.planned, "user") else {
        return Ok(Found::Nothing);
    };
    let unknown: Vec<String> = access_key_ids(p, user)
        .await?
        .into_iter()
        .filter(|id| !lost.known_ids.contains(id))
        .collect();
    let Some(before) = lost.evidence.get(EXISTING_KEYS).and_then(|v| v.as_array()) else {
        // An intent without evidence (written by an older skyform) proves nothing.
        return Ok(if unknown.is_empty() {
            Found::Nothing
        } else {
            Found::Ambiguous {
                ids: unknown,
                reason: format!(
                    "an interrupted apply may have created an access key for {user}, but the user's keys were not recorded before it, so none can be proven ours"
                ),
            }
        });
    };
    let candidates: Vec<String> = unknown
        .into_iter()
        .filter(|id| !before.iter().any(|b| b.as_str() == Some(id.as_str())))
        .collect();
    Ok(match candidates.as_slice() {
        [] => Found::Nothing,
        [id] => Found::Replace {
            id: id.clone(),
            attrs: Attrs::from_iter([
                ("id".to_string(), id.clone().into()),
                ("user".to_string(), user.into()),
                ("status".to_string(), "Active".into()),
            ]),
            reason: "the secret of the key created by an interrupted apply was never recorded"
                .into(),
        },
        many => Found::Ambiguous {
            ids: many.to_vec(),
            reason: format!(
                "{} keys of {user} appeared while an interrupted apply was creating one, and nothing proves which is ours",
                many.len()
            ),
        },
    })
}
