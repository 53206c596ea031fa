//! `aws_instance`: one EC2 instance, with the node code clusters use.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, BlockDeviceMapping, EbsInstanceBlockDevice, Instance,
    InstanceAttributeName, InstanceCreditSpecificationRequest, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, MarketType, MonitoringState, SpotInstanceType, SpotMarketOptions,
    Volume,
};

use super::ec2_common::{
    arn, bool_of, by_chunks, filter, retag, string_set, strings, sync_tags, tags_json, ById,
};
use super::nodes::{
    self, block, client_token, describe, metadata_block, metadata_request, profile_name,
    read_root_block, root_block, root_request, root_volume, set_metadata_options, volumes, Spec,
};
use super::resource::{kept_or_listed, Raws, Read, Recover, Resource};
use super::{after_made, aws_err, req, s, tags_of, AwsProvider};
use crate::engine::provider::{OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_instance",
    schema: include_str!("../../schemas/aws_instance.json"),
    read: Read::Objects(|p, priors, raws| Box::pin(read_listed(p, priors, raws))),
    create: |p, a, ctx| Box::pin(create(p, a, ctx)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(super::cluster::tagged_nodes(p, filters, false))),
    evidence: None,
};

/// Every instance in `priors`, from one `DescribeInstances`.
pub(super) async fn read_all(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    read_listed(p, priors, Raws::new()).await
}

/// Every instance in `priors`: those the lineage scan listed (`raws`) as it listed them, the
/// others from one `DescribeInstances` by id; `priors` supply what AWS does not show again
/// (user data).
async fn read_listed(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
    raws: Raws,
) -> Result<ById, ProviderError> {
    let found: Vec<Instance> = kept_or_listed(priors, raws, |missing| async move {
        by_chunks("instance-id", &missing, |f| describe(p, vec![f], false)).await
    })
    .await?;
    // DescribeInstances names the volumes but not their size or type: one DescribeVolumes for
    // the volumes of every instance whose configuration has a root_block_device (its root
    // volume) or an ebs_block_device (the others), none otherwise.
    let mut wanted: Vec<String> = Vec::new();
    for i in &found {
        let Some((_, a)) = priors
            .iter()
            .find(|(id, _)| Some(id.as_str()) == i.instance_id())
        else {
            continue;
        };
        if has_block(a, "root_block_device") {
            wanted.extend(root_volume(i).map(String::from));
        }
        if a.contains_key("ebs_block_device") {
            wanted
                .extend(extra_mappings(i).filter_map(|(_, ebs)| ebs.volume_id().map(String::from)));
        }
    }
    let volumes = volumes(p, &wanted).await?;
    let mut out = ById::new();
    for i in found {
        let Some(id) = i.instance_id() else { continue };
        let mut a = priors
            .iter()
            .find(|(pid, _)| pid == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        a.insert("id".into(), id.into());
        a.insert("arn".into(), arn(p, None, "instance", id).into());
        a.insert("ami".into(), i.image_id().unwrap_or_default().into());
        a.insert(
            "instance_type".into(),
            i.instance_type().map_or("", |t| t.as_str()).into(),
        );
        a.insert("subnet_id".into(), i.subnet_id().unwrap_or_default().into());
        a.insert(
            "vpc_security_group_ids".into(),
            string_set(
                i.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from)),
            ),
        );
        match profile_name(&i) {
            Some(n) => a.insert("iam_instance_profile".into(), n.into()),
            None => a.remove("iam_instance_profile"),
        };
        match i.key_name() {
            Some(k) => a.insert("key_name".into(), k.into()),
            None => a.remove("key_name"),
        };
        a.insert(
            "private_ip".into(),
            i.private_ip_address().unwrap_or_default().into(),
        );
        let public_ip = i.public_ip_address().unwrap_or_default();
        a.insert("public_ip".into(), public_ip.into());
        a.insert(
            "associate_public_ip_address".into(),
            (!public_ip.is_empty()).into(),
        );
        a.insert(
            "private_dns".into(),
            i.private_dns_name().unwrap_or_default().into(),
        );
        a.insert(
            "public_dns".into(),
            i.public_dns_name().unwrap_or_default().into(),
        );
        let primary = i
            .network_interfaces()
            .iter()
            .find(|n| {
                n.attachment()
                    .and_then(aws_sdk_ec2::types::InstanceNetworkInterfaceAttachment::device_index)
                    == Some(0)
            })
            .and_then(|n| n.network_interface_id());
        a.insert(
            "primary_network_interface_id".into(),
            primary.unwrap_or_default().into(),
        );
        nodes::read_placement(&i, &mut a, true);
        let placement = i.placement();
        a.insert(
            "availability_zone".into(),
            placement
                .and_then(|p| p.availability_zone())
                .unwrap_or_default()
                .into(),
        );
        a.insert(
            "tenancy".into(),
            placement
                .and_then(|p| p.tenancy())
                .map_or("default", |t| t.as_str())
                .into(),
        );
        a.insert(
            "monitoring".into(),
            matches!(
                i.monitoring().and_then(|m| m.state()),
                Some(MonitoringState::Enabled | MonitoringState::Pending)
            )
            .into(),
        );
        if let Some(m) = metadata_block(&i) {
            a.insert("metadata_options".into(), m);
        }
        if a.get("user_data").is_some_and(is_terraform_hash) {
            let script = Box::pin(user_data_of(p, id)).await?;
            match String::from_utf8(script) {
                Ok(text) => a.insert("user_data".into(), text.into()),
                Err(e) => {
                    a.remove("user_data");
                    a.insert(
                        "user_data_base64".into(),
                        aws_smithy_types::base64::encode(e.into_bytes()).into(),
                    )
                }
            };
        }
        read_root_block(&i, &volumes, &mut a);
        if a.contains_key("ebs_block_device") {
            let blocks = ebs_blocks(a.get("ebs_block_device"), &i, &volumes);
            a.insert("ebs_block_device".into(), blocks);
        }
        a.insert("tags".into(), tags_json(i.tags()));
        out.insert(id.to_string(), a);
    }
    Ok(out)
}

pub(super) async fn create(
    p: &AwsProvider,
    a: &Attrs,
    ctx: &OpContext,
) -> Result<(String, Attrs), ProviderError> {
    let spec = Spec {
        image_id: req(a, "ami")?.to_string(),
        instance_type: req(a, "instance_type")?.to_string(),
        subnet_id: s(a, "subnet_id").map(String::from),
        security_group_ids: strings(a.get("vpc_security_group_ids")),
        iam_instance_profile: s(a, "iam_instance_profile").map(String::from),
        key_name: s(a, "key_name").map(String::from),
        user_data: s(a, "user_data").map(String::from),
        tags: tags_of(a),
        availability_zone: s(a, "availability_zone").map(String::from),
        tenancy: s(a, "tenancy").map(String::from),
        placement_group: s(a, "placement_group").map(String::from),
        partition_number: super::ec2_common::int(a.get("placement_partition_number")),
        private_ip: s(a, "private_ip").map(String::from),
        associate_public_ip: bool_of(a, "associate_public_ip_address"),
        metadata_options: block(a, "metadata_options").map(metadata_request),
        root_volume: block(a, "root_block_device").map(root_request),
        monitoring: bool_of(a, "monitoring").unwrap_or(false),
        user_data_base64: s(a, "user_data_base64").map(String::from),
        shutdown_behavior: s(a, "instance_initiated_shutdown_behavior").map(String::from),
        disable_api_termination: bool_of(a, "disable_api_termination"),
        market_options: block(a, "instance_market_options").map(market_request),
        cpu_credits: cpu_credits(a),
        volume_tags: volume_tags(a),
        ebs_volumes: ebs_requests(a),
        ..Spec::default()
    };
    let token = client_token(&ctx.lineage, &ctx.addr.to_string(), 0, 0);
    let id = nodes::launch(p, &spec, &token).await?;
    after_made(async {
        nodes::wait_for(p, std::slice::from_ref(&id), &["running"]).await?;
        // A second read: RunInstances answers while the instance is pending, before its
        // addresses and volumes are known.
        let attrs = read_all(p, &[(id.clone(), a.clone())])
            .await?
            .remove(&id)
            .ok_or_else(|| ProviderError::new("NotFound", format!("{id} vanished after launch")))?;
        Ok((id.clone(), attrs))
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let script = user_data(a)?;
    if script != user_data(prior)? {
        // As Terraform does: AWS takes new user data only from a stopped instance.
        let ids = [id.to_string()];
        nodes::stop(p, &ids).await?;
        p.ec2
            .modify_instance_attribute()
            .instance_id(id)
            // The Attribute/Value form, which takes the script base64-encoded as RunInstances
            // does: moto reads the UserData blob form as base64 twice over.
            .attribute(InstanceAttributeName::UserData)
            .value(aws_smithy_types::base64::encode(script.unwrap_or_default()))
            .send()
            .await
            .map_err(aws_err)?;
        nodes::start(p, &ids).await?;
    }
    let want = strings(a.get("vpc_security_group_ids"));
    if !want.is_empty()
        && string_set(want.clone()) != string_set(strings(prior.get("vpc_security_group_ids")))
    {
        nodes::set_groups(p, &[id.to_string()], &want).await?;
    }
    set_metadata_options(p, &[id.to_string()], prior, a).await?;
    let monitoring = bool_of(a, "monitoring").unwrap_or(false);
    if monitoring != bool_of(prior, "monitoring").unwrap_or(false) {
        if monitoring {
            p.ec2
                .monitor_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(aws_err)?;
        } else {
            p.ec2
                .unmonitor_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(aws_err)?;
        }
    }
    if a.get("disable_api_termination") != prior.get("disable_api_termination") {
        p.ec2
            .modify_instance_attribute()
            .instance_id(id)
            .disable_api_termination(
                AttributeBooleanValue::builder()
                    .value(bool_of(a, "disable_api_termination").unwrap_or(false))
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err)?;
    }
    if let Some(behavior) = s(a, "instance_initiated_shutdown_behavior")
        .filter(|b| Some(*b) != s(prior, "instance_initiated_shutdown_behavior"))
    {
        p.ec2
            .modify_instance_attribute()
            .instance_id(id)
            // The Attribute/Value form: moto implements only this one for this attribute.
            .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
            .value(behavior)
            .send()
            .await
            .map_err(aws_err)?;
    }
    if let Some(cpu) = cpu_credits(a).filter(|c| Some(c) != cpu_credits(prior).as_ref()) {
        p.ec2
            .modify_instance_credit_specification()
            .instance_credit_specifications(
                InstanceCreditSpecificationRequest::builder()
                    .instance_id(id)
                    .cpu_credits(cpu)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err)?;
    }
    if a.get("volume_tags") != prior.get("volume_tags") {
        let found = describe(p, vec![filter("instance-id", &[id.to_string()])], false).await?;
        let volume_ids: Vec<String> = found
            .iter()
            .flat_map(Instance::block_device_mappings)
            .filter_map(|m| m.ebs()?.volume_id().map(String::from))
            .collect();
        let as_tags = |x: &Attrs| -> Attrs {
            std::iter::once((
                "tags".to_string(),
                x.get("volume_tags").cloned().unwrap_or_default(),
            ))
            .collect()
        };
        retag(p, &volume_ids, &as_tags(prior), &as_tags(a)).await?;
    }
    let mut result = read_all(p, &[(id.to_string(), a.clone())])
        .await?
        .remove(id)
        .unwrap_or_else(|| prior.clone());
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    nodes::terminate(p, &[id.to_string()]).await
}

/// Whether a prior `user_data` is 40 hexadecimal digits: the SHA-1 that terraform-provider-aws
/// records instead of the script, as an instance from `state import-terraform` has it.
fn is_terraform_hash(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The instance's start-up script as AWS keeps it. `DescribeInstances` does not show it, so this
/// is one `DescribeInstanceAttribute`, made only for an instance whose prior holds Terraform's
/// hash of it (once, at import: the state then holds the script).
async fn user_data_of(p: &AwsProvider, id: &str) -> Result<Vec<u8>, ProviderError> {
    let out = p
        .ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(aws_err)?;
    let Some(text) = out.user_data().and_then(|v| v.value()) else {
        return Ok(Vec::new());
    };
    aws_smithy_types::base64::decode(text).map_err(|e| {
        ProviderError::new(
            "InvalidUserData",
            format!("the user data AWS returned for {id} is not base64: {e}"),
        )
    })
}

/// The start-up script's bytes, from `user_data` (text) or `user_data_base64`.
fn user_data(a: &Attrs) -> Result<Option<Vec<u8>>, ProviderError> {
    if let Some(text) = s(a, "user_data") {
        return Ok(Some(text.as_bytes().to_vec()));
    }
    s(a, "user_data_base64")
        .map(|b| {
            aws_smithy_types::base64::decode(b).map_err(|e| {
                ProviderError::new(
                    "InvalidParameterValue",
                    format!("user_data_base64 is not base64: {e}"),
                )
            })
        })
        .transpose()
}

fn cpu_credits(a: &Attrs) -> Option<String> {
    block(a, "credit_specification")?
        .get("cpu_credits")?
        .as_str()
        .map(String::from)
}

/// `volume_tags` as a map, `None` when unset (the volumes then carry the instance's tags).
fn volume_tags(a: &Attrs) -> Option<BTreeMap<String, String>> {
    let tags = a.get("volume_tags")?.as_object()?;
    Some(
        tags.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

fn market_request(m: &serde_json::Map<String, serde_json::Value>) -> InstanceMarketOptionsRequest {
    let spot = m
        .get("spot_options")
        .and_then(serde_json::Value::as_array)
        .and_then(|b| b.first())
        .and_then(serde_json::Value::as_object);
    let text = |o: &serde_json::Map<String, serde_json::Value>, k: &str| {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .map(String::from)
    };
    InstanceMarketOptionsRequest::builder()
        .set_market_type(text(m, "market_type").map(|t| MarketType::from(t.as_str())))
        .set_spot_options(spot.map(|o| {
            SpotMarketOptions::builder()
                .set_max_price(text(o, "max_price"))
                .set_instance_interruption_behavior(
                    text(o, "instance_interruption_behavior")
                        .map(|b| InstanceInterruptionBehavior::from(b.as_str())),
                )
                .set_spot_instance_type(
                    text(o, "spot_instance_type").map(|t| SpotInstanceType::from(t.as_str())),
                )
                .build()
        }))
        .build()
}

fn has_block(a: &Attrs, key: &str) -> bool {
    block(a, key).is_some()
}

/// The `ebs_block_device` blocks as launch mappings.
fn ebs_requests(a: &Attrs) -> Vec<BlockDeviceMapping> {
    a.get("ebs_block_device")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_object)
        .map(|b| {
            BlockDeviceMapping::builder()
                .set_device_name(
                    b.get("device_name")
                        .and_then(serde_json::Value::as_str)
                        .map(String::from),
                )
                .ebs(root_request(b))
                .build()
        })
        .collect()
}

/// The EBS mappings other than the root's, with their device names.
fn extra_mappings(i: &Instance) -> impl Iterator<Item = (&str, &EbsInstanceBlockDevice)> {
    let root = i.root_device_name();
    i.block_device_mappings().iter().filter_map(move |m| {
        let name = m.device_name()?;
        (Some(name) != root).then_some((name, m.ebs()?))
    })
}

/// The attached non-root volumes as `ebs_block_device` blocks, each shaped like its prior
/// block of the same device name (fields it left null stay null, as for the root volume).
fn ebs_blocks(
    prior: Option<&serde_json::Value>,
    i: &Instance,
    volumes: &BTreeMap<String, Volume>,
) -> serde_json::Value {
    let priors: Vec<&serde_json::Value> = prior
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let blocks = extra_mappings(i)
        .filter_map(|(device, ebs)| {
            let volume = volumes.get(ebs.volume_id()?)?;
            let like = priors
                .iter()
                .find(|b| b.get("device_name").and_then(serde_json::Value::as_str) == Some(device))
                .map(|b| serde_json::json!([b]));
            let mut block = root_block(like.as_ref(), volume, ebs.delete_on_termination());
            let fields = block.get_mut(0)?.as_object_mut()?;
            fields.insert("device_name".into(), device.into());
            let asked = |k: &str| {
                like.as_ref()
                    .and_then(|l| l.get(0)?.get(k))
                    .is_some_and(|v| !v.is_null())
            };
            let snapshot = volume
                .snapshot_id()
                .filter(|s| !s.is_empty() && asked("snapshot_id"));
            fields.insert("snapshot_id".into(), snapshot.into());
            block.get(0).cloned()
        })
        .collect();
    serde_json::Value::Array(blocks)
}
