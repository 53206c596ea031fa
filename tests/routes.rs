//! `aws_route` against moto, checked through `DescribeRouteTables`: a route on a table without
//! inline routes (which leaves it alone), its target replaced in place, a route already there
//! adopted, and the plan-time refusal of a route on a table whose inline routes would delete it.

use crate::support::{block_on, stderr, stdout, Moto, Project};

/// A VPC with a gateway, a subnet and a table without route blocks, and one route to `target`
/// (an attribute line such as `gateway_id = aws_internet_gateway.gw.id`); no route at all when
/// `target` is empty.
fn config(target: &str) -> String {
    let route = if target.is_empty() {
        String::new()
    } else {
        format!(
            r#"
resource "aws_route" "default" {{
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  {target}
}}
"#
        )
    };
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.50.0.0/16"
}}

resource "aws_internet_gateway" "gw" {{
  vpc_id = aws_vpc.v.id
}}

resource "aws_subnet" "a" {{
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.50.1.0/24"
}}

resource "aws_route_table" "private" {{
  vpc_id = aws_vpc.v.id
  tags = {{
    Name = "private"
  }}
}}
{route}"#
    )
}

/// The table tagged Name = private: its id and its routes other than the local one, as
/// (destination, target).
fn routes(moto: &Moto) -> (String, Vec<(String, String)>) {
    let out = block_on(
        moto.ec2()
            .describe_route_tables()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values("private")
                    .build(),
            )
            .send(),
    )
    .expect("route tables");
    let Some(table) = out.route_tables().first() else {
        return (String::new(), Vec::new());
    };
    let found = table
        .routes()
        .iter()
        .filter(|r| r.gateway_id() != Some("local"))
        .map(|r| {
            let target = r
                .nat_gateway_id()
                .or(r.gateway_id())
                .unwrap_or_default()
                .to_string();
            (
                r.destination_cidr_block().unwrap_or_default().to_string(),
                target,
            )
        })
        .collect();
    (
        table.route_table_id().unwrap_or_default().to_string(),
        found,
    )
}

fn gateway(moto: &Moto) -> String {
    let out = block_on(moto.ec2().describe_internet_gateways().send()).expect("gateways");
    out.internet_gateways()[0]
        .internet_gateway_id()
        .unwrap()
        .to_string()
}

fn subnet(moto: &Moto) -> String {
    let out = block_on(
        moto.ec2()
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("cidr-block")
                    .values("10.50.1.0/24")
                    .build(),
            )
            .send(),
    )
    .expect("subnets");
    out.subnets()[0].subnet_id().unwrap().to_string()
}

#[test]
fn a_route_applies_plans_clean_beside_a_table_without_route_blocks_changes_target_in_place_and_destroys(
) {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        &config("gateway_id = aws_internet_gateway.gw.id"),
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Apply complete! Resources: 5 added"),
        "{}",
        stdout(&out)
    );
    let igw = gateway(&moto);
    assert_eq!(routes(&moto).1, [("0.0.0.0/0".to_string(), igw.clone())]);
    // The table has no route blocks, so the route made by aws_route is not its drift.
    moto.assert_plan_clean(&p);

    // A NAT gateway made outside: the route's new target, put in place by ReplaceRoute.
    let ec2 = moto.ec2();
    let eip = block_on(
        ec2.allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send(),
    )
    .expect("eip");
    let nat = block_on(
        ec2.create_nat_gateway()
            .subnet_id(subnet(&moto))
            .allocation_id(eip.allocation_id().unwrap())
            .send(),
    )
    .expect("nat");
    let nat = nat
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string();
    p.write(
        "main.sky.hcl",
        &config(&format!("nat_gateway_id = \"{nat}\"")),
    );
    let out = moto.run(&p, &["plan"]);
    assert!(
        stdout(&out).contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        moto.writes().iter().any(|w| w.contains("ReplaceRoute")),
        "{:?}",
        moto.writes()
    );
    assert_eq!(routes(&moto).1, [("0.0.0.0/0".to_string(), nat)]);
    moto.assert_plan_clean(&p);

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(routes(&moto).0.is_empty(), "the table is gone");
}

#[test]
fn a_route_already_in_the_table_with_its_target_is_adopted() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config(""))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // What a create whose answer was lost leaves behind: the route, with no record.
    let (table, _) = routes(&moto);
    let igw = gateway(&moto);
    block_on(
        moto.ec2()
            .create_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&igw)
            .send(),
    )
    .expect("route");

    p.write(
        "main.sky.hcl",
        &config("gateway_id = aws_internet_gateway.gw.id"),
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Resources: 1 added"),
        "{}",
        stdout(&out)
    );
    assert_eq!(routes(&moto).1, [("0.0.0.0/0".to_string(), igw)]);
    moto.assert_plan_clean(&p);
}

#[test]
fn a_route_on_a_table_with_inline_route_blocks_is_a_plan_error_naming_both() {
    for inline in [
        "route {\n    cidr_block = \"10.0.0.0/8\"\n    gateway_id = aws_internet_gateway.gw.id\n  }",
        "route = []",
    ] {
        let p = Project::new(&[(
            "main.sky.hcl",
            &format!(
                r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.0.0.0/16"
}}

resource "aws_internet_gateway" "gw" {{
  vpc_id = aws_vpc.v.id
}}

resource "aws_route_table" "t" {{
  vpc_id = aws_vpc.v.id
  {inline}
}}

resource "aws_route" "default" {{
  route_table_id         = aws_route_table.t.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.gw.id
}}
"#
            ),
        )]);
        let out = p.offline().arg("validate").output().expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{inline}: {err}");
        assert!(
            err.contains(
                "aws_route.default: aws_route_table.t also declares inline route blocks, and a \
                 table's inline route blocks are authoritative"
            ),
            "{inline}: {err}"
        );
    }
}
