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

const ALIASED: &str = r#"
provider "aws" { region = "us-east-1" }

provider "aws" {
  alias  = "west"
  region = "us-west-2"
  default_tags {
    tags = { Side = "west" }
  }
}

resource "aws_vpc" "east" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_vpc" "west" {
  provider   = aws.west
  cidr_block = "10.1.0.0/16"
}

data "aws_caller_identity" "w" {
  provider = aws.west
}

module "net" {
  source    = "./modules/net"
  providers = { aws = aws.west }
  name      = "n"
  cidr      = "10.2.0.0/16"
  subnets   = 1
}
"#;

#[test]
fn every_call_for_an_aliased_block_or_module_goes_to_its_provider_configuration() {
    let (_dir, ws, diags) = project(&[("main.tf", ALIASED), ("modules/net/main.tf", NET)]);
    assert!(diags.is_empty(), "{diags:?}");
    let p = Fake::default();
    let mut store = MemoryState::default();
    crate::engine::tests::plan_and_apply(&p, &ws, &mut store);
    let mut routes = p.cloud.borrow().routes.clone();
    routes.sort();
    assert_eq!(
        routes,
        [
            "create aws_vpc.east -",
            "create aws_vpc.west west",
            "create module.net.aws_subnet.s[0] west",
            "create module.net.aws_vpc.this west",
            "read aws_caller_identity west",
        ]
    );
    let state = |a: &str| store.0.resources[&a.parse().expect("addr")].clone();
    assert_eq!(state("module.net.aws_subnet.s[0]").provider, "west");
    assert_eq!(state("aws_vpc.east").provider, "");
    // Each configuration's default tags reach its own resources only.
    assert_eq!(
        state("aws_vpc.west").attrs["tags_all"],
        serde_json::json!({ "Side": "west" })
    );
    let east = state("aws_vpc.east").attrs;
    assert!(
        east.get("tags_all").and_then(|t| t.get("Side")).is_none(),
        "{east:?}"
    );

    // The west VPC's block goes, and the east one moves to the west configuration.
    let changed = ALIASED
        .replace(
            "resource \"aws_vpc\" \"west\" {\n  provider   = aws.west\n  cidr_block = \"10.1.0.0/16\"\n}\n",
            "",
        )
        .replace(
            "resource \"aws_vpc\" \"east\" {\n",
            "resource \"aws_vpc\" \"east\" {\n  provider = aws.west\n",
        );
    let (_dir2, ws2, diags) = project(&[("main.tf", &changed), ("modules/net/main.tf", NET)]);
    assert!(diags.is_empty(), "{diags:?}");
    p.cloud.borrow_mut().routes.clear();
    let (plan, _) = crate::engine::tests::plan_and_apply(&p, &ws2, &mut store);
    let change = |a: &str| {
        plan.changes
            .iter()
            .find(|c| c.addr.to_string() == a)
            .expect("change")
            .clone()
    };
    assert_eq!(change("aws_vpc.west").action, Action::Delete);
    let east = change("aws_vpc.east");
    assert_eq!(east.action, Action::Replace);
    assert_eq!(
        east.reason
            .as_ref()
            .map(crate::engine::plan::Reason::text)
            .as_deref(),
        Some("its provider configuration changes from aws to aws.west")
    );
    let writes: Vec<String> = p
        .cloud
        .borrow()
        .routes
        .iter()
        .filter(|r| !r.starts_with("refresh") && !r.starts_with("read"))
        .cloned()
        .collect();
    // The gone block's object is deleted where it lives; the moved one is made anew there.
    assert!(
        writes.contains(&"delete aws_vpc.west west".to_string()),
        "{writes:?}"
    );
    assert!(
        writes.contains(&"delete aws_vpc.east -".to_string()),
        "{writes:?}"
    );
    assert!(
        writes.contains(&"create aws_vpc.east west".to_string()),
        "{writes:?}"
    );
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert_eq!(state_provider(&store, "aws_vpc.east"), "west");
    let again = plan_only(&p, &ws2, &mut store, &PlanOptions::default());
    assert!(!again.has_changes());
}

fn state_provider(store: &MemoryState, addr: &str) -> String {
    store.0.resources[&addr.parse().expect("addr")]
        .provider
        .clone()
}

#[test]
fn a_module_sees_only_the_aliases_its_call_passes_and_its_own_provider_blocks_are_ignored() {
    let child = "provider \"aws\" { region = \"eu-west-1\" }\n\
                 resource \"aws_vpc\" \"v\" {\n  provider   = aws.x\n  cidr_block = \"10.0.0.0/16\"\n}\n";
    let root = |providers: &str| {
        format!(
            "provider \"aws\" {{\n  alias = \"west\"\n}}\n\
             module \"m\" {{\n  source    = \"./m\"\n  providers = {providers}\n}}\n"
        )
    };
    let (_dir, ws, diags) = project(&[("main.tf", &root("{}")), ("m/main.tf", child)]);
    let rendered = diags.render(&ws.config.sources, false);
    assert_eq!(diags.errors(), 1, "{rendered}");
    for want in [
        "reference to undefined provider: there is no provider \"aws\" configuration aws.x",
        "a module sees only the aliased configurations its call passes in",
        "m/main.tf:3:16",
        "provider \"aws\" blocks in module.m are ignored",
    ] {
        assert!(rendered.contains(want), "{want} in {rendered}");
    }
    let (_dir, ws, diags) = project(&[
        ("main.tf", &root("{ aws.x = aws.west }")),
        ("m/main.tf", child),
    ]);
    assert!(!diags.has_errors(), "{diags:?}");
    let addr = "module.m.aws_vpc.v".parse().expect("addr");
    assert_eq!(ws.config.provider_of(&addr), "west");
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

#[test]
fn a_module_call_waits_for_its_depends_on_and_its_resources_can_be_targeted() {
    let root = r#"
resource "aws_iam_role" "first" {
  name               = "first"
  assume_role_policy = jsonencode({ Statement = [] })
}

module "net" {
  source     = "./modules/net"
  name       = "n"
  cidr       = "10.5.0.0/16"
  subnets    = 1
  depends_on = [aws_iam_role.first]
}
"#;
    let (_dir, ws, diags) = project(&[("main.tf", root), ("modules/net/main.tf", NET)]);
    assert!(!diags.has_errors(), "{diags:?}");
    let vpc: crate::lang::address::Address = "module.net.aws_vpc.this".parse().expect("addr");
    let deps = ws.graph.managed_deps(&vpc);
    assert!(
        deps.iter().any(|d| d.to_string() == "aws_iam_role.first"),
        "{deps:?}"
    );
    let p = Fake::default();
    let mut store = MemoryState::default();
    let targeted = plan_only(
        &p,
        &ws,
        &mut store,
        &PlanOptions {
            targets: vec![vpc.clone()],
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        created(&targeted),
        ["aws_iam_role.first", "module.net.aws_vpc.this"]
    );
    apply_plan(&p, &ws, &targeted, &mut store);
    let calls = p.cloud.borrow().calls.clone();
    let pos = |c: &str| calls.iter().position(|x| x == c).expect(c);
    assert!(pos("create aws_iam_role") < pos("create aws_vpc"));
}
