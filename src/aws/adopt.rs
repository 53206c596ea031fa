//! Finding what an interrupted create may have made, so the next run adopts it instead of
//! creating a duplicate (or failing on a name that is taken). EC2 objects are found by the
//! `skyform:address` and `skyform:lineage` tags they were created with; IAM objects by their
//! unique name, adopted only when they carry this lineage's tag (an object someone else made
//! under that name is not ours). Objects that cannot carry tags are found by what identifies
//! them: an attachment by its role and policy, an association by its subnet and table, an
//! access key by the evidence recorded before its create (the user's keys at that moment).
//! Everything here only reads: `plan` looks, `apply` acts.

use aws_sdk_ec2::types::Filter;

use super::ec2_common::filter;
use super::{aws_err, is_not_found, s, AwsProvider};
use crate::engine::provider::{
    Found, Lost, OpContext, Provider as _, ProviderError, RefreshRequest,
};
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

/// The ids of the user's access keys, or none when the user does not exist.
async fn access_key_ids(p: &AwsProvider, user: &str) -> Result<Vec<String>, ProviderError> {
    match p
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(aws_err)
    {
        Ok(out) => Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(String::from))
            .collect()),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// What to record before a create so that its object can be told from others later. An
/// access key has no name and cannot carry tags: the keys the user already had are what
/// prove, afterwards, which key the create made.
pub async fn evidence(
    p: &AwsProvider,
    type_name: &str,
    planned: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut out = Attrs::new();
    if type_name == "aws_iam_access_key" {
        if let Some(user) = s(planned, "user") {
            let ids = access_key_ids(p, user).await?;
            out.insert(EXISTING_KEYS.into(), ids.into());
        }
    }
    Ok(out)
}

const EXISTING_KEYS: &str = "existing_key_ids";

/// The key an interrupted `CreateAccessKey` made, if it can be proven: a key of the user that
/// was not there before the call (the evidence) and that the state does not hold. Its secret
/// was shown only in the lost answer, so it is useless: it is adopted to be replaced.
async fn find_access_key(p: &AwsProvider, lost: Lost<'_>) -> Result<Found, ProviderError> {
    let Some(user) = s(lost.planned, "user") else {
        return Ok(Found::Nothing);
    };
    let unknown: Vec<String> = access_key_ids(p, user)
        .await?
        .into_iter()
        .filter(|id| !lost.known_ids.contains(id))
        .collect();
    let Some(before) = lost.evidence.get(EXISTING_KEYS).and_then(|v| v.as_array()) else {
        // An intent without evidence (written by an older skyform) proves nothing.
        return Ok(if unknown.is_empty() {
            Found::Nothing
        } else {
            Found::Ambiguous {
                ids: unknown,
                reason: format!(
                    "an interrupted apply may have created an access key for {user}, but the user's keys were not recorded before it, so none can be proven ours"
                ),
            }
        });
    };
    let candidates: Vec<String> = unknown
        .into_iter()
        .filter(|id| !before.iter().any(|b| b.as_str() == Some(id.as_str())))
        .collect();
    Ok(match candidates.as_slice() {
        [] => Found::Nothing,
        [id] => Found::Replace {
            id: id.clone(),
            attrs: Attrs::from_iter([
                ("id".to_string(), id.clone().into()),
                ("user".to_string(), user.into()),
                ("status".to_string(), "Active".into()),
            ]),
            reason: "the secret of the key created by an interrupted apply was never recorded"
                .into(),
        },
        many => Found::Ambiguous {
            ids: many.to_vec(),
            reason: format!(
                "{} keys of {user} appeared while an interrupted apply was creating one, and nothing proves which is ours",
                many.len()
            ),
        },
    })
}

/// Adopts what a read found; nothing when nothing was.
fn adopted(found: Option<(String, Attrs)>) -> Found {
    found.map_or(Found::Nothing, |(id, attrs)| Found::Adopt { id, attrs })
}

/// Reads an IAM object by its unique name and adopts it when it carries this address's and
/// lineage's tags: an object someone else made under that name is not ours.
async fn find_named_iam(
    p: &AwsProvider,
    type_name: &str,
    planned: &Attrs,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    let Some(name) = s(planned, "name") else {
        return Ok(Found::Nothing);
    };
    let tags = match type_name {
        "aws_iam_role" => p
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| o.role().map(|r| iam_pairs(r.tags()))),
        "aws_iam_user" => p
            .iam
            .get_user()
            .user_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| o.user().map(|u| iam_pairs(u.tags()))),
        "aws_iam_instance_profile" => p
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(aws_err)
            .map(|o| o.instance_profile().map(|ip| iam_pairs(ip.tags()))),
        _ => return Ok(Found::Nothing),
    };
    match tags {
        Ok(Some(tags)) if ours(&tags, ctx) => Ok(adopted(read(p, ctx, name, planned).await?)),
        Ok(_) => Ok(Found::Nothing),
        Err(e) if is_not_found(&e) => Ok(Found::Nothing),
        Err(e) => Err(e),
    }
}

pub async fn find(
    p: &AwsProvider,
    type_name: &str,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    match type_name {
        "aws_iam_role" | "aws_iam_user" | "aws_iam_instance_profile" => {
            find_named_iam(p, type_name, planned, ctx).await
        }
        "aws_iam_policy" => {
            let Some(name) = s(planned, "name") else {
                return Ok(Found::Nothing);
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
                return Ok(Found::Nothing);
            };
            let tags = p
                .iam
                .list_policy_tags()
                .policy_arn(&arn)
                .send()
                .await
                .map_err(aws_err)?;
            if ours(&iam_pairs(tags.tags()), ctx) {
                Ok(adopted(read(p, ctx, &arn, planned).await?))
            } else {
                Ok(Found::Nothing)
            }
        }
        // Attachments carry no tags and no id of their own: the pair is the object, and
        // attaching it again would change nothing, so an existing pair is what the create made.
        "aws_iam_role_policy_attachment" => {
            let (Some(role), Some(arn)) = (s(planned, "role"), s(planned, "policy_arn")) else {
                return Ok(Found::Nothing);
            };
            Ok(adopted(
                read(p, ctx, &format!("{role}/{arn}"), planned).await?,
            ))
        }
        "aws_iam_user_policy_attachment" => {
            let (Some(user), Some(arn)) = (s(planned, "user"), s(planned, "policy_arn")) else {
                return Ok(Found::Nothing);
            };
            Ok(adopted(
                read(p, ctx, &format!("{user}/{arn}"), planned).await?,
            ))
        }
        "aws_iam_access_key" => find_access_key(p, lost).await,
        // A subnet has at most one route table association: the pair identifies it.
        "aws_route_table_association" => {
            let (Some(subnet), Some(table)) =
                (s(planned, "subnet_id"), s(planned, "route_table_id"))
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
                .flat_map(|t| t.associations())
                .find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table))
                .and_then(|a| a.route_table_association_id().map(String::from));
            match id {
                Some(id) => Ok(adopted(read(p, ctx, &id, planned).await?)),
                None => Ok(Found::Nothing),
            }
        }
        // A cluster is its tagged nodes; what exists is adopted and the plan launches the rest.
        // Only nodes carrying this address's and lineage's tags prove the cluster ours: another
        // environment may run a cluster of the same name.
        "aws_cluster" => {
            let Some(name) = s(planned, "name") else {
                return Ok(Found::Nothing);
            };
            if describe_tagged(p, type_name, tag_filters(ctx))
                .await?
                .is_empty()
            {
                return Ok(Found::Nothing);
            }
            let mut prior = planned.clone();
            let owner = p.identity().await?;
            prior.insert(
                "owner".into(),
                serde_json::json!({"arn": owner.principal, "account": owner.tenant}),
            );
            Ok(adopted(read(p, ctx, name, &prior).await?))
        }
        other => match describe_tagged(p, other, tag_filters(ctx)).await?.first() {
            Some((_, id)) if !id.is_empty() => Ok(adopted(read(p, ctx, id, planned).await?)),
            _ => Ok(Found::Nothing),
        },
    }
}

/// The `skyform:address` and id of every EC2 object tagged with this lineage. IAM objects are
/// not scanned: their unique names make intents enough.
pub async fn scan(
    p: &AwsProvider,
    lineage: &str,
    types: &[&str],
) -> Result<Vec<(crate::lang::address::Address, String)>, ProviderError> {
    if lineage.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for t in types {
        let f = vec![filter("tag:skyform:lineage", &[lineage.to_string()])];
        found.extend(describe_tagged(p, t, f).await?);
    }
    let mut out: Vec<(crate::lang::address::Address, String)> = found
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
