//! `aws_internet_gateway`: attached to its VPC on create, detached before delete.

use aws_sdk_ec2::types::ResourceType;

use super::ec2_common::{
    arn, by_chunks, created, delete_with_retry, sync_tags, tag_spec, tags_json, ById,
};
use super::resource::{by_id, described, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_internet_gateway",
    schema: include_str!("../../schemas/aws_internet_gateway.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters))),
    evidence: None,
};

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    Ok(by_id(
        by_chunks("internet-gateway-id", ids, |f| read_tagged(p, vec![f])).await?,
    ))
}

/// Gateways by filters, with everything refresh reads.
async fn read_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    let gateways = p
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let mut out = Vec::new();
    for g in gateways {
        let Some(id) = g.internet_gateway_id() else {
            continue;
        };
        let mut a = Attrs::new();
        a.insert("id".into(), id.into());
        a.insert(
            "arn".into(),
            arn(p, g.owner_id(), "internet-gateway", id).into(),
        );
        if let Some(vpc) = g.attachments().iter().find_map(|at| at.vpc_id()) {
            a.insert("vpc_id".into(), vpc.into());
        }
        a.insert("tags".into(), tags_json(g.tags()));
        out.push(described(g.tags(), id, a));
    }
    Ok(out)
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let vpc = req(a, "vpc_id")?;
    let out = p
        .ec2
        .create_internet_gateway()
        .set_tag_specifications(tag_spec(ResourceType::InternetGateway, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateInternetGateway returned nothing")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        p.ec2
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(aws_err)?;
        // A second read: CreateInternetGateway answers before the attachment, and
        // AttachInternetGateway answers with nothing.
        created(
            read_all(p, std::slice::from_ref(&id)).await?,
            &id,
            "gateway",
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
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str, prior: &Attrs) -> Result<(), ProviderError> {
    let attached = read_all(p, &[id.to_string()])
        .await?
        .get(id)
        .and_then(|a| super::s(a, "vpc_id").map(String::from))
        .or_else(|| super::s(prior, "vpc_id").map(String::from));
    if let Some(vpc) = attached {
        let detached = p
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(&vpc)
            .send()
            .await
            .map_err(aws_err);
        match detached {
            Err(e) if e.code != "Gateway.NotAttached" && !e.code.ends_with(".NotFound") => {
                return Err(e)
            }
            _ => {}
        }
    }
    delete_with_retry(|| async {
        p.ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    })
    .await
}
