//! The `aws_region` and `aws_partition` data sources, computed from the provider
//! configuration's region without an AWS call: configurations build ARNs and endpoints from
//! them, and an extra request per plan would buy nothing.

use super::resource::DataSource;
use super::{s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const DATA_REGION: DataSource = DataSource {
    name: "aws_region",
    schema: include_str!("../../schemas/data/aws_region.json"),
    read: |p, args| Box::pin(async move { region(p, args) }),
};

pub(super) const DATA_PARTITION: DataSource = DataSource {
    name: "aws_partition",
    schema: include_str!("../../schemas/data/aws_partition.json"),
    read: |p, _| Box::pin(async move { Ok(partition(&p.region)) }),
};

/// The partition of a region and its DNS suffix, by the region-name prefixes AWS documents.
fn partition_of(region: &str) -> (&'static str, &'static str) {
    const PARTITIONS: &[(&str, &str, &str)] = &[
        ("cn-", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-", "aws-us-gov", "amazonaws.com"),
        ("us-isob-", "aws-iso-b", "sc2s.sgov.gov"),
        ("us-iso-", "aws-iso", "c2s.ic.gov"),
        ("eu-isoe-", "aws-iso-e", "cloud.adc-e.uk"),
        ("us-isof-", "aws-iso-f", "csp.hci.ic.gov"),
    ];
    PARTITIONS
        .iter()
        .find(|(prefix, _, _)| region.starts_with(prefix))
        .map_or(("aws", "amazonaws.com"), |(_, p, d)| (*p, *d))
}

fn partition(region: &str) -> Attrs {
    let (name, dns) = partition_of(region);
    let reverse: Vec<&str> = dns.split('.').rev().collect();
    let mut a = Attrs::new();
    a.insert("id".into(), name.into());
    a.insert("partition".into(), name.into());
    a.insert("dns_suffix".into(), dns.into());
    a.insert("reverse_dns_prefix".into(), reverse.join(".").into());
    a
}

/// Whether `name` has a region's form (`us-east-1`, `us-gov-west-1`): without a call, skyform
/// cannot know every region, but it can refuse what is none.
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
}

fn region(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    // Provider v6 names the lookup `region` and keeps `name` as its deprecated spelling;
    // configurations of either era must read the same.
    let name = match (s(args, "region"), s(args, "name")) {
        (Some(r), Some(n)) if r != n => {
            return Err(ProviderError::new(
                "InvalidRegion",
                format!("region = {r:?} and name = {n:?} disagree; set only region"),
            ))
        }
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => &p.region,
    };
    if !is_region_name(name) {
        return Err(ProviderError::new(
            "InvalidRegion",
            format!("{name:?} is not an AWS region name (such as us-east-1)"),
        ));
    }
    let (_, dns) = partition_of(name);
    let mut a = args.clone();
    a.insert("name".into(), name.into());
    a.insert("region".into(), name.into());
    a.insert("id".into(), name.into());
    a.insert("endpoint".into(), format!("ec2.{name}.{dns}").into());
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_belongs_to_its_partition_with_its_dns_suffix() {
        for (region, want, dns, reverse) in [
            ("us-east-1", "aws", "amazonaws.com", "com.amazonaws"),
            ("eu-west-2", "aws", "amazonaws.com", "com.amazonaws"),
            (
                "cn-north-1",
                "aws-cn",
                "amazonaws.com.cn",
                "cn.com.amazonaws",
            ),
            (
                "us-gov-west-1",
                "aws-us-gov",
                "amazonaws.com",
                "com.amazonaws",
            ),
            ("us-iso-east-1", "aws-iso", "c2s.ic.gov", "gov.ic.c2s"),
            (
                "us-isob-east-1",
                "aws-iso-b",
                "sc2s.sgov.gov",
                "gov.sgov.sc2s",
            ),
        ] {
            let a = partition(region);
            assert_eq!(a["partition"], want, "{region}");
            assert_eq!(a["id"], want, "{region}");
            assert_eq!(a["dns_suffix"], dns, "{region}");
            assert_eq!(a["reverse_dns_prefix"], reverse, "{region}");
        }
    }

    #[test]
    fn region_names_are_told_from_what_is_none() {
        for ok in [
            "us-east-1",
            "ap-southeast-3",
            "us-gov-west-1",
            "cn-northwest-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us-east-1a", "useast1", "us--1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
