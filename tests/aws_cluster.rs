//! Clusters and instances against moto: nodes verified through the EC2 API (count, state,
//! tags, instance profile, security group), in-place scaling, stop and start, healing a node
//! terminated out of band, the owner guard, and `IMDSv2` (the cluster example is applied in
//! `examples_applied`).

use crate::support::{block_on, stderr, stdout, Moto, Project};

const CLUSTER: &str = r#"
variable "num_nodes" {
  type    = number
  default = 3
}

variable "state" {
  type    = string
  default = "running"
}

data "aws_vpc" "default" {
  default = true
}

resource "aws_iam_role" "skypilot" {
  name = "skypilot-v1"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_instance_profile" "skypilot" {
  name = "skypilot-v1"
  role = aws_iam_role.skypilot.name
}

resource "aws_security_group" "nodes" {
  name   = "cluster-nodes"
  vpc_id = data.aws_vpc.default.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}

resource "aws_cluster" "c" {
  name                 = "gpu-test"
  num_nodes            = var.num_nodes
  instance_type        = "t3.micro"
  image_id             = "ami-12c6146b"
  security_group_ids   = [aws_security_group.nodes.id]
  iam_instance_profile = aws_iam_instance_profile.skypilot.name
  state                = var.state
  tags                 = { team = "ml" }
}
"#;

fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    moto.ec2()
}

/// A node as EC2 reports it.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    index: String,
    state: String,
    profile: String,
    groups: Vec<String>,
    team: String,
}

/// The cluster's nodes that are not terminated, by node index.
fn nodes(moto: &Moto, cluster: &str) -> Vec<Node> {
    let out = block_on(
        ec2(moto)
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:cluster")
                    .values(cluster)
                    .build(),
            )
            .send(),
    )
    .expect("describe instances");
    let mut found: Vec<Node> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .filter(|i| {
            !matches!(
                i.state()
                    .and_then(|s| s.name())
                    .map(aws_sdk_ec2::types::InstanceStateName::as_str),
                Some("terminated" | "shutting-down")
            )
        })
        .map(|i| {
            let tag = |k: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string()
            };
            Node {
                id: i.instance_id().unwrap_or_default().to_string(),
                index: tag("skyform:node"),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                profile: i
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .unwrap_or_default()
                    .to_string(),
                groups: i
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from))
                    .collect(),
                team: tag("team"),
            }
        })
        .collect();
    found.sort_by(|a, b| a.index.cmp(&b.index));
    found
}

fn indexes(nodes: &[Node]) -> Vec<&str> {
    nodes.iter().map(|n| n.index.as_str()).collect()
}

#[test]
fn a_three_node_cluster_is_verified_through_ec2_and_scales_in_place() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CLUSTER)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let group = block_on(
        ec2(&moto)
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values("cluster-nodes")
                    .build(),
            )
            .send(),
    )
    .expect("groups")
    .security_groups()[0]
        .group_id()
        .expect("id")
        .to_string();
    let first = nodes(&moto, "gpu-test");
    assert_eq!(indexes(&first), ["0", "1", "2"]);
    for n in &first {
        assert_eq!(n.state, "running");
        assert!(
            n.profile.ends_with(":instance-profile/skypilot-v1"),
            "{n:?}"
        );
        assert_eq!(n.groups, std::slice::from_ref(&group));
        assert_eq!(n.team, "ml");
    }
    let head = first[0].id.clone();

    for (size, want) in [
        ("5", &["0", "1", "2", "3", "4"][..]),
        ("2", &["0", "1"][..]),
    ] {
        let out = moto.run(&p, &["plan", "--var", &format!("num_nodes={size}")]);
        assert!(
            stdout(&out).contains("Plan: 0 to add, 1 to change, 0 to destroy."),
            "{}",
            stdout(&out)
        );
        let out = moto.run(
            &p,
            &[
                "apply",
                "--auto-approve",
                "--var",
                &format!("num_nodes={size}"),
            ],
        );
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let now = nodes(&moto, "gpu-test");
        assert_eq!(indexes(&now), want);
        assert_eq!(now[0].id, head, "the head node is never replaced");
    }
    let out = moto.run(&p, &["plan", "--var", "num_nodes=2", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_cluster_stops_and_starts_heals_a_terminated_node_and_is_destroyed() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CLUSTER)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());

    let out = moto.run(&p, &["apply", "--auto-approve", "--var", "state=stopped"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(nodes(&moto, "gpu-test")
        .iter()
        .all(|n| n.state == "stopped"));
    let out = moto.run(&p, &["apply", "--auto-approve", "--var", "state=running"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(nodes(&moto, "gpu-test")
        .iter()
        .all(|n| n.state == "running"));

    let victim = nodes(&moto, "gpu-test")[1].id.clone();
    block_on(
        ec2(&moto)
            .terminate_instances()
            .instance_ids(&victim)
            .send(),
    )
    .expect("terminate");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("# aws_cluster.c has changed"), "{text}");
    assert!(text.contains("num_nodes = 3 -> 2"), "{text}");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let healed = nodes(&moto, "gpu-test");
    assert_eq!(indexes(&healed), ["0", "1", "2"]);
    assert_ne!(healed[1].id, victim, "node 1 is a new instance");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        nodes(&moto, "gpu-test").is_empty(),
        "every node is terminated"
    );
}

#[test]
fn another_accounts_identity_cannot_change_a_cluster_and_nothing_is_written() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CLUSTER)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_cluster.c"]));
    assert!(
        shown.contains("account = \"123456789012\""),
        "the owner is stored: {shown}"
    );

    let (key, secret, token) = moto.assume_role("arn:aws:iam::111111111111:role/admin");
    moto.clear_calls();
    for cmd in [
        &["apply", "--auto-approve", "--var", "num_nodes=1"][..],
        &["destroy", "--auto-approve"][..],
    ] {
        let out = moto
            .skyform(&p)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
            .args(cmd)
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(
            err.contains("123456789012") && err.contains("111111111111"),
            "{err}"
        );
    }
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert_eq!(nodes(&moto, "gpu-test").len(), 3);
    let out = moto
        .skyform(&p)
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", &token)
        .args(["plan", "--var", "num_nodes=1"])
        .output()
        .expect("run");
    assert!(out.status.success(), "plan works under any identity");
    assert!(
        stderr(&out).contains("aws_cluster.c is owned by arn:aws:sts::123456789012:user/moto"),
        "{}",
        stderr(&out)
    );

    // Another user of the same account is warned, and proceeds.
    let iam = moto.iam();
    let colleague = block_on(async {
        iam.create_user()
            .user_name("colleague")
            .send()
            .await
            .expect("user");
        iam.create_access_key()
            .user_name("colleague")
            .send()
            .await
            .expect("key")
            .access_key
            .expect("key")
    });
    let out = moto
        .skyform(&p)
        .env("AWS_ACCESS_KEY_ID", &colleague.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &colleague.secret_access_key)
        .args(["apply", "--auto-approve", "--var", "num_nodes=2"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("same account. Proceeding."),
        "{}",
        stderr(&out)
    );
    assert_eq!(nodes(&moto, "gpu-test").len(), 2);
}

fn imds_cluster(http_tokens: &str) -> String {
    format!(
        r#"resource "aws_cluster" "c" {{
  name          = "imds"
  num_nodes     = 2
  instance_type = "t3.micro"
  image_id      = "ami-12c6146b"

  metadata_options {{
    http_tokens = "{http_tokens}"
  }}
}}
"#
    )
}

/// Every running instance's id and `HttpTokens`, sorted by id.
fn http_tokens(moto: &Moto) -> Vec<(String, String)> {
    let ec2 = moto.ec2();
    let out = block_on(async {
        ec2.describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
    })
    .expect("describe instances");
    let mut seen: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.metadata_options()
                    .and_then(|m| m.http_tokens())
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    seen
}

#[test]
fn cluster_nodes_get_imdsv2_at_launch_and_metadata_options_change_in_place() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &imds_cluster("required"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let launched = http_tokens(&moto);
    assert_eq!(launched.len(), 2, "{launched:?}");
    assert!(
        launched.iter().all(|(_, t)| t == "required"),
        "{launched:?}"
    );
    moto.assert_plan_clean(&p);

    p.write("main.sky.hcl", &imds_cluster("optional"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("0 to add, 1 to change, 0 to destroy"),
        "{}",
        stdout(&out)
    );
    let changed = http_tokens(&moto);
    let ids = |v: &[(String, String)]| v.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&changed), ids(&launched), "the same nodes");
    assert!(changed.iter().all(|(_, t)| t == "optional"), "{changed:?}");
    moto.assert_plan_clean(&p);
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

fn disk_clusters(size: u32) -> String {
    format!(
        r#"resource "aws_cluster" "big" {{
  name          = "disks"
  num_nodes     = 2
  instance_type = "t3.micro"
  image_id      = "ami-12c6146b"

  root_block_device {{
    volume_size = {size}
    volume_type = "gp3"
    encrypted   = true
  }}
}}

resource "aws_cluster" "small" {{
  name          = "disks-small"
  instance_type = "t3.micro"
  image_id      = "ami-12c6146b"

  root_block_device {{
    volume_size = 12
  }}
}}
"#
    )
}

/// The root volume of every live node of `cluster`: (size, type, encrypted), by node.
fn root_volumes(moto: &Moto, cluster: &str) -> Vec<(Option<i32>, String, Option<bool>)> {
    let ec2 = moto.ec2();
    let ids: Vec<String> = nodes(moto, cluster).into_iter().map(|n| n.id).collect();
    block_on(async {
        let out = ec2
            .describe_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .expect("describe instances");
        let mut found = Vec::new();
        for i in out
            .reservations()
            .iter()
            .flat_map(aws_sdk_ec2::types::Reservation::instances)
        {
            let volume = i
                .block_device_mappings()
                .iter()
                .find(|b| b.device_name() == i.root_device_name())
                .and_then(|b| b.ebs()?.volume_id())
                .expect("a root volume");
            let v = ec2
                .describe_volumes()
                .volume_ids(volume)
                .send()
                .await
                .expect("describe volumes")
                .volumes()[0]
                .clone();
            found.push((
                v.size(),
                v.volume_type()
                    .map_or("", aws_sdk_ec2::types::VolumeType::as_str)
                    .to_string(),
                v.encrypted(),
            ));
        }
        found
    })
}

#[test]
fn every_cluster_node_gets_the_root_block_device_read_back_in_one_describe_volumes() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &disk_clusters(30))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let wanted = (Some(30), "gp3".to_string(), Some(true));
    assert_eq!(root_volumes(&moto, "disks"), [wanted.clone(), wanted]);
    assert_eq!(root_volumes(&moto, "disks-small")[0].0, Some(12));

    moto.clear_calls();
    moto.assert_plan_clean(&p);
    let calls = moto.calls.lock().expect("calls").clone();
    // Both clusters' head volumes in one request: refresh stays batched.
    let volumes = calls.iter().filter(|c| *c == "DescribeVolumes").count();
    assert_eq!(volumes, 1, "{calls:?}");

    // A new size is a new cluster, as a new root volume is a new instance in Terraform.
    p.write("main.sky.hcl", &disk_clusters(40));
    let out = moto.run(&p, &["plan"]);
    let plan = stdout(&out);
    assert!(plan.contains("aws_cluster.big must be replaced"), "{plan}");
    assert!(
        plan.contains("1 to add, 0 to change, 1 to destroy"),
        "{plan}"
    );

    p.write("main.sky.hcl", &disk_clusters(30));
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(nodes(&moto, "disks").is_empty());
    assert!(nodes(&moto, "disks-small").is_empty());
}

#[test]
fn root_block_device_and_root_volume_size_gb_together_are_refused_at_validate() {
    let config = r#"resource "aws_cluster" "c" {
  name                = "both"
  instance_type       = "t3.micro"
  image_id            = "ami-12c6146b"
  root_volume_size_gb = 30

  root_block_device {
    volume_size = 30
  }
}
"#;
    let p = Project::new(&[("main.sky.hcl", config)]);
    let out = p.offline().arg("validate").output().expect("validate");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("aws_cluster.c.root_block_device conflicts with root_volume_size_gb"),
        "{err}"
    );
    assert!(err.contains("main.sky.hcl:7:3"), "at the block: {err}");
}

fn addressed(public: bool) -> String {
    format!(
        r#"resource "aws_cluster" "c" {{
  name                        = "private-nodes"
  num_nodes                   = 2
  instance_type               = "t3.micro"
  image_id                    = "ami-12c6146b"
  associate_public_ip_address = {public}
}}
"#
    )
}

#[test]
fn cluster_nodes_launched_without_public_addresses_have_none_and_a_change_replaces_the_cluster() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &addressed(false))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ids: Vec<String> = nodes(&moto, "private-nodes")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids.len(), 2);
    let ec2 = moto.ec2();
    let out = block_on(ec2.describe_instances().set_instance_ids(Some(ids)).send())
        .expect("describe instances");
    let public: Vec<Option<String>> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .map(|i| i.public_ip_address().map(String::from))
        .collect();
    assert_eq!(public, [None, None]);
    moto.assert_plan_clean(&p);

    p.write("main.sky.hcl", &addressed(true));
    let plan = stdout(&moto.run(&p, &["plan"]));
    assert!(plan.contains("aws_cluster.c must be replaced"), "{plan}");
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(nodes(&moto, "private-nodes").is_empty());
}
