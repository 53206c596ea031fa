//! Finding what an interrupted create may have made, so the next run adopts it instead of
//! creating a duplicate (or failing on a name that is taken), and the lineage scan. Each type
//! says how it is found (`resource::Recover`); this module carries out the two shared ways.
//! EC2 objects are found by the `skyform:address` and `skyform:lineage` tags they were created
//! with; IAM objects by their unique name, adopted only when they carry this lineage's tag (an
//! object someone else made under that name is not ours). Objects that cannot carry tags are
//! found by what identifies them, in their own files: an attachment by its role and policy, an
//! association by its subnet and table, an access key by the evidence recorded before its
//! create (the user's keys at that moment), a cluster by its nodes.
//! Everything here only reads: `plan` looks, `apply` acts.

use std::collections::BTreeMap;

use super::ec2_common::filter;
use super::registry;
use super::resource::{adopted, ours, read_back, tag_filters, Kept, Raw, Recover};
use super::{s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

/// What to record before a create so that its object can be told from others later.
pub(super) async fn evidence(
    p: &AwsProvider,
    type_name: &str,
    planned: &Attrs,
) -> Result<Attrs, ProviderError> {
    match registry::resource_type(type_name).and_then(|t| t.evidence) {
        Some(evidence) => evidence(p, planned).await,
        None => Ok(Attrs::new()),
    }
}

pub(super) async fn find(
    p: &AwsProvider,
    type_name: &str,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    let Some(t) = registry::resource_type(type_name) else {
        // Nothing of a type skyform cannot make was made by it.
        return Ok(Found::Nothing);
    };
    let planned = lost.planned;
    match t.recover {
        Recover::Tags => {
            let Some(describe) = t.describe_tagged else {
                return Ok(Found::Nothing);
            };
            // Objects of this address and lineage that the state does not already hold; two
            // of them (a create retried after its answer was lost) prove neither is the one.
            let mut ids: Vec<String> = describe(p, tag_filters(ctx))
                .await?
                .into_iter()
                .map(|(_, id, _)| id)
                .filter(|id| !id.is_empty() && !lost.known_ids.contains(id))
                .collect();
            ids.sort();
            ids.dedup();
            match ids.as_slice() {
                [] => Ok(Found::Nothing),
                [id] => Ok(adopted(read_back(p, ctx, id, planned).await?)),
                _ => Ok(Found::Ambiguous {
                    reason: format!(
                        "{} objects carry this address's and this state's tags",
                        ids.len()
                    ),
                    ids,
                }),
            }
        }
        Recover::UniqueName(named) => {
            let Some(name) = s(planned, "name") else {
                return Ok(Found::Nothing);
            };
            match named(p, name).await? {
                Some(found) if ours(&found.tags, ctx) => {
                    Ok(adopted(read_back(p, ctx, &found.id, planned).await?))
                }
                _ => Ok(Found::Nothing),
            }
        }
        Recover::Identity(find) => find(p, lost, ctx).await,
    }
}

/// What the lineage scan found in one provider configuration.
#[derive(Default)]
pub(super) struct Scan {
    /// The `skyform:address` and id of every object tagged with the lineage.
    pub(super) tagged: Vec<(crate::lang::address::Address, String)>,
    /// The attributes the listing read in full, by type and id: what a refresh by id would
    /// read of the same objects, so the refresh that follows need not ask again.
    pub(super) attrs: BTreeMap<(String, String), Attrs>,
    /// The SDK objects listed of the `Read::Objects` types, by type and id, which their
    /// refresh turns into attributes with the prior ones.
    pub(super) objects: BTreeMap<(String, String), Vec<Raw>>,
}

/// The `skyform:address` and id of every object of `types` tagged with this lineage. Types
/// without `describe_tagged` (IAM) are not scanned: their unique names make intents enough.
pub(super) async fn scan(
    p: &AwsProvider,
    lineage: &str,
    types: &[&str],
) -> Result<Scan, ProviderError> {
    let mut result = Scan::default();
    if lineage.is_empty() {
        return Ok(result);
    }
    // Every type's listing at once, as the refresh's reads (`parallelism()` in flight, paced
    // by EC2's bucket): the scan is on the critical path of every plan, and listed one after
    // another its types cost their sum, not the slowest of them.
    let slots = tokio::sync::Semaphore::new(super::parallelism());
    let listings = types.iter().filter_map(|t| {
        let describe = registry::resource_type(t).and_then(|t| t.describe_tagged)?;
        let slots = &slots;
        Some(async move {
            let _slot = super::slot(slots, &super::pace::EC2).await?;
            let f = vec![filter("tag:skyform:lineage", &[lineage.to_string()])];
            // Say which type could not be read: the scan covers every type in the configuration.
            let listed = describe(p, f).await.map_err(|mut e| {
                e.message = format!("listing {t} objects: {}", e.message);
                e
            })?;
            Ok::<_, ProviderError>((*t, listed))
        })
    });
    let mut found = Vec::new();
    for (t, listed) in futures_util::future::try_join_all(listings).await? {
        for (tags, id, kept) in listed {
            let key = (t.to_string(), id.clone());
            match kept {
                _ if id.is_empty() => {}
                Kept::Nothing => {}
                Kept::Attrs(attrs) => {
                    result.attrs.insert(key, attrs);
                }
                Kept::Object(raw) => result.objects.entry(key).or_default().push(raw),
            }
            found.push((tags, id));
        }
    }
    let mut out: Vec<(crate::lang::address::Address, String)> = found
        .into_iter()
        .filter_map(|(tags, id)| {
            let addr = tags
                .iter()
                .find(|t| t.key() == Some("skyform:address"))
                .and_then(|t| t.value())?
                .parse()
                .ok()?;
            Some((addr, id))
        })
        .filter(|(_, id)| !id.is_empty())
        .collect();
    out.sort();
    out.dedup();
    result.tagged = out;
    Ok(result)
}
