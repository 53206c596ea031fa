//! `skyform check` (credential sources and the guide's failure cases), `skyform policy` (a
//! user holding the printed policy can apply and destroy the IAM example under moto's IAM
//! authorization), and the owner guard (a second account cannot write).

use crate::support::{block_on, example_dir, stderr, stdout, Moto, Project};

const ACCOUNT: &str = "123456789012";

/// `skyform check` with no environment keys and the profile files of the project directory.
fn check_with_files(moto: &Moto, p: &Project, aws_profile: Option<&str>) -> std::process::Output {
    let mut c = moto.skyform(p);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", p.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            p.path().join("aws-credentials"),
        )
        .env("HOME", p.path());
    if let Some(name) = aws_profile {
        c.env("AWS_PROFILE", name);
    }
    c.arg("check").output().expect("run skyform")
}

const POWER_USER: &str = "AWSPowerUserAccess-123456789012";

fn power_user_project() -> Project {
    Project::new(&[(
        "aws-config",
        &format!(
            "[profile {POWER_USER}]\naws_access_key_id = testing\naws_secret_access_key = testing\nregion = us-east-1\n"
        ),
    )])
}

#[test]
fn check_with_environment_keys_names_the_account_and_the_environment_source() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[]);
    let out = moto
        .skyform(&p)
        .env("AWS_CONFIG_FILE", p.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", p.path().join("none"))
        .arg("check")
        .output()
        .expect("run");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("account  {ACCOUNT}")), "{text}");
    assert!(text.contains("source   environment"), "{text}");
    assert!(
        text.contains("region   us-east-1 (from AWS_REGION)"),
        "{text}"
    );
    // The key id is masked and the secret never appears.
    assert!(!text.contains("testing"), "{text}");
}

#[test]
fn check_without_aws_profile_or_a_default_profile_lists_the_profiles_that_exist() {
    let Some(moto) = Moto::start() else { return };
    let p = power_user_project();
    let out = check_with_files(&moto, &p, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(err.contains(POWER_USER), "{err}");
    assert!(
        err.contains(&format!("export AWS_PROFILE={POWER_USER}")),
        "{err}"
    );
    assert!(
        moto.calls.lock().expect("calls").is_empty(),
        "no AWS call is made"
    );
}

#[test]
fn check_with_aws_profile_naming_an_existing_profile_says_aws_profile_chose_it() {
    let Some(moto) = Moto::start() else { return };
    let p = power_user_project();
    let out = check_with_files(&moto, &p, Some(POWER_USER));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!("profile \"{POWER_USER}\" (chosen by AWS_PROFILE)")),
        "{text}"
    );
    assert!(text.contains(ACCOUNT), "{text}");
}

#[test]
fn check_with_aws_profile_naming_a_missing_profile_names_it_and_lists_the_others() {
    let Some(moto) = Moto::start() else { return };
    let p = power_user_project();
    let out = check_with_files(&moto, &p, Some("nope"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("AWS_PROFILE is set to profile \"nope\""),
        "{err}"
    );
    assert!(err.contains(POWER_USER), "{err}");
}

#[test]
fn check_of_an_sso_profile_without_a_token_says_to_run_aws_sso_login() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "aws-config",
        "[profile dev-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Admin\nregion = us-east-1\n",
    )]);
    let out = check_with_files(&moto, &p, Some("dev-sso"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("aws sso login --profile dev-sso"), "{err}");
}

#[test]
fn check_with_no_credentials_anywhere_says_how_to_configure_them() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[]);
    let out = check_with_files(&moto, &p, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No AWS credentials were found"), "{err}");
    assert!(err.contains("aws configure sso"), "{err}");
}

#[test]
fn check_with_keys_aws_rejects_shows_the_message_from_aws() {
    let Some(moto) = Moto::start() else { return };
    moto.set_auth(true);
    let p = Project::new(&[]);
    let out = moto
        .skyform(&p)
        .env("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
        .env("AWS_CONFIG_FILE", p.path().join("none"))
        .arg("check")
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("AWS rejected the credentials from environment"),
        "{err}"
    );
    assert!(err.contains("InvalidClientTokenId"), "{err}");
}

fn example_text() -> String {
    std::fs::read_to_string(example_dir("skypilot-iam").join("main.sky.hcl")).expect("example")
}

fn example_project() -> Project {
    Project::new(&[("main.sky.hcl", &example_text())])
}

/// The example for moto's IAM authorization mode. moto checks signatures against a body it
/// re-encodes itself, which spells a space `+` where the Rust SDK sent `%20`; so in this copy
/// the free-text values (descriptions, a tag) use dashes instead of spaces. Names, documents
/// and structure are unchanged.
fn example_project_for_auth() -> Project {
    let text: String = example_text()
        .lines()
        .map(|line| {
            let t = line.trim_start();
            match line.split_once('"') {
                Some((head, rest))
                    if t.starts_with("description") || t.starts_with("tags = { purpose") =>
                {
                    let (value, tail) = rest.split_once('"').unwrap_or((rest, ""));
                    format!("{head}\"{}\"{tail}\n", value.replace(' ', "-"))
                }
                _ => format!("{line}\n"),
            }
        })
        .collect();
    Project::new(&[("main.sky.hcl", &text)])
}

/// A user holding `doc` as its only policy, with an access key.
fn user_with_policy(moto: &Moto, name: &str, doc: &serde_json::Value) -> (String, String) {
    let iam = moto.iam();
    block_on(async {
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .expect("user");
        let arn = iam
            .create_policy()
            .policy_name(format!("{name}-policy"))
            .policy_document(doc.to_string())
            .send()
            .await
            .expect("policy")
            .policy
            .and_then(|p| p.arn)
            .expect("arn");
        iam.attach_user_policy()
            .user_name(name)
            .policy_arn(arn)
            .send()
            .await
            .expect("attach");
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("key")
            .access_key
            .expect("key");
        (key.access_key_id, key.secret_access_key)
    })
}

fn run_as(moto: &Moto, p: &Project, key: &(String, String), args: &[&str]) -> std::process::Output {
    moto.skyform(p)
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .args(args)
        .output()
        .expect("run skyform")
}

/// moto matches IAM resource ARNs only for requests naming an existing role (`CreateRole`,
/// `CreatePolicy` and the like are checked against `*`), so the policy a moto user holds keeps
/// the printed actions exactly and widens each statement's resources to `*`. The ARNs
/// themselves are checked separately against what IAM reports for the created objects.
fn widened(
    doc: &serde_json::Value,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| keep(s))
        .map(|s| {
            let mut s = s.clone();
            s["Resource"] = "*".into();
            s
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

fn actions(statement: &serde_json::Value) -> Vec<String> {
    match &statement["Action"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(v) => v
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// Whether some statement allows `action` on `arn`.
fn allows(doc: &serde_json::Value, action: &str, arn: &str) -> bool {
    doc["Statement"].as_array().into_iter().flatten().any(|s| {
        let resources: Vec<String> = match &s["Resource"] {
            serde_json::Value::String(r) => vec![r.clone()],
            serde_json::Value::Array(v) => v
                .iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect(),
            _ => vec![],
        };
        actions(s).iter().any(|a| a == action)
            && resources
                .iter()
                .any(|r| skyform::aws::permissions::glob(r, arn))
    })
}

#[test]
fn a_user_holding_the_printed_policy_can_apply_and_destroy_and_less_is_denied_per_address() {
    let Some(moto) = Moto::start() else { return };
    let p = example_project_for_auth();
    let out = moto.run(&p, &["policy", "--scope", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("policy JSON");
    assert_eq!(doc["Version"], "2012-10-17");
    for s in doc["Statement"].as_array().expect("statements") {
        for a in actions(s) {
            assert!(!a.contains('*'), "wildcard action {a}");
        }
    }
    assert!(allows(
        &doc,
        "iam:PassRole",
        "arn:aws:iam::123456789012:role/skypilot-v1"
    ));

    let full = user_with_policy(&moto, "operator", &widened(&doc, |_| true));
    // The same policy without the statements about instance profiles.
    let without_profiles = widened(&doc, |s| {
        !s["Sid"]
            .as_str()
            .unwrap_or_default()
            .starts_with("InstanceProfiles")
    });
    let partial = user_with_policy(&moto, "partial", &without_profiles);
    moto.set_auth(true);

    let out = run_as(&moto, &p, &full, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The printed ARNs name exactly the objects that apply created, as IAM reports them.
    moto.set_auth(false);
    let iam = moto.iam();
    let (role, policy, user, profile) = block_on(async {
        let role = iam
            .get_role()
            .role_name("skypilot-v1")
            .send()
            .await
            .expect("role");
        let user = iam
            .get_user()
            .user_name("skypilot-launcher")
            .send()
            .await
            .expect("user");
        let profile = iam
            .get_instance_profile()
            .instance_profile_name("skypilot-v1")
            .send()
            .await
            .expect("profile");
        (
            role.role.expect("role").arn,
            "arn:aws:iam::123456789012:policy/minimal-skypilot-policy".to_string(),
            user.user.expect("user").arn,
            profile.instance_profile.expect("profile").arn,
        )
    });
    let policy_exists = block_on(iam.get_policy().policy_arn(&policy).send()).is_ok();
    assert!(policy_exists);
    for (action, arn) in [
        ("iam:CreateRole", &role),
        ("iam:DeleteRole", &role),
        ("iam:CreatePolicy", &policy),
        ("iam:CreateUser", &user),
        ("iam:CreateAccessKey", &user),
        ("iam:CreateInstanceProfile", &profile),
        ("iam:AddRoleToInstanceProfile", &profile),
    ] {
        assert!(
            allows(&doc, action, arn),
            "{action} on {arn} is not in the policy"
        );
    }
    moto.set_auth(true);

    let out = run_as(&moto, &p, &full, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    moto.set_auth(false);
    assert!(block_on(iam.get_role().role_name("skypilot-v1").send()).is_err());
    assert!(block_on(iam.get_user().user_name("skypilot-launcher").send()).is_err());
    moto.set_auth(true);

    // Without the instance-profile statements, only that address fails, with AccessDenied.
    let q = example_project_for_auth();
    let out = run_as(&moto, &q, &partial, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(
        err.contains("Error: aws_iam_instance_profile.skypilot: AccessDenied"),
        "{err}"
    );
    assert!(!err.contains("Error: aws_iam_role.skypilot"), "{err}");

    moto.set_auth(false);
    block_on(async {
        assert!(iam.get_role().role_name("skypilot-v1").send().await.is_ok());
        assert!(iam
            .get_instance_profile()
            .instance_profile_name("skypilot-v1")
            .send()
            .await
            .is_err());
    });
}

#[test]
fn policy_with_a_name_prints_a_resource_block_that_validates() {
    let p = example_project();
    let out = p
        .offline()
        .args([
            "policy",
            "--account",
            "210987654321",
            "--name",
            "skyform-operator",
        ])
        .output()
        .expect("run");
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.starts_with("resource \"aws_iam_policy\" \"skyform-operator\" {"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:iam::210987654321:role/skypilot-v1"),
        "{text}"
    );
    let q = Project::new(&[("operator.sky.hcl", &text)]);
    let out = q.offline().arg("validate").output().expect("run");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn policy_scopes_differ_in_what_they_allow() {
    let p = example_project();
    let run = |args: &[&str]| -> serde_json::Value {
        let out = p
            .offline()
            .args(["policy", "--account", "123456789012"])
            .args(args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).expect("json")
    };
    let role = "arn:aws:iam::123456789012:role/skypilot-v1";
    let plan = run(&["--scope", "plan"]);
    assert!(allows(&plan, "iam:ListRoles", "*"));
    assert!(!allows(&plan, "iam:CreateRole", role));
    let apply = run(&[]);
    assert!(allows(&apply, "iam:CreateRole", role));
    assert!(!allows(&apply, "iam:DeleteRole", role));
    let destroy = run(&["--destroy"]);
    assert!(allows(&destroy, "iam:DeleteRole", role));
    let out = p
        .offline()
        .args(["policy", "--account", "12"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn another_account_cannot_write_to_the_state_and_plan_names_the_owner() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"owned\"\n}\n",
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    p.write(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"u\" {\n  name = \"owned\"\n  tags = { team = \"b\" }\n}\n",
    );
    let (key, secret, token) = moto.assume_role("arn:aws:iam::111111111111:role/admin");
    let as_other = |args: &[&str]| {
        moto.skyform(&p)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
            .args(args)
            .output()
            .expect("run")
    };
    let out = as_other(&["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("the state belongs to account 123456789012"));

    moto.clear_calls();
    let out = as_other(&["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("123456789012") && err.contains("111111111111"),
        "{err}"
    );
    assert_eq!(moto.writes(), Vec::<String>::new());

    let out = as_other(&["check", "-v"]);
    assert!(
        stdout(&out).contains("NOT the current account 111111111111"),
        "{}",
        stdout(&out)
    );

    // The owner itself still applies.
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn check_verbose_lists_the_actions_of_the_next_apply_and_says_when_simulation_is_unavailable() {
    let Some(moto) = Moto::start() else { return };
    let p = example_project();
    let out = moto
        .skyform(&p)
        .env("AWS_CONFIG_FILE", p.path().join("none"))
        .args(["check", "-v"])
        .output()
        .expect("run");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("no state yet"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("iam:CreateRole "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with("arn:aws:iam::123456789012:role/skypilot-v1"),
        "{line}"
    );
    // Nothing exists yet, so nothing is deleted.
    assert!(!text.contains("iam:DeleteRole"), "{text}");
    // moto answers SimulatePrincipalPolicy with HTTP 500.
    assert!(text.contains("Simulation is unavailable"), "{text}");
    assert!(
        moto.writes().iter().all(|a| a == "SimulatePrincipalPolicy"),
        "{:?}",
        moto.writes()
    );
}

#[test]
fn policy_grants_the_spot_service_linked_role_under_its_condition_only_for_spot() {
    let cluster = |spot: bool| {
        format!(
            "resource \"aws_cluster\" \"c\" {{\n  name          = \"c\"\n  instance_type = \"t3.micro\"\n  image_id      = \"ami-12c6146b\"\n  use_spot      = {spot}\n}}\n"
        )
    };
    let statements = |config: &str| -> Vec<serde_json::Value> {
        let p = Project::new(&[("main.sky.hcl", config)]);
        let out = p
            .offline()
            .args(["policy", "--account", ACCOUNT])
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        doc["Statement"].as_array().expect("statements").clone()
    };
    let wanted = serde_json::json!({
        "Effect": "Allow",
        "Action": "iam:CreateServiceLinkedRole",
        "Resource": "*",
        "Condition": {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}
    });
    let without_sid = |s: &serde_json::Value| {
        let mut s = s.clone();
        s.as_object_mut().expect("object").remove("Sid");
        s
    };
    let spot = statements(&cluster(true));
    assert!(spot.iter().any(|s| without_sid(s) == wanted), "{spot:?}");
    // The condition is not merged into the other account-wide statement.
    assert!(
        spot.iter()
            .filter(|s| s.get("Condition").is_none())
            .all(|s| !s.to_string().contains("CreateServiceLinkedRole")),
        "{spot:?}"
    );
    let on_demand = statements(&cluster(false));
    assert!(
        on_demand
            .iter()
            .all(|s| !s.to_string().contains("CreateServiceLinkedRole")),
        "{on_demand:?}"
    );
    let instance = statements(
        "resource \"aws_instance\" \"i\" {\n  ami           = \"ami-12c6146b\"\n  instance_type = \"t3.micro\"\n  instance_market_options {\n    market_type = \"spot\"\n  }\n}\n",
    );
    assert!(
        instance.iter().any(|s| without_sid(s) == wanted),
        "{instance:?}"
    );
}

/// An example for moto's IAM authorization mode, whose signature check fails on a request
/// body holding a space (see `example_project_for_auth`): free-text `description` values use
/// dashes instead of spaces, the AMI name filter a `*`, and the policy documents are sent as
/// `minified_json` (the same document as `json`, without its layout's spaces).
fn example_for_auth(name: &str) -> Project {
    let text = std::fs::read_to_string(example_dir(name).join("main.sky.hcl"))
        .expect("example")
        .replace("\"Deep Learning*Ubuntu*\"", "\"Deep*Learning*Ubuntu*\"")
        .replace("_from_ec2.json", "_from_ec2.minified_json")
        .replace(
            "policy_document.minimal.json",
            "policy_document.minimal.minified_json",
        );
    let text: String = text
        .lines()
        .map(|line| match line.split_once('"') {
            Some((head, rest)) if line.trim_start().starts_with("description") => {
                let (value, tail) = rest.split_once('"').unwrap_or((rest, ""));
                format!("{head}\"{}\"{tail}\n", value.replace(' ', "-"))
            }
            _ => format!("{line}\n"),
        })
        .collect();
    Project::new(&[("main.sky.hcl", &text)])
}

#[test]
fn the_printed_policies_of_the_network_and_cluster_examples_are_enough_to_apply_and_destroy_them() {
    let Some(moto) = Moto::start() else { return };
    // moto lacks placement groups: the proxy answers them (tests/placement_groups.rs).
    let emulation = crate::placement_groups::emulate(&moto);
    let vpc = example_for_auth("skypilot-vpc");
    let cluster = example_for_auth("skypilot-cluster");
    let mut statements = Vec::new();
    for (p, prefix) in [(&vpc, "Network"), (&cluster, "Cluster")] {
        let out = moto.run(p, &["policy", "--scope", "all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("policy JSON");
        for s in doc["Statement"].as_array().expect("statements") {
            for a in actions(s) {
                assert!(!a.contains('*'), "wildcard action {a}");
            }
            // One policy holds both, and a policy's Sids must be unique.
            let mut s = s.clone();
            s["Sid"] = format!("{prefix}{}", s["Sid"].as_str().unwrap_or_default()).into();
            statements.push(s);
        }
    }
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    // The cluster asks for spot first, so the conditioned statement for the spot service-linked
    // role is printed, and only for spot.
    let linked: Vec<&serde_json::Value> = statements
        .iter()
        .filter(|s| {
            actions(s)
                .iter()
                .any(|a| a == "iam:CreateServiceLinkedRole")
        })
        .collect();
    assert_eq!(linked.len(), 1, "{statements:?}");
    assert_eq!(
        linked[0]["Condition"]["StringEquals"]["iam:AWSServiceName"],
        "spot.amazonaws.com"
    );
    for (action, arn) in [
        (
            "ec2:CreateNatGateway",
            "arn:aws:ec2:us-east-1:123456789012:natgateway/nat-1",
        ),
        (
            "ec2:AllocateAddress",
            "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-1",
        ),
        (
            "ec2:CreateRoute",
            "arn:aws:ec2:us-east-1:123456789012:route-table/rtb-1",
        ),
        (
            "ec2:CreatePlacementGroup",
            "arn:aws:ec2:us-east-1:123456789012:placement-group/train",
        ),
        (
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:123456789012:placement-group/train",
        ),
        (
            "iam:CreatePolicy",
            "arn:aws:iam::123456789012:policy/minimal-skypilot-policy",
        ),
    ] {
        assert!(
            allows(&doc, action, arn),
            "{action} on {arn} is not in the policy"
        );
    }
    let operator = user_with_policy(&moto, "operator", &widened(&doc, |_| true));
    moto.set_auth(true);
    for p in [&vpc, &cluster] {
        let out = run_as(&moto, p, &operator, &["apply", "--auto-approve"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    moto.set_auth(false);
    let running = block_on(
        moto.ec2()
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:cluster")
                    .values("train")
                    .build(),
            )
            .send(),
    )
    .expect("instances")
    .reservations()
    .iter()
    .map(|r| r.instances().len())
    .sum::<usize>();
    assert_eq!(running, 2);
    assert!(emulation
        .lock()
        .expect("emulation")
        .groups
        .contains_key("train"));
    moto.set_auth(true);
    for p in [&cluster, &vpc] {
        let out = run_as(&moto, p, &operator, &["destroy", "--auto-approve"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    moto.set_auth(false);
    assert!(emulation.lock().expect("emulation").groups.is_empty());
    assert!(block_on(moto.iam().get_role().role_name("skypilot-v1").send()).is_err());
}
