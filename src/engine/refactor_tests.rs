//! `moved`, `removed` and `import` blocks, and the implicit moves of adding or removing
//! `count`, through plan and apply against the in-memory cloud: a moved object is renamed in
//! the state and never recreated, a forgotten one stays in the cloud, an imported one is
//! recorded and brought to its configuration.

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::{plan, PlanError, PlanOptions};
use crate::engine::tests::{apply_plan, plan_and_apply, plan_only, run, workspace};
use crate::lang::address::Address;
use crate::state::MemoryState;

type Fake = FakeProvider<crate::aws::AwsProvider>;

fn addrs(store: &MemoryState) -> Vec<String> {
    store.0.resources.keys().map(ToString::to_string).collect()
}

#[test]
fn a_moved_block_renames_the_object_in_the_state_without_recreating_it() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(
        &p,
        &workspace(
            "resource \"aws_iam_user\" \"old\" { name = \"alice\" }\n",
            &[],
        ),
        &mut store,
    );
    let id = store.0.resources[&Address::managed("aws_iam_user", "old")]
        .id
        .clone();
    let writes = p.writes();
    let ws = workspace(
        "resource \"aws_iam_user\" \"new\" { name = \"alice\" }\nmoved {\n  from = aws_iam_user.old\n  to   = aws_iam_user.new\n}\n",
        &[],
    );
    let moved = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(moved.counts(), (0, 0, 0));
    assert!(moved.has_changes(), "a move is a change to apply");
    let c = &moved.changes[0];
    assert_eq!(
        (c.addr.to_string(), c.action),
        ("aws_iam_user.new".into(), Action::NoOp)
    );
    assert_eq!(
        c.previous_address,
        Some(Address::managed("aws_iam_user", "old"))
    );
    assert_eq!(
        addrs(&store),
        ["aws_iam_user.old"],
        "planning must not write"
    );
    apply_plan(&p, &ws, &moved, &mut store);
    assert_eq!(addrs(&store), ["aws_iam_user.new"]);
    assert_eq!(
        store.0.resources[&Address::managed("aws_iam_user", "new")].id,
        id
    );
    assert_eq!(p.writes(), writes, "no AWS call for a move");
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
}

#[test]
fn adding_count_moves_the_object_to_index_zero_and_a_move_turns_count_into_for_each() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(
        &p,
        &workspace("resource \"aws_iam_user\" \"u\" { name = \"u-0\" }\n", &[]),
        &mut store,
    );
    let counted = workspace(
        "resource \"aws_iam_user\" \"u\" {\n  count = 2\n  name  = \"u-${count.index}\"\n}\n",
        &[],
    );
    let next = plan_only(&p, &counted, &mut store, &PlanOptions::default());
    let listed: Vec<String> = next
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.action, c.addr))
        .collect();
    assert_eq!(
        listed,
        ["NoOp aws_iam_user.u[0]", "Create aws_iam_user.u[1]"]
    );
    apply_plan(&p, &counted, &next, &mut store);
    assert_eq!(addrs(&store), ["aws_iam_user.u[0]", "aws_iam_user.u[1]"]);

    let keyed = workspace(
        r#"
resource "aws_iam_user" "u" {
  for_each = { a = "u-0", b = "u-1" }
  name     = each.value
}
moved {
  from = aws_iam_user.u[0]
  to   = aws_iam_user.u["a"]
}
moved {
  from = aws_iam_user.u[1]
  to   = aws_iam_user.u["b"]
}
"#,
        &[],
    );
    let writes = p.writes();
    let next = plan_only(&p, &keyed, &mut store, &PlanOptions::default());
    assert_eq!(next.counts(), (0, 0, 0), "{:?}", next.changes);
    apply_plan(&p, &keyed, &next, &mut store);
    assert_eq!(
        addrs(&store),
        ["aws_iam_user.u[\"a\"]", "aws_iam_user.u[\"b\"]"]
    );
    assert_eq!(p.writes(), writes);
}

/// Terraform's documented way to add `for_each` to a resource: `from` names the whole resource,
/// meaning its keyless instance, and `to` one instance.
#[test]
fn a_move_from_a_whole_resource_to_one_instance_keys_the_keyless_object() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(
        &p,
        &workspace(
            "resource \"aws_iam_user\" \"a\" { name = \"small\" }\n",
            &[],
        ),
        &mut store,
    );
    let writes = p.writes();
    let keyed = workspace(
        r#"
resource "aws_iam_user" "a" {
  for_each = toset(["small", "large"])
  name     = each.key
}
moved {
  from = aws_iam_user.a
  to   = aws_iam_user.a["small"]
}
"#,
        &[],
    );
    let next = plan_only(&p, &keyed, &mut store, &PlanOptions::default());
    let listed: Vec<String> = next
        .changes
        .iter()
        .map(|c| {
            format!(
                "{:?} {} {:?}",
                c.action,
                c.addr,
                c.previous_address.as_ref().map(ToString::to_string)
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "Create aws_iam_user.a[\"large\"] None",
            "NoOp aws_iam_user.a[\"small\"] Some(\"aws_iam_user.a\")"
        ]
    );
    apply_plan(&p, &keyed, &next, &mut store);
    assert_eq!(
        addrs(&store),
        ["aws_iam_user.a[\"large\"]", "aws_iam_user.a[\"small\"]"]
    );
    assert_eq!(p.writes(), writes + 1, "only the new user is created");

    // And back: the instance moves to the whole resource when for_each is taken away.
    let single = workspace(
        "resource \"aws_iam_user\" \"a\" { name = \"small\" }\nresource \"aws_iam_user\" \"b\" { name = \"large\" }\nmoved {\n  from = aws_iam_user.a[\"small\"]\n  to   = aws_iam_user.a\n}\nmoved {\n  from = aws_iam_user.a[\"large\"]\n  to   = aws_iam_user.b\n}\n",
        &[],
    );
    let next = plan_only(&p, &single, &mut store, &PlanOptions::default());
    assert_eq!(next.counts(), (0, 0, 0), "{:?}", next.changes);
    apply_plan(&p, &single, &next, &mut store);
    assert_eq!(addrs(&store), ["aws_iam_user.a", "aws_iam_user.b"]);
}

#[test]
fn a_move_from_a_block_still_declared_is_terraforms_error() {
    let p = Fake::default();
    let ws = workspace(
        "resource \"aws_iam_user\" \"a\" { name = \"a\" }\nresource \"aws_iam_user\" \"b\" { name = \"b\" }\nmoved {\n  from = aws_iam_user.a\n  to   = aws_iam_user.b\n}\n",
        &[],
    );
    let err = run(plan(
        &p,
        &ws,
        crate::state::State::default(),
        &PlanOptions::default(),
    ))
    .unwrap_err();
    let PlanError::Config(d) = err else {
        panic!("{err:?}")
    };
    assert!(
        d.0[0].message.starts_with("moved object still exists"),
        "{d:?}"
    );
}

#[test]
fn a_removed_block_forgets_the_object_and_leaves_it_in_the_cloud() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(
        &p,
        &workspace(
            "resource \"aws_iam_user\" \"u\" {\n  count = 2\n  name  = \"u-${count.index}\"\n}\n",
            &[],
        ),
        &mut store,
    );
    let ws = workspace(
        "removed {\n  from = aws_iam_user.u\n  lifecycle {\n    destroy = false\n  }\n}\n",
        &[],
    );
    let writes = p.writes();
    let next = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(next.counts(), (0, 0, 0));
    assert_eq!(next.forget.len(), 2);
    apply_plan(&p, &ws, &next, &mut store);
    assert!(store.0.resources.is_empty());
    assert_eq!(p.writes(), writes, "forgetting deletes nothing");
    assert_eq!(p.cloud.borrow().objects.len(), 2);
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
}

#[test]
fn an_import_block_records_the_object_and_plans_only_its_difference() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    // Made by someone else: the state does not know it.
    plan_and_apply(
        &p,
        &workspace(
            "resource \"aws_iam_user\" \"x\" {\n  name = \"bob\"\n  path = \"/a/\"\n}\n",
            &[],
        ),
        &mut store,
    );
    let id = store.0.resources[&Address::managed("aws_iam_user", "x")]
        .id
        .clone();
    let mut store = MemoryState::default();
    let ws = workspace(
        &format!(
            "variable \"ids\" {{ default = {{ bob = \"{id}\" }} }}\nresource \"aws_iam_user\" \"u\" {{\n  for_each = var.ids\n  name     = each.key\n  path     = \"/b/\"\n}}\nimport {{\n  for_each = var.ids\n  to       = aws_iam_user.u[each.key]\n  id       = each.value\n}}\n"
        ),
        &[],
    );
    let next = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let c = &next.changes[0];
    assert_eq!(c.addr.to_string(), "aws_iam_user.u[\"bob\"]");
    assert_eq!(c.importing.as_deref(), Some(id.as_str()));
    assert_eq!(c.action, Action::Update, "{:?}", c.changes);
    assert!(store.0.resources.is_empty(), "planning must not write");
    apply_plan(&p, &ws, &next, &mut store);
    let r = &store.0.resources[&"aws_iam_user.u[\"bob\"]".parse::<Address>().unwrap()];
    assert_eq!(r.id, id);
    assert_eq!(r.attrs["path"], serde_json::json!("/b/"));
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
}

#[test]
fn terraforms_documented_move_of_a_single_instance_to_a_for_each_key_is_followed() {
    let p = Fake::default();
    let mut store = MemoryState::default();
    plan_and_apply(
        &p,
        &workspace(
            "resource \"aws_iam_user\" \"a\" { name = \"small\" }\n",
            &[],
        ),
        &mut store,
    );
    let ws = workspace(
        "resource \"aws_iam_user\" \"a\" {\n  for_each = toset([\"small\"])\n  name     = each.key\n}\nmoved {\n  from = aws_iam_user.a\n  to   = aws_iam_user.a[\"small\"]\n}\n",
        &[],
    );
    let writes = p.writes();
    let next = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(next.counts(), (0, 0, 0), "{:?}", next.changes);
    apply_plan(&p, &ws, &next, &mut store);
    assert_eq!(addrs(&store), ["aws_iam_user.a[\"small\"]"]);
    assert_eq!(p.writes(), writes);
}
