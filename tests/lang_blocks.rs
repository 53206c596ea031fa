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
