//! The provider's `default_tags` against moto: merged into every taggable resource as
//! `tags_all`, sent to AWS, changed in place when the defaults change, and never drift.
//! Tags are checked through the EC2 and IAM APIs.

use std::collections::BTreeMap;

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn config(env: &str) -> String {
    format!(
        r#"
provider "aws" {{
  region = "us-east-1"
  default_tags {{
    tags = {{
      env   = "{env}"
      owner = "platform"
    }}
  }}
}}

resource "aws_vpc" "main" {{
  cidr_block = "10.0.0.0/16"
  tags = {{
    Name  = "main"
    owner = "network"
  }}
}}

resource "aws_iam_role" "r" {{
  name               = "tagged-role"
  assume_role_policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Action = "sts:AssumeRole", Principal = {{ Service = "ec2.amazonaws.com" }} }}]
  }})
}}
"#
    )
}

/// The VPC's and the role's tags as AWS holds them, skyform's own left out.
fn aws_tags(moto: &Moto) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (ec2, iam) = (moto.ec2(), moto.iam());
    block_on(async {
        let vpcs = ec2.describe_vpcs().send().await.expect("vpcs");
        let vpc = vpcs
            .vpcs()
            .iter()
            .find(|v| v.cidr_block() == Some("10.0.0.0/16") && v.is_default() != Some(true))
            .expect("the vpc");
        let vpc_tags = vpc
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .filter(|(k, _)| !k.starts_with("skyform:"))
            .collect();
        let role = iam
            .list_role_tags()
            .role_name("tagged-role")
            .send()
            .await
            .expect("role tags");
        let role_tags = role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .filter(|(k, _)| !k.starts_with("skyform:"))
            .collect();
        (vpc_tags, role_tags)
    })
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Applies, and fails the test with skyform's output if that fails.
fn apply(moto: &Moto, p: &Project) -> String {
    let out = moto.run(p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// `plan --detailed-exitcode`: its exit code (0 no changes, 2 changes) and output.
fn plan(moto: &Moto, p: &Project) -> (Option<i32>, String) {
    let out = moto.run(p, &["plan", "--detailed-exitcode"]);
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn default_tags_reach_aws_change_in_place_and_never_drift() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config("dev"))]);

    let (code, text) = plan(&moto, &p);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("+ tags_all"),
        "the plan shows tags_all: {text}"
    );

    apply(&moto, &p);
    let (vpc, role) = aws_tags(&moto);
    assert_eq!(
        vpc,
        map(&[("Name", "main"), ("env", "dev"), ("owner", "network")]),
        "the resource's own tag wins over the default"
    );
    assert_eq!(role, map(&[("env", "dev"), ("owner", "platform")]));
    let (code, text) = plan(&moto, &p);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("No changes."), "{text}");

    // New defaults: every taggable resource is updated in place, and nothing else.
    p.write("main.sky.hcl", &config("prod"));
    let (code, text) = plan(&moto, &p);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("aws_vpc.main will be updated in-place"),
        "{text}"
    );
    assert!(
        text.contains("aws_iam_role.r will be updated in-place"),
        "{text}"
    );
    assert!(
        text.contains("0 to add, 2 to change, 0 to destroy"),
        "{text}"
    );
    assert!(
        !text.contains("changed outside of skyform"),
        "no drift: {text}"
    );

    apply(&moto, &p);
    let (vpc, role) = aws_tags(&moto);
    assert_eq!(
        vpc,
        map(&[("Name", "main"), ("env", "prod"), ("owner", "network")])
    );
    assert_eq!(role, map(&[("env", "prod"), ("owner", "platform")]));
    moto.clear_calls();
    let (code, text) = plan(&moto, &p);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("No changes."), "{text}");
    assert_eq!(moto.writes(), Vec::<String>::new());

    // A tag added outside skyform is drift to remove, from tags_all too.
    block_on(async {
        let stray = aws_sdk_iam::types::Tag::builder()
            .key("stray")
            .value("1")
            .build()
            .expect("tag");
        let iam = moto.iam();
        let tagged = iam.tag_role().role_name("tagged-role").tags(stray);
        tagged.send().await.expect("tag role");
    });
    let text = apply(&moto, &p);
    assert!(text.contains("1 changed"), "{text}");
    assert_eq!(
        aws_tags(&moto).1,
        map(&[("env", "prod"), ("owner", "platform")])
    );
}
