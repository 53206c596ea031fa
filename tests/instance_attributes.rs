//! `aws_instance`'s placement, addressing, metadata-service and root-volume attributes against
//! moto: applied, checked through EC2, planned clean, changed in place and destroyed.

use aws_sdk_ec2::types::{HttpTokensState, Instance};

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn config(http_tokens: &str, hop_limit: u8) -> String {
    format!(
        r#"resource "aws_vpc" "v" {{
  cidr_block = "10.7.0.0/16"
}}

resource "aws_subnet" "s" {{
  vpc_id            = aws_vpc.v.id
  cidr_block        = "10.7.1.0/24"
  availability_zone = "us-east-1b"
}}

resource "aws_instance" "node" {{
  ami                         = "ami-12c6146b"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.s.id
  availability_zone           = "us-east-1b"
  private_ip                  = "10.7.1.20"
  associate_public_ip_address = true
  monitoring                  = true

  metadata_options {{
    http_tokens                 = "{http_tokens}"
    http_put_response_hop_limit = {hop_limit}
  }}

  root_block_device {{
    volume_size = 30
    volume_type = "gp3"
    encrypted   = true
  }}
}}

output "ip" {{
  value = aws_instance.node.private_ip
}}

output "eni" {{
  value = aws_instance.node.primary_network_interface_id
}}
"#
    )
}

fn the_instance(moto: &Moto) -> Instance {
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
    let all: Vec<Instance> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

#[test]
fn an_instance_s_zone_addresses_metadata_options_and_root_volume_reach_ec2_and_plan_clean() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config("required", 2))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let i = the_instance(&moto);
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1b")
    );
    assert_eq!(i.private_ip_address(), Some("10.7.1.20"));
    assert!(i.public_ip_address().is_some_and(|ip| !ip.is_empty()));
    let m = i.metadata_options().expect("metadata options");
    assert_eq!(m.http_tokens(), Some(&HttpTokensState::Required));
    assert_eq!(m.http_put_response_hop_limit(), Some(2));
    let eni = i.network_interfaces()[0]
        .network_interface_id()
        .expect("eni")
        .to_string();
    let shown = stdout(&moto.run(&p, &["output", "--raw", "eni"]));
    assert_eq!(shown.trim(), eni);
    let ip = stdout(&moto.run(&p, &["output", "--raw", "ip"]));
    assert_eq!(ip.trim(), "10.7.1.20");

    let root = i.root_device_name().expect("root device");
    let volume_id = i
        .block_device_mappings()
        .iter()
        .find(|b| b.device_name() == Some(root))
        .and_then(|b| b.ebs())
        .and_then(|e| e.volume_id())
        .expect("root volume")
        .to_string();
    let ec2 = moto.ec2();
    let volumes = block_on(async { ec2.describe_volumes().volume_ids(&volume_id).send().await })
        .expect("describe volumes");
    let v = &volumes.volumes()[0];
    assert_eq!(v.size(), Some(30));
    assert_eq!(
        v.volume_type().map(aws_sdk_ec2::types::VolumeType::as_str),
        Some("gp3")
    );
    assert_eq!(v.encrypted(), Some(true));

    moto.assert_plan_clean(&p);

    // Loosening the metadata service is an in-place update, not a new instance.
    p.write("main.sky.hcl", &config("optional", 1));
    let plan = moto.run(&p, &["plan", "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_str(&stdout(&plan)).expect("json plan");
    let actions: Vec<&serde_json::Value> = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| &c["change"]["actions"])
        .collect();
    assert_eq!(actions, [&serde_json::json!(["update"])], "{json}");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let after = the_instance(&moto);
    assert_eq!(after.instance_id(), i.instance_id());
    let m = after.metadata_options().expect("metadata options");
    assert_eq!(m.http_tokens(), Some(&HttpTokensState::Optional));
    assert_eq!(m.http_put_response_hop_limit(), Some(1));
    moto.assert_plan_clean(&p);

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ec2 = moto.ec2();
    let left = block_on(async {
        ec2.describe_instances()
            .instance_ids(i.instance_id().unwrap_or_default())
            .send()
            .await
    })
    .expect("describe");
    let state = left.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string());
    assert!(
        matches!(state.as_deref(), Some("terminated" | "shutting-down")),
        "{state:?}"
    );
}
