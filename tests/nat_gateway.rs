//! `aws_eip`, `aws_eip_association` and `aws_nat_gateway` against moto: a public subnet with
//! a NAT gateway on an Elastic IP, a private route table whose default route goes to it, and
//! an instance's address associated through `aws_eip_association`. Checked through the EC2
//! API: addresses, associations, the gateway's state and the route.

use crate::support::{block_on, ec2_tag as tag, nat_gateway_live, stderr, stdout, Moto, Project};

fn config(stage: &str) -> String {
    format!(
        r#"
resource "aws_vpc" "v" {{
  cidr_block = "10.40.0.0/16"
}}

resource "aws_subnet" "public" {{
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.40.1.0/24"
}}

resource "aws_subnet" "private" {{
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.40.2.0/24"
}}

resource "aws_internet_gateway" "igw" {{
  vpc_id = aws_vpc.v.id
}}

resource "aws_eip" "nat" {{
  domain = "vpc"
  tags = {{
    Name  = "nat-ip"
    Stage = "{stage}"
  }}
}}

resource "aws_nat_gateway" "nat" {{
  subnet_id     = aws_subnet.public.id
  allocation_id = aws_eip.nat.id
  tags = {{
    Name  = "nat"
    Stage = "{stage}"
  }}
  timeouts {{
    create = "2m"
    delete = "2m"
  }}
}}

resource "aws_route_table" "private" {{
  vpc_id = aws_vpc.v.id
  route {{
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.nat.id
  }}
}}

resource "aws_route_table_association" "private" {{
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}}

resource "aws_instance" "bastion" {{
  ami           = "ami-12c6146b"
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.public.id
}}

resource "aws_eip" "bastion" {{
  domain = "vpc"
}}

resource "aws_eip_association" "bastion" {{
  allocation_id = aws_eip.bastion.id
  instance_id   = aws_instance.bastion.id
}}

output "nat_public_ip" {{
  value = aws_nat_gateway.nat.public_ip
}}
"#
    )
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

fn addresses(moto: &Moto) -> Vec<aws_sdk_ec2::types::Address> {
    block_on(moto.ec2().describe_addresses().send())
        .expect("addresses")
        .addresses()
        .to_vec()
}

fn nat_gateways(moto: &Moto) -> Vec<aws_sdk_ec2::types::NatGateway> {
    block_on(moto.ec2().describe_nat_gateways().send())
        .expect("nat gateways")
        .nat_gateways()
        .to_vec()
}

#[test]
fn a_nat_gateway_on_an_elastic_ip_routes_a_private_subnet_and_an_instance_gets_its_own_address() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config("one"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The NAT gateway's address: tagged at allocation, and held by the gateway.
    let addrs = addresses(&moto);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let nat_ip = addrs
        .iter()
        .find(|a| tag(a.tags(), "Name") == Some("nat-ip"))
        .expect("the NAT gateway's address");
    assert_eq!(tag(nat_ip.tags(), "Stage"), Some("one"));
    assert!(tag(nat_ip.tags(), "skyform:lineage").is_some());
    let gateways = nat_gateways(&moto);
    let live: Vec<_> = gateways
        .iter()
        .filter(|g| g.state().map(aws_sdk_ec2::types::NatGatewayState::as_str) == Some("available"))
        .collect();
    assert_eq!(live.len(), 1, "{gateways:?}");
    let gw = live[0];
    let gw_id = gw.nat_gateway_id().expect("id").to_string();
    assert_eq!(tag(gw.tags(), "Name"), Some("nat"));
    assert_eq!(
        gw.nat_gateway_addresses()
            .first()
            .and_then(|a| a.allocation_id()),
        nat_ip.allocation_id()
    );
    assert!(
        stdout(&out).contains(nat_ip.public_ip().expect("ip")),
        "{}",
        stdout(&out)
    );

    // The private table's default route goes to the gateway.
    let tables = block_on(
        moto.ec2()
            .describe_route_tables()
            .filters(filter("route.nat-gateway-id", &gw_id))
            .send(),
    )
    .expect("tables");
    assert_eq!(tables.route_tables().len(), 1);
    assert!(tables.route_tables()[0]
        .routes()
        .iter()
        .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0")
            && r.nat_gateway_id() == Some(gw_id.as_str())));

    // The instance's address is associated with it.
    let instances = block_on(
        moto.ec2()
            .describe_instances()
            .filters(filter("instance-state-name", "running"))
            .send(),
    )
    .expect("instances");
    let instance = instances.reservations()[0].instances()[0]
        .instance_id()
        .expect("instance id")
        .to_string();
    let bastion_ip = addrs
        .iter()
        .find(|a| tag(a.tags(), "Name").is_none())
        .expect("the instance's address");
    assert_eq!(bastion_ip.instance_id(), Some(instance.as_str()));
    assert!(bastion_ip.association_id().is_some());

    // Refresh is batched: the lineage scan's listing of the addresses serves their refresh,
    // and the associations (untagged, so not scanned) take one DescribeAddresses. The scan's
    // one DescribeNatGateways reads the gateway in full and serves the refresh.
    moto.clear_calls();
    moto.assert_plan_clean(&p);
    let calls = moto.calls.lock().expect("calls").clone();
    let count = |a: &str| calls.iter().filter(|c| c.as_str() == a).count();
    assert_eq!(count("DescribeAddresses"), 2, "{calls:?}");
    assert_eq!(count("DescribeNatGateways"), 1, "{calls:?}");

    // A tag changes in place: the same gateway and address, retagged.
    p.write("main.sky.hcl", &config("two"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("0 added, 2 changed, 0 destroyed"),
        "{}",
        stdout(&out)
    );
    let gateways = nat_gateways(&moto);
    let gw = gateways
        .iter()
        .find(|g| g.nat_gateway_id() == Some(gw_id.as_str()))
        .expect("the same gateway");
    assert_eq!(tag(gw.tags(), "Stage"), Some("two"));
    let retagged = addresses(&moto);
    assert!(retagged
        .iter()
        .any(|a| a.allocation_id() == nat_ip.allocation_id()
            && tag(a.tags(), "Stage") == Some("two")));
    moto.assert_plan_clean(&p);

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(addresses(&moto).is_empty(), "{:?}", addresses(&moto));
    let left: Vec<_> = nat_gateways(&moto)
        .into_iter()
        .filter(|g| g.state().map(aws_sdk_ec2::types::NatGatewayState::as_str) != Some("deleted"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_route_block_without_a_target_is_refused_before_the_table_is_made() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"
resource "aws_vpc" "v" {
  cidr_block = "10.41.0.0/16"
}

resource "aws_route_table" "t" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block = "0.0.0.0/0"
  }
}
"#,
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("gateway_id or nat_gateway_id"),
        "{}",
        stderr(&out)
    );
    let tables = block_on(
        moto.ec2()
            .describe_route_tables()
            .filters(filter("association.main", "false"))
            .send(),
    )
    .expect("tables");
    assert!(tables.route_tables().is_empty(), "{tables:?}");
}

/// Addresses, their associations, and the NAT gateways not deleted, as counts.
fn census(moto: &Moto) -> (usize, usize, usize) {
    let addrs = addresses(moto);
    let live = nat_gateways(moto)
        .iter()
        .filter(|g| nat_gateway_live(g))
        .count();
    (
        addrs.len(),
        addrs
            .iter()
            .filter(|a| a.association_id().is_some())
            .count(),
        live,
    )
}

#[test]
fn an_apply_killed_at_any_write_converges_with_one_address_each_one_association_and_one_gateway() {
    let Some(moto) = Moto::start() else { return };
    let text = config("one");
    let mut k = 1;
    loop {
        moto.resume();
        moto.reset();
        let p = Project::new(&[("main.sky.hcl", &text)]);
        let Ok(action) = moto.kill_apply_at_write(&p, k) else {
            // Every write of the apply has been a kill point.
            assert!(k > 8, "the apply made only {} writes", k - 1);
            break;
        };
        let out = moto.run(&p, &["apply", "--auto-approve"]);
        assert!(
            out.status.success(),
            "k={k} ({action}): {}{}",
            stdout(&out),
            stderr(&out)
        );
        // Two addresses (the gateway's and the instance's), both associated, one gateway.
        assert_eq!(census(&moto), (2, 2, 1), "k={k} ({action})");
        moto.assert_plan_clean(&p);
        k += 1;
    }
}
