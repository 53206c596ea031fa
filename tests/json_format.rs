//! Terraform's JSON formats against moto: the plan in full (`variables`, `configuration`,
//! `prior_state`, `timestamp`, `terraform_version`), from `plan --json` and from a saved plan,
//! and `show --json` of the state, which reads the state only. Values are checked against what
//! the IAM API says, and "no AWS call" is counted by the recording proxy.

use crate::plan_secrets::{applied_with_a_key, assert_no_secret, pw, KEYED, PASSWORD};
use crate::review_workflow::plan_file;
use crate::support::{block_on, stderr, stdout, Moto, Project};
use serde_json::Value as Json;

fn parsed(out: &std::process::Output) -> Json {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).expect("JSON")
}

/// The resource objects of a `values` document's root module, by address.
fn resource<'a>(values: &'a Json, addr: &str) -> &'a Json {
    values["root_module"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == addr))
        .unwrap_or_else(|| panic!("{addr} in {values:#}"))
}

#[test]
fn show_json_prints_the_state_as_terraform_values_without_secrets_or_aws_calls() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", KEYED)]);
    let secret = applied_with_a_key(&moto, &p);
    let db = p.path().join(".skyform").join("state.db");
    let before = std::fs::read(&db).expect("state");
    moto.clear_calls();

    let out = moto.run(&p, &["show", "--json"]);
    let doc = parsed(&out);
    assert!(
        moto.calls.lock().expect("calls").is_empty(),
        "show --json calls AWS: {:?}",
        moto.calls.lock().expect("calls")
    );
    assert_eq!(
        std::fs::read(&db).expect("state"),
        before,
        "the state is unchanged"
    );
    assert_no_secret("show --json", &stdout(&out), &[PASSWORD, &secret]);
    assert_eq!(doc["format_version"], "1.2");
    assert_eq!(doc["terraform_version"], "1.9.0");

    let user = resource(&doc["values"], "aws_iam_user.u");
    let live = block_on(moto.iam().get_user().user_name("secret-holder").send()).expect("user");
    let arn = live.user().map(|u| u.arn().to_string());
    assert_eq!(user["values"]["arn"].as_str().map(String::from), arn);
    assert_eq!(user["mode"], "managed");
    assert_eq!(user["provider_name"], "registry.terraform.io/hashicorp/aws");
    // The tags hold the sensitive variable: null, and marked.
    assert_eq!(user["values"]["tags"], Json::Null, "{user:#}");
    assert_eq!(user["sensitive_values"]["tags"], true, "{user:#}");
    let key = resource(&doc["values"], "aws_iam_access_key.k");
    let live_keys = block_on(
        moto.iam()
            .list_access_keys()
            .user_name("secret-holder")
            .send(),
    )
    .expect("keys");
    assert_eq!(
        key["values"]["id"].as_str(),
        live_keys.access_key_metadata()[0].access_key_id()
    );
    assert_eq!(key["values"]["secret"], Json::Null);
    let output = &doc["values"]["outputs"]["key_secret"];
    assert_eq!(output["sensitive"], true);
    assert_eq!(output["value"], Json::Null);
}

#[test]
fn show_without_a_plan_file_or_json_is_refused() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", KEYED)]);
    let out = moto.run(&p, &["show"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("show needs a PLANFILE"),
        "{}",
        stderr(&out)
    );
    assert!(!p.path().join(".skyform").exists(), "nothing written");
}

const CONFIGURED: &str = r#"
variable "team" {
  default = "blue"
}

variable "db_password" {
  sensitive = true
}

resource "aws_iam_user" "u" {
  count = 2
  name  = "json-${var.team}-${count.index}"
  path  = "/json/"
  tags  = { db = var.db_password }
}

resource "aws_iam_access_key" "k" {
  user = aws_iam_user.u[0].name
}

output "first" {
  value = aws_iam_user.u[0].arn
}
"#;

/// What both `plan --json` and `show --json FILE` must say of `CONFIGURED` with `/json2/`.
fn assert_full_plan(doc: &Json, text: &str) {
    assert_no_secret("the JSON plan", text, &[PASSWORD]);
    assert_eq!(doc["terraform_version"], "1.9.0");
    assert_eq!(doc["format_version"], "1.2");
    let stamp = doc["timestamp"].as_str().expect("timestamp");
    humantime::parse_rfc3339(stamp).expect("an RFC 3339 timestamp");
    assert_eq!(doc["variables"]["team"]["value"], "blue");
    assert_eq!(
        doc["variables"]["db_password"],
        serde_json::json!({"value": null})
    );

    let config = &doc["configuration"];
    assert_eq!(
        config["provider_config"]["aws"]["full_name"],
        "registry.terraform.io/hashicorp/aws"
    );
    let root = &config["root_module"];
    let users = resource(config, "aws_iam_user.u");
    assert_eq!(users["provider_config_key"], "aws");
    assert_eq!(users["count_expression"]["constant_value"], 2);
    assert_eq!(users["expressions"]["path"]["constant_value"], "/json2/");
    assert_eq!(
        users["expressions"]["name"]["references"],
        serde_json::json!(["var.team", "count.index"])
    );
    let key = resource(config, "aws_iam_access_key.k");
    assert_eq!(
        key["expressions"]["user"]["references"],
        serde_json::json!([
            "aws_iam_user.u[0].name",
            "aws_iam_user.u[0]",
            "aws_iam_user.u"
        ])
    );
    assert_eq!(root["variables"]["team"]["default"], "blue");
    assert_eq!(root["variables"]["db_password"]["sensitive"], true);
    assert_eq!(
        root["outputs"]["first"]["expression"]["references"][0],
        "aws_iam_user.u[0].arn"
    );
    for key in ["resource_drift", "relevant_attributes", "resource_changes"] {
        assert!(doc[key].is_array(), "{key}");
    }
    assert_eq!(doc["applyable"], true);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["errored"], false);
}

#[test]
fn the_json_plan_holds_configuration_variables_and_prior_state_also_from_a_plan_file() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", CONFIGURED)]);
    let out = moto.run(&p, &["apply", "--auto-approve", "--var", &pw(PASSWORD)]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    p.write(
        "main.sky.hcl",
        &CONFIGURED.replace("\"/json/\"", "\"/json2/\""),
    );

    let out = moto.run(&p, &["plan", "--json", "--var", &pw(PASSWORD)]);
    let doc = parsed(&out);
    assert_full_plan(&doc, &stdout(&out));
    // The state before the plan, as AWS had it after the apply.
    let prior = &doc["prior_state"]["values"];
    let live = block_on(moto.iam().get_user().user_name("json-blue-0").send()).expect("user");
    assert_eq!(
        live.user().map(aws_sdk_iam::types::User::path),
        Some("/json/")
    );
    let before = resource(prior, "aws_iam_user.u[0]");
    assert_eq!(before["values"]["path"], "/json/");
    assert_eq!(before["index"], 0);
    assert_eq!(before["values"]["tags"], Json::Null);
    assert_eq!(
        doc["planned_values"]["outputs"]["first"]["sensitive"],
        false
    );

    let file = plan_file(&p);
    let out = moto.run(&p, &["plan", "--out", &file, "--var", &pw(PASSWORD)]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // Shown with no configuration at hand: all of it comes from the file.
    std::fs::remove_file(p.path().join("main.sky.hcl")).expect("remove");
    let out = moto.run(&p, &["show", "--json", &file]);
    let shown = parsed(&out);
    assert_full_plan(&shown, &stdout(&out));
    assert_eq!(shown["configuration"], doc["configuration"]);
}

#[test]
fn the_json_plan_of_a_module_configuration_has_its_calls_and_child_modules() {
    let Some(moto) = Moto::start() else { return };
    let p = crate::modules::example_tree("skypilot-modules");
    let doc = parsed(&moto.run(&p, &["plan", "--json", "--var", "image_id=ami-12c6146b"]));
    // configuration: the call, its source and for_each, and the module's own resources.
    let call = &doc["configuration"]["root_module"]["module_calls"]["vpc"];
    assert_eq!(call["source"], "./modules/vpc", "{call:#}");
    assert!(call["for_each_expression"]["references"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "var.networks")));
    let inner: Vec<&str> = call["module"]["resources"]
        .as_array()
        .expect("module resources")
        .iter()
        .filter_map(|r| r["address"].as_str())
        .collect();
    assert!(
        inner.iter().any(|a| a.ends_with("aws_subnet.this")),
        "{inner:?}"
    );
    // planned_values: each module instance is a child module holding its instances.
    let children = doc["planned_values"]["root_module"]["child_modules"]
        .as_array()
        .expect("child modules");
    let train = children
        .iter()
        .find(|c| c["address"] == "module.vpc[\"train\"]")
        .unwrap_or_else(|| panic!("module.vpc[\"train\"] in {children:#?}"));
    assert!(train["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .any(|r| r["address"] == "module.vpc[\"train\"].aws_subnet.this[\"b\"]"));
    assert!(doc["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["address"] == "module.vpc[\"serve\"].aws_vpc.this"
            && c["module_address"] == "module.vpc[\"serve\"]"));
}
