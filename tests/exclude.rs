//! `--exclude` against moto: what it names, and what depends on it, is left alone by plan
//! and apply, alone or with `--target`, by instance or by module, and a saved plan keeps it.
//! What exists is checked through the IAM API.

use crate::review_workflow::{plan_file, user_exists};
use crate::support::{block_on, stderr, stdout, Moto, Project};

const CONFIG: &str = r#"
locals {
  trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role" "keep" {
  name               = "exclude-keep"
  assume_role_policy = local.trust
}

resource "aws_iam_role" "skip" {
  name               = "exclude-skip"
  assume_role_policy = local.trust
}

resource "aws_iam_user" "after_skip" {
  name = "exclude-after-skip"
  tags = { role = aws_iam_role.skip.name }
}

resource "aws_iam_user" "u" {
  for_each = toset(["a", "b"])
  name     = "exclude-u-${each.key}"
}

module "m" {
  source = "./m"
}
"#;

const MODULE: &str = r#"
resource "aws_iam_user" "inside" {
  name = "exclude-in-module"
}
"#;

fn project() -> Project {
    let p = Project::new(&[("main.sky.hcl", CONFIG)]);
    std::fs::create_dir_all(p.path().join("m")).expect("mkdir");
    p.write("m/main.sky.hcl", MODULE);
    p
}

fn role_exists(moto: &Moto, name: &str) -> bool {
    block_on(moto.iam().get_role().role_name(name).send()).is_ok()
}

#[test]
fn an_excluded_role_instance_and_module_are_not_created_and_the_rest_is() {
    let Some(moto) = Moto::start() else { return };
    let p = project();
    let out = moto.run(
        &p,
        &[
            "apply",
            "--auto-approve",
            "--exclude",
            "aws_iam_role.skip",
            "--exclude",
            r#"aws_iam_user.u["a"]"#,
            "--exclude",
            "module.m",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("Resource targeting is in effect")
            && text.contains("it leaves out aws_iam_role.skip"),
        "{text}"
    );
    assert!(
        text.contains("Apply complete! Resources: 2 added"),
        "{text}"
    );
    assert!(role_exists(&moto, "exclude-keep"));
    assert!(user_exists(&moto, "exclude-u-b"));
    assert!(!role_exists(&moto, "exclude-skip"));
    // Depends on the excluded role, so left out with it.
    assert!(!user_exists(&moto, "exclude-after-skip"));
    assert!(!user_exists(&moto, "exclude-u-a"));
    assert!(!user_exists(&moto, "exclude-in-module"));

    // A whole apply then does the rest.
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Apply complete! Resources: 4 added"));
    assert!(role_exists(&moto, "exclude-skip") && user_exists(&moto, "exclude-in-module"));

    // A destroy that excludes the role keeps it (and what it depends on: nothing here); the
    // user that reads it is destroyed, as the rest is.
    let out = moto.run(
        &p,
        &[
            "destroy",
            "--auto-approve",
            "--exclude",
            "aws_iam_role.skip",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(role_exists(&moto, "exclude-skip"));
    assert!(!role_exists(&moto, "exclude-keep"));
    assert!(!user_exists(&moto, "exclude-after-skip"));
}

#[test]
fn exclude_and_target_together_apply_the_targets_less_the_excluded() {
    let Some(moto) = Moto::start() else { return };
    let p = project();
    let out = moto.run(
        &p,
        &[
            "apply",
            "--auto-approve",
            "--target",
            "aws_iam_user.u",
            "--exclude",
            r#"aws_iam_user.u["b"]"#,
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("Apply complete! Resources: 1 added"),
        "{text}"
    );
    assert!(user_exists(&moto, "exclude-u-a"));
    assert!(!user_exists(&moto, "exclude-u-b"));
    assert!(!role_exists(&moto, "exclude-keep"));
}

#[test]
fn a_saved_plan_keeps_its_excludes() {
    let Some(moto) = Moto::start() else { return };
    let p = project();
    let file = plan_file(&p);
    let out = moto.run(
        &p,
        &["plan", "--out", &file, "--exclude", "aws_iam_role.skip"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&p, &["show", &file]);
    assert!(stdout(&out).contains("it leaves out aws_iam_role.skip"));
    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(role_exists(&moto, "exclude-keep"));
    assert!(!role_exists(&moto, "exclude-skip"));
    assert!(!user_exists(&moto, "exclude-after-skip"));
}

#[test]
fn an_exclude_that_names_nothing_is_refused() {
    let p = project();
    let out = p
        .offline()
        .args(["plan", "--exclude", "aws_iam_role.nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--exclude aws_iam_role.nope: no such resource"));
}
