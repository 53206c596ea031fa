//! The review workflow against moto: saved plans and their stale checks, the JSON plan,
//! import, targeting, `--replace`, refresh, state edits, and the offline tools (fmt, graph,
//! completions). AWS results are checked through the IAM API; "nothing written" is counted by
//! the recording proxy.

use crate::support::{block_on, stderr, stdout, Moto, Project};

const USERS: &str = r#"
resource "aws_iam_user" "a" {
  name = "review-a"
  tags = { team = "one" }
}

resource "aws_iam_user" "b" {
  name = "review-b"
}
"#;

pub(crate) fn user_exists(moto: &Moto, name: &str) -> bool {
    block_on(moto.iam().get_user().user_name(name).send()).is_ok()
}

pub(crate) fn user_tags(moto: &Moto, name: &str) -> Vec<(String, String)> {
    let out = block_on(moto.iam().list_user_tags().user_name(name).send()).expect("tags");
    out.tags()
        .iter()
        .filter(|t| !t.key().starts_with("skyform:"))
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

pub(crate) fn plan_file(p: &Project) -> String {
    p.path().join("reviewed.plan").display().to_string()
}

#[test]
fn a_saved_plan_is_shown_and_then_applied_exactly() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("skyform apply {file}")));
    assert!(moto.writes().is_empty(), "plan --out writes nothing to AWS");

    let out = moto.run(&p, &["show", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("# aws_iam_user.a will be created"));

    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("Apply complete! Resources: 2 added"));
    assert!(user_exists(&moto, "review-a") && user_exists(&moto, "review-b"));
    assert_eq!(
        user_tags(&moto, "review-a"),
        [("team".into(), "one".into())]
    );
}

#[test]
fn a_saved_plan_is_stale_after_another_apply_and_nothing_is_written() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    moto.clear_calls();
    let out = moto.run(&p, &["apply", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(
        err.contains("stale") && err.contains("the state changed"),
        "{err}"
    );
    assert_eq!(moto.writes(), Vec::<String>::new());

    // `state rm` changes the state too.
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success());
    let out = moto.run(&p, &["state", "rm", "aws_iam_user.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        user_exists(&moto, "review-b"),
        "state rm leaves the object in AWS"
    );
    let out = moto.run(&p, &["apply", &file]);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));

    // So does the configuration.
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success());
    p.write("main.sky.hcl", &USERS.replace("one", "two"));
    let out = moto.run(&p, &["apply", &file]);
    let err = stderr(&out);
    assert!(
        err.contains("stale") && err.contains("configuration"),
        "{err}"
    );
}

#[test]
fn a_saved_plan_is_stale_after_an_out_of_band_change_and_shows_the_difference() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    p.write("main.sky.hcl", &USERS.replace("\"one\"", "\"two\""));
    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let iam = moto.iam();
    block_on(
        iam.tag_user()
            .user_name("review-a")
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("owner")
                    .value("someone-else")
                    .build()
                    .expect("tag"),
            )
            .send(),
    )
    .expect("tag out of band");
    moto.clear_calls();
    let out = moto.run(&p, &["apply", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(err.contains("stale"), "{err}");
    assert!(err.contains("aws_iam_user.a changed in AWS"), "{err}");
    assert!(
        err.contains("someone-else"),
        "the difference is shown: {err}"
    );
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert_eq!(
        user_tags(&moto, "review-a").len(),
        2,
        "the saved plan's tag change was not applied"
    );
}

#[test]
fn a_damaged_or_foreign_plan_file_is_refused_without_a_panic() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    let file = plan_file(&p);
    assert!(moto.run(&p, &["plan", "--out", &file]).status.success());
    let bytes = std::fs::read(&file).expect("plan file");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    let cases: [(&str, Vec<u8>); 3] = [
        ("flipped", flipped),
        ("truncated", bytes[..bytes.len() - 10].to_vec()),
        ("foreign", USERS.as_bytes().to_vec()),
    ];
    for (name, content) in cases {
        let path = p.path().join(format!("{name}.plan"));
        std::fs::write(&path, content).expect("write");
        let path = path.display().to_string();
        for cmd in [["apply", path.as_str()], ["show", path.as_str()]] {
            let out = moto.run(&p, &cmd);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{name} {cmd:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                err.contains("damaged") || err.contains("not a skyform plan"),
                "{name}: {err}"
            );
        }
    }
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert!(!user_exists(&moto, "review-a"));
}

#[test]
fn the_json_plan_has_terraforms_structure_for_create_update_replace_and_delete() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    // a: tags change (update); b: renamed (replace); c: new (create); a key for b is gone.
    let edited_config = r#"
resource "aws_iam_user" "a" {
  name = "review-a"
  tags = { team = "two" }
}

resource "aws_iam_user" "b" {
  name = "review-b2"
}

resource "aws_iam_user" "c" {
  name = "review-c"
}

resource "aws_iam_access_key" "c" {
  user = aws_iam_user.c.name
}
"#;
    p.write("main.sky.hcl", edited_config);
    let out = moto.run(&p, &["plan", "--json", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(json["format_version"], "1.2");
    let changes = json["resource_changes"]
        .as_array()
        .expect("resource_changes");
    let find = |addr: &str| {
        changes
            .iter()
            .find(|c| c["address"] == addr)
            .unwrap_or_else(|| panic!("{addr} in {json}"))
    };
    for c in changes {
        for key in ["address", "type", "name", "mode"] {
            assert!(c[key].is_string(), "{key} in {c}");
        }
        assert!(c["change"]["actions"].is_array());
    }
    assert_eq!(
        find("aws_iam_user.a")["change"]["actions"],
        serde_json::json!(["update"])
    );
    assert_eq!(
        find("aws_iam_user.a")["change"]["before"]["tags"]["team"],
        "one"
    );
    assert_eq!(
        find("aws_iam_user.a")["change"]["after"]["tags"]["team"],
        "two"
    );
    assert_eq!(
        find("aws_iam_user.b")["change"]["actions"],
        serde_json::json!(["delete", "create"])
    );
    assert_eq!(
        find("aws_iam_user.c")["change"]["actions"],
        serde_json::json!(["create"])
    );
    assert_eq!(
        find("aws_iam_user.c")["change"]["after_unknown"]["arn"],
        true
    );
    let key = find("aws_iam_access_key.c");
    assert_eq!(key["change"]["after_sensitive"]["secret"], true);

    // A removed block is a delete.
    p.write(
        "main.sky.hcl",
        &USERS.replace(
            "resource \"aws_iam_user\" \"b\" {\n  name = \"review-b\"\n}\n",
            "",
        ),
    );
    let out = moto.run(&p, &["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let b = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "aws_iam_user.b")
        .cloned()
        .expect("b");
    assert_eq!(b["change"]["actions"], serde_json::json!(["delete"]));
    assert_eq!(b["change"]["after"], serde_json::Value::Null);
    assert_eq!(b["action_reason"], "delete_because_no_resource_config");
}

const ROLE: &str = r#"
resource "aws_iam_role" "adopted" {
  name        = "made-by-hand"
  description = "created outside skyform"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}
"#;

#[test]
fn an_imported_role_plans_clean_and_nothing_is_written_to_import_it() {
    let Some(moto) = Moto::start() else { return };
    let iam = moto.iam();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    block_on(
        iam.create_role()
            .role_name("made-by-hand")
            .description("created outside skyform")
            .assume_role_policy_document(trust)
            .send(),
    )
    .expect("role");
    let p = Project::new(&[("main.sky.hcl", ROLE)]);
    moto.clear_calls();
    let out = moto.run(&p, &["import", "aws_iam_role.adopted", "made-by-hand"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(moto.writes(), Vec::<String>::new());
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("No changes."));

    // A second import of the same address, or of an object that does not exist, is refused.
    let out = moto.run(&p, &["import", "aws_iam_role.adopted", "made-by-hand"]);
    assert!(
        stderr(&out).contains("already in the state"),
        "{}",
        stderr(&out)
    );
    let q = Project::new(&[("main.sky.hcl", ROLE)]);
    let out = moto.run(&q, &["import", "aws_iam_role.adopted", "no-such-role"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no aws_iam_role with id \"no-such-role\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn target_limits_apply_and_state_mv_and_rm_keep_aws_as_it_is() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    let out = moto.run(
        &p,
        &["apply", "--auto-approve", "--target", "aws_iam_user.a"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Resource targeting is in effect"),
        "{}",
        stdout(&out)
    );
    assert!(user_exists(&moto, "review-a"));
    assert!(!user_exists(&moto, "review-b"), "b was not targeted");

    let out = moto.run(&p, &["plan", "--target", "aws_iam_user.nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("aws_iam_user.nope"));

    // Rename the block and move its state: nothing to do for it afterwards.
    p.write(
        "main.sky.hcl",
        &USERS.replace("\"aws_iam_user\" \"a\"", "\"aws_iam_user\" \"renamed\""),
    );
    let out = moto.run(
        &p,
        &["state", "mv", "aws_iam_user.a", "aws_iam_user.renamed"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    moto.clear_calls();
    let out = moto.run(
        &p,
        &[
            "plan",
            "--target",
            "aws_iam_user.renamed",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = moto.run(&p, &["state", "rm", "aws_iam_user.renamed"]);
    assert!(out.status.success());
    let list = stdout(&moto.run(&p, &["state", "list"]));
    assert!(!list.contains("aws_iam_user.renamed"), "{list}");
    assert!(user_exists(&moto, "review-a"));
    assert_eq!(moto.writes(), Vec::<String>::new());
}

#[test]
fn replace_recreates_an_unchanged_resource() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let id = |moto: &Moto| {
        block_on(moto.iam().get_user().user_name("review-b").send())
            .expect("user")
            .user
            .expect("user")
            .user_id
    };
    let before = id(&moto);
    let out = moto.run(&p, &["plan", "--replace", "aws_iam_user.b"]);
    assert!(
        stdout(&out).contains("# aws_iam_user.b must be replaced"),
        "{}",
        stdout(&out)
    );
    let out = moto.run(
        &p,
        &["apply", "--auto-approve", "--replace", "aws_iam_user.b"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(id(&moto), before, "a new user with the same name");
}

#[test]
fn refresh_records_out_of_band_changes_without_writing_to_aws() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USERS)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    block_on(
        moto.iam()
            .untag_user()
            .user_name("review-a")
            .tag_keys("team")
            .send(),
    )
    .expect("untag");
    block_on(moto.iam().delete_user().user_name("review-b").send()).expect("delete");
    moto.clear_calls();
    let out = moto.run(&p, &["plan", "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("refresh-only") && text.contains("aws_iam_user.b has been deleted"),
        "{text}"
    );
    let out = moto.run(&p, &["refresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 updated, 1 removed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(moto.writes(), Vec::<String>::new());
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_iam_user.a"]));
    assert!(
        !shown.contains("one"),
        "the tag is gone from state too: {shown}"
    );
    let list = stdout(&moto.run(&p, &["state", "list"]));
    assert!(!list.contains("aws_iam_user.b"), "{list}");
    // The next plan puts things back.
    let out = moto.run(&p, &["plan"]);
    assert!(
        stdout(&out).contains("1 to add, 1 to change"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn fmt_check_fails_on_a_badly_formatted_file_and_fmt_fixes_it() {
    let messy = "resource \"aws_iam_user\" \"u\"{\nname=\"x\"\n      tags = {\n a = \"b\"\n  long = \"c\" }\n}\n";
    let p = Project::new(&[("main.sky.hcl", messy)]);
    let out = p
        .offline()
        .args(["fmt", "--check", "--diff"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("main.sky.hcl"));
    assert!(stdout(&out).contains("+  name = \"x\""), "{}", stdout(&out));
    let path = p.path().join("main.sky.hcl");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        messy,
        "--check changes nothing"
    );
    let out = p.offline().arg("fmt").output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.offline().args(["fmt", "--check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = p.offline().arg("validate").output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn graph_prints_dot_and_completions_print_a_script() {
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n}\n\nresource \"aws_iam_access_key\" \"k\" {\n  user = aws_iam_user.u.name\n}\n",
    )]);
    let out = p.offline().arg("graph").output().expect("run");
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("\"aws_iam_access_key.k\" -> \"aws_iam_user.u\";"),
        "{dot}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = p
            .offline()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(out.status.success());
        assert!(stdout(&out).contains("skyform"), "{shell}");
    }
}

#[test]
fn the_ci_example_runs_only_commands_that_skyform_accepts() {
    use clap::Parser as _;
    let dir = crate::support::example_dir("ci").join(".github/workflows");
    let mut seen = Vec::new();
    let mut scheduled_drift = false;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("workflows")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("workflow");
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut runs_here = Vec::new();
        for line in text.lines() {
            let line = line.trim().trim_start_matches("run:").trim();
            let Some(rest) = line.strip_prefix("skyform ") else {
                continue;
            };
            let args: Vec<String> = rest
                .split('>')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(|a| a.trim_matches('"').to_string())
                .collect();
            let command_line = std::iter::once("skyform".to_string()).chain(args.clone());
            if let Err(e) = skyform::cli::args::Cli::try_parse_from(command_line) {
                panic!("`skyform {rest}` is not a valid command line: {e}");
            }
            runs_here.push(args.get(2).cloned().unwrap_or_default());
        }
        // A drift job runs on a schedule and files what it finds as an issue.
        if runs_here.iter().any(|c| c == "drift") {
            let cron = doc["on"]["schedule"][0]["cron"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(
                cron.split_whitespace().count(),
                5,
                "{}: {cron:?}",
                path.display()
            );
            assert!(text.contains("gh issue create"), "{}", path.display());
            assert!(text.contains("gh issue edit"), "{}", path.display());
            scheduled_drift = true;
        }
        seen.extend(runs_here);
    }
    for cmd in ["fmt", "validate", "plan", "show", "apply", "drift"] {
        assert!(
            seen.iter().any(|s| s == cmd),
            "the workflows run skyform {cmd}: {seen:?}"
        );
    }
    assert!(scheduled_drift, "a scheduled workflow runs skyform drift");
}

/// The steps of a workflow's job, as the text of their `run` commands and `uses` actions.
fn job_steps(doc: &serde_yaml_ng::Value, job: &str) -> Vec<String> {
    doc["jobs"][job]["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no job {job}"))
        .iter()
        .map(|s| {
            let field = |f: &str| s[f].as_str().unwrap_or_default().to_string();
            format!("{}{}", field("run"), field("uses"))
        })
        .collect()
}

#[test]
fn the_ci_example_keeps_the_state_in_the_s3_backend_with_a_lockless_plan_job_and_an_apply_job() {
    let dir = crate::support::example_dir("ci").join(".github/workflows");
    for name in ["skyform.yml", "skyform-drift.yml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("workflow");
        // No state file carried between runs by hand: the backend holds it.
        assert!(!text.contains("state.db"), "{name}");
        assert!(!text.contains("aws s3 cp"), "{name}");
        assert!(text.contains("skyform -C \"$SKYFORM_DIR\" init"), "{name}");
    }
    let text = std::fs::read_to_string(dir.join("skyform.yml")).expect("workflow");
    assert!(
        text.contains("backend \"s3\""),
        "the header shows the backend block"
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let plan = job_steps(&doc, "plan");
    let apply = job_steps(&doc, "apply");
    let has = |steps: &[String], s: &str| steps.iter().any(|step| step.contains(s));
    assert!(has(&plan, "plan --out reviewed.plan"), "{plan:?}");
    assert!(has(&plan, "actions/upload-artifact"), "{plan:?}");
    // The plan job neither applies nor waits for the lock (it takes none).
    assert!(!has(&plan, " apply"), "{plan:?}");
    assert!(!has(&plan, "--lock-timeout"), "{plan:?}");
    assert!(
        has(&apply, "apply --lock-timeout 10m reviewed.plan"),
        "{apply:?}"
    );
    assert!(!has(&apply, "plan --out"), "{apply:?}");
    assert_eq!(
        doc["jobs"]["apply"]["if"].as_str(),
        Some("github.event.action == 'closed' && github.event.pull_request.merged")
    );
}
