//! What the EC2 resource files share: id filters for batched Describe calls (chunked within
//! EC2's limit on filter values), tags (at
//! creation through `TagSpecifications`, later through CreateTags/DeleteTags), ARNs, and the
//! retry of deletes that AWS refuses while a dependency is still being detached.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::{aws_err, retry_propagation, tag_changes, tags_of, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

/// A Describe filter. Filters, unlike id lists, do not fail the whole call when one id is gone.
pub(super) fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// The most values EC2 takes in one filter. EC2 answers more with `FilterLimitExceeded` ("The
/// request uses too many filters or too many filter values", in the EC2 API Reference's error
/// codes, <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>), whose
/// message gives the limit: "The maximum number of filter values specified on a single call is
/// 200".
pub(super) const MAX_FILTER_VALUES: usize = 200;

/// `describe` with the filter `name` over `ids`, once per chunk of at most `MAX_FILTER_VALUES`
/// of them, the answers joined: a batched read of any size stays within EC2's limit, and costs
/// one call per 200 ids (and page), no more.
pub(super) async fn by_chunks<T, Fut>(
    name: &str,
    ids: &[String],
    describe: impl Fn(Filter) -> Fut,
) -> Result<Vec<T>, ProviderError>
where
    Fut: Future<Output = Result<Vec<T>, ProviderError>>,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        out.extend(describe(filter(name, chunk)).await?);
    }
    Ok(out)
}

/// The `filter { name, values }` blocks of a data source, as EC2 filters: Terraform's AWS
/// provider finds VPCs and subnets this way, and its books and tutorials write them so.
pub(super) fn block_filters(args: &crate::state::Attrs) -> Vec<Filter> {
    let Some(blocks) = args.get("filter").and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter_map(|b| {
            let name = b.get("name")?.as_str()?;
            let values: Vec<String> = b
                .get("values")?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            Some(filter(name, &values))
        })
        .collect()
}

/// Filters as the messages of data sources show them: `filter name = ["a", "b"]`.
pub(super) fn describe_filters(filters: &[Filter]) -> Vec<String> {
    filters
        .iter()
        .map(|f| format!("filter {} = {:?}", f.name().unwrap_or_default(), f.values()))
        .collect()
}

pub(super) fn tags_json(tags: &[Tag]) -> serde_json::Value {
    serde_json::Value::Object(
        tags.iter()
            .filter(|t| {
                !t.key()
                    .unwrap_or_default()
                    .starts_with(super::SYSTEM_TAG_PREFIX)
            })
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().into())))
            .collect(),
    )
}

/// The configured tags, set in the create call itself.
pub(super) fn tag_spec(kind: ResourceType, a: &Attrs) -> Option<TagSpecification> {
    let tags = tags_of(a);
    if tags.is_empty() {
        return None;
    }
    Some(
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build(),
    )
}

/// Brings an object's tags from `prior` to the configured ones.
pub(super) async fn sync_tags(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    desired: &Attrs,
    result: &mut Attrs,
) -> Result<(), ProviderError> {
    retag(p, &[id.to_string()], prior, desired).await?;
    result.insert("tags".into(), super::tags_value(desired));
    Ok(())
}

/// Moves the tags of several objects (a cluster's nodes) from `prior` to `desired`, one
/// `DeleteTags` and one `CreateTags` call for all of them.
pub(super) async fn retag(
    p: &AwsProvider,
    ids: &[String],
    prior: &Attrs,
    desired: &Attrs,
) -> Result<(), ProviderError> {
    let (add, remove) = tag_changes(&tags_of(prior), &tags_of(desired));
    if ids.is_empty() {
        return Ok(());
    }
    if !remove.is_empty() {
        p.ec2
            .delete_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(
                remove
                    .iter()
                    .map(|k| Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(aws_err)?;
    }
    if !add.is_empty() {
        p.ec2
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(
                add.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(aws_err)?;
    }
    Ok(())
}

pub(super) fn arn(p: &AwsProvider, owner: Option<&str>, kind: &str, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:{kind}/{id}",
        p.region,
        owner.unwrap_or_default()
    )
}

/// Deletes, retrying for a bounded time while AWS says something still depends on the object
/// (a gateway being detached, an interface being released).
pub(super) async fn delete_with_retry<F, Fut>(f: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ProviderError>>,
{
    gone_is_done(retry_propagation(f, |e| e.code == "DependencyViolation").await)
}

/// A delete, release or disassociate whose object AWS no longer knows (`*.NotFound`) has
/// what it wanted: already gone is success.
pub(super) fn gone_is_done(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(e) if e.code.ends_with(".NotFound") => Ok(()),
        other => other,
    }
}

/// Numbers from state or configuration as i32 (ports).
pub(super) fn int(v: Option<&serde_json::Value>) -> Option<i32> {
    v.and_then(serde_json::Value::as_f64).map(|n| n as i32)
}

pub(super) fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn bool_of(a: &Attrs, key: &str) -> Option<bool> {
    a.get(key).and_then(serde_json::Value::as_bool)
}

/// Sorted, deduplicated JSON strings: how sets are stored.
pub(super) fn string_set(items: impl IntoIterator<Item = String>) -> serde_json::Value {
    let set: std::collections::BTreeSet<String> = items.into_iter().collect();
    serde_json::Value::from(set.into_iter().collect::<Vec<_>>())
}

/// Groups per-id results of a batched read.
pub(super) type ById = BTreeMap<String, Attrs>;

/// The attributes of an object just created, from the batched read that follows the create.
pub(super) fn created(
    mut found: ById,
    id: &str,
    what: &str,
) -> Result<(String, Attrs), ProviderError> {
    found
        .remove(id)
        .map(|a| (id.to_string(), a))
        .ok_or_else(|| {
            ProviderError::new(
                "NotFound",
                format!("{what} {id} vanished after it was created"),
            )
        })
}

/// CRC-32 (IEEE), the checksum Terraform's provider hashes the ids of objects without one
/// of their own with (`sgrule-...`, `r-...`), so the same object gets the same id again.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::{block_filters, by_chunks, crc32, MAX_FILTER_VALUES};

    #[test]
    fn crc32_is_the_ieee_checksum() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn filter_blocks_become_ec2_filters_with_every_value() {
        let args: crate::state::Attrs = serde_json::from_value(serde_json::json!({
            "filter": [
                { "name": "vpc-id", "values": ["vpc-1"] },
                { "name": "tag:Tier", "values": ["public", "edge"] }
            ],
            "tags": { "Name": "x" }
        }))
        .unwrap();
        let got: Vec<(String, Vec<String>)> = block_filters(&args)
            .iter()
            .map(|f| (f.name().unwrap().to_string(), f.values().to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                ("vpc-id".to_string(), vec!["vpc-1".to_string()]),
                (
                    "tag:Tier".to_string(),
                    vec!["public".to_string(), "edge".to_string()]
                )
            ]
        );
        assert!(block_filters(&crate::state::Attrs::new()).is_empty());
    }

    #[test]
    fn an_id_list_above_ec2s_filter_limit_is_read_in_chunks_within_it() {
        let ids: Vec<String> = (0..=2 * MAX_FILTER_VALUES)
            .map(|i| format!("subnet-{i}"))
            .collect();
        let sizes = std::sync::Mutex::new(Vec::new());
        let found = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(by_chunks("subnet-id", &ids, |f| {
                assert_eq!(f.name(), Some("subnet-id"));
                sizes.lock().unwrap().push(f.values().len());
                let values = f.values().to_vec();
                async move { Ok(values) }
            }))
            .unwrap();
        // Three calls (200, 200 and 1 ids), every id asked once, in order.
        assert_eq!(*sizes.lock().unwrap(), [200, 200, 1]);
        assert_eq!(found, ids);
        // None at all for no ids: an empty filter would match everything.
        let none: Vec<String> = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(by_chunks("subnet-id", &[], |_| async {
                Err(super::ProviderError::new("Unexpected", "a call for no ids"))
            }))
            .unwrap();
        assert!(none.is_empty());
    }
}
