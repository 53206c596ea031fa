//! The plans printed for `examples/`, as snapshots: human, Markdown and JSON, each against a
//! fresh moto. They pin skyform's output byte for byte, so that a refactoring that means to
//! change nothing visible is proven to change nothing. Ids that moto makes up are redacted.

use crate::support::{example_dir, stderr, stdout, Moto, Project};

/// Replaces the random part of AWS ids (`vpc-0a1b...`) with `X`s, keeping their prefix.
fn redact(text: &str) -> String {
    const PREFIXES: [&str; 6] = ["vpc-", "subnet-", "sg-", "igw-", "rtb-", "i-"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for p in PREFIXES {
            let at_word_start = out
                .chars()
                .last()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
            if at_word_start && rest.starts_with(p) {
                let hex = rest[p.len()..]
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .count();
                if hex >= 8 {
                    out.push_str(p);
                    out.push_str("XXXXXXXX");
                    rest = &rest[p.len() + hex..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Replaces the JSON plan's `timestamp` (when the plan was made) with `TIMESTAMP`.
fn redact_timestamp(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("\"timestamp\": \"") {
            let indent = &line[..line.len() - trimmed.len()];
            let comma = if trimmed.ends_with(',') { "," } else { "" };
            out.push_str(&format!("{indent}\"timestamp\": \"TIMESTAMP\"{comma}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn example(name: &str) -> Project {
    let text = std::fs::read_to_string(example_dir(name).join("main.sky.hcl")).expect("example");
    Project::new(&[("main.sky.hcl", &text)])
}

/// `skyform plan ARGS` printed, redacted; the run must succeed.
fn plan(moto: &Moto, p: &Project, args: &[&str]) -> String {
    let out = moto.run(p, &[&["plan"], args].concat());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    redact_timestamp(&redact(&stdout(&out)))
}

#[test]
fn ids_are_redacted_but_not_words_that_look_like_them() {
    assert_eq!(
        redact("vpc-0a1b2c3d4e5f60718 (sg-12345678) thi-deadbeef99"),
        "vpc-XXXXXXXX (sg-XXXXXXXX) thi-deadbeef99"
    );
}

#[test]
fn the_plans_timestamp_is_redacted_and_nothing_else() {
    assert_eq!(
        redact_timestamp("{\n  \"timestamp\": \"2026-11-29T13:20:48Z\",\n  \"x\": 1\n}\n"),
        "{\n  \"timestamp\": \"TIMESTAMP\",\n  \"x\": 1\n}\n"
    );
}

#[test]
fn the_iam_examples_plans_are_unchanged() {
    let Some(moto) = Moto::start() else { return };
    let p = example("skypilot-iam");
    insta::assert_snapshot!("iam_human", plan(&moto, &p, &[]));
    insta::assert_snapshot!("iam_markdown", plan(&moto, &p, &["--markdown"]));
    insta::assert_snapshot!("iam_json", plan(&moto, &p, &["--json"]));
}

#[test]
fn the_vpc_examples_plans_are_unchanged() {
    let Some(moto) = Moto::start() else { return };
    let p = example("skypilot-vpc");
    insta::assert_snapshot!("vpc_human", plan(&moto, &p, &[]));
    insta::assert_snapshot!("vpc_markdown", plan(&moto, &p, &["--markdown"]));
    insta::assert_snapshot!("vpc_json", plan(&moto, &p, &["--json"]));
}

#[test]
fn the_cluster_examples_plans_are_unchanged() {
    let Some(moto) = Moto::start() else { return };
    // The cluster launches into the VPC the VPC example makes, chosen by its Name tag.
    let vpc = example("skypilot-vpc");
    let out = moto.run(&vpc, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // moto lacks placement groups: the proxy answers them (tests/placement_groups.rs).
    crate::placement_groups::emulate(&moto);
    let p = example("skypilot-cluster");
    let vars = ["--var", "num_nodes=2"];
    insta::assert_snapshot!("cluster_human", plan(&moto, &p, &vars));
    insta::assert_snapshot!(
        "cluster_markdown",
        plan(&moto, &p, &[&vars[..], &["--markdown"]].concat())
    );
    insta::assert_snapshot!(
        "cluster_json",
        plan(&moto, &p, &[&vars[..], &["--json"]].concat())
    );
}
