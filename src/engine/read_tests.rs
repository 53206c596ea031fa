//! Unit tests of data sources read during apply: a data source whose configuration reads
//! values known only after apply (or whose `depends_on` has changes pending) is planned as a
//! read, read by the apply once what it waits for is made, and its result reaches what reads
//! it. Against the fake cloud, whose reads echo their arguments in `json`.

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::{plan, Plan, PlanError, PlanOptions, Reason};
use crate::engine::tests::{apply_plan, plan_and_apply, plan_only, run, workspace};
use crate::lang::address::Address;
use crate::lang::value::Value;
use crate::state::{MemoryState, StateStore as _};

/// A policy document naming a role's ARN, known only once the role is made, and a policy
/// tagged with the document (the fake's reads are not IAM documents).
pub(crate) const SRC: &str = r#"
resource "aws_iam_role" "node" {
  name               = "node"
  assume_role_policy = jsonencode({ Statement = [] })
}
data "aws_iam_policy_document" "launch" {
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.node.arn]
  }
}
resource "aws_iam_policy" "launch" {
  name   = "launch"
  policy = jsonencode({ Statement = [] })
  tags   = { doc = data.aws_iam_policy_document.launch.json }
}
"#;

fn addr(s: &str) -> Address {
    s.parse().expect("address")
}

fn change<'p>(plan: &'p Plan, a: &str) -> &'p crate::engine::plan::ResourceChange {
    plan.changes
        .iter()
        .find(|c| c.addr == addr(a))
        .expect("a planned change")
}

fn calls(p: &FakeProvider<crate::aws::AwsProvider>) -> Vec<String> {
    p.cloud.borrow().calls.clone()
}

/// The `doc` tag the policy was made with.
fn policy_doc(store: &MemoryState) -> String {
    store.0.resources[&addr("aws_iam_policy.launch")].attrs["tags"]["doc"]
        .as_str()
        .expect("a doc tag")
        .to_string()
}

#[test]
fn a_data_source_reading_unknown_values_is_planned_as_a_read_and_nothing_reads_it_yet() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let planned = plan_only(
        &p,
        &ws,
        &mut MemoryState::default(),
        &PlanOptions::default(),
    );
    let read = change(&planned, "data.aws_iam_policy_document.launch");
    assert_eq!(read.action, Action::Read);
    assert_eq!(read.reason, Some(Reason::ReadConfigUnknown));
    assert_eq!(read.after["json"], Value::Unknown);
    assert!(planned.data.is_empty(), "{:?}", planned.data);
    // What reads the document waits for it; the summary does not count the read.
    let policy = change(&planned, "aws_iam_policy.launch");
    assert!(policy.after["tags"].contains_unknown());
    assert_eq!(planned.counts(), (2, 0, 0));
    assert!(
        !calls(&p).iter().any(|c| c.starts_with("read")),
        "{:?}",
        calls(&p)
    );
}

#[test]
fn apply_reads_the_data_source_after_its_dependency_and_the_next_plan_is_empty() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let (_, report) = plan_and_apply(&p, &ws, &mut store);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.added, 2);
    let calls = calls(&p);
    let pos = |c: &str| calls.iter().position(|x| x == c).expect(c);
    assert!(pos("create aws_iam_role") < pos("read aws_iam_policy_document"));
    assert!(pos("read aws_iam_policy_document") < pos("create aws_iam_policy"));
    let role_arn = store.0.resources[&addr("aws_iam_role.node")].attrs["arn"]
        .as_str()
        .expect("arn")
        .to_string();
    assert!(
        policy_doc(&store).contains(&role_arn),
        "{}",
        policy_doc(&store)
    );
    // Data sources leave nothing in the state.
    assert!(store
        .0
        .resources
        .keys()
        .all(|a| a.mode == crate::lang::address::Mode::Managed));

    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_changes(), "{:?}", again.changes);
    assert!(again
        .data
        .contains_key(&addr("data.aws_iam_policy_document.launch")));
}

#[test]
fn a_saved_plan_carries_the_read_to_its_apply() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let saved = crate::engine::plan_file::save(&ws, &planned, &PlanOptions::default());
    let bytes = crate::engine::plan_file::encode(&saved);
    let saved = crate::engine::plan_file::decode("plan", &bytes).expect("decode");
    assert_eq!(
        change(&saved.plan, "data.aws_iam_policy_document.launch").action,
        Action::Read
    );
    let fresh = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let report = apply_plan(
        &p,
        &ws,
        &crate::engine::plan_file::rejoin(saved.plan, fresh),
        &mut store,
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let role_arn = store.0.resources[&addr("aws_iam_role.node")].attrs["arn"]
        .as_str()
        .expect("arn")
        .to_string();
    assert!(policy_doc(&store).contains(&role_arn));
}

#[test]
fn a_read_failing_during_apply_is_reported_and_what_was_made_stays_recorded() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    p.cloud
        .borrow_mut()
        .fail
        .insert("read aws_iam_policy_document".into());
    let ws = workspace(SRC, &[]);
    let mut store = MemoryState::default();
    let (_, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!(
        report.failures[0].0,
        addr("data.aws_iam_policy_document.launch")
    );
    assert!(report.failures[0].1.contains("failed"));
    assert_eq!(report.skipped, vec![addr("aws_iam_policy.launch")]);
    assert!(store.0.resources.contains_key(&addr("aws_iam_role.node")));
    assert!(!store
        .0
        .resources
        .contains_key(&addr("aws_iam_policy.launch")));
    assert!(store.0.intents.is_empty(), "{:?}", store.0.intents);
}

#[test]
fn a_data_source_whose_depends_on_has_changes_pending_is_read_during_apply() {
    let src = r#"
resource "aws_iam_role" "node" {
  name               = "node"
  assume_role_policy = jsonencode({ Statement = [] })
}
data "aws_caller_identity" "me" {
  depends_on = [aws_iam_role.node]
}
resource "aws_iam_policy" "p" {
  name   = "p"
  policy = jsonencode({ Statement = [] })
  tags   = { account = data.aws_caller_identity.me.account_id }
}
"#;
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(src, &[]);
    let mut store = MemoryState::default();
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    let read = change(&planned, "data.aws_caller_identity.me");
    assert_eq!(read.action, Action::Read);
    assert_eq!(read.reason, Some(Reason::ReadDependencyPending));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        store.0.resources[&addr("aws_iam_policy.p")].attrs["tags"]["account"],
        "123456789012"
    );
    // Once the role is made, nothing is pending: the data source is read while planning.
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_changes(), "{:?}", again.changes);
}

#[test]
fn count_over_a_data_source_read_during_apply_is_the_unknown_count_error() {
    let src = format!(
        "{SRC}\nresource \"aws_iam_user\" \"u\" {{\n  count = length(data.aws_iam_policy_document.launch.json)\n  name  = \"u${{count.index}}\"\n}}\n"
    );
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(&src, &[]);
    let state = run(MemoryState::default().load()).expect("load");
    let Err(PlanError::Config(d)) = run(plan(&p, &ws, state, &PlanOptions::default())) else {
        panic!("an unknown count must be refused");
    };
    assert!(
        d.0.iter()
            .any(|d| d.message.contains("cannot be determined until apply")),
        "{:?}",
        d.0
    );
}

#[test]
fn a_postcondition_of_a_deferred_read_is_checked_when_it_is_read() {
    let src = SRC.replace(
        "    resources = [aws_iam_role.node.arn]\n  }\n",
        "    resources = [aws_iam_role.node.arn]\n  }\n  lifecycle {\n    postcondition {\n      condition     = length(self.json) < 10\n      error_message = \"the document is too long\"\n    }\n  }\n",
    );
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(&src, &[]);
    let mut store = MemoryState::default();
    let (planned, report) = plan_and_apply(&p, &ws, &mut store);
    assert_eq!(
        change(&planned, "data.aws_iam_policy_document.launch").action,
        Action::Read
    );
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0].1.contains("the document is too long"),
        "{:?}",
        report.failures
    );
    assert_eq!(report.skipped, vec![addr("aws_iam_policy.launch")]);
}
