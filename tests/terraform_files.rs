//! Terraform's own files: a `*.tf` directory loads with no renaming, the `terraform {}` block is
//! checked, and the legacy forms Terraform still accepts keep working (with its warnings).

use crate::config_errors::fails_with;
use crate::support::{block_on, stderr, stdout, Moto, Project};

/// A Terraform directory as Terraform 0.11 habits leave it: an S3 backend with a `DynamoDB`
/// lock table, quoted `depends_on`,
/// and `"${...}"`-only strings, one of which carries a map.
const MAIN_TF: &str = r#"terraform {
  required_version = ">= 1.0, < 2.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
  backend "s3" {
    bucket         = "somewhere"
    key            = "project/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "terraform-locks"
    use_path_style = true
  }
}

variable "name" {
  default = "tf-dir-user"
}

variable "tags" {
  default = { team = "infra" }
}

resource "aws_iam_role" "r" {
  name               = "tf-dir-role"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}

resource "aws_iam_user" "u" {
  name       = "${var.name}"
  tags       = "${var.tags}"
  depends_on = ["aws_iam_role.r"]
}
"#;

#[test]
fn a_terraform_directory_applies_and_then_plans_no_changes() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.tf", MAIN_TF)]);
    moto.bucket("somewhere");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    assert!(err.contains("dynamodb_table is ignored"), "{err}");
    assert!(
        err.contains("Using the S3 backend at s3://somewhere/project/terraform.tfstate"),
        "{err}"
    );
    assert!(err.contains("Quoted references are deprecated"), "{err}");
    assert!(err.contains("main.tf:34:17"), "{err}");

    let iam = moto.iam();
    block_on(async {
        let user = iam
            .get_user()
            .user_name("tf-dir-user")
            .send()
            .await
            .expect("user")
            .user
            .expect("user");
        // The map came through `"${var.tags}"` unconverted; skyform adds its own tags beside it.
        let team = user.tags().iter().find(|t| t.key() == "team");
        assert_eq!(team.map(aws_sdk_iam::types::Tag::value), Some("infra"));
        iam.get_role()
            .role_name("tf-dir-role")
            .send()
            .await
            .expect("role");
    });

    let plan = moto.run(&p, &["plan"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
}

const USER: &str = "resource \"aws_iam_user\" \"u\" { name = \"a\" }\n";

#[test]
fn a_required_version_skyform_does_not_implement_is_refused() {
    fails_with(
        &[(
            "main.tf",
            &format!("terraform {{\n  required_version = \"~> 0.12.0\"\n}}\n{USER}"),
        )],
        &[
            "Unsupported Terraform Core version",
            "Terraform version 1.5.7",
            "main.tf:2:22",
        ],
    );
}

#[test]
fn a_provider_other_than_aws_in_required_providers_is_refused() {
    fails_with(
        &[(
            "versions.tf",
            "terraform {\n  required_providers {\n    aws    = { source = \"hashicorp/aws\" }\n    google = { source = \"hashicorp/google\" }\n  }\n}\n",
        ), ("main.tf", USER)],
        &["provider \"google\" is not supported", "versions.tf:4:5"],
    );
}

#[test]
fn override_files_are_refused_by_name_rather_than_skipped() {
    fails_with(
        &[
            ("main.tf", USER),
            ("main_override.tf", USER),
            ("override.tf.json", "{}"),
        ],
        &[
            "main_override.tf: override files are not supported yet",
            "override.tf.json: override files are not supported yet",
        ],
    );
}

/// A `*.tf.json` file as tools that generate Terraform write it: blocks by nested keys,
/// repeated nested blocks as arrays, templates in strings, bare expressions where Terraform
/// reads them, and `//` comments.
const MAIN_TF_JSON: &str = r#"{
  "//": "generated",
  "variable": {
    "teams": { "type": "set(string)", "default": ["ml", "web"] }
  },
  "resource": {
    "aws_iam_role": {
      "team": {
        "for_each": "${var.teams}",
        "name": "json-${each.key}",
        "assume_role_policy": "${jsonencode({ Version = \"2012-10-17\", Statement = [] })}",
        "tags": { "Team": "${each.key}" }
      }
    },
    "aws_vpc": {
      "main": { "cidr_block": "10.40.0.0/16", "tags": { "Name": "json-vpc" } }
    },
    "aws_security_group": {
      "nodes": {
        "name": "json-nodes",
        "description": "from JSON",
        "vpc_id": "${aws_vpc.main.id}",
        "depends_on": ["aws_iam_role.team"],
        "ingress": [
          { "from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.40.0.0/16"] },
          { "from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.40.0.0/16"] }
        ]
      }
    }
  },
  "output": {
    "roles": { "value": "${[for r in aws_iam_role.team : r.name]}" }
  }
}
"#;

#[test]
fn a_tf_json_file_applies_and_then_plans_no_changes() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.tf.json", MAIN_TF_JSON)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let iam = moto.iam();
    let ec2 = moto.ec2();
    block_on(async {
        for team in ["ml", "web"] {
            let role = iam
                .get_role()
                .role_name(format!("json-{team}"))
                .send()
                .await
                .expect("role");
            let tag = role.role().and_then(|r| {
                r.tags()
                    .iter()
                    .find(|t| t.key() == "Team")
                    .map(|t| t.value().to_string())
            });
            assert_eq!(tag.as_deref(), Some(team));
        }
        let groups = ec2
            .describe_security_groups()
            .group_names("json-nodes")
            .send()
            .await
            .expect("security group");
        let ports: Vec<i32> = groups.security_groups()[0]
            .ip_permissions()
            .iter()
            .filter_map(aws_sdk_ec2::types::IpPermission::from_port)
            .collect();
        assert_eq!(ports.len(), 2, "{ports:?}");
    });
    let plan = moto.run(&p, &["plan"]);
    assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
}

#[test]
fn a_mistake_in_a_tf_json_file_is_shown_at_its_place_in_the_json() {
    fails_with(
        &[(
            "main.tf.json",
            "{\n  \"resource\": {\n    \"aws_iam_user\": {\n      \"u\": {\n        \"name\": \"${var.nope}\"\n      }\n    }\n  }\n}\n",
        )],
        &["undefined variable var.nope", "main.tf.json:5:"],
    );
    fails_with(
        &[("main.tf.json", "{\n  \"resource\": ,\n}\n")],
        &["invalid JSON", "main.tf.json:2:"],
    );
}

#[test]
fn tf_and_sky_hcl_files_in_one_directory_are_one_configuration() {
    fails_with(
        &[("a.sky.hcl", USER), ("b.tf", USER)],
        &["duplicate aws_iam_user.u", "first declared at a.sky.hcl:1:"],
    );
    let p = Project::new(&[
        ("a.sky.hcl", USER),
        ("b.tf", "output \"n\" {\n  value = aws_iam_user.u.name\n}\n"),
    ]);
    let out = p.offline().arg("validate").output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_quoted_depends_on_is_checked_like_an_unquoted_one() {
    fails_with(
        &[(
            "main.tf",
            "resource \"aws_iam_user\" \"u\" {\n  name = \"a\"\n  depends_on = [\"aws_iam_role.missing\"]\n}\n",
        )],
        &["Quoted references are deprecated", "aws_iam_role.missing"],
    );
}

#[test]
fn fmt_formats_tf_files_too() {
    let p = Project::new(&[(
        "main.tf",
        "resource \"aws_iam_user\" \"u\" {\nname = \"a\"\n}\n",
    )]);
    let out = p.offline().args(["fmt", "--check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("main.tf"));
    let out = p.offline().arg("fmt").output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(p.path().join("main.tf")).expect("read");
    assert!(text.contains("\n  name = \"a\"\n"), "{text}");
}

#[test]
fn timeouts_blocks_are_accepted_and_their_durations_checked() {
    let with = |create: &str| {
        format!(
            "resource \"aws_iam_user\" \"u\" {{\n  name = \"a\"\n  timeouts {{\n    create = \"{create}\"\n    delete = \"1h30m\"\n  }}\n}}\n"
        )
    };
    let p = Project::new(&[("main.tf", &with("10m"))]);
    let out = p.offline().arg("validate").output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    fails_with(
        &[("main.tf", &with("ten minutes"))],
        &[
            "timeouts.create in aws_iam_user.u must be a duration",
            "main.tf:4:14",
        ],
    );
    fails_with(
        &[(
            "main.tf",
            "resource \"aws_iam_user\" \"u\" {\n  name = \"a\"\n  timeouts {\n    craete = \"1m\"\n  }\n}\n",
        )],
        &["unknown attribute \"craete\"", "did you mean \"create\"?"],
    );
}

/// The AWS provider's data sources find VPCs and subnets by `filter` blocks, as "Terraform: Up
/// & Running" writes them; only the matching ones are found.
#[test]
fn filter_blocks_in_vpc_and_subnet_data_sources_choose_what_they_match() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = moto.ec2();
    let (vpc, subnet) = block_on(async {
        let tag = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value("book-vpc")
                    .build(),
            )
            .build();
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.77.0.0/16")
            .tag_specifications(tag)
            .send()
            .await
            .expect("vpc")
            .vpc
            .expect("vpc")
            .vpc_id
            .expect("vpc id");
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.77.1.0/24")
            .send()
            .await
            .expect("subnet")
            .subnet
            .expect("subnet")
            .subnet_id
            .expect("subnet id");
        (vpc, subnet)
    });
    let p = Project::new(&[(
        "main.tf",
        r#"data "aws_vpc" "book" {
  filter {
    name   = "tag:Name"
    values = ["book-vpc"]
  }
}

data "aws_subnets" "book" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.book.id]
  }
}

output "vpc" {
  value = data.aws_vpc.book.id
}

output "subnets" {
  value = join(",", data.aws_subnets.book.ids)
}
"#,
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let raw = |name: &str| stdout(&moto.run(&p, &["output", "--raw", name]));
    assert_eq!(raw("vpc").trim(), vpc);
    assert_eq!(
        raw("subnets").trim(),
        subnet,
        "the default VPC's subnets are not found"
    );
}
