//! The table of every AWS resource type and data source skyform implements, one line each.
//! Refresh, create, update, delete, recovery, the lineage scan and data-source reads all look
//! the type up here, so adding a type is its schema, its file, and its line below.

use super::resource::{DataSource, Resource};
use super::{
    ami, caller_identity, cluster, eip, iam_access_key, iam_inline_policy, iam_instance_profile,
    iam_policy, iam_policy_attachment, iam_policy_document, iam_role, iam_user, instance,
    internet_gateway, key_pair, nat_gateway, placement_group, region, route, route_table,
    security_group, security_group_rule, security_group_rule_legacy, subnet, vpc,
};

/// Every resource type. Refresh issues the types' own Describe calls in this order.
pub(crate) const RESOURCE_TYPES: &[&Resource] = &[
    &iam_role::TYPE,
    &iam_policy::TYPE,
    &iam_policy_attachment::ROLE_TYPE,
    &iam_inline_policy::ROLE_TYPE,
    &iam_instance_profile::TYPE,
    &iam_user::TYPE,
    &iam_policy_attachment::USER_TYPE,
    &iam_inline_policy::USER_TYPE,
    &iam_access_key::TYPE,
    &vpc::TYPE,
    &subnet::TYPE,
    &internet_gateway::TYPE,
    &eip::TYPE,
    &nat_gateway::TYPE,
    &route_table::TYPE,
    &route_table::ASSOCIATION_TYPE,
    &route::TYPE,
    &security_group::TYPE,
    &security_group_rule::INGRESS_TYPE,
    &security_group_rule::EGRESS_TYPE,
    &security_group_rule_legacy::TYPE,
    &key_pair::TYPE,
    &placement_group::TYPE,
    &cluster::TYPE,
    &instance::TYPE,
    &eip::ASSOCIATION_TYPE,
];

/// Resource types refused on purpose, with why and what to use instead: `validate` and `plan`
/// say so at the block, instead of "unknown resource type".
pub(crate) const REFUSED_TYPES: &[(&str, &str)] = &[(
    "aws_iam_policy_attachment",
    "it is exclusive: it detaches the policy from every other role, user and group in the \
     account that it does not list, including those managed elsewhere. Attach the policy \
     with aws_iam_role_policy_attachment (per role) or aws_iam_user_policy_attachment (per \
     user) instead",
)];

/// Every data source.
pub(crate) const DATA_SOURCES: &[&DataSource] = &[
    &ami::DATA,
    &caller_identity::DATA,
    &iam_policy::DATA,
    &iam_policy_document::DATA,
    &region::DATA_PARTITION,
    &region::DATA_REGION,
    &vpc::DATA,
    &subnet::DATA_SUBNET,
    &subnet::DATA_SUBNETS,
    &subnet::DATA_AVAILABILITY_ZONES,
];

pub(crate) fn resource_type(name: &str) -> Option<&'static Resource> {
    RESOURCE_TYPES.iter().copied().find(|t| t.name == name)
}

pub(crate) fn data_source(name: &str) -> Option<&'static DataSource> {
    DATA_SOURCES.iter().copied().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::aws::resource::Recover;
    use crate::aws::schemas::registry;

    #[test]
    fn every_resource_schema_has_exactly_one_aws_implementation_and_every_implementation_a_schema()
    {
        let schemas: BTreeSet<&str> = registry().resources.keys().map(String::as_str).collect();
        let implemented: Vec<&str> = RESOURCE_TYPES.iter().map(|t| t.name).collect();
        let distinct: BTreeSet<&str> = implemented.iter().copied().collect();
        assert_eq!(distinct.len(), implemented.len(), "a type registered twice");
        assert_eq!(schemas, distinct);
    }

    #[test]
    fn every_data_source_schema_has_exactly_one_aws_implementation_and_every_implementation_a_schema(
    ) {
        let schemas: BTreeSet<&str> = registry().data.keys().map(String::as_str).collect();
        let implemented: Vec<&str> = DATA_SOURCES.iter().map(|d| d.name).collect();
        let distinct: BTreeSet<&str> = implemented.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            implemented.len(),
            "a data source registered twice"
        );
        assert_eq!(schemas, distinct);
    }

    #[test]
    fn a_refused_type_is_not_also_implemented_and_says_what_to_use_instead() {
        for (name, why) in REFUSED_TYPES {
            assert!(
                resource_type(name).is_none(),
                "{name} is both refused and registered"
            );
            assert!(registry().refused.contains_key(*name), "{name}");
            assert!(why.contains("instead"), "{name}: {why}");
        }
    }

    #[test]
    fn a_type_found_again_by_its_tags_can_be_described_by_them() {
        for t in RESOURCE_TYPES {
            if matches!(t.recover, Recover::Tags) {
                assert!(
                    t.describe_tagged.is_some(),
                    "{} has no describe_tagged",
                    t.name
                );
            }
        }
    }

    #[test]
    fn a_type_without_an_update_is_replaced_on_every_change() {
        for t in RESOURCE_TYPES.iter().filter(|t| t.update.is_none()) {
            let schema = &registry().resources[t.name];
            for (name, attr) in &schema.attributes {
                assert!(
                    !attr.settable() || attr.force_new,
                    "{}.{name} can change, but {} has no update",
                    t.name,
                    t.name
                );
            }
        }
    }
}
