//! `aws_key_pair`: a public key imported with `ImportKeyPair`, tagged in that call. The key
//! name is unique in the region and is the id, so refresh reads every key pair in state with
//! one `DescribeKeyPairs` filtered by name, and a lost import is found again by its name: it
//! is adopted only when it carries this address's and lineage's tags and holds the planned
//! public key.
//!
//! AWS gives back the public key in its own form (a comment of its own, no trailing newline),
//! so keys are compared by their type and base64 body, and the configured text is kept in
//! state while AWS holds the same key: a plan is clean exactly when AWS has the key configured.

use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{KeyPairInfo, ResourceType};

use super::ec2_common::{by_chunks, created, sync_tags, tag_spec, tags_json, ById};
use super::resource::{
    adopted, kept_or_listed, listed, ours, read_back, Raws, Read, Recover, Resource, Tagged,
};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_key_pair",
    schema: include_str!("../../schemas/aws_key_pair.json"),
    read: Read::Objects(|p, priors, raws| Box::pin(read_listed(p, priors, raws))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, lost, ctx))),
    describe_tagged: Some(|p, filters| Box::pin(list_tagged(p, filters))),
    evidence: None,
};

/// A public key's type and base64 body: what identifies the key, without its comment.
fn key_material(text: &str) -> Option<(&str, &str)> {
    let mut fields = text.split_whitespace();
    Some((fields.next()?, fields.next()?))
}

/// Whether two public keys in OpenSSH form are the same key.
fn same_key(a: &str, b: &str) -> bool {
    key_material(a).is_some_and(|k| Some(k) == key_material(b))
}

/// The key pairs with these names, with their public keys, in one call per page. A name
/// filter rather than `KeyNames`: one key gone must not fail the whole batch.
async fn describe(p: &AwsProvider, names: &[String]) -> Result<Vec<KeyPairInfo>, ProviderError> {
    by_chunks("key-name", names, |f| describe_filtered(p, vec![f])).await
}

/// The key pairs matching `filters`, with their public keys: the call has no pages.
async fn describe_filtered(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<KeyPairInfo>, ProviderError> {
    let out = p
        .ec2
        .describe_key_pairs()
        .set_filters(Some(filters))
        .include_public_key(true)
        .send()
        .await
        .map_err(aws_err)?;
    Ok(out.key_pairs().to_vec())
}

/// The key pairs matching `filters`, each kept whole for the refresh (`read_listed`).
async fn list_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    Ok(describe_filtered(p, filters)
        .await?
        .iter()
        .map(|k| listed(k.tags(), k.key_name(), k.clone()))
        .collect())
}

pub(super) async fn read_all(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    read_listed(p, priors, Raws::new()).await
}

/// The key pairs in `priors`: those the lineage scan listed (`raws`) as it listed them, the
/// others from one `DescribeKeyPairs` by name.
async fn read_listed(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
    raws: Raws,
) -> Result<ById, ProviderError> {
    let found: Vec<KeyPairInfo> = kept_or_listed(priors, raws, |missing| async move {
        describe(p, &missing).await
    })
    .await?;
    // DescribeKeyPairs names no account, and the ARN never changes while the key lives, so it
    // is carried over; only a key read for the first time costs the one STS call.
    let mut account = None;
    let mut out = ById::new();
    for k in found {
        let Some(name) = k.key_name() else {
            continue;
        };
        let prior = priors
            .iter()
            .find(|(id, _)| id == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        let mut a = Attrs::new();
        a.insert("id".into(), name.into());
        a.insert("key_name".into(), name.into());
        let arn = if let Some(arn) = s(&prior, "arn") {
            arn.to_string()
        } else {
            if account.is_none() {
                account = Some(super::caller_identity::caller(p).await?.account);
            }
            format!(
                "arn:aws:ec2:{}:{}:key-pair/{name}",
                p.region,
                account.as_deref().unwrap_or_default()
            )
        };
        a.insert("arn".into(), arn.into());
        let optional = [
            ("key_pair_id", k.key_pair_id()),
            ("fingerprint", k.key_fingerprint()),
            (
                "key_type",
                k.key_type().map(aws_sdk_ec2::types::KeyType::as_str),
            ),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                a.insert(key.into(), v.into());
            }
        }
        // The configured text while AWS holds that key; AWS's own text when it holds another
        // (a difference the plan shows and replaces).
        let public = match (s(&prior, "public_key"), k.public_key()) {
            (Some(mine), Some(theirs)) if !same_key(mine, theirs) => Some(theirs),
            (Some(mine), _) => Some(mine),
            (None, theirs) => theirs,
        };
        if let Some(public) = public {
            a.insert("public_key".into(), public.into());
        }
        a.insert("tags".into(), tags_json(k.tags()));
        out.insert(name.to_string(), a);
    }
    Ok(out)
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "key_name")?;
    let public = req(a, "public_key")?;
    p.ec2
        .import_key_pair()
        .key_name(name)
        .public_key_material(Blob::new(public.as_bytes()))
        .set_tag_specifications(tag_spec(ResourceType::KeyPair, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    after_made(async {
        // A second read: ImportKeyPair's answer has no key type, and DescribeKeyPairs's is
        // the form refresh compares with.
        created(
            read_all(p, &[(name.to_string(), a.clone())]).await?,
            name,
            "key pair",
        )
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    // Tags of a key pair are addressed by its key-pair id, not its name.
    let key_id = req(prior, "key_pair_id")?;
    let mut result = prior.clone();
    sync_tags(p, key_id, prior, a, &mut result).await?;
    result.insert("id".into(), id.into());
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    // DeleteKeyPair succeeds for a name that is already gone.
    p.ec2
        .delete_key_pair()
        .key_name(id)
        .send()
        .await
        .map(|_| ())
        .map_err(aws_err)
}

/// The key pair a lost import made: the one with its name, when it carries this address's
/// tags. One that carries them but holds another key is no import of this plan, and adopting
/// it would put a key nobody configured on every instance that names it.
async fn find(p: &AwsProvider, lost: Lost<'_>, ctx: &OpContext) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    let (Some(name), Some(public)) = (s(planned, "key_name"), s(planned, "public_key")) else {
        return Ok(Found::Nothing);
    };
    let Some(k) = describe(p, &[name.to_string()]).await?.into_iter().next() else {
        return Ok(Found::Nothing);
    };
    let tags: Vec<(String, String)> = k
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    if !ours(&tags, ctx) {
        return Ok(Found::Nothing);
    }
    if k.public_key()
        .is_some_and(|theirs| !same_key(public, theirs))
    {
        return Err(ProviderError::new(
            "KeyPairMismatch",
            format!(
                "key pair {name:?} carries the tags of {} in this state but holds another public key than the one configured; delete it (aws ec2 delete-key-pair --key-name {name}) or import under another key_name",
                ctx.addr
            ),
        ));
    }
    Ok(adopted(read_back(p, ctx, name, planned).await?))
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn public_keys_are_the_same_when_their_type_and_body_are_whatever_the_comment() {
        assert!(same_key(
            "ssh-ed25519 AAAAC3Nza me@laptop\n",
            "ssh-ed25519 AAAAC3Nza"
        ));
        assert!(!same_key("ssh-ed25519 AAAAC3Nza", "ssh-ed25519 AAAAC3Nzb"));
        assert!(!same_key("ssh-rsa AAAAC3Nza", "ssh-ed25519 AAAAC3Nza"));
        assert!(!same_key("", ""));
    }
}
