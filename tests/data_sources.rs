//! Data sources against moto: what they find is used by a resource, and the resource as EC2
//! reports it shows that the right object was found.

use crate::support::{
    attached_role_policies, block_on, policy_document, stderr, stdout, Moto, Project,
};

/// Registers an image named `name` from `instance` and returns its id.
async fn register(ec2: &aws_sdk_ec2::Client, instance: &str, name: &str) -> String {
    ec2.create_image()
        .instance_id(instance)
        .name(name)
        .send()
        .await
        .expect("create image")
        .image_id()
        .expect("image id")
        .to_string()
}

fn ami_config(filter: &str) -> String {
    format!(
        r#"
data "aws_ami" "train" {{
  owners      = ["self"]
  most_recent = true
  name_regex  = "^train-"
  filter {{
    name   = "name"
    values = ["{filter}"]
  }}
}}
resource "aws_instance" "node" {{
  ami           = data.aws_ami.train.id
  instance_type = "t3.micro"
}}
output "ami_name" {{
  value = data.aws_ami.train.name
}}
"#
    )
}

#[test]
fn an_ami_found_by_owner_filter_and_name_regex_is_the_newest_match_and_launches() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = moto.ec2();
    let (older, newer) = block_on(async {
        let run = ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run");
        let builder = run.instances()[0].instance_id().expect("id").to_string();
        let older = register(&ec2, &builder, "train-2024-01").await;
        // moto dates images to the second: the newer one must be a second younger.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let newer = register(&ec2, &builder, "train-2024-02").await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // Newest of all, but its name fails name_regex.
        register(&ec2, &builder, "scratch-2024-03").await;
        (older, newer)
    });
    assert_ne!(older, newer);
    let p = Project::new(&[("main.sky.hcl", &ami_config("*-2024-*"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ami_name = \"train-2024-02\""),
        "{}",
        stdout(&out)
    );
    let launched: Vec<String> = block_on(async {
        ec2.describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:address")
                    .values("aws_instance.node")
                    .build(),
            )
            .send()
            .await
            .expect("describe")
            .reservations()
            .iter()
            .flat_map(aws_sdk_ec2::types::Reservation::instances)
            .filter_map(|i| i.image_id().map(String::from))
            .collect()
    });
    assert_eq!(launched, [newer]);
    moto.assert_plan_clean(&p);

    p.write("main.sky.hcl", &ami_config("nothing-*"));
    let plan = moto.run(&p, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    let err = stderr(&plan);
    assert!(err.contains("Your query returned no results"), "{err}");
    assert!(err.contains("filter name = [\"nothing-*\"]"), "{err}");
    assert!(err.contains("owners = [\"self\"]"), "{err}");
}

const LOOKUPS: &str = r#"
data "aws_region" "here" {}
data "aws_region" "named" {
  region = "eu-west-1"
}
data "aws_partition" "p" {}
data "aws_iam_policy" "by_arn" {
  arn = "arn:aws:iam::123456789012:policy/team/handmade"
}
data "aws_iam_policy" "handmade" {
  name        = "handmade"
  path_prefix = "/team/"
}
resource "aws_iam_role" "r" {
  name               = "lookups"
  description        = "${data.aws_region.here.name}/${data.aws_partition.p.partition}/${data.aws_partition.p.dns_suffix}/${data.aws_region.named.name}"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.${data.aws_partition.p.dns_suffix}" }, Action = "sts:AssumeRole" }] })
}
resource "aws_iam_role_policy_attachment" "handmade" {
  role       = aws_iam_role.r.name
  policy_arn = data.aws_iam_policy.by_arn.arn
}
resource "aws_iam_policy" "copy" {
  name   = "copy-of-${data.aws_iam_policy.handmade.name}"
  policy = data.aws_iam_policy.handmade.policy
}
"#;

#[test]
fn region_partition_and_an_iam_policy_found_by_arn_or_name_feed_resources() {
    // moto loads no AWS-managed policies unless told to, so the policy found is a local one,
    // once by ARN and once by name.
    let Some(moto) = Moto::start() else { return };
    let iam = moto.iam();
    let handmade = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    block_on(async {
        iam.create_policy()
            .policy_name("handmade")
            .path("/team/")
            .policy_document(handmade)
            .send()
            .await
            .expect("create policy");
    });
    let p = Project::new(&[("main.sky.hcl", LOOKUPS)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    block_on(async {
        let role = iam
            .get_role()
            .role_name("lookups")
            .send()
            .await
            .expect("role")
            .role
            .expect("role");
        assert_eq!(
            role.description(),
            Some("us-east-1/aws/amazonaws.com/eu-west-1")
        );
        assert_eq!(
            attached_role_policies(&iam, "lookups").await,
            ["arn:aws:iam::123456789012:policy/team/handmade"]
        );
        let copy = "arn:aws:iam::123456789012:policy/copy-of-handmade";
        let doc = policy_document(&iam, copy, "v1").await;
        assert_eq!(
            doc,
            serde_json::from_str::<serde_json::Value>(handmade).unwrap()
        );
    });
    moto.assert_plan_clean(&p);

    p.write(
        "main.sky.hcl",
        "data \"aws_iam_policy\" \"x\" {\n  name = \"no-such-policy\"\n}\n",
    );
    let plan = moto.run(&p, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    assert!(
        stderr(&plan).contains("no IAM policy is named \"no-such-policy\""),
        "{}",
        stderr(&plan)
    );
}

const ONE_SUBNET: &str = r#"
data "aws_subnet" "by_tag" {
  vpc_id = "VPC"
  filter {
    name   = "tag:Name"
    values = ["lookup-b"]
  }
}
data "aws_subnet" "by_id" {
  id = data.aws_subnet.by_tag.id
}
resource "aws_security_group" "nodes" {
  name        = "in-${data.aws_subnet.by_id.availability_zone}"
  description = "${data.aws_subnet.by_tag.cidr_block}/${data.aws_subnet.by_id.tags.Name}"
  vpc_id      = data.aws_subnet.by_tag.vpc_id
}
output "found" {
  value = data.aws_subnet.by_id.id
}
"#;

#[test]
fn a_subnet_found_by_filter_or_by_id_feeds_a_resource_and_two_matches_are_an_error() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = moto.ec2();
    let (vpc, b) = block_on(async {
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.80.0.0/16")
            .send()
            .await
            .expect("vpc")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("vpc id");
        let mut ids = Vec::new();
        for (cidr, zone, name) in [
            ("10.80.1.0/24", "us-east-1a", "lookup-a"),
            ("10.80.2.0/24", "us-east-1b", "lookup-b"),
        ] {
            let tags = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Subnet)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(name)
                        .build(),
                )
                .build();
            let id = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .tag_specifications(tags)
                .send()
                .await
                .expect("subnet")
                .subnet
                .and_then(|s| s.subnet_id)
                .expect("subnet id");
            ids.push(id);
        }
        (vpc, ids[1].clone())
    });
    let p = Project::new(&[("main.sky.hcl", &ONE_SUBNET.replace("VPC", &vpc))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    block_on(async {
        let groups = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values("in-us-east-1b")
                    .build(),
            )
            .send()
            .await
            .expect("groups");
        let [g] = groups.security_groups() else {
            panic!("one group: {groups:?}")
        };
        assert_eq!(g.vpc_id(), Some(vpc.as_str()));
        assert_eq!(g.description(), Some("10.80.2.0/24/lookup-b"));
    });
    let shown = moto.run(&p, &["output", "found"]);
    assert_eq!(stdout(&shown).trim(), format!("{b:?}"));
    moto.assert_plan_clean(&p);

    p.write(
        "main.sky.hcl",
        &format!("data \"aws_subnet\" \"x\" {{\n  vpc_id = \"{vpc}\"\n}}\n"),
    );
    let plan = moto.run(&p, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    let err = stderr(&plan);
    assert!(
        err.contains(&format!(
            "2 subnets match vpc_id = \"{vpc}\" in us-east-1; exactly one must"
        )),
        "{err}"
    );
}
