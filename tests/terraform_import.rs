//! `skyform state import-terraform`: a Terraform state (format version 4, written here in the
//! shape terraform-provider-aws gives it) describing objects that exist in moto is taken over,
//! and `plan` on the unchanged `.tf` files then has nothing to do.

use serde_json::json;

use crate::instances::iam_users;
use crate::support::{block_on, stderr, stdout, Moto, Project};

const MAIN_TF: &str = r#"
resource "aws_iam_role" "app" {
  name = "tf-app"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_policy" "read" {
  name = "tf-read"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "s3:GetObject", Resource = "*" }]
  })
}

resource "aws_iam_role_policy_attachment" "app_read" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.read.arn
}

resource "aws_iam_instance_profile" "app" {
  name = "tf-app"
  role = aws_iam_role.app.name
}

resource "aws_iam_user" "ops" {
  count = 2
  name  = "tf-ops-${count.index}"
}

resource "aws_iam_access_key" "ci" {
  user = aws_iam_user.ops[0].name
}

resource "aws_iam_user" "svc" {
  for_each = toset(["a", "b"])
  name     = "tf-svc-${each.key}"
}

resource "aws_vpc" "main" {
  cidr_block = "10.40.0.0/16"
  tags       = { Name = "tf-main" }
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.40.1.0/24"
}

resource "aws_security_group" "web" {
  name        = "tf-web"
  description = "web"
  vpc_id      = aws_vpc.main.id
}

module "team" {
  source = "./team"
}

output "vpc_id" {
  value = aws_vpc.main.id
}

output "ci_secret" {
  value     = aws_iam_access_key.ci.secret
  sensitive = true
}
"#;

const TEAM_TF: &str = r#"
resource "aws_iam_user" "lead" {
  name = "tf-team-lead"
}
"#;

/// A project holding the configuration above (the root and the `team` module).
fn project() -> Project {
    let p = Project::new(&[("main.tf", MAIN_TF)]);
    std::fs::create_dir_all(p.path().join("team")).expect("mkdir");
    p.write("team/main.tf", TEAM_TF);
    p
}

const AWS: &str = r#"provider["registry.terraform.io/hashicorp/aws"]"#;

/// One resource of a version 4 state, as Terraform writes it.
fn resource(
    module: Option<&str>,
    type_name: &str,
    name: &str,
    instances: Vec<serde_json::Value>,
) -> serde_json::Value {
    let mut r = json!({"mode": "managed", "type": type_name, "name": name, "provider": AWS});
    r["instances"] = serde_json::Value::Array(instances);
    if let Some(m) = module {
        r["module"] = json!(m);
    }
    r
}

fn instance(key: Option<serde_json::Value>, attributes: serde_json::Value) -> serde_json::Value {
    let mut i = json!({"schema_version": 0, "sensitive_attributes": [], "private": "bnVsbA=="});
    i["attributes"] = attributes;
    if let Some(k) = key {
        i["index_key"] = k;
    }
    i
}

fn user(name: &str) -> serde_json::Value {
    json!({
        "arn": format!("arn:aws:iam::123456789012:user/{name}"), "force_destroy": false,
        "id": name, "name": name, "path": "/", "permissions_boundary": null, "tags": null,
        "tags_all": {}, "unique_id": "AIDAEXAMPLE"
    })
}

/// The ids of the objects a Terraform apply would have recorded: looked up in moto.
struct Ids {
    vpc: String,
    subnet: String,
    sg: String,
    key: String,
    secret: String,
}

fn ids(moto: &Moto, secret: String) -> Ids {
    let ec2 = moto.ec2();
    let f = |name: &str, value: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .values(value)
            .build()
    };
    let vpcs = block_on(
        ec2.describe_vpcs()
            .filters(f("cidr", "10.40.0.0/16"))
            .send(),
    )
    .expect("vpcs");
    let vpc = vpcs.vpcs()[0].vpc_id().expect("vpc id").to_string();
    let subnets = block_on(
        ec2.describe_subnets()
            .filters(f("cidr-block", "10.40.1.0/24"))
            .send(),
    )
    .expect("subnets");
    let subnet = subnets.subnets()[0]
        .subnet_id()
        .expect("subnet id")
        .to_string();
    let groups = block_on(
        ec2.describe_security_groups()
            .filters(f("group-name", "tf-web"))
            .send(),
    )
    .expect("groups");
    let sg = groups.security_groups()[0]
        .group_id()
        .expect("sg id")
        .to_string();
    let keys = block_on(moto.iam().list_access_keys().user_name("tf-ops-0").send()).expect("keys");
    let key = keys.access_key_metadata()[0]
        .access_key_id()
        .expect("key id")
        .to_string();
    Ids {
        vpc,
        subnet,
        sg,
        key,
        secret,
    }
}

/// A version 4 state of the configuration above, plus a bucket skyform does not support and a
/// data source, as Terraform 1.9 with terraform-provider-aws 5 writes it.
fn tfstate(ids: &Ids) -> String {
    let policy_arn = "arn:aws:iam::123456789012:policy/tf-read";
    let trust = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"}}],"Version":"2012-10-17"}"#;
    let state = json!({
        "version": 4,
        "terraform_version": "1.9.8",
        "serial": 14,
        "lineage": "8d0c5a43-5e2b-0f1e-7a9c-3b6a4e2d1f00",
        "outputs": {"vpc_id": {"value": ids.vpc, "type": "string"},
                    "ci_secret": {"value": ids.secret, "type": "string", "sensitive": true}},
        "resources": [
            {"mode": "data", "type": "aws_caller_identity", "name": "me", "provider": AWS,
             "instances": [{"schema_version": 0, "attributes": {"account_id": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/moto", "id": "123456789012",
                "user_id": "AKIAIOSFODNN7EXAMPLE"}, "sensitive_attributes": []}]},
            resource(None, "aws_iam_role", "app", vec![instance(None, json!({
                "arn": "arn:aws:iam::123456789012:role/tf-app", "assume_role_policy": trust,
                "create_date": "2024-05-02T09:14:11Z", "description": "",
                "force_detach_policies": false, "id": "tf-app", "inline_policy": [],
                "managed_policy_arns": [policy_arn], "max_session_duration": 3600,
                "name": "tf-app", "name_prefix": "", "path": "/", "permissions_boundary": "",
                "tags": null, "tags_all": {}, "unique_id": "AROAEXAMPLE"}))]),
            resource(None, "aws_iam_policy", "read", vec![instance(None, json!({
                "arn": policy_arn, "attachment_count": 1, "description": "", "id": policy_arn,
                "name": "tf-read", "name_prefix": "", "path": "/",
                "policy": r#"{"Statement":[{"Action":"s3:GetObject","Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#,
                "policy_id": "ANPAEXAMPLE", "tags": null, "tags_all": {}}))]),
            resource(None, "aws_iam_role_policy_attachment", "app_read", vec![json!({
                "schema_version": 0,
                "attributes": {"id": "tf-app-20240502091412345600000001",
                               "policy_arn": policy_arn, "role": "tf-app"},
                "sensitive_attributes": [], "private": "bnVsbA==",
                "dependencies": ["aws_iam_policy.read", "aws_iam_role.app"]})]),
            resource(None, "aws_iam_instance_profile", "app", vec![instance(None, json!({
                "arn": "arn:aws:iam::123456789012:instance-profile/tf-app",
                "create_date": "2024-05-02T09:14:12Z", "id": "tf-app", "name": "tf-app",
                "name_prefix": "", "path": "/", "role": "tf-app", "tags": null, "tags_all": {},
                "unique_id": "AIPAEXAMPLE"}))]),
            resource(None, "aws_iam_user", "ops", vec![
                instance(Some(json!(0)), user("tf-ops-0")),
                instance(Some(json!(1)), user("tf-ops-1")),
            ]),
            resource(None, "aws_iam_access_key", "ci", vec![json!({
                "schema_version": 0,
                "attributes": {"create_date": "2024-05-02T09:14:13Z", "encrypted_secret": null,
                    "encrypted_ses_smtp_password_v4": null, "id": ids.key,
                    "key_fingerprint": null, "pgp_key": null, "secret": ids.secret,
                    "ses_smtp_password_v4": "BEXAMPLE", "status": "Active", "user": "tf-ops-0"},
                "sensitive_attributes": [[{"type": "get_attr", "value": "secret"}],
                                         [{"type": "get_attr", "value": "ses_smtp_password_v4"}]],
                "private": "bnVsbA==", "dependencies": ["aws_iam_user.ops"]})]),
            resource(None, "aws_iam_user", "svc", vec![
                instance(Some(json!("a")), user("tf-svc-a")),
                instance(Some(json!("b")), user("tf-svc-b")),
            ]),
            resource(None, "aws_vpc", "main", vec![instance(None, json!({
                "arn": format!("arn:aws:ec2:us-east-1:123456789012:vpc/{}", ids.vpc),
                "assign_generated_ipv6_cidr_block": false, "cidr_block": "10.40.0.0/16",
                "default_network_acl_id": "acl-0example", "default_route_table_id": "rtb-0example",
                "default_security_group_id": "sg-0example", "dhcp_options_id": "dopt-0example",
                "enable_dns_hostnames": false, "enable_dns_support": true,
                "enable_network_address_usage_metrics": false, "id": ids.vpc,
                "instance_tenancy": "default", "ipv4_ipam_pool_id": null,
                "ipv4_netmask_length": null, "ipv6_association_id": "", "ipv6_cidr_block": "",
                "main_route_table_id": "rtb-0example", "owner_id": "123456789012",
                "tags": {"Name": "tf-main"}, "tags_all": {"Name": "tf-main"}}))]),
            resource(None, "aws_subnet", "a", vec![json!({
                "schema_version": 1,
                "attributes": {"arn": format!("arn:aws:ec2:us-east-1:123456789012:subnet/{}", ids.subnet),
                    "assign_ipv6_address_on_creation": false, "availability_zone": "us-east-1a",
                    "cidr_block": "10.40.1.0/24", "id": ids.subnet,
                    "map_public_ip_on_launch": false, "tags": null, "tags_all": {},
                    "timeouts": null, "vpc_id": ids.vpc},
                "sensitive_attributes": [], "private": "bnVsbA==",
                "dependencies": ["aws_vpc.main"]})]),
            resource(None, "aws_security_group", "web", vec![json!({
                "schema_version": 1,
                "attributes": {"arn": format!("arn:aws:ec2:us-east-1:123456789012:security-group/{}", ids.sg),
                    "description": "web",
                    "egress": [{"cidr_blocks": ["0.0.0.0/0"], "description": "", "from_port": 0,
                                "ipv6_cidr_blocks": [], "prefix_list_ids": [], "protocol": "-1",
                                "security_groups": [], "self": false, "to_port": 0}],
                    "id": ids.sg, "ingress": [], "name": "tf-web", "name_prefix": "",
                    "owner_id": "123456789012", "revoke_rules_on_delete": false, "tags": null,
                    "tags_all": {}, "timeouts": null, "vpc_id": ids.vpc},
                "sensitive_attributes": [], "private": "bnVsbA==",
                "dependencies": ["aws_vpc.main"]})]),
            resource(Some("module.team"), "aws_iam_user", "lead",
                     vec![instance(None, user("tf-team-lead"))]),
            resource(None, "aws_s3_bucket", "logs", vec![instance(None, json!({
                "bucket": "tf-logs", "id": "tf-logs",
                "arn": "arn:aws:s3:::tf-logs", "force_destroy": false}))]),
        ],
        "check_results": null
    });
    serde_json::to_string_pretty(&state).expect("json")
}

#[test]
fn a_terraform_state_is_taken_over_and_the_next_plan_has_no_changes() {
    let Some(moto) = Moto::start() else { return };
    // What a `terraform apply` of this configuration would have made: made here by an apply
    // in another directory, whose state is then thrown away.
    let made = project();
    let out = moto.run(&made, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let secret = stdout(&moto.run(&made, &["output", "--raw", "ci_secret"]))
        .trim()
        .to_string();
    assert!(!secret.is_empty());
    drop(made);
    let before = iam_users(&moto);

    let p = project();
    let tf = p.path().join("terraform.tfstate");
    std::fs::write(&tf, tfstate(&ids(&moto, secret.clone()))).expect("tfstate");
    let bytes = std::fs::read(&tf).expect("read");
    let mtime = std::fs::metadata(&tf)
        .expect("meta")
        .modified()
        .expect("mtime");
    moto.clear_calls();
    let out = moto.run(&p, &["state", "import-terraform", "terraform.tfstate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(moto.writes(), Vec::<String>::new(), "import only reads AWS");
    assert!(
        stdout(&out).contains("Imported 13 resource(s) and 2 output(s)"),
        "{}",
        stdout(&out)
    );
    let warned = stderr(&out);
    assert!(
        warned.contains("aws_s3_bucket.logs: skyform does not support this type"),
        "{warned}"
    );
    assert!(warned.contains("data.aws_caller_identity.me"), "{warned}");

    // The Terraform state file is only read.
    assert_eq!(std::fs::read(&tf).expect("read"), bytes);
    assert_eq!(
        std::fs::metadata(&tf)
            .expect("meta")
            .modified()
            .expect("mtime"),
        mtime
    );

    let listed = stdout(&moto.run(&p, &["state", "list"]));
    for addr in [
        "aws_iam_role_policy_attachment.app_read",
        "aws_iam_user.ops[1]",
        r#"aws_iam_user.svc["b"]"#,
        "module.team.aws_iam_user.lead",
        "aws_security_group.web",
    ] {
        assert!(
            listed.lines().any(|l| l == addr),
            "{addr} not in:\n{listed}"
        );
    }
    assert!(!listed.contains("aws_s3_bucket"), "{listed}");
    let shown = stdout(&moto.run(
        &p,
        &["state", "show", "aws_iam_role_policy_attachment.app_read"],
    ));
    assert!(
        shown.contains("tf-app/arn:aws:iam::123456789012:policy/tf-read"),
        "the attachment carries skyform's id: {shown}"
    );
    let output = moto.run(&p, &["output", "--raw", "vpc_id"]);
    assert!(stdout(&output).starts_with("vpc-"), "{}", stdout(&output));

    // The key's secret, which AWS never shows again, came over from the Terraform state.
    let out = moto.run(&p, &["output", "--raw", "ci_secret"]);
    assert_eq!(stdout(&out).trim(), secret);
    moto.assert_plan_clean(&p);
    // An apply changes nothing in AWS either: no object was made twice.
    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(moto.writes(), Vec::<String>::new());
    assert_eq!(iam_users(&moto), before);

    // A second import into a state that now holds resources is refused.
    let out = moto.run(&p, &["state", "import-terraform", "terraform.tfstate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already holds 13 resource(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_object_gone_from_aws_imports_nothing_at_all() {
    let Some(moto) = Moto::start() else { return };
    block_on(moto.iam().create_user().user_name("tf-ops-0").send()).expect("user");
    let p = Project::new(&[(
        "main.tf",
        "resource \"aws_iam_user\" \"ops\" {\n  count = 2\n  name  = \"tf-ops-${count.index}\"\n}\n",
    )]);
    let state = json!({
        "version": 4, "terraform_version": "1.9.8", "serial": 3,
        "lineage": "0b7e9f7a-51a4-4c59-9a55-0f3c1d2e4b6a", "outputs": {},
        "resources": [resource(None, "aws_iam_user", "ops", vec![
            instance(Some(json!(0)), user("tf-ops-0")),
            instance(Some(json!(1)), user("tf-ops-1")),
        ])]
    });
    p.write("terraform.tfstate", &state.to_string());
    let out = moto.run(&p, &["state", "import-terraform", "terraform.tfstate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "aws_iam_user.ops[1] (id \"tf-ops-1\") from the Terraform state does not exist in AWS"
        ),
        "{}",
        stderr(&out)
    );
    let listed = moto.run(&p, &["state", "list"]);
    assert_eq!(stdout(&listed), "", "nothing was half-imported");
}

#[test]
fn a_malformed_or_version_3_terraform_state_is_refused_and_no_state_is_written() {
    let v3 = r#"{"version": 3, "terraform_version": "0.11.14", "serial": 2,
        "lineage": "2a3d9b0e-1f4c-4e7b-8c6d-5a9f0e1b2c3d",
        "modules": [{"path": ["root"], "outputs": {}, "resources": {}, "depends_on": []}]}"#;
    for (text, says) in [
        (v3, "has format version 3; only version 4"),
        ("{\"version\": 4, \"resources\": [", "not valid JSON"),
        (
            "{\"version\": 4, \"resources\": [{\"mode\": \"managed\"}]}",
            "does not have the version 4 shape",
        ),
    ] {
        let p = Project::new(&[("main.tf", TEAM_TF), ("terraform.tfstate", text)]);
        let out = p
            .offline()
            .args(["state", "import-terraform", "terraform.tfstate"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert!(
            !p.path().join(".skyform").exists(),
            "no state is written for a refused import"
        );
        assert_eq!(
            std::fs::read_to_string(p.path().join("terraform.tfstate")).expect("read"),
            text
        );
    }
    let p = Project::new(&[("main.tf", TEAM_TF)]);
    let out = p
        .offline()
        .args(["state", "import-terraform", "missing.tfstate"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read the Terraform state missing.tfstate"),
        "{}",
        stderr(&out)
    );
}

/// What `terraform apply` of `web` left: an instance launched with a start-up script, and a
/// state that records only the script's SHA-1, as terraform-provider-aws does.
const WEB_TF: &str = r##"
resource "aws_instance" "web" {
  ami           = "ami-12c6146b"
  instance_type = "t3.micro"
  user_data     = "#!/bin/bash\necho hello from terraform\n"
}
"##;

#[test]
fn an_instance_whose_user_data_terraform_hashed_is_read_back_and_plans_clean() {
    let Some(moto) = Moto::start() else { return };
    let script = "#!/bin/bash\necho hello from terraform\n";
    let launched = block_on(
        moto.ec2()
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .user_data(aws_smithy_types::base64::encode(script))
            .send(),
    )
    .expect("run instances");
    let id = launched.instances()[0]
        .instance_id()
        .expect("id")
        .to_string();
    let p = Project::new(&[("main.tf", WEB_TF)]);
    let state = json!({
        "version": 4, "terraform_version": "1.9.8", "serial": 1,
        "lineage": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b", "outputs": {},
        "resources": [resource(None, "aws_instance", "web", vec![instance(None, json!({
            "id": id, "ami": "ami-12c6146b", "instance_type": "t3.micro",
            // sha1sum of the script, which is all Terraform keeps of it.
            "user_data": "b22c46226fd7eab512e7a5c20126359e66839946",
            "user_data_base64": null, "user_data_replace_on_change": false,
            "disable_api_termination": false, "instance_initiated_shutdown_behavior": "stop",
            "monitoring": false, "tenancy": "default", "tags": null, "tags_all": {}
        }))])]
    });
    p.write("terraform.tfstate", &state.to_string());
    let out = moto.run(&p, &["state", "import-terraform", "terraform.tfstate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_instance.web"]));
    assert!(shown.contains("echo hello from terraform"), "{shown}");
    assert!(!shown.contains("b22c46226fd7"), "{shown}");
    moto.assert_plan_clean(&p);
}
