//! `aws_vpc_security_group_ingress_rule` and `aws_vpc_security_group_egress_rule`: one rule
//! per resource, each an object of its own in AWS (sgr-...) with tags, so a lost create is
//! found again by them. Refresh reads every rule in state with one `DescribeSecurityGroupRules`
//! per page, filtered by the rule ids; delete revokes by rule id. A create is one call: the
//! Authorize answer holds the whole rule.
//!
//! Also the plan check for the fight Terraform's docs warn of, for these types and
//! `aws_security_group_rule` alike: a group's inline rules of one direction are authoritative (`security_group.rs` revokes whatever else it reads there), so a
//! separate rule resource of that direction on the same group would be revoked and recreated
//! on every apply.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroupRule, UserIdGroupPair,
};

use super::ec2_common::{
    arn, by_chunks, delete_with_retry, int, sync_tags, tag_spec, tags_json, ById,
};
use super::resource::{by_id, described, tagged, Read, Recover, Resource, Tagged};
use super::{aws_err, req, s, AwsProvider};
use crate::engine::provider::{Planned, Problem, ProviderError};
use crate::lang::address::Address;
use crate::lang::value::Value;
use crate::state::Attrs;

const INGRESS: &str = "aws_vpc_security_group_ingress_rule";
const EGRESS: &str = "aws_vpc_security_group_egress_rule";

pub(super) const INGRESS_TYPE: Resource = Resource {
    name: INGRESS,
    schema: include_str!("../../schemas/aws_vpc_security_group_ingress_rule.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids, false))),
    create: |p, a, _| Box::pin(create(p, a, false)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior, false)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters, false))),
    evidence: None,
};

pub(super) const EGRESS_TYPE: Resource = Resource {
    name: EGRESS,
    schema: include_str!("../../schemas/aws_vpc_security_group_egress_rule.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids, true))),
    create: |p, a, _| Box::pin(create(p, a, true)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior, true)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters, true))),
    evidence: None,
};

/// Ports mean nothing to protocol -1: AWS reports them as -1, Terraform leaves them unset.
fn all_protocols(protocol: &str) -> bool {
    protocol == "-1"
}

/// One rule's attributes as the schema names them.
fn attrs_of(p: &AwsProvider, r: &SecurityGroupRule, id: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("id".into(), id.into());
    a.insert("security_group_rule_id".into(), id.into());
    a.insert(
        "arn".into(),
        arn(p, r.group_owner_id(), "security-group-rule", id).into(),
    );
    a.insert(
        "security_group_id".into(),
        r.group_id().unwrap_or_default().into(),
    );
    let protocol = r.ip_protocol().unwrap_or("-1");
    a.insert("ip_protocol".into(), protocol.into());
    if !all_protocols(protocol) {
        if let Some(from) = r.from_port() {
            a.insert("from_port".into(), from.into());
        }
        if let Some(to) = r.to_port() {
            a.insert("to_port".into(), to.into());
        }
    }
    let optional = [
        ("cidr_ipv4", r.cidr_ipv4()),
        ("cidr_ipv6", r.cidr_ipv6()),
        (
            "referenced_security_group_id",
            r.referenced_group_info().and_then(|g| g.group_id()),
        ),
        ("description", r.description()),
    ];
    for (key, value) in optional {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            a.insert(key.into(), v.into());
        }
    }
    a.insert("tags".into(), tags_json(r.tags()));
    a
}

pub(super) async fn read_all(
    p: &AwsProvider,
    ids: &[String],
    egress: bool,
) -> Result<ById, ProviderError> {
    // A filter rather than SecurityGroupRuleIds: one rule gone must not fail the whole batch.
    Ok(by_id(
        by_chunks("security-group-rule-id", ids, |f| {
            read_tagged(p, vec![f], egress)
        })
        .await?,
    ))
}

/// Rules by filters; those of this direction with everything refresh reads. Rules of the
/// other direction are listed with their tags only, so that the lineage scan still sees
/// them whichever of the two types it lists.
async fn read_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
    egress: bool,
) -> Result<Vec<Tagged>, ProviderError> {
    let rules = p
        .ec2
        .describe_security_group_rules()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let mut out = Vec::new();
    for r in rules {
        let Some(id) = r.security_group_rule_id() else {
            continue;
        };
        // A rule of the other direction is not this type's object.
        if r.is_egress() == Some(egress) {
            out.push(described(r.tags(), id, attrs_of(p, &r, id)));
        } else {
            out.push(tagged(r.tags(), Some(id)));
        }
    }
    Ok(out)
}

/// The configured rule as the one permission AWS authorizes.
fn permission(a: &Attrs) -> Result<IpPermission, ProviderError> {
    let protocol = req(a, "ip_protocol")?;
    let ports = !all_protocols(protocol);
    let desc = s(a, "description").map(String::from);
    let mut perm = IpPermission::builder()
        .ip_protocol(protocol)
        .set_from_port(int(a.get("from_port")).filter(|_| ports))
        .set_to_port(int(a.get("to_port")).filter(|_| ports));
    if let Some(c) = s(a, "cidr_ipv4") {
        perm = perm.ip_ranges(
            IpRange::builder()
                .cidr_ip(c)
                .set_description(desc.clone())
                .build(),
        );
    }
    if let Some(c) = s(a, "cidr_ipv6") {
        perm = perm.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(c)
                .set_description(desc.clone())
                .build(),
        );
    }
    if let Some(g) = s(a, "referenced_security_group_id") {
        perm = perm.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(g)
                .set_description(desc)
                .build(),
        );
    }
    Ok(perm.build())
}

/// The one source or destination a rule needs, checked before AWS would refuse it less clearly.
/// Two at once are refused earlier, at plan time, by the schema's `conflicts_with`; this also
/// catches none, and values that were unknown when planned.
fn one_target(a: &Attrs) -> Result<(), ProviderError> {
    let given = ["cidr_ipv4", "cidr_ipv6", "referenced_security_group_id"]
        .into_iter()
        .filter(|k| s(a, k).is_some())
        .count();
    if given == 1 {
        return Ok(());
    }
    Err(ProviderError::new(
        "InvalidParameterCombination",
        "a security group rule needs exactly one of cidr_ipv4, cidr_ipv6 and \
         referenced_security_group_id",
    ))
}

pub(super) async fn create(
    p: &AwsProvider,
    a: &Attrs,
    egress: bool,
) -> Result<(String, Attrs), ProviderError> {
    one_target(a)?;
    let group = req(a, "security_group_id")?;
    let perm = permission(a)?;
    // Tagged in the same call, so a create whose answer is lost leaves a rule found by tags.
    let tags = tag_spec(ResourceType::SecurityGroupRule, a).map(|t| vec![t]);
    let made = if egress {
        p.ec2
            .authorize_security_group_egress()
            .group_id(group)
            .ip_permissions(perm)
            .set_tag_specifications(tags)
            .send()
            .await
            .map_err(aws_err)?
            .security_group_rules
    } else {
        p.ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(perm)
            .set_tag_specifications(tags)
            .send()
            .await
            .map_err(aws_err)?
            .security_group_rules
    };
    // The answer holds the whole rule, tags included: no read-back.
    let rule = made
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.security_group_rule_id.is_some())
        .ok_or_else(|| {
            ProviderError::new(
                "EmptyResponse",
                "AuthorizeSecurityGroupIngress/Egress returned no rule id",
            )
            .after_partial_write()
        })?;
    let id = rule
        .security_group_rule_id()
        .unwrap_or_default()
        .to_string();
    let attrs = attrs_of(p, &rule, &id);
    Ok((id, attrs))
}

/// Only the tags change in place; every other attribute replaces the rule.
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

pub(super) async fn delete(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    egress: bool,
) -> Result<(), ProviderError> {
    let group = req(prior, "security_group_id")?;
    delete_with_retry(|| async {
        if egress {
            p.ec2
                .revoke_security_group_egress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err)
        } else {
            p.ec2
                .revoke_security_group_ingress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err)
        }
    })
    .await
}

/// The inline-block attribute of `aws_security_group` a rule resource fights with: its
/// type's direction, or for `aws_security_group_rule` the direction its `type` names.
fn inline_key(rule: &Planned<'_>) -> Option<&'static str> {
    match rule.addr.type_name.as_str() {
        INGRESS => Some("ingress"),
        EGRESS => Some("egress"),
        "aws_security_group_rule" => match rule.attrs.get("type").and_then(Value::as_str) {
            Some("ingress") => Some("ingress"),
            Some("egress") => Some("egress"),
            _ => None,
        },
        _ => None,
    }
}

/// A rule resource on a group that also declares inline rules of the same direction. Those
/// inline blocks are authoritative, so each apply of the group would revoke the rule and each
/// apply of the rule authorize it again. A group whose blocks of that direction are left out
/// does not manage them, and the two live together.
pub(crate) fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
    let groups: BTreeMap<&Address, &Planned<'_>> = planned
        .iter()
        .filter(|p| p.addr.type_name == "aws_security_group")
        .map(|p| (&p.addr, p))
        .collect();
    let mut problems = Vec::new();
    for rule in planned {
        let Some(key) = inline_key(rule) else {
            continue;
        };
        let Some(refs) = rule.refs.get("security_group_id") else {
            continue;
        };
        for group in refs.iter().filter_map(|g| groups.get(g)) {
            let inline = group
                .attrs
                .get(key)
                .is_some_and(|v| !matches!(v, Value::Null));
            if !inline {
                continue;
            }
            problems.push(Problem {
                addr: rule.addr.clone(),
                attr: Some("security_group_id".into()),
                message: format!(
                    "{rule}: {group} also declares inline {key} blocks, and a group's inline \
                     {key} blocks are authoritative in skyform: applying {group} revokes every \
                     {key} rule it does not list, including this one, which the next apply \
                     adds again. Terraform's docs warn against combining inline rules with \
                     rule resources: move {group}'s {key} blocks into rule resources, or this \
                     rule into its {key} blocks",
                    rule = rule.addr,
                    group = group.addr,
                ),
            });
        }
    }
    problems
}
