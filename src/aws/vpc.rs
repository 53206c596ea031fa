//! `aws_vpc` and `data "aws_vpc"`. One `DescribeVpcs` for every VPC in state (the lineage
//! scan's listing, in a plan); the two DNS settings are per-VPC attributes in EC2's API, so
//! they cost two `DescribeVpcAttribute` calls per VPC. The default security group and main
//! route table are looked up when a VPC is first read and then kept from the prior attributes
//! (`attrs_of` says why).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Tenancy, Vpc, VpcAttributeName};
use serde_json::json;

use super::ec2_common::{
    arn, block_filters, bool_of, by_chunks, created, delete_with_retry, describe_filters, filter,
    sync_tags, tag_spec, tags_json, ById,
};
use super::resource::{kept_or_listed, listed, DataSource, Raws, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_vpc",
    schema: include_str!("../../schemas/aws_vpc.json"),
    read: Read::Objects(|p, priors, raws| Box::pin(read_listed(p, priors, raws))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(list_tagged(p, filters))),
    evidence: None,
};

pub(super) const DATA: DataSource = DataSource {
    name: "aws_vpc",
    schema: include_str!("../../schemas/data/aws_vpc.json"),
    read: |p, args| Box::pin(find(p, args)),
};

async fn dns(p: &AwsProvider, id: &str, name: VpcAttributeName) -> Result<bool, ProviderError> {
    let out = p
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(name.clone())
        .send()
        .await
        .map_err(aws_err)?;
    let value = match name {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value
        .and_then(AttributeBooleanValue::value)
        .unwrap_or(false))
}

/// The VPCs matching `filters`, every page.
async fn list(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Vpc>, ProviderError> {
    p.ec2
        .describe_vpcs()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)
}

/// The VPCs matching `filters`, each kept whole for the refresh (`read_listed`).
async fn list_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    Ok(list(p, filters)
        .await?
        .iter()
        .map(|v| listed(v.tags(), v.vpc_id(), v.clone()))
        .collect())
}

/// The ids of the objects, one per VPC of `ids`, that one paged Describe call finds with
/// `filters` (the VPC's default group, its main route table).
async fn lookup(
    p: &AwsProvider,
    ids: &[String],
    what: Lookup,
) -> Result<BTreeMap<String, String>, ProviderError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let pairs = by_chunks("vpc-id", ids, |by_vpc| async move {
        Ok::<Vec<(String, String)>, ProviderError>(match what {
            Lookup::DefaultGroup => p
                .ec2
                .describe_security_groups()
                .filters(by_vpc)
                .filters(filter("group-name", &["default".to_string()]))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(aws_err)?
                .iter()
                .filter_map(|g| Some((g.vpc_id()?.to_string(), g.group_id()?.to_string())))
                .collect(),
            Lookup::MainRouteTable => p
                .ec2
                .describe_route_tables()
                .filters(by_vpc)
                .filters(filter("association.main", &["true".to_string()]))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(aws_err)?
                .iter()
                .filter_map(|r| Some((r.vpc_id()?.to_string(), r.route_table_id()?.to_string())))
                .collect(),
        })
    })
    .await?;
    Ok(pairs.into_iter().collect())
}

/// What a VPC's attributes name that `DescribeVpcs` does not show.
#[derive(Clone, Copy)]
enum Lookup {
    DefaultGroup,
    MainRouteTable,
}

/// The attributes of `vpcs`, with everything the schema computes, by id. EC2 has no batch
/// form of `DescribeVpcAttribute`: the two DNS settings cost two calls per VPC.
///
/// `default_security_group_id` and `main_route_table_id` are kept from the prior attributes
/// when those hold them, and looked up (one call each for all the VPCs lacking them) only
/// when they do not: at create, import, adoption and for `data "aws_vpc"`. A VPC's default
/// security group is made with it and never replaced, and its main route table changes only
/// by `ReplaceRouteTableAssociation`, which no skyform resource calls. Reading them at every
/// refresh would cost a `DescribeSecurityGroups` and a `DescribeRouteTables` beside the
/// security groups' and route tables' own listings; those listings cannot serve it for free,
/// since a configuration need not hold any security group or route table (the scan lists
/// only the types it holds), and a default group or main table is not tagged with the
/// lineage anyway.
async fn attrs_of(
    p: &AwsProvider,
    vpcs: &[Vpc],
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    let prior_of = |id: &str, key: &str| {
        priors
            .iter()
            .find(|(pid, _)| pid == id)
            .and_then(|(_, a)| s(a, key))
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let mut looked_up = BTreeMap::new();
    for (key, what) in [
        ("default_security_group_id", Lookup::DefaultGroup),
        ("main_route_table_id", Lookup::MainRouteTable),
    ] {
        let lacking: Vec<String> = vpcs
            .iter()
            .filter_map(Vpc::vpc_id)
            .filter(|id| prior_of(id, key).is_none())
            .map(String::from)
            .collect();
        looked_up.insert(key, lookup(p, &lacking, what).await?);
    }
    let mut out = ById::new();
    for v in vpcs {
        let Some(id) = v.vpc_id() else { continue };
        let mut a = Attrs::new();
        a.insert("id".into(), id.into());
        a.insert("arn".into(), arn(p, v.owner_id(), "vpc", id).into());
        a.insert(
            "cidr_block".into(),
            v.cidr_block().unwrap_or_default().into(),
        );
        a.insert(
            "instance_tenancy".into(),
            v.instance_tenancy()
                .map_or("default", |t| t.as_str())
                .into(),
        );
        a.insert("default".into(), v.is_default().unwrap_or(false).into());
        a.insert("tags".into(), tags_json(v.tags()));
        a.insert(
            "enable_dns_support".into(),
            dns(p, id, VpcAttributeName::EnableDnsSupport).await?.into(),
        );
        a.insert(
            "enable_dns_hostnames".into(),
            dns(p, id, VpcAttributeName::EnableDnsHostnames)
                .await?
                .into(),
        );
        for (key, found) in &looked_up {
            if let Some(value) = prior_of(id, key).or_else(|| found.get(id).cloned()) {
                a.insert((*key).into(), value.into());
            }
        }
        out.insert(id.to_string(), a);
    }
    Ok(out)
}

/// Every VPC in `priors`, from one `DescribeVpcs` by id.
pub(super) async fn read_all(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    read_listed(p, priors, Raws::new()).await
}

/// Every VPC in `priors`: those the lineage scan listed (`raws`) as it listed them, the others
/// from one `DescribeVpcs` by id. The data source's `default` is not an attribute of the
/// resource.
async fn read_listed(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
    raws: Raws,
) -> Result<ById, ProviderError> {
    let vpcs: Vec<Vpc> = kept_or_listed(priors, raws, |missing| async move {
        by_chunks("vpc-id", &missing, |f| list(p, vec![f])).await
    })
    .await?;
    let mut out = attrs_of(p, &vpcs, priors).await?;
    for a in out.values_mut() {
        a.remove("default");
    }
    Ok(out)
}

async fn set_dns(
    p: &AwsProvider,
    id: &str,
    a: &Attrs,
    prior: Option<&Attrs>,
) -> Result<(), ProviderError> {
    for (key, name) in [
        ("enable_dns_support", VpcAttributeName::EnableDnsSupport),
        ("enable_dns_hostnames", VpcAttributeName::EnableDnsHostnames),
    ] {
        let Some(want) = bool_of(a, key) else {
            continue;
        };
        if prior.and_then(|pr| bool_of(pr, key)) == Some(want) {
            continue;
        }
        let value = AttributeBooleanValue::builder().value(want).build();
        // EC2 takes one attribute per call.
        let call = p.ec2.modify_vpc_attribute().vpc_id(id);
        let call = match name {
            VpcAttributeName::EnableDnsHostnames => call.enable_dns_hostnames(value),
            _ => call.enable_dns_support(value),
        };
        call.send().await.map_err(aws_err)?;
    }
    Ok(())
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let cidr = req(a, "cidr_block")?;
    let out = p
        .ec2
        .create_vpc()
        .cidr_block(cidr)
        .instance_tenancy(Tenancy::from(s(a, "instance_tenancy").unwrap_or("default")))
        .set_tag_specifications(tag_spec(ResourceType::Vpc, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateVpc returned no VPC").after_partial_write()
        })?
        .to_string();
    // AWS's own defaults are support on, host names off.
    let defaults = Attrs::from_iter([
        ("enable_dns_support".to_string(), json!(true)),
        ("enable_dns_hostnames".to_string(), json!(false)),
    ]);
    after_made(async {
        set_dns(p, &id, a, Some(&defaults)).await?;
        // A second read: the DNS settings, the default security group and the main route
        // table are in no create answer.
        created(
            read_all(p, &[(id.clone(), Attrs::new())]).await?,
            &id,
            "VPC",
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
    let mut result = prior.clone();
    set_dns(p, id, a, Some(prior)).await?;
    for key in ["enable_dns_support", "enable_dns_hostnames"] {
        if let Some(v) = a.get(key) {
            result.insert(key.into(), v.clone());
        }
    }
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    delete_with_retry(|| async {
        p.ec2
            .delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    })
    .await
}

/// `data "aws_vpc"`: exactly one VPC by id, by `default = true`, by tags, or by `filter` blocks.
pub(super) async fn find(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let mut filters = block_filters(args);
    let mut described = describe_filters(&filters);
    if let Some(id) = s(args, "id") {
        filters.push(filter("vpc-id", &[id.to_string()]));
        described.push(format!("id = {id:?}"));
    }
    if let Some(d) = bool_of(args, "default") {
        filters.push(filter("is-default", &[d.to_string()]));
        described.push(format!("default = {d}"));
    }
    for (k, v) in super::tags_of(args) {
        filters.push(filter(&format!("tag:{k}"), std::slice::from_ref(&v)));
        described.push(format!("tags.{k} = {v:?}"));
    }
    if filters.is_empty() {
        return Err(ProviderError::new(
            "NoFilter",
            "data \"aws_vpc\" needs id, default = true, tags or filter blocks to choose a VPC",
        ));
    }
    let found = attrs_of(p, &list(p, filters).await?, &[]).await?;
    if found.len() != 1 {
        return Err(ProviderError::new(
            "NotExactlyOne",
            format!(
                "{} VPCs match {} in {}; exactly one must",
                found.len(),
                described.join(", "),
                p.region
            ),
        ));
    }
    Ok(found.into_values().next().unwrap_or_default())
}
