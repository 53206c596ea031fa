//! The `aws_ami` data source: one `DescribeImages` search (owners, executable users, filters),
//! narrowed by `name_regex` and `most_recent` as Terraform's AWS provider does, so that cluster
//! configurations can pick their image by name instead of pinning a region's AMI id.

use aws_sdk_ec2::types::Image;
use serde_json::Value as Json;

use super::ec2_common::{block_filters, bool_of, describe_filters, strings, tags_json};
use super::resource::DataSource;
use super::{aws_err, s, AwsProvider};
use crate::engine::provider::ProviderError;
use crate::state::Attrs;

pub(super) const DATA: DataSource = DataSource {
    name: "aws_ami",
    schema: include_str!("../../schemas/data/aws_ami.json"),
    read: |p, args| Box::pin(find(p, args)),
};

/// What the search was, for the messages: Terraform's own say only "no results", which leaves
/// the user guessing which filter was wrong.
fn criteria(args: &Attrs, filters: &[aws_sdk_ec2::types::Filter]) -> String {
    let mut out = describe_filters(filters);
    for key in ["owners", "executable_users"] {
        let values = strings(args.get(key));
        if !values.is_empty() {
            out.push(format!("{key} = {values:?}"));
        }
    }
    if let Some(re) = s(args, "name_regex") {
        out.push(format!("name_regex = {re:?}"));
    }
    if out.is_empty() {
        "no criteria".into()
    } else {
        out.join(", ")
    }
}

/// Of the images found, the one the configuration asks for.
fn choose(mut images: Vec<Image>, args: &Attrs, searched: &str) -> Result<Image, ProviderError> {
    if let Some(re) = s(args, "name_regex") {
        let re = regex::Regex::new(re).map_err(|e| {
            ProviderError::new(
                "InvalidNameRegex",
                format!("name_regex {re:?} is not a regular expression: {e}"),
            )
        })?;
        images.retain(|i| re.is_match(i.name().unwrap_or_default()));
    }
    if images.len() > 1 && !bool_of(args, "most_recent").unwrap_or(false) {
        return Err(ProviderError::new(
            "TooManyResults",
            format!(
                "Your query returned more than one result ({} AMIs match {searched}). Please try a more specific search criteria, or set `most_recent` attribute to true.",
                images.len()
            ),
        ));
    }
    // ISO 8601 dates in one zone order as text; ties go to the id, so the pick is stable.
    images
        .into_iter()
        .max_by(|a, b| {
            (a.creation_date(), a.image_id()).cmp(&(b.creation_date(), b.image_id()))
        })
        .ok_or_else(|| {
            ProviderError::new(
                "NoResults",
                format!("Your query returned no results ({searched}). Please change your search criteria and try again."),
            )
        })
}

/// An SDK enum's text (`x86_64`, `hvm`), empty when AWS leaves it out.
fn named<T: AsRef<str>>(v: Option<&T>) -> Json {
    Json::from(v.map_or("", AsRef::as_ref))
}

/// The schema's computed attributes of an image.
fn attributes(p: &AwsProvider, args: &Attrs, image: &Image) -> Attrs {
    let text = |v: Option<&str>| Json::from(v.unwrap_or_default());
    let id = image.image_id().unwrap_or_default();
    let root_snapshot = image
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == image.root_device_name())
        .and_then(|m| m.ebs())
        .and_then(|e| e.snapshot_id());
    let mut a = args.clone();
    a.insert("id".into(), id.into());
    a.insert("image_id".into(), id.into());
    a.insert(
        "arn".into(),
        format!("arn:aws:ec2:{}::image/{id}", p.region).into(),
    );
    a.insert("name".into(), text(image.name()));
    a.insert("description".into(), text(image.description()));
    a.insert("architecture".into(), named(image.architecture()));
    a.insert("creation_date".into(), text(image.creation_date()));
    a.insert("deprecation_time".into(), text(image.deprecation_time()));
    a.insert("owner_id".into(), text(image.owner_id()));
    a.insert("image_owner_alias".into(), text(image.image_owner_alias()));
    a.insert("image_location".into(), text(image.image_location()));
    a.insert("image_type".into(), named(image.image_type()));
    a.insert("platform".into(), named(image.platform()));
    a.insert("platform_details".into(), text(image.platform_details()));
    a.insert("public".into(), image.public().unwrap_or(false).into());
    a.insert("state".into(), named(image.state()));
    a.insert("root_device_name".into(), text(image.root_device_name()));
    a.insert("root_device_type".into(), named(image.root_device_type()));
    a.insert("root_snapshot_id".into(), text(root_snapshot));
    a.insert(
        "virtualization_type".into(),
        named(image.virtualization_type()),
    );
    a.insert("hypervisor".into(), named(image.hypervisor()));
    a.insert(
        "ena_support".into(),
        image.ena_support().unwrap_or(false).into(),
    );
    a.insert("sriov_net_support".into(), text(image.sriov_net_support()));
    a.insert("boot_mode".into(), named(image.boot_mode()));
    a.insert("tags".into(), tags_json(image.tags()));
    a
}

pub(super) async fn find(p: &AwsProvider, args: &Attrs) -> Result<Attrs, ProviderError> {
    let filters = block_filters(args);
    let searched = criteria(args, &filters);
    let owners = strings(args.get("owners"));
    let users = strings(args.get("executable_users"));
    let images = p
        .ec2
        .describe_images()
        .set_owners((!owners.is_empty()).then_some(owners))
        .set_executable_users((!users.is_empty()).then_some(users))
        .set_filters((!filters.is_empty()).then_some(filters))
        .set_include_deprecated(bool_of(args, "include_deprecated"))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err)?;
    let image = choose(images, args, &searched)?;
    Ok(attributes(p, args, &image))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn image(id: &str, name: &str, created: &str) -> Image {
        Image::builder()
            .image_id(id)
            .name(name)
            .creation_date(created)
            .build()
    }

    fn args(v: Json) -> Attrs {
        let Json::Object(m) = v else { panic!("{v}") };
        m
    }

    fn images() -> Vec<Image> {
        vec![
            image("ami-1", "ubuntu-22.04-20240101", "2024-01-01T00:00:00.000Z"),
            image("ami-3", "ubuntu-22.04-20240301", "2024-03-01T00:00:00.000Z"),
            image("ami-2", "debian-12-20240201", "2024-02-01T00:00:00.000Z"),
        ]
    }

    #[test]
    fn most_recent_takes_the_latest_creation_date_among_the_names_that_match() {
        let a = args(json!({"most_recent": true, "name_regex": "^ubuntu-"}));
        assert_eq!(choose(images(), &a, "").unwrap().image_id(), Some("ami-3"));
        let a = args(json!({"most_recent": true, "name_regex": "^debian"}));
        assert_eq!(choose(images(), &a, "").unwrap().image_id(), Some("ami-2"));
    }

    #[test]
    fn several_matches_without_most_recent_and_no_match_are_errors_that_show_the_search() {
        let a = args(json!({"most_recent": false, "owners": ["099720109477"]}));
        let searched = criteria(&a, &[]);
        let e = choose(images(), &a, &searched).unwrap_err();
        assert!(
            e.message.contains("more than one result (3 AMIs"),
            "{}",
            e.message
        );
        let a = args(json!({"most_recent": true, "name_regex": "^rhel", "owners": ["amazon"]}));
        let searched = criteria(
            &a,
            &[super::super::ec2_common::filter("name", &["rhel-*".into()])],
        );
        let e = choose(images(), &a, &searched).unwrap_err();
        assert_eq!(e.code, "NoResults");
        for part in [
            "filter name = [\"rhel-*\"]",
            "owners = [\"amazon\"]",
            "name_regex = \"^rhel\"",
        ] {
            assert!(e.message.contains(part), "{part}: {}", e.message);
        }
    }

    #[test]
    fn a_name_regex_that_does_not_compile_is_a_clear_error() {
        let a = args(json!({"name_regex": "ubuntu-("}));
        let e = choose(images(), &a, "").unwrap_err();
        assert!(
            e.message.contains("not a regular expression"),
            "{}",
            e.message
        );
    }
}
