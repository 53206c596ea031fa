//! `aws_cluster`: N identical nodes, found by their `skyform:cluster` and `skyform:node` tags
//! rather than by the ids in state, so launching is reconciling: count what exists, launch the
//! missing indexes, terminate the extra ones (never the head, node 0).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use serde_json::json;

use super::ec2_common::{bool_of, by_chunks, filter, string_set, strings, tags_json};
use super::nodes::{self, client_token, describe, profile_name, state_of, Spec};
use super::resource::{
    adopted, kept_or_listed, listed, read_back, tag_filters, Raws, Read, Recover, Resource, Tagged,
};
use super::{after_made, req, s, tags_of, AwsProvider};
use crate::engine::provider::{
    Found, Lost, OpContext, Planned, Problem, Provider as _, ProviderError,
};
use crate::state::Attrs;

pub(super) const CLUSTER_TAG: &str = "skyform:cluster";
pub(super) const NODE_TAG: &str = "skyform:node";
/// The market a node was launched on: AWS marks a spot node's lifecycle, moto does not, and a
/// cluster healed on-demand after a spot reclaim has nodes on both.
const MARKET_TAG: &str = "skyform:market";

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

/// The market node `i` runs on, when it shows: its spot lifecycle, else the tag it was launched
/// with.
fn market_of(i: &aws_sdk_ec2::types::Instance) -> Option<&str> {
    if i.instance_lifecycle() == Some(&aws_sdk_ec2::types::InstanceLifecycleType::Spot) {
        return Some("spot");
    }
    tag(i, MARKET_TAG)
}

fn num_nodes(a: &Attrs) -> usize {
    a.get("num_nodes")
        .and_then(serde_json::Value::as_f64)
        .map_or(1, |n| n.max(0.0) as usize)
}

/// Where a cluster's nodes are launched: one instance type, one subnet (`None`: the default
/// VPC's default subnet in AWS's choice of zone) and one market. All nodes share one place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    instance_type: String,
    subnet_id: Option<String>,
    spot: bool,
}

impl Place {
    /// Where node `i` is; a node that does not show its market is taken to be on `spot`.
    fn of(i: &aws_sdk_ec2::types::Instance, spot: bool) -> Place {
        Place {
            instance_type: i.instance_type().map_or("", |t| t.as_str()).to_string(),
            subnet_id: i.subnet_id().map(String::from),
            spot: market_of(i).map_or(spot, |m| m == "spot"),
        }
    }

    fn market(&self) -> &'static str {
        if self.spot {
            "spot"
        } else {
            "on-demand"
        }
    }
}

/// Every place a new cluster may go, in the order tried: the instance types in order and, for
/// each, the subnets in order; with spot and `on_demand_fallback`, all of them on spot first,
/// then all of them on-demand.
fn places(a: &Attrs) -> Vec<Place> {
    let mut types = strings(a.get("instance_types"));
    if types.is_empty() {
        types.extend(s(a, "instance_type").map(String::from));
    }
    let listed = strings(a.get("subnet_ids"));
    let subnets: Vec<Option<String>> = if listed.is_empty() {
        vec![s(a, "subnet_id").map(String::from)]
    } else {
        listed.into_iter().map(Some).collect()
    };
    let spot = bool_of(a, "use_spot").unwrap_or(false);
    let markets: &[bool] = match (spot, bool_of(a, "on_demand_fallback").unwrap_or(false)) {
        (true, true) => &[true, false],
        (true, false) => &[true],
        (false, _) => &[false],
    };
    let mut out = Vec::new();
    for &spot in markets {
        for t in &types {
            for subnet in &subnets {
                out.push(Place {
                    instance_type: t.clone(),
                    subnet_id: subnet.clone(),
                    spot,
                });
            }
        }
    }
    out
}

/// The place a launched cluster is in, from its state: scaling up adds nodes there only.
fn chosen(prior: &Attrs, a: &Attrs) -> Place {
    // A mixed cluster (spot nodes and on-demand ones healed in their place) still asks for
    // spot first.
    let spot = match s(prior, "market") {
        Some(m) => m != "on-demand",
        None => bool_of(a, "use_spot").unwrap_or(false),
    };
    Place {
        instance_type: s(prior, "instance_type")
            .or_else(|| s(a, "instance_type"))
            .unwrap_or_default()
            .to_string(),
        subnet_id: s(prior, "subnet_id")
            .or_else(|| s(a, "subnet_id"))
            .map(String::from),
        spot,
    }
}

/// The launch spec of node `index` in `place`.
fn spec(a: &Attrs, name: &str, index: usize, place: &Place) -> Spec {
    let mut tags = tags_of(a);
    tags.insert(CLUSTER_TAG.into(), name.into());
    tags.insert(NODE_TAG.into(), index.to_string());
    tags.insert(MARKET_TAG.into(), place.market().into());
    Spec {
        image_id: s(a, "image_id").unwrap_or_default().to_string(),
        instance_type: place.instance_type.clone(),
        subnet_id: place.subnet_id.clone(),
        security_group_ids: strings(a.get("security_group_ids")),
        iam_instance_profile: s(a, "iam_instance_profile").map(String::from),
        key_name: s(a, "key_name").map(String::from),
        placement_group: s(a, "placement_group").map(String::from),
        user_data: s(a, "user_data").map(String::from),
        root_volume_size_gb: super::ec2_common::int(a.get("root_volume_size_gb")),
        use_spot: place.spot,
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
    if let Some(zone) = head.placement().and_then(|p| p.availability_zone()) {
        a.insert("availability_zone".into(), zone.into());
    }
    // `market` is null while the nodes are an interrupted create's remains (`find`): the
    // update that completes them may still move them (`update`). Otherwise it is the nodes'
    // market, "mixed" when a spot cluster has on-demand nodes healed in (on_demand_fallback);
    // nodes that show none (launched before the market tag) keep the recorded one.
    if !prior.get("market").is_some_and(serde_json::Value::is_null) {
        let markets: BTreeSet<&str> = nodes.values().filter_map(market_of).collect();
        let market = match markets.iter().collect::<Vec<_>>().as_slice() {
            [] => s(prior, "market").unwrap_or("on-demand").to_string(),
            [one] => (**one).to_string(),
            _ => "mixed".to_string(),
        };
        a.insert("market".into(), market.into());
    }
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

/// Launches the missing indexes below `n` in `place` and waits for them to run. Returns every
/// instance it launched, also when it fails part-way, so that the caller can take them back:
/// the launches run side by side and each one is seen through, none cancelled mid-call with
/// its instance unknown. `attempt` (the place's rank in the failover order) keeps each place's
/// `ClientToken`s apart: a token once used elsewhere would be refused or answered with that
/// launch's instance.
#[allow(clippy::too_many_arguments)] // one launch's whole context; a struct would only rename it
async fn launch_missing(
    p: &AwsProvider,
    a: &Attrs,
    name: &str,
    n: usize,
    all: &[aws_sdk_ec2::types::Instance],
    ctx: &OpContext,
    place: &Place,
    attempt: usize,
) -> (Vec<String>, Result<(), ProviderError>) {
    let live = by_index(all, name);
    let address = match attempt {
        0 => ctx.addr.to_string(),
        k => format!("{}#{k}", ctx.addr),
    };
    let launches = (0..n).filter(|i| !live.contains_key(i)).map(|idx| {
        // A node replaced after a termination needs a new token, or AWS would answer with the
        // terminated instance.
        let generation = all
            .iter()
            .filter(|i| tag(i, CLUSTER_TAG) == Some(name) && index_of(i) == Some(idx))
            .filter(|i| matches!(state_of(i), "terminated" | "shutting-down"))
            .count();
        let token = client_token(&ctx.lineage, &address, idx, generation);
        let spec = spec(a, name, idx, place);
        async move { nodes::launch(p, &spec, &token).await }
    });
    let mut ids = Vec::new();
    let mut failure: Option<ProviderError> = None;
    for result in join_all(launches).await {
        match result {
            Ok(id) => ids.push(id),
            // A quota error wins over any other: it stops the failover.
            Err(e) if failure.as_ref().is_none_or(|f| !nodes::is_quota(&f.code)) => {
                if failure.is_none() || nodes::is_quota(&e.code) {
                    failure = Some(e);
                }
            }
            Err(_) => {}
        }
    }
    if let Some(e) = failure {
        return (ids, Err(e));
    }
    let running = nodes::wait_for(p, &ids, &["running"]).await;
    (ids, running)
}

/// The availability zone of each subnet the places name, for the attempt messages; empty
/// when there is only one place (nothing to report) or the subnets cannot be read (the
/// messages then name the subnets).
async fn zones(p: &AwsProvider, places: &[Place]) -> BTreeMap<String, String> {
    let subnets: BTreeSet<String> = places
        .iter()
        .filter_map(|pl| pl.subnet_id.clone())
        .collect();
    if places.len() < 2 || subnets.is_empty() {
        return BTreeMap::new();
    }
    let answer = p
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnets.into_iter().collect()))
        .send()
        .await;
    answer
        .map(|o| {
            o.subnets()
                .iter()
                .filter_map(|s| {
                    Some((
                        s.subnet_id()?.to_string(),
                        s.availability_zone()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a place is, as a person reads it: its zone, else its subnet.
fn whereabouts(place: &Place, zones: &BTreeMap<String, String>) -> String {
    match &place.subnet_id {
        Some(subnet) => zones.get(subnet).cloned().unwrap_or_else(|| subnet.clone()),
        None => "the default subnet".to_string(),
    }
}

/// What to try next, as the attempt message says it: the zone alone when only that changes.
fn next_place(from: &Place, to: &Place, zones: &BTreeMap<String, String>) -> String {
    let at = whereabouts(to, zones);
    match (from.instance_type == to.instance_type, from.spot == to.spot) {
        (true, true) => at,
        (_, true) => format!("{} in {at}", to.instance_type),
        _ => format!("{} {} in {at}", to.market(), to.instance_type),
    }
}

/// A quota error: trying elsewhere cannot help, so the message says which quota and where to
/// raise it.
fn quota_error(ctx: &OpContext, place: &Place, e: &ProviderError) -> ProviderError {
    let quota = match e.code.as_str() {
        "VcpuLimitExceeded" if place.spot => format!(
            "the vCPU quota for spot instance requests of {}'s family",
            place.instance_type
        ),
        "VcpuLimitExceeded" => format!(
            "the vCPU quota for running on-demand instances of {}'s family",
            place.instance_type
        ),
        "MaxSpotInstanceCountExceeded" => "the spot instance request quota".to_string(),
        _ => format!("the instance quota for {}", place.instance_type),
    };
    ProviderError::new(
        e.code.clone(),
        format!(
            "{addr}: launching {market} {ty} hit {quota} ({code}: {message}). This is an account \
             quota, the same in every zone, so no other place was tried: request an increase in \
             Service Quotas (console: Service Quotas > AWS services > Amazon Elastic Compute \
             Cloud (Amazon EC2)), then apply again",
            addr = ctx.addr,
            market = place.market(),
            ty = place.instance_type,
            code = e.code,
            message = e.message,
        ),
    )
}

/// Whether node `i` is this state's own node of the cluster at `ctx.addr`: an earlier run of
/// this very resource launched it. Only those are ever moved: another environment may run a
/// cluster of the same name.
fn own(i: &aws_sdk_ec2::types::Instance, ctx: &OpContext) -> bool {
    tag(i, "skyform:lineage") == Some(ctx.lineage.as_str())
        && tag(i, "skyform:address") == Some(ctx.addr.to_string().as_str())
}

/// The ids of this state's own live nodes of cluster `name` in `instances`.
fn own_live(
    instances: &[aws_sdk_ec2::types::Instance],
    name: &str,
    ctx: &OpContext,
) -> Vec<String> {
    by_index(instances, name)
        .values()
        .filter(|i| own(i, ctx))
        .filter_map(|i| i.instance_id().map(String::from))
        .collect()
}

/// Finds a place for the whole cluster: `places` in order, each attempt launching the missing
/// nodes and, when it fails part-way for capacity, taking back what it launched before the next
/// place. `existing` is what describing the cluster found. Live nodes of this state's own, left
/// by an interrupted create, are never left in one place while the rest launch in another:
/// their place is tried first, for only the nodes missing, and when it has no room (or the
/// configuration no longer lists it) they are terminated, and gone, before anything launches
/// elsewhere. A cluster never spans two subnets.
#[allow(clippy::too_many_arguments)] // one search's whole context; a struct would only rename it
async fn search(
    p: &AwsProvider,
    a: &Attrs,
    name: &str,
    n: usize,
    ctx: &OpContext,
    places: &[Place],
    existing: Vec<aws_sdk_ec2::types::Instance>,
) -> Result<(Place, Vec<String>), ProviderError> {
    let mut existing = existing;
    let mut order = places.to_vec();
    let first_spot = places.first().is_some_and(|pl| pl.spot);
    let live = by_index(&existing, name);
    let mine: Vec<&aws_sdk_ec2::types::Instance> = live.values().filter(|i| own(i, ctx)).collect();
    if let Some(head) = mine.first() {
        let here = Place::of(head, first_spot);
        let keep = places.contains(&here);
        let astray: Vec<String> = mine
            .iter()
            .filter(|i| !keep || Place::of(i, first_spot) != here)
            .filter_map(|i| i.instance_id().map(String::from))
            .collect();
        if !astray.is_empty() {
            nodes::terminate(p, &astray).await?;
            existing = describe(
                p,
                vec![filter(&format!("tag:{CLUSTER_TAG}"), &[name.to_string()])],
                true,
            )
            .await?;
        }
        if keep {
            order.retain(|pl| *pl != here);
            order.insert(0, here);
        }
    }
    let zones = zones(p, &order).await;
    let mut tried: Vec<String> = Vec::new();
    for (k, place) in order.iter().enumerate() {
        // A place's rank in the configuration keeps its ClientTokens apart from every other
        // place's, the same in every run whatever place a run starts with.
        let rank = places.iter().position(|pl| pl == place).unwrap_or(k);
        let (ids, result) = launch_missing(p, a, name, n, &existing, ctx, place, rank).await;
        let Err(e) = result else {
            return Ok((place.clone(), ids));
        };
        // All or nothing: what this attempt launched goes, and is gone, before anything else.
        nodes::terminate(p, &ids)
            .await
            .map_err(ProviderError::after_partial_write)?;
        if nodes::is_quota(&e.code) {
            return Err(quota_error(ctx, place, &e));
        }
        if !nodes::is_capacity(&e.code) {
            return Err(e);
        }
        // Nodes kept from an interrupted create are in this place: the cluster moves whole.
        let stranded = own_live(&existing, name, ctx);
        if !stranded.is_empty() {
            nodes::terminate(p, &stranded)
                .await
                .map_err(ProviderError::after_partial_write)?;
            existing = describe(
                p,
                vec![filter(&format!("tag:{CLUSTER_TAG}"), &[name.to_string()])],
                true,
            )
            .await?;
        }
        let at = whereabouts(place, &zones);
        tried.push(format!(
            "{} {} in {at} ({})",
            place.market(),
            place.instance_type,
            e.code
        ));
        if let Some(next) = order.get(k + 1) {
            let spot = if place.spot { " spot" } else { "" };
            eprintln!(
                "{}: no{spot} {} capacity in {at} ({}), trying {}",
                ctx.addr,
                place.instance_type,
                e.code,
                next_place(place, next, &zones)
            );
        }
    }
    Err(ProviderError::new(
        "InsufficientInstanceCapacity",
        format!(
            "{}: no place had capacity for all {n} nodes, and no node of any attempt is left \
             running. Tried, in order: {}. Add zones (subnet_ids), instance types \
             (instance_types) or on_demand_fallback, or apply again later",
            ctx.addr,
            tried.join("; ")
        ),
    ))
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
    let places = places(a);
    if places.is_empty() {
        return Err(ProviderError::new(
            "InvalidParameterValue",
            format!("{}: set instance_type or instance_types", ctx.addr),
        ));
    }
    let (place, ids) = search(p, a, &name, n, ctx, &places, existing).await?;
    // The nodes are up: a failure from here on leaves them, and the next run finds them.
    after_made(async {
        if s(a, "state") == Some("stopped") {
            nodes::stop(p, &ids).await?;
        }
        let mut prior = a.clone();
        prior.insert(
            "owner".into(),
            json!({"arn": owner.principal, "account": owner.tenant}),
        );
        prior.insert("market".into(), place.market().into());
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
    let owner = || {
        let mut keep = a.clone();
        if let Some(o) = prior.get("owner") {
            keep.insert("owner".into(), o.clone());
        }
        keep
    };
    if prior.get("market").is_some_and(serde_json::Value::is_null) {
        // An interrupted create's nodes, adopted: the create is finished as it would have
        // been, which may move them (never splitting the cluster) when their place is full.
        let (_, launched) = search(p, &tagged, name, n, ctx, &places(a), all).await?;
        if s(a, "state") == Some("stopped") {
            nodes::stop(p, &launched).await?;
        }
        let mut keep = owner();
        keep.remove("market");
        return read_one(p, name, &keep).await;
    }
    let place = chosen(prior, a);
    let (mut launched, mut result) =
        launch_missing(p, &tagged, name, n, &all, ctx, &place, 0).await;
    // A spot cluster with on_demand_fallback heals a reclaimed node, or grows, on-demand in
    // its own subnet when spot has no room there: the cluster's zone does not change.
    let fallback = Place {
        spot: false,
        ..place.clone()
    };
    if place.spot
        && bool_of(a, "on_demand_fallback").unwrap_or(false)
        && result.as_ref().is_err_and(|e| nodes::is_capacity(&e.code))
    {
        nodes::terminate(p, &launched)
            .await
            .map_err(ProviderError::after_partial_write)?;
        let all = describe(
            p,
            vec![filter(&format!("tag:{CLUSTER_TAG}"), &[name.to_string()])],
            true,
        )
        .await?;
        let ranked = places(a);
        let rank = ranked
            .iter()
            .position(|pl| *pl == fallback)
            .unwrap_or(ranked.len());
        eprintln!(
            "{}: no spot {} capacity in {}, launching on-demand there (on_demand_fallback)",
            ctx.addr,
            place.instance_type,
            whereabouts(&place, &zones(p, &[place.clone(), fallback.clone()]).await),
        );
        (launched, result) =
            launch_missing(p, &tagged, name, n, &all, ctx, &fallback, rank.max(1)).await;
    }
    if let Err(e) = result {
        let e = if nodes::is_capacity(&e.code) {
            ProviderError::new(
                e.code.clone(),
                format!(
                    "{addr}: no {ty} capacity in {at} ({code}) for the new nodes. A cluster's \
                     nodes share one zone, so it stays where it is: apply again later, or move \
                     the whole cluster with `skyform apply --replace={addr}`",
                    addr = ctx.addr,
                    ty = place.instance_type,
                    at = whereabouts(&place, &BTreeMap::new()),
                    code = e.code,
                ),
            )
        } else if nodes::is_quota(&e.code) {
            quota_error(ctx, &place, &e)
        } else {
            e
        };
        // The nodes launched before the failure belong to the cluster, which reads them.
        return Err(if launched.is_empty() {
            e
        } else {
            e.after_partial_write()
        });
    }
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
    let now = by_chunks("instance-id", &all_ids, |f| describe(p, vec![f], false)).await?;
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
    let mut keep = owner();
    keep.insert(
        "market".into(),
        s(prior, "market").unwrap_or(place.market()).into(),
    );
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
    let found = read_back(p, ctx, name, &prior)
        .await?
        .map(|(id, mut attrs)| {
            // Fewer nodes than asked for are a lost create's remains, not a cluster: a null market
            // says so, and the update that follows finishes the create (`update`).
            if num_nodes(&attrs) < num_nodes(planned) {
                attrs.insert("market".into(), serde_json::Value::Null);
            }
            (id, attrs)
        });
    Ok(adopted(found))
}

/// A cluster names its instance type one way or the other: `instance_type` is optional only
/// because, with `instance_types`, it is the computed choice.
pub(crate) fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
    let set = |p: &Planned<'_>, key: &str| p.attrs.get(key).is_some_and(|v| !v.is_null());
    planned
        .iter()
        .filter(|p| p.addr.type_name == TYPE.name)
        .filter(|p| !set(p, "instance_type") && !set(p, "instance_types"))
        .map(|p| Problem {
            addr: p.addr.clone(),
            attr: Some("instance_type".into()),
            message: format!(
                "{}: set instance_type, or instance_types to try several in order",
                p.addr
            ),
        })
        .collect()
}
