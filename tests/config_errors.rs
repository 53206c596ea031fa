//! One test per class of malformed configuration: exit 1, `file:line:col` and the offending
//! name, every error reported at once, and no state written.

use crate::support::{block_on, stderr, Moto, Project};

/// Runs `plan` (which would need AWS) and checks it fails before touching AWS or state.
pub(crate) fn fails_with(files: &[(&str, &str)], expected: &[&str]) -> String {
    let p = Project::new(files);
    let out = p.offline().arg("plan").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !p.path().join(".skyform").exists(),
        "a config error must not create state"
    );
    // The closed endpoint was never reached: a config error stops before AWS.
    assert!(
        !err.contains("Connection refused") && !err.contains("dispatch failure"),
        "{err}"
    );
    err
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"u\" {\n  name = \n}\n",
        )],
        &["syntax error", "main.sky.hcl:2:"],
    );
}

#[test]
fn an_undefined_reference_is_reported_with_its_location() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"u\" {\n  name = aws_iam_role.missing.name\n}\n",
        )],
        &[
            "undefined reference to aws_iam_role.missing",
            "main.sky.hcl:2:10",
        ],
    );
}

#[test]
fn an_undefined_variable_gets_a_did_you_mean() {
    fails_with(
        &[("main.sky.hcl", "variable \"user_name\" { default = \"a\" }\nresource \"aws_iam_user\" \"u\" {\n  name = var.user_nme\n}\n")],
        &["undefined variable var.user_nme", "main.sky.hcl:3:10", "did you mean var.user_name?"],
    );
}

#[test]
fn an_undefined_function_is_reported() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"u\" {\n  name = uppper(\"a\")\n}\n",
        )],
        &[
            "undefined function uppper()",
            "main.sky.hcl:2:10",
            "did you mean upper()?",
        ],
    );
}

#[test]
fn a_duplicate_address_names_both_places() {
    let block = "resource \"aws_iam_user\" \"u\" {\n  name = \"a\"\n}\n";
    fails_with(
        &[("a.sky.hcl", block), ("b.sky.hcl", block)],
        &[
            "duplicate aws_iam_user.u",
            "b.sky.hcl:1:10",
            "first declared at a.sky.hcl:1:10",
        ],
    );
}

#[test]
fn an_unknown_resource_type_gets_a_did_you_mean() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_usr\" \"u\" {\n  name = \"a\"\n}\n",
        )],
        &[
            "unknown resource type \"aws_iam_usr\"",
            "main.sky.hcl:1:10",
            "did you mean \"aws_iam_user\"?",
        ],
    );
}

#[test]
fn an_unknown_attribute_gets_a_did_you_mean() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"u\" {\n  name = \"a\"\n  tgas = {}\n}\n",
        )],
        &[
            "unknown attribute \"tgas\" in aws_iam_user.u",
            "main.sky.hcl:3:3",
            "did you mean \"tags\"?",
        ],
    );
}

#[test]
fn a_missing_required_attribute_is_reported() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_role\" \"r\" {\n  name = \"r\"\n}\n",
        )],
        &[
            "missing the required attribute \"assume_role_policy\"",
            "main.sky.hcl:1:10",
        ],
    );
}

#[test]
fn a_wrong_type_is_reported_at_the_value() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"u\" {\n  name = \"a\"\n  tags = \"not a map\"\n}\n",
        )],
        &[
            "wrong type for aws_iam_user.u.tags",
            "expected map(string), found string",
            "main.sky.hcl:3:10",
        ],
    );
}

#[test]
fn a_dependency_cycle_lists_every_address_in_it() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_user\" \"a\" {\n  name = aws_iam_user.c.name\n}\nresource \"aws_iam_user\" \"b\" {\n  name = aws_iam_user.a.name\n}\nresource \"aws_iam_user\" \"c\" {\n  name = aws_iam_user.b.name\n}\n",
        )],
        &["dependency cycle: aws_iam_user.a, aws_iam_user.b, aws_iam_user.c", "main.sky.hcl:"],
    );
}

#[test]
fn all_errors_are_collected_before_reporting() {
    let err = fails_with(
        &[("main.sky.hcl", "resource \"aws_iam_user\" \"u\" {\n  nmae = \"a\"\n}\nresource \"aws_iam_rol\" \"r\" {}\noutput \"o\" { value = var.nope }\n")],
        &["unknown attribute \"nmae\"", "missing the required attribute \"name\"", "unknown resource type", "undefined variable var.nope"],
    );
    assert!(err.contains("4 error(s)"), "{err}");
}

#[test]
fn a_bad_flag_exits_1_with_a_message() {
    let p = Project::new(&[("main.sky.hcl", "")]);
    let out = p
        .offline()
        .args(["plan", "--auto-approve"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--auto-approve"));
    let out = p
        .offline()
        .args(["apply", "--parallelism", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn validate_accepts_the_examples_without_aws() {
    for example in ["skypilot-iam", "skypilot-vpc", "skypilot-cluster"] {
        let dir = crate::support::example_dir(example);
        let mut c = assert_cmd::Command::cargo_bin("skyform").expect("binary");
        let out = c
            .arg("-C")
            .arg(&dir)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .arg("validate")
            .output()
            .expect("run");
        assert!(out.status.success(), "{example}: {}", stderr(&out));
        assert!(!dir.join(".skyform").exists());
    }
}

#[test]
fn variables_come_from_flags_files_and_the_environment() {
    let p = Project::new(&[(
        "main.sky.hcl",
        "variable \"n\" { type = number }\nvariable \"s\" {}\nresource \"aws_iam_user\" \"u\" {\n  name = \"u-${var.n + 1}-${var.s}\"\n}\n",
    )]);
    p.write("vars.tfvars", "n = 41\n");
    let out = p
        .offline()
        .args(["validate", "--var-file"])
        .arg(p.path().join("vars.tfvars"))
        .env("SKYFORM_VAR_s", "x")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p
        .offline()
        .args(["validate", "--var", "n=abc"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid value for var.n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fmt_refuses_a_file_that_does_not_parse_and_writes_nothing() {
    // Both files are badly laid out, so a formatter that went ahead would change their bytes.
    let broken = "resource \"aws_iam_user\" \"u\"{\nname=\"x\"\n  tags = {\n    a =\n}\n";
    let good = "resource \"aws_iam_user\" \"v\"{\nname=\"y\"\n}\n";
    let p = Project::new(&[("broken.sky.hcl", broken), ("good.sky.hcl", good)]);
    for args in [&["fmt"][..], &["fmt", "--check"], &["fmt", "--diff"]] {
        let out = p.offline().args(args).output().expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("syntax error"), "{args:?}: {err}");
        assert!(err.contains("broken.sky.hcl:4:"), "{args:?}: {err}");
        assert!(err.contains("nothing was changed"), "{args:?}: {err}");
        assert!(!err.contains("good.sky.hcl"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            std::fs::read(p.path().join("broken.sky.hcl")).expect("read"),
            broken.as_bytes(),
            "{args:?} changed the broken file"
        );
        assert_eq!(
            std::fs::read(p.path().join("good.sky.hcl")).expect("read"),
            good.as_bytes(),
            "{args:?} wrote a file although another one was refused"
        );
    }
}

#[test]
fn fmt_names_a_file_that_is_not_utf8_and_leaves_it_alone() {
    let p = Project::new(&[]);
    let bytes = b"resource \"aws_iam_user\" \"u\" {\n  name = \"\xff\"\n}\n";
    std::fs::write(p.path().join("latin1.sky.hcl"), bytes).expect("write");
    let out = p.offline().arg("fmt").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("latin1.sky.hcl"), "{err}");
    assert!(err.contains("UTF-8"), "{err}");
    assert_eq!(
        std::fs::read(p.path().join("latin1.sky.hcl")).expect("read"),
        bytes
    );
}

const VALIDATED: &str = r#"variable "env" {
  default = "staging"
  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}
variable "team" {
  type     = string
  default  = null
  nullable = false
}
resource "aws_iam_user" "u" {
  name = "${var.env}-${var.team}"
}
"#;

#[test]
fn a_failing_variable_validation_shows_its_error_message_at_the_variable() {
    fails_with(
        &[("main.sky.hcl", VALIDATED)],
        &[
            "invalid value for var.env: env must be dev or prod.",
            "main.sky.hcl:1:10",
            "checked by the validation rule at main.sky.hcl:4:21",
            "invalid value for var.team: the variable is not nullable",
            "main.sky.hcl:8:10",
        ],
    );
}

#[test]
fn a_validation_reading_another_variable_is_refused() {
    fails_with(
        &[(
            "main.sky.hcl",
            "variable \"a\" { default = 1 }\nvariable \"b\" {\n  default = 2\n  validation {\n    condition     = var.b > var.a\n    error_message = \"b must exceed a\"\n  }\n}\n",
        )],
        &[
            "can only refer to the variable itself, using var.b, but it reads var.a",
            "main.sky.hcl:5:29",
        ],
    );
}

#[test]
fn a_variable_passing_its_validation_is_applied_with_its_value() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", VALIDATED)]);
    let out = moto.run(
        &p,
        &[
            "apply",
            "--auto-approve",
            "--var",
            "env=prod",
            "--var",
            "team=data",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let iam = moto.iam();
    let user = block_on(async { iam.get_user().user_name("prod-data").send().await });
    assert!(user.is_ok(), "{user:?}");
}

#[test]
fn an_object_type_constraint_fills_optional_defaults_into_what_is_applied() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "variable \"user\" {\n  type = object({\n    name = string\n    path = optional(string, \"/team/\")\n    tags = optional(map(string), { team = \"data\" })\n  })\n}\nresource \"aws_iam_user\" \"u\" {\n  name = var.user.name\n  path = var.user.path\n  tags = var.user.tags\n}\n",
    )]);
    let out = moto.run(
        &p,
        &[
            "apply",
            "--auto-approve",
            "--var",
            "user={ name = \"ana\" }",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let iam = moto.iam();
    let user = block_on(async { iam.get_user().user_name("ana").send().await })
        .expect("the user exists")
        .user
        .expect("a user");
    assert_eq!(user.path, "/team/");
    let tags: Vec<(String, String)> = user
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value))
        .filter(|(k, _)| !k.starts_with("skyform:"))
        .collect();
    assert_eq!(tags, [("team".to_string(), "data".to_string())]);
}

#[test]
fn a_value_not_matching_an_object_type_is_refused_with_the_variable_location() {
    let p = Project::new(&[(
        "main.sky.hcl",
        "variable \"user\" {\n  type = object({ name = string })\n}\n",
    )]);
    let out = p
        .offline()
        .args(["plan", "--var", "user={ path = \"/x/\" }"])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("invalid value for var.user: unexpected attribute \"path\""),
        "{err}"
    );
    assert!(err.contains("main.sky.hcl:1:10"), "{err}");
    assert!(!p.path().join(".skyform").exists());
}

#[test]
fn an_attribute_terraform_has_but_skyform_lacks_is_a_gap_not_a_typo() {
    let err = fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_role\" \"r\" {\n  name                 = \"r\"\n  assume_role_policy   = \"{}\"\n  permissions_boundary = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"\n}\n",
        )],
        &[
            "attribute \"permissions_boundary\" of aws_iam_role is not supported yet by skyform",
            "main.sky.hcl:4:3",
        ],
    );
    assert!(!err.contains("unknown attribute"), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn a_nested_block_terraform_has_but_skyform_lacks_is_a_gap_too() {
    let err = fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_instance\" \"i\" {\n  ami           = \"ami-12c6146b\"\n  instance_type = \"t3.micro\"\n\n  ephemeral_block_device {\n    device_name = \"/dev/sdb\"\n  }\n}\n",
        )],
        &[
            "attribute \"ephemeral_block_device\" of aws_instance is not supported yet by skyform",
            "main.sky.hcl:5:3",
        ],
    );
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn aws_iam_policy_attachment_is_refused_with_why_and_what_to_use() {
    fails_with(
        &[(
            "main.sky.hcl",
            "resource \"aws_iam_policy_attachment\" \"a\" {\n  name       = \"a\"\n  roles      = [\"r\"]\n  policy_arn = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"\n}\n",
        )],
        &[
            "resource type \"aws_iam_policy_attachment\" is not supported by skyform",
            "main.sky.hcl:1:10",
            "exclusive",
            "detaches the policy from every other role, user and group",
            "aws_iam_role_policy_attachment",
            "aws_iam_user_policy_attachment",
        ],
    );
}
