//! `aws_route_table` (with inline routes, a set changed in place) and
//! `aws_route_table_association`. One `DescribeRouteTables` serves both types at refresh.

use aws_sdk_ec2::types::ResourceType;
use serde_json::json;

use super::ec2_common::{
    arn, by_chunks, created, delete_with_retry, filter, gone_is_done, sync_tags, tag_spec,
    tags_json, ById,
};
use super::resource::{adopted, by_id, described, read_back, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_route_table",
    schema: include_str!("../../schemas/aws_route_table.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters))),
    evidence: None,
};

/// An association carries no tags: it is found again by its subnet and table.
pub(super) const ASSOCIATION_TYPE: Resource = Resource {
    name: "aws_route_table_association",
    schema: include_str!("../../schemas/aws_route_table_association.json"),
    read: Read::Describe(|p, ids| Box::pin(read_associations(p, ids))),
    create: |p, a, _| Box::pin(associate(p, a)),
    update: None,
    delete: |p, id, _| Box::pin(disassociate(p, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find_association(p, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

/// Where an inline route sends its traffic: the schema's target fields, one set per route.
const TARGETS: [&str; 2] = ["gateway_id", "nat_gateway_id"];

/// An inline route: its destination, and the target field with its value.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    cidr: String,
    target: &'static str,
    to: String,
}

/// A route as the schema has it: every target field present, the unused ones null, as the
/// configuration's blocks are after conversion, so that the two compare equal.
fn route(r: &Route) -> serde_json::Value {
    let mut v = json!({"cidr_block": r.cidr});
    for target in TARGETS {
        v[target] = if target == r.target {
            r.to.clone().into()
        } else {
            serde_json::Value::Null
        };
    }
    v
}

fn routes_of(a: &Attrs) -> Vec<Route> {
    a.get("route")
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|r| {
                    let (target, to) = TARGETS
                        .iter()
                        .find_map(|t| Some((*t, r.get(*t)?.as_str().filter(|v| !v.is_empty())?)))?;
                    Some(Route {
                        cidr: r.get("cidr_block")?.as_str()?.to_string(),
                        target,
                        to: to.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses a route block without a target: AWS would refuse it only after the table exists.
fn check_targets(a: &Attrs) -> Result<(), ProviderError> {
    let blocks = a
        .get("route")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    if routes_of(a).len() < blocks {
        return Err(ProviderError::new(
            "InvalidRoute",
            "every route block needs gateway_id or nat_gateway_id",
        ));
    }
    Ok(())
}

/// Route tables by filters, every page.
pub(super) async fn describe(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    p.ec2
        .describe_route_tables()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)
}

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    Ok(by_id(
        by_chunks("route-table-id", ids, |f| read_tagged(p, vec![f])).await?,
    ))
}

/// Route tables by filters, with everything refresh reads.
async fn read_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    let mut out = Vec::new();
    for t in describe(p, filters).await? {
        let Some(id) = t.route_table_id() else {
            continue;
        };
        // The VPC's local route is AWS's own; only routes someone created are configuration.
        let mut routes: Vec<serde_json::Value> = t
            .routes()
            .iter()
            .filter(|r| r.gateway_id() != Some("local"))
            .filter(|r| r.origin().is_none_or(|o| o.as_str() != "CreateRouteTable"))
            .filter_map(|r| {
                let (target, to) = match (r.nat_gateway_id(), r.gateway_id()) {
                    (Some(nat), _) => ("nat_gateway_id", nat),
                    (None, gateway) => ("gateway_id", gateway.unwrap_or_default()),
                };
                Some(route(&Route {
                    cidr: r.destination_cidr_block()?.to_string(),
                    target,
                    to: to.to_string(),
                }))
            })
            .collect();
        routes.sort_by_key(ToString::to_string);
        let mut a = Attrs::new();
        a.insert("id".into(), id.into());
        a.insert("arn".into(), arn(p, t.owner_id(), "route-table", id).into());
        a.insert("vpc_id".into(), t.vpc_id().unwrap_or_default().into());
        a.insert("route".into(), routes.into());
        a.insert("tags".into(), tags_json(t.tags()));
        out.push(described(t.tags(), id, a));
    }
    Ok(out)
}

async fn add_route(p: &AwsProvider, id: &str, r: &Route) -> Result<(), ProviderError> {
    let call = p
        .ec2
        .create_route()
        .route_table_id(id)
        .destination_cidr_block(&r.cidr);
    let call = match r.target {
        "nat_gateway_id" => call.nat_gateway_id(&r.to),
        _ => call.gateway_id(&r.to),
    };
    call.send().await.map_err(aws_err)?;
    Ok(())
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    check_targets(a)?;
    let out = p
        .ec2
        .create_route_table()
        .vpc_id(req(a, "vpc_id")?)
        .set_tag_specifications(tag_spec(ResourceType::RouteTable, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .route_table()
        .and_then(|t| t.route_table_id())
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateRouteTable returned nothing")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        for r in routes_of(a) {
            add_route(p, &id, &r).await?;
        }
        // A second read: the routes added after CreateRouteTable (and the local route AWS
        // adds) are in no answer.
        created(
            read_all(p, std::slice::from_ref(&id)).await?,
            &id,
            "route table",
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
    check_targets(a)?;
    let mut result = prior.clone();
    // No route blocks: the table's routes are not managed inline (aws_route may own them).
    if a.get("route").is_none_or(serde_json::Value::is_null) {
        sync_tags(p, id, prior, a, &mut result).await?;
        return Ok(result);
    }
    let (old, new) = (routes_of(prior), routes_of(a));
    // A destination that stays with another target is deleted here and created again below.
    for Route { cidr, .. } in old.iter().filter(|r| !new.contains(r)) {
        p.ec2
            .delete_route()
            .route_table_id(id)
            .destination_cidr_block(cidr)
            .send()
            .await
            .map_err(aws_err)?;
    }
    for r in new.iter().filter(|r| !old.contains(r)) {
        add_route(p, id, r).await?;
    }
    if let Some(r) = a.get("route") {
        result.insert("route".into(), r.clone());
    }
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    delete_with_retry(|| async {
        p.ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    })
    .await
}

/// Associations, by association id, from one `DescribeRouteTables`.
pub(super) async fn read_associations(
    p: &AwsProvider,
    ids: &[String],
) -> Result<ById, ProviderError> {
    let mut out = ById::new();
    for t in by_chunks("association.route-table-association-id", ids, |f| {
        describe(p, vec![f])
    })
    .await?
    {
        for assoc in t.associations() {
            let Some(id) = assoc.route_table_association_id() else {
                continue;
            };
            if !ids.iter().any(|i| i == id) {
                continue;
            }
            let mut a = Attrs::new();
            a.insert("id".into(), id.into());
            a.insert(
                "route_table_id".into(),
                assoc
                    .route_table_id()
                    .or(t.route_table_id())
                    .unwrap_or_default()
                    .into(),
            );
            a.insert(
                "subnet_id".into(),
                assoc.subnet_id().unwrap_or_default().into(),
            );
            out.insert(id.to_string(), a);
        }
    }
    Ok(out)
}

pub(super) async fn associate(
    p: &AwsProvider,
    a: &Attrs,
) -> Result<(String, Attrs), ProviderError> {
    let out = p
        .ec2
        .associate_route_table()
        .route_table_id(req(a, "route_table_id")?)
        .subnet_id(req(a, "subnet_id")?)
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .association_id()
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "AssociateRouteTable returned no id")
                .after_partial_write()
        })?
        .to_string();
    let mut attrs = a.clone();
    attrs.insert("id".into(), id.clone().into());
    Ok((id, attrs))
}

pub(super) async fn disassociate(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    gone_is_done(
        p.ec2
            .disassociate_route_table()
            .association_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
    )
}

/// A subnet has at most one route table association: the pair identifies it.
async fn find_association(
    p: &AwsProvider,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    let (Some(subnet), Some(table)) = (s(planned, "subnet_id"), s(planned, "route_table_id"))
    else {
        return Ok(Found::Nothing);
    };
    let tables = p
        .ec2
        .describe_route_tables()
        .filters(filter("association.subnet-id", &[subnet.to_string()]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = tables
        .route_tables()
        .iter()
        .flat_map(aws_sdk_ec2::types::RouteTable::associations)
        .find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table))
        .and_then(|a| a.route_table_association_id().map(String::from));
    match id {
        Some(id) => Ok(adopted(read_back(p, ctx, &id, planned).await?)),
        None => Ok(Found::Nothing),
    }
}
