//! Provider aliases against moto: one configuration spanning two regions. Each object is made,
//! read and deleted in its own configuration's region, checked with an EC2 client per region;
//! an object whose block is gone is still deleted where it lives.

use crate::support::{block_on, stderr, stdout, Moto, Project};

const PROVIDERS: &str = r#"
provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "west"
  region = "us-west-2"
}
"#;

const EAST_VPC: &str = r#"
resource "aws_vpc" "east" {
  cidr_block = "10.10.0.0/16"
}
"#;

const WEST_VPC: &str = r#"
resource "aws_vpc" "west" {
  provider   = aws.west
  cidr_block = "10.20.0.0/16"
}
"#;

/// The CIDR blocks of the non-default VPCs that `region` holds, sorted.
fn vpcs_in(moto: &Moto, region: &str) -> Vec<String> {
    let ec2 = moto.ec2_in(region);
    block_on(async {
        let out = ec2.describe_vpcs().send().await.expect("vpcs");
        let mut cidrs: Vec<String> = out
            .vpcs()
            .iter()
            .filter(|v| v.is_default() != Some(true))
            .filter_map(|v| v.cidr_block().map(String::from))
            .collect();
        cidrs.sort();
        cidrs
    })
}

fn output(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

#[test]
fn aliased_blocks_live_in_their_own_region_and_are_deleted_there_once_their_block_is_gone() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &format!("{PROVIDERS}{EAST_VPC}{WEST_VPC}"))]);

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", output(&out));
    assert_eq!(vpcs_in(&moto, "us-east-1"), ["10.10.0.0/16"]);
    assert_eq!(vpcs_in(&moto, "us-west-2"), ["10.20.0.0/16"]);

    // Each object is read back in its own region: nothing looks gone or changed.
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    assert!(stdout(&out).contains("No changes."), "{}", output(&out));

    // With the alias's block gone too, nothing can reach the object: a clear error, and
    // nothing is touched.
    p.write(
        "main.sky.hcl",
        &format!("provider \"aws\" {{\n  region = \"us-east-1\"\n}}\n{EAST_VPC}"),
    );
    let writes_before = moto.writes().len();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    assert!(
        output(&out).contains("there is no provider \"aws\" block with alias = \"west\""),
        "{}",
        output(&out)
    );
    assert_eq!(moto.writes().len(), writes_before, "{:?}", moto.writes());
    assert_eq!(vpcs_in(&moto, "us-west-2"), ["10.20.0.0/16"]);

    // The west block goes, its provider stays: the object is destroyed in us-west-2.
    p.write("main.sky.hcl", &format!("{PROVIDERS}{EAST_VPC}"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        stdout(&out).contains("0 added, 0 changed, 1 destroyed"),
        "{}",
        output(&out)
    );
    assert!(vpcs_in(&moto, "us-west-2").is_empty());
    assert_eq!(vpcs_in(&moto, "us-east-1"), ["10.10.0.0/16"]);
}

#[test]
fn a_reference_to_an_undeclared_alias_is_reported_at_its_line_and_column() {
    let p = Project::new(&[(
        "main.sky.hcl",
        &format!("{PROVIDERS}{}", WEST_VPC.replace("aws.west", "aws.east")),
    )]);
    let out = assert_cmd::Command::cargo_bin("skyform")
        .expect("binary")
        .arg("-C")
        .arg(p.path())
        .arg("validate")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = stderr(&out);
    assert!(text.contains("reference to undefined provider"), "{text}");
    assert!(text.contains("main.sky.hcl:12:16"), "{text}");
}
