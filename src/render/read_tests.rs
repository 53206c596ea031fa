//! The human and JSON plans of a data source read during apply, in Terraform's words.

use crate::engine::fake::FakeProvider;
use crate::engine::plan::PlanOptions;
use crate::engine::tests::{plan_only, workspace};
use crate::state::MemoryState;

#[test]
fn the_human_plan_shows_a_read_during_apply_and_does_not_count_it() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(crate::engine::read_tests::SRC, &[]);
    let plan = plan_only(
        &p,
        &ws,
        &mut MemoryState::default(),
        &PlanOptions::default(),
    );
    let text = crate::render::human::render_plan(
        &plan,
        ws.config.schemas,
        crate::render::human::Style { color: false },
    );
    for line in [
        "  <= read (data resources)\n",
        "  # data.aws_iam_policy_document.launch will be read during apply\n  # (config refers to values not yet known)\n <= data \"aws_iam_policy_document\" \"launch\" {\n",
        "      + json ",
        "Plan: 2 to add, 0 to change, 0 to destroy.",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(text.contains("(known after apply)"));
}

#[test]
fn the_json_plan_lists_the_read_with_terraforms_action_and_reason() {
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let ws = workspace(crate::engine::read_tests::SRC, &[]);
    let plan = plan_only(
        &p,
        &ws,
        &mut MemoryState::default(),
        &PlanOptions::default(),
    );
    let json = crate::render::json::plan_json(&plan, ws.config.schemas);
    let changes = json["resource_changes"]
        .as_array()
        .expect("resource_changes");
    let read = changes
        .iter()
        .find(|c| c["address"] == "data.aws_iam_policy_document.launch")
        .expect("the read");
    assert_eq!(read["mode"], "data");
    assert_eq!(read["change"]["actions"], serde_json::json!(["read"]));
    assert_eq!(read["action_reason"], "read_because_config_unknown");
    assert_eq!(read["change"]["after_unknown"]["json"], true);
}
