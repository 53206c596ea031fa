//! The AWS provider's schemas: each registered type embeds its `schemas/*.json` file (data
//! sources `schemas/data/`), so the registry of types is also the list of schemas, parsed once.
//! A test checks that every file in `schemas/` belongs to a registered type.

use std::sync::OnceLock;

use super::registry::{DATA_SOURCES, REFUSED_TYPES, RESOURCE_TYPES};
#[cfg(test)]
use crate::lang::schema::AttrMode;
use crate::lang::schema::Registry;

/// The AWS schemas, parsed once.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let resources: Vec<(&str, &str)> =
            RESOURCE_TYPES.iter().map(|t| (t.name, t.schema)).collect();
        let data: Vec<(&str, &str)> = DATA_SOURCES.iter().map(|d| (d.name, d.schema)).collect();
        Registry::parse(&resources, &data).with_refused(REFUSED_TYPES)
    })
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
    fn every_schema_file_belongs_to_a_registered_type() {
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
        let reg = registry();
        let embedded: Vec<String> = reg.resources.keys().cloned().collect();
        assert_eq!(names(dir.clone()), embedded);
        let embedded: Vec<String> = reg.data.keys().cloned().collect();
        assert_eq!(names(dir.join("data")), embedded);
    }
}
