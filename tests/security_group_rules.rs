//! `aws_vpc_security_group_ingress_rule` and `aws_vpc_security_group_egress_rule` against
//! moto, checked through `DescribeSecurityGroupRules`; and the plan-time refusal of a rule
//! resource on a group whose inline blocks of the same direction would revoke it.

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn config(ssh_port: u16) -> String {
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.30.0.0/16"
}}

resource "aws_security_group" "web" {{
  name   = "web"
  vpc_id = aws_vpc.v.id
}}

resource "aws_vpc_security_group_ingress_rule" "ssh" {{
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = {ssh_port}
  to_port           = {ssh_port}
  cidr_ipv4         = "10.30.0.0/16"
  description       = "ssh"
  tags = {{
    Name = "ssh"
  }}
}}

resource "aws_vpc_security_group_ingress_rule" "https" {{
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}}

resource "aws_vpc_security_group_egress_rule" "dns" {{
  security_group_id = aws_security_group.web.id
  ip_protocol       = "udp"
  from_port         = 53
  to_port           = 53
  cidr_ipv4         = "10.30.0.2/32"
}}
"#
    )
}

/// Every rule of the group named `name`, as `DescribeSecurityGroupRules` reports them.
fn group_rules(moto: &Moto, name: &str) -> Vec<aws_sdk_ec2::types::SecurityGroupRule> {
    let ec2 = moto.ec2();
    let groups = block_on(
        ec2.describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values(name)
                    .build(),
            )
            .send(),
    )
    .expect("groups");
    let Some(id) = groups
        .security_groups()
        .first()
        .and_then(|g| g.group_id().map(String::from))
    else {
        return Vec::new();
    };
    let out = block_on(
        ec2.describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(id)
                    .build(),
            )
            .send(),
    )
    .expect("rules");
    out.security_group_rules().to_vec()
}

/// The group's rules as AWS reports them: (egress, protocol, from, to, cidr, tagged Name).
fn rules(moto: &Moto) -> Vec<(bool, String, i32, i32, String, Option<String>)> {
    let mut found: Vec<_> = group_rules(moto, "web")
        .iter()
        .map(|r| {
            (
                r.is_egress().unwrap_or_default(),
                r.ip_protocol().unwrap_or_default().to_string(),
                r.from_port().unwrap_or_default(),
                r.to_port().unwrap_or_default(),
                r.cidr_ipv4().unwrap_or_default().to_string(),
                r.tags()
                    .iter()
                    .find(|t| t.key() == Some("Name"))
                    .and_then(|t| t.value().map(String::from)),
            )
        })
        .collect();
    found.sort();
    found
}

fn rule(
    egress: bool,
    proto: &str,
    port: i32,
    cidr: &str,
    name: Option<&str>,
) -> (bool, String, i32, i32, String, Option<String>) {
    (
        egress,
        proto.into(),
        port,
        port,
        cidr.into(),
        name.map(String::from),
    )
}

#[test]
fn rule_resources_apply_plan_clean_are_replaced_on_a_new_port_and_destroy() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config(22))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Apply complete! Resources: 5 added"),
        "{}",
        stdout(&out)
    );
    // AWS's default allow-all egress stays: the group has no egress blocks.
    let default_egress = rule(true, "-1", -1, "0.0.0.0/0", None);
    assert_eq!(
        rules(&moto),
        [
            rule(false, "tcp", 22, "10.30.0.0/16", Some("ssh")),
            rule(false, "tcp", 443, "0.0.0.0/0", None),
            default_egress.clone(),
            rule(true, "udp", 53, "10.30.0.2/32", None),
        ]
    );

    let out = moto.run(&p, &["plan"]);
    assert!(
        stdout(&out).contains("No changes."),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    p.write("main.sky.hcl", &config(2222));
    let out = moto.run(&p, &["plan"]);
    let text = stdout(&out);
    assert!(
        text.contains("aws_vpc_security_group_ingress_rule.ssh must be replaced"),
        "{text}{}",
        stderr(&out)
    );
    assert!(
        text.contains("1 to add, 0 to change, 1 to destroy"),
        "{text}"
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        rules(&moto),
        [
            rule(false, "tcp", 443, "0.0.0.0/0", None),
            rule(false, "tcp", 2222, "10.30.0.0/16", Some("ssh")),
            default_egress,
            rule(true, "udp", 53, "10.30.0.2/32", None),
        ]
    );
    let out = moto.run(&p, &["plan"]);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(rules(&moto).is_empty(), "the group and its rules are gone");
}

#[test]
fn a_rule_resource_on_a_group_with_inline_rules_of_its_direction_is_a_plan_error() {
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.v.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.web.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}
"#,
    )]);
    let out = p.offline().arg("validate").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "aws_vpc_security_group_ingress_rule.https: aws_security_group.web also declares \
             inline ingress blocks, and a group's inline ingress blocks are authoritative"
        ),
        "{err}"
    );
    assert!(
        err.contains("main.sky.hcl:19:"),
        "the rule's security_group_id: {err}"
    );
    // The group leaves egress alone (no egress blocks), so the egress rule is no conflict.
    assert!(
        !err.contains("aws_vpc_security_group_egress_rule.all"),
        "{err}"
    );
}

fn legacy_config(ssh_port: u16, description: &str) -> String {
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.40.0.0/16"
}}

resource "aws_security_group" "legacy" {{
  name   = "legacy"
  vpc_id = aws_vpc.v.id
}}

resource "aws_security_group_rule" "ssh" {{
  type              = "ingress"
  security_group_id = aws_security_group.legacy.id
  protocol          = "tcp"
  from_port         = {ssh_port}
  to_port           = {ssh_port}
  cidr_blocks       = ["10.40.0.0/16", "192.168.0.0/16"]
  description       = "{description}"
}}

resource "aws_security_group_rule" "peers" {{
  type              = "ingress"
  security_group_id = aws_security_group.legacy.id
  protocol          = "tcp"
  from_port         = 8080
  to_port           = 8080
  self              = true
}}
"#
    )
}

/// The ingress rules of the group "legacy": (protocol, from, to, cidr or referenced group,
/// description), sorted.
fn legacy_ingress(moto: &Moto) -> Vec<(String, i32, i32, String, String)> {
    let mut found: Vec<_> = group_rules(moto, "legacy")
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .map(|r| {
            let source = r
                .cidr_ipv4()
                .map(String::from)
                .or_else(|| {
                    r.referenced_group_info()
                        .and_then(|g| g.group_id())
                        .map(|g| {
                            format!(
                                "group {}",
                                if g == r.group_id().unwrap_or_default() {
                                    "self"
                                } else {
                                    g
                                }
                            )
                        })
                })
                .unwrap_or_default();
            (
                r.ip_protocol().unwrap_or_default().to_string(),
                r.from_port().unwrap_or_default(),
                r.to_port().unwrap_or_default(),
                source,
                r.description().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn ingress(port: i32, source: &str, description: &str) -> (String, i32, i32, String, String) {
    ("tcp".into(), port, port, source.into(), description.into())
}

#[test]
fn an_older_form_rule_stands_for_one_aws_rule_per_source_changes_its_description_in_place_and_is_replaced_on_a_new_port(
) {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &legacy_config(22, "ssh"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Apply complete! Resources: 4 added"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        legacy_ingress(&moto),
        [
            ingress(22, "10.40.0.0/16", "ssh"),
            ingress(22, "192.168.0.0/16", "ssh"),
            ingress(8080, "group self", ""),
        ]
    );
    moto.assert_plan_clean(&p);

    // The description is the one attribute changed in place, on every source.
    p.write("main.sky.hcl", &legacy_config(22, "admin"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        legacy_ingress(&moto),
        [
            ingress(22, "10.40.0.0/16", "admin"),
            ingress(22, "192.168.0.0/16", "admin"),
            ingress(8080, "group self", ""),
        ]
    );
    moto.assert_plan_clean(&p);

    p.write("main.sky.hcl", &legacy_config(2222, "admin"));
    let out = moto.run(&p, &["plan"]);
    assert!(
        stdout(&out).contains("aws_security_group_rule.ssh must be replaced"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        legacy_ingress(&moto),
        [
            ingress(2222, "10.40.0.0/16", "admin"),
            ingress(2222, "192.168.0.0/16", "admin"),
            ingress(8080, "group self", ""),
        ]
    );
    moto.assert_plan_clean(&p);

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(group_rules(&moto, "legacy").is_empty(), "the group is gone");
}

#[test]
fn an_older_form_rule_whose_permission_is_already_in_the_group_is_adopted() {
    let Some(moto) = Moto::start() else { return };
    let group_only = legacy_config(22, "ssh")
        .split("resource \"aws_security_group_rule\"")
        .next()
        .unwrap()
        .to_string();
    let p = Project::new(&[("main.sky.hcl", &group_only)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // What a create whose answer was lost leaves behind: the permission, with no record.
    let group = group_rules(&moto, "legacy")[0]
        .group_id()
        .unwrap()
        .to_string();
    block_on(
        moto.ec2()
            .authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(8080)
                    .to_port(8080)
                    .user_id_group_pairs(
                        aws_sdk_ec2::types::UserIdGroupPair::builder()
                            .group_id(&group)
                            .build(),
                    )
                    .build(),
            )
            .send(),
    )
    .expect("authorize");
    let before = group_rules(&moto, "legacy").len();

    p.write("main.sky.hcl", &legacy_config(22, "ssh"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        legacy_ingress(&moto),
        [
            ingress(22, "10.40.0.0/16", "ssh"),
            ingress(22, "192.168.0.0/16", "ssh"),
            ingress(8080, "group self", ""),
        ]
    );
    assert_eq!(
        group_rules(&moto, "legacy").len(),
        before + 2,
        "no duplicate"
    );
    moto.assert_plan_clean(&p);
}

#[test]
fn an_older_form_rule_on_a_group_with_inline_rules_of_its_type_is_a_plan_error() {
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.v.id

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group_rule" "out" {
  type              = "egress"
  security_group_id = aws_security_group.web.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "in" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  protocol          = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_blocks       = ["10.0.0.0/16"]
}
"#,
    )]);
    let out = p.offline().arg("validate").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "aws_security_group_rule.out: aws_security_group.web also declares inline egress \
             blocks, and a group's inline egress blocks are authoritative"
        ),
        "{err}"
    );
    // The group leaves ingress alone (no ingress blocks): that rule is no conflict.
    assert!(!err.contains("aws_security_group_rule.in"), "{err}");
}

#[test]
fn a_rule_with_two_sources_is_refused_at_plan_time_naming_both() {
    let Some(moto) = Moto::start() else { return };
    let config = r#"resource "aws_vpc_security_group_ingress_rule" "r" {
  security_group_id            = "sg-12345678"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  cidr_ipv4                    = "10.0.0.0/8"
  referenced_security_group_id = "sg-87654321"
}
"#;
    let p = Project::new(&[("main.sky.hcl", config)]);
    let out = moto.run(&p, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "aws_vpc_security_group_ingress_rule.r.referenced_security_group_id conflicts with cidr_ipv4"
        ),
        "{err}"
    );
    assert!(err.contains("main.sky.hcl:7:3"), "{err}");
}
