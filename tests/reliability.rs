//! Reliability against moto: an apply killed with SIGKILL at every write of a reference run
//! that creates every resource type (and then gives a policy a second version) converges on
//! the next run with exactly the configured objects, and every type registered in schemas/ is
//! in that reference; an apply through a proxy that throttles and cuts connections converges;
//! the state lock admits one writer and releases a dead one's. AWS is checked through its API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::placement_groups::{emulate, Emulation};
use crate::support::{
    block_on, ec2_tag, nat_gateway_live, profile_roles, stderr, stdout, Moto, Project,
};

/// 10 roles, 5 users, 5 security groups and a 4-node cluster: 21 resources.
fn big_config() -> String {
    let mut text = String::from("data \"aws_vpc\" \"default\" {\n  default = true\n}\n");
    for i in 0..10 {
        text.push_str(&format!(
            "\nresource \"aws_iam_role\" \"r{i}\" {{\n  name               = \"kill-role-{i}\"\n  assume_role_policy = jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Principal = {{ Service = \"ec2.amazonaws.com\" }}, Action = \"sts:AssumeRole\" }}] }})\n}}\n"
        ));
    }
    for i in 0..5 {
        text.push_str(&format!(
            "\nresource \"aws_iam_user\" \"u{i}\" {{\n  name = \"kill-user-{i}\"\n}}\n"
        ));
        text.push_str(&format!(
            "\nresource \"aws_security_group\" \"g{i}\" {{\n  name   = \"kill-sg-{i}\"\n  vpc_id = data.aws_vpc.default.id\n\n  ingress {{\n    from_port   = {port}\n    to_port     = {port}\n    protocol    = \"tcp\"\n    cidr_blocks = [\"10.0.0.0/8\"]\n  }}\n}}\n",
            port = 8000 + i
        ));
    }
    text.push_str("\nresource \"aws_cluster\" \"c\" {\n  name          = \"kill-cluster\"\n  num_nodes     = 4\n  instance_type = \"t3.micro\"\n  image_id      = \"ami-12c6146b\"\n}\n");
    text
}

fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    moto.ec2()
}

/// (roles, users, groups, live cluster nodes) as AWS reports them.
fn census(moto: &Moto) -> (usize, usize, usize, usize) {
    let iam = moto.iam();
    let ec2 = ec2(moto);
    block_on(async {
        let roles = iam.list_roles().send().await.expect("roles");
        let roles = roles
            .roles()
            .iter()
            .filter(|r| r.role_name().starts_with("kill-role-"))
            .count();
        let users = iam.list_users().send().await.expect("users");
        let users = users
            .users()
            .iter()
            .filter(|u| u.user_name().starts_with("kill-user-"))
            .count();
        let groups = ec2.describe_security_groups().send().await.expect("groups");
        let groups = groups
            .security_groups()
            .iter()
            .filter(|g| g.group_name().unwrap_or_default().starts_with("kill-sg-"))
            .count();
        let nodes = ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:cluster")
                    .values("kill-cluster")
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .expect("instances");
        let nodes = nodes
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum();
        (roles, users, groups, nodes)
    })
}

/// Which apply of the reference a configuration is for: `A` creates every type, `B` then
/// gives the policy a second version, changes a tag on the role and on the NAT gateway,
/// rewrites the role's inline policy and a rule's description (all in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    A,
    B,
}

/// Every resource type skyform manages, in a VPC of its own: the reference for kill points.
fn every_type(stage: Stage) -> String {
    let (action, tag) = match stage {
        Stage::A => ("s3:GetObject", "a"),
        Stage::B => ("s3:ListBucket", "b"),
    };
    let public_key = kill_key();
    format!(
        r#"resource "aws_key_pair" "deployer" {{
  key_name   = "kill-key"
  public_key = "{public_key}"
  tags       = {{ stage = "{tag}" }}
}}

# moto lacks placement groups: the proxy answers them (tests/placement_groups.rs).
resource "aws_placement_group" "nodes" {{
  name     = "kill-pg"
  strategy = "cluster"
  tags     = {{ stage = "{tag}" }}
}}

resource "aws_vpc" "net" {{
  cidr_block = "10.70.0.0/16"
  tags       = {{ Name = "kill-vpc" }}
}}

resource "aws_subnet" "a" {{
  vpc_id     = aws_vpc.net.id
  cidr_block = "10.70.1.0/24"
  tags       = {{ Name = "kill-subnet" }}
}}

resource "aws_internet_gateway" "gw" {{
  vpc_id = aws_vpc.net.id
  tags   = {{ Name = "kill-igw" }}
}}

resource "aws_route_table" "out" {{
  vpc_id = aws_vpc.net.id

  route {{
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }}

  tags = {{ Name = "kill-rt" }}
}}

resource "aws_route_table_association" "a" {{
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.out.id
}}

resource "aws_security_group" "nodes" {{
  name        = "kill-sg"
  description = "kill-test"
  vpc_id      = aws_vpc.net.id

  ingress {{
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.70.0.0/16"]
  }}

  ingress {{
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }}

  egress {{
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }}
}}

resource "aws_iam_role" "node" {{
  name               = "kill-role"
  assume_role_policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Principal = {{ Service = "ec2.amazonaws.com" }}, Action = "sts:AssumeRole" }}] }})
  tags               = {{ stage = "{tag}" }}
}}

resource "aws_iam_policy" "node" {{
  name   = "kill-policy"
  policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = "{action}", Resource = "*" }}] }})
}}

resource "aws_iam_role_policy_attachment" "node" {{
  role       = aws_iam_role.node.name
  policy_arn = aws_iam_policy.node.arn
}}

resource "aws_iam_instance_profile" "node" {{
  name = "kill-profile"
  role = aws_iam_role.node.name
}}

resource "aws_iam_user" "launcher" {{
  name = "kill-user"
}}

resource "aws_iam_access_key" "launcher" {{
  user = aws_iam_user.launcher.name
}}

resource "aws_cluster" "c" {{
  name                 = "kill-cluster"
  num_nodes            = 3
  instance_type        = "t3.micro"
  image_id             = "ami-12c6146b"
  subnet_id            = aws_subnet.a.id
  security_group_ids   = [aws_security_group.nodes.id]
  iam_instance_profile = aws_iam_instance_profile.node.name
  placement_group      = aws_placement_group.nodes.name
}}

resource "aws_instance" "one" {{
  ami                    = "ami-12c6146b"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.nodes.id]
  key_name               = aws_key_pair.deployer.key_name
  tags                   = {{ Name = "kill-instance" }}

  metadata_options {{
    http_tokens = "required"
  }}

  root_block_device {{
    volume_size = 16
  }}
}}

resource "aws_iam_role_policy" "inline" {{
  name   = "kill-role-inline"
  role   = aws_iam_role.node.name
  policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = "{action}", Resource = "*" }}] }})
}}

resource "aws_iam_user_policy_attachment" "launcher" {{
  user       = aws_iam_user.launcher.name
  policy_arn = aws_iam_policy.node.arn
}}

resource "aws_iam_user_policy" "inline" {{
  name   = "kill-user-inline"
  user   = aws_iam_user.launcher.name
  policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = "ec2:DescribeInstances", Resource = "*" }}] }})
}}

# Rules as resources of their own need a group without inline rule blocks.
resource "aws_security_group" "rules" {{
  name        = "kill-sg-rules"
  description = "kill-test rules"
  vpc_id      = aws_vpc.net.id
}}

resource "aws_vpc_security_group_ingress_rule" "https" {{
  security_group_id = aws_security_group.rules.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "10.70.0.0/16"
}}

resource "aws_vpc_security_group_egress_rule" "dns" {{
  security_group_id = aws_security_group.rules.id
  ip_protocol       = "udp"
  from_port         = 53
  to_port           = 53
  cidr_ipv4         = "10.70.0.2/32"
}}

resource "aws_security_group_rule" "web" {{
  type              = "ingress"
  security_group_id = aws_security_group.rules.id
  protocol          = "tcp"
  from_port         = 8080
  to_port           = 8080
  cidr_blocks       = ["10.70.0.0/16"]
  description       = "web-{tag}"
}}

resource "aws_eip" "nat" {{
  domain = "vpc"
  tags   = {{ Name = "kill-nat-ip" }}
}}

resource "aws_nat_gateway" "nat" {{
  subnet_id     = aws_subnet.a.id
  allocation_id = aws_eip.nat.id
  tags          = {{ Name = "kill-nat", stage = "{tag}" }}
}}

# Routes as resources of their own need a table without inline route blocks.
resource "aws_route_table" "private" {{
  vpc_id = aws_vpc.net.id
  tags   = {{ Name = "kill-rt-private" }}
}}

resource "aws_route" "out" {{
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.nat.id
}}

resource "aws_eip" "one" {{
  domain = "vpc"
  tags   = {{ Name = "kill-instance-ip" }}
}}

resource "aws_eip_association" "one" {{
  allocation_id = aws_eip.one.id
  instance_id   = aws_instance.one.id
}}
"#
    )
}

/// One real public key for every run of the reference (moto parses what it imports), made
/// once per test process.
fn kill_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("skyform-kill-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("key dir");
        let key = crate::placement_groups::public_key(&dir, "kill");
        let _ = std::fs::remove_dir_all(&dir);
        key
    })
}

/// The resource types skyform registers, read from the schemas/ folder at run time (one
/// `<type>.json` per resource type; data sources live in schemas/data/).
fn registered_resource_types() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut types: Vec<String> = std::fs::read_dir(&dir)
        .expect("schemas/")
        .map(|e| e.expect("schemas/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).expect("schema");
            let schema: serde_json::Value = serde_json::from_str(&text).expect("schema json");
            // permissions.json is not a schema: it has no `type`.
            schema["type"].as_str().map(String::from)
        })
        .collect();
    types.sort();
    types
}

#[test]
fn every_registered_resource_type_is_in_the_kill_test_reference() {
    let types = registered_resource_types();
    assert!(
        types.iter().any(|t| t == "aws_vpc") && types.len() >= 20,
        "schemas/ lists too few types: {types:?}"
    );
    for stage in [Stage::A, Stage::B] {
        let reference = every_type(stage);
        let missing: Vec<&String> = types
            .iter()
            .filter(|t| !reference.contains(&format!("resource \"{t}\" ")))
            .collect();
        assert!(
            missing.is_empty(),
            "resource types registered in schemas/ but missing from the kill test's reference \
             (stage {stage:?}): {missing:?}. Add one of each to `every_type` in \
             tests/reliability.rs, count it in `Census::take` through the AWS API and in \
             `Census::expected`, then run \
             `cargo test --test integration an_apply_killed_at_any_write` so that every write \
             of the new type is a kill point."
        );
    }
}

/// Everything in the account that is not moto's default, as the IAM and EC2 APIs report it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Census {
    roles: Vec<String>,
    users: Vec<String>,
    policies: Vec<String>,
    profiles: Vec<String>,
    /// The roles `kill-profile` holds.
    profile_roles: Vec<String>,
    /// The policies attached to `kill-role`.
    role_policies: Vec<String>,
    /// The `stage` tag of `kill-role`.
    role_stage: Option<String>,
    policy_versions: usize,
    /// The action the default version of `kill-policy` allows.
    policy_action: Option<String>,
    /// The inline policies of `kill-role`, and the action the first of them allows.
    role_inline: Vec<String>,
    role_inline_action: Option<String>,
    /// The policies attached to `kill-user`, and its inline policies.
    user_policies: Vec<String>,
    user_inline: Vec<String>,
    access_keys: usize,
    vpcs: usize,
    subnets: usize,
    gateways: usize,
    /// Route tables that are not a VPC's main table, and their explicit associations.
    route_tables: usize,
    associations: usize,
    /// The routes of those tables other than the local one, as `destination target`, where a
    /// NAT gateway target is `nat` when the gateway is live and `nat-gone` when not.
    routes: Vec<String>,
    /// Sorted, as are `rules`, `addresses` and `nat_gateways`.
    groups: Vec<String>,
    /// The rules of `kill-sg-rules` as `direction protocol from-to cidr description`.
    rules: Vec<String>,
    /// Elastic IPs as `Name -> holder`: `nat` (a live NAT gateway's), `kill-instance` (the
    /// single instance's), `unassociated` or `other`.
    addresses: Vec<String>,
    /// NAT gateways not deleted, deleting or failed, as `Name/stage` (their tags).
    nat_gateways: Vec<String>,
    /// Instances not terminated: all, cluster nodes, and the single instance.
    instances: usize,
    nodes: usize,
    singles: usize,
    /// The single instance's metadata `http_tokens`, and its key pair.
    single_http_tokens: Option<String>,
    single_key: Option<String>,
    /// Key pairs as `name/stage` (moto's `DescribeKeyPairs`).
    key_pairs: Vec<String>,
    /// Placement groups as `name strategy/stage` (the proxy's emulation), and the groups the
    /// cluster's `RunInstances` calls named.
    placement_groups: Vec<String>,
    launched_into: Vec<String>,
}

impl Census {
    fn expected(stage: Stage) -> Census {
        let one = |name: &str| vec![name.to_string()];
        let (versions, action, tag) = match stage {
            Stage::A => (1, "s3:GetObject", "a"),
            Stage::B => (2, "s3:ListBucket", "b"),
        };
        Census {
            roles: one("kill-role"),
            users: one("kill-user"),
            policies: one("kill-policy"),
            profiles: one("kill-profile"),
            profile_roles: one("kill-role"),
            role_policies: one("kill-policy"),
            role_stage: Some(tag.into()),
            policy_versions: versions,
            policy_action: Some(action.into()),
            role_inline: one("kill-role-inline"),
            role_inline_action: Some(action.into()),
            user_policies: one("kill-policy"),
            user_inline: one("kill-user-inline"),
            access_keys: 1,
            vpcs: 1,
            subnets: 1,
            gateways: 1,
            route_tables: 2,
            associations: 1,
            routes: vec!["0.0.0.0/0 igw".into(), "0.0.0.0/0 nat".into()],
            groups: vec!["kill-sg".into(), "kill-sg-rules".into()],
            // AWS's default egress stays: the group declares no egress of its own.
            rules: vec![
                "egress -1 -1--1 0.0.0.0/0 ".into(),
                "egress udp 53-53 10.70.0.2/32 ".into(),
                "ingress tcp 443-443 10.70.0.0/16 ".into(),
                format!("ingress tcp 8080-8080 10.70.0.0/16 web-{tag}"),
            ],
            addresses: vec![
                "kill-instance-ip -> kill-instance".into(),
                "kill-nat-ip -> nat".into(),
            ],
            nat_gateways: vec![format!("kill-nat/{tag}")],
            instances: 4,
            nodes: 3,
            singles: 1,
            single_http_tokens: Some("required".into()),
            single_key: Some("kill-key".into()),
            key_pairs: vec![format!("kill-key/{tag}")],
            placement_groups: vec![format!("kill-pg cluster/{tag}")],
            launched_into: vec!["kill-pg".into()],
        }
    }

    fn take(moto: &Moto, pg: &Mutex<Emulation>) -> Census {
        let iam = moto.iam();
        let ec2 = moto.ec2();
        let mut c = Census::default();
        {
            let pg = pg.lock().expect("emulation");
            c.placement_groups = pg
                .groups
                .iter()
                .map(|(name, g)| {
                    format!(
                        "{name} {}/{}",
                        g.strategy,
                        g.tags.get("stage").map_or("", String::as_str)
                    )
                })
                .collect();
            let mut into: Vec<String> = pg
                .run_instances
                .iter()
                .filter_map(|f| f.get("Placement.GroupName").cloned())
                .collect();
            into.sort();
            into.dedup();
            c.launched_into = into;
        }
        block_on(async {
            let keys = ec2.describe_key_pairs().send().await.expect("key pairs");
            c.key_pairs = keys
                .key_pairs()
                .iter()
                .map(|k| {
                    format!(
                        "{}/{}",
                        k.key_name().unwrap_or_default(),
                        ec2_tag(k.tags(), "stage").unwrap_or_default()
                    )
                })
                .collect();
            c.key_pairs.sort();
            let roles = iam.list_roles().send().await.expect("roles");
            c.roles = roles
                .roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .collect();
            let users = iam.list_users().send().await.expect("users");
            c.users = users
                .users()
                .iter()
                .map(|u| u.user_name().to_string())
                .collect();
            let policies = iam
                .list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .send()
                .await
                .expect("policies");
            c.policies = policies
                .policies()
                .iter()
                .filter_map(|p| p.policy_name().map(String::from))
                .collect();
            let profiles = iam.list_instance_profiles().send().await.expect("profiles");
            c.profiles = profiles
                .instance_profiles()
                .iter()
                .map(|p| p.instance_profile_name().to_string())
                .collect();
            if c.profiles.iter().any(|p| p == "kill-profile") {
                c.profile_roles = profile_roles(&iam, "kill-profile").await;
            }
            if c.roles.iter().any(|r| r == "kill-role") {
                let attached = iam
                    .list_attached_role_policies()
                    .role_name("kill-role")
                    .send()
                    .await
                    .expect("attached");
                c.role_policies = attached
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_name().map(String::from))
                    .collect();
                let role = iam
                    .get_role()
                    .role_name("kill-role")
                    .send()
                    .await
                    .expect("role");
                c.role_stage = role
                    .role()
                    .map(aws_sdk_iam::types::Role::tags)
                    .unwrap_or_default()
                    .iter()
                    .find(|t| t.key() == "stage")
                    .map(|t| t.value().to_string());
                let inline = iam
                    .list_role_policies()
                    .role_name("kill-role")
                    .send()
                    .await
                    .expect("role inline policies");
                c.role_inline = inline.policy_names().to_vec();
                if let Some(name) = c.role_inline.first() {
                    let got = iam
                        .get_role_policy()
                        .role_name("kill-role")
                        .policy_name(name)
                        .send()
                        .await
                        .expect("role inline policy");
                    c.role_inline_action = allowed_action(got.policy_document());
                }
            }
            if let Some(arn) = policies
                .policies()
                .iter()
                .find(|p| p.policy_name() == Some("kill-policy"))
                .and_then(|p| p.arn())
            {
                let versions = iam
                    .list_policy_versions()
                    .policy_arn(arn)
                    .send()
                    .await
                    .expect("versions");
                c.policy_versions = versions.versions().len();
                let default = versions
                    .versions()
                    .iter()
                    .find(|v| v.is_default_version())
                    .and_then(|v| v.version_id())
                    .expect("a default version");
                let version = iam
                    .get_policy_version()
                    .policy_arn(arn)
                    .version_id(default)
                    .send()
                    .await
                    .expect("version");
                let doc = version
                    .policy_version()
                    .and_then(|v| v.document())
                    .unwrap_or_default();
                c.policy_action = allowed_action(doc);
            }
            if c.users.iter().any(|u| u == "kill-user") {
                let keys = iam
                    .list_access_keys()
                    .user_name("kill-user")
                    .send()
                    .await
                    .expect("keys");
                c.access_keys = keys.access_key_metadata().len();
                let inline = iam
                    .list_user_policies()
                    .user_name("kill-user")
                    .send()
                    .await
                    .expect("user inline policies");
                c.user_inline = inline.policy_names().to_vec();
                let attached = iam
                    .list_attached_user_policies()
                    .user_name("kill-user")
                    .send()
                    .await
                    .expect("user attached");
                c.user_policies = attached
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_name().map(String::from))
                    .collect();
            }

            let vpcs = ec2.describe_vpcs().send().await.expect("vpcs");
            let defaults: Vec<&str> = vpcs
                .vpcs()
                .iter()
                .filter(|v| v.is_default() == Some(true))
                .filter_map(|v| v.vpc_id())
                .collect();
            let ours = |vpc: Option<&str>| vpc.is_some_and(|v| !defaults.contains(&v));
            c.vpcs = vpcs.vpcs().iter().filter(|v| ours(v.vpc_id())).count();
            let subnets = ec2.describe_subnets().send().await.expect("subnets");
            c.subnets = subnets
                .subnets()
                .iter()
                .filter(|s| ours(s.vpc_id()))
                .count();
            let gateways = ec2
                .describe_internet_gateways()
                .send()
                .await
                .expect("gateways");
            c.gateways = gateways
                .internet_gateways()
                .iter()
                .filter(|g| !g.attachments().iter().any(|a| !ours(a.vpc_id())))
                .count();
            let nats = ec2
                .describe_nat_gateways()
                .send()
                .await
                .expect("nat gateways");
            let live_nats: Vec<&aws_sdk_ec2::types::NatGateway> = nats
                .nat_gateways()
                .iter()
                .filter(|g| nat_gateway_live(g))
                .collect();
            c.nat_gateways = live_nats
                .iter()
                .map(|g| {
                    format!(
                        "{}/{}",
                        ec2_tag(g.tags(), "Name").unwrap_or_default(),
                        ec2_tag(g.tags(), "stage").unwrap_or_default()
                    )
                })
                .collect();
            c.nat_gateways.sort();
            let tables = ec2.describe_route_tables().send().await.expect("tables");
            for t in tables.route_tables().iter().filter(|t| ours(t.vpc_id())) {
                let main = t.associations().iter().any(|a| a.main() == Some(true));
                c.route_tables += usize::from(!main);
                c.associations += t
                    .associations()
                    .iter()
                    .filter(|a| a.main() != Some(true))
                    .count();
                if main {
                    continue;
                }
                for r in t.routes() {
                    let dest = r.destination_cidr_block().unwrap_or_default();
                    let target = match (r.gateway_id(), r.nat_gateway_id()) {
                        (Some("local"), _) => continue,
                        (Some(_), _) => "igw",
                        (_, Some(id))
                            if live_nats.iter().any(|g| g.nat_gateway_id() == Some(id)) =>
                        {
                            "nat"
                        }
                        (_, Some(_)) => "nat-gone",
                        _ => "other",
                    };
                    c.routes.push(format!("{dest} {target}"));
                }
            }
            c.routes.sort();
            let groups = ec2.describe_security_groups().send().await.expect("groups");
            c.groups = groups
                .security_groups()
                .iter()
                .filter(|g| ours(g.vpc_id()) && g.group_name() != Some("default"))
                .filter_map(|g| g.group_name().map(String::from))
                .collect();
            c.groups.sort();
            if let Some(id) = groups
                .security_groups()
                .iter()
                .find(|g| g.group_name() == Some("kill-sg-rules"))
                .and_then(|g| g.group_id())
            {
                let listed = ec2
                    .describe_security_group_rules()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("group-id")
                            .values(id)
                            .build(),
                    )
                    .send()
                    .await
                    .expect("rules");
                c.rules = listed
                    .security_group_rules()
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {}-{} {} {}",
                            if r.is_egress() == Some(true) {
                                "egress"
                            } else {
                                "ingress"
                            },
                            r.ip_protocol().unwrap_or_default(),
                            r.from_port().unwrap_or_default(),
                            r.to_port().unwrap_or_default(),
                            r.cidr_ipv4().unwrap_or_default(),
                            r.description().unwrap_or_default()
                        )
                    })
                    .collect();
                c.rules.sort();
            }
            let mut single = None;
            let mut next = None;
            loop {
                let page = ec2
                    .describe_instances()
                    .set_next_token(next)
                    .send()
                    .await
                    .expect("instances");
                for i in page
                    .reservations()
                    .iter()
                    .flat_map(aws_sdk_ec2::types::Reservation::instances)
                {
                    let state = i.state().and_then(|s| s.name());
                    if state == Some(&aws_sdk_ec2::types::InstanceStateName::Terminated) {
                        continue;
                    }
                    c.instances += 1;
                    c.nodes +=
                        usize::from(ec2_tag(i.tags(), "skyform:cluster") == Some("kill-cluster"));
                    if ec2_tag(i.tags(), "Name") == Some("kill-instance") {
                        c.singles += 1;
                        single = i.instance_id().map(String::from);
                        c.single_http_tokens = i
                            .metadata_options()
                            .and_then(|m| m.http_tokens())
                            .map(|t| t.as_str().to_string());
                        c.single_key = i.key_name().map(String::from);
                    }
                }
                next = page.next_token().map(String::from);
                if next.is_none() {
                    break;
                }
            }
            let addresses = ec2.describe_addresses().send().await.expect("addresses");
            c.addresses = addresses
                .addresses()
                .iter()
                .map(|a| {
                    let nat = live_nats.iter().any(|g| {
                        g.nat_gateway_addresses().iter().any(|n| {
                            n.allocation_id().is_some() && n.allocation_id() == a.allocation_id()
                        })
                    });
                    let holder = if a.association_id().is_none() {
                        "unassociated"
                    } else if single.is_some() && a.instance_id() == single.as_deref() {
                        "kill-instance"
                    } else if nat {
                        "nat"
                    } else {
                        "other"
                    };
                    format!(
                        "{} -> {holder}",
                        ec2_tag(a.tags(), "Name").unwrap_or_default()
                    )
                })
                .collect();
            c.addresses.sort();
            c
        })
    }
}

/// Which of the reference's two actions a policy document allows (IAM may answer it
/// URL-encoded).
fn allowed_action(doc: &str) -> Option<String> {
    ["s3:GetObject", "s3:ListBucket"]
        .into_iter()
        .find(|a| doc.contains(a) || doc.contains(&a.replace(':', "%3A")))
        .map(String::from)
}

/// One kill point: the `k`-th write of the apply of `stage`.
#[derive(Debug, Clone, Copy)]
struct KillPoint {
    stage: Stage,
    k: usize,
}

/// Counts the writes of the reference: a clean apply of A, then of B from A's result.
fn count_reference_writes(moto: &Moto, pg: &Mutex<Emulation>) -> (usize, usize) {
    let p = Project::new(&[("main.sky.hcl", &every_type(Stage::A))]);
    let mut counts = Vec::new();
    for stage in [Stage::A, Stage::B] {
        p.write("main.sky.hcl", &every_type(stage));
        moto.clear_calls();
        let out = moto.run(&p, &["apply", "--auto-approve"]);
        assert!(
            out.status.success(),
            "reference apply {stage:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        eprintln!("reference apply {stage:?} writes: {:?}", moto.writes());
        counts.push(moto.writes().len());
        assert_eq!(
            Census::take(moto, pg),
            Census::expected(stage),
            "reference {stage:?}"
        );
    }
    (counts[0], counts[1])
}

/// Kills the apply of `point.stage` at its `k`-th write on a fresh account, converges with one
/// more apply and checks AWS; the error names k, the held action and the converge run. Ok says
/// whether the converge run adopted something the killed run created.
fn kill_and_converge(moto: &Moto, pg: &Mutex<Emulation>, point: KillPoint) -> Result<bool, String> {
    let KillPoint { stage, k } = point;
    moto.resume();
    moto.reset();
    pg.lock().expect("emulation").reset();
    let p = Project::new(&[("main.sky.hcl", &every_type(Stage::A))]);
    if stage == Stage::B {
        let out = moto.run(&p, &["apply", "--auto-approve"]);
        if !out.status.success() {
            return Err(format!(
                "{stage:?} k={k}: apply A before the kill failed:\n{}{}",
                stdout(&out),
                stderr(&out)
            ));
        }
        p.write("main.sky.hcl", &every_type(Stage::B));
        moto.resume();
    }
    let action = match moto.kill_apply_at_write(&p, k) {
        Ok(action) => action,
        Err(ended) => {
            return Err(format!(
                "{stage:?} k={k}: the run ended before its {k}th write:\n{}{}",
                stdout(&ended),
                stderr(&ended)
            ))
        }
    };
    let at = format!("{stage:?} k={k} (held {action})");

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let converge = format!("{}{}", stdout(&out), stderr(&out));
    if !out.status.success() {
        return Err(format!("{at}: the converge apply failed:\n{converge}"));
    }
    let census = Census::take(moto, pg);
    let expected = Census::expected(stage);
    if census != expected {
        return Err(format!(
            "{at}: AWS holds\n{census:#?}\nnot\n{expected:#?}\nafter the converge apply:\n{converge}"
        ));
    }
    let key = stdout(&moto.run(&p, &["state", "show", "aws_iam_access_key.launcher"]));
    let keys = block_on(moto.iam().list_access_keys().user_name("kill-user").send()).expect("keys");
    let live = keys
        .access_key_metadata()
        .first()
        .and_then(|k| k.access_key_id())
        .unwrap_or_default();
    if live.is_empty() || !key.contains(live) {
        return Err(format!(
            "{at}: the state's access key is not the user's key {live}:\n{key}\nafter:\n{converge}"
        ));
    }
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    if plan.status.code() != Some(0) || !stdout(&plan).contains("No changes.") {
        return Err(format!(
            "{at}: the plan after converging is not empty ({:?}):\n{}{}\nafter:\n{converge}",
            plan.status.code(),
            stdout(&plan),
            stderr(&plan)
        ));
    }
    Ok(converge.contains("Recovered from an interrupted apply"))
}

/// How many moto servers work through the kill points at once (the machine has 2 cores).
const KILL_WORKERS: usize = 2;

#[test]
fn an_apply_killed_at_any_write_converges_with_exactly_the_configured_objects() {
    let Some(first) = Moto::start() else { return };
    let started = std::time::Instant::now();
    let first_pg = emulate(&first);
    let (writes_a, writes_b) = count_reference_writes(&first, &first_pg);
    // At least one create per type, one launch per node, and B's new policy version.
    assert!(
        writes_a >= 16 && writes_b >= 1,
        "{writes_a} + {writes_b} writes"
    );
    let points: Vec<KillPoint> = (1..=writes_a)
        .map(|k| KillPoint { stage: Stage::A, k })
        .chain((1..=writes_b).map(|k| KillPoint { stage: Stage::B, k }))
        .collect();
    let queue = Mutex::new(points.iter().copied());
    let failures = Mutex::new(Vec::new());
    let adopted = AtomicUsize::new(0);
    let mut motos = vec![(first, first_pg)];
    motos.extend((1..KILL_WORKERS).filter_map(|_| {
        let moto = Moto::start()?;
        let pg = emulate(&moto);
        Some((moto, pg))
    }));
    std::thread::scope(|s| {
        for (moto, pg) in &motos {
            s.spawn(|| loop {
                let next = queue.lock().expect("queue").next();
                let Some(point) = next else { break };
                match kill_and_converge(moto, pg, point) {
                    Ok(true) => _ = adopted.fetch_add(1, Ordering::SeqCst),
                    Ok(false) => {}
                    Err(e) => failures
                        .lock()
                        .expect("failures")
                        .push((point.stage, point.k, e)),
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    failures.sort_by_key(|(stage, k, _)| (*stage == Stage::B, *k));
    let refused: usize = motos
        .iter()
        .map(|(m, _)| m.faults.refused.load(Ordering::SeqCst))
        .sum();
    eprintln!(
        "{} kill points ({writes_a} in A, {writes_b} in B) in {:?}; {refused} requests kept from moto after a kill point",
        points.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} kill points did not converge:\n\n{}",
        failures.len(),
        points.len(),
        failures
            .iter()
            .map(|(_, _, e)| e.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // The held answers were really lost: some runs left objects only adoption could find.
    assert!(adopted.into_inner() > 0, "no converge run adopted anything");
}

#[test]
fn an_apply_through_throttling_5xx_answers_and_cut_connections_converges() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &big_config())]);
    moto.faults.throttle_per_mille.store(200, Ordering::SeqCst);
    moto.faults.cut_per_mille.store(30, Ordering::SeqCst);
    moto.faults
        .unavailable_per_mille
        .store(50, Ordering::SeqCst);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        moto.faults.throttled.load(Ordering::SeqCst) > 5,
        "faults were injected"
    );
    assert!(
        moto.faults.cut.load(Ordering::SeqCst) > 0,
        "connections were cut"
    );
    assert!(
        moto.faults.unavailable.load(Ordering::SeqCst) > 0,
        "5xx answers were sent"
    );
    moto.faults.throttle_per_mille.store(0, Ordering::SeqCst);
    moto.faults.cut_per_mille.store(0, Ordering::SeqCst);
    moto.faults.unavailable_per_mille.store(0, Ordering::SeqCst);
    assert_eq!(census(&moto), (10, 5, 5, 4));
}

#[test]
fn a_second_writer_names_the_lock_holder_and_a_killed_holders_lock_is_released() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"a\" {\n  name = \"locked-a\"\n}\n\nresource \"aws_iam_user\" \"b\" {\n  name = \"locked-b\"\n}\n",
    )]);
    moto.faults.hold_at.store(1, Ordering::SeqCst);
    let mut first = moto
        .process(&p, &["apply", "--auto-approve"])
        .spawn()
        .expect("spawn");
    assert!(moto.wait_held(&mut first, Duration::from_secs(30)));
    // The first apply stays stuck on its held answer; the other runs may reach AWS.
    moto.resume();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the state is locked by \"apply\""), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // A read-only plan does not wait for the running apply.
    let out = moto.run(&p, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let _ = first.kill();
    let _ = first.wait();
    moto.quiesce(Duration::from_secs(30));
    moto.resume();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("released a stale lock"),
        "{}",
        stderr(&out)
    );
    let users = block_on(moto.iam().list_users().send()).expect("users");
    assert_eq!(
        users
            .users()
            .iter()
            .filter(|u| u.user_name().starts_with("locked-"))
            .count(),
        2
    );
}

#[test]
fn sigterm_during_apply_finishes_what_is_in_flight_and_records_it() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &big_config())]);
    // A slow AWS keeps the apply mid-run when the signal comes.
    moto.faults.write_delay_ms.store(150, Ordering::SeqCst);
    let child = moto
        .process(&p, &["apply", "--auto-approve", "--parallelism", "1"])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    while moto.writes().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let writes_at_exit = moto.writes().len();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Interrupt: finishing the operations in flight"),
        "{err}"
    );
    assert!(err.contains("were not started"), "{err}");
    assert!(
        writes_at_exit < 25,
        "no new work started after the signal ({writes_at_exit} writes)"
    );
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(!listed.trim().is_empty(), "what finished is in the state");
    // The next apply completes the rest.
    moto.faults.write_delay_ms.store(0, Ordering::SeqCst);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(census(&moto), (10, 5, 5, 4));
}

/// An unsigned IAM query request (moto routes by the credential scope, not the signature).
fn iam_request(query: &str) -> String {
    let body = format!("{query}&Version=2010-05-08");
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn send(conn: &mut std::net::TcpStream, text: &str) {
    std::io::Write::write_all(conn, text.as_bytes()).expect("send");
}

/// The body of the next answer on `conn`, or None when the proxy closed it without one.
fn iam_answer(conn: &std::net::TcpStream) -> Option<String> {
    use std::io::{BufRead as _, Read as _};
    let mut reader = std::io::BufReader::new(conn);
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("body");
    Some(String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn no_request_reaches_aws_after_the_kill_point_until_forwarding_resumes() {
    let Some(moto) = Moto::start() else { return };
    let proxy = moto.url.trim_start_matches("http://").to_string();
    let connect = || std::net::TcpStream::connect(&proxy).expect("connect proxy");
    // A connection of the run that will be killed, accepted before the kill point, whose
    // request is still on its way.
    let stale = iam_request("Action=CreateUser&UserName=raw-stale");
    let (stale_head, stale_rest) = stale.split_at(20);
    let mut dormant = connect();
    send(&mut dormant, stale_head);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while moto.faults.accepted.load(Ordering::SeqCst) < 1 {
        assert!(std::time::Instant::now() < deadline, "never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }

    moto.faults.hold_at.store(1, Ordering::SeqCst);
    let mut held = connect();
    send(
        &mut held,
        &iam_request("Action=CreateUser&UserName=raw-held"),
    );
    while !moto.faults.held.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the write was not held"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(moto.held_action().as_deref(), Some("CreateUser"));
    // After the kill point a write is cut off unanswered, and so is a read.
    for query in ["Action=CreateUser&UserName=raw-late", "Action=ListUsers"] {
        let mut late = connect();
        send(&mut late, &iam_request(query));
        assert_eq!(iam_answer(&late), None, "{query}");
    }

    moto.quiesce(Duration::from_secs(10));
    moto.resume();
    // The killed run's last request, completed after the resume, is refused for good.
    send(&mut dormant, stale_rest);
    assert_eq!(iam_answer(&dormant), None);
    // The next run is forwarded again.
    let mut next = connect();
    send(
        &mut next,
        &iam_request("Action=CreateUser&UserName=raw-next"),
    );
    assert!(iam_answer(&next).is_some_and(|a| a.contains("raw-next")));

    let users = block_on(moto.iam().list_users().send()).expect("users");
    let mut names: Vec<&str> = users
        .users()
        .iter()
        .map(aws_sdk_iam::types::User::user_name)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["raw-held", "raw-next"]);
    assert_eq!(moto.writes(), ["CreateUser", "CreateUser"]);
    drop(held);
}
