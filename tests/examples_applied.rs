//! The grown examples applied together against moto, as a user would: `skypilot-vpc` (a
//! private VPC whose subnets reach out through a NAT gateway), then `skypilot-cluster` (a
//! GPU-training cluster in it, spot first over two GPU types and three zones, on an AMI found
//! by `data "aws_ami"`, with the guide's minimal policy built by `aws_iam_policy_document`, a
//! placement group and `IMDSv2`). Everything is checked through the EC2 and IAM APIs. moto
//! lacks placement groups, so the proxy answers those actions (`placement_groups::emulate`).

use crate::support::{
    attached_role_policies, block_on, example_dir, policy_document, stderr, stdout, trust_policy,
    Moto, Project,
};

fn example(name: &str) -> Project {
    let text = std::fs::read_to_string(example_dir(name).join("main.sky.hcl")).expect("example");
    Project::new(&[("main.sky.hcl", &text)])
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// The running instances carrying `skyform:cluster = name`.
fn running_nodes(moto: &Moto, name: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    let out = block_on(
        moto.ec2()
            .describe_instances()
            .filters(filter("tag:skyform:cluster", name))
            .filters(filter("instance-state-name", "running"))
            .send(),
    )
    .expect("instances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect()
}

#[test]
fn the_grown_examples_make_a_private_vpc_and_a_training_cluster_checked_through_aws() {
    let Some(moto) = Moto::start() else { return };
    let emulation = crate::placement_groups::emulate(&moto);
    let vpc = example("skypilot-vpc");
    let out = moto.run(&vpc, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let cluster = example("skypilot-cluster");
    let out = moto.run(&cluster, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The nodes: on the newest Deep Learning AMI on Ubuntu in moto's catalogue, in a private
    // subnet, `IMDSv2` only, carrying the skypilot-v1 profile, launched into the group.
    let nodes = running_nodes(&moto, "train");
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let private: Vec<String> = block_on(
        moto.ec2()
            .describe_subnets()
            .filters(filter("tag:tier", "private"))
            .send(),
    )
    .expect("subnets")
    .subnets()
    .iter()
    .filter_map(|s| s.subnet_id().map(String::from))
    .collect();
    assert_eq!(private.len(), 3);
    // Every node in one private subnet (the first: moto has room everywhere), of the first type.
    let subnets: std::collections::BTreeSet<Option<&str>> = nodes
        .iter()
        .map(aws_sdk_ec2::types::Instance::subnet_id)
        .collect();
    assert_eq!(subnets.len(), 1, "{nodes:?}");
    for n in &nodes {
        assert_eq!(n.image_id(), Some("ami-dca37ea5"), "the Deep Learning AMI");
        assert!(private.iter().any(|s| Some(s.as_str()) == n.subnet_id()));
        assert_eq!(
            n.instance_type()
                .map(aws_sdk_ec2::types::InstanceType::as_str),
            Some("p4d.24xlarge")
        );
        assert_eq!(
            n.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(aws_sdk_ec2::types::HttpTokensState::as_str),
            Some("required")
        );
        assert!(n
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .is_some_and(|a| a.ends_with("instance-profile/skypilot-v1")));
    }
    {
        let e = emulation.lock().expect("emulation");
        assert_eq!(
            e.groups.get("train").map(|g| g.strategy.as_str()),
            Some("cluster")
        );
        let launched_into: Vec<Option<&String>> = e
            .run_instances
            .iter()
            .map(|f| f.get("Placement.GroupName"))
            .collect();
        assert_eq!(launched_into.len(), 2, "{launched_into:?}");
        assert!(launched_into
            .iter()
            .all(|g| g.is_some_and(|g| g == "train")));
        // On spot: the RunInstances forms ask for it.
        assert!(
            e.run_instances.iter().all(|f| f
                .get("InstanceMarketOptions.MarketType")
                .is_some_and(|m| m == "spot")),
            "{:?}",
            e.run_instances
        );
    }

    // The role trusts EC2 (a policy document), and holds the minimal policy, whose PassRole
    // and GetInstanceProfile statements name the role and profile as IAM made them (the
    // document was read during the apply, after them).
    let iam = moto.iam();
    block_on(async {
        let trust = trust_policy(&iam, "skypilot-v1").await;
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "ec2.amazonaws.com"
        );
        let role_arn = iam
            .get_role()
            .role_name("skypilot-v1")
            .send()
            .await
            .expect("role")
            .role
            .expect("role")
            .arn;
        let policy = "arn:aws:iam::123456789012:policy/minimal-skypilot-policy";
        assert_eq!(attached_role_policies(&iam, "skypilot-v1").await, [policy]);
        let doc = policy_document(&iam, policy, "v1").await;
        let statement = |sid: &str| {
            doc["Statement"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["Sid"] == sid))
                .cloned()
                .unwrap_or_else(|| panic!("statement {sid}: {doc}"))
        };
        assert_eq!(statement("PassTheNodeRole")["Resource"], role_arn.as_str());
        assert_eq!(
            statement("ReadTheNodeProfile")["Resource"],
            "arn:aws:iam::123456789012:instance-profile/skypilot-v1"
        );
        assert_eq!(
            statement("SpotServiceLinkedRole")["Condition"]["StringEquals"]["iam:AWSServiceName"],
            "spot.amazonaws.com"
        );
    });

    moto.assert_plan_clean(&vpc);
    moto.assert_plan_clean(&cluster);

    for p in [&cluster, &vpc] {
        let out = moto.run(p, &["destroy", "--auto-approve"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    assert!(running_nodes(&moto, "train").is_empty());
    assert!(emulation.lock().expect("emulation").groups.is_empty());
    assert!(block_on(iam.get_role().role_name("skypilot-v1").send()).is_err());
    let nats = block_on(moto.ec2().describe_nat_gateways().send()).expect("nat gateways");
    assert!(nats
        .nat_gateways()
        .iter()
        .all(|g| g.state().map(aws_sdk_ec2::types::NatGatewayState::as_str) == Some("deleted")));
}
