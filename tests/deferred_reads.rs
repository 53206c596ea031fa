//! Data sources read during apply against moto: a policy document naming a role's ARN,
//! known only once the role exists, is read after the role is made, and the policy IAM holds
//! names the role's real ARN.

use crate::support::{block_on, policy_document, stderr, stdout, Moto, Project};

const LAUNCH: &str = r#"
resource "aws_iam_role" "node" {
  name = "defer-node"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
}
data "aws_iam_policy_document" "launch" {
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.node.arn]
  }
}
resource "aws_iam_policy" "launch" {
  name   = "defer-launch"
  policy = data.aws_iam_policy_document.launch.json
}
"#;

const POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/defer-launch";

/// The role's ARN as IAM reports it.
fn role_arn(moto: &Moto) -> String {
    block_on(async {
        moto.iam()
            .get_role()
            .role_name("defer-node")
            .send()
            .await
            .expect("role")
            .role()
            .map(|r| r.arn().to_string())
            .unwrap_or_default()
    })
}

#[test]
fn a_policy_document_naming_a_new_role_is_read_during_apply_and_iam_holds_the_real_arn() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", LAUNCH)]);
    let out = moto.run(&p, &["plan"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("  # data.aws_iam_policy_document.launch will be read during apply\n  # (config refers to values not yet known)\n <= data \"aws_iam_policy_document\" \"launch\" {"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{text}"
    );

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("data.aws_iam_policy_document.launch: Read complete"),
        "{text}"
    );
    assert!(
        text.contains("Apply complete! Resources: 2 added"),
        "{text}"
    );
    let arn = role_arn(&moto);
    assert!(arn.ends_with(":role/defer-node"), "{arn}");
    let doc = block_on(policy_document(&moto.iam(), POLICY_ARN, "v1"));
    assert_eq!(doc["Statement"][0]["Action"], "iam:PassRole");
    assert_eq!(doc["Statement"][0]["Resource"], arn.as_str());
    moto.assert_plan_clean(&p);
}

#[test]
fn a_saved_plan_with_a_read_during_apply_applies_as_reviewed() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", LAUNCH)]);
    let file = p.path().join("launch.plan").display().to_string();
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&p, &["show", "--json", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json plan");
    let read = json["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .find(|c| c["address"] == "data.aws_iam_policy_document.launch")
        .cloned()
        .expect("the read");
    assert_eq!(read["change"]["actions"], serde_json::json!(["read"]));
    assert_eq!(read["action_reason"], "read_because_config_unknown");

    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let doc = block_on(policy_document(&moto.iam(), POLICY_ARN, "v1"));
    assert_eq!(doc["Statement"][0]["Resource"], role_arn(&moto).as_str());
    moto.assert_plan_clean(&p);
}
