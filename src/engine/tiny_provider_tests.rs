//! The engine with a provider of its own: two made-up resource types, their schemas and
//! rules, planned and applied through the same engine as AWS, against the in-memory fake
//! cloud. No AWS type is in sight here (`architecture_tests` checks this file like any engine
//! file), which is the proof that the engine knows no AWS.

use std::sync::LazyLock;

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::{plan, PlanError, PlanOptions};
use crate::engine::provider::{Planned, Problem, Rules};
use crate::engine::tests::{apply_plan, plan_only, run, workspace_of};
use crate::lang::address::Address;
use crate::lang::schema::Registry;
use crate::lang::value::Value;
use crate::state::MemoryState;

/// A provider of shelves and the boxes on them.
struct Tiny;

static SCHEMAS: LazyLock<Registry> = LazyLock::new(|| {
    Registry::parse(
        &[
            (
                "tiny_shelf",
                r#"{"type": "tiny_shelf", "description": "A shelf.", "attributes": {
                    "name": {"type": "string", "mode": "required", "force_new": true, "description": "Its name."},
                    "label": {"type": "string", "mode": "optional", "format": "upper", "description": "Capitals only."},
                    "id": {"type": "string", "mode": "computed", "description": "Its id."}
                }}"#,
            ),
            (
                "tiny_box",
                r#"{"type": "tiny_box", "description": "A box on a shelf.", "attributes": {
                    "name": {"type": "string", "mode": "required", "force_new": true, "description": "Its name."},
                    "shelf": {"type": "string", "mode": "required", "description": "The shelf's id."},
                    "slot": {"type": "number", "mode": "required", "description": "Where on the shelf."},
                    "manifest": {"type": "json", "kind": "tiny_manifest", "mode": "optional", "description": "What it holds."},
                    "note": {"type": "string", "mode": "optional", "force_new_if": "fragile", "conflicts_with": ["sticker"], "description": "Written on it; a new box when fragile."},
                    "sticker": {"type": "string", "mode": "optional", "conflicts_with": ["note"], "description": "Stuck on it, instead of a note."},
                    "fragile": {"type": "bool", "mode": "optional", "default": false, "description": "Whether a new note means a new box."},
                    "id": {"type": "string", "mode": "computed", "description": "Its id."}
                }}"#,
            ),
        ],
        &[],
    )
});

impl Rules for Tiny {
    fn schemas() -> &'static Registry {
        &SCHEMAS
    }

    fn check_format(format: &str, value: &str) -> Result<(), String> {
        match format {
            "upper" if value != value.to_uppercase() => {
                Err(format!("{value:?} must be in capitals"))
            }
            _ => Ok(()),
        }
    }

    /// A manifest is a list of items, in any order.
    fn same_document(kind: &str, a: &str, b: &str) -> Option<bool> {
        let items = |t: &str| -> Option<Vec<String>> {
            let mut v: Vec<String> = serde_json::from_str(t).ok()?;
            v.sort();
            Some(v)
        };
        (kind == "tiny_manifest").then(|| items(a) == items(b))
    }

    /// Two boxes on one shelf may not share a slot.
    fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
        let mut taken: Vec<(String, String)> = Vec::new();
        let mut problems = Vec::new();
        for p in planned.iter().filter(|p| p.addr.type_name == "tiny_box") {
            let shelf = p.refs.get("shelf").and_then(|r| r.iter().next());
            let slot = p.attrs.get("slot").map(ToString::to_string);
            let (Some(shelf), Some(slot)) = (shelf, slot) else {
                continue;
            };
            let key = (shelf.to_string(), slot);
            if taken.contains(&key) {
                problems.push(Problem {
                    addr: p.addr.clone(),
                    attr: Some("slot".into()),
                    message: format!("{}: slot {} of {} is taken", p.addr, key.1, key.0),
                });
            }
            taken.push(key);
        }
        problems
    }
}

const SHELF: &str = r#"
resource "tiny_shelf" "s" {
  name  = "top"
  label = "TOP"
}

resource "tiny_box" "a" {
  name     = "a"
  shelf    = tiny_shelf.s.id
  slot     = 1
  manifest = jsonencode(["socks", "hats"])
}
"#;

#[test]
fn a_provider_of_its_own_plans_applies_and_converges_through_the_engine() {
    let p = FakeProvider::<Tiny>::default();
    let ws = workspace_of(Tiny::schemas(), SHELF, &[]);
    let mut store = MemoryState::default();
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let actions: Vec<Action> = planned.changes.iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Create, Action::Create]);
    let report = apply_plan(&p, &ws, &planned, &mut store);
    assert_eq!(report.added, 2, "{:?}", report.failures);
    let shelf = &store.0.resources[&Address::managed("tiny_shelf", "s")];
    let box_a = &store.0.resources[&Address::managed("tiny_box", "a")];
    assert_eq!(
        box_a.attrs["shelf"], shelf.attrs["id"],
        "the box reads its shelf's id"
    );

    // The provider's document rule: the same items in another order are no change.
    let reordered = SHELF.replace(r#"["socks", "hats"]"#, r#"["hats", "socks"]"#);
    let ws = workspace_of(Tiny::schemas(), &reordered, &[]);
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert!(!again.has_changes(), "{:?}", again.changes);
    let changed = SHELF.replace(r#"["socks", "hats"]"#, r#"["socks"]"#);
    let ws = workspace_of(Tiny::schemas(), &changed, &[]);
    let again = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let box_change = again
        .changes
        .iter()
        .find(|c| c.addr.type_name == "tiny_box")
        .expect("box");
    assert_eq!(box_change.action, Action::Update);
    assert_eq!(
        box_change.after.get("manifest"),
        Some(&Value::string(r#"["socks"]"#))
    );
}

#[test]
fn the_providers_format_and_cross_resource_rules_are_its_own() {
    let p = FakeProvider::<Tiny>::default();
    let bad = format!(
        "{}\nresource \"tiny_box\" \"b\" {{\n  name  = \"b\"\n  shelf = tiny_shelf.s.id\n  slot  = 1\n}}\n",
        SHELF.replace("\"TOP\"", "\"top\"")
    );
    let ws = workspace_of(Tiny::schemas(), &bad, &[]);
    let err = run(plan(
        &p,
        &ws,
        MemoryState::default().0,
        &PlanOptions::default(),
    ))
    .expect_err("two rules are broken");
    let PlanError::Config(diags) = err else {
        panic!("a configuration error, not {err}");
    };
    let text = diags.render(&ws.config.sources, false);
    assert!(text.contains("\"top\" must be in capitals"), "{text}");
    assert!(
        text.contains("tiny_box.b: slot 1 of tiny_shelf.s is taken"),
        "{text}"
    );
    assert_eq!(p.writes(), 0, "nothing was written");
}

/// One box with a note, and whether it is fragile.
fn noted(note: &str, fragile: bool) -> String {
    format!(
        "resource \"tiny_box\" \"n\" {{\n  name    = \"n\"\n  shelf   = \"s\"\n  slot    = 1\n  note    = \"{note}\"\n  fragile = {fragile}\n}}\n"
    )
}

#[test]
fn a_force_new_if_attribute_changes_in_place_unless_its_condition_holds() {
    let p = FakeProvider::<Tiny>::default();
    let mut store = MemoryState::default();
    let ws = workspace_of(Tiny::schemas(), &noted("hello", false), &[]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    apply_plan(&p, &ws, &planned, &mut store);

    let ws = workspace_of(Tiny::schemas(), &noted("bye", false), &[]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(planned.changes[0].action, Action::Update, "{planned:?}");
    apply_plan(&p, &ws, &planned, &mut store);
    let calls = p.cloud.borrow().calls.clone();
    assert!(
        !calls.iter().any(|c| c.starts_with("delete")),
        "an in-place change deletes nothing: {calls:?}"
    );
    let addr = Address::managed("tiny_box", "n");
    assert_eq!(store.0.resources[&addr].attrs["note"], "bye");

    // The condition and the change in one plan: the condition's new value decides.
    let ws = workspace_of(Tiny::schemas(), &noted("again", true), &[]);
    let planned = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(planned.changes[0].action, Action::Replace, "{planned:?}");
    let human = crate::render::human::render_plan(
        &planned,
        Tiny::schemas(),
        crate::render::human::Style { color: false },
    );
    let note_line = human
        .lines()
        .find(|l| l.contains("note"))
        .unwrap_or_default();
    assert!(note_line.contains("# forces replacement"), "{human}");
    let fragile_line = human
        .lines()
        .find(|l| l.contains("fragile"))
        .unwrap_or_default();
    assert!(!fragile_line.contains("# forces replacement"), "{human}");
    apply_plan(&p, &ws, &planned, &mut store);
    let calls = p.cloud.borrow().calls.clone();
    assert!(
        calls.iter().any(|c| c == "delete tiny_box"),
        "the box was replaced: {calls:?}"
    );
    assert_eq!(store.0.resources[&addr].attrs["note"], "again");
}

#[test]
fn conflicting_attributes_are_refused_at_the_later_one_naming_both() {
    let p = FakeProvider::<Tiny>::default();
    let src = noted("hello", false).replace("  slot", "  sticker = \"red\"\n  slot");
    let ws = workspace_of(Tiny::schemas(), &src, &[]);
    let diags = crate::engine::plan::check_values::<FakeProvider<Tiny>>(&ws);
    let text = diags.render(&ws.config.sources, false);
    assert_eq!(diags.errors(), 1, "reported once: {text}");
    assert!(
        text.contains("tiny_box.n.note conflicts with sticker"),
        "{text}"
    );
    assert!(text.contains("main.sky.hcl:6:3"), "at the note: {text}");
    let err = run(plan(
        &p,
        &ws,
        MemoryState::default().0,
        &PlanOptions::default(),
    ))
    .expect_err("the plan is refused");
    assert!(matches!(err, PlanError::Config(_)), "{err}");

    // Null is not set: Terraform's rule.
    let src = noted("hello", false).replace("  slot", "  sticker = null\n  slot");
    let ws = workspace_of(Tiny::schemas(), &src, &[]);
    let diags = crate::engine::plan::check_values::<FakeProvider<Tiny>>(&ws);
    assert!(!diags.has_errors());
}
