//! `aws_cluster`: N identical nodes, found by their `skyform:cluster` and `skyform:node` tags
//! rather than by the ids in state, so launching is reconciling: count what exists, launch the
//! missing indexes, terminate the extra ones (never the head, node 0).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::try_join_all;
use serde_json::json;

use super::ec2_common::{filter, string_set, strings, tags_json};
use super::nodes::{self, client_token, describe, profile_name, state_of, Spec};
use super::resource::{
    adopted, kept_or_listed, listed, read_back, tag_filters, Raws, Read, Recover, Resource, Tagged,
};
use super::{after_made, req, s, tags_of, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, Provider as _, ProviderError};
use crate::state::Attrs;

pub(super) const CLUSTER_TAG: &str = "skyform:cluster";
pub(super) const NODE_TAG: &str = "skyform:node";

/// A cluster is one object made of many nodes: its id is its name, and it is read, found and
/// scanned through its nodes' tags.
pub(super) const TYPE: Resource = Resource {
    name: "aws_cluster",
    schema: include_str!("../../schemas/aws_cluster.json"),
    read: Read::Objects(|p, clusters, raws| Box::pin(read_listed(p, clusters, raws))),
    create: |p, a, ctx| Box::pin(create(p, a, ctx)),
    update: Some(|p, name, prior, a, ctx| Box::pin(update(p, name, prior, a, ctx))),
    delete: |p, name, _| Box::pin(delete(p, name)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, lost, ctx))),
    describe_tagged: Some(|p, filters| Box::pin(tagged_nodes(p, filters, true))),
    evidence: None,
};

fn tag<'a>(i: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn index_of(i: &aws_sdk_ec2::types::Instance) -> Option<usize> {
    tag(i, NODE_TAG).and_then(|v| v.parse().ok())
}

fn num_nodes(a: &Attrs) -> usize {
    a.get("num_nodes")
        .and_then(serde_json::Value::as_f64)
        .map_or(1, |n| n.max(0.0) as usize)
}

/// The launch spec of node `index`.
fn spec(a: &Attrs, name: &str, index: usize) -> Spec {
    let mut tags = tags_of(a);
    tags.insert(CLUSTER_TAG.into(), name.into());
    tags.insert(NODE_TAG.into(), index.to_string());
    Spec {
        image_id: s(a, "image_id").unwrap_or_default().to_string(),
        instance_type: s(a, "instance_type").unwrap_or_default().to_string(),
        subnet_id: s(a, "subnet_id").map(String::from),
        security_group_ids: strings(a.get("security_group_ids")),
        iam_instance_profile: s(a, "iam_instance_profile").map(String::from),
        key_name: s(a, "key_name").map(String::from),
        placement_group: s(a, "placement_group").map(String::from),
        user_data: s(a, "user_data").map(String::from),
        root_volume_size_gb: super::ec2_common::int(a.get("root_volume_size_gb")),
        use_spot: a
            .get("use_spot")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        tags,
        metadata_options: nodes::block(a, "metadata_options").map(nodes::metadata_request),
        root_volume: nodes::block(a, "root_block_device").map(nodes::root_request),
        associate_public_ip: super::ec2_common::bool_of(a, "associate_public_ip_address"),
        ..Spec::default()
    }
}

/// The live, not terminated nodes of a cluster by index (the lowest id wins a duplicate index).
fn by_index(
    instances: &[aws_sdk_ec2::types::Instance],
    name: &str,
) -> BTreeMap<usize, aws_sdk_ec2::types::Instance> {
    let mut out = BTreeMap::new();
    for i in instances
        .iter()
        .filter(|i| tag(i, CLUSTER_TAG) == Some(name))
        .filter(|i| !matches!(state_of(i), "terminated" | "shutting-down"))
    {
        if let Some(idx) = index_of(i) {
            out.entry(idx).or_insert_with(|| i.clone());
        }
    }
    out
}

/// A cluster's attributes from its nodes; what no node shows (user data, spot, the owner)
/// comes from `prior`. `volumes` holds the head's root volume when the configuration has a
/// `root_block_device`: every node was launched with the same one, so the head stands for all.
fn attrs_of(
    name: &str,
    nodes: &BTreeMap<usize, aws_sdk_ec2::types::Instance>,
    prior: &Attrs,
    volumes: &BTreeMap<String, aws_sdk_ec2::types::Volume>,
) -> Option<Attrs> {
    let head = nodes.values().next()?;
    let mut a = prior.clone();
    a.insert("name".into(), name.into());
    a.insert("id".into(), name.into());
    a.insert("num_nodes".into(), json!(nodes.len()));
    a.insert(
        "instance_type".into(),
        head.instance_type().map_or("", |t| t.as_str()).into(),
    );
    a.insert(
        "image_id".into(),
        head.image_id().unwrap_or_default().into(),
    );
    a.insert(
        "subnet_id".into(),
        head.subnet_id().unwrap_or_default().into(),
    );
    a.insert(
        "security_group_ids".into(),
        string_set(
            head.security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from)),
        ),
    );
    match profile_name(head) {
        Some(p) => a.insert("iam_instance_profile".into(), p.into()),
        None => a.remove("iam_instance_profile"),
    };
    match head.key_name() {
        Some(k) => a.insert("key_name".into(), k.into()),
        None => a.remove("key_name"),
    };
    super::nodes::read_placement(head, &mut a, false);
    let states: BTreeSet<&str> = nodes
        .values()
        .map(|i| match state_of(i) {
            "pending" | "running" => "running",
            "stopping" | "stopped" => "stopped",
            other => other,
        })
        .collect();
    let state = match states.iter().collect::<Vec<_>>().as_slice() {
        [one] => (**one).to_string(),
        // Some nodes running and some stopped: neither state the configuration can ask for.
        _ => "mixed".to_string(),
    };
    a.insert("state".into(), state.into());
    if let Some(m) = nodes::metadata_block(head) {
        a.insert("metadata_options".into(), m);
    }
    nodes::read_root_block(head, volumes, &mut a);
    a.insert(
        "associate_public_ip_address".into(),
        head.public_ip_address()
            .is_some_and(|ip| !ip.is_empty())
            .into(),
    );
    let mut tags = tags_json(head.tags());
    if let Some(m) = tags.as_object_mut() {
        m.retain(|k, _| !k.starts_with("skyform:"));
    }
    a.insert("tags".into(), tags);
    let ids: Vec<String> = nodes
        .values()
        .filter_map(|i| i.instance_id().map(String::from))
        .collect();
    a.insert(
        "head_instance_id".into(),
        ids.first()
            .cloned()
            .map_or(serde_json::Value::Null, Into::into),
    );
    a.insert("instance_ids".into(), ids.into());
    a.insert(
        "private_ips".into(),
        nodes
            .values()
            .map(|i| i.private_ip_address().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .into(),
    );
    a.insert(
        "public_ips".into(),
        nodes
            .values()
            .map(|i| i.public_ip_address().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .into(),
    );
    Some(a)
}

/// Every cluster in `clusters`, from one `DescribeInstances` filtered by the cluster tag.
pub(super) async fn read_all(
    p: &AwsProvider,
    clusters: &[(String, Attrs)],
) -> Result<super::ec2_common::ById, ProviderError> {
    read_listed(p, clusters, Raws::new()).await
}

/// Every cluster in `clusters`: those whose nodes the lineage scan listed (`raws`, the same
/// live nodes a read by the cluster tag finds, since every node is launched with both tags)
/// from those nodes, the others from one `DescribeInstances` filtered by the cluster tag.
async fn read_listed(
    p: &AwsProvider,
    clusters: &[(String, Attrs)],
    raws: Raws,
) -> Result<super::ec2_common::ById, ProviderError> {
    let instances: Vec<aws_sdk_ec2::types::Instance> = kept_or_listed(clusters, raws, |missing| {
        describe(
            p,
            vec![filter(&format!("tag:{CLUSTER_TAG}"), &missing)],
            false,
        )
    })
    .await?;
    let members: Vec<_> = clusters
        .iter()
        .map(|(name, _)| by_index(&instances, name))
        .collect();
    // DescribeInstances does not show a volume's size or type: one DescribeVolumes for the head
    // root volumes of every cluster configured with a root_block_device, none otherwise.
    let wanted: Vec<String> = clusters
        .iter()
        .zip(&members)
        .filter(|((_, prior), _)| nodes::block(prior, "root_block_device").is_some())
        .filter_map(|(_, n)| nodes::root_volume(n.values().next()?).map(String::from))
        .collect();
    let volumes = nodes::volumes(p, &wanted).await?;
    let mut out = super::ec2_common::ById::new();
    for ((name, prior), found) in clusters.iter().zip(&members) {
        if let Some(a) = attrs_of(name, found, prior, &volumes) {
            out.insert(name.clone(), a);
        }
    }
    Ok(out)
}

async fn read_one(p: &AwsProvider, name: &str, prior: &Attrs) -> Result<Attrs, ProviderError> {
    read_all(p, &[(name.to_string(), prior.clone())])
        .await?
        .remove(name)
        .ok_or_else(|| ProviderError::new("NotFound", format!("cluster {name} has no nodes")))
}

/// Launches the missing indexes below `n`; returns the new instance ids.
async fn launch_missing(
    p: &AwsProvider,
    a: &Attrs,
    name: &str,
    n: usize,
    all: &[aws_sdk_ec2::types::Instance],
    ctx: &OpContext,
) -> Result<Vec<String>, ProviderError> {
    let live = by_index(all, name);
    let address = ctx.addr.to_string();
    let launches = (0..n).filter(|i| !live.contains_key(i)).map(|idx| {
        // A node replaced after a termination needs a new token, or AWS would answer with the
        // terminated instance.
        let generation = all
            .iter()
            .filter(|i| tag(i, CLUSTER_TAG) == Some(name) && index_of(i) == Some(idx))
            .filter(|i| matches!(state_of(i), "terminated" | "shutting-down"))
            .count();
        let token = client_token(&ctx.lineage, &address, idx, generation);
        let spec = spec(a, name, idx);
        async move { nodes::launch(p, &spec, &token).await }
    });
    let ids = try_join_all(launches).await?;
    nodes::wait_for(p, &ids, &["running"]).await?;
    Ok(ids)
}

fn check_size(a: &Attrs) -> Result<usize, ProviderError> {
    let n = num_nodes(a);
    if n == 0 {
        return Err(ProviderError::new(
            "InvalidSize",
            "num_nodes must be at least 1 (the head node); destroy the cluster to remove it",
        ));
    }
    Ok(n)
}

pub(super) async fn create(
    p: &AwsProvider,
    a: &Attrs,
    ctx: &OpContext,
) -> Result<(String, Attrs), ProviderError> {
    let name = req(a, "name")?.to_string();
    let n = check_size(a)?;
    let owner = p.identity().await?;
    let existing = describe(
        p,
        vec![filter(
            &format!("tag:{CLUSTER_TAG}"),
            std::slice::from_ref(&name),
        )],
        true,
    )
    .await?;
    // Once a launch has been attempted, nodes may exist: any failure leaves the outcome open
    // (a rejected first launch made nothing, and the next run's search finds just that).
    after_made(async {
        let ids = launch_missing(p, a, &name, n, &existing, ctx).await?;
        if s(a, "state") == Some("stopped") {
            nodes::stop(p, &ids).await?;
        }
        let mut prior = a.clone();
        prior.insert(
            "owner".into(),
            json!({"arn": owner.principal, "account": owner.tenant}),
        );
        let attrs = read_one(p, &name, &prior).await?;
        Ok((name.clone(), attrs))
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    name: &str,
    prior: &Attrs,
    a: &Attrs,
    ctx: &OpContext,
) -> Result<Attrs, ProviderError> {
    let n = check_size(a)?;
    let all = describe(
        p,
        vec![filter(&format!("tag:{CLUSTER_TAG}"), &[name.to_string()])],
        true,
    )
    .await?;
    let live = by_index(&all, name);
    // Scale down from the top; the head is index 0 and n >= 1 keeps it.
    let extra: Vec<String> = live
        .iter()
        .filter(|(idx, _)| **idx >= n)
        .filter_map(|(_, i)| i.instance_id().map(String::from))
        .collect();
    nodes::terminate(p, &extra).await?;
    // A node launched here carries skyform's tags as the create's do: the lineage scan, which
    // serves the cluster's refresh, finds the nodes by them.
    let tagged = super::with_system_tags(TYPE.name, a, ctx);
    let launched = launch_missing(p, &tagged, name, n, &all, ctx).await?;
    let kept: Vec<String> = live
        .iter()
        .filter(|(idx, _)| **idx < n)
        .filter_map(|(_, i)| i.instance_id().map(String::from))
        .collect();
    let want_groups = strings(a.get("security_group_ids"));
    if string_set(want_groups.clone()) != string_set(strings(prior.get("security_group_ids")))
        && !want_groups.is_empty()
    {
        nodes::set_groups(p, &kept, &want_groups).await?;
    }
    nodes::set_metadata_options(p, &kept, prior, a).await?;
    // Tags on every node that was not just launched with them.
    super::ec2_common::retag(p, &kept, prior, a).await?;
    let all_ids: Vec<String> = kept.iter().chain(launched.iter()).cloned().collect();
    let now = describe(p, vec![filter("instance-id", &all_ids)], false).await?;
    let in_state = |want: &[&str]| -> Vec<String> {
        now.iter()
            .filter(|i| want.contains(&state_of(i)))
            .filter_map(|i| i.instance_id().map(String::from))
            .collect()
    };
    if s(a, "state") == Some("stopped") {
        nodes::stop(p, &in_state(&["pending", "running"])).await?;
    } else {
        nodes::start(p, &in_state(&["stopping", "stopped"])).await?;
    }
    let mut keep = a.clone();
    if let Some(o) = prior.get("owner") {
        keep.insert("owner".into(), o.clone());
    }
    read_one(p, name, &keep).await
}

pub(super) async fn delete(p: &AwsProvider, name: &str) -> Result<(), ProviderError> {
    let all = describe(
        p,
        vec![filter(&format!("tag:{CLUSTER_TAG}"), &[name.to_string()])],
        false,
    )
    .await?;
    let ids: Vec<String> = all
        .iter()
        .filter(|i| tag(i, CLUSTER_TAG) == Some(name))
        .filter_map(|i| i.instance_id().map(String::from))
        .collect();
    nodes::terminate(p, &ids).await
}

/// The live nodes matching `filters`, of clusters (`in_cluster`) or standalone instances, each
/// with its tags and the id of what it belongs to: its cluster's name, or its own instance id.
/// Each is kept whole: the lineage scan's listing serves the refresh (`read_listed`).
pub(super) async fn tagged_nodes(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
    in_cluster: bool,
) -> Result<Vec<Tagged>, ProviderError> {
    Ok(describe(p, filters, false)
        .await?
        .iter()
        .filter(|i| i.tags().iter().any(|t| t.key() == Some(CLUSTER_TAG)) == in_cluster)
        .map(|i| listed(i.tags(), tag(i, CLUSTER_TAG).or(i.instance_id()), i.clone()))
        .collect())
}

/// What exists is adopted and the plan launches the rest. Only nodes carrying this address's
/// and lineage's tags prove the cluster ours: another environment may run a cluster of the
/// same name.
async fn find(p: &AwsProvider, lost: Lost<'_>, ctx: &OpContext) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    let Some(name) = s(planned, "name") else {
        return Ok(Found::Nothing);
    };
    if tagged_nodes(p, tag_filters(ctx), true).await?.is_empty() {
        return Ok(Found::Nothing);
    }
    let mut prior = planned.clone();
    let owner = p.identity().await?;
    prior.insert(
        "owner".into(),
        json!({"arn": owner.principal, "account": owner.tenant}),
    );
    Ok(adopted(read_back(p, ctx, name, &prior).await?))
}
