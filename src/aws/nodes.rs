//! EC2 instances, shared by `aws_cluster` (many nodes) and `aws_instance` (one): launching
//! one instance per `RunInstances` call (tagged at creation, with a deterministic `ClientToken`),
//! finding instances, and waiting for states with a bounded timeout: the operation's
//! `timeouts` when its block has them (set for the call by `bounded`), else
//! `SKYFORM_INSTANCE_TIMEOUT`; and the `metadata_options` block both types read and change, and
//! the `root_block_device` both launch and read back (one `DescribeVolumes` per refresh).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, CreditSpecificationRequest, EbsBlockDevice, EbsInstanceBlockDevice, Filter,
    HttpTokensState, IamInstanceProfileSpecification, Instance, InstanceMarketOptionsRequest,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceType, MarketType, Placement, ResourceType,
    RunInstancesMonitoringEnabled, ShutdownBehavior, Tag, TagSpecification, Tenancy, Volume,
    VolumeType,
};

use super::ec2_common::{by_chunks, filter, int};
use super::{aws_err, retry_propagation, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

/// What every node of a launch shares.
#[derive(Debug, Clone, Default)]
pub(super) struct Spec {
    pub(crate) image_id: String,
    pub(crate) instance_type: String,
    pub(crate) subnet_id: Option<String>,
    pub(crate) security_group_ids: Vec<String>,
    pub(crate) iam_instance_profile: Option<String>,
    pub(crate) key_name: Option<String>,
    pub(crate) user_data: Option<String>,
    pub(crate) root_volume_size_gb: Option<i32>,
    /// The whole root volume (`aws_instance`'s `root_block_device`); wins over the size alone.
    pub(crate) root_volume: Option<EbsBlockDevice>,
    pub(crate) use_spot: bool,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) availability_zone: Option<String>,
    pub(crate) tenancy: Option<String>,
    /// `Placement.GroupName` and `PartitionNumber`: every node of a launch goes in the group.
    pub(crate) placement_group: Option<String>,
    pub(crate) partition_number: Option<i32>,
    pub(crate) private_ip: Option<String>,
    /// Only a network interface specification can carry this, so when it is set the subnet,
    /// groups and private IP move into one.
    pub(crate) associate_public_ip: Option<bool>,
    pub(crate) metadata_options: Option<InstanceMetadataOptionsRequest>,
    pub(crate) monitoring: bool,
    /// User data already base64-encoded (`user_data_base64`), sent as it is.
    pub(crate) user_data_base64: Option<String>,
    pub(crate) shutdown_behavior: Option<String>,
    pub(crate) disable_api_termination: Option<bool>,
    /// `aws_instance`'s `instance_market_options`; wins over `use_spot`.
    pub(crate) market_options: Option<InstanceMarketOptionsRequest>,
    /// `credit_specification`'s `cpu_credits` (burstable types: standard or unlimited).
    pub(crate) cpu_credits: Option<String>,
    /// The volumes' tags when they differ from the instance's (`volume_tags`).
    pub(crate) volume_tags: Option<BTreeMap<String, String>>,
    /// Further EBS volumes attached at launch (`ebs_block_device`), each with its device name.
    pub(crate) ebs_volumes: Vec<BlockDeviceMapping>,
}

tokio::task_local! {
    /// The deadline of the operation in progress and the `timeouts` value it came from. A
    /// task-local rather than an argument: the waits sit several calls below the type files'
    /// create, update and delete, which all share one signature per kind.
    static OPERATION_DEADLINE: (Instant, Duration);
}

/// Runs one provider operation with its block's `timeouts` value (if any) bounding every wait
/// in it, as Terraform bounds the whole operation.
pub(super) async fn bounded<T>(
    limit: Option<Duration>,
    operation: impl std::future::Future<Output = T>,
) -> T {
    match limit {
        Some(limit) => {
            OPERATION_DEADLINE
                .scope((Instant::now() + limit, limit), operation)
                .await
        }
        None => operation.await,
    }
}

/// When a wait starting now must give up, and what set the bound (for the error): the
/// operation's `timeouts`, else `SKYFORM_INSTANCE_TIMEOUT` seconds (default 600) per wait.
fn deadline() -> (Instant, String) {
    if let Ok((at, limit)) = OPERATION_DEADLINE.try_with(|d| *d) {
        return (at, format!("{limit:?}, the resource's timeouts"));
    }
    let secs = std::env::var("SKYFORM_INSTANCE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    (
        Instant::now() + Duration::from_secs(secs),
        format!("{secs}s, SKYFORM_INSTANCE_TIMEOUT"),
    )
}

/// A `ClientToken` from what identifies a launch: AWS returns the same instance for a repeated
/// token, so a retried call cannot launch twice. `generation` changes when a node is replaced.
pub(super) fn client_token(
    lineage: &str,
    address: &str,
    index: usize,
    generation: usize,
) -> String {
    let digest =
        crate::lang::digest::sha256(format!("{lineage}/{address}/{index}/{generation}").as_bytes());
    // ClientToken allows 64 ASCII characters.
    digest[..48].to_string()
}

/// `RunInstances` errors that say a place (zone, instance type, market) has no room now: another
/// place may. AWS documents the first three as server errors (HTTP 500), the rest as client
/// errors; `Unsupported` is a type not offered in that zone.
const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientCapacity",
    "InsufficientCapacityOnHost",
    "InsufficientSpotCapacity",
    "SpotMaxPriceTooLow",
    "Unsupported",
];

/// `RunInstances` errors that say an account quota is used up: the same everywhere.
const QUOTA_CODES: &[&str] = &[
    "VcpuLimitExceeded",
    "InstanceLimitExceeded",
    "MaxSpotInstanceCountExceeded",
];

pub(super) fn is_capacity(code: &str) -> bool {
    CAPACITY_CODES.contains(&code)
}

pub(super) fn is_quota(code: &str) -> bool {
    QUOTA_CODES.contains(&code)
}

/// Stops the SDK retrying a launch that failed for capacity or quota. The capacity codes come
/// with HTTP 500, which the standard strategy retries with backoff for up to eight attempts:
/// the failover would then wait a minute per place for answers that will not change, when the
/// next place may have room now.
#[derive(Debug)]
struct NoRetryForCapacity;

impl aws_sdk_ec2::config::retry::ClassifyRetry for NoRetryForCapacity {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_ec2::config::interceptors::InterceptorContext,
    ) -> aws_sdk_ec2::config::retry::RetryAction {
        let code = ctx
            .response()
            .and_then(|r| r.body().bytes())
            .map(String::from_utf8_lossy)
            .and_then(|body| super::xml_text(&body, "Code"));
        match code {
            Some(c) if is_capacity(&c) || is_quota(&c) => {
                aws_sdk_ec2::config::retry::RetryAction::RetryForbidden
            }
            _ => aws_sdk_ec2::config::retry::RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "skyform: no retry for capacity and quota errors"
    }
}

/// "Invalid IAM Instance Profile" right after the profile was made is IAM catching up.
fn profile_not_ready(e: &ProviderError) -> bool {
    e.message.contains("Invalid IAM Instance Profile")
        || e.message.contains("has no associated IAM Roles")
        || e.message.contains("Invalid IamInstanceProfile")
}

async fn root_device(p: &AwsProvider, image: &str) -> String {
    let found = p
        .ec2
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.images()
                .first()
                .and_then(|i| i.root_device_name().map(String::from))
        });
    found.unwrap_or_else(|| "/dev/xvda".to_string())
}

/// Launches one instance and returns its id.
pub(super) async fn launch(
    p: &AwsProvider,
    spec: &Spec,
    token: &str,
) -> Result<String, ProviderError> {
    let tags: Vec<Tag> = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let mut specs = vec![TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(tags.clone()))
        .build()];
    let volume_tags = match &spec.volume_tags {
        Some(v) => v
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect(),
        None => tags,
    };
    if !volume_tags.is_empty() {
        specs.push(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(volume_tags))
                .build(),
        );
    }
    let root = spec.root_volume.clone().or_else(|| {
        spec.root_volume_size_gb
            .map(|size| EbsBlockDevice::builder().volume_size(size).build())
    });
    let mut devices = match root {
        Some(ebs) => vec![BlockDeviceMapping::builder()
            .device_name(root_device(p, &spec.image_id).await)
            .ebs(ebs)
            .build()],
        None => Vec::new(),
    };
    devices.extend(spec.ebs_volumes.iter().cloned());
    let devices = Some(devices).filter(|d| !d.is_empty());
    let groups = Some(spec.security_group_ids.clone()).filter(|g| !g.is_empty());
    let interface = spec.associate_public_ip.map(|public| {
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .associate_public_ip_address(public)
            .set_subnet_id(spec.subnet_id.clone())
            .set_groups(groups.clone())
            .set_private_ip_address(spec.private_ip.clone())
            .build()
    });
    let placement = (spec.availability_zone.is_some()
        || spec.tenancy.is_some()
        || spec.placement_group.is_some())
    .then(|| {
        Placement::builder()
            .set_availability_zone(spec.availability_zone.clone())
            .set_tenancy(spec.tenancy.as_deref().map(Tenancy::from))
            .set_group_name(spec.placement_group.clone())
            .set_partition_number(spec.partition_number)
            .build()
    });
    let user_data = spec
        .user_data
        .as_ref()
        .map(|u| aws_smithy_types::base64::encode(u.as_bytes()))
        .or_else(|| spec.user_data_base64.clone());
    let market = spec.market_options.clone().or_else(|| {
        spec.use_spot.then(|| {
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .build()
        })
    });
    let out = retry_propagation(
        || async {
            p.ec2
                .run_instances()
                .image_id(&spec.image_id)
                .instance_type(InstanceType::from(spec.instance_type.as_str()))
                .min_count(1)
                .max_count(1)
                .set_subnet_id(spec.subnet_id.clone().filter(|_| interface.is_none()))
                .set_security_group_ids(groups.clone().filter(|_| interface.is_none()))
                .set_private_ip_address(spec.private_ip.clone().filter(|_| interface.is_none()))
                .set_network_interfaces(interface.clone().map(|i| vec![i]))
                .set_placement(placement.clone())
                .set_metadata_options(spec.metadata_options.clone())
                .set_monitoring(spec.monitoring.then(|| {
                    RunInstancesMonitoringEnabled::builder()
                        .enabled(true)
                        .build()
                }))
                .set_iam_instance_profile(
                    spec.iam_instance_profile
                        .as_ref()
                        .map(|n| IamInstanceProfileSpecification::builder().name(n).build()),
                )
                .set_key_name(spec.key_name.clone())
                .set_user_data(user_data.clone())
                .set_block_device_mappings(devices.clone())
                .set_instance_market_options(market.clone())
                .set_instance_initiated_shutdown_behavior(
                    spec.shutdown_behavior
                        .as_deref()
                        .map(ShutdownBehavior::from),
                )
                .set_disable_api_termination(spec.disable_api_termination)
                .set_credit_specification(
                    spec.cpu_credits
                        .as_ref()
                        .map(|c| CreditSpecificationRequest::builder().cpu_credits(c).build()),
                )
                .set_tag_specifications(Some(specs.clone()))
                .client_token(token)
                .customize()
                .config_override(
                    aws_sdk_ec2::config::Builder::default().retry_classifier(NoRetryForCapacity),
                )
                .send()
                .await
                .map_err(aws_err)
        },
        profile_not_ready,
    )
    .await?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(String::from)
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "RunInstances returned no instance")
                .after_partial_write()
        })
}

/// Instances matching `filters`, terminated ones included only when asked.
pub(super) async fn describe(
    p: &AwsProvider,
    filters: Vec<Filter>,
    with_terminated: bool,
) -> Result<Vec<aws_sdk_ec2::types::Instance>, ProviderError> {
    let mut filters = filters;
    if !with_terminated {
        filters.push(filter(
            "instance-state-name",
            &["pending", "running", "stopping", "stopped"].map(String::from),
        ));
    }
    let pages = p
        .ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    Ok(pages
        .iter()
        .flat_map(aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::reservations)
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .cloned()
        .collect())
}

pub(super) fn state_of(i: &aws_sdk_ec2::types::Instance) -> &str {
    i.state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str())
}

/// Polls until every instance is in one of `want` (an instance that is gone counts as
/// terminated), for a bounded time.
pub(super) async fn wait_for(
    p: &AwsProvider,
    ids: &[String],
    want: &[&str],
) -> Result<(), ProviderError> {
    if ids.is_empty() {
        return Ok(());
    }
    poll_until(&want.join(" or "), || async {
        let found = by_chunks("instance-id", ids, |f| describe(p, vec![f], true)).await?;
        Ok(ids
            .iter()
            .filter(|id| {
                let state = found
                    .iter()
                    .find(|i| i.instance_id() == Some(id.as_str()))
                    .map_or("terminated", state_of);
                !want.contains(&state)
            })
            .cloned()
            .collect())
    })
    .await
}

/// Polls `pending` (the ids not yet in the wanted state) with backoff until it answers none,
/// or fails once the bound from `deadline` would pass.
pub(super) async fn poll_until<F, Fut>(wanted: &str, mut pending: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, ProviderError>>,
{
    let (deadline, bound) = deadline();
    let mut delay = Duration::from_millis(200);
    loop {
        let left = pending().await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() + delay > deadline {
            return Err(ProviderError::new(
                "Timeout",
                format!("{} did not reach {wanted} within {bound}", left.join(", ")),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

pub(super) async fn start(p: &AwsProvider, ids: &[String]) -> Result<(), ProviderError> {
    if ids.is_empty() {
        return Ok(());
    }
    p.ec2
        .start_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(aws_err)?;
    wait_for(p, ids, &["running"]).await
}

pub(super) async fn stop(p: &AwsProvider, ids: &[String]) -> Result<(), ProviderError> {
    if ids.is_empty() {
        return Ok(());
    }
    p.ec2
        .stop_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(aws_err)?;
    wait_for(p, ids, &["stopped"]).await
}

pub(super) async fn terminate(p: &AwsProvider, ids: &[String]) -> Result<(), ProviderError> {
    if ids.is_empty() {
        return Ok(());
    }
    let result = p
        .ec2
        .terminate_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(aws_err);
    match result {
        Err(e) if e.code.ends_with(".NotFound") => return Ok(()),
        other => {
            other?;
        }
    }
    wait_for(p, ids, &["terminated"]).await
}

/// Sets the security groups of instances in place.
pub(super) async fn set_groups(
    p: &AwsProvider,
    ids: &[String],
    groups: &[String],
) -> Result<(), ProviderError> {
    for id in ids {
        p.ec2
            .modify_instance_attribute()
            .instance_id(id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(aws_err)?;
    }
    Ok(())
}

/// The profile name from an instance's profile ARN (`.../instance-profile/PATH/NAME`).
pub(super) fn profile_name(i: &aws_sdk_ec2::types::Instance) -> Option<String> {
    i.iam_instance_profile()
        .and_then(|p| p.arn())
        .and_then(|arn| arn.rsplit('/').next())
        .map(String::from)
}

/// Writes an instance's placement group (and, with `partition`, its partition number) as
/// `DescribeInstances` reports them into `a`, which holds the prior attributes. When the answer
/// names no group, the prior one stays: AWS names the group of every instance launched into one
/// and an instance leaves it only when stopped and moved, but moto drops `Placement.GroupName`
/// at launch and never reports it.
pub(super) fn read_placement(i: &aws_sdk_ec2::types::Instance, a: &mut Attrs, partition: bool) {
    let placement = i.placement();
    if let Some(g) = placement
        .and_then(|p| p.group_name())
        .filter(|g| !g.is_empty())
    {
        a.insert("placement_group".into(), g.into());
    }
    if let Some(n) = placement
        .and_then(aws_sdk_ec2::types::Placement::partition_number)
        .filter(|_| partition)
    {
        a.insert("placement_partition_number".into(), n.into());
    }
}

/// The instance metadata service's settings as a `metadata_options` block.
pub(super) fn metadata_block(i: &Instance) -> Option<serde_json::Value> {
    let m = i.metadata_options()?;
    Some(serde_json::json!([{
        "http_tokens": m.http_tokens().map_or("optional", |t| t.as_str()),
        "http_endpoint": m.http_endpoint().map_or("enabled", |e| e.as_str()),
        "http_put_response_hop_limit": m.http_put_response_hop_limit().unwrap_or(1),
    }]))
}

/// Applies a changed `metadata_options` block to the instances, one
/// `ModifyInstanceMetadataOptions` each (it takes one instance).
pub(super) async fn set_metadata_options(
    p: &AwsProvider,
    ids: &[String],
    prior: &Attrs,
    a: &Attrs,
) -> Result<(), ProviderError> {
    let Some(want) = block(a, "metadata_options") else {
        return Ok(());
    };
    if Some(want) == block(prior, "metadata_options") {
        return Ok(());
    }
    let m = metadata_request(want);
    for id in ids {
        p.ec2
            .modify_instance_metadata_options()
            .instance_id(id)
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_endpoint(m.http_endpoint().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .send()
            .await
            .map_err(aws_err)?;
    }
    Ok(())
}

/// The one block of a `list(object)` attribute holding at most one (`metadata_options { }`).
pub(super) fn block<'a>(
    a: &'a Attrs,
    key: &str,
) -> Option<&'a serde_json::Map<String, serde_json::Value>> {
    a.get(key)?.as_array()?.first()?.as_object()
}

pub(super) fn metadata_request(
    m: &serde_json::Map<String, serde_json::Value>,
) -> InstanceMetadataOptionsRequest {
    let text = |k: &str| m.get(k).and_then(serde_json::Value::as_str);
    InstanceMetadataOptionsRequest::builder()
        .set_http_tokens(text("http_tokens").map(HttpTokensState::from))
        .set_http_endpoint(text("http_endpoint").map(InstanceMetadataEndpointState::from))
        .set_http_put_response_hop_limit(int(m.get("http_put_response_hop_limit")))
        .build()
}

/// The volume a `root_block_device` or `ebs_block_device` block asks for.
pub(super) fn root_request(r: &serde_json::Map<String, serde_json::Value>) -> EbsBlockDevice {
    let text = |k: &str| r.get(k).and_then(serde_json::Value::as_str);
    let flag = |k: &str| r.get(k).and_then(serde_json::Value::as_bool);
    EbsBlockDevice::builder()
        .set_volume_size(int(r.get("volume_size")))
        .set_volume_type(text("volume_type").map(VolumeType::from))
        .set_iops(int(r.get("iops")))
        .set_throughput(int(r.get("throughput")))
        .set_encrypted(flag("encrypted"))
        .set_kms_key_id(text("kms_key_id").map(String::from))
        .set_delete_on_termination(flag("delete_on_termination"))
        .set_snapshot_id(text("snapshot_id").map(String::from))
        .build()
}

/// The EBS mapping of the instance's root device.
pub(super) fn root_mapping(i: &Instance) -> Option<&EbsInstanceBlockDevice> {
    let root = i.root_device_name()?;
    i.block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(root))
        .and_then(|m| m.ebs())
}

pub(super) fn root_volume(i: &Instance) -> Option<&str> {
    root_mapping(i).and_then(EbsInstanceBlockDevice::volume_id)
}

/// The named volumes, from one paged `DescribeVolumes` (none when there are no ids).
pub(super) async fn volumes(
    p: &AwsProvider,
    ids: &[String],
) -> Result<BTreeMap<String, Volume>, ProviderError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let pages = p
        .ec2
        .describe_volumes()
        .set_volume_ids(Some(ids.to_vec()))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    Ok(pages
        .iter()
        .flat_map(aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput::volumes)
        .filter_map(|v| Some((v.volume_id()?.to_string(), v.clone())))
        .collect())
}

/// Sets `root_block_device` from the instance's root volume when `volumes` holds it (it does
/// when the configuration has the block: the read asked for it).
pub(super) fn read_root_block(i: &Instance, volumes: &BTreeMap<String, Volume>, a: &mut Attrs) {
    if let Some(volume) = root_volume(i).and_then(|v| volumes.get(v)) {
        let delete = root_mapping(i).and_then(EbsInstanceBlockDevice::delete_on_termination);
        let block = root_block(a.get("root_block_device"), volume, delete);
        a.insert("root_block_device".into(), block);
    }
}

/// The root volume as a `root_block_device` block. A field the prior block left null stays
/// null: AWS fills those in (gp3's baseline IOPS, say), and the configuration did not ask.
pub(super) fn root_block(
    prior: Option<&serde_json::Value>,
    v: &Volume,
    delete_on_termination: Option<bool>,
) -> serde_json::Value {
    let live = serde_json::json!({
        "volume_size": v.size(),
        "volume_type": v.volume_type().map(VolumeType::as_str),
        "iops": v.iops(),
        "throughput": v.throughput(),
        "encrypted": v.encrypted(),
        "kms_key_id": v.kms_key_id(),
        "delete_on_termination": delete_on_termination,
    });
    let Some(prior) = prior
        .and_then(serde_json::Value::as_array)
        .and_then(|b| b.first())
        .and_then(serde_json::Value::as_object)
    else {
        return serde_json::json!([live]);
    };
    let block: serde_json::Map<String, serde_json::Value> = live
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, value)| {
            let asked = prior.get(k).is_some_and(|p| !p.is_null());
            (
                k.clone(),
                if asked {
                    value.clone()
                } else {
                    serde_json::Value::Null
                },
            )
        })
        .collect();
    serde_json::json!([block])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_wait_gives_up_at_the_operation_s_timeouts_value_and_says_so() {
        let started = Instant::now();
        let result = runtime().block_on(bounded(
            Some(Duration::from_millis(300)),
            poll_until("running", || async { Ok(vec!["i-1".to_string()]) }),
        ));
        let e = result.expect_err("never running");
        assert_eq!(e.code, "Timeout");
        assert!(
            e.message
                .contains("i-1 did not reach running within 300ms, the resource's timeouts"),
            "{}",
            e.message
        );
        // The env default (600 s unless set) would have waited on.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_bound_covers_the_whole_operation_not_each_wait() {
        let result = runtime().block_on(bounded(Some(Duration::from_millis(400)), async {
            tokio::time::sleep(Duration::from_millis(450)).await;
            poll_until("stopped", || async { Ok(vec!["i-2".to_string()]) }).await
        }));
        assert!(result.is_err_and(|e| e.code == "Timeout"));
    }

    #[test]
    fn without_timeouts_a_wait_is_bounded_by_the_environment_default() {
        let (_, bound) = runtime().block_on(async { deadline() });
        assert!(bound.ends_with("SKYFORM_INSTANCE_TIMEOUT"), "{bound}");
        let done = runtime().block_on(poll_until("running", || async { Ok(Vec::new()) }));
        assert!(done.is_ok());
    }
}
