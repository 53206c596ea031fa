//! IAM against moto: the guide's example end to end, updates, drift, failures and prompts.
//! Results are checked through the IAM API, and write calls are counted by the proxy.

use crate::support::{
    attached_role_policies, block_on, example_dir, policy_document, profile_roles, stderr, stdout,
    trust_policy, Moto, Project,
};

fn example_project() -> Project {
    let text =
        std::fs::read_to_string(example_dir("skypilot-iam").join("main.sky.hcl")).expect("example");
    Project::new(&[("main.sky.hcl", &text)])
}

#[test]
fn the_guides_iam_example_applies_verifies_plans_clean_and_destroys() {
    let Some(moto) = Moto::start() else { return };
    let p = example_project();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("secret_access_key = (sensitive value)"));

    let iam = moto.iam();
    block_on(async {
        let trust = trust_policy(&iam, "skypilot-v1").await;
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "ec2.amazonaws.com"
        );
        let arn = "arn:aws:iam::123456789012:policy/minimal-skypilot-policy";
        let doc = policy_document(&iam, arn, "v1").await;
        assert_eq!(
            doc["Statement"][7]["Resource"],
            "arn:aws:iam::123456789012:instance-profile/skypilot-v1"
        );
        let attached = iam
            .list_attached_role_policies()
            .role_name("skypilot-v1")
            .send()
            .await
            .expect("attached");
        assert_eq!(
            attached
                .attached_policies()
                .iter()
                .filter_map(|a| a.policy_arn())
                .collect::<Vec<_>>(),
            [arn]
        );
        let roles = profile_roles(&iam, "skypilot-v1").await;
        assert_eq!(roles, ["skypilot-v1"]);
        let user_policies = iam
            .list_attached_user_policies()
            .user_name("skypilot-launcher")
            .send()
            .await
            .expect("user");
        assert_eq!(user_policies.attached_policies().len(), 1);
        let keys = iam
            .list_access_keys()
            .user_name("skypilot-launcher")
            .send()
            .await
            .expect("keys");
        assert_eq!(keys.access_key_metadata().len(), 1);
    });

    // The sensitive output is masked, and --raw prints it.
    let masked = moto.run(&p, &["output", "secret_access_key"]);
    assert_eq!(stdout(&masked).trim(), "(sensitive value)");
    let raw = moto.run(&p, &["output", "--raw", "secret_access_key"]);
    assert!(stdout(&raw).trim().len() >= 20, "{}", stdout(&raw));

    moto.clear_calls();
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("No changes."));
    assert_eq!(
        moto.writes(),
        Vec::<String>::new(),
        "a clean plan must not write"
    );
    let reads = moto.calls.lock().expect("calls").len();
    assert!(reads <= 8, "refresh should be batched, made {reads} calls");

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("Destroy complete! Resources: 7 destroyed."));
    block_on(async {
        assert!(iam
            .get_role()
            .role_name("skypilot-v1")
            .send()
            .await
            .is_err());
        assert!(iam
            .get_user()
            .user_name("skypilot-launcher")
            .send()
            .await
            .is_err());
        assert!(iam
            .get_instance_profile()
            .instance_profile_name("skypilot-v1")
            .send()
            .await
            .is_err());
        let local = iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .expect("policies");
        assert!(local.policies().is_empty());
    });
    let list = moto.run(&p, &["state", "list"]);
    assert_eq!(stdout(&list), "");
}

const POLICY: &str = r#"
variable "action" { default = "s3:GetObject" }
resource "aws_iam_policy" "p" {
  name   = "doc-test"
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = var.action, Resource = "*" }] })
}
"#;

#[test]
fn a_changed_policy_document_is_one_update_and_a_new_default_version() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", POLICY)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let arn = "arn:aws:iam::123456789012:policy/doc-test";
    for (i, action) in [
        "s3:PutObject",
        "s3:ListBucket",
        "s3:DeleteObject",
        "s3:GetBucketPolicy",
        "s3:GetObjectAcl",
        "s3:PutObjectAcl",
    ]
    .iter()
    .enumerate()
    {
        let var = format!("action={action}");
        let plan = moto.run(&p, &["plan", "--detailed-exitcode", "--var", &var]);
        assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
        assert!(
            stdout(&plan).contains("Plan: 0 to add, 1 to change, 0 to destroy."),
            "{}",
            stdout(&plan)
        );
        let added = stdout(&plan).lines().any(|l| {
            l.trim_start().starts_with('+') && l.contains(&format!("\"Action\": \"{action}\""))
        });
        assert!(added, "{}", stdout(&plan));
        let out = moto.run(&p, &["apply", "--auto-approve", "--var", &var]);
        assert!(out.status.success(), "{}", stderr(&out));
        block_on(async {
            let versions = moto
                .iam()
                .list_policy_versions()
                .policy_arn(arn)
                .send()
                .await
                .expect("versions");
            let versions = versions.versions();
            assert_eq!(
                versions.len(),
                (i + 2).min(5),
                "IAM keeps at most five versions"
            );
            let default = versions
                .iter()
                .find(|v| v.is_default_version())
                .expect("default");
            let doc =
                policy_document(&moto.iam(), arn, default.version_id().unwrap_or_default()).await;
            assert_eq!(doc["Statement"][0]["Action"], *action);
        });
    }
}

const ROLE: &str = r#"
resource "aws_iam_role" "r" {
  name               = "drift-test"
  description        = "as configured"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}
resource "aws_iam_instance_profile" "p" {
  name = "drift-test"
  role = aws_iam_role.r.name
}
"#;

#[test]
fn changes_made_outside_skyform_are_drift_and_apply_restores_them() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", ROLE)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    block_on(async {
        moto.iam()
            .update_role()
            .role_name("drift-test")
            .description("changed by hand")
            .send()
            .await
            .expect("update");
    });
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    let text = stdout(&plan);
    assert!(text.contains("# aws_iam_role.r has changed"), "{text}");
    assert!(
        text.contains("\"changed by hand\" -> \"as configured\""),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    block_on(async {
        let role = moto
            .iam()
            .get_role()
            .role_name("drift-test")
            .send()
            .await
            .expect("role")
            .role
            .expect("role");
        assert_eq!(role.description(), Some("as configured"));
    });

    // Deleted out of band: the profile must first lose its role, as AWS requires.
    block_on(async {
        let iam = moto.iam();
        iam.remove_role_from_instance_profile()
            .instance_profile_name("drift-test")
            .role_name("drift-test")
            .send()
            .await
            .expect("remove");
        iam.delete_role()
            .role_name("drift-test")
            .send()
            .await
            .expect("delete");
    });
    let plan = moto.run(&p, &["plan"]);
    let text = stdout(&plan);
    assert!(text.contains("# aws_iam_role.r has been deleted"), "{text}");
    assert!(text.contains("# aws_iam_role.r will be created"), "{text}");
    assert!(
        text.contains("Plan: 1 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    block_on(async {
        let roles = profile_roles(&moto.iam(), "drift-test").await;
        assert_eq!(roles, ["drift-test"]);
    });
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_failed_resource_skips_its_dependents_and_state_keeps_what_succeeded() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        r#"
resource "aws_iam_user" "ok" { name = "independent" }
resource "aws_iam_role" "r" {
  name               = "fails-later"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}
resource "aws_iam_role_policy_attachment" "bad" {
  role       = aws_iam_role.r.name
  policy_arn = "arn:aws:iam::123456789012:policy/does-not-exist"
}
resource "aws_iam_instance_profile" "after" {
  name       = "after-bad"
  depends_on = [aws_iam_role_policy_attachment.bad]
}
"#,
    )]);
    let out = moto
        .skyform(&p)
        .args(["apply", "--auto-approve"])
        .env("SKYFORM_IAM_PROPAGATION_TIMEOUT", "1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Error: aws_iam_role_policy_attachment.bad: NoSuchEntity"),
        "{err}"
    );
    assert!(
        err.contains("skipped aws_iam_instance_profile.after"),
        "{err}"
    );
    let list = stdout(&moto.run(&p, &["state", "list"]));
    assert_eq!(list, "aws_iam_role.r\naws_iam_user.ok\n");
    block_on(async {
        assert!(moto
            .iam()
            .get_user()
            .user_name("independent")
            .send()
            .await
            .is_ok());
        assert!(moto
            .iam()
            .get_instance_profile()
            .instance_profile_name("after-bad")
            .send()
            .await
            .is_err());
    });
}

#[test]
fn apply_without_a_terminal_refuses_unless_auto_approved() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"prompted\"\n}\n",
    )]);
    moto.clear_calls();
    let out = moto
        .skyform(&p)
        .arg("apply")
        .write_stdin("yes\n")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert!(!p.path().join(".skyform").exists());
}

#[test]
fn tags_changed_outside_skyform_are_planned_back_in_place() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"tagged\"\n  tags = { team = \"infra\", env = \"prod\" }\n}\n",
    )]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    block_on(async {
        let iam = moto.iam();
        iam.untag_user()
            .user_name("tagged")
            .tag_keys("env")
            .send()
            .await
            .expect("untag");
        let extra = aws_sdk_iam::types::Tag::builder()
            .key("added")
            .value("by hand")
            .build()
            .expect("tag");
        iam.tag_user()
            .user_name("tagged")
            .tags(extra)
            .send()
            .await
            .expect("tag");
    });
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    assert!(
        stdout(&plan).contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        stdout(&plan)
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    block_on(async {
        let tags = moto
            .iam()
            .list_user_tags()
            .user_name("tagged")
            .send()
            .await
            .expect("tags");
        // skyform's own tags (skyform:address, skyform:lineage) stay; the user's are restored.
        let mut tags: Vec<(String, String)> = tags
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        tags.sort();
        assert_eq!(
            tags.iter()
                .filter(|(k, _)| k == "skyform:address")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>(),
            ["aws_iam_user.u"]
        );
        tags.retain(|(k, _)| !k.starts_with("skyform:"));
        assert_eq!(
            tags,
            [
                ("env".to_string(), "prod".to_string()),
                ("team".to_string(), "infra".to_string())
            ]
        );
    });
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

const DOCUMENTS: &str = r#"
data "aws_caller_identity" "me" {}
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}
data "aws_iam_policy_document" "base" {
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeImages"]
    resources = ["*"]
  }
}
data "aws_iam_policy_document" "minimal" {
  source_policy_documents = [data.aws_iam_policy_document.base.json]
  statement {
    sid       = "SpotRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }
  statement {
    sid       = "PassRole"
    actions   = ["iam:PassRole"]
    resources = ["arn:aws:iam::${data.aws_caller_identity.me.account_id}:role/doc-role"]
  }
}
resource "aws_iam_role" "r" {
  name               = "doc-role"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}
resource "aws_iam_policy" "p" {
  name   = "doc-minimal"
  policy = data.aws_iam_policy_document.minimal.json
}
resource "aws_iam_role_policy_attachment" "a" {
  role       = aws_iam_role.r.name
  policy_arn = aws_iam_policy.p.arn
}
"#;

#[test]
fn policy_documents_built_from_statement_blocks_apply_and_plan_clean() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", DOCUMENTS)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    block_on(async {
        let trust = trust_policy(&moto.iam(), "doc-role").await;
        assert_eq!(trust["Version"], "2012-10-17");
        assert_eq!(trust["Statement"][0]["Effect"], "Allow");
        assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "ec2.amazonaws.com"
        );
        let arn = "arn:aws:iam::123456789012:policy/doc-minimal";
        let doc = policy_document(&moto.iam(), arn, "v1").await;
        let sids: Vec<&str> = doc["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert_eq!(sids, ["Describe", "SpotRole", "PassRole"]);
        assert_eq!(
            doc["Statement"][0]["Action"],
            serde_json::json!(["ec2:DescribeInstances", "ec2:DescribeImages"])
        );
        assert_eq!(
            doc["Statement"][1]["Condition"]["StringEquals"]["iam:AWSServiceName"],
            "spot.amazonaws.com"
        );
        assert_eq!(
            doc["Statement"][2]["Resource"],
            "arn:aws:iam::123456789012:role/doc-role"
        );
        assert_eq!(attached_role_policies(&moto.iam(), "doc-role").await, [arn]);
    });
    moto.assert_plan_clean(&p);
}
