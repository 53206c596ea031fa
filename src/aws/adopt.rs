//! Finding what an interrupted create may have made, so the next run adopts it instead of
//! creating a duplicate (or failing on a name that is taken). EC2 objects are found by the
//! `skyform:address` and `skyform:lineage` tags they were created with; IAM objects by their
//! unique name, adopted only when they carry this lineage's tag (an object someone else made
//! under that name is not ours). Objects that cannot carry tags are found by what identifies
//! them: an attachment by its role and policy, an association by its subnet and table.

use aws_sdk_ec2::types::Filter;

use super::ec2_common::filter;
use super::{aws_err, is_not_found, s, AwsProvider};
use crate::provider::{OpContext, Provider as _, ProviderError, RefreshRequest};
use crate::state::Attrs;

fn ours(tags: &[(String, String)], ctx: &OpContext) -> bool {
    tags.iter()
        .any(|(k, v)| k == "skyform:lineage" && v == &ctx.lineage)
        && tags
            .iter()
            .any(|(k, v)| k == "skyform:address" && *v == ctx.addr.to_string())
}

fn iam_pairs(tags: &[aws_sdk_iam::types::Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// The tag filters that find what this address created in this lineage.
fn tag_filters(ctx: &OpContext) -> Vec<Filter> {
    vec![
        filter("tag:skyform:address", &[ctx.addr.to_string()]),
        filter("tag:skyform:lineage", std::slice::from_ref(&ctx.lineage)),
    ]
}

/// Reads an object through the normal refresh path, by id.
async fn read(
    p: &AwsProvider,
    ctx: &OpContext,
    id: &str,
    prior: &Attrs,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let found = p
        .refresh(&[RefreshRequest {
            addr: ctx.addr.clone(),
            id: id.to_string(),
            prior: prior.clone(),
        }])
        .await?;
    Ok(found
        .into_iter()
        .next()
        .flatten()
        .map(|a| (id.to_string(), a)))
}

/// The tags and id of every object of one EC2 type that matches `filters`. A cluster is one
/// object made of many nodes: its id is its name.
async fn describe_tagged(
    p: &AwsProvider,
    type_name: &str,
    filters: Vec<Filter>,
) -> Result<Vec<(Vec<aws_sdk_ec2::types::Tag>, String)>, ProviderError> {
    let f = Some(filters.clone());
    let pairs = |tags: &[aws_sdk_ec2::types::Tag], id: Option<&str>| {
        (tags.to_vec(), id.unwrap_or_default().to_string())
    };
    let found = match type_name {
        "aws_vpc" => {
            let out = p
                .ec2
                .describe_vpcs()
                .set_filters(f)
                .send()
                .await
                .map_err(aws_err)?;
            out.vpcs()
                .iter()
                .map(|v| pairs(v.tags(), v.vpc_id()))
                .collect()
        }
        "aws_subnet" => {
            let out = p
                .ec2
                .describe_subnets()
                .set_filters(f)
                .send()
                .await
                .map_err(aws_err)?;
            out.subnets()
                .iter()
                .map(|v| pairs(v.tags(), v.subnet_id()))
                .collect()
        }
        "aws_internet_gateway" => {
            let out = p
                .ec2
                .describe_internet_gateways()
                .set_filters(f)
                .send()
                .await
                .map_err(aws_err)?;
            out.internet_gateways()
                .iter()
                .map(|v| pairs(v.tags(), v.internet_gateway_id()))
                .collect()
        }
        "aws_route_table" => {
            let out = p
                .ec2
                .describe_route_tables()
                .set_filters(f)
                .send()
                .await
                .map_err(aws_err)?;
            out.route_tables()
                .iter()
                .map(|v| pairs(v.tags(), v.route_table_id()))
                .collect()
        }
        "aws_security_group" => {
            let out = p
                .ec2
                .describe_security_groups()
                .set_filters(f)
                .send()
                .await
                .map_err(aws_err)?;
            out.security_groups()
                .iter()
                .map(|v| pairs(v.tags(), v.group_id()))
                .collect()
        }
        "aws_instance" | "aws_cluster" => super::nodes::describe(p, filters, false)
            .await?
            .iter()
            .filter(|i| {
                let in_cluster = i
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(super::cluster::CLUSTER_TAG));
                in_cluster == (type_name == "aws_cluster")
            })
            .map(|i| {
                let cluster = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(super::cluster::CLUSTER_TAG))
                    .and_then(|t| t.value());
                pairs(i.tags(), cluster.or(i.instance_id()))
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(found)
}

pub async fn find(
    p: &AwsProvider,
    type_name: &str,
    planned: &Attrs,
    ctx: &OpContext,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    match type_name {
        "aws_iam_role" => {
            let Some(name) = s(planned, "name") else {
                return Ok(None);
            };
            match p
                .iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .map_err(aws_err)
            {
                Ok(out) if out.role().is_some_and(|r| ours(&iam_pairs(r.tags()), ctx)) => {
                    read(p, ctx, name, planned).await
                }
                Ok(_) => Ok(None),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
        "aws_iam_user" => {
            let Some(name) = s(planned, "name") else {
                return Ok(None);
            };
            match p
                .iam
                .get_user()
                .user_name(name)
                .send()
                .await
                .map_err(aws_err)
            {
                Ok(out) if out.user().is_some_and(|u| ours(&iam_pairs(u.tags()), ctx)) => {
                    read(p, ctx, name, planned).await
                }
                Ok(_) => Ok(None),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
        "aws_iam_policy" => {
            let Some(name) = s(planned, "name") else {
                return Ok(None);
            };
            let policies = p
                .iam
                .list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(aws_err)?;
            let Some(arn) = policies
                .iter()
                .find(|pol| pol.policy_name() == Some(name))
                .and_then(|pol| pol.arn().map(String::from))
            else {
                return Ok(None);
            };
            let tags = p
                .iam
                .list_policy_tags()
                .policy_arn(&arn)
                .send()
                .await
                .map_err(aws_err)?;
            if ours(&iam_pairs(tags.tags()), ctx) {
                read(p, ctx, &arn, planned).await
            } else {
                Ok(None)
            }
        }
        // Instance profiles carry no tags here; one of this name holding the planned role is
        // what the interrupted create made.
        "aws_iam_instance_profile" => {
            let Some(name) = s(planned, "name") else {
                return Ok(None);
            };
            match read(p, ctx, name, planned).await? {
                Some((id, a)) if s(&a, "role") == s(planned, "role") => Ok(Some((id, a))),
                _ => Ok(None),
            }
        }
        "aws_iam_role_policy_attachment" => {
            let (Some(role), Some(arn)) = (s(planned, "role"), s(planned, "policy_arn")) else {
                return Ok(None);
            };
            read(p, ctx, &format!("{role}/{arn}"), planned).await
        }
        "aws_iam_user_policy_attachment" => {
            let (Some(user), Some(arn)) = (s(planned, "user"), s(planned, "policy_arn")) else {
                return Ok(None);
            };
            read(p, ctx, &format!("{user}/{arn}"), planned).await
        }
        // A key whose secret was never recorded is useless: delete it, and let the plan make
        // a new one.
        "aws_iam_access_key" => {
            let Some(user) = s(planned, "user") else {
                return Ok(None);
            };
            let keys = match p
                .iam
                .list_access_keys()
                .user_name(user)
                .send()
                .await
                .map_err(aws_err)
            {
                Ok(out) => out,
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            let known: Vec<String> = planned
                .get("known_ids")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            for k in keys.access_key_metadata() {
                let Some(id) = k.access_key_id() else {
                    continue;
                };
                if !known.iter().any(|x| x == id) {
                    p.iam
                        .delete_access_key()
                        .user_name(user)
                        .access_key_id(id)
                        .send()
                        .await
                        .map_err(aws_err)?;
                }
            }
            Ok(None)
        }
        "aws_route_table_association" => {
            let (Some(subnet), Some(table)) =
                (s(planned, "subnet_id"), s(planned, "route_table_id"))
            else {
                return Ok(None);
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
                .flat_map(|t| t.associations())
                .find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table))
                .and_then(|a| a.route_table_association_id().map(String::from));
            match id {
                Some(id) => read(p, ctx, &id, planned).await,
                None => Ok(None),
            }
        }
        // A cluster is its tagged nodes; what exists is adopted and the plan launches the rest.
        "aws_cluster" => {
            let Some(name) = s(planned, "name") else {
                return Ok(None);
            };
            let mut prior = planned.clone();
            let owner = p.identity().await?;
            prior.insert(
                "owner".into(),
                serde_json::json!({"arn": owner.arn, "account": owner.account}),
            );
            read(p, ctx, name, &prior).await
        }
        other => match describe_tagged(p, other, tag_filters(ctx)).await?.first() {
            Some((_, id)) if !id.is_empty() => read(p, ctx, id, planned).await,
            _ => Ok(None),
        },
    }
}

/// The `skyform:address` and id of every EC2 object tagged with this lineage. IAM objects are
/// not scanned: their unique names make intents enough.
pub async fn scan(
    p: &AwsProvider,
    lineage: &str,
    types: &[&str],
) -> Result<Vec<(crate::address::Address, String)>, ProviderError> {
    if lineage.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for t in types {
        let f = vec![filter("tag:skyform:lineage", &[lineage.to_string()])];
        found.extend(describe_tagged(p, t, f).await?);
    }
    let mut out: Vec<(crate::address::Address, String)> = found
        .into_iter()
        .filter_map(|(tags, id)| {
            let addr = tags
                .iter()
                .find(|t| t.key() == Some("skyform:address"))
                .and_then(|t| t.value())?
                .parse()
                .ok()?;
            Some((addr, id))
        })
        .filter(|(_, id)| !id.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}
