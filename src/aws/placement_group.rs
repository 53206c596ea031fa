//! `aws_placement_group`: made with `CreatePlacementGroup`, tagged in that call. Its name is
//! unique in the region and is the id, so refresh reads every group in state with one
//! `DescribePlacementGroups` filtered by name, and a lost create is found by its tags. Every
//! setting but the tags is fixed at creation: a change replaces the group.

use aws_sdk_ec2::types::{Filter, PlacementGroup, PlacementStrategy, ResourceType, SpreadLevel};

use super::ec2_common::{by_chunks, created, int, sync_tags, tag_spec, tags_json, ById};
use super::resource::{by_id, described, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, retry_propagation, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_placement_group",
    schema: include_str!("../../schemas/aws_placement_group.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters))),
    evidence: None,
};

fn attrs_of(g: &PlacementGroup, name: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("id".into(), name.into());
    a.insert("name".into(), name.into());
    let optional = [
        ("placement_group_id", g.group_id()),
        ("arn", g.group_arn()),
        ("strategy", g.strategy().map(PlacementStrategy::as_str)),
        ("spread_level", g.spread_level().map(SpreadLevel::as_str)),
    ];
    for (key, value) in optional {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            a.insert(key.into(), v.into());
        }
    }
    if let Some(n) = g.partition_count() {
        a.insert("partition_count".into(), n.into());
    }
    a.insert("tags".into(), tags_json(g.tags()));
    a
}

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    // A filter rather than GroupNames: one group gone must not fail the whole batch.
    Ok(by_id(
        by_chunks("group-name", ids, |f| read_tagged(p, vec![f])).await?,
    ))
}

/// Placement groups by filters, with everything refresh reads. `DescribePlacementGroups` is not
/// paginated: it answers every match at once.
async fn read_tagged(p: &AwsProvider, filters: Vec<Filter>) -> Result<Vec<Tagged>, ProviderError> {
    let out = p
        .ec2
        .describe_placement_groups()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(aws_err)?;
    let mut found = Vec::new();
    for g in out.placement_groups() {
        // A deleted group stays listed for a while in state "deleted".
        if g.state().is_some_and(|st| st.as_str() == "deleted") {
            continue;
        }
        let Some(name) = g.group_name() else {
            continue;
        };
        found.push(described(g.tags(), name, attrs_of(g, name)));
    }
    Ok(found)
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?;
    let strategy = req(a, "strategy")?;
    p.ec2
        .create_placement_group()
        .group_name(name)
        .strategy(PlacementStrategy::from(strategy))
        .set_partition_count(int(a.get("partition_count")))
        .set_spread_level(s(a, "spread_level").map(SpreadLevel::from))
        .set_tag_specifications(tag_spec(ResourceType::PlacementGroup, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    after_made(async {
        // A second read: the answer's `PlacementGroup` is optional in the API (older API
        // versions, and emulators, answer only `return`).
        created(
            read_all(p, &[name.to_string()]).await?,
            name,
            "placement group",
        )
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    _id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    // Tags of a placement group are addressed by its group id, not its name.
    let group_id = req(prior, "placement_group_id")?;
    let mut result = prior.clone();
    sync_tags(p, group_id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    // AWS refuses while instances are still in the group (being terminated), for a while.
    let result = retry_propagation(
        || async {
            p.ec2
                .delete_placement_group()
                .group_name(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err)
        },
        |e| e.code == "InvalidPlacementGroup.InUse",
    )
    .await;
    match result {
        // Already gone is what a delete wants.
        Err(e) if e.code == "InvalidPlacementGroup.Unknown" => Ok(()),
        other => other,
    }
}
