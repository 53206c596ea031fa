//! Secrets and saved plans against moto: a plan file holds no secret and is private, `show`
//! prints none, `apply FILE` is given sensitive variables again and refuses other values,
//! changed files it reads or files whose existence changed, without showing a value, and
//! `state show` masks what came from a sensitive variable. AWS results are checked through
//! the IAM API.

use crate::review_workflow::{plan_file, user_tags};
use crate::support::{block_on, stderr, stdout, Moto, Project};

pub(crate) const PASSWORD: &str = "Pw-correct-horse-1";
const OTHER_PASSWORD: &str = "Pw-battery-staple-2";

pub(crate) const KEYED: &str = r#"
variable "db_password" {
  sensitive = true
}

resource "aws_iam_user" "u" {
  name = "secret-holder"
  tags = { team = "one", db = var.db_password }
}

resource "aws_iam_access_key" "k" {
  user = aws_iam_user.u.name
}

output "key_secret" {
  value     = aws_iam_access_key.k.secret
  sensitive = true
}
"#;

pub(crate) fn pw(value: &str) -> String {
    format!("db_password={value}")
}

/// Applies `KEYED` and returns the access key's secret, as `output --raw` reveals it.
pub(crate) fn applied_with_a_key(moto: &Moto, p: &Project) -> String {
    let out = moto.run(p, &["apply", "--auto-approve", "--var", &pw(PASSWORD)]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(p, &["output", "--raw", "key_secret"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_string();
    assert!(secret.len() >= 20, "a real secret: {secret:?}");
    secret
}

/// Applies `KEYED`, then saves a plan that changes the tags holding the sensitive value, so
/// the plan carries it in `before`, `after` and the attribute changes, besides the state and
/// the outputs. Returns the key's secret and the plan file.
fn planned_tag_change(moto: &Moto, p: &Project) -> (String, String) {
    let secret = applied_with_a_key(moto, p);
    p.write("main.sky.hcl", &KEYED.replace("\"one\"", "\"two\""));
    let file = plan_file(p);
    let out = moto.run(p, &["plan", "--out", &file, "--var", &pw(PASSWORD)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secret("plan's output", &stdout(&out), &[&secret, PASSWORD]);
    (secret, file)
}

pub(crate) fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} holds a secret ({s}):\n{text}");
    }
}

#[test]
fn a_plan_file_holds_no_secret_is_private_and_show_prints_none() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", KEYED)]);
    let (secret, file) = planned_tag_change(&moto, &p);

    let bytes = std::fs::read(&file).expect("plan file");
    assert_no_secret(
        "the plan file",
        &String::from_utf8_lossy(&bytes),
        &[&secret, PASSWORD],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the plan file is private: {mode:o}");
    }

    for args in [
        vec!["show", file.as_str()],
        vec!["show", "--json", file.as_str()],
        vec!["show", "--markdown", file.as_str()],
    ] {
        let out = moto.run(&p, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("aws_iam_user.u"), "{args:?}: {text}");
        assert_no_secret(&format!("{args:?}"), &text, &[&secret, PASSWORD]);
    }
    let human = stdout(&moto.run(&p, &["show", &file]));
    assert!(
        human.contains("tags     = (sensitive value) -> (sensitive value)")
            && human.contains("tags_all = (sensitive value) -> (sensitive value)"),
        "{human}"
    );
}

#[test]
fn apply_file_needs_the_same_sensitive_value_and_never_prints_it() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", KEYED)]);
    let (secret, file) = planned_tag_change(&moto, &p);
    moto.clear_calls();

    let refusal = "the saved plan is stale: the value of sensitive variable \"db_password\" differs from the one it was made with";
    let out = moto.run(&p, &["apply", &file, "--var", &pw(OTHER_PASSWORD)]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{o}{e}");
    assert!(e.contains(refusal), "{e}");
    assert_no_secret(
        "the refusal",
        &format!("{o}{e}"),
        &[PASSWORD, OTHER_PASSWORD, &secret],
    );

    // Not given at all: the same refusal, naming it.
    let out = moto.run(&p, &["apply", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains(refusal), "{}", stderr(&out));

    assert_eq!(moto.writes(), Vec::<String>::new());
    assert_eq!(
        user_tags(&moto, "secret-holder"),
        [
            ("db".to_string(), PASSWORD.to_string()),
            ("team".to_string(), "one".to_string())
        ],
        "AWS is unchanged"
    );

    // The same value, from the environment this time, as CI would give it.
    let out = moto
        .skyform(&p)
        .args(["apply", &file])
        .env("SKYFORM_VAR_db_password", PASSWORD)
        .output()
        .expect("run");
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}{e}");
    assert!(
        o.contains("Apply complete! Resources: 0 added, 1 changed"),
        "{o}"
    );
    assert_no_secret("apply's output", &format!("{o}{e}"), &[PASSWORD, &secret]);
    assert_eq!(
        user_tags(&moto, "secret-holder"),
        [
            ("db".to_string(), PASSWORD.to_string()),
            ("team".to_string(), "two".to_string())
        ]
    );
    // The state still holds the key's secret: the plan file's redacted copy was not applied.
    let out = moto.run(&p, &["output", "--raw", "key_secret"]);
    assert_eq!(stdout(&out).trim(), secret);
    let keys = block_on(
        moto.iam()
            .list_access_keys()
            .user_name("secret-holder")
            .send(),
    )
    .expect("keys");
    assert_eq!(keys.access_key_metadata().len(), 1, "the key was kept");
}

#[test]
fn apply_file_refuses_a_plan_when_a_file_the_configuration_reads_changed() {
    let Some(moto) = Moto::start() else { return };
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}"#;
    let p = Project::new(&[
        (
            "main.sky.hcl",
            "resource \"aws_iam_policy\" \"p\" {\n  name   = \"from-a-file\"\n  policy = file(\"policy.json\")\n}\n",
        ),
        ("policy.json", policy),
    ]);
    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    p.write("policy.json", &policy.replace("s3:ListBucket", "s3:*"));
    let out = moto.run(&p, &["apply", &file]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{e}", stdout(&out));
    assert!(
        e.contains("stale")
            && e.contains("the file policy.json, which the configuration reads, changed"),
        "{e}"
    );
    assert_eq!(moto.writes(), Vec::<String>::new());
    let policies = block_on(moto.iam().list_policies().send()).expect("policies");
    assert!(
        !policies
            .policies()
            .iter()
            .any(|x| x.policy_name() == Some("from-a-file")),
        "nothing was created"
    );

    // Put back as it was, the plan applies.
    p.write("policy.json", policy);
    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let policies = block_on(moto.iam().list_policies().send()).expect("policies");
    assert!(policies
        .policies()
        .iter()
        .any(|x| x.policy_name() == Some("from-a-file")));
}

#[test]
fn apply_file_refuses_a_plan_when_a_file_whose_existence_it_checked_appeared() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"flagged\"\n  tags = { mode = fileexists(\"flag\") ? \"on\" : \"off\" }\n}\n",
    )]);
    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    p.write("flag", "");
    let out = moto.run(&p, &["apply", &file]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{e}", stdout(&out));
    assert!(
        e.contains("stale")
            && e.contains("the file flag, whose existence the configuration checks, exists now"),
        "{e}"
    );
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert!(
        block_on(moto.iam().get_user().user_name("flagged").send()).is_err(),
        "nothing was created"
    );

    // Gone again, as when the plan was made, the plan applies what it showed.
    std::fs::remove_file(p.path().join("flag")).expect("remove");
    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        user_tags(&moto, "flagged"),
        [("mode".to_string(), "off".to_string())]
    );
}

#[test]
fn state_show_masks_a_tag_derived_from_a_sensitive_variable() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", KEYED)]);
    let secret = applied_with_a_key(&moto, &p);
    let out = moto.run(&p, &["state", "show", "aws_iam_user.u"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("name") && text.contains("secret-holder"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("tags") && l.ends_with("= (sensitive value)")),
        "{text}"
    );
    assert_no_secret("state show", &text, &[PASSWORD]);
    let out = moto.run(&p, &["state", "show", "aws_iam_access_key.k"]);
    assert_no_secret("state show", &stdout(&out), &[&secret]);
    assert!(stdout(&out).contains("secret") && stdout(&out).contains("(sensitive value)"));
    // The tag really holds the value in AWS: the mask is skyform's, not an empty tag.
    assert!(user_tags(&moto, "secret-holder").contains(&("db".to_string(), PASSWORD.to_string())));
}
