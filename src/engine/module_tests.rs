//! Local modules through plan and apply against the in-memory cloud: inputs, outputs,
//! `for_each` and `count` on calls, nested modules, module addresses in the state, and
//! diagnostics that name the file in the module.

use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::graph::Graph;
use crate::engine::plan::{Plan, PlanOptions, Workspace};
use crate::engine::tests::{apply_plan, plan_only};
use crate::lang::variables::{resolve, VarInputs};
use crate::state::MemoryState;

type Fake = FakeProvider<crate::aws::AwsProvider>;

const ROOT: &str = r#"
variable "envs" {
  default = { dev = "10.0.0.0/16", prod = "10.1.0.0/16" }
}

module "net" {
  source   = "./modules/net"
  for_each = var.envs
  name     = each.key
  cidr     = each.value
}

module "iam" {
  source = "./modules/iam"
  prefix = "app"
  count  = 1
}

output "vpc_ids" {
  value = { for k, m in module.net : k => m.vpc_id }
}

output "profile" {
  value = module.iam[0].profile_name
}
"#;

const NET: &str = r#"
variable "name" { type = string }
variable "cidr" { type = string }
variable "subnets" {
  type    = number
  default = 2
}

resource "aws_vpc" "this" {
  cidr_block = var.cidr
  tags       = { Name = var.name }
}

resource "aws_subnet" "s" {
  count      = var.subnets
  vpc_id     = aws_vpc.this.id
  cidr_block = cidrsubnet(var.cidr, 8, count.index)
}

output "vpc_id" { value = aws_vpc.this.id }
output "subnet_ids" { value = aws_subnet.s[*].id }
"#;

const IAM: &str = r#"
variable "prefix" { type = string }

resource "aws_iam_role" "r" {
  name               = "${var.prefix}-role"
  assume_role_policy = jsonencode({ Statement = [] })
}

module "profile" {
  source = "./profile"
  role   = aws_iam_role.r.name
}

output "profile_name" { value = module.profile.name }
"#;

const PROFILE: &str = r#"
variable "role" { type = string }

resource "aws_iam_instance_profile" "p" {
  name = "${var.role}-profile"
  role = var.role
}

output "name" { value = aws_iam_instance_profile.p.name }
"#;

/// A project directory with `files`, loaded and checked as the command line does.
fn project(
    files: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    Workspace,
    crate::lang::diagnostic::Diagnostics,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let (config, mut diags) =
        crate::lang::config::load(dir.path(), crate::aws::schemas::registry()).expect("load");
    diags.extend(crate::lang::validate::check(&config));
    let graph = Graph::build(&config);
    diags.extend(graph.cycles(&config));
    let (vars, d) = resolve(&config, &VarInputs::default(), true);
    diags.extend(d);
    let order = graph.order().unwrap_or_default();
    let ws = Workspace {
        config,
        graph,
        order,
        vars,
        files_read: crate::lang::functions::FilesRead::default(),
    };
    (dir, ws, diags)
}

fn modules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("main.tf", ROOT),
        ("modules/net/main.tf", NET),
        ("modules/iam/main.tf", IAM),
        ("modules/iam/profile/main.tf", PROFILE),
    ]
}

fn created(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .map(|c| c.addr.to_string())
        .collect()
}

#[test]
fn modules_with_for_each_count_and_nesting_plan_apply_and_converge() {
    let (_dir, ws, diags) = project(&modules());
    assert!(!diags.has_errors(), "{diags:?}");
    let p = Fake::default();
    let mut store = MemoryState::default();
    let first = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    assert_eq!(
        created(&first),
        [
            "module.iam[0].aws_iam_role.r",
            "module.iam[0].module.profile.aws_iam_instance_profile.p",
            "module.net[\"dev\"].aws_subnet.s[0]",
            "module.net[\"dev\"].aws_subnet.s[1]",
            "module.net[\"dev\"].aws_vpc.this",
            "module.net[\"prod\"].aws_subnet.s[0]",
            "module.net[\"prod\"].aws_subnet.s[1]",
            "module.net[\"prod\"].aws_vpc.this",
        ]
    );
    let subnet = first
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "module.net[\"prod\"].aws_subnet.s[1]")
        .expect("subnet");
    assert_eq!(subnet.after["cidr_block"].to_string(), "\"10.1.1.0/24\"");
    apply_plan(&p, &ws, &first, &mut store);
    let profile = &store.0.resources[&"module.iam[0].module.profile.aws_iam_instance_profile.p"
        .parse()
        .expect("addr")];
    assert_eq!(profile.attrs["role"], serde_json::json!("app-role"));
    let vpc = &store.0.resources[&"module.net[\"dev\"].aws_vpc.this".parse().expect("addr")];
    assert_eq!(
        store.0.outputs["vpc_ids"].value["dev"],
        serde_json::json!(vpc.id)
    );
    assert_eq!(
        store.0.outputs["profile"].value,
        serde_json::json!("app-role-profile")
    );
    // The subnet was created in its own module instance's VPC.
    let sub = &store.0.resources[&"module.net[\"dev\"].aws_subnet.s[0]".parse().expect("addr")];
    assert_eq!(sub.attrs["vpc_id"], serde_json::json!(vpc.id));
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());

    // One environment fewer: only its module instance goes.
    let mut files = modules();
    files[0].1 = Box::leak(
        ROOT.replace(", prod = \"10.1.0.0/16\"", "")
            .into_boxed_str(),
    );
    let (_dir2, ws, diags) = project(&files);
    assert!(!diags.has_errors(), "{diags:?}");
    let next = plan_only(&p, &ws, &mut store, &PlanOptions::default());
    let deleted: Vec<String> = next
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.addr.to_string())
        .collect();
    assert_eq!(
        deleted,
        [
            "module.net[\"prod\"].aws_subnet.s[0]",
            "module.net[\"prod\"].aws_subnet.s[1]",
            "module.net[\"prod\"].aws_vpc.this",
        ]
    );
    assert_eq!(next.counts(), (0, 0, 3));
    apply_plan(&p, &ws, &next, &mut store);
    assert!(!plan_only(&p, &ws, &mut store, &PlanOptions::default()).has_changes());
}

#[test]
fn module_mistakes_are_reported_in_the_modules_file() {
    let (_dir, ws, diags) = project(&[
        (
            "main.tf",
            "module \"net\" {\n  source = \"./modules/net\"\n  nmae   = \"x\"\n}\nmodule \"vpc\" {\n  source  = \"terraform-aws-modules/vpc/aws\"\n  version = \"5.0.0\"\n}\noutput \"x\" { value = module.net.nothing }\n",
        ),
        ("modules/net/main.tf", "variable \"name\" {}\nresource \"aws_vpc\" \"v\" {\n  cidr_blok = \"10.0.0.0/16\"\n}\n"),
    ]);
    let rendered = diags.render(&ws.config.sources, false);
    for want in [
        "an argument named \"nmae\" is not expected here",
        "the argument \"name\" is required by module.net",
        "skyform loads local modules only",
        "a version can only be given for a registry module",
        "module.net has no output named \"nothing\"",
        "unknown attribute \"cidr_blok\" in aws_vpc.v",
        "modules/net/main.tf:3:3",
    ] {
        assert!(rendered.contains(want), "{want} in {rendered}");
    }
}

#[test]
fn terraform_workspace_is_default_in_the_root_and_in_modules() {
    let root = "resource \"aws_iam_user\" \"u\" { name = \"app-${terraform.workspace}\" }\nmodule \"m\" { source = \"./m\" }\n";
    let module = "resource \"aws_iam_user\" \"u\" { name = \"m-${terraform.workspace}\" }\n";
    let bad = format!("{module}output \"bad\" {{ value = terraform.name }}\n");
    let (_dir, _ws, diags) = project(&[("main.tf", root), ("m/main.tf", &bad)]);
    let errors: Vec<&str> = diags.0.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(errors, ["undefined reference terraform.name"]);

    let (_dir, ws, diags) = project(&[("main.tf", root), ("m/main.tf", module)]);
    assert!(diags.0.is_empty(), "{diags:?}");
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let plan = plan_only(
        &p,
        &ws,
        &mut MemoryState::default(),
        &PlanOptions::default(),
    );
    let names: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{} {}", c.addr, c.after["name"]))
        .collect();
    assert_eq!(
        names,
        [
            "aws_iam_user.u \"app-default\"",
            "module.m.aws_iam_user.u \"m-default\""
        ]
    );
}
