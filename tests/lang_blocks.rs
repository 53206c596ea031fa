//! Terraform's block-level language against moto: `dynamic` blocks, `lifecycle` and `check`.
//! Every change is checked through the AWS API, not only through skyform's output.

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// The TCP ports a security group lets in, sorted.
fn ingress_ports(moto: &Moto, name: &str) -> Vec<i32> {
    let out = block_on(
        moto.ec2()
            .describe_security_groups()
            .filters(filter("group-name", name))
            .send(),
    )
    .expect("describe groups");
    let mut ports: Vec<i32> = out
        .security_groups()
        .iter()
        .flat_map(aws_sdk_ec2::types::SecurityGroup::ip_permissions)
        .filter_map(aws_sdk_ec2::types::IpPermission::from_port)
        .collect();
    ports.sort_unstable();
    ports
}

fn dynamic_group(ports: &str) -> String {
    format!(
        r#"variable "ports" {{
  default = {ports}
}}

data "aws_vpc" "default" {{
  default = true
}}

resource "aws_security_group" "web" {{
  name   = "dynamic-web"
  vpc_id = data.aws_vpc.default.id

  ingress {{
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }}

  dynamic "ingress" {{
    for_each = var.ports
    iterator = port
    content {{
      from_port   = port.value
      to_port     = port.value
      protocol    = "tcp"
      cidr_blocks = ["0.0.0.0/0"]
      description = "port ${{port.key}}"
    }}
  }}
}}
"#
    )
}

#[test]
fn ingress_rules_from_a_dynamic_block_follow_the_variable_list() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &dynamic_group("[80, 443]"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(ingress_ports(&moto, "dynamic-web"), [22, 80, 443]);

    p.write("main.sky.hcl", &dynamic_group("[443, 8443]"));
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("aws_security_group.web will be updated in-place"),
        "{}",
        stdout(&out)
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(ingress_ports(&moto, "dynamic-web"), [22, 443, 8443]);
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn lifecycle_config(version: u32) -> String {
    format!(
        r#"variable "v" {{
  default = {version}
}}

resource "aws_iam_role" "keep" {{
  name               = "lifecycle-keep"
  assume_role_policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Action = "sts:AssumeRole", Principal = {{ Service = "ec2.amazonaws.com" }} }}]
  }})
  tags = {{ version = "${{var.v}}" }}

  lifecycle {{
    prevent_destroy = true
    ignore_changes  = [tags]
  }}
}}

resource "aws_iam_policy" "p" {{
  name   = "lifecycle-policy-${{var.v}}"
  policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Action = "s3:ListAllMyBuckets", Resource = "*" }}]
  }})

  lifecycle {{
    create_before_destroy = true
  }}
}}

resource "aws_iam_user" "u" {{
  name = "lifecycle-user"

  lifecycle {{
    replace_triggered_by = [aws_iam_policy.p]
  }}
}}
"#
    )
}

/// A role's tags, without the ones skyform adds to find its objects.
fn role_tags(iam: &aws_sdk_iam::Client, name: &str) -> Vec<(String, String)> {
    let out = block_on(iam.list_role_tags().role_name(name).send()).expect("role tags");
    out.tags()
        .iter()
        .filter(|t| !t.key().starts_with("skyform:"))
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn policy_names(iam: &aws_sdk_iam::Client) -> Vec<String> {
    let out = block_on(
        iam.list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send(),
    )
    .expect("policies");
    let mut names: Vec<String> = out
        .policies()
        .iter()
        .filter_map(|p| p.policy_name().map(String::from))
        .collect();
    names.sort();
    names
}

fn user_id(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let out = block_on(iam.get_user().user_name(name).send()).expect("user");
    out.user()
        .map(|u| u.user_id().to_string())
        .unwrap_or_default()
}

#[test]
fn lifecycle_arguments_shape_plans_and_applies_against_iam() {
    let Some(moto) = Moto::start() else { return };
    let iam = moto.iam();
    let p = Project::new(&[("main.sky.hcl", &lifecycle_config(1))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let first_user = user_id(&iam, "lifecycle-user");
    assert_eq!(
        role_tags(&iam, "lifecycle-keep"),
        [("version".to_string(), "1".to_string())],
        "ignored attributes are still set at create"
    );

    p.write("main.sky.hcl", &lifecycle_config(2));
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("+/- resource \"aws_iam_policy\" \"p\""),
        "{text}"
    );
    assert!(
        text.contains(
            "# aws_iam_user.u must be replaced (because replace_triggered_by aws_iam_policy.p)"
        ),
        "{text}"
    );
    assert!(
        !text.contains("aws_iam_role.keep"),
        "ignored tags plan nothing: {text}"
    );

    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let writes = moto.writes();
    let at = |a: &str| {
        writes
            .iter()
            .position(|w| w == a)
            .unwrap_or_else(|| panic!("{a}: {writes:?}"))
    };
    assert!(
        at("CreatePolicy") < at("DeletePolicy"),
        "create before destroy: {writes:?}"
    );
    assert_eq!(policy_names(&iam), ["lifecycle-policy-2"]);
    assert_ne!(
        user_id(&iam, "lifecycle-user"),
        first_user,
        "the user was replaced"
    );
    assert_eq!(
        role_tags(&iam, "lifecycle-keep"),
        [("version".to_string(), "1".to_string())],
        "ignored tags are not updated"
    );
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("Instance cannot be destroyed"), "{err}");
    assert!(
        err.contains("Resource aws_iam_role.keep has lifecycle.prevent_destroy set"),
        "{err}"
    );
    assert_eq!(
        role_tags(&iam, "lifecycle-keep").len(),
        1,
        "the role is still there"
    );
    assert_eq!(
        policy_names(&iam),
        ["lifecycle-policy-2"],
        "nothing was destroyed"
    );
}

fn checked_user(path: &str) -> String {
    format!(
        r#"resource "aws_iam_user" "ops" {{
  name = "checked-ops"
  path = "{path}"
}}

check "ops_path" {{
  assert {{
    condition     = aws_iam_user.ops.path == "/ops/"
    error_message = "ops users belong under /ops/, not ${{aws_iam_user.ops.path}}"
  }}
}}
"#
    )
}

#[test]
fn a_checks_own_data_source_that_finds_nothing_warns_and_the_apply_goes_on() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"resource "aws_iam_user" "u" {
  name = "scoped-check-user"
}

check "network" {
  data "aws_vpc" "shared" {
    tags = { Name = "no-such-network" }
  }

  assert {
    condition     = data.aws_vpc.shared.cidr_block == "10.0.0.0/16"
    error_message = "the shared network is not 10.0.0.0/16"
  }
}
"#,
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: reading data.aws_vpc.shared failed"),
        "{err}"
    );
    assert!(err.contains("belongs to check.network"), "{err}");
    let iam = moto.iam();
    assert_eq!(user_path(&iam, "scoped-check-user"), "/");
}

fn user_path(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let out = block_on(iam.get_user().user_name(name).send()).expect("user");
    out.user().map(|u| u.path().to_string()).unwrap_or_default()
}

#[test]
fn a_failed_check_block_warns_at_plan_and_apply_without_stopping_either() {
    let Some(moto) = Moto::start() else { return };
    let iam = moto.iam();
    let p = Project::new(&[("main.sky.hcl", &checked_user("/"))]);
    let warning = "warning: Check block assertion failed";
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ops users belong under /ops/, not /"),
        "{}",
        stderr(&out)
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    assert_eq!(user_path(&iam, "checked-ops"), "/");

    p.write("main.sky.hcl", &checked_user("/ops/"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));
    assert_eq!(user_path(&iam, "checked-ops"), "/ops/");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));
}
