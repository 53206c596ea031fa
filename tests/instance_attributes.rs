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

fn launch_config(protected: bool, shutdown: &str, team: &str) -> String {
    format!(
        r#"resource "aws_instance" "spot" {{
  ami                                  = "ami-12c6146b"
  instance_type                        = "t3.micro"
  user_data_base64                     = "ZWNobyBoaQ=="
  disable_api_termination              = {protected}
  instance_initiated_shutdown_behavior = "{shutdown}"
  volume_tags                          = {{ Team = "{team}" }}
  tags                                 = {{ Name = "spot" }}

  instance_market_options {{
    market_type = "spot"
    spot_options {{
      max_price          = "0.05"
      spot_instance_type = "one-time"
    }}
  }}

  credit_specification {{
    cpu_credits = "standard"
  }}
}}
"#
    )
}

/// What `DescribeInstanceAttribute` says of one attribute, as text.
fn attribute(moto: &Moto, id: &str, name: aws_sdk_ec2::types::InstanceAttributeName) -> String {
    let ec2 = moto.ec2();
    let out = block_on(async {
        ec2.describe_instance_attribute()
            .instance_id(id)
            .attribute(name)
            .send()
            .await
    })
    .expect("describe instance attribute");
    if let Some(b) = out.disable_api_termination() {
        return format!("{:?}", b.value());
    }
    if let Some(v) = out.instance_initiated_shutdown_behavior() {
        return v.value().unwrap_or_default().to_string();
    }
    out.user_data()
        .and_then(|v| v.value())
        .unwrap_or_default()
        .to_string()
}

fn volume_tag(moto: &Moto, i: &Instance, key: &str) -> Option<String> {
    let ids: Vec<String> = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.volume_id().map(String::from))
        .collect();
    assert!(!ids.is_empty(), "{i:?}");
    let ec2 = moto.ec2();
    let out = block_on(async {
        ec2.describe_volumes()
            .set_volume_ids(Some(ids))
            .send()
            .await
    })
    .expect("describe volumes");
    out.volumes()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(String::from))
}

#[test]
fn spot_user_data_base64_protection_shutdown_and_volume_tags_reach_ec2_and_change_in_place() {
    use aws_sdk_ec2::types::InstanceAttributeName as Name;
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &launch_config(false, "terminate", "a"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let i = the_instance(&moto);
    let id = i.instance_id().expect("id").to_string();
    assert_eq!(
        i.instance_lifecycle()
            .map(aws_sdk_ec2::types::InstanceLifecycleType::as_str),
        Some("spot")
    );
    assert_eq!(attribute(&moto, &id, Name::UserData), "ZWNobyBoaQ==");
    assert_eq!(
        attribute(&moto, &id, Name::InstanceInitiatedShutdownBehavior),
        "terminate"
    );
    assert_eq!(volume_tag(&moto, &i, "Team").as_deref(), Some("a"));
    // volume_tags replace the instance's tags on the volumes.
    assert_eq!(volume_tag(&moto, &i, "Name"), None);
    moto.assert_plan_clean(&p);

    // moto ignores RunInstances' DisableApiTermination, so protection is switched on by an
    // update here, together with the other in-place changes.
    p.write("main.sky.hcl", &launch_config(true, "stop", "b"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let after = the_instance(&moto);
    assert_eq!(after.instance_id(), Some(id.as_str()), "changed in place");
    assert_eq!(
        attribute(&moto, &id, Name::DisableApiTermination),
        "Some(true)"
    );
    assert_eq!(
        attribute(&moto, &id, Name::InstanceInitiatedShutdownBehavior),
        "stop"
    );
    assert_eq!(volume_tag(&moto, &after, "Team").as_deref(), Some("b"));
    moto.assert_plan_clean(&p);

    // Termination protection holds, as in Terraform: destroy fails and the instance stays.
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(the_instance(&moto).instance_id(), Some(id.as_str()));

    p.write("main.sky.hcl", &launch_config(false, "stop", "b"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        attribute(&moto, &id, Name::DisableApiTermination),
        "Some(false)"
    );
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn user_data_and_user_data_base64_together_are_refused_before_anything_is_made() {
    let Some(moto) = Moto::start() else { return };
    let config = r#"resource "aws_instance" "x" {
  ami              = "ami-12c6146b"
  instance_type    = "t3.micro"
  user_data        = "echo hi"
  user_data_base64 = "ZWNobyBoaQ=="
}
"#;
    let p = Project::new(&[("main.sky.hcl", config)]);
    for command in [&["validate"][..], &["apply", "--auto-approve"]] {
        let out = moto.run(&p, command);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("aws_instance.x.user_data_base64 conflicts with user_data"),
            "{err}"
        );
        assert!(err.contains("main.sky.hcl:5:3"), "at the attribute: {err}");
    }
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());
}

fn scripted(script: &str, replace_on_change: bool) -> String {
    format!(
        r#"resource "aws_instance" "app" {{
  ami                         = "ami-12c6146b"
  instance_type               = "t3.micro"
  user_data                   = "{script}"
  user_data_replace_on_change = {replace_on_change}
}}
"#
    )
}

#[test]
fn a_user_data_change_updates_in_place_unless_replace_on_change_is_set() {
    use aws_sdk_ec2::types::InstanceAttributeName as Name;
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &scripted("echo one", false))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let id = the_instance(&moto).instance_id().expect("id").to_string();

    p.write("main.sky.hcl", &scripted("echo two", false));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        the_instance(&moto).instance_id(),
        Some(id.as_str()),
        "the same instance, running again"
    );
    assert_eq!(attribute(&moto, &id, Name::UserData), "ZWNobyB0d28=");
    let writes = moto.writes();
    for action in ["StopInstances", "ModifyInstanceAttribute", "StartInstances"] {
        assert!(writes.iter().any(|w| w == action), "{action}: {writes:?}");
    }
    moto.assert_plan_clean(&p);

    p.write("main.sky.hcl", &scripted("echo three", true));
    let out = moto.run(&p, &["plan"]);
    let plan = stdout(&out);
    assert!(
        plan.lines()
            .any(|l| l.contains("user_data ") && l.contains("# forces replacement")),
        "{plan}"
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let new = the_instance(&moto);
    assert_ne!(new.instance_id(), Some(id.as_str()), "replaced");
    moto.assert_plan_clean(&p);
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn ebs_block_devices_are_attached_with_their_settings_and_read_in_one_describe_volumes() {
    let Some(moto) = Moto::start() else { return };
    let config = r#"resource "aws_instance" "db" {
  count         = 2
  ami           = "ami-12c6146b"
  instance_type = "t3.micro"

  root_block_device {
    volume_size = 12
  }

  ebs_block_device {
    device_name = "/dev/sdf"
    volume_size = 20
    volume_type = "gp3"
  }

  ebs_block_device {
    device_name           = "/dev/sdg"
    volume_size           = 5
    volume_type           = "standard"
    delete_on_termination = false
  }
}
"#;
    let p = Project::new(&[("main.sky.hcl", config)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let ec2 = moto.ec2();
    let found = block_on(async {
        ec2.describe_volumes()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("attachment.device")
                    .values("/dev/sdf")
                    .values("/dev/sdg")
                    .build(),
            )
            .send()
            .await
    })
    .expect("describe volumes");
    let mut seen: Vec<(String, i32, String)> = found
        .volumes()
        .iter()
        .map(|v| {
            let a = &v.attachments()[0];
            (
                a.device().unwrap_or_default().to_string(),
                v.size().unwrap_or_default(),
                v.volume_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    let sdf = ("/dev/sdf".to_string(), 20, "gp3".to_string());
    let sdg = ("/dev/sdg".to_string(), 5, "standard".to_string());
    assert_eq!(seen, [sdf.clone(), sdf, sdg.clone(), sdg]);
    // moto's volume attachments leave DeleteOnTermination out; the instances' mappings say it.
    let described = block_on(async { ec2.describe_instances().send().await }).expect("describe");
    let mut kept: Vec<(String, Option<bool>)> = described
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .flat_map(Instance::block_device_mappings)
        .filter(|m| m.device_name() != Some("/dev/sda1"))
        .map(|m| {
            (
                m.device_name().unwrap_or_default().to_string(),
                m.ebs()
                    .and_then(aws_sdk_ec2::types::EbsInstanceBlockDevice::delete_on_termination),
            )
        })
        .collect();
    kept.sort();
    let f = ("/dev/sdf".to_string(), Some(true));
    let g = ("/dev/sdg".to_string(), Some(false));
    assert_eq!(kept, [f.clone(), f, g.clone(), g]);

    moto.clear_calls();
    moto.assert_plan_clean(&p);
    let calls = moto.calls.lock().expect("calls").clone();
    let count = |action: &str| calls.iter().filter(|c| *c == action).count();
    // The lineage scan's one, which serves the refresh too.
    assert_eq!(count("DescribeInstances"), 1, "{calls:?}");
    assert_eq!(count("DescribeVolumes"), 1, "{calls:?}");

    // A new size is a new instance, as in Terraform.
    p.write(
        "main.sky.hcl",
        &config.replace("volume_size = 20", "volume_size = 30"),
    );
    let out = moto.run(&p, &["plan"]);
    let plan = stdout(&out);
    assert!(
        plan.contains("2 to add, 0 to change, 2 to destroy"),
        "{plan}"
    );
    assert!(
        plan.contains("aws_instance.db[0] must be replaced"),
        "{plan}"
    );
    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
