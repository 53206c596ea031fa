//! `aws_subnet`, `data "aws_subnet"` and `data "aws_subnets"`: one `DescribeSubnets` for every
//! subnet in state, and one per lookup.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};

use super::ec2_common::{
    arn, block_filters, bool_of, by_chunks, created, delete_with_retry, describe_filters, filter,
    sync_tags, tag_spec, tags_json, ById,
};
use super::resource::{by_id, described, DataSource, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_subnet",
    schema: include_str!("../../schemas/aws_subnet.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_filtered(p, filters))),
    evidence: None,
};

pub(super) const DATA_SUBNET: DataSource = DataSource {
    name: "aws_subnet",
    schema: include_str!("../../schemas/data/aws_subnet.json"),
    read: |p, args| Box::pin(find_one(p, args)),
};

pub(super) const DATA_SUBNETS: DataSource = DataSource {
    name: "aws_subnets",
    schema: include_str!("../../schemas/data/aws_subnets.json"),
    read: |p, args| Box::pin(find(p, args)),
};

pub(super) const DATA_AVAILABILITY_ZONES: DataSource = DataSource {
    name: "aws_availability_zones",
    schema: include_str!("../../schemas/data/aws_availability_zones.json"),
    read: |p, args| Box::pin(zones(p, args)),
};

async fn read_filtered(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    let subnets = p
        .ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let mut out = Vec::new();
    for sn in subnets {
        let Some(id) = sn.subnet_id() else { continue };
        let mut a = Attrs::new();
        a.insert("id".into(), id.into());
        a.insert(
            "arn".into(),
            sn.subnet_arn()
                .map_or_else(|| arn(p, sn.owner_id(), "subnet", id), String::from)
                .into(),
        );
        a.insert("vpc_id".into(), sn.vpc_id().unwrap_or_default().into());
        a.insert(
            "cidr_block".into(),
            sn.cidr_block().unwrap_or_default().into(),
        );
        a.insert(
            "availability_zone".into(),
            sn.availability_zone().unwrap_or_default().into(),
        );
        a.insert(
            "map_public_ip_on_launch".into(),
            sn.map_public_ip_on_launch().unwrap_or(false).into(),
        );
        a.insert("tags".into(), tags_json(sn.tags()));
        out.push(described(sn.tags(), id, a));
    }
    Ok(out)
}

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    Ok(by_id(
        by_chunks("subnet-id", ids, |f| read_filtered(p, vec![f])).await?,
    ))
}

async fn set_public(p: &AwsProvider, id: &str, want: bool) -> Result<(), ProviderError> {
    p.ec2
        .modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(want).build())
        .send()
        .await
        .map_err(aws_err)?;
    Ok(())
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let out = p
        .ec2
        .create_subnet()
        .vpc_id(req(a, "vpc_id")?)
        .cidr_block(req(a, "cidr_block")?)
        .set_availability_zone(s(a, "availability_zone").map(String::from))
        .set_tag_specifications(tag_spec(ResourceType::Subnet, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .subnet()
        .and_then(|sn| sn.subnet_id())
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateSubnet returned no subnet")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        if bool_of(a, "map_public_ip_on_launch") == Some(true) {
            set_public(p, &id, true).await?;
        }
        // A second read: CreateSubnet answers before ModifySubnetAttribute, which answers
        // with nothing.
        created(read_all(p, std::slice::from_ref(&id)).await?, &id, "subnet")
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut result = prior.clone();
    let want = bool_of(a, "map_public_ip_on_launch").unwrap_or(false);
    if bool_of(prior, "map_public_ip_on_launch") != Some(want) {
        set_public(p, id, want).await?;
        result.insert("map_public_ip_on_launch".into(), want.into());
    }
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    delete_with_retry(|| async {
        p.ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    })
    .await
}

/// `data "aws_subnets"`: the ids of the subnets of a VPC, with tags, and/or matching `filter`
/// blocks.
pub(super) async fn find(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let mut filters = block_filters(args);
    if let Some(vpc) = s(args, "vpc_id") {
        filters.push(filter("vpc-id", &[vpc.to_string()]));
    }
    for (k, v) in super::tags_of(args) {
        filters.push(filter(&format!("tag:{k}"), &[v]));
    }
    let found = read_filtered(p, filters).await?;
    let mut a = args.clone();
    a.insert("id".into(), p.region.clone().into());
    a.insert(
        "ids".into(),
        serde_json::Value::from(by_id(found).into_keys().collect::<Vec<_>>()),
    );
    Ok(a)
}

/// `data "aws_subnet"`: exactly one subnet, every given argument a filter, as Terraform's.
pub(super) async fn find_one(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let mut filters = block_filters(args);
    let mut described = describe_filters(&filters);
    for (arg, name) in [
        ("id", "subnet-id"),
        ("vpc_id", "vpc-id"),
        ("availability_zone", "availability-zone"),
        ("availability_zone_id", "availability-zone-id"),
        ("cidr_block", "cidr-block"),
        ("state", "state"),
    ] {
        if let Some(v) = s(args, arg) {
            filters.push(filter(name, &[v.to_string()]));
            described.push(format!("{arg} = {v:?}"));
        }
    }
    if let Some(d) = bool_of(args, "default_for_az") {
        filters.push(filter("default-for-az", &[d.to_string()]));
        described.push(format!("default_for_az = {d}"));
    }
    for (k, v) in super::tags_of(args) {
        filters.push(filter(&format!("tag:{k}"), std::slice::from_ref(&v)));
        described.push(format!("tags.{k} = {v:?}"));
    }
    let out = p
        .ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let [sn] = out.as_slice() else {
        return Err(ProviderError::new(
            "NotExactlyOne",
            format!(
                "{} subnets match {} in {}; exactly one must",
                out.len(),
                if described.is_empty() {
                    "no argument".to_string()
                } else {
                    described.join(", ")
                },
                p.region
            ),
        ));
    };
    let id = sn.subnet_id().unwrap_or_default();
    let mut a = args.clone();
    a.insert("id".into(), id.into());
    a.insert(
        "arn".into(),
        sn.subnet_arn()
            .map_or_else(|| arn(p, sn.owner_id(), "subnet", id), String::from)
            .into(),
    );
    for (key, value) in [
        ("vpc_id", sn.vpc_id()),
        ("availability_zone", sn.availability_zone()),
        ("availability_zone_id", sn.availability_zone_id()),
        ("cidr_block", sn.cidr_block()),
        (
            "state",
            sn.state().map(aws_sdk_ec2::types::SubnetState::as_str),
        ),
        ("owner_id", sn.owner_id()),
    ] {
        a.insert(key.into(), value.unwrap_or_default().into());
    }
    a.insert(
        "default_for_az".into(),
        sn.default_for_az().unwrap_or(false).into(),
    );
    a.insert(
        "map_public_ip_on_launch".into(),
        sn.map_public_ip_on_launch().unwrap_or(false).into(),
    );
    a.insert(
        "available_ip_address_count".into(),
        sn.available_ip_address_count().unwrap_or(0).into(),
    );
    a.insert("tags".into(), tags_json(sn.tags()));
    Ok(a)
}

/// `data "aws_availability_zones"`: the zones of the region in the given `state`, by default
/// the available ones. Terraform tutorials write `state = "available"`.
pub(super) async fn zones(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let state = s(args, "state").unwrap_or("available");
    let out = p
        .ec2
        .describe_availability_zones()
        .filters(filter("state", &[state.to_string()]))
        .send()
        .await
        .map_err(aws_err)?;
    let mut names: Vec<String> = out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(String::from))
        .collect();
    names.sort();
    let mut a = Attrs::new();
    a.insert("id".into(), p.region.clone().into());
    a.insert("names".into(), names.into());
    Ok(a)
}
