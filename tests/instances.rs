//! `count`, `for_each` and the refactoring blocks (`moved`, `removed`, `import`) against moto,
//! through the binary: each test applies, changes the configuration, plans, applies, and checks
//! IAM through its API.

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn instances_tf(users: &[&str], teams: &[&str]) -> String {
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"variable "users" {{
  type    = list(string)
  default = [{}]
}}

variable "teams" {{
  type    = set(string)
  default = [{}]
}}

resource "aws_iam_user" "u" {{
  count = length(var.users)
  name  = var.users[count.index]
  tags = {{
    Index = tostring(count.index)
  }}
}}

resource "aws_iam_role" "team" {{
  for_each           = var.teams
  name               = "team-${{each.key}}"
  assume_role_policy = jsonencode({{ Version = "2012-10-17", Statement = [] }})
}}

resource "aws_iam_instance_profile" "team" {{
  for_each = aws_iam_role.team
  name     = "profile-${{each.key}}"
  role     = each.value.name
}}

output "user_arns" {{
  value = aws_iam_user.u[*].arn
}}

output "profiles" {{
  value = {{ for k, p in aws_iam_instance_profile.team : k => p.name }}
}}
"#,
        list(users),
        list(teams)
    )
}

pub(crate) fn iam_users(moto: &Moto) -> Vec<String> {
    let iam = moto.iam();
    let mut names: Vec<String> = block_on(async { iam.list_users().send().await })
        .expect("list users")
        .users()
        .iter()
        .map(|u| u.user_name().to_string())
        .collect();
    names.sort();
    names
}

fn profile_roles(moto: &Moto, name: &str) -> Option<Vec<String>> {
    let iam = moto.iam();
    let out = block_on(async {
        iam.get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
    })
    .ok()?;
    Some(
        out.instance_profile()?
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
    )
}

#[test]
fn count_and_for_each_create_change_and_destroy_instances_in_aws() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.tf",
        &instances_tf(&["ann", "bo", "cy"], &["ml", "web"]),
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(iam_users(&moto), ["ann", "bo", "cy"]);
    assert_eq!(
        profile_roles(&moto, "profile-ml"),
        Some(vec!["team-ml".to_string()])
    );
    assert_eq!(
        profile_roles(&moto, "profile-web"),
        Some(vec!["team-web".to_string()])
    );
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    for addr in [
        "aws_iam_user.u[0]",
        "aws_iam_user.u[2]",
        "aws_iam_role.team[\"ml\"]",
        "aws_iam_instance_profile.team[\"web\"]",
    ] {
        assert!(listed.contains(addr), "{addr} in {listed}");
    }
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_iam_user.u[1]"]));
    assert!(shown.contains("\"bo\""), "{shown}");
    let clean = moto.run(&p, &["plan"]);
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));

    // One user fewer at the end, one team fewer: only those instances go.
    p.write("main.tf", &instances_tf(&["ann", "bo"], &["web"]));
    let plan = moto.run(&p, &["plan", "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_str(&stdout(&plan)).expect("json plan");
    let changes = json["resource_changes"].as_array().expect("changes");
    let deleted: Vec<(String, String)> = changes
        .iter()
        .filter(|c| c["change"]["actions"] == serde_json::json!(["delete"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action_reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [
            (
                "aws_iam_instance_profile.team[\"ml\"]".to_string(),
                "delete_because_each_key".to_string()
            ),
            (
                "aws_iam_role.team[\"ml\"]".to_string(),
                "delete_because_each_key".to_string()
            ),
            (
                "aws_iam_user.u[2]".to_string(),
                "delete_because_count_index".to_string()
            ),
        ]
    );
    let user2 = changes
        .iter()
        .find(|c| c["address"] == "aws_iam_user.u[2]")
        .expect("u[2]");
    assert_eq!(user2["index"], 2);
    let human = stdout(&moto.run(&p, &["plan"]));
    assert!(
        human.contains("# (because index [2] is out of range for count)"),
        "{human}"
    );
    assert!(
        human.contains("Plan: 0 to add, 0 to change, 3 to destroy."),
        "{human}"
    );

    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(iam_users(&moto), ["ann", "bo"]);
    assert_eq!(profile_roles(&moto, "profile-ml"), None);
    assert_eq!(
        profile_roles(&moto, "profile-web"),
        Some(vec!["team-web".to_string()])
    );
    let clean = moto.run(&p, &["plan"]);
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));

    // A new user planned and applied alone, by its instance address.
    p.write("main.tf", &instances_tf(&["ann", "bo", "dee"], &["web"]));
    let out = moto.run(
        &p,
        &["apply", "--auto-approve", "--target", "aws_iam_user.u[2]"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(iam_users(&moto), ["ann", "bo", "dee"]);
}

#[test]
fn moved_import_and_removed_blocks_rename_adopt_and_forget_without_recreating() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.tf",
        "resource \"aws_iam_user\" \"old\" {\n  name = \"mover\"\n}\n",
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let iam = moto.iam();
    // A role made by hand, for an import block to bring in.
    block_on(async {
        iam.create_role()
            .role_name("handmade")
            .assume_role_policy_document("{\"Version\":\"2012-10-17\",\"Statement\":[]}")
            .send()
            .await
    })
    .expect("create role by hand");

    p.write(
        "main.tf",
        r#"resource "aws_iam_user" "renamed" {
  name = "mover"
}

moved {
  from = aws_iam_user.old
  to   = aws_iam_user.renamed
}

resource "aws_iam_role" "adopted" {
  name               = "handmade"
  description        = "now managed"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}

import {
  to = aws_iam_role.adopted
  id = "handmade"
}
"#,
    );
    let plan = moto.run(&p, &["plan"]);
    let text = stdout(&plan);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        text.contains("# aws_iam_user.old has moved to aws_iam_user.renamed"),
        "{text}"
    );
    assert!(text.contains("# (imported from \"handmade\")"), "{text}");
    assert!(
        text.contains("Plan: 1 to import, 0 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&moto.run(&p, &["plan", "--json"]))).expect("json");
    let changes = json["resource_changes"].as_array().expect("changes");
    let moved = changes
        .iter()
        .find(|c| c["address"] == "aws_iam_user.renamed")
        .expect("moved");
    assert_eq!(moved["previous_address"], "aws_iam_user.old");
    let imported = changes
        .iter()
        .find(|c| c["address"] == "aws_iam_role.adopted")
        .expect("import");
    assert_eq!(imported["change"]["importing"]["id"], "handmade");

    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let writes = moto.writes();
    assert!(
        writes.iter().all(|w| !w.contains("CreateUser")
            && !w.contains("DeleteUser")
            && !w.contains("CreateRole")),
        "a move or an import recreates nothing: {writes:?}"
    );
    let role = block_on(async { iam.get_role().role_name("handmade").send().await })
        .expect("role")
        .role
        .expect("role");
    assert_eq!(role.description(), Some("now managed"));
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(
        listed.contains("aws_iam_user.renamed") && !listed.contains("aws_iam_user.old"),
        "{listed}"
    );
    assert!(listed.contains("aws_iam_role.adopted"), "{listed}");
    let clean = moto.run(&p, &["plan"]);
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));

    // Forget the user: it leaves the state and stays in IAM.
    p.write(
        "main.tf",
        r#"resource "aws_iam_role" "adopted" {
  name               = "handmade"
  description        = "now managed"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
}

removed {
  from = aws_iam_user.renamed

  lifecycle {
    destroy = false
  }
}
"#,
    );
    let plan = stdout(&moto.run(&p, &["plan"]));
    assert!(
        plan.contains("# aws_iam_user.renamed will no longer be managed by skyform"),
        "{plan}"
    );
    assert!(plan.contains("0 to destroy, 1 to forget."), "{plan}");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(iam_users(&moto), ["mover"]);
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(!listed.contains("aws_iam_user"), "{listed}");
    let clean = moto.run(&p, &["plan"]);
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));
}

#[test]
fn a_saved_plan_of_instances_applies_as_reviewed_and_is_refused_once_the_world_changed() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.tf", &instances_tf(&["ann", "bo"], &["ml"]))]);
    let plan_file = p.path().join("reviewed.plan");
    let plan_path = plan_file.to_string_lossy().to_string();
    let out = moto.run(&p, &["plan", "--out", &plan_path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&p, &["apply", &plan_path]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(iam_users(&moto), ["ann", "bo"]);

    // A plan that drops one instance, then someone deletes the other first: refused.
    p.write("main.tf", &instances_tf(&["ann"], &["ml"]));
    let out = moto.run(&p, &["plan", "--out", &plan_path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let iam = moto.iam();
    block_on(async { iam.delete_user().user_name("ann").send().await }).expect("delete by hand");
    let out = moto.run(&p, &["apply", &plan_path]);
    assert!(!out.status.success(), "a stale plan must be refused");
    assert!(
        stderr(&out).contains("the saved plan is stale"),
        "{}",
        stderr(&out)
    );
    assert_eq!(iam_users(&moto), ["bo"], "nothing was applied");
}
