//! `aws_route`: one route of a route table. A route has no id or tags in AWS; its table and
//! destination identify it, so its id is Terraform's `r-<table><CRC-32 of the destination>`,
//! refresh finds each route in state in one `DescribeRouteTables` per page over their tables,
//! and a create that finds the route already there (a lost create) adopts it when its target
//! is the configured one. The target changes in place (`ReplaceRoute`).
//!
//! Also the plan check for the fight with inline routes: a table's `route` blocks are
//! authoritative (`route_table.rs` deletes the routes it does not list), so an `aws_route` on a
//! table that declares them would be deleted by each apply of the table and made again by the
//! next apply of the route.

use aws_sdk_ec2::types::Route;

use super::ec2_common::{by_chunks, crc32, delete_with_retry, ById};
use super::resource::{adopted, read_back, Read, Recover, Resource};
use super::{after_made, aws_err, req, route_table, s, AwsProvider};
use crate::engine::provider::{Found, Lost, OpContext, Planned, Problem, ProviderError};
use crate::lang::value::Value;
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_route",
    schema: include_str!("../../schemas/aws_route.json"),
    read: Read::DescribeWithPrior(|p, items| Box::pin(read_all(p, items))),
    create: |p, a, _| Box::pin(create(p, a)),
    update: Some(|p, _, _, a, _| Box::pin(update(p, a))),
    delete: |p, _, prior| Box::pin(delete(p, prior)),
    recover: Recover::Identity(|p, lost, ctx| Box::pin(find(p, lost, ctx))),
    describe_tagged: None,
    evidence: None,
};

/// How AWS reports one target of a route.
type TargetOf = fn(&Route) -> Option<&str>;

/// The targets skyform sets, with how AWS reports each on a route.
const TARGETS: [(&str, TargetOf); 5] = [
    ("gateway_id", Route::gateway_id),
    ("nat_gateway_id", Route::nat_gateway_id),
    ("network_interface_id", Route::network_interface_id),
    (
        "vpc_peering_connection_id",
        Route::vpc_peering_connection_id,
    ),
    ("transit_gateway_id", Route::transit_gateway_id),
];

/// A route's table and destination, which identify it.
struct Key<'a> {
    table: &'a str,
    /// The destination and whether it is IPv6.
    destination: (&'a str, bool),
}

impl Key<'_> {
    fn of(a: &Attrs) -> Result<Key<'_>, ProviderError> {
        let destination = match (
            s(a, "destination_cidr_block"),
            s(a, "destination_ipv6_cidr_block"),
        ) {
            (Some(c), None) => (c, false),
            (None, Some(c)) => (c, true),
            _ => {
                return Err(ProviderError::new(
                    "InvalidParameterCombination",
                    "an aws_route needs exactly one of destination_cidr_block and \
                     destination_ipv6_cidr_block",
                ))
            }
        };
        Ok(Key {
            table: req(a, "route_table_id")?,
            destination,
        })
    }

    /// Terraform's id: `r-`, the table id, and the CRC-32 of the destination.
    fn id(&self) -> String {
        format!("r-{}{}", self.table, crc32(self.destination.0.as_bytes()))
    }

    fn is(&self, r: &Route) -> bool {
        let (dest, v6) = self.destination;
        if v6 {
            r.destination_ipv6_cidr_block() == Some(dest)
        } else {
            r.destination_cidr_block() == Some(dest)
        }
    }
}

/// The configured target: exactly one.
fn target(a: &Attrs) -> Result<(&'static str, &str), ProviderError> {
    let given: Vec<(&'static str, &str)> = TARGETS
        .iter()
        .filter_map(|(k, _)| s(a, k).filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    match given.as_slice() {
        [one] => Ok(*one),
        _ => Err(ProviderError::new(
            "InvalidParameterCombination",
            "an aws_route needs exactly one target: gateway_id, nat_gateway_id, \
             network_interface_id, vpc_peering_connection_id or transit_gateway_id",
        )),
    }
}

/// The route in state as AWS has it: the prior attributes with AWS's target and state.
fn attrs_of(prior: &Attrs, r: &Route) -> Attrs {
    let mut a = prior.clone();
    for (key, of) in TARGETS {
        match of(r) {
            Some(v) => {
                a.insert(key.into(), v.into());
            }
            None if a.contains_key(key) => {
                a.insert(key.into(), serde_json::Value::Null);
            }
            None => {}
        }
    }
    a.insert(
        "origin".into(),
        r.origin()
            .map(aws_sdk_ec2::types::RouteOrigin::as_str)
            .unwrap_or_default()
            .into(),
    );
    a.insert(
        "state".into(),
        r.state()
            .map(aws_sdk_ec2::types::RouteState::as_str)
            .unwrap_or_default()
            .into(),
    );
    a
}

pub(super) async fn read_all(
    p: &AwsProvider,
    items: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    let mut tables: Vec<String> = items
        .iter()
        .filter_map(|(_, a)| s(a, "route_table_id").map(String::from))
        .collect();
    tables.sort();
    tables.dedup();
    if tables.is_empty() {
        return Ok(ById::new());
    }
    let described = by_chunks("route-table-id", &tables, |f| {
        route_table::describe(p, vec![f])
    })
    .await?;
    let mut out = ById::new();
    for (id, prior) in items {
        let Ok(key) = Key::of(prior) else { continue };
        let route = described
            .iter()
            .filter(|t| t.route_table_id() == Some(key.table))
            .flat_map(aws_sdk_ec2::types::RouteTable::routes)
            .find(|r| key.is(r));
        if let Some(r) = route {
            out.insert(id.clone(), attrs_of(prior, r));
        }
    }
    Ok(out)
}

/// Reads the configured route under its id.
async fn read_one(p: &AwsProvider, a: &Attrs) -> Result<Option<(String, Attrs)>, ProviderError> {
    let id = Key::of(a)?.id();
    let mut desired = a.clone();
    desired.insert("id".into(), id.clone().into());
    Ok(read_all(p, &[(id.clone(), desired)])
        .await?
        .remove(&id)
        .map(|found| (id, found)))
}

pub(super) async fn create(p: &AwsProvider, a: &Attrs) -> Result<(String, Attrs), ProviderError> {
    let key = Key::of(a)?;
    let (kind, to) = target(a)?;
    let (dest, v6) = key.destination;
    let call = p.ec2.create_route().route_table_id(key.table);
    let call = if v6 {
        call.destination_ipv6_cidr_block(dest)
    } else {
        call.destination_cidr_block(dest)
    };
    let sent = with_target(call, kind, to)
        .send()
        .await
        .map(|_| ())
        .map_err(aws_err);
    match sent {
        Ok(()) => {}
        // The route is there already: made by a create whose answer was lost (adopted when it
        // goes where this one is configured to), or by someone else (refused).
        Err(e) if e.code == "RouteAlreadyExists" => {
            return match read_one(p, a).await? {
                Some((id, found)) if s(&found, kind) == Some(to) => Ok((id, found)),
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    }
    after_made(async {
        // A second read: CreateRoute answers only `true`.
        read_one(p, a).await?.ok_or_else(|| {
            ProviderError::new(
                "NotFound",
                format!("route {} vanished after it was created", key.id()),
            )
        })
    })
    .await
}

/// Sets the target on a `CreateRoute` or `ReplaceRoute` call: the SDK's builders share no trait,
/// so a macro names the setters.
macro_rules! target_setter {
    ($name:ident, $builder:ty) => {
        fn $name(call: $builder, kind: &str, to: &str) -> $builder {
            match kind {
                "nat_gateway_id" => call.nat_gateway_id(to),
                "network_interface_id" => call.network_interface_id(to),
                "vpc_peering_connection_id" => call.vpc_peering_connection_id(to),
                "transit_gateway_id" => call.transit_gateway_id(to),
                _ => call.gateway_id(to),
            }
        }
    };
}
target_setter!(
    with_target,
    aws_sdk_ec2::operation::create_route::builders::CreateRouteFluentBuilder
);
target_setter!(
    with_new_target,
    aws_sdk_ec2::operation::replace_route::builders::ReplaceRouteFluentBuilder
);

/// Only the target changes in place; a new table or destination is a new route.
pub(super) async fn update(p: &AwsProvider, a: &Attrs) -> Result<Attrs, ProviderError> {
    let key = Key::of(a)?;
    let (kind, to) = target(a)?;
    let (dest, v6) = key.destination;
    let call = p.ec2.replace_route().route_table_id(key.table);
    let call = if v6 {
        call.destination_ipv6_cidr_block(dest)
    } else {
        call.destination_cidr_block(dest)
    };
    with_new_target(call, kind, to)
        .send()
        .await
        .map_err(aws_err)?;
    read_one(p, a)
        .await?
        .map(|(_, found)| found)
        .ok_or_else(|| {
            ProviderError::new(
                "NotFound",
                format!("route {} vanished after it was replaced", key.id()),
            )
        })
}

pub(super) async fn delete(p: &AwsProvider, prior: &Attrs) -> Result<(), ProviderError> {
    let key = Key::of(prior)?;
    let (dest, v6) = key.destination;
    delete_with_retry(|| async {
        let call = p.ec2.delete_route().route_table_id(key.table);
        let call = if v6 {
            call.destination_ipv6_cidr_block(dest)
        } else {
            call.destination_cidr_block(dest)
        };
        call.send().await.map(|_| ()).map_err(aws_err)
    })
    .await
}

/// A lost create made the route, or nothing: the table and destination identify it.
async fn find(p: &AwsProvider, lost: Lost<'_>, ctx: &OpContext) -> Result<Found, ProviderError> {
    let Ok(key) = Key::of(lost.planned) else {
        return Ok(Found::Nothing);
    };
    Ok(adopted(read_back(p, ctx, &key.id(), lost.planned).await?))
}

/// An `aws_route` on a table that also declares inline `route` blocks (even `route = []`):
/// those are authoritative, so each apply of the table deletes the route and each apply of
/// the route makes it again. A table without `route` blocks leaves its routes alone.
pub(crate) fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
    let tables: std::collections::BTreeMap<_, _> = planned
        .iter()
        .filter(|p| p.addr.type_name == "aws_route_table")
        .map(|p| (&p.addr, p))
        .collect();
    let mut problems = Vec::new();
    for route in planned.iter().filter(|p| p.addr.type_name == "aws_route") {
        let Some(refs) = route.refs.get("route_table_id") else {
            continue;
        };
        for table in refs.iter().filter_map(|t| tables.get(t)) {
            if table
                .attrs
                .get("route")
                .is_none_or(|v| matches!(v, Value::Null))
            {
                continue;
            }
            problems.push(Problem {
                addr: route.addr.clone(),
                attr: Some("route_table_id".into()),
                message: format!(
                    "{route}: {table} also declares inline route blocks, and a table's inline \
                     route blocks are authoritative in skyform: applying {table} deletes every \
                     route it does not list, including this one, which the next apply adds \
                     again. Terraform's docs warn against combining inline routes with \
                     aws_route resources: move {table}'s route blocks into aws_route \
                     resources, or this route into its route blocks",
                    route = route.addr,
                    table = table.addr,
                ),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_table_and_a_hash_of_the_destination() {
        let a: Attrs = serde_json::from_value(serde_json::json!({
            "route_table_id": "rtb-1", "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": "igw-1"
        }))
        .unwrap();
        let id = Key::of(&a).unwrap().id();
        assert_eq!(id, format!("r-rtb-1{}", crc32(b"0.0.0.0/0")));
        let mut b = a.clone();
        b.insert("gateway_id".into(), "igw-2".into());
        assert_eq!(Key::of(&b).unwrap().id(), id, "the target is not identity");
    }

    #[test]
    fn a_route_needs_one_destination_and_one_target() {
        let a: Attrs = serde_json::from_value(serde_json::json!({
            "route_table_id": "rtb-1", "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": "igw-1", "nat_gateway_id": "nat-1"
        }))
        .unwrap();
        assert!(target(&a).is_err());
        let mut b = a.clone();
        b.remove("nat_gateway_id");
        assert_eq!(target(&b).unwrap(), ("gateway_id", "igw-1"));
        b.insert("destination_ipv6_cidr_block".into(), "::/0".into());
        assert!(Key::of(&b).is_err());
    }
}
