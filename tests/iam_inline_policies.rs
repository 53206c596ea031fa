//! Inline IAM policies (`aws_iam_role_policy`, `aws_iam_user_policy`) against moto: apply,
//! an in-place change of the document, a clean plan, recovery of a put whose answer was lost,
//! and destroy. Results are checked through `GetRolePolicy` and `GetUserPolicy`.

use crate::support::{block_on, stderr, stdout, Moto, Project};

/// A role and a user, each with an inline policy allowing `action`. The documents are written
/// with keys in another order than IAM returns them, so a clean plan shows they compare
/// semantically.
fn config(action: &str) -> String {
    format!(
        r#"resource "aws_iam_role" "r" {{
  name               = "inline-role"
  assume_role_policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Principal = {{ Service = "ec2.amazonaws.com" }}, Action = "sts:AssumeRole" }}] }})
}}

resource "aws_iam_role_policy" "r" {{
  name   = "read-bucket"
  role   = aws_iam_role.r.name
  policy = jsonencode({{ Statement = [{{ Resource = "*", Action = ["{action}"], Effect = "Allow" }}], Version = "2012-10-17" }})
}}

resource "aws_iam_user" "u" {{
  name = "inline-user"
}}

resource "aws_iam_user_policy" "u" {{
  name   = "read-bucket"
  user   = aws_iam_user.u.name
  policy = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = "{action}", Resource = "*" }}] }})
}}
"#
    )
}

/// The single action each inline policy allows, as IAM answers `GetRolePolicy` and
/// `GetUserPolicy`; `None` where there is no such policy.
fn live_actions(moto: &Moto) -> (Option<String>, Option<String>) {
    let iam = moto.iam();
    block_on(async {
        let action = |doc: &str| {
            let doc = skyform::lang::document::parse_document(doc).expect("policy json");
            let a = &doc["Statement"][0]["Action"];
            a.as_str()
                .or_else(|| a[0].as_str())
                .map(String::from)
                .expect("an action")
        };
        let role = iam
            .get_role_policy()
            .role_name("inline-role")
            .policy_name("read-bucket")
            .send()
            .await
            .ok()
            .map(|o| action(o.policy_document()));
        let user = iam
            .get_user_policy()
            .user_name("inline-user")
            .policy_name("read-bucket")
            .send()
            .await
            .ok()
            .map(|o| action(o.policy_document()));
        (role, user)
    })
}

#[test]
fn inline_policies_apply_change_in_place_plan_clean_and_destroy() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &config("s3:GetObject"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let get = Some("s3:GetObject".to_string());
    assert_eq!(live_actions(&moto), (get.clone(), get));

    moto.clear_calls();
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let calls = moto.calls.lock().expect("calls").clone();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "GetAccountAuthorizationDetails")
            .count(),
        1,
        "roles, users and their inline policies are one batched read: {calls:?}"
    );

    p.write("main.sky.hcl", &config("s3:ListBucket"));
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{text}"
    );
    for addr in ["aws_iam_role_policy.r", "aws_iam_user_policy.u"] {
        assert!(
            text.contains(&format!("# {addr} will be updated in-place")),
            "{text}"
        );
    }

    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let mut writes = moto.writes();
    writes.sort();
    assert_eq!(writes, ["PutRolePolicy", "PutUserPolicy"]);
    let list = Some("s3:ListBucket".to_string());
    assert_eq!(live_actions(&moto), (list.clone(), list));
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(live_actions(&moto), (None, None));
    block_on(async {
        assert!(moto
            .iam()
            .get_role()
            .role_name("inline-role")
            .send()
            .await
            .is_err());
    });
}

#[test]
fn a_put_whose_answer_was_lost_is_found_by_name_and_not_repeated() {
    let Some(moto) = Moto::start() else { return };
    // The role exists first, so the role policy's put is the next apply's first write.
    let role_only = config("s3:GetObject");
    let role_only = &role_only[..role_only
        .find("resource \"aws_iam_role_policy\"")
        .expect("role policy block")];
    let p = Project::new(&[("main.sky.hcl", role_only)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let full = config("s3:GetObject");
    let role_and_policy = full
        .split("resource \"aws_iam_user\"")
        .next()
        .expect("role part");
    p.write("main.sky.hcl", role_and_policy);

    // Write numbering starts again, so the put is write 1.
    moto.resume();
    assert_eq!(
        moto.kill_apply_at_write(&p, 1).ok().as_deref(),
        Some("PutRolePolicy"),
        "the apply's first write"
    );
    assert_eq!(live_actions(&moto).0.as_deref(), Some("s3:GetObject"));

    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        moto.writes(),
        Vec::<String>::new(),
        "the policy the lost put made is adopted, not put again:\n{}",
        stdout(&out)
    );
    let show = moto.run(&p, &["state", "show", "aws_iam_role_policy.r"]);
    assert!(
        stdout(&show).contains("inline-role:read-bucket"),
        "{}",
        stdout(&show)
    );
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
}
