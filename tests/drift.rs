//! `skyform drift` against moto: a role's description changed and a security group rule
//! revoked through the AWS APIs are reported per attribute with exit 2, no AWS write, a
//! first-seen time that a second run keeps, and nothing left in the state's bookkeeping once
//! apply undoes them; `--no-record` leaves the state file as it was.

use crate::aws_network::{group, has_ssh_rule};
use crate::support::{block_on, stderr, stdout, Moto, Project};

fn web(moto: &Moto) -> aws_sdk_ec2::types::SecurityGroup {
    group(moto, "drift-web").expect("the group")
}

const CONFIG: &str = r#"
resource "aws_iam_role" "r" {
  name        = "drift-role"
  description = "as configured"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_security_group" "web" {
  name        = "drift-web"
  description = "web"
  vpc_id      = aws_vpc.v.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
"#;

/// The first-seen map `drift` recorded in the state's `meta` table, if any.
fn drift_seen(p: &Project) -> Option<String> {
    let db = rusqlite::Connection::open(p.path().join(".skyform/state.db")).expect("open");
    db.query_row("SELECT value FROM meta WHERE key = 'drift_seen'", [], |r| {
        r.get(0)
    })
    .ok()
}

/// Changes the role's description and revokes the group's rule, as someone in the console.
fn drift_outside(moto: &Moto) {
    let id = web(moto).group_id().expect("id").to_string();
    block_on(async {
        moto.iam()
            .update_role()
            .role_name("drift-role")
            .description("changed by hand")
            .send()
            .await
            .expect("update role");
        let ec2 = moto.ec2();
        ec2.revoke_security_group_ingress()
            .group_id(id)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(
                        aws_sdk_ec2::types::IpRange::builder()
                            .cidr_ip("10.0.0.0/16")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("revoke");
    });
}

#[test]
fn drift_reports_each_changed_attribute_with_the_time_it_was_first_seen_and_writes_nothing_to_aws()
{
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CONFIG)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let out = moto.run(&p, &["drift"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("No drift"), "{}", stdout(&out));
    assert_eq!(drift_seen(&p), None);

    drift_outside(&moto);
    moto.clear_calls();
    let out = moto.run(&p, &["drift"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(text.contains("# aws_iam_role.r has changed"), "{text}");
    assert!(
        text.contains("description = \"as configured\" -> \"changed by hand\""),
        "{text}"
    );
    assert!(
        text.contains("# aws_security_group.web has changed"),
        "{text}"
    );
    assert!(text.contains("- ingress {"), "{text}");
    assert!(
        text.contains("seen for less than a minute (since "),
        "{text}"
    );
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());
    let seen: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&drift_seen(&p).expect("recorded")).expect("a JSON map");
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        [
            "aws_iam_role.r description",
            "aws_security_group.web ingress"
        ]
    );
    // AWS is as it was changed by hand: drift only reports.
    let role = block_on(moto.iam().get_role().role_name("drift-role").send()).expect("role");
    assert_eq!(
        role.role().and_then(|r| r.description()),
        Some("changed by hand")
    );
    assert!(!has_ssh_rule(&web(&moto), "10.0.0.0/16"));

    // A second run, later, keeps the first-seen times, in every format.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = moto.run(&p, &["drift", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let role = json["resource_drift"]
        .as_array()
        .expect("resource_drift")
        .iter()
        .find(|d| d["address"] == "aws_iam_role.r")
        .expect("the role's drift");
    assert_eq!(role["change"]["actions"], serde_json::json!(["update"]));
    assert_eq!(role["change"]["after"]["description"], "changed by hand");
    assert_eq!(
        role["first_seen_by_attribute"]["description"].as_str(),
        Some(seen["aws_iam_role.r description"].as_str())
    );
    assert_eq!(
        role["first_seen"].as_str(),
        Some(seen["aws_iam_role.r description"].as_str())
    );
    let out = moto.run(&p, &["drift", "--markdown"]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{md}");
    assert!(
        md.contains("| Resource | Attribute | Was | Now | Seen for | Since |"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| `aws_iam_role.r` | description | \"as configured\" | \"changed by hand\" | less than a minute | {} |",
            seen["aws_iam_role.r description"]
        )),
        "{md}"
    );
    assert_eq!(
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(
            &drift_seen(&p).expect("still recorded")
        )
        .expect("map"),
        seen
    );
    assert!(moto.writes().is_empty(), "{:?}", moto.writes());

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(&p, &["drift"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(drift_seen(&p), None);
}

#[test]
fn drift_with_no_record_leaves_the_state_file_byte_for_byte_as_it_was() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CONFIG)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    drift_outside(&moto);
    let db = p.path().join(".skyform/state.db");
    let before = std::fs::read(&db).expect("state");
    let out = moto.run(&p, &["drift", "--no-record"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("seen for less than a minute"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(&db).expect("state"), before);
    assert_eq!(drift_seen(&p), None);
}

#[test]
fn drift_with_both_json_and_markdown_is_a_usage_error() {
    let p = Project::new(&[("main.sky.hcl", CONFIG)]);
    let out = p
        .offline()
        .args(["drift", "--json", "--markdown"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
