//! IPv4 CIDR checks the plan makes before AWS would refuse: a VPC or subnet range must be a
//! network address with a /16 to /28 prefix, and a subnet's range must lie inside its VPC's.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::engine::provider::{Planned, Problem};
use crate::lang::address::{Address, Mode};
use crate::lang::value::Value;

/// A parsed `a.b.c.d/n` that is a network address (its host bits are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr(Ipv4Net);

impl Cidr {
    /// Parses with skyform's own messages (they say what to write instead); ipnet does the
    /// arithmetic.
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR block such as 10.0.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{text:?} does not start with an IPv4 address"))?;
        let net = len
            .parse()
            .ok()
            .and_then(|len| Ipv4Net::new(addr, len).ok())
            .ok_or_else(|| format!("{text:?} has no prefix length from 0 to 32"))?;
        if net.trunc() != net {
            return Err(format!(
                "{text:?} is not a network address; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }

    pub(crate) fn prefix_len(self) -> u8 {
        self.0.prefix_len()
    }

    /// Whether `inner` lies within `self`.
    pub(crate) fn contains(self, inner: Cidr) -> bool {
        self.0.contains(&inner.0)
    }
}

/// Checks a VPC or subnet range: a network address, /16 to /28 as AWS requires.
pub(crate) fn check_vpc_range(text: &str) -> Result<Cidr, String> {
    let c = Cidr::parse(text)?;
    if !(16..=28).contains(&c.prefix_len()) {
        return Err(format!(
            "{text:?}: AWS allows VPC and subnet blocks from /16 to /28"
        ));
    }
    Ok(c)
}

/// The VPC (resource or data source) a subnet's `vpc_id` refers to, if it names exactly one.
fn vpc_of(subnet: &Planned<'_>) -> Option<Address> {
    let vpcs: Vec<&Address> = subnet
        .refs
        .get("vpc_id")?
        .iter()
        .filter(|a| a.type_name == "aws_vpc")
        .collect();
    match vpcs.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// The plan-time checks across resources: a managed subnet's range must lie inside the range
/// of the VPC its `vpc_id` refers to, when both are known. VPCs come before their subnets in
/// plan order, so one pass sees every VPC range a subnet can refer to.
pub(crate) fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
    let mut vpc_cidrs: BTreeMap<&Address, &str> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in planned {
        let cidr = p.attrs.get("cidr_block").and_then(Value::as_str);
        match (p.addr.type_name.as_str(), cidr) {
            ("aws_vpc", Some(c)) => {
                vpc_cidrs.insert(&p.addr, c);
            }
            ("aws_subnet", Some(c)) if p.addr.mode == Mode::Managed => {
                let Some(vpc) = vpc_of(p) else { continue };
                let Some(vc) = vpc_cidrs.get(&vpc) else {
                    continue;
                };
                let (Ok(outer), Ok(inner)) = (Cidr::parse(vc), Cidr::parse(c)) else {
                    continue;
                };
                if !outer.contains(inner) {
                    problems.push(Problem {
                        addr: p.addr.clone(),
                        attr: Some("cidr_block".into()),
                        message: format!(
                            "{}: cidr_block {c} is outside the range of its VPC {vpc} ({vc})",
                            p.addr
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let vpc = Cidr::parse("10.0.0.0/16").unwrap();
        assert!(vpc.contains(Cidr::parse("10.0.3.0/24").unwrap()));
        assert!(!vpc.contains(Cidr::parse("10.1.0.0/24").unwrap()));
        assert!(!vpc.contains(Cidr::parse("10.0.0.0/8").unwrap()));
        assert!(Cidr::parse("10.0.0.1/16")
            .unwrap_err()
            .contains("10.0.0.0/16"));
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert!(check_vpc_range("10.0.0.0/8").is_err());
        assert!(check_vpc_range("10.0.0.0/16").is_ok());
    }
}
