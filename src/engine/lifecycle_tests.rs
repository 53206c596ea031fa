//! Unit tests of `lifecycle` blocks against the in-memory fake cloud with the AWS provider's
//! schemas: every argument, through plan and apply (and the plan's renderings where a field
//! changes them).

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::{plan, Plan, PlanError, PlanOptions};
use crate::engine::tests::{apply_plan, plan_and_apply, plan_only, run, workspace};
use crate::lang::address::Address;
use crate::state::{MemoryState, StateStore as _};

type Fake = FakeProvider<crate::aws::AwsProvider>;

fn role(lifecycle: &str) -> String {
    format!(
        r#"
variable "name" {{ default = "r1" }}
variable "tag" {{ default = "a" }}
variable "seconds" {{ default = 3600 }}
resource "aws_iam_role" "r" {{
  name                 = var.name
  assume_role_policy   = jsonencode({{ Statement = [] }})
  max_session_duration = var.seconds
  tags                 = {{ team = var.tag }}
  lifecycle {{
{lifecycle}
  }}
}}
"#
    )
}

fn action(plan: &Plan, addr: &str) -> Action {
    let addr: Address = addr.parse().expect("address");
    plan.changes
        .iter()
        .find(|c| c.addr == addr)
        .map_or(Action::NoOp, |c| c.action)
}

/// The messages (and notes) of a plan that must fail.
fn plan_errors(
    p: &Fake,
    src: &str,
    vars: &[&str],
    store: &mut MemoryState,
    destroy: bool,
) -> String {
    let ws = workspace(src, vars);
    let state = run(store.load()).expect("load");
    let opts = PlanOptions {
        destroy,
        ..PlanOptions::default()
    };
    match run(plan(p, &ws, state, &opts)) {
        Err(PlanError::Config(d)) => {
            d.0.iter()
                .map(|d| {
                    format!(
                        "{} [{}] {}",
                        d.message,
                        d.name.clone().unwrap_or_default(),
                        d.notes.join(" ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn state_attr(store: &MemoryState, addr: &str, attr: &str) -> serde_json::Value {
    let addr: Address = addr.parse().expect("address");
    store.0.resources[&addr].attrs[attr].clone()
}

#[test]
fn ignored_changes_are_not_planned_but_are_set_at_create_and_kept_by_other_updates() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("ignore_changes = [tags]");
    plan_and_apply(&p, &workspace(&src, &["tag=first"]), &mut store);
    assert_eq!(
        state_attr(&store, "aws_iam_role.r", "tags"),
        serde_json::json!({"team": "first"})
    );
    let changed_tag = plan_only(
        &p,
        &workspace(&src, &["tag=second"]),
        &mut store,
        &PlanOptions::default(),
    );
    assert!(
        !changed_tag.has_resource_changes(),
        "{:?}",
        changed_tag.changes
    );
    let ws = workspace(&src, &["tag=second", "seconds=7200"]);
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::Update);
    let changed: Vec<&str> = planned.changes[0]
        .changes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(changed, ["max_session_duration"]);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        state_attr(&store, "aws_iam_role.r", "max_session_duration"),
        7200
    );
    assert_eq!(
        state_attr(&store, "aws_iam_role.r", "tags"),
        serde_json::json!({"team": "first"}),
        "the update does not carry the ignored tags along"
    );
}

#[test]
fn ignore_changes_all_plans_no_update_at_all() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("ignore_changes = all");
    plan_and_apply(&p, &workspace(&src, &[]), &mut store);
    let planned = plan_only(
        &p,
        &workspace(&src, &["tag=b", "seconds=7200"]),
        &mut store,
        &PlanOptions::default(),
    );
    assert!(!planned.has_resource_changes());
}

#[test]
fn prevent_destroy_refuses_a_replacement_and_a_destroy_but_not_a_removed_block() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("prevent_destroy = true");
    plan_and_apply(&p, &workspace(&src, &[]), &mut store);
    let replace = plan_errors(&p, &src, &["name=r2"], &mut store, false);
    assert!(
        replace.contains("Instance cannot be destroyed [aws_iam_role.r] Resource aws_iam_role.r has lifecycle.prevent_destroy set"),
        "{replace}"
    );
    let destroy = plan_errors(&p, &src, &[], &mut store, true);
    assert!(
        destroy.contains("Instance cannot be destroyed"),
        "{destroy}"
    );
    // An update is not a destruction.
    let update = plan_only(
        &p,
        &workspace(&src, &["tag=b"]),
        &mut store,
        &PlanOptions::default(),
    );
    assert_eq!(action(&update, "aws_iam_role.r"), Action::Update);
    // With the block gone, so is the protection, as in Terraform.
    let gone = plan_only(
        &p,
        &workspace("variable \"x\" { default = 1 }\n", &[]),
        &mut store,
        &PlanOptions::default(),
    );
    assert_eq!(action(&gone, "aws_iam_role.r"), Action::Delete);
}

#[test]
fn create_before_destroy_creates_the_successor_first_and_shows_it_so() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("create_before_destroy = true");
    plan_and_apply(&p, &workspace(&src, &[]), &mut store);
    let ws = workspace(&src, &["name=r2"]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::Replace);
    assert!(planned.changes[0].create_before_destroy);
    let human = crate::render::human::render_plan(
        &planned,
        crate::aws::schemas::registry(),
        crate::render::human::Style { color: false },
    );
    assert!(
        human.contains("+/- resource \"aws_iam_role\" \"r\""),
        "{human}"
    );
    assert!(
        human.contains("+/- create replacement and then destroy"),
        "{human}"
    );
    assert!(!human.contains("-/+"), "{human}");
    let json = crate::render::json::plan_json(&planned, crate::aws::schemas::registry());
    assert_eq!(
        json["resource_changes"][0]["change"]["actions"],
        serde_json::json!(["create", "delete"])
    );
    let report = apply_plan(&p, &ws, &planned, &mut store);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.added, report.destroyed), (1, 1));
    let calls = p.cloud.borrow().calls.clone();
    let last = |c: &str| calls.iter().rposition(|x| x == c).expect(c);
    assert!(
        last("create aws_iam_role") < last("delete aws_iam_role"),
        "{calls:?}"
    );
    assert_eq!(state_attr(&store, "aws_iam_role.r", "name"), "r2");
    let names: Vec<String> = p
        .cloud
        .borrow()
        .objects
        .iter()
        .filter(|((t, _), _)| t == "aws_iam_role")
        .map(|(_, a)| a["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["r2"], "the old role is deleted, the new one kept");
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_resource_changes());
}

const TRIGGERED: &str = r#"
variable "seconds" { default = 3600 }
variable "desc" { default = "d" }
resource "aws_iam_role" "r" {
  name                 = "r"
  description          = var.desc
  assume_role_policy   = jsonencode({ Statement = [] })
  max_session_duration = var.seconds
}
resource "aws_iam_user" "whole" {
  name = "whole"
  lifecycle {
    replace_triggered_by = [aws_iam_role.r]
  }
}
resource "aws_iam_user" "attr" {
  name = "attr"
  lifecycle {
    replace_triggered_by = [aws_iam_role.r.description]
  }
}
"#;

#[test]
fn replace_triggered_by_replaces_on_a_change_of_the_resource_or_of_the_named_attribute() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(&p, &workspace(TRIGGERED, &[]), &mut store);
    let ws = workspace(TRIGGERED, &["seconds=7200"]);
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::Update);
    assert_eq!(action(&planned, "aws_iam_user.whole"), Action::Replace);
    assert_eq!(action(&planned, "aws_iam_user.attr"), Action::NoOp);
    let whole = planned
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "aws_iam_user.whole")
        .expect("whole");
    assert_eq!(
        whole
            .reason
            .as_ref()
            .map(crate::engine::plan::Reason::text)
            .as_deref(),
        Some("replace_triggered_by aws_iam_role.r")
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let planned = plan_only(
        &p,
        &workspace(TRIGGERED, &["seconds=7200", "desc=e"]),
        &mut store,
        &PlanOptions::default(),
    );
    assert_eq!(action(&planned, "aws_iam_user.attr"), Action::Replace);
    assert_eq!(action(&planned, "aws_iam_user.whole"), Action::Replace);
    // Nothing changed: nothing is triggered.
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!planned.has_resource_changes());
}

#[test]
fn a_false_precondition_stops_the_plan_with_its_message() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role(
        "precondition {\n condition = var.seconds >= 7200\n error_message = \"Sessions must last two hours, not ${var.seconds}s.\"\n}",
    );
    let errors = plan_errors(&p, &src, &[], &mut store, false);
    assert!(
        errors.contains("Resource precondition failed [aws_iam_role.r] Sessions must last two hours, not 3600s."),
        "{errors}"
    );
    let ok = plan_only(
        &p,
        &workspace(&src, &["seconds=7200"]),
        &mut store,
        &PlanOptions::default(),
    );
    assert_eq!(action(&ok, "aws_iam_role.r"), Action::Create);
}

#[test]
fn a_postcondition_is_checked_at_plan_when_known_and_after_apply_otherwise() {
    let p = Fake::default();
    let known = role(
        "postcondition {\n condition = self.max_session_duration <= 3600\n error_message = \"too long\"\n}",
    );
    let errors = plan_errors(
        &p,
        &known,
        &["seconds=7200"],
        &mut MemoryState::default(),
        false,
    );
    assert!(
        errors.contains("Resource postcondition failed [aws_iam_role.r] too long"),
        "{errors}"
    );

    // The ARN is known only once the role exists: the plan passes, the apply fails on it, the
    // role is recorded (it exists) and what reads it is not built.
    let src = role(
        "postcondition {\n condition = self.arn == \"nope\"\n error_message = \"unexpected ARN ${self.arn}\"\n}",
    ) + "resource \"aws_iam_instance_profile\" \"ip\" {\n  name = \"ip\"\n  role = aws_iam_role.r.name\n}\n";
    let mut store = MemoryState::default();
    let ws = workspace(&src, &[]);
    let (_, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0]
            .1
            .contains("Resource postcondition failed: unexpected ARN fake:aws_iam_role"),
        "{:?}",
        report.failures
    );
    assert!(store
        .0
        .resources
        .contains_key(&"aws_iam_role.r".parse::<Address>().expect("addr")));
    assert_eq!(
        report.skipped,
        ["aws_iam_instance_profile.ip"
            .parse::<Address>()
            .expect("addr")]
    );
}

#[test]
fn a_precondition_unknown_at_plan_is_checked_before_the_create_at_apply() {
    let p = Fake::default();
    let src = r#"
resource "aws_iam_user" "first" {
  name = "first"
}
resource "aws_iam_user" "second" {
  name = "second"
  lifecycle {
    precondition {
      condition     = aws_iam_user.first.arn == "nope"
      error_message = "first has ARN ${aws_iam_user.first.arn}"
    }
  }
}
"#;
    let mut store = MemoryState::default();
    let (_, report) = plan_and_apply(&p, &workspace(src, &[]), &mut store);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0]
            .1
            .contains("Resource precondition failed: first has ARN fake:aws_iam_user"),
        "{:?}",
        report.failures
    );
    let calls = p.cloud.borrow().calls.clone();
    assert_eq!(
        calls.iter().filter(|c| *c == "create aws_iam_user").count(),
        1,
        "{calls:?}"
    );
    assert!(!store
        .0
        .resources
        .contains_key(&"aws_iam_user.second".parse::<Address>().expect("addr")));
}

const CHECKED: &str = r#"
variable "seconds" { default = 3600 }
resource "aws_iam_role" "r" {
  name                 = "r"
  assume_role_policy   = jsonencode({ Statement = [] })
  max_session_duration = var.seconds
}
check "sessions" {
  assert {
    condition     = aws_iam_role.r.max_session_duration >= 7200
    error_message = "sessions of ${aws_iam_role.r.max_session_duration}s are too short"
  }
}
check "arn" {
  assert {
    condition     = aws_iam_role.r.arn == "nope"
    error_message = "the ARN is ${aws_iam_role.r.arn}"
  }
}
"#;

#[test]
fn a_failed_check_is_a_warning_at_plan_and_after_apply_and_stops_nothing() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(CHECKED, &[]);
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    let messages = |d: &crate::lang::diagnostic::Diagnostics| -> Vec<String> {
        assert!(!d.has_errors(), "{d:?}");
        d.0.iter()
            .map(|d| {
                format!(
                    "{} [{}] {}",
                    d.message,
                    d.name.clone().unwrap_or_default(),
                    d.notes.join(" ")
                )
            })
            .collect()
    };
    // At plan the ARN is unknown: that assertion waits for the apply.
    assert_eq!(
        messages(&planned.warnings),
        ["Check block assertion failed [check.sessions] sessions of 3600s are too short"]
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.added, 1);
    let after = messages(&report.warnings);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after[0].starts_with("Check block assertion failed [check.arn] the ARN is fake:"),
        "{after:?}"
    );
    let fixed = workspace(CHECKED, &["seconds=7200"]);
    let (planned, _) = plan_and_apply(&p, &fixed, &mut store);
    assert_eq!(
        messages(&planned.warnings).len(),
        1,
        "only the ARN check still fails"
    );
}

#[test]
fn a_change_made_outside_to_an_ignored_attribute_is_no_drift() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("ignore_changes = [tags]");
    let ws = workspace(&src, &[]);
    plan_and_apply(&p, &ws, &mut store);
    for attrs in p.cloud.borrow_mut().objects.values_mut() {
        attrs.insert(
            "tags".into(),
            serde_json::json!({"team": "changed outside"}),
        );
    }
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(planned.drift.is_empty(), "{:?}", planned.drift);
    assert!(!planned.has_resource_changes());
    // Without the lifecycle block the same change is drift, and planned back.
    let plain = workspace(&role(""), &[]);
    let planned = plan_only(&p, &plain, &mut store, &PlanOptions::default());
    assert_eq!(planned.drift.len(), 1);
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::Update);
}

const SCOPED: &str = r#"
check "identity" {
  data "aws_caller_identity" "me" {}
  assert {
    condition     = data.aws_caller_identity.me.account_id == "000000000000"
    error_message = "running in account ${data.aws_caller_identity.me.account_id}"
  }
}
resource "aws_iam_user" "u" {
  name = "u"
}
"#;

#[test]
fn a_checks_data_source_feeds_its_assertion_and_its_failure_is_only_a_warning() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    let ws = workspace(SCOPED, &[]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let notes: Vec<String> = planned
        .warnings
        .0
        .iter()
        .flat_map(|d| d.notes.clone())
        .collect();
    assert_eq!(notes, ["running in account 123456789012"]);

    p.cloud
        .borrow_mut()
        .fail
        .insert("read aws_caller_identity".into());
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert!(!planned.warnings.has_errors());
    let messages: Vec<&str> = planned
        .warnings
        .0
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("reading data.aws_caller_identity.me failed"),
        "{messages:?}"
    );
    assert_eq!(report.added, 1, "the plan went on and the user was made");
}

#[test]
fn create_before_destroy_of_a_unique_name_fails_at_the_cloud_and_keeps_the_old_object() {
    // The old object carries this state's tags, but it is in the state: it must not be
    // "adopted" as its own successor and then deleted.
    let p = Fake::default();
    let mut store = MemoryState::default();
    let src = role("create_before_destroy = true");
    let ws = workspace(&src, &[]);
    plan_and_apply(&p, &ws, &mut store);
    let opts = PlanOptions {
        replace: vec!["aws_iam_role.r".parse().expect("addr")],
        ..PlanOptions::default()
    };
    let planned = plan_only(&p, &ws, &mut store, &opts);
    assert!(planned.changes[0].create_before_destroy);
    let report = apply_plan(&p, &ws, &planned, &mut store);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0].1.contains("EntityAlreadyExists"),
        "{:?}",
        report.failures
    );
    assert_eq!(report.destroyed, 0);
    assert!(p
        .cloud
        .borrow()
        .objects
        .contains_key(&("aws_iam_role".to_string(), "r1".to_string())));
    assert!(store
        .0
        .resources
        .contains_key(&"aws_iam_role.r".parse::<Address>().expect("addr")));
}
