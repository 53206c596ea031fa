//! checkov, the policy scanner, on skyform's JSON plans of the examples: it must recognise
//! them as Terraform plans, read every planned resource and run its checks. checkov comes
//! from `$CHECKOV` or `.venv/bin/checkov` (scripts/test installs it there, pinned); a missing
//! checkov fails the test, unless AWS tests are skipped.

use crate::support::{example_dir, stderr, stdout, Moto, Project};
use serde_json::Value as Json;

fn checkov() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("CHECKOV") {
        return path.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/checkov");
    assert!(
        venv.exists(),
        "checkov not found: set CHECKOV or run scripts/test, which installs checkov==3.3.30 into .venv"
    );
    venv
}

/// Plans the example as JSON and runs checkov on it; returns (creates, checkov's summary).
fn scanned(moto: &Moto, example: &str) -> (usize, Json) {
    let text = std::fs::read_to_string(example_dir(example).join("main.sky.hcl")).expect("example");
    let p = Project::new(&[("main.sky.hcl", &text)]);
    let out = moto.run(&p, &["plan", "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let plan: Json = serde_json::from_str(&stdout(&out)).expect("JSON plan");
    let creates = plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .filter(|r| r["change"]["actions"] == serde_json::json!(["create"]))
        .count();
    let file = p.path().join("plan.json");
    std::fs::write(&file, stdout(&out)).expect("write plan");
    let scan = std::process::Command::new(checkov())
        .arg("-f")
        .arg(&file)
        .args([
            "--framework",
            "terraform_plan",
            "--skip-download",
            "-o",
            "json",
        ])
        .output()
        .expect("run checkov");
    // checkov exits 1 when a check fails, as some do on the examples; its report is stdout.
    let report: Json = serde_json::from_slice(&scan.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's report is not JSON ({e}):\n{}{}",
            stdout(&scan),
            stderr(&scan)
        )
    });
    (creates, report["summary"].clone())
}

fn assert_read_fully(example: &str) {
    let Some(moto) = Moto::start() else { return };
    let (creates, summary) = scanned(&moto, example);
    assert!(creates > 0, "the example plans creates");
    assert_eq!(
        summary["resource_count"].as_u64(),
        Some(creates as u64),
        "checkov reads every planned resource: {summary}"
    );
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    let checks = summary["passed"].as_u64().unwrap_or(0) + summary["failed"].as_u64().unwrap_or(0);
    assert!(checks > 0, "checkov runs its checks: {summary}");
}

#[test]
fn checkov_reads_every_resource_of_the_vpc_examples_plan_and_checks_it() {
    assert_read_fully("skypilot-vpc");
}

#[test]
fn checkov_reads_every_resource_of_the_iam_examples_plan_and_checks_it() {
    assert_read_fully("skypilot-iam");
}
