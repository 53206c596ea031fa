//! `count` and `for_each` through plan and apply against the in-memory cloud: instance
//! addresses, what a smaller count or a removed key destroys, targeting and replacing one
//! instance, references to a whole repeated block, and Terraform's error for an unknown count.

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::{plan, Plan, PlanOptions};
use crate::engine::tests::{plan_and_apply, plan_only, run, workspace};
use crate::lang::address::Address;
use crate::state::{MemoryState, StateStore as _};

type Fake = FakeProvider<crate::aws::AwsProvider>;

fn users(count: u32) -> String {
    format!(
        r#"
variable "n" {{ default = {count} }}
resource "aws_iam_user" "u" {{
  count = var.n
  name  = "user-${{count.index}}"
}}
resource "aws_iam_role" "r" {{
  count              = length(aws_iam_user.u)
  name               = "role-${{count.index}}"
  assume_role_policy = jsonencode({{ Statement = [] }})
  description        = aws_iam_user.u[count.index].arn
}}
locals {{ names = aws_iam_user.u[*].name }}
output "names" {{ value = local.names }}
output "first_role" {{ value = length(aws_iam_role.r) > 0 ? aws_iam_role.r[0].name : null }}
"#
    )
}

fn changes(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| format!("{:?} {}", c.action, c.addr))
        .collect()
}

fn user_names(p: &Fake) -> Vec<String> {
    let cloud = p.cloud.borrow();
    let mut names: Vec<String> = cloud
        .objects
        .iter()
        .filter(|((t, _), _)| t == "aws_iam_user")
        .filter_map(|(_, a)| a.get("name").and_then(|n| n.as_str()).map(String::from))
        .collect();
    names.sort();
    names
}

#[test]
fn count_creates_one_object_per_index_and_a_lower_count_destroys_the_highest() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let (first, report) = plan_and_apply(&p, &workspace(&users(3), &[]), &mut store);
    assert_eq!(first.counts(), (6, 0, 0), "{:?}", changes(&first));
    assert_eq!(report.added, 6);
    assert_eq!(user_names(&p), ["user-0", "user-1", "user-2"]);
    assert_eq!(
        store.0.outputs["names"].value,
        serde_json::json!(["user-0", "user-1", "user-2"])
    );
    assert_eq!(
        store.0.outputs["first_role"].value,
        serde_json::json!("role-0")
    );
    // Each role read its own user's ARN, known only after apply.
    let role1 = &store.0.resources[&"aws_iam_role.r[1]".parse::<Address>().unwrap()];
    let user1 = &store.0.resources[&"aws_iam_user.u[1]".parse::<Address>().unwrap()];
    assert_eq!(role1.attrs["description"], user1.attrs["arn"]);

    let ws = workspace(&users(3), &[]);
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());

    let ws = workspace(&users(1), &[]);
    let smaller = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(
        changes(&smaller),
        [
            "Delete aws_iam_role.r[1]",
            "Delete aws_iam_role.r[2]",
            "Delete aws_iam_user.u[1]",
            "Delete aws_iam_user.u[2]",
        ]
    );
    let gone = smaller
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "aws_iam_user.u[2]")
        .unwrap();
    assert_eq!(
        gone.reason
            .as_ref()
            .map(crate::engine::plan::Reason::text)
            .as_deref(),
        Some("index [2] is out of range for count")
    );
    let report = crate::engine::tests::apply_plan(&p, &ws, &smaller, &mut store);
    assert_eq!(report.destroyed, 4);
    assert_eq!(user_names(&p), ["user-0"]);
    assert_eq!(
        store.0.outputs["names"].value,
        serde_json::json!(["user-0"])
    );
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
}

const PROFILES: &str = r#"
variable "teams" {
  type    = map(string)
  default = { ml = "Machine learning", web = "Web" }
}
resource "aws_iam_role" "team" {
  for_each           = var.teams
  name               = "team-${each.key}"
  description        = each.value
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_instance_profile" "team" {
  for_each = aws_iam_role.team
  name     = "profile-${each.key}"
  role     = each.value.name
}
output "roles" { value = { for k, r in aws_iam_role.team : k => r.name } }
"#;

#[test]
fn for_each_keys_instances_by_the_map_and_removing_a_key_destroys_only_its_instances() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(PROFILES, &[]);
    let (first, _) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(
        changes(&first),
        [
            "Create aws_iam_instance_profile.team[\"ml\"]",
            "Create aws_iam_instance_profile.team[\"web\"]",
            "Create aws_iam_role.team[\"ml\"]",
            "Create aws_iam_role.team[\"web\"]",
        ]
    );
    let profile = &store.0.resources[&"aws_iam_instance_profile.team[\"web\"]"
        .parse::<Address>()
        .unwrap()];
    assert_eq!(profile.attrs["role"], serde_json::json!("team-web"));
    assert_eq!(
        store.0.outputs["roles"].value,
        serde_json::json!({"ml": "team-ml", "web": "team-web"})
    );
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());

    let ws = workspace(PROFILES, &["teams={ web = \"Web team\" }"]);
    let next = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(
        changes(&next),
        [
            "Delete aws_iam_instance_profile.team[\"ml\"]",
            "Delete aws_iam_role.team[\"ml\"]",
            "Update aws_iam_role.team[\"web\"]",
        ]
    );
    let gone = next
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "aws_iam_role.team[\"ml\"]")
        .unwrap();
    assert_eq!(
        gone.reason
            .as_ref()
            .map(crate::engine::plan::Reason::text)
            .as_deref(),
        Some("key [\"ml\"] is not in for_each map")
    );
    crate::engine::tests::apply_plan(&p, &ws, &next, &mut store);
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
    assert_eq!(store.0.resources.len(), 2);
}

#[test]
fn one_instance_can_be_targeted_or_replaced_alone() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(&users(3), &[]);
    let targeted = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            targets: vec!["aws_iam_role.r[1]".parse().unwrap()],
            ..PlanOptions::default()
        },
    );
    // The role at index 1 reads the whole user block (its count), so every user is planned.
    assert_eq!(
        changes(&targeted),
        [
            "Create aws_iam_role.r[1]",
            "Create aws_iam_user.u[0]",
            "Create aws_iam_user.u[1]",
            "Create aws_iam_user.u[2]",
        ]
    );
    plan_and_apply(&p, &ws, &mut store);
    let replaced = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            replace: vec!["aws_iam_user.u[2]".parse().unwrap()],
            ..PlanOptions::default()
        },
    );
    // Only the role that reads that user follows it.
    assert_eq!(
        changes(&replaced),
        ["Update aws_iam_role.r[2]", "Replace aws_iam_user.u[2]"]
    );
}

#[test]
fn a_count_known_only_after_apply_is_terraforms_error_with_its_advice() {
    let p = Fake::default();
    let ws = workspace(
        r#"
resource "aws_iam_role" "r" {
  name               = "r"
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_user" "u" {
  count = length(aws_iam_role.r.unique_id) > 3 ? 1 : 0
  name  = "u"
}
"#,
        &[],
    );
    let err = run(plan(
        &p,
        &ws,
        crate::state::State::default(),
        &PlanOptions::default(),
    ))
    .expect_err("unknown count");
    let crate::engine::plan::PlanError::Config(diags) = err else {
        panic!("{err:?}");
    };
    assert!(
        diags.0[0]
            .message
            .contains("cannot predict how many instances"),
        "{diags:?}"
    );
    assert!(diags.0[0].message.contains("--target"));
    // As advised: apply the role first, then the count is known.
    let mut store = MemoryState::default();
    let targeted = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            targets: vec![Address::managed("aws_iam_role", "r")],
            ..PlanOptions::default()
        },
    );
    crate::engine::tests::apply_plan(&p, &ws, &targeted, &mut store);
    let state = run(store.load()).unwrap();
    let whole = run(plan(&p, &ws, state, &PlanOptions::default())).expect("count now known");
    assert_eq!(changes(&whole), ["Create aws_iam_user.u[0]"]);
}

#[test]
fn replacing_one_instance_cascades_to_the_instance_that_reads_it_through_each_value() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(PROFILES, &[]);
    plan_and_apply(&p, &ws, &mut store);
    let replaced = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            replace: vec!["aws_iam_role.team[\"ml\"]".parse().unwrap()],
            ..PlanOptions::default()
        },
    );
    // The profile keeps the role's name, yet must take the new role: it is replaced
    // (`role` forces a new profile), and only the one of that key.
    let listed = changes(&replaced);
    assert!(
        listed.contains(&"Replace aws_iam_role.team[\"ml\"]".to_string()),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|c| c.ends_with("aws_iam_instance_profile.team[\"ml\"]")),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|c| c.contains("web")), "{listed:?}");
}

#[test]
fn lost_creates_of_instances_are_each_adopted_by_the_next_apply() {
    let p = Fake::default();
    p.cloud
        .borrow_mut()
        .lose_answer
        .insert("create aws_iam_user".into());
    let src = "resource \"aws_iam_user\" \"u\" {\n  for_each = toset([\"a\", \"b\"])\n  name     = \"user-${each.key}\"\n}\n";
    let mut store = MemoryState::default();
    let report = crate::engine::tests::apply_src(&p, src, &mut store);
    assert_eq!(report.failures.len(), 2);
    assert_eq!(store.0.intents.len(), 2, "each outcome is unknown");
    p.cloud.borrow_mut().lose_answer.clear();
    let writes = p.writes();
    let report = crate::engine::tests::apply_src(&p, src, &mut store);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        p.writes(),
        writes,
        "both objects were adopted, none made again"
    );
    for key in ["a", "b"] {
        let addr: Address = format!("aws_iam_user.u[\"{key}\"]").parse().unwrap();
        assert_eq!(store.0.resources[&addr].id, format!("user-{key}"));
    }
    assert!(store.0.intents.is_empty());
}

#[test]
fn data_sources_take_count_and_are_read_per_instance() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(
        r#"
data "aws_caller_identity" "me" {
  count = 2
}
resource "aws_iam_user" "u" {
  name = "from-${data.aws_caller_identity.me[1].account_id}-${length(data.aws_caller_identity.me)}"
}
"#,
        &[],
    );
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let read: Vec<String> = planned.data.keys().map(ToString::to_string).collect();
    assert_eq!(
        read,
        [
            "data.aws_caller_identity.me[0]",
            "data.aws_caller_identity.me[1]"
        ]
    );
    let user = &planned.changes[0];
    let name = user.after["name"].to_string();
    assert!(
        name.starts_with("\"from-") && name.ends_with("-2\""),
        "{name}"
    );
}
