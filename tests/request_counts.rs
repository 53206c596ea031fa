//! How many requests a no-op plan makes, counted by the recording proxy: the lineage scan's
//! listing reads the objects of each type in full and serves the refresh that follows, so a
//! type costs one Describe per page, not two, the types refreshed with their prior attributes
//! included (the scan keeps the SDK objects it listed); objects the scan cannot see (their
//! lineage tag removed outside skyform) are still read by id. The grown examples' no-op plans
//! are counted action by action.

use std::collections::BTreeMap;

use crate::placement_groups::public_key;
use crate::support::{block_on, stderr, stdout, Moto, Project};

fn config(public_key: &str) -> String {
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.60.0.0/16"
}}

resource "aws_subnet" "s" {{
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.60.1.0/24"
}}

resource "aws_internet_gateway" "igw" {{
  vpc_id = aws_vpc.v.id
}}

resource "aws_route_table" "public" {{
  vpc_id = aws_vpc.v.id
  route {{
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.igw.id
  }}
}}

resource "aws_security_group" "web" {{
  name   = "web"
  vpc_id = aws_vpc.v.id
}}

resource "aws_vpc_security_group_ingress_rule" "ssh" {{
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "10.60.0.0/16"
}}

resource "aws_eip" "nat" {{
  domain = "vpc"
}}

resource "aws_nat_gateway" "nat" {{
  subnet_id     = aws_subnet.s.id
  allocation_id = aws_eip.nat.id
}}

resource "aws_key_pair" "deployer" {{
  key_name   = "deployer"
  public_key = "{public_key}"
}}

resource "aws_instance" "bastion" {{
  ami           = "ami-12c6146b"
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.s.id
  key_name      = aws_key_pair.deployer.key_name
}}

resource "aws_cluster" "c" {{
  name          = "counted"
  num_nodes     = 2
  instance_type = "t3.micro"
  image_id      = "ami-12c6146b"
}}
"#
    )
}

/// The calls the proxy recorded, by action.
pub(crate) fn counts(moto: &Moto) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for action in moto.calls.lock().expect("calls").iter() {
        *out.entry(action.clone()).or_insert(0) += 1;
    }
    out
}

#[test]
fn a_no_op_plan_reads_each_scanned_type_once_and_the_refresh_asks_nothing_more() {
    let Some(moto) = Moto::start() else { return };
    let keys = tempfile::tempdir().unwrap();
    let p = Project::new(&[(
        "main.sky.hcl",
        &config(&public_key(keys.path(), "deployer")),
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The objects made after the address and the security group (the NAT gateway's interface,
    // the ingress rule) are drift of theirs: recorded here, through the scan's reads.
    let file = p.path().join("refresh.plan").display().to_string();
    let out = moto.run(&p, &["plan", "--refresh-only", "--out", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    moto.clear_calls();
    moto.assert_plan_clean(&p);
    let got = counts(&moto);
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());
    let want: BTreeMap<String, usize> = [
        // No GetCallerIdentity reaches the proxy during a plan: none is listed, so any would
        // fail the comparison.
        // One listing per type, filtered by the lineage, serves the scan and the refresh,
        // the types refreshed with their prior attributes (addresses, key pairs, instances,
        // clusters, VPCs) included: the scan keeps the objects it listed. The VPC's default
        // group and main route table are kept from its prior attributes.
        ("DescribeVpcs", 1),
        ("DescribeSubnets", 1),
        ("DescribeInternetGateways", 1),
        ("DescribeNatGateways", 1),
        ("DescribeSecurityGroupRules", 1),
        ("DescribeRouteTables", 1),
        ("DescribeSecurityGroups", 1),
        ("DescribeAddresses", 1),
        ("DescribeKeyPairs", 1),
        // Two types list instances: the instance's listing and the cluster's.
        ("DescribeInstances", 2),
        // The one exception: EC2 has no batch form, two DNS settings per VPC, one VPC here.
        ("DescribeVpcAttribute", 2),
    ]
    .into_iter()
    .map(|(a, n)| (a.to_string(), n))
    .collect();
    let described: BTreeMap<String, usize> = got
        .iter()
        .filter(|(a, _)| a.starts_with("Describe") || a.as_str() == "GetCallerIdentity")
        .map(|(a, n)| (a.clone(), *n))
        .collect();
    assert_eq!(described, want, "all calls: {got:?}");

    // With the lineage tags gone, the scan sees none of these objects and the refresh reads
    // each by id. A refresh-only plan keeps every difference: finding none, it proves the
    // by-id reads and the scan's reads, recorded above, the same for every type served.
    let ec2 = moto.ec2();
    let served = [
        "vpc",
        "subnet",
        "internet-gateway",
        "route-table",
        "security-group",
        "security-group-rule",
        "key-pair",
        "instance",
    ];
    let listed: Vec<(String, String)> = block_on(async {
        ec2.describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("key")
                    .values("skyform:lineage")
                    .build(),
            )
            .send()
            .await
            .expect("tags")
    })
    .tags()
    .iter()
    .filter_map(|t| {
        let kind = t.resource_type()?.as_str().to_string();
        let id = t.resource_id()?.to_string();
        served.contains(&kind.as_str()).then_some((kind, id))
    })
    .collect();
    // moto keeps NAT gateways' and addresses' tags apart from its tag API (DescribeTags does
    // not see them): the gateway stays served by the scan here, and the address is untagged
    // by its allocation id. The instances are the standalone one and the cluster's two nodes.
    let kinds: std::collections::BTreeSet<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, served.into_iter().collect(), "{listed:?}");
    let instances = listed.iter().filter(|(k, _)| k == "instance").count();
    assert_eq!(instances, 3, "{listed:?}");
    let mut ids: Vec<String> = listed.into_iter().map(|(_, id)| id).collect();
    ids.push(block_on(async {
        let out = ec2.describe_addresses().send().await.expect("addresses");
        out.addresses()[0].allocation_id().expect("id").to_string()
    }));
    block_on(async {
        ec2.delete_tags()
            .set_resources(Some(ids))
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("skyform:lineage")
                    .build(),
            )
            .send()
            .await
            .expect("untag")
    });
    moto.clear_calls();
    let out = moto.run(&p, &["plan", "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let got = counts(&moto);
    for action in [
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeInternetGateways",
        "DescribeSecurityGroupRules",
        "DescribeAddresses",
        "DescribeKeyPairs",
    ] {
        assert_eq!(got.get(action), Some(&2), "{action}: {got:?}");
    }
    // The instance's and the cluster's listings, and each read by id (the cluster by its tag).
    assert_eq!(got.get("DescribeInstances"), Some(&4), "{got:?}");
}

fn subnet_config(name: &str) -> String {
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.61.0.0/16"
}}

resource "aws_subnet" "s" {{
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.61.1.0/24"
  tags       = {{ Name = "{name}" }}
}}
"#
    )
}

#[test]
fn an_object_whose_lineage_tag_was_removed_is_still_refreshed_by_id() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &subnet_config("kept"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ec2 = moto.ec2();
    let subnet = block_on(async {
        let out = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values("kept")
                    .build(),
            )
            .send()
            .await
            .expect("subnets");
        out.subnets()[0].subnet_id().expect("id").to_string()
    });
    block_on(async {
        ec2.delete_tags()
            .resources(&subnet)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("skyform:lineage")
                    .build(),
            )
            .send()
            .await
            .expect("untag")
    });

    moto.clear_calls();
    moto.assert_plan_clean(&p);
    // The scan no longer sees the subnet, so the refresh reads it by id: two listings.
    assert_eq!(counts(&moto).get("DescribeSubnets"), Some(&2));
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());

    // A change to it is still planned as a change in place, not a create.
    p.write("main.sky.hcl", &subnet_config("renamed"));
    let out = moto.run(&p, &["plan"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("0 to add, 1 to change, 0 to destroy"),
        "{}",
        stdout(&out)
    );
}

fn example(name: &str) -> Project {
    let text = std::fs::read_to_string(crate::support::example_dir(name).join("main.sky.hcl"))
        .expect("example");
    Project::new(&[("main.sky.hcl", &text)])
}

#[test]
fn the_no_op_plans_of_the_grown_examples_make_one_request_per_type_and_page() {
    let Some(moto) = Moto::start() else { return };
    crate::placement_groups::emulate(&moto);
    let vpc = example("skypilot-vpc");
    let cluster = example("skypilot-cluster");
    for p in [&vpc, &cluster] {
        let out = moto.run(p, &["apply", "--auto-approve"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let expected = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
        pairs.iter().map(|(a, n)| ((*a).to_string(), *n)).collect()
    };
    // One request per type (resource or data source) and page. The shared actions: three
    // types read route tables (aws_route_table, aws_route_table_association, aws_route), one
    // call each; EC2 has no batch read of a VPC's DNS attributes (two calls per VPC).
    let vpc_calls = expected(&[
        ("DescribeAddresses", 1),
        ("DescribeAvailabilityZones", 1),
        ("DescribeInternetGateways", 1),
        ("DescribeNatGateways", 1),
        ("DescribeRouteTables", 3),
        ("DescribeSecurityGroups", 1),
        ("DescribeSubnets", 1),
        ("DescribeVpcAttribute", 2),
        ("DescribeVpcs", 1),
    ]);
    // data "aws_vpc" (no prior state) looks up the VPC's default group, main route table and
    // DNS attributes; the group is also aws_security_group's read. Every IAM type is one
    // GetAccountAuthorizationDetails with ListRoles and ListInstanceProfiles; a managed
    // policy's tags have no batch read (ListPolicyTags, one per policy: there is one here).
    let cluster_calls = expected(&[
        ("DescribeImages", 1),
        ("DescribeInstances", 1),
        ("DescribePlacementGroups", 1),
        ("DescribeRouteTables", 1),
        ("DescribeSecurityGroups", 2),
        ("DescribeSubnets", 1),
        ("DescribeVpcAttribute", 2),
        ("DescribeVpcs", 1),
        ("GetAccountAuthorizationDetails", 1),
        ("GetCallerIdentity", 1),
        ("ListInstanceProfiles", 1),
        ("ListPolicyTags", 1),
        ("ListRoles", 1),
    ]);
    for (p, want) in [(&vpc, vpc_calls), (&cluster, cluster_calls)] {
        moto.clear_calls();
        let out = moto.run(p, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(counts(&moto), want);
        assert!(moto.writes().is_empty(), "{:?}", moto.writes());
    }
}

/// `n` independent roles, each with its own description.
fn roles(n: usize, description: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for i in 0..n {
        let _ = write!(
            out,
            r#"
resource "aws_iam_role" "r{i}" {{
  name               = "counted-{i}"
  description        = "{description}"
  assume_role_policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Principal = {{ Service = "ec2.amazonaws.com" }}, Action = "sts:AssumeRole" }}] }})
}}
"#
        );
    }
    out
}

/// The calls the proxy recorded, by action, as `(action, count)` pairs for a readable
/// comparison.
fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(a, n)| ((*a).to_string(), *n)).collect()
}

#[test]
fn an_apply_of_n_roles_makes_n_create_role_calls_and_no_read_back_and_its_no_op_plan_two_reads() {
    const N: usize = 12;
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &roles(N, "counted"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // CreateRole answers with the whole role: no GetRole after it. The identity is asked
    // once, for the state's owner.
    assert_eq!(
        counts(&moto),
        expected(&[("CreateRole", N), ("GetCallerIdentity", 1)])
    );
    // AWS holds all of them, as configured.
    let iam = moto.iam();
    let listed = block_on(async { iam.list_roles().send().await.expect("roles") });
    let mut described: Vec<(&str, Option<&str>)> = listed
        .roles()
        .iter()
        .map(|r| (r.role_name(), r.description()))
        .collect();
    described.sort_unstable();
    let mut want: Vec<String> = (0..N).map(|i| format!("counted-{i}")).collect();
    want.sort_unstable();
    assert_eq!(
        described,
        want.iter()
            .map(|n| (n.as_str(), Some("counted")))
            .collect::<Vec<_>>()
    );

    // The no-op plan: every role from one GetAccountAuthorizationDetails, their descriptions
    // from one ListRoles (one page each), whatever N is.
    moto.clear_calls();
    moto.assert_plan_clean(&p);
    assert_eq!(
        counts(&moto),
        expected(&[("GetAccountAuthorizationDetails", 1), ("ListRoles", 1)])
    );
}

#[test]
fn a_plan_without_refresh_reads_nothing_from_aws_and_says_so_in_every_view() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &roles(2, "first"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // A change outside skyform, which only a refresh can see.
    let iam = moto.iam();
    block_on(async {
        iam.update_role()
            .role_name("counted-0")
            .description("changed-outside")
            .send()
            .await
            .expect("update")
    });
    // And a change in the configuration, which a plan from the state alone still finds.
    p.write("main.sky.hcl", &roles(2, "second"));

    moto.clear_calls();
    let human = moto.run(&p, &["plan", "--refresh=false", "--detailed-exitcode"]);
    let json = moto.run(&p, &["plan", "--refresh=false", "--json"]);
    let markdown = moto.run(&p, &["plan", "--refresh", "false", "--markdown"]);
    assert!(
        moto.calls.lock().expect("calls").is_empty(),
        "{:?}",
        moto.calls.lock().expect("calls")
    );
    assert_eq!(human.status.code(), Some(2), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(
        text.contains("AWS was not read (--refresh=false)"),
        "{text}"
    );
    assert!(
        text.contains("0 to add, 2 to change, 0 to destroy"),
        "{text}"
    );
    // The state said "first" for both: the outside change is not seen.
    assert!(!text.contains("changed-outside"), "{text}");
    assert!(!text.contains("changed outside"), "{text}");

    assert!(json.status.success(), "{}", stderr(&json));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json plan");
    assert!(
        plan["skyform_not_refreshed"]
            .as_str()
            .is_some_and(|s| s.contains("--refresh=false")),
        "{plan}"
    );
    assert_eq!(plan["resource_changes"].as_array().map(Vec::len), Some(2));
    assert!(markdown.status.success(), "{}", stderr(&markdown));
    assert!(
        stdout(&markdown).starts_with("> **Note:** AWS was not read (--refresh=false)"),
        "{}",
        stdout(&markdown)
    );

    // A plan that reads AWS sees the outside change, and no note.
    let refreshed = moto.run(&p, &["plan"]);
    assert!(refreshed.status.success(), "{}", stderr(&refreshed));
    assert!(
        stdout(&refreshed).contains("changed-outside"),
        "{}",
        stdout(&refreshed)
    );
    assert!(!stdout(&refreshed).contains("AWS was not read"));

    // With a refresh-only plan it makes no sense, and the flag says so.
    let both = moto.run(&p, &["plan", "--refresh=false", "--refresh-only"]);
    assert_eq!(both.status.code(), Some(1), "{}", stderr(&both));
}

/// The `request SERVICE ACTION: N` lines of a `--stats` report, by action.
pub(crate) fn stats_requests(stderr: &str) -> BTreeMap<String, usize> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("request "))
        .filter_map(|l| {
            let (what, n) = l.rsplit_once(": ")?;
            let (_, action) = what.split_once(' ')?;
            Some((action.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn stats_count_the_requests_the_proxy_saw_by_action_with_the_throttled_ones_and_their_retries() {
    const N: usize = 6;
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &roles(N, "counted"))]);
    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve", "--stats"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert_eq!(stats_requests(&err), counts(&moto), "{err}");
    assert!(err.contains("  request iam CreateRole: 6\n"), "{err}");
    assert!(
        err.contains("  request sts GetCallerIdentity: 1\n"),
        "{err}"
    );
    assert!(
        err.contains("requests: 7 (0 retries, 0 throttled)"),
        "{err}"
    );
    for phase in ["load", "refresh", "evaluate", "apply"] {
        assert!(err.contains(&format!("  time {phase}: ")), "{phase}: {err}");
    }
    let peak: f64 = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("peak memory: "))
        .and_then(|v| v.strip_suffix(" MB"))
        .and_then(|v| v.parse().ok())
        .expect("peak memory");
    assert!(peak > 1.0, "{err}");

    // Without --stats, nothing of it.
    let out = moto.run(&p, &["plan"]);
    assert!(!stderr(&out).contains("Stats:"), "{}", stderr(&out));

    // Throttled answers are counted as AWS sent them, and each is retried: a destroy (some
    // fifteen requests) with a quarter of them throttled.
    moto.clear_calls();
    moto.faults
        .throttle_per_mille
        .store(250, std::sync::atomic::Ordering::SeqCst);
    let out = moto.run(&p, &["destroy", "--auto-approve", "--stats"]);
    moto.faults
        .throttle_per_mille
        .store(0, std::sync::atomic::Ordering::SeqCst);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    let throttled = moto
        .faults
        .throttled
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(throttled > 0, "nothing was throttled: {err}");
    // The proxy records only what it forwarded; skyform counts every attempt.
    let forwarded: usize = counts(&moto).values().sum();
    let sent: usize = stats_requests(&err).values().sum();
    assert_eq!(sent, forwarded + throttled, "{err}");
    assert!(
        err.contains(&format!(
            "requests: {sent} ({throttled} retries, {throttled} throttled)"
        )),
        "{err}"
    );
    assert_eq!(counts(&moto).get("DeleteRole"), Some(&N), "{err}");
    let left = block_on(async { moto.iam().list_roles().send().await.expect("roles") });
    assert!(left.roles().is_empty(), "{:?}", left.roles());
}
