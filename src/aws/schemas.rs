//! The AWS provider's schemas: every `schemas/*.json` file (and `schemas/data/`), embedded in
//! the binary and parsed once. A test checks that this list and the directory agree.

use std::sync::OnceLock;

#[cfg(test)]
use crate::lang::schema::AttrMode;
use crate::lang::schema::Registry;

/// Every resource schema file, embedded.
const RESOURCE_SCHEMAS: &[(&str, &str)] = &[
    (
        "aws_cluster",
        include_str!("../../schemas/aws_cluster.json"),
    ),
    (
        "aws_iam_access_key",
        include_str!("../../schemas/aws_iam_access_key.json"),
    ),
    (
        "aws_iam_instance_profile",
        include_str!("../../schemas/aws_iam_instance_profile.json"),
    ),
    (
        "aws_iam_policy",
        include_str!("../../schemas/aws_iam_policy.json"),
    ),
    (
        "aws_iam_role",
        include_str!("../../schemas/aws_iam_role.json"),
    ),
    (
        "aws_iam_role_policy_attachment",
        include_str!("../../schemas/aws_iam_role_policy_attachment.json"),
    ),
    (
        "aws_iam_user",
        include_str!("../../schemas/aws_iam_user.json"),
    ),
    (
        "aws_iam_user_policy_attachment",
        include_str!("../../schemas/aws_iam_user_policy_attachment.json"),
    ),
    (
        "aws_instance",
        include_str!("../../schemas/aws_instance.json"),
    ),
    (
        "aws_internet_gateway",
        include_str!("../../schemas/aws_internet_gateway.json"),
    ),
    (
        "aws_route_table",
        include_str!("../../schemas/aws_route_table.json"),
    ),
    (
        "aws_route_table_association",
        include_str!("../../schemas/aws_route_table_association.json"),
    ),
    (
        "aws_security_group",
        include_str!("../../schemas/aws_security_group.json"),
    ),
    ("aws_subnet", include_str!("../../schemas/aws_subnet.json")),
    ("aws_vpc", include_str!("../../schemas/aws_vpc.json")),
];

const DATA_SCHEMAS: &[(&str, &str)] = &[
    (
        "aws_availability_zones",
        include_str!("../../schemas/data/aws_availability_zones.json"),
    ),
    (
        "aws_caller_identity",
        include_str!("../../schemas/data/aws_caller_identity.json"),
    ),
    (
        "aws_subnets",
        include_str!("../../schemas/data/aws_subnets.json"),
    ),
    ("aws_vpc", include_str!("../../schemas/data/aws_vpc.json")),
];

/// The type of an attribute.
/// The AWS schemas, parsed once.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::parse(RESOURCE_SCHEMAS, DATA_SCHEMAS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_parses_and_names_its_own_type() {
        let reg = registry();
        for (name, s) in reg.resources.iter().chain(reg.data.iter()) {
            assert_eq!(&s.type_name, name);
            for (attr, a) in &s.attributes {
                assert!(
                    !(a.mode == AttrMode::Computed && a.default.is_some()),
                    "{name}.{attr}"
                );
                assert!(
                    !a.description.is_empty(),
                    "{name}.{attr} has no description"
                );
            }
        }
    }

    #[test]
    fn the_embedded_list_matches_the_schemas_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let names = |d: std::path::PathBuf| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".json")
                        .map(String::from)
                })
                // The permission table lives beside the schemas but is not one.
                .filter(|n| n != "permissions")
                .collect();
            v.sort();
            v
        };
        let embedded: Vec<String> = RESOURCE_SCHEMAS
            .iter()
            .map(|(n, _)| (*n).to_string())
            .collect();
        assert_eq!(names(dir.clone()), embedded);
        let embedded: Vec<String> = DATA_SCHEMAS.iter().map(|(n, _)| (*n).to_string()).collect();
        assert_eq!(names(dir.join("data")), embedded);
    }
}
