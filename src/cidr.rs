//! IPv4 CIDR checks the plan makes before AWS would refuse: a VPC or subnet range must be a
//! network address with a /16 to /28 prefix, and a subnet's range must lie inside its VPC's.

use std::net::Ipv4Addr;

use crate::address::Address;
use crate::config::ResourceBlock;
use crate::diagnostic::Diagnostic;
use crate::eval::{references, RefTarget};

/// A parsed `a.b.c.d/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: u32,
    pub len: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR block such as 10.0.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{text:?} does not start with an IPv4 address"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("{text:?} has no prefix length from 0 to 32"))?;
        let network = u32::from(addr);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if network & !mask != 0 {
            return Err(format!(
                "{text:?} is not a network address; did you mean {}/{len}?",
                Ipv4Addr::from(network & mask)
            ));
        }
        Ok(Cidr { network, len })
    }

    /// Whether `inner` lies within `self`.
    pub fn contains(&self, inner: &Cidr) -> bool {
        let mask = if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        };
        inner.len >= self.len && inner.network & mask == self.network
    }
}

/// Checks a VPC or subnet range: a network address, /16 to /28 as AWS requires.
pub fn check_vpc_range(text: &str) -> Result<Cidr, String> {
    let c = Cidr::parse(text)?;
    if !(16..=28).contains(&c.len) {
        return Err(format!(
            "{text:?}: AWS allows VPC and subnet blocks from /16 to /28"
        ));
    }
    Ok(c)
}

/// The VPC (resource or data source) a subnet's `vpc_id` refers to, if it names exactly one.
pub fn vpc_of(block: &ResourceBlock) -> Option<Address> {
    let expr = &block.attrs.get("vpc_id")?.value.expr;
    let vpcs: Vec<Address> = references(expr)
        .0
        .into_iter()
        .filter_map(|r| match r.target {
            RefTarget::Resource(a) if a.type_name == "aws_vpc" => Some(a),
            _ => None,
        })
        .collect();
    match vpcs.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// A subnet's range outside its VPC's is an error, when both are known.
pub fn check_subnet_in_vpc(
    block: &ResourceBlock,
    subnet_cidr: &str,
    vpc: &Address,
    vpc_cidr: &str,
) -> Option<Diagnostic> {
    let (Ok(outer), Ok(inner)) = (Cidr::parse(vpc_cidr), Cidr::parse(subnet_cidr)) else {
        return None;
    };
    if outer.contains(&inner) {
        return None;
    }
    let span = block
        .attrs
        .get("cidr_block")
        .map_or_else(|| block.span.clone(), |a| a.value.span.clone());
    Some(
        Diagnostic::error(format!(
            "{}: cidr_block {subnet_cidr} is outside the range of its VPC {vpc} ({vpc_cidr})",
            block.addr
        ))
        .named("cidr_block")
        .at(span),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let vpc = Cidr::parse("10.0.0.0/16").unwrap();
        assert!(vpc.contains(&Cidr::parse("10.0.3.0/24").unwrap()));
        assert!(!vpc.contains(&Cidr::parse("10.1.0.0/24").unwrap()));
        assert!(!vpc.contains(&Cidr::parse("10.0.0.0/8").unwrap()));
        assert!(Cidr::parse("10.0.0.1/16")
            .unwrap_err()
            .contains("10.0.0.0/16"));
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert!(check_vpc_range("10.0.0.0/8").is_err());
        assert!(check_vpc_range("10.0.0.0/16").is_ok());
    }
}
