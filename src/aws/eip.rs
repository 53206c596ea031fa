//! `aws_eip` (an Elastic IP address, allocated with its tags and released on destroy) and
//! `aws_eip_association` (an address's association, found again by its allocation and
//! target). One `DescribeAddresses` per type serves each at refresh: the call has no pages.
//! The lineage scan's listing keeps the addresses it saw, so a plan lists addresses once.

use aws_sdk_ec2::types::{Address, DomainType, ResourceType};

use super::ec2_common::{
    arn, bool_of, by_chunks, created, filter, gone_is_done, sync_tags, tag_spec, tags_json, ById,
};
use super::resource::{
    adopted, kept_or_listed, listed, read_back, Raws, Read, Recover, Resource, Tagged,
};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_eip",
    schema: include_str!("../../schemas/aws_eip.json"),
    read: Read::Objects(|p, priors, raws| Box::pin(read_listed(p, priors, raws))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(list_tagged(p, filters))),
    evidence: None,
};

/// The addresses matching `filters`, each kept whole for the refresh (`read_listed`).
async fn list_tagged(
    p: &AwsProvider,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Tagged>, ProviderError> {
    let out = p
        .ec2
        .describe_addresses()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(aws_err)?;
    Ok(out
        .addresses()
        .iter()
        .map(|a| listed(a.tags(), a.allocation_id(), a.clone()))
        .collect())
}

/// An association carries no tags: `AssociateAddress` is idempotent per allocation and target,
/// so the address's current association with the planned target is what a lost create made.
pub(super) const ASSOCIATION_TYPE: Resource = Resource {
    name: "aws_eip_association",
    schema: include_str!("../../schemas/aws_eip_association.json"),
    read: Read::DescribeWithPrior(|p, priors| Box::pin(read_associations(p, priors))),
    create: |p, a, _| Box::pin(associate_resource(p, a)),
    update: None,
    delete: |p, id, _| Box::pin(disassociate(p, id)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find_association(p, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

async fn describe(
    p: &AwsProvider,
    f: aws_sdk_ec2::types::Filter,
) -> Result<Vec<Address>, ProviderError> {
    Ok(p.ec2
        .describe_addresses()
        .filters(f)
        .send()
        .await
        .map_err(aws_err)?
        .addresses()
        .to_vec())
}

/// The DNS names AWS gives an address, as Terraform's provider derives them: us-east-1 has
/// names of its own.
fn dns_names(region: &str, public_ip: Option<&str>, private_ip: Option<&str>) -> (String, String) {
    let (public_zone, private_zone) = if region == "us-east-1" {
        (
            "compute-1.amazonaws.com".to_string(),
            "ec2.internal".to_string(),
        )
    } else {
        (
            format!("{region}.compute.amazonaws.com"),
            format!("{region}.compute.internal"),
        )
    };
    let name = |ip: Option<&str>, zone: &str, prefix: &str| {
        ip.filter(|ip| !ip.is_empty())
            .map(|ip| format!("{prefix}-{}.{zone}", ip.replace('.', "-")))
            .unwrap_or_default()
    };
    (
        name(public_ip, &public_zone, "ec2"),
        name(private_ip, &private_zone, "ip"),
    )
}

/// Every address in `priors`, from one `DescribeAddresses`.
pub(super) async fn read_all(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    read_listed(p, priors, Raws::new()).await
}

/// Every address in `priors`: those the lineage scan listed (`raws`) as it listed them, the
/// others from one `DescribeAddresses` by id. `associate_with_private_ip` is configuration
/// AWS does not echo, so it comes from the prior attributes.
async fn read_listed(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
    raws: Raws,
) -> Result<ById, ProviderError> {
    let addresses: Vec<Address> = kept_or_listed(priors, raws, |missing| async move {
        by_chunks("allocation-id", &missing, |f| describe(p, f)).await
    })
    .await?;
    let mut out = ById::new();
    for addr in addresses {
        let Some(id) = addr.allocation_id() else {
            continue;
        };
        let mut a = Attrs::new();
        if let Some(ip) = priors
            .iter()
            .find(|(pid, _)| pid == id)
            .and_then(|(_, prior)| prior.get("associate_with_private_ip"))
        {
            a.insert("associate_with_private_ip".into(), ip.clone());
        }
        let (public_dns, private_dns) =
            dns_names(&p.region, addr.public_ip(), addr.private_ip_address());
        let text = |v: Option<&str>| serde_json::Value::from(v.unwrap_or_default());
        a.insert("id".into(), id.into());
        a.insert("allocation_id".into(), id.into());
        a.insert("arn".into(), arn(p, None, "elastic-ip", id).into());
        a.insert(
            "domain".into(),
            addr.domain().map_or("vpc", DomainType::as_str).into(),
        );
        a.insert("instance".into(), text(addr.instance_id()));
        a.insert(
            "network_interface".into(),
            text(addr.network_interface_id()),
        );
        if let Some(pool) = addr.public_ipv4_pool() {
            a.insert("public_ipv4_pool".into(), pool.into());
        }
        a.insert("public_ip".into(), text(addr.public_ip()));
        a.insert("public_dns".into(), public_dns.into());
        a.insert("private_ip".into(), text(addr.private_ip_address()));
        a.insert("private_dns".into(), private_dns.into());
        a.insert("association_id".into(), text(addr.association_id()));
        a.insert("tags".into(), tags_json(addr.tags()));
        out.insert(id.to_string(), a);
    }
    Ok(out)
}

/// Associates an address with the instance or interface `a` names under `instance_key` and
/// `interface_key`; `None` when it names neither.
async fn associate(
    p: &AwsProvider,
    allocation: &str,
    a: &Attrs,
    (instance_key, interface_key, private_ip_key): (&str, &str, &str),
) -> Result<Option<String>, ProviderError> {
    let instance = s(a, instance_key).filter(|v| !v.is_empty());
    let interface = s(a, interface_key).filter(|v| !v.is_empty());
    if instance.is_none() && interface.is_none() {
        return Ok(None);
    }
    let out = p
        .ec2
        .associate_address()
        .allocation_id(allocation)
        // AWS takes one target: an interface names its instance anyway.
        .set_instance_id(
            interface
                .is_none()
                .then(|| instance.map(String::from))
                .flatten(),
        )
        .set_network_interface_id(interface.map(String::from))
        .set_private_ip_address(
            s(a, private_ip_key)
                .filter(|v| !v.is_empty())
                .map(String::from),
        )
        .set_allow_reassociation(bool_of(a, "allow_reassociation"))
        .send()
        .await
        .map_err(aws_err)?;
    Ok(Some(
        out.association_id()
            .ok_or_else(|| {
                ProviderError::new("EmptyResponse", "AssociateAddress returned no id")
                    .after_partial_write()
            })?
            .to_string(),
    ))
}

const OWN_TARGET: (&str, &str, &str) =
    ("instance", "network_interface", "associate_with_private_ip");

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let out = p
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .set_public_ipv4_pool(s(a, "public_ipv4_pool").map(String::from))
        .set_tag_specifications(tag_spec(ResourceType::ElasticIp, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    let id = out
        .allocation_id()
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "AllocateAddress returned no allocation id")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        associate(p, &id, a, OWN_TARGET).await?;
        // A second read: the association made after AllocateAddress is in no answer.
        let prior = [(id.clone(), a.clone())];
        created(read_all(p, &prior).await?, &id, "address")
    })
    .await
}

/// The current association of an address, if any.
async fn association_of(p: &AwsProvider, id: &str) -> Result<Option<String>, ProviderError> {
    let found = read_all(p, &[(id.to_string(), Attrs::new())]).await?;
    Ok(found
        .get(id)
        .and_then(|a| s(a, "association_id"))
        .filter(|v| !v.is_empty())
        .map(String::from))
}

pub(super) async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let target = |x: &Attrs| {
        (
            s(x, "instance").unwrap_or_default().to_string(),
            s(x, "network_interface").unwrap_or_default().to_string(),
            s(x, "associate_with_private_ip")
                .unwrap_or_default()
                .to_string(),
        )
    };
    if target(prior) != target(a) {
        if let Some(assoc) = association_of(p, id).await? {
            disassociate(p, &assoc).await?;
        }
        associate(p, id, a, OWN_TARGET).await?;
    }
    let mut result = prior.clone();
    sync_tags(p, id, prior, a, &mut result).await?;
    let found = read_all(p, &[(id.to_string(), a.clone())]).await?;
    Ok(found.get(id).cloned().map_or(result, |mut now| {
        now.insert("tags".into(), super::tags_value(a));
        now
    }))
}

/// Disassociates what this resource associated (its `instance` or `network_interface`), then
/// releases the address. An association some other resource made is left to it: AWS then
/// refuses the release, which says what holds the address.
pub(super) async fn delete(p: &AwsProvider, id: &str, prior: &Attrs) -> Result<(), ProviderError> {
    let found = read_all(p, &[(id.to_string(), Attrs::new())]).await?;
    let Some(now) = found.get(id) else {
        return Ok(());
    };
    let ours = |key: &str| {
        s(now, key)
            .filter(|v| !v.is_empty())
            .is_some_and(|v| s(prior, key) == Some(v))
    };
    if let Some(assoc) = s(now, "association_id").filter(|v| !v.is_empty()) {
        if ours("instance") || ours("network_interface") {
            disassociate(p, assoc).await?;
        }
    }
    gone_is_done(
        p.ec2
            .release_address()
            .allocation_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
    )
}

/// Associations, by association id, from one `DescribeAddresses`; `allow_reassociation` is
/// an instruction to the call, not something AWS shows, so it comes from the prior.
pub(super) async fn read_associations(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    let ids: Vec<String> = priors.iter().map(|(id, _)| id.clone()).collect();
    let mut out = ById::new();
    for addr in by_chunks("association-id", &ids, |f| describe(p, f)).await? {
        let Some(id) = addr.association_id() else {
            continue;
        };
        let mut a = Attrs::new();
        if let Some(allow) = priors
            .iter()
            .find(|(pid, _)| pid == id)
            .and_then(|(_, prior)| prior.get("allow_reassociation"))
        {
            a.insert("allow_reassociation".into(), allow.clone());
        }
        let text = |v: Option<&str>| serde_json::Value::from(v.unwrap_or_default());
        a.insert("id".into(), id.into());
        a.insert("allocation_id".into(), text(addr.allocation_id()));
        a.insert("instance_id".into(), text(addr.instance_id()));
        a.insert(
            "network_interface_id".into(),
            text(addr.network_interface_id()),
        );
        a.insert("private_ip_address".into(), text(addr.private_ip_address()));
        out.insert(id.to_string(), a);
    }
    Ok(out)
}

async fn associate_resource(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let allocation = req(a, "allocation_id")?;
    let target = ("instance_id", "network_interface_id", "private_ip_address");
    let Some(id) = associate(p, allocation, a, target).await? else {
        return Err(ProviderError::new(
            "MissingAttribute",
            "aws_eip_association needs instance_id or network_interface_id",
        ));
    };
    after_made(async {
        let prior = [(id.clone(), a.clone())];
        created(read_associations(p, &prior).await?, &id, "association")
    })
    .await
}

pub(super) async fn disassociate(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    gone_is_done(
        p.ec2
            .disassociate_address()
            .association_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err),
    )
}

/// The address's current association, when it is with the planned instance or interface.
async fn find_association(
    p: &AwsProvider,
    lost: Lost<'_>,
    ctx: &OpContext,
) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    let Some(allocation) = s(planned, "allocation_id") else {
        return Ok(Found::Nothing);
    };
    let wanted = |key: &str, got: Option<&str>| {
        s(planned, key)
            .filter(|v| !v.is_empty())
            .is_some_and(|v| got == Some(v))
    };
    let id = describe(p, filter("allocation-id", &[allocation.to_string()]))
        .await?
        .into_iter()
        .find(|addr| {
            wanted("instance_id", addr.instance_id())
                || wanted("network_interface_id", addr.network_interface_id())
        })
        .and_then(|addr| addr.association_id().map(String::from));
    match id {
        Some(id) => Ok(adopted(read_back(p, ctx, &id, planned).await?)),
        None => Ok(Found::Nothing),
    }
}

#[cfg(test)]
mod tests {
    use super::dns_names;

    #[test]
    fn address_dns_names_follow_aws_s_naming_with_us_east_1_s_own_zones() {
        assert_eq!(
            dns_names("us-east-1", Some("54.1.2.3"), Some("10.0.1.5")),
            (
                "ec2-54-1-2-3.compute-1.amazonaws.com".to_string(),
                "ip-10-0-1-5.ec2.internal".to_string()
            )
        );
        assert_eq!(
            dns_names("eu-west-1", Some("54.1.2.3"), None),
            (
                "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com".to_string(),
                String::new()
            )
        );
    }
}
