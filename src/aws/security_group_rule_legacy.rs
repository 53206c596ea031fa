//! `aws_security_group_rule`, Terraform's older rule form: one protocol and port range with
//! any number of sources, which AWS keeps as one rule (sgr-...) per source. It has no tags and
//! no id of its own in AWS, so it is identified by its group and permission: the id is
//! Terraform's `sgrule-` hash of them, refresh matches the permission of each rule in state
//! against one `DescribeSecurityGroupRules` per page for all their groups, and a lost create is
//! found again by looking for the permission in its group.

use aws_sdk_ec2::types::{IpPermission, SecurityGroupRule};

use super::ec2_common::{by_chunks, crc32, delete_with_retry, int, strings, ById};
use super::resource::{adopted, read_back, Read, Recover, Resource};
use super::security_group;
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_security_group_rule",
    schema: include_str!("../../schemas/aws_security_group_rule.json"),
    read: Read::DescribeWithPrior(|p, items| Box::pin(read_all(p, items))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, _, prior, a, _| Box::pin(update(p, prior, a))),
    delete: |p, _, prior| Box::pin(delete(p, prior)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

/// A rule as configured, in the form AWS's rules are compared with.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    group: String,
    egress: bool,
    /// Normalised (`all` and `6` become `-1` and `tcp`).
    protocol: String,
    from: i32,
    to: i32,
    cidrs: Vec<String>,
    ipv6: Vec<String>,
    source: Option<String>,
    self_: bool,
    description: Option<String>,
}

/// The protocol as AWS reports it: Terraform accepts names, numbers and `all`.
fn normalize_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "all" | "-1" => "-1".into(),
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        other => other.into(),
    }
}

impl Spec {
    fn of(a: &Attrs) -> Result<Spec, ProviderError> {
        let egress = match req(a, "type")? {
            "ingress" => false,
            "egress" => true,
            other => {
                return Err(ProviderError::new(
                    "InvalidParameterValue",
                    format!("type must be ingress or egress, not {other:?}"),
                ))
            }
        };
        Ok(Spec {
            group: req(a, "security_group_id")?.to_string(),
            egress,
            protocol: normalize_protocol(req(a, "protocol")?),
            from: int(a.get("from_port")).unwrap_or(0),
            to: int(a.get("to_port")).unwrap_or(0),
            cidrs: strings(a.get("cidr_blocks")),
            ipv6: strings(a.get("ipv6_cidr_blocks")),
            source: s(a, "source_security_group_id")
                .filter(|g| !g.is_empty())
                .map(String::from),
            self_: a
                .get("self")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            description: s(a, "description")
                .filter(|d| !d.is_empty())
                .map(String::from),
        })
    }

    fn all_protocols(&self) -> bool {
        self.protocol == "-1"
    }

    /// The source groups: the named one and, with `self`, the rule's own group.
    fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self.source.iter().map(String::as_str).collect();
        if self.self_ {
            groups.push(&self.group);
        }
        groups
    }

    fn source_count(&self) -> usize {
        self.cidrs.len() + self.ipv6.len() + self.groups().len()
    }

    /// The one permission AWS authorizes or revokes for the whole rule.
    fn permission(&self) -> IpPermission {
        let ports = (!self.all_protocols()).then_some((self.from, self.to));
        let sources = (&self.cidrs, &self.ipv6, &self.groups()[..]);
        security_group::permission(&self.protocol, ports, sources, self.description.as_deref())
    }

    /// Terraform's id: `sgrule-` and the CRC-32 of the group, the positive ports, the
    /// protocol, the type and the sorted sources, each followed by `-`. The same rule
    /// configured again gets the same id, which is what lets a lost create be recognised.
    fn id(&self) -> String {
        let mut text = format!("{}-", self.group);
        for port in [self.from, self.to] {
            if port > 0 {
                text.push_str(&format!("{port}-"));
            }
        }
        let kind = if self.egress { "egress" } else { "ingress" };
        text.push_str(&format!("{}-{kind}-", self.protocol));
        let mut groups: Vec<&str> = self.groups();
        groups.sort_unstable();
        for list in [&sorted(&self.cidrs), &sorted(&self.ipv6)] {
            for c in list {
                text.push_str(&format!("{c}-"));
            }
        }
        for g in groups {
            text.push_str(&format!("{g}-"));
        }
        format!("sgrule-{}", crc32(text.as_bytes()))
    }

    /// Whether an AWS rule is this rule's permission for some source.
    fn covers_permission(&self, r: &SecurityGroupRule) -> bool {
        r.group_id() == Some(self.group.as_str())
            && r.is_egress() == Some(self.egress)
            && r.ip_protocol().map(normalize_protocol).as_deref() == Some(self.protocol.as_str())
            && (self.all_protocols()
                || (r.from_port() == Some(self.from) && r.to_port() == Some(self.to)))
    }
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v
}

/// One source of a rule, as an AWS rule names it.
#[derive(Clone, Copy)]
enum Source<'a> {
    Ipv4(&'a str),
    Ipv6(&'a str),
    Group(&'a str),
}

impl Source<'_> {
    fn is_of(self, r: &SecurityGroupRule) -> bool {
        match self {
            Source::Ipv4(c) => r.cidr_ipv4() == Some(c),
            Source::Ipv6(c) => r.cidr_ipv6() == Some(c),
            Source::Group(g) => r.referenced_group_info().and_then(|i| i.group_id()) == Some(g),
        }
    }
}

/// The rule in state as AWS has it now: the sources of `prior` that AWS still has with this
/// permission, or `None` when it has none of them (the rule is gone).
fn matched(prior: &Attrs, rules: &[SecurityGroupRule]) -> Option<Attrs> {
    let spec = Spec::of(prior).ok()?;
    let mine: Vec<&SecurityGroupRule> =
        rules.iter().filter(|r| spec.covers_permission(r)).collect();
    let mut hits: Vec<&SecurityGroupRule> = Vec::new();
    // Each source is kept when some AWS rule of this permission has it.
    let mut found = |source: Source<'_>| {
        let before = hits.len();
        hits.extend(mine.iter().copied().filter(|r| source.is_of(r)));
        hits.len() > before
    };
    let cidrs: Vec<String> = spec
        .cidrs
        .iter()
        .filter(|c| found(Source::Ipv4(c)))
        .cloned()
        .collect();
    let ipv6: Vec<String> = spec
        .ipv6
        .iter()
        .filter(|c| found(Source::Ipv6(c)))
        .cloned()
        .collect();
    let source = spec.source.as_deref().filter(|g| found(Source::Group(g)));
    let self_ = spec.self_ && found(Source::Group(&spec.group));
    if hits.is_empty() {
        return None;
    }
    let mut a = prior.clone();
    a.insert("cidr_blocks".into(), cidrs.into());
    a.insert("ipv6_cidr_blocks".into(), ipv6.into());
    if spec.source.is_some() {
        a.insert("source_security_group_id".into(), source.into());
    }
    a.insert("self".into(), self_.into());
    let described = hits
        .iter()
        .find_map(|r| r.description())
        .filter(|d| !d.is_empty());
    if described != spec.description.as_deref() {
        a.insert("description".into(), described.into());
    }
    // Terraform's rule id is AWS's only when the rule stands for exactly one AWS rule.
    let single = (spec.source_count() == 1 && hits.len() == 1)
        .then(|| hits[0].security_group_rule_id())
        .flatten()
        .unwrap_or_default();
    a.insert("security_group_rule_id".into(), single.into());
    Some(a)
}

/// Every rule of these groups, one call per page.
async fn group_rules(
    p: &AwsProvider,
    groups: &[String],
) -> Result<Vec<SecurityGroupRule>, ProviderError> {
    by_chunks("group-id", groups, |f| async {
        p.ec2
            .describe_security_group_rules()
            .filters(f)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws_err)
    })
    .await
}

pub(super) async fn read_all(
    p: &AwsProvider,
    items: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    let mut groups: Vec<String> = items
        .iter()
        .filter_map(|(_, a)| s(a, "security_group_id").map(String::from))
        .collect();
    groups.sort();
    groups.dedup();
    if groups.is_empty() {
        return Ok(ById::new());
    }
    let rules = group_rules(p, &groups).await?;
    Ok(items
        .iter()
        .filter_map(|(id, prior)| Some((id.clone(), matched(prior, &rules)?)))
        .collect())
}

/// Reads the rule the configuration describes, under its id.
async fn read_one(p: &AwsProvider, spec: &Spec, a: &Attrs) -> Result<ById, ProviderError> {
    let mut desired = a.clone();
    desired.insert("id".into(), spec.id().into());
    read_all(p, &[(spec.id(), desired)]).await
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let spec = Spec::of(a)?;
    if spec.source_count() == 0 {
        return Err(ProviderError::new(
            "InvalidParameterCombination",
            "an aws_security_group_rule needs at least one of cidr_blocks, ipv6_cidr_blocks, \
             source_security_group_id and self",
        ));
    }
    let sent =
        security_group::authorize(p, &spec.group, spec.egress, vec![spec.permission()]).await;
    let id = spec.id();
    match sent {
        Ok(()) => {}
        // The permission is already there: made by a create whose answer was lost, or
        // declared twice. Adopted when every source is there; AWS authorizes all or none.
        Err(e) if e.code == "InvalidPermission.Duplicate" => {
            let found = read_one(p, &spec, a).await?.remove(&id);
            return match found {
                Some(attrs) if Spec::of(&attrs)?.source_count() == spec.source_count() => {
                    Ok((id, attrs))
                }
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    }
    after_made(async {
        // A second read: the answer lists AWS's rules one per source, and the rule in state
        // is all of them under Terraform's hash.
        read_one(p, &spec, a).await?.remove(&id).map_or_else(
            || {
                Err(ProviderError::new(
                    "NotFound",
                    format!("security group rule {id} vanished after it was authorized"),
                ))
            },
            |attrs| Ok((id.clone(), attrs)),
        )
    })
    .await
}

/// Only the description changes in place, on every source of the rule.
pub(super) async fn update(
    p: &AwsProvider,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let spec = Spec::of(a)?;
    let perm = spec.permission();
    if spec.egress {
        p.ec2
            .update_security_group_rule_descriptions_egress()
            .group_id(&spec.group)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(aws_err)?;
    } else {
        p.ec2
            .update_security_group_rule_descriptions_ingress()
            .group_id(&spec.group)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(aws_err)?;
    }
    let mut result = prior.clone();
    result.insert(
        "description".into(),
        a.get("description")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    );
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, prior: &Attrs) -> Result<(), ProviderError> {
    let spec = Spec::of(prior)?;
    delete_with_retry(|| {
        security_group::revoke(p, &spec.group, spec.egress, vec![spec.permission()])
    })
    .await
}

/// A lost create made the permission, or nothing: the permission in the group is the rule.
async fn find(p: &AwsProvider, lost: Lost<'_>, ctx: &OpContext) -> Result<Found, ProviderError> {
    let Ok(spec) = Spec::of(lost.planned) else {
        return Ok(Found::Nothing);
    };
    Ok(adopted(read_back(p, ctx, &spec.id(), lost.planned).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_id_depends_on_the_permission_and_not_on_the_order_of_sources_or_the_description() {
        let a = attrs(serde_json::json!({
            "type": "ingress", "security_group_id": "sg-1", "protocol": "tcp",
            "from_port": 22, "to_port": 22, "cidr_blocks": ["10.0.0.0/8", "192.168.0.0/16"],
            "description": "ssh"
        }));
        let mut b = a.clone();
        b.insert(
            "cidr_blocks".into(),
            serde_json::json!(["192.168.0.0/16", "10.0.0.0/8"]),
        );
        b.insert("description".into(), "other".into());
        let id = Spec::of(&a).unwrap().id();
        assert!(id.starts_with("sgrule-"), "{id}");
        assert_eq!(id, Spec::of(&b).unwrap().id());
        b.insert("to_port".into(), 23.into());
        assert_ne!(id, Spec::of(&b).unwrap().id());
        b.insert("to_port".into(), 22.into());
        b.insert("type".into(), "egress".into());
        assert_ne!(id, Spec::of(&b).unwrap().id());
    }

    #[test]
    fn protocol_names_numbers_and_all_compare_as_aws_reports_them() {
        assert_eq!(normalize_protocol("all"), "-1");
        assert_eq!(normalize_protocol("6"), "tcp");
        assert_eq!(normalize_protocol("UDP"), "udp");
    }
}
