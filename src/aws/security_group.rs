//! `aws_security_group`: the group, and its ingress and egress rules as sets that are
//! authorized and revoked in place. One `DescribeSecurityGroups` for every group in state.
//!
//! A rule is one protocol and port range with its sources, as Terraform's blocks write it.
//! AWS returns the sources of a permission with one description each, so a permission whose
//! sources carry different descriptions reads back as one rule per description.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType, UserIdGroupPair};
use serde_json::json;

use super::ec2_common::{
    arn, by_chunks, created, delete_with_retry, int, string_set, strings, sync_tags, tag_spec,
    tags_json, ById,
};
use super::resource::{by_id, described, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_security_group",
    schema: include_str!("../../schemas/aws_security_group.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters))),
    evidence: None,
};

/// A rule in comparable form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    protocol: String,
    from: i32,
    to: i32,
    cidrs: BTreeSet<String>,
    ipv6: BTreeSet<String>,
    groups: BTreeSet<String>,
    self_: bool,
    description: String,
}

impl Rule {
    fn from_json(v: &serde_json::Value) -> Option<Rule> {
        let protocol = v.get("protocol")?.as_str()?.to_string();
        let all = protocol == "-1";
        Some(Rule {
            from: if all { 0 } else { int(v.get("from_port"))? },
            to: if all { 0 } else { int(v.get("to_port"))? },
            protocol,
            cidrs: strings(v.get("cidr_blocks")).into_iter().collect(),
            ipv6: strings(v.get("ipv6_cidr_blocks")).into_iter().collect(),
            groups: strings(v.get("security_groups")).into_iter().collect(),
            self_: v
                .get("self")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            description: v
                .get("description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "protocol": self.protocol,
            "from_port": self.from,
            "to_port": self.to,
            "cidr_blocks": string_set(self.cidrs.iter().cloned()),
            "ipv6_cidr_blocks": string_set(self.ipv6.iter().cloned()),
            "security_groups": string_set(self.groups.iter().cloned()),
            "self": self.self_,
            "description": self.description,
        })
    }

    fn permission(&self, own_id: &str) -> IpPermission {
        let mut groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        if self.self_ {
            groups.push(own_id);
        }
        let ports = (self.protocol != "-1").then_some((self.from, self.to));
        let desc = Some(self.description.as_str()).filter(|d| !d.is_empty());
        permission(
            &self.protocol,
            ports,
            (&self.cidrs, &self.ipv6, &groups),
            desc,
        )
    }
}

/// One permission: a protocol, its port range (none for every protocol), and its IPv4, IPv6
/// and group sources, each with the description.
pub(super) fn permission<'a>(
    protocol: &str,
    ports: Option<(i32, i32)>,
    (cidrs, ipv6, groups): (
        impl IntoIterator<Item = &'a String>,
        impl IntoIterator<Item = &'a String>,
        &[&str],
    ),
    description: Option<&str>,
) -> IpPermission {
    let desc = description.map(String::from);
    IpPermission::builder()
        .ip_protocol(protocol)
        .set_from_port(ports.map(|(from, _)| from))
        .set_to_port(ports.map(|(_, to)| to))
        .set_ip_ranges(Some(
            cidrs
                .into_iter()
                .map(|c| {
                    IpRange::builder()
                        .cidr_ip(c)
                        .set_description(desc.clone())
                        .build()
                })
                .collect(),
        ))
        .set_ipv6_ranges(Some(
            ipv6.into_iter()
                .map(|c| {
                    Ipv6Range::builder()
                        .cidr_ipv6(c)
                        .set_description(desc.clone())
                        .build()
                })
                .collect(),
        ))
        .set_user_id_group_pairs(Some(
            groups
                .iter()
                .map(|g| {
                    UserIdGroupPair::builder()
                        .group_id(*g)
                        .set_description(desc.clone())
                        .build()
                })
                .collect(),
        ))
        .build()
}

fn rules_of(a: &Attrs, key: &str) -> Option<BTreeSet<Rule>> {
    a.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|items| items.iter().filter_map(Rule::from_json).collect())
}

/// AWS's permissions as rules, one per (permission, description).
fn rules_from(perms: &[IpPermission], own_id: &str) -> Vec<serde_json::Value> {
    let mut rules: BTreeSet<Rule> = BTreeSet::new();
    for perm in perms {
        let protocol = perm.ip_protocol().unwrap_or("-1").to_string();
        let all = protocol == "-1";
        let mut by_desc: BTreeMap<String, Rule> = BTreeMap::new();
        let blank = |desc: &str| Rule {
            protocol: protocol.clone(),
            from: if all {
                0
            } else {
                perm.from_port().unwrap_or(0)
            },
            to: if all { 0 } else { perm.to_port().unwrap_or(0) },
            cidrs: BTreeSet::new(),
            ipv6: BTreeSet::new(),
            groups: BTreeSet::new(),
            self_: false,
            description: desc.to_string(),
        };
        for r in perm.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                let d = r.description().unwrap_or_default();
                by_desc
                    .entry(d.to_string())
                    .or_insert_with(|| blank(d))
                    .cidrs
                    .insert(c.to_string());
            }
        }
        for r in perm.ipv6_ranges() {
            if let Some(c) = r.cidr_ipv6() {
                let d = r.description().unwrap_or_default();
                by_desc
                    .entry(d.to_string())
                    .or_insert_with(|| blank(d))
                    .ipv6
                    .insert(c.to_string());
            }
        }
        for g in perm.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                let d = g.description().unwrap_or_default();
                let e = by_desc.entry(d.to_string()).or_insert_with(|| blank(d));
                if id == own_id {
                    e.self_ = true;
                } else {
                    e.groups.insert(id.to_string());
                }
            }
        }
        rules.extend(by_desc.into_values());
    }
    rules.iter().map(Rule::to_json).collect()
}

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    Ok(by_id(
        by_chunks("group-id", ids, |f| read_tagged(p, vec![f])).await?,
    ))
}

/// Security groups by filters, with everything refresh reads.
async fn read_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    let groups = p
        .ec2
        .describe_security_groups()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let mut out = Vec::new();
    for g in groups {
        let Some(id) = g.group_id() else { continue };
        let mut a = Attrs::new();
        a.insert("id".into(), id.into());
        a.insert(
            "arn".into(),
            arn(p, g.owner_id(), "security-group", id).into(),
        );
        a.insert("owner_id".into(), g.owner_id().unwrap_or_default().into());
        a.insert("name".into(), g.group_name().unwrap_or_default().into());
        a.insert(
            "description".into(),
            g.description().unwrap_or_default().into(),
        );
        a.insert("vpc_id".into(), g.vpc_id().unwrap_or_default().into());
        a.insert("ingress".into(), rules_from(g.ip_permissions(), id).into());
        a.insert(
            "egress".into(),
            rules_from(g.ip_permissions_egress(), id).into(),
        );
        a.insert("tags".into(), tags_json(g.tags()));
        out.push(described(g.tags(), id, a));
    }
    Ok(out)
}

/// Authorizes `add` and revokes `remove` in one direction.
async fn change_rules(
    p: &AwsProvider,
    id: &str,
    egress: bool,
    add: &[&Rule],
    remove: &[&Rule],
) -> Result<(), ProviderError> {
    let perms = |rules: &[&Rule]| rules.iter().map(|r| r.permission(id)).collect::<Vec<_>>();
    if !remove.is_empty() {
        revoke(p, id, egress, perms(remove)).await?;
    }
    if !add.is_empty() {
        authorize(p, id, egress, perms(add)).await?;
    }
    Ok(())
}

/// One of the four permission calls on a group; they differ only in name.
macro_rules! permissions_call {
    ($p:expr, $call:ident, $group:expr, $perms:expr) => {
        $p.ec2
            .$call()
            .group_id($group)
            .set_ip_permissions(Some($perms))
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    };
}

/// Authorizes permissions on a group, in the direction asked.
pub(super) async fn authorize(
    p: &AwsProvider,
    group: &str,
    egress: bool,
    perms: Vec<IpPermission>,
) -> Result<(), ProviderError> {
    if egress {
        permissions_call!(p, authorize_security_group_egress, group, perms)
    } else {
        permissions_call!(p, authorize_security_group_ingress, group, perms)
    }
}

/// Revokes permissions from a group, in the direction asked.
pub(super) async fn revoke(
    p: &AwsProvider,
    group: &str,
    egress: bool,
    perms: Vec<IpPermission>,
) -> Result<(), ProviderError> {
    if egress {
        permissions_call!(p, revoke_security_group_egress, group, perms)
    } else {
        permissions_call!(p, revoke_security_group_ingress, group, perms)
    }
}

async fn sync_rules(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<(), ProviderError> {
    for (key, egress) in [("ingress", false), ("egress", true)] {
        // No egress in the configuration: AWS's default stays, and is not ours to manage.
        let Some(want) = rules_of(a, key) else {
            continue;
        };
        let have = rules_of(prior, key).unwrap_or_default();
        let add: Vec<&Rule> = want.difference(&have).collect();
        let remove: Vec<&Rule> = have.difference(&want).collect();
        change_rules(p, id, egress, &add, &remove).await?;
    }
    Ok(())
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let out = p
        .ec2
        .create_security_group()
        .group_name(req(a, "name")?)
        .description(s(a, "description").unwrap_or("Managed by skyform"))
        .vpc_id(req(a, "vpc_id")?)
        .set_tag_specifications(tag_spec(ResourceType::SecurityGroup, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .group_id()
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateSecurityGroup returned no id")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        // Start from what AWS made (its default egress rule) and move to the configuration.
        let made = read_all(p, std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        sync_rules(p, &id, &made, a).await?;
        // A second read: the rules as AWS now holds them are in no answer.
        created(
            read_all(p, std::slice::from_ref(&id)).await?,
            &id,
            "security group",
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
    sync_rules(p, id, prior, a).await?;
    let mut result = read_all(p, &[id.to_string()])
        .await?
        .remove(id)
        .unwrap_or_else(|| prior.clone());
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    delete_with_retry(|| async {
        p.ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err)
    })
    .await
}
