//! Networking against moto: the private VPC example end to end, drift on rules and tags, a
//! VPC replacement that cascades, and the VPC data sources. Results are checked through the
//! EC2 API; refresh batching is counted by the recording proxy.

use crate::support::{block_on, example_dir, stderr, stdout, Moto, Project};

fn vpc_example() -> Project {
    let text =
        std::fs::read_to_string(example_dir("skypilot-vpc").join("main.sky.hcl")).expect("example");
    Project::new(&[("main.sky.hcl", &text)])
}

fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    moto.ec2()
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// The VPCs, as (id, cidr), that carry `Name = name`.
fn vpcs_named(moto: &Moto, name: &str) -> Vec<(String, String)> {
    let out = block_on(
        ec2(moto)
            .describe_vpcs()
            .filters(filter("tag:Name", name))
            .send(),
    )
    .expect("describe vpcs");
    out.vpcs()
        .iter()
        .map(|v| {
            (
                v.vpc_id().unwrap_or_default().to_string(),
                v.cidr_block().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn all_vpcs(moto: &Moto) -> Vec<String> {
    let out = block_on(ec2(moto).describe_vpcs().send()).expect("describe vpcs");
    out.vpcs()
        .iter()
        .filter_map(|v| v.cidr_block().map(String::from))
        .collect()
}

pub(crate) fn group(moto: &Moto, name: &str) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    let out = block_on(
        ec2(moto)
            .describe_security_groups()
            .filters(filter("group-name", name))
            .send(),
    )
    .expect("describe groups");
    out.security_groups().first().cloned()
}

pub(crate) fn has_ssh_rule(g: &aws_sdk_ec2::types::SecurityGroup, cidr: &str) -> bool {
    g.ip_permissions().iter().any(|p| {
        p.from_port() == Some(22)
            && p.ip_protocol() == Some("tcp")
            && p.ip_ranges().iter().any(|r| r.cidr_ip() == Some(cidr))
    })
}

#[test]
fn the_private_vpc_example_applies_is_verified_through_ec2_plans_clean_and_destroys() {
    let Some(moto) = Moto::start() else { return };
    let p = vpc_example();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Apply complete! Resources: 16 added"),
        "{}",
        stdout(&out)
    );

    let client = ec2(&moto);
    let vpcs = vpcs_named(&moto, "skypilot-private");
    assert_eq!(vpcs.len(), 1, "{vpcs:?}");
    let (vpc, cidr) = vpcs[0].clone();
    assert_eq!(cidr, "10.20.0.0/16");
    block_on(async {
        let hostnames = client
            .describe_vpc_attribute()
            .vpc_id(&vpc)
            .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
            .send()
            .await
            .expect("attribute");
        assert_eq!(
            hostnames
                .enable_dns_hostnames()
                .and_then(aws_sdk_ec2::types::AttributeBooleanValue::value),
            Some(true)
        );
        let subnets = client
            .describe_subnets()
            .filters(filter("vpc-id", &vpc))
            .send()
            .await
            .expect("subnets");
        let mut cidrs: Vec<&str> = subnets
            .subnets()
            .iter()
            .filter_map(|s| s.cidr_block())
            .collect();
        cidrs.sort_unstable();
        assert_eq!(
            cidrs,
            [
                "10.20.0.0/20",
                "10.20.16.0/20",
                "10.20.240.0/20",
                "10.20.32.0/20"
            ]
        );
        let gateways = client
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", &vpc))
            .send()
            .await
            .expect("gateways");
        let igw = gateways.internet_gateways()[0]
            .internet_gateway_id()
            .expect("igw")
            .to_string();
        let table = |name: &'static str| {
            let client = client.clone();
            let vpc = vpc.clone();
            async move {
                client
                    .describe_route_tables()
                    .filters(filter("vpc-id", &vpc))
                    .filters(filter("tag:Name", name))
                    .send()
                    .await
                    .expect("route tables")
                    .route_tables()[0]
                    .clone()
            }
        };
        // The public subnet routes to the internet gateway, and holds the NAT gateway.
        let public = table("skypilot-private-public").await;
        assert!(public.routes().iter().any(|r| {
            r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(&igw)
        }));
        assert_eq!(public.associations().len(), 1);
        let nats = client
            .describe_nat_gateways()
            .filter(filter("vpc-id", &vpc))
            .send()
            .await
            .expect("nat gateways");
        let [nat] = nats.nat_gateways() else {
            panic!("one NAT gateway: {nats:?}")
        };
        assert_eq!(
            nat.state().map(aws_sdk_ec2::types::NatGatewayState::as_str),
            Some("available")
        );
        let addresses = client
            .describe_addresses()
            .filters(filter("tag:Name", "skypilot-private-nat"))
            .send()
            .await
            .expect("addresses");
        let [eip] = addresses.addresses() else {
            panic!("one address: {addresses:?}")
        };
        assert_eq!(
            nat.nat_gateway_addresses()[0].allocation_id(),
            eip.allocation_id()
        );
        // The private subnets' default route (an aws_route) goes to the NAT gateway.
        let private = table("skypilot-private-private").await;
        assert!(private.routes().iter().any(|r| {
            r.destination_cidr_block() == Some("0.0.0.0/0")
                && r.nat_gateway_id() == nat.nat_gateway_id()
        }));
        assert_eq!(
            private.associations().len(),
            3,
            "the three private subnets use it"
        );
    });
    let g = group(&moto, "skypilot-private-nodes").expect("group");
    assert_eq!(g.vpc_id(), Some(vpc.as_str()));
    assert!(has_ssh_rule(&g, "10.20.0.0/16"));
    assert!(g
        .ip_permissions_egress()
        .iter()
        .any(|p| p.ip_protocol() == Some("-1")));

    moto.clear_calls();
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("No changes."));
    // One Describe per type, whatever the number of objects: the lineage scan's listing, which
    // looks for objects the state may have lost, reads them in full and serves the refresh.
    let calls = moto.calls.lock().expect("calls").clone();
    let count = |a: &str| calls.iter().filter(|c| c.as_str() == a).count();
    assert_eq!(count("DescribeVpcs"), 1, "{calls:?}");
    assert_eq!(count("DescribeSubnets"), 1, "{calls:?}");
    assert_eq!(count("DescribeInternetGateways"), 1, "{calls:?}");
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(vpcs_named(&moto, "skypilot-private").is_empty());
    assert!(group(&moto, "skypilot-private-nodes").is_none());
}

#[test]
fn a_revoked_rule_and_a_deleted_name_tag_are_drift_that_apply_restores_on_the_same_vpc() {
    let Some(moto) = Moto::start() else { return };
    let p = vpc_example();
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let (vpc, _) = vpcs_named(&moto, "skypilot-private")[0].clone();
    let g = group(&moto, "skypilot-private-nodes").expect("group");
    let client = ec2(&moto);
    block_on(async {
        client
            .revoke_security_group_ingress()
            .group_id(g.group_id().expect("id"))
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(
                        aws_sdk_ec2::types::IpRange::builder()
                            .cidr_ip("10.20.0.0/16")
                            .description("ssh")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("revoke");
        client
            .delete_tags()
            .resources(&vpc)
            .tags(aws_sdk_ec2::types::Tag::builder().key("Name").build())
            .send()
            .await
            .expect("untag");
    });
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(
        text.contains("# aws_security_group.nodes has changed"),
        "{text}"
    );
    assert!(text.contains("# aws_vpc.private has changed"), "{text}");
    assert!(text.contains("+ ingress {"), "{text}");

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("0 added, 2 changed, 0 destroyed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        vpcs_named(&moto, "skypilot-private"),
        [(vpc, "10.20.0.0/16".to_string())]
    );
    assert!(has_ssh_rule(
        &group(&moto, "skypilot-private-nodes").expect("group"),
        "10.20.0.0/16"
    ));
}

#[test]
fn a_new_vpc_cidr_replaces_the_vpc_and_its_dependents_with_no_orphan() {
    let Some(moto) = Moto::start() else { return };
    let p = vpc_example();
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let before = all_vpcs(&moto);
    let out = moto.run(&p, &["plan", "--var", "cidr=10.30.0.0/16"]);
    let text = stdout(&out);
    for addr in [
        "aws_vpc.private",
        "aws_subnet.a",
        "aws_subnet.b",
        "aws_subnet.public",
        "aws_internet_gateway.gw",
        "aws_route_table.public",
        "aws_route_table.private",
        "aws_route_table_association.a",
        "aws_nat_gateway.out",
        "aws_route.private_default",
        "aws_security_group.nodes",
    ] {
        assert!(
            text.contains(&format!("# {addr} must be replaced")),
            "{addr}: {text}"
        );
    }
    assert!(text.contains("-/+ resource \"aws_vpc\" \"private\""));
    assert!(
        text.contains("\"10.20.0.0/16\" -> \"10.30.0.0/16\" # forces replacement"),
        "{text}"
    );

    let out = moto.run(
        &p,
        &["apply", "--auto-approve", "--var", "cidr=10.30.0.0/16"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        vpcs_named(&moto, "skypilot-private"),
        vec![(
            vpcs_named(&moto, "skypilot-private")[0].0.clone(),
            "10.30.0.0/16".to_string()
        )]
    );
    assert_eq!(all_vpcs(&moto).len(), before.len(), "no orphaned VPC");
    let out = moto.run(
        &p,
        &["plan", "--var", "cidr=10.30.0.0/16", "--detailed-exitcode"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

const DATA_SOURCES: &str = r#"
data "aws_vpc" "default" {
  default = true
}

data "aws_vpc" "existing" {
  tags = { Name = "made-elsewhere" }
}

data "aws_subnets" "default" {
  vpc_id = data.aws_vpc.default.id
}

resource "aws_security_group" "in_default" {
  name   = "in-default"
  vpc_id = data.aws_vpc.default.id
}

resource "aws_security_group" "in_existing" {
  name   = "in-existing"
  vpc_id = data.aws_vpc.existing.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.existing.cidr_block]
  }
}

output "default_subnets" {
  value = length(data.aws_subnets.default.ids)
}
"#;

#[test]
fn data_sources_find_the_default_vpc_and_one_by_name_and_destroy_leaves_both() {
    let Some(moto) = Moto::start() else { return };
    let client = ec2(&moto);
    let existing = block_on(async {
        let v = client
            .create_vpc()
            .cidr_block("10.50.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("Name")
                            .value("made-elsewhere")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("vpc");
        v.vpc().and_then(|v| v.vpc_id()).expect("id").to_string()
    });
    let p = Project::new(&[("main.sky.hcl", DATA_SOURCES)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let in_existing = group(&moto, "in-existing").expect("group");
    assert_eq!(in_existing.vpc_id(), Some(existing.as_str()));
    assert!(has_ssh_rule(&in_existing, "10.50.0.0/16"));
    let in_default = group(&moto, "in-default").expect("group");
    let default_vpc = block_on(
        client
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send(),
    )
    .expect("vpcs")
    .vpcs()[0]
        .vpc_id()
        .expect("id")
        .to_string();
    assert_eq!(in_default.vpc_id(), Some(default_vpc.as_str()));
    let subnets = stdout(&moto.run(&p, &["output", "default_subnets"]));
    assert_ne!(subnets.trim(), "0", "the default VPC has subnets");

    let vpcs = all_vpcs(&moto).len();
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Resources: 2 destroyed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        all_vpcs(&moto).len(),
        vpcs,
        "destroy never touches a data source's VPC"
    );
    assert!(group(&moto, "in-existing").is_none());

    // No match is an error that gives the count and the filter.
    let q = Project::new(&[(
        "main.sky.hcl",
        "data \"aws_vpc\" \"missing\" {\n  tags = { Name = \"nowhere\" }\n}\n",
    )]);
    let out = moto.run(&q, &["plan"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("0 VPCs match tags.Name = \"nowhere\""),
        "{err}"
    );
}

#[test]
fn a_subnet_outside_its_vpc_and_a_malformed_cidr_are_configuration_errors() {
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "outside" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.1.0.0/24"
}

resource "aws_vpc" "bad" {
  cidr_block = "10.0.0.1/16"
}

resource "aws_security_group" "g" {
  name   = "g"
  vpc_id = aws_vpc.v.id

  ingress {
    from_port = 22
    to_port   = 22
    protocl   = "tcp"
  }
}
"#,
    )]);
    let out = p.offline().arg("validate").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "cidr_block 10.1.0.0/24 is outside the range of its VPC aws_vpc.v (10.0.0.0/16)"
        ),
        "{err}"
    );
    assert!(
        err.contains("main.sky.hcl:8:"),
        "the subnet's cidr_block line: {err}"
    );
    assert!(err.contains("did you mean 10.0.0.0/16"), "{err}");
    assert!(err.contains("unexpected attribute \"protocl\""), "{err}");
}

#[test]
fn a_vpc_delete_refused_with_dependency_violation_is_retried_until_it_succeeds() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_vpc\" \"v\" {\n  cidr_block = \"10.60.0.0/16\"\n  tags       = { Name = \"retry\" }\n}\n",
    )]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let (vpc, _) = vpcs_named(&moto, "retry")[0].clone();
    let client = ec2(&moto);
    // A subnet made by hand keeps AWS from deleting the VPC until it is gone.
    let subnet = block_on(
        client
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.60.1.0/24")
            .send(),
    )
    .expect("subnet")
    .subnet()
    .and_then(|s| s.subnet_id())
    .expect("id")
    .to_string();
    moto.clear_calls();
    let destroy = {
        let mut c = moto.skyform(&p);
        c.args(["destroy", "--auto-approve"]);
        std::thread::spawn(move || c.output().expect("run"))
    };
    // The proxy records a call before forwarding it, so one recorded DeleteVpc may not have
    // reached moto yet; a second one proves the first was refused and is being retried.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while moto
        .calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|c| *c == "DeleteVpc")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "destroy never retried DeleteVpc"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    block_on(client.delete_subnet().subnet_id(&subnet).send()).expect("delete subnet");
    let out = destroy.join().expect("destroy thread");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let tries = moto
        .calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|c| *c == "DeleteVpc")
        .count();
    assert!(tries >= 2, "DeleteVpc was retried ({tries} calls)");
    assert!(vpcs_named(&moto, "retry").is_empty());
}

#[test]
fn a_deleted_route_is_drift_and_a_group_without_egress_keeps_the_default_without_drift() {
    let Some(moto) = Moto::start() else { return };
    let p = vpc_example();
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let client = ec2(&moto);
    let table = block_on(
        client
            .describe_route_tables()
            .filters(filter("tag:Name", "skypilot-private-public"))
            .send(),
    )
    .expect("tables")
    .route_tables()[0]
        .route_table_id()
        .expect("id")
        .to_string();
    block_on(
        client
            .delete_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
            .send(),
    )
    .expect("delete route");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("# aws_route_table.public has changed"),
        "{}",
        stdout(&out)
    );
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let routes = block_on(
        client
            .describe_route_tables()
            .route_table_ids(&table)
            .send(),
    )
    .expect("table")
    .route_tables()[0]
        .routes()
        .iter()
        .filter_map(|r| r.destination_cidr_block().map(String::from))
        .collect::<Vec<_>>();
    assert!(routes.contains(&"0.0.0.0/0".to_string()), "{routes:?}");

    // A group with no egress block: AWS's allow-all egress stays and the next plan is clean.
    let q = Project::new(&[(
        "main.sky.hcl",
        "data \"aws_vpc\" \"default\" {\n  default = true\n}\n\nresource \"aws_security_group\" \"open_out\" {\n  name   = \"open-out\"\n  vpc_id = data.aws_vpc.default.id\n}\n",
    )]);
    assert!(moto.run(&q, &["apply", "--auto-approve"]).status.success());
    let g = group(&moto, "open-out").expect("group");
    assert!(g
        .ip_permissions_egress()
        .iter()
        .any(|p| p.ip_protocol() == Some("-1")));
    let out = moto.run(&q, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// Deletes a resource's row from the state database, as if the state were an older copy.
fn lose_from_state(p: &Project, addr: &str) {
    let db = rusqlite::Connection::open(p.path().join(".skyform/state.db")).expect("state db");
    let n = db
        .execute("DELETE FROM resources WHERE address = ?1", [addr])
        .expect("delete row");
    assert_eq!(n, 1, "{addr} was in the state");
}

#[test]
fn objects_tagged_with_the_lineage_are_adopted_when_configured_and_the_others_kept_until_pruned() {
    let Some(moto) = Moto::start() else { return };
    let p = vpc_example();
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let subnet_b = block_on(
        ec2(&moto)
            .describe_subnets()
            .filters(filter("cidr-block", "10.20.16.0/20"))
            .send(),
    )
    .expect("subnets")
    .subnets()[0]
        .subnet_id()
        .expect("id")
        .to_string();

    // The state lost the security group (still configured) and subnet b (removed from the
    // configuration, with its association).
    lose_from_state(&p, "aws_security_group.nodes");
    lose_from_state(&p, "aws_subnet.b");
    let text =
        std::fs::read_to_string(example_dir("skypilot-vpc").join("main.sky.hcl")).expect("example");
    let start = text
        .find("resource \"aws_subnet\" \"b\"")
        .expect("subnet b");
    let end = start + text[start..].find("\n}\n").expect("end") + 3;
    let assoc = text
        .find("resource \"aws_route_table_association\" \"b\"")
        .expect("assoc b");
    let assoc_end = assoc + text[assoc..].find("\n}\n").expect("end") + 3;
    let mut trimmed = text.clone();
    trimmed.replace_range(assoc..assoc_end, "");
    trimmed.replace_range(start..end, "");
    trimmed = trimmed.replace(
        "[aws_subnet.a.id, aws_subnet.b.id, aws_subnet.c.id]",
        "[aws_subnet.a.id, aws_subnet.c.id]",
    );
    p.write("main.sky.hcl", &trimmed);

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("aws_security_group.nodes (id sg-")
            && text.contains("exists in AWS but not in the state: adopted"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Tagged with this state's lineage, not in state (left alone; --prune-tagged deletes them):\n\n  aws_subnet.b (id {subnet_b})"
        )),
        "{text}"
    );
    assert!(!text.contains("aws_subnet.b will be destroyed"), "{text}");
    let kept = block_on(
        ec2(&moto)
            .describe_subnets()
            .filters(filter("subnet-id", &subnet_b))
            .send(),
    )
    .expect("subnets");
    assert_eq!(kept.subnets().len(), 1, "subnet b is left alone by default");
    let out = moto.run(&p, &["apply", "--prune-tagged", "--auto-approve"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("# aws_subnet.b will be destroyed"), "{text}");
    let groups = block_on(
        ec2(&moto)
            .describe_security_groups()
            .filters(filter("group-name", "skypilot-private-nodes"))
            .send(),
    )
    .expect("groups");
    assert_eq!(groups.security_groups().len(), 1, "no duplicate group");
    let gone = block_on(
        ec2(&moto)
            .describe_subnets()
            .filters(filter("subnet-id", &subnet_b))
            .send(),
    )
    .expect("subnets");
    assert!(gone.subnets().is_empty(), "subnet b was deleted");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // What `state rm` hands off is never brought back by its tags.
    assert!(moto
        .run(&p, &["state", "rm", "aws_security_group.nodes"])
        .status
        .success());
    let start = trimmed
        .find("resource \"aws_security_group\" \"nodes\"")
        .expect("group");
    let end = start + trimmed[start..].find("\n}\n").expect("end") + 3;
    let mut without_group = trimmed.clone();
    without_group.replace_range(start..end, "");
    without_group = without_group.replace(
        "output \"security_group_id\" {\n  value = aws_security_group.nodes.id\n}\n",
        "",
    );
    p.write("main.sky.hcl", &without_group);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("Recovered from"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("Tagged with this state's lineage"),
        "{}",
        stdout(&out)
    );
    let groups = block_on(
        ec2(&moto)
            .describe_security_groups()
            .filters(filter("group-name", "skypilot-private-nodes"))
            .send(),
    )
    .expect("groups");
    assert_eq!(
        groups.security_groups().len(),
        1,
        "the handed-off group stays"
    );
}
