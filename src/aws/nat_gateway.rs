//! `aws_nat_gateway`: created with a `ClientToken` and its tags, waited for until `available`,
//! and on destroy waited for until `deleted`. Its Elastic IP belongs to an `aws_eip`, so
//! nothing here releases one. AWS keeps deleted and failed gateways listed for a while; every
//! read here counts them as gone.

use aws_sdk_ec2::types::{
    ConnectivityType, Filter, NatGateway, NatGatewayAddress, NatGatewayState, ResourceType,
};

use super::ec2_common::{by_chunks, created, filter, sync_tags, tag_spec, tags_json, ById};
use super::nodes::poll_until;
use super::resource::{by_id, described, Read, Recover, Resource, Tagged};
use super::{after_made, aws_err, req, s, AwsProvider};
use crate::engine::provider::{OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_nat_gateway",
    schema: include_str!("../../schemas/aws_nat_gateway.json"),
    read: Read::Describe(|p, ids| Box::pin(read_all(p, ids))),
    create: |p, a, ctx| Box::pin(create(p, a, ctx)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, prior| Box::pin(delete(p, id, prior)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(read_tagged(p, filters))),
    evidence: None,
};

fn state_of(g: &NatGateway) -> &str {
    g.state().map_or("unknown", NatGatewayState::as_str)
}

/// A gateway AWS still lists but that is no longer there to use.
fn gone(g: &NatGateway) -> bool {
    matches!(state_of(g), "deleted" | "failed")
}

/// The gateways matching `filters`, one call per page, without the gone ones.
async fn describe(p: &AwsProvider, filters: Vec<Filter>) -> Result<Vec<NatGateway>, ProviderError> {
    let all = p
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    Ok(all.into_iter().filter(|g| !gone(g)).collect())
}

/// Gateways by filters, with everything refresh reads.
async fn read_tagged(p: &AwsProvider, filters: Vec<Filter>) -> Result<Vec<Tagged>, ProviderError> {
    Ok(describe(p, filters)
        .await?
        .iter()
        .filter_map(|g| {
            let id = g.nat_gateway_id()?;
            Some(described(g.tags(), id, attrs_of(g, id)))
        })
        .collect())
}

fn attrs_of(g: &NatGateway, id: &str) -> Attrs {
    // The primary address is the one the gateway was created with.
    let primary = g
        .nat_gateway_addresses()
        .iter()
        .find(|a| a.is_primary() == Some(true))
        .or_else(|| g.nat_gateway_addresses().first());
    let field = |f: fn(&NatGatewayAddress) -> Option<&str>| {
        serde_json::Value::from(primary.and_then(f).unwrap_or_default())
    };
    let mut a = Attrs::new();
    a.insert("id".into(), id.into());
    a.insert("subnet_id".into(), g.subnet_id().unwrap_or_default().into());
    a.insert(
        "connectivity_type".into(),
        g.connectivity_type()
            .map_or("public", ConnectivityType::as_str)
            .into(),
    );
    // A private gateway has no allocation: the key stays out, as in its configuration.
    if let Some(allocation) = primary.and_then(|a| a.allocation_id()) {
        a.insert("allocation_id".into(), allocation.into());
    }
    a.insert("private_ip".into(), field(NatGatewayAddress::private_ip));
    a.insert("public_ip".into(), field(NatGatewayAddress::public_ip));
    a.insert(
        "network_interface_id".into(),
        field(NatGatewayAddress::network_interface_id),
    );
    a.insert(
        "association_id".into(),
        field(NatGatewayAddress::association_id),
    );
    a.insert("tags".into(), tags_json(g.tags()));
    a
}

pub(super) async fn read_all(p: &AwsProvider, ids: &[String]) -> Result<ById, ProviderError> {
    Ok(by_id(
        by_chunks("nat-gateway-id", ids, |f| read_tagged(p, vec![f])).await?,
    ))
}

/// A `ClientToken` from what identifies this create: a repeated call with it returns the
/// gateway the first one made instead of a second one. The settings are part of it so that a
/// replacement, which changes one, gets a gateway of its own.
fn client_token(ctx: &OpContext, a: &Attrs, attempt: &str) -> String {
    let settings = [
        "subnet_id",
        "allocation_id",
        "connectivity_type",
        "private_ip",
    ]
    .map(|k| s(a, k).unwrap_or_default())
    .join("/");
    let digest = crate::lang::digest::sha256(
        format!("{}/{}/{settings}/{attempt}", ctx.lineage, ctx.addr).as_bytes(),
    );
    // ClientToken allows 64 ASCII characters.
    digest[..48].to_string()
}

async fn create_call(
    p: &AwsProvider,
    a: &Attrs,
    token: String,
) -> Result<NatGateway, ProviderError> {
    let out = p
        .ec2
        .create_nat_gateway()
        .subnet_id(req(a, "subnet_id")?)
        .set_allocation_id(s(a, "allocation_id").map(String::from))
        .connectivity_type(ConnectivityType::from(
            s(a, "connectivity_type").unwrap_or("public"),
        ))
        .set_private_ip_address(s(a, "private_ip").map(String::from))
        .client_token(token)
        .set_tag_specifications(tag_spec(ResourceType::Natgateway, a).map(|t| vec![t]))
        .send()
        .await
        .map_err(aws_err)?;
    out.nat_gateway().cloned().ok_or_else(|| {
        ProviderError::new("EmptyResponse", "CreateNatGateway returned nothing")
            .after_partial_write()
    })
}

pub(super) async fn create(
    p: &AwsProvider,
    a: &Attrs,
    ctx: &OpContext,
) -> Result<(String, Attrs), ProviderError> {
    let mut gateway = create_call(p, a, client_token(ctx, a, "")).await?;
    // The token is remembered past a gateway's deletion: replacing a gateway with the same
    // settings (`-replace`) gets back the old one, on its way out. A token of this moment then
    // makes a new one.
    if matches!(state_of(&gateway), "deleting" | "deleted" | "failed") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        gateway = create_call(p, a, client_token(ctx, a, &now.to_string())).await?;
    }
    let id = gateway
        .nat_gateway_id()
        .ok_or_else(|| {
            ProviderError::new("EmptyResponse", "CreateNatGateway returned no id")
                .after_partial_write()
        })?
        .to_string();
    after_made(async {
        wait_available(p, &id).await?;
        // The wait's last read is the object; this one turns it into attributes as refresh
        // does (a second Describe once the gateway is up, next to the minutes it takes).
        created(
            read_all(p, std::slice::from_ref(&id)).await?,
            &id,
            "NAT gateway",
        )
    })
    .await
}

/// Waits until the gateway is `available`; a gateway that failed is an error with AWS's
/// reason (the engine then replaces it on the next apply, since refresh counts it as gone).
async fn wait_available(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    let ids = [id.to_string()];
    poll_until("available", || async {
        let found = p
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await
            .map_err(aws_err)?;
        let Some(g) = found.nat_gateways().first() else {
            return Ok(ids.to_vec());
        };
        match state_of(g) {
            "available" => Ok(Vec::new()),
            "failed" | "deleting" | "deleted" => Err(ProviderError::new(
                g.failure_code().unwrap_or("NatGatewayFailed"),
                format!(
                    "NAT gateway {id} is {}: {}",
                    state_of(g),
                    g.failure_message().unwrap_or("AWS gave no reason")
                ),
            )),
            _ => Ok(ids.to_vec()),
        }
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

/// Deletes the gateway and waits until AWS says `deleted`: until then its interface and its
/// Elastic IP's association are still in place, and the subnet or address cannot go.
pub(super) async fn delete(p: &AwsProvider, id: &str, prior: &Attrs) -> Result<(), ProviderError> {
    let result = p
        .ec2
        .delete_nat_gateway()
        .nat_gateway_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(aws_err);
    match result {
        Err(e) if e.code == "NatGatewayNotFound" || e.code.ends_with(".NotFound") => return Ok(()),
        other => other?,
    }
    let ids = [id.to_string()];
    poll_until("deleted", || async {
        let left = describe(p, vec![filter("nat-gateway-id", &ids)]).await?;
        Ok(left
            .iter()
            .filter_map(|g| g.nat_gateway_id().map(String::from))
            .collect())
    })
    .await?;
    drop_own_association(p, prior).await
}

/// The gateway's own association with its Elastic IP ends with it: AWS drops it when the
/// gateway is deleted, but an emulator (moto) keeps it, and a replacement gateway given the
/// same address would then fail with `Resource.AlreadyAssociated`. Only an association with
/// this gateway's interface is dropped; the address itself stays, it belongs to its `aws_eip`.
async fn drop_own_association(p: &AwsProvider, prior: &Attrs) -> Result<(), ProviderError> {
    let (Some(allocation), Some(eni)) =
        (s(prior, "allocation_id"), s(prior, "network_interface_id"))
    else {
        return Ok(());
    };
    let out = p
        .ec2
        .describe_addresses()
        .filters(filter("allocation-id", &[allocation.to_string()]))
        .send()
        .await
        .map_err(aws_err)?;
    for a in out.addresses() {
        if let (Some(assoc), Some(on)) = (a.association_id(), a.network_interface_id()) {
            if on == eni {
                super::eip::disassociate(p, assoc).await?;
            }
        }
    }
    Ok(())
}
