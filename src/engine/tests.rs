//! Unit tests of the engine (plan and apply) against the in-memory fake cloud with the AWS
//! provider's schemas and rules (`FakeProvider<AwsProvider>`): no network, no files, exact
//! control over the cloud's behaviour.

use std::collections::BTreeMap;

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::graph::Graph;
use crate::engine::plan::{plan, DriftKind, Plan, PlanOptions, Workspace};
use crate::lang::address::Address;
use crate::lang::variables::{resolve, VarInputs};
use crate::state::{MemoryState, StateStore as _};

pub(crate) fn workspace(src: &str, vars: &[&str]) -> Workspace {
    workspace_of(crate::aws::schemas::registry(), src, vars)
}

/// A workspace of `src` loaded against `schemas`, which must be valid.
pub(crate) fn workspace_of(
    schemas: &'static crate::lang::schema::Registry,
    src: &str,
    vars: &[&str],
) -> Workspace {
    let (config, diags) = crate::lang::config::load_str(&[("main.sky.hcl", src)], schemas);
    assert!(diags.is_empty(), "{diags:?}");
    let check = crate::lang::validate::check(&config);
    assert!(check.is_empty(), "{check:?}");
    let graph = Graph::build(&config);
    let inputs = VarInputs {
        cli: vars.iter().map(ToString::to_string).collect(),
        ..VarInputs::default()
    };
    let (vars, d) = resolve(&config, &inputs, true);
    assert!(!d.has_errors(), "{d:?}");
    let order = graph.order().expect("acyclic");
    Workspace {
        config,
        graph,
        order,
        vars,
        files_read: crate::lang::functions::FilesRead::default(),
    }
}

/// Applies `plan` four operations at a time, as the command line does by default.
pub(crate) fn apply_plan<R: crate::engine::provider::Rules>(
    p: &FakeProvider<R>,
    ws: &Workspace,
    plan: &Plan,
    store: &mut MemoryState,
) -> crate::engine::apply::ApplyReport {
    run(crate::engine::apply::apply(
        p,
        ws,
        plan,
        store,
        &crate::engine::apply::ApplyOptions::with_parallelism(4),
        &mut |_| {},
    ))
    .expect("apply")
}

pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub(crate) fn plan_and_apply(
    p: &FakeProvider<crate::aws::AwsProvider>,
    ws: &Workspace,
    store: &mut MemoryState,
) -> (Plan, crate::engine::apply::ApplyReport) {
    let state = run(store.load()).expect("load");
    let planned = run(plan(p, ws, state, &PlanOptions::default())).expect("plan");
    let report = apply_plan(p, ws, &planned, store);
    (planned, report)
}

/// A plan against what `store` holds, with no apply.
pub(crate) fn plan_only<R: crate::engine::provider::Rules>(
    p: &FakeProvider<R>,
    ws: &Workspace,
    store: &mut MemoryState,
    opts: &PlanOptions,
) -> Plan {
    let state = run(store.load()).expect("load");
    run(plan(p, ws, state, opts)).expect("plan")
}

fn action(plan: &Plan, addr: &str) -> Action {
    let addr: Address = addr.parse().expect("address");
    plan.changes
        .iter()
        .find(|c| c.addr == addr)
        .map_or(Action::NoOp, |c| c.action)
}

const SRC: &str = r#"
variable "role" { default = "r1" }
resource "aws_iam_role" "r" {
  name               = var.role
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_policy" "p" {
  name   = "p"
  policy = jsonencode({ Statement = [] })
}
resource "aws_iam_role_policy_attachment" "a" {
  role       = aws_iam_role.r.name
  policy_arn = aws_iam_policy.p.arn
}
resource "aws_iam_instance_profile" "ip" {
  name = "ip"
  role = aws_iam_role.r.name
}
output "arn" { value = aws_iam_role.r.arn }
"#;

#[test]
fn a_first_apply_creates_in_dependency_order_and_the_next_plan_is_empty() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let (first, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(first.counts(), (4, 0, 0));
    assert_eq!(report.added, 4);
    let calls = p.cloud.borrow().calls.clone();
    let pos = |c: &str| calls.iter().position(|x| x == c).expect(c);
    assert!(pos("create aws_iam_role") < pos("create aws_iam_role_policy_attachment"));
    assert!(pos("create aws_iam_policy") < pos("create aws_iam_role_policy_attachment"));
    // The attachment was created with the policy's real ARN, known only after apply.
    let att = &store.0.resources[&"aws_iam_role_policy_attachment.a"
        .parse::<Address>()
        .expect("addr")];
    assert!(att.attrs["policy_arn"]
        .as_str()
        .expect("arn")
        .starts_with("fake:aws_iam_policy:arn"));
    assert_eq!(
        store.0.outputs["arn"].value,
        store.0.resources[&Address::managed("aws_iam_role", "r")].attrs["arn"]
    );

    let writes = p.writes();
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_changes(), "{:?}", again.changes);
    assert_eq!(p.writes(), writes, "planning must not write");
}

#[test]
fn replacing_a_resource_replaces_what_reads_it_through_a_force_new_attribute() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    plan_and_apply(&p, &workspace(SRC, &[]), &mut store);
    let ws = workspace(SRC, &["role=r2"]);
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::Replace);
    assert_eq!(
        action(&planned, "aws_iam_role_policy_attachment.a"),
        Action::Replace,
        "role is force_new on the attachment"
    );
    assert_eq!(
        action(&planned, "aws_iam_instance_profile.ip"),
        Action::Update,
        "role is updatable on the profile"
    );
    assert_eq!(action(&planned, "aws_iam_policy.p"), Action::NoOp);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let calls = p.cloud.borrow().calls.clone();
    let last = |c: &str| calls.iter().rposition(|x| x == c).expect(c);
    assert!(
        last("delete aws_iam_role_policy_attachment") < last("delete aws_iam_role"),
        "dependents are deleted first"
    );
    assert!(last("delete aws_iam_role") < last("create aws_iam_role"));
    assert!(last("create aws_iam_role") < last("create aws_iam_role_policy_attachment"));
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_resource_changes());
}

#[test]
fn a_failure_skips_dependents_and_keeps_independent_work() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    p.cloud
        .borrow_mut()
        .fail
        .insert("create aws_iam_policy".into());
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let (_, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        report.skipped,
        vec!["aws_iam_role_policy_attachment.a"
            .parse::<Address>()
            .expect("addr")]
    );
    let in_state: Vec<String> = store.0.resources.keys().map(ToString::to_string).collect();
    assert_eq!(in_state, ["aws_iam_instance_profile.ip", "aws_iam_role.r"]);
}

#[test]
fn an_object_deleted_outside_skyform_is_drift_and_is_planned_for_creation() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    plan_and_apply(&p, &ws, &mut store);
    p.cloud
        .borrow_mut()
        .objects
        .remove(&("aws_iam_policy".to_string(), "p".to_string()));
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(matches!(planned.drift.as_slice(), [d] if matches!(d.kind, DriftKind::Deleted)));
    assert_eq!(action(&planned, "aws_iam_policy.p"), Action::Create);
}

#[test]
fn removing_a_block_plans_its_deletion_and_destroy_plans_everything() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    plan_and_apply(&p, &workspace(SRC, &[]), &mut store);
    let smaller = SRC
        .split("resource \"aws_iam_instance_profile\"")
        .next()
        .unwrap_or_default()
        .to_string()
        + "output \"arn\" { value = aws_iam_role.r.arn }\n";
    let ws = workspace(&smaller, &[]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(
        action(&planned, "aws_iam_instance_profile.ip"),
        Action::Delete
    );
    assert_eq!(planned.counts(), (0, 0, 1));
    let destroy = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            destroy: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(destroy.counts(), (0, 0, 4));
    let report = apply_plan(&p, &ws, &destroy, &mut store);
    assert_eq!(report.destroyed, 4);
    assert!(store.0.resources.is_empty());
    assert_eq!(store.0.outputs, BTreeMap::new());
}

#[test]
fn an_attribute_no_longer_set_is_cleared_by_the_update_and_the_plan_converges() {
    // Found by the fuzzer: the fake kept tags that the configuration had dropped, so the plan
    // asked for the same update forever.
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    let tagged =
        "resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n  tags = { Team = \"a\" }\n}\n";
    plan_and_apply(&p, &workspace(tagged, &[]), &mut store);
    let ws = workspace(
        "resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n}\n",
        &[],
    );
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(action(&planned, "aws_iam_user.u"), Action::Update);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let cloud = p.cloud.borrow();
    let user = &cloud.objects[&("aws_iam_user".to_string(), "u".to_string())];
    assert!(!user.contains_key("tags"), "{user:?}");
    assert_eq!(user["path"], "/", "a default is still set");
    drop(cloud);
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_changes(), "{:?}", again.changes);
}

#[test]
fn the_owner_check_refuses_only_another_account() {
    use crate::engine::apply::{check_owner, OwnerCheck};
    use crate::engine::provider::Identity;
    use crate::state::{Owner, State};
    let me = Identity {
        tenant: "111111111111".into(),
        principal: "arn:aws:iam::111111111111:user/a".into(),
    };
    let owned_by = |tenant: &str, principal: &str| State {
        owner: Some(Owner {
            tenant: tenant.into(),
            principal: principal.into(),
        }),
        ..State::default()
    };
    assert_eq!(check_owner(&State::default(), &me), OwnerCheck::Unowned);
    assert_eq!(
        check_owner(&owned_by("111111111111", &me.principal), &me),
        OwnerCheck::Same
    );
    assert!(matches!(
        check_owner(
            &owned_by("111111111111", "arn:aws:iam::111111111111:user/b"),
            &me
        ),
        OwnerCheck::SameAccount(_)
    ));
    assert!(matches!(
        check_owner(
            &owned_by("222222222222", "arn:aws:iam::222222222222:user/a"),
            &me
        ),
        OwnerCheck::OtherAccount(_)
    ));
}

const REVIEW_SRC: &str = r#"
variable "role" { default = "r1" }
variable "team" { default = "a" }
variable "with_profile" { default = true }
resource "aws_iam_role" "r" {
  name               = var.role
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_policy" "p" {
  name        = "p"
  description = "d"
  policy      = jsonencode({ Statement = [] })
  tags        = { team = var.team }
}
resource "aws_iam_role_policy_attachment" "a" {
  role       = aws_iam_role.r.name
  policy_arn = aws_iam_policy.p.arn
}
resource "aws_iam_user" "u" {
  name = "u"
}
"#;

/// A plan with every kind of change and some drift: the replaced role (and its attachment),
/// an updated policy, a deleted user, a created access key, and an out-of-band edit.
fn review_plan() -> Plan {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    plan_and_apply(&p, &workspace(REVIEW_SRC, &[]), &mut store);
    p.cloud
        .borrow_mut()
        .objects
        .get_mut(&("aws_iam_policy".to_string(), "p".to_string()))
        .map(|a| a.insert("tags".into(), serde_json::json!({"team": "edited by hand"})));
    let changed = REVIEW_SRC.replace(
        "resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n}",
        "resource \"aws_iam_access_key\" \"k\" {\n  user = \"u2\"\n}",
    );
    let ws = workspace(&changed, &["role=r2", "team=b"]);
    plan_only(&p, &ws, &mut store, &PlanOptions::default())
}

#[test]
fn the_markdown_plan_calls_out_destruction_first_and_folds_the_full_plan() {
    let plan = review_plan();
    assert!(!plan.drift.is_empty(), "the out-of-band edit is drift");
    insta::assert_snapshot!(crate::render::markdown::plan_markdown(
        &plan,
        crate::aws::schemas::registry(),
        crate::render::markdown::COMMENT_LIMIT
    ));
}

/// A plan of `n` new roles, against an empty cloud.
fn roles_plan(n: usize) -> Plan {
    let src = format!(
        r#"
resource "aws_iam_role" "r" {{
  count              = {n}
  name               = "role-${{count.index}}"
  description        = "one of many roles, with a description long enough to matter"
  assume_role_policy = jsonencode({{ Version = "2012-10-17", Statement = [] }})
}}
"#
    );
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    plan_only(
        &p,
        &workspace(&src, &[]),
        &mut MemoryState::default(),
        &PlanOptions::default(),
    )
}

#[test]
fn the_markdown_plan_of_a_thousand_roles_fits_a_comment_and_says_what_was_cut() {
    let plan = roles_plan(1000);
    let limit = crate::render::markdown::COMMENT_LIMIT;
    let md = crate::render::markdown::plan_markdown(&plan, crate::aws::schemas::registry(), limit);
    assert!(
        md.chars().count() <= limit,
        "{} characters",
        md.chars().count()
    );
    assert!(md.starts_with("### skyform plan: 1000 to add, 0 to change, 0 to destroy"));
    // The table is whole; the full plan is cut, and the note says where the rest is.
    assert_eq!(md.matches("| create |").count(), 1000);
    assert!(md.contains("<details><summary>Full plan (cut)</summary>"));
    assert!(md.contains("The full plan was cut to fit a comment"));
    assert!(md.contains("skyform show PLANFILE --json"));
    let whole =
        crate::render::markdown::plan_markdown(&plan, crate::aws::schemas::registry(), usize::MAX);
    assert!(
        whole.chars().count() > limit && whole.contains("<details><summary>Full plan</summary>")
    );
}

#[test]
fn a_markdown_plan_whose_table_is_over_the_limit_cuts_the_table_too_and_says_so() {
    let plan = roles_plan(300);
    let limit = 5_000;
    let md = crate::render::markdown::plan_markdown(&plan, crate::aws::schemas::registry(), limit);
    assert!(
        md.chars().count() <= limit,
        "{} characters",
        md.chars().count()
    );
    assert!(md.starts_with("### skyform plan: 300 to add"));
    assert!(!md.contains("<details>"));
    let rows = md.matches("| create |").count();
    assert!(rows > 0 && rows < 300, "{rows} rows");
    assert!(md.contains(&format!("{rows} of 300 rows shown")), "{md}");
}

#[test]
fn the_json_plan_uses_terraforms_actions_and_redacts_sensitive_values() {
    let plan = review_plan();
    let json = crate::render::json::plan_json(&plan, crate::aws::schemas::registry());
    let actions = |addr: &str| {
        json["resource_changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["address"] == addr)
            .map(|c| c["change"]["actions"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        actions("aws_iam_role.r"),
        serde_json::json!(["delete", "create"])
    );
    assert_eq!(actions("aws_iam_policy.p"), serde_json::json!(["update"]));
    assert_eq!(actions("aws_iam_user.u"), serde_json::json!(["delete"]));
    assert_eq!(
        actions("aws_iam_access_key.k"),
        serde_json::json!(["create"])
    );
    let key = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "aws_iam_access_key.k")
        .expect("key");
    assert_eq!(key["change"]["after_unknown"]["secret"], true);
    assert_eq!(key["change"]["after_sensitive"]["secret"], true);
    assert_eq!(key["type"], "aws_iam_access_key");
    assert_eq!(key["name"], "k");
    assert_eq!(json["format_version"], "1.2");
    assert_eq!(json["resource_drift"][0]["address"], "aws_iam_policy.p");
}

#[test]
fn a_target_plans_only_it_and_what_it_depends_on() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let opts = PlanOptions {
        targets: vec!["aws_iam_role_policy_attachment.a".parse().expect("addr")],
        ..PlanOptions::default()
    };
    let planned = run(plan(
        &p,
        &ws,
        run(MemoryState::default().load()).expect("load"),
        &opts,
    ))
    .expect("plan");
    let planned_addrs: Vec<String> = planned.changes.iter().map(|c| c.addr.to_string()).collect();
    assert_eq!(
        planned_addrs,
        [
            "aws_iam_policy.p",
            "aws_iam_role.r",
            "aws_iam_role_policy_attachment.a"
        ]
    );
    assert!(
        planned.outputs.is_empty(),
        "a partial plan leaves outputs alone"
    );
    let unknown = PlanOptions {
        targets: vec!["aws_iam_role.nope".parse().expect("addr")],
        ..PlanOptions::default()
    };
    assert!(run(plan(
        &p,
        &ws,
        run(MemoryState::default().load()).expect("load"),
        &unknown
    ))
    .is_err());
}

#[test]
fn replace_forces_a_replacement_of_an_unchanged_resource() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    plan_and_apply(&p, &ws, &mut store);
    let opts = PlanOptions {
        replace: vec!["aws_iam_policy.p".parse().expect("addr")],
        ..PlanOptions::default()
    };
    let planned = plan_only(&p, &ws, &mut store, &opts);
    assert_eq!(action(&planned, "aws_iam_policy.p"), Action::Replace);
    // The attachment reads the policy's ARN through a force_new attribute.
    assert_eq!(
        action(&planned, "aws_iam_role_policy_attachment.a"),
        Action::Replace
    );
    assert_eq!(action(&planned, "aws_iam_role.r"), Action::NoOp);
}

#[test]
fn a_targeted_destroy_takes_what_depends_on_the_target_and_nothing_else() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    plan_and_apply(&p, &ws, &mut store);
    let opts = PlanOptions {
        destroy: true,
        targets: vec!["aws_iam_role.r".parse().expect("addr")],
        ..PlanOptions::default()
    };
    let planned = plan_only(&p, &ws, &mut store, &opts);
    let deleted: Vec<String> = planned
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.addr.to_string())
        .collect();
    assert_eq!(
        deleted,
        [
            "aws_iam_instance_profile.ip",
            "aws_iam_role.r",
            "aws_iam_role_policy_attachment.a"
        ]
    );
    let report = apply_plan(&p, &ws, &planned, &mut store);
    assert_eq!(report.destroyed, 3);
    assert!(store
        .0
        .resources
        .contains_key(&Address::managed("aws_iam_policy", "p")));
    assert!(
        store.0.outputs.contains_key("arn"),
        "outputs are left alone"
    );
}

#[test]
fn an_open_intent_is_reconciled_by_adopting_what_the_lost_create_made() {
    use crate::engine::provider::{OpContext, Provider as _};
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let lineage = run(store.load()).expect("load").lineage;
    let addr = Address::managed("aws_iam_role", "r");
    // What the apply would have sent: the block evaluated, defaults included.
    let attrs = crate::engine::plan::evaluate_static::<FakeProvider<crate::aws::AwsProvider>>(&ws)
        .0[&addr]
        .to_attrs();
    // The create happened on the cloud, and the process died before recording it.
    run(store.open_intent(&crate::state::Intent {
        addr: addr.clone(),
        op: "create".into(),
        token: lineage.clone(),
        attrs: attrs.clone(),
        evidence: crate::state::Attrs::new(),
        provider: String::new(),
    }))
    .expect("intent");
    run(p.create(
        "aws_iam_role",
        &attrs,
        &OpContext {
            addr: addr.clone(),
            lineage,
            timeout: None,
            provider: String::new(),
        },
    ))
    .expect("create");
    let before = store.0.clone();
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(
        store.0, before,
        "planning writes nothing, not even the recovery"
    );
    assert_eq!(planned.recovery.adopted.len(), 1);
    assert_eq!(planned.recovery.adopted[0].addr, addr);
    assert_eq!(
        action(&planned, "aws_iam_role.r"),
        Action::NoOp,
        "adopted, not created again"
    );
    assert!(planned.has_effect(), "the recovery is something to apply");
    let creates = |p: &FakeProvider<crate::aws::AwsProvider>| {
        p.cloud
            .borrow()
            .calls
            .iter()
            .filter(|c| *c == "create aws_iam_role")
            .count()
    };
    let roles_created = creates(&p);
    apply_plan(&p, &ws, &planned, &mut store);
    let state = run(store.load()).expect("load");
    assert!(state.intents.is_empty(), "the intent is closed");
    assert_eq!(state.resources[&addr].id, "r1");
    assert_eq!(creates(&p), roles_created, "the role is not created again");
}

/// Applies a plan of `src` against `store`, returning the report.
pub(crate) fn apply_src(
    p: &FakeProvider<crate::aws::AwsProvider>,
    src: &str,
    store: &mut MemoryState,
) -> crate::engine::apply::ApplyReport {
    let ws = workspace(src, &[]);
    let planned = plan_only(p, &ws, store, &PlanOptions::default());
    apply_plan(p, &ws, &planned, store)
}

const ONE_USER: &str = "resource \"aws_iam_user\" \"u\" {\n  name = \"u1\"\n}\n";

#[test]
fn a_create_that_aws_answers_with_an_error_closes_its_intent() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    p.cloud
        .borrow_mut()
        .fail
        .insert("create aws_iam_user".into());
    let mut store = MemoryState::default();
    let report = apply_src(&p, ONE_USER, &mut store);
    assert_eq!(report.failures.len(), 1);
    assert!(
        store.0.intents.is_empty(),
        "an answered error made nothing: no intent stays open"
    );
}

#[test]
fn a_create_whose_answer_is_lost_keeps_its_intent_and_the_next_plan_adopts_the_object() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    p.cloud
        .borrow_mut()
        .lose_answer
        .insert("create aws_iam_user".into());
    let mut store = MemoryState::default();
    let report = apply_src(&p, ONE_USER, &mut store);
    assert_eq!(report.failures.len(), 1);
    let addr = Address::managed("aws_iam_user", "u");
    assert!(
        store.0.intents.contains_key(&addr),
        "the outcome is unknown"
    );
    p.cloud.borrow_mut().lose_answer.clear();
    let writes = p.writes();
    let report = apply_src(&p, ONE_USER, &mut store);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(p.writes(), writes, "the lost create's object was adopted");
    assert_eq!(store.0.resources[&addr].id, "u1");
    assert!(store.0.intents.is_empty());
}

#[test]
fn a_create_conflict_with_an_object_this_state_made_adopts_it_and_goes_on() {
    use crate::engine::provider::{OpContext, Provider as _};
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    let lineage = run(store.load()).expect("load").lineage;
    // An earlier, interrupted run made the user, and its intent was lost with it.
    let addr = Address::managed("aws_iam_user", "u");
    let ws = workspace(ONE_USER, &[]);
    let attrs = crate::engine::plan::evaluate_static::<FakeProvider<crate::aws::AwsProvider>>(&ws)
        .0[&addr]
        .to_attrs();
    run(p.create(
        "aws_iam_user",
        &attrs,
        &OpContext {
            addr: addr.clone(),
            lineage,
            timeout: None,
            provider: String::new(),
        },
    ))
    .expect("create");
    let mut notes = Vec::new();
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(action(&planned, "aws_iam_user.u"), Action::Create);
    let report = run(crate::engine::apply::apply(
        &p,
        &ws,
        &planned,
        &mut store,
        &crate::engine::apply::ApplyOptions::with_parallelism(4),
        &mut |e| {
            if let crate::engine::apply::Event::Note { message, .. } = e {
                notes.push(message);
            }
        },
    ))
    .expect("apply");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(store.0.resources[&addr].id, "u1");
    assert!(notes.iter().any(|n| n.contains("adopted u1")), "{notes:?}");
}

#[test]
fn each_write_is_given_its_blocks_timeouts_value_for_that_operation() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    let src = |name: &str| {
        format!(
            "resource \"aws_iam_user\" \"u\" {{\n  name = \"{name}\"\n  tags = {{ v = \"{name}\" }}\n  \
             timeouts {{\n    create = \"90s\"\n    delete = \"1m30s\"\n  }}\n}}\n\
             resource \"aws_iam_user\" \"plain\" {{\n  name = \"plain-{name}\"\n}}\n"
        )
    };
    plan_and_apply(&p, &workspace(&src("a"), &[]), &mut store);
    // A new name replaces both: a delete and a create each.
    plan_and_apply(&p, &workspace(&src("b"), &[]), &mut store);
    let given = p.cloud.borrow().timeouts.clone();
    let secs = std::time::Duration::from_secs;
    for (op, want) in [
        ("create aws_iam_user.u", Some(secs(90))),
        ("delete aws_iam_user.u", Some(secs(90))),
        ("create aws_iam_user.plain", None),
        ("delete aws_iam_user.plain", None),
    ] {
        let seen: Vec<_> = given
            .iter()
            .filter(|(k, _)| k == op)
            .map(|(_, t)| *t)
            .collect();
        assert!(
            !seen.is_empty() && seen.iter().all(|t| *t == want),
            "{op}: {given:?}"
        );
    }
}
