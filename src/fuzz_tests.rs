//! Fuzzing of everything a configuration goes through, with two kinds of input.
//!
//! Generated configurations are valid by construction: IAM and network resources that refer
//! to each other, variables with defaults, locals, outputs, functions, for-expressions,
//! conditionals, template directives, heredocs and nested blocks, laid out untidily. They go the
//! whole way: load, validate, graph, static evaluation, plan and apply against `FakeProvider<crate::aws::AwsProvider>`,
//! a second plan that must be empty, a change made outside skyform planned away, new variable
//! values planned, applied and converged the same way, a destroy that leaves the fake cloud
//! empty, `fmt` (same meaning, idempotent) and the policy builder (every action
//! `service:Action`, none with `*`).
//!
//! Hostile text (arbitrary bytes, HCL-shaped token soup, generated configurations with random
//! edits) goes as far as the code takes it: every stage that can run despite earlier
//! diagnostics does, `fmt` and the policy builder always run, and text that is still valid is
//! planned and applied.
//!
//! Each property counts the cases that ran to their end and prints
//! `fuzz-count: PROPERTY N cases ran clean (M of them planned and applied)` to stderr;
//! `scripts/fuzz` adds those lines up. `PROPTEST_CASES` sets the cases per property: 64 by
//! default, so `scripts/test` stays fast.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

use crate::aws::permissions::{
    document, for_config, for_plan, grants, resource_block, Need, OneOrMany, Scope,
};
use crate::engine::apply::{apply, ApplyOptions};
use crate::engine::diff::Action;
use crate::engine::fake::FakeProvider;
use crate::engine::graph::Graph;
use crate::engine::plan::{evaluate_static, plan, Plan, PlanOptions, Workspace};
use crate::engine::tests::{plan_and_apply, plan_only, run, workspace};
use crate::lang::address::Mode;
use crate::lang::fmt::{format_text, same_meaning};
use crate::lang::variables::{resolve, VarInputs};
use crate::state::MemoryState;

const ACCOUNT: &str = "123456789012";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

/// Runs `test` on `cases()` inputs from `strategy`, then prints how many cases ran to their
/// end, and how many of those got as far as a plan (`test` says whether its case did). The
/// harness counts each completed case as it happens, so `scripts/fuzz` reports what ran, not
/// what was asked for.
fn run_counted<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) {
    let clean = AtomicU64::new(0);
    let planned = AtomicU64::new(0);
    let config = RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let result = TestRunner::new(config).run(&strategy, |input| {
        if test(input)? {
            planned.fetch_add(1, Ordering::Relaxed);
        }
        clean.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    let n = clean.load(Ordering::Relaxed);
    if let Err(e) = result {
        panic!("{name} failed (after {n} clean cases): {e}");
    }
    let planned = planned.load(Ordering::Relaxed);
    eprintln!("fuzz-count: {name} {n} cases ran clean ({planned} of them planned and applied)");
}

fn fail(e: impl std::fmt::Debug) -> TestCaseError {
    TestCaseError::fail(format!("{e:?}"))
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both kinds of input.

/// An IAM action as AWS spells it: `service:Action`, never a wildcard.
fn well_formed(action: &str) -> bool {
    action.split_once(':').is_some_and(|(service, name)| {
        !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The policy builder on `needs`: grants, a document whose every action is well formed, and
/// the resource block `skyform policy --name` prints, which must load cleanly.
fn check_policy(needs: &[Need]) -> Result<(), TestCaseError> {
    let doc = document(&grants(needs, ACCOUNT));
    for st in &doc.statement {
        let actions = match &st.action {
            OneOrMany::One(a) => std::slice::from_ref(a),
            OneOrMany::Many(v) => v.as_slice(),
        };
        for a in actions {
            prop_assert!(well_formed(a), "action {a:?} in\n{}", doc.to_pretty());
        }
    }
    let block = resource_block("fuzz", &doc);
    let (_, diags) = crate::lang::config::load_str(
        &[("policy.sky.hcl", &block)],
        crate::aws::schemas::registry(),
    );
    prop_assert!(!diags.has_errors(), "{block}");
    Ok(())
}

/// The policy builder for every scope `skyform policy` offers.
fn check_policy_scopes(ws: &Workspace) -> Result<(), TestCaseError> {
    for (apply, destroy) in [(false, false), (true, false), (false, true), (true, true)] {
        check_policy(&for_config(ws, Scope { apply, destroy }))?;
    }
    Ok(())
}

/// `fmt` keeps the meaning of `text` and formatting its output again changes nothing.
fn check_fmt(text: &str) -> Result<(), TestCaseError> {
    let formatted = format_text(text);
    prop_assert!(
        same_meaning(text, &formatted),
        "fmt changed the meaning of\n{text}\n--- into ---\n{formatted}"
    );
    prop_assert_eq!(format_text(&formatted), formatted, "fmt is not idempotent");
    Ok(())
}

/// A plan of the unchanged configuration is empty (outputs included) and writes nothing.
fn check_converged(
    p: &FakeProvider<crate::aws::AwsProvider>,
    ws: &Workspace,
    store: &mut MemoryState,
) -> Result<(), TestCaseError> {
    let writes = p.writes();
    let again = plan_only(p, ws, store, &PlanOptions::default());
    let pending: Vec<_> = again
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.addr.to_string(), c.action, &c.changes))
        .collect();
    prop_assert!(
        !again.has_changes(),
        "not converged: {pending:?} {:?}",
        again.outputs
    );
    prop_assert_eq!(p.writes(), writes, "planning wrote to the cloud");
    Ok(())
}

/// An apply succeeded everywhere, and the policy builder copes with its plan.
fn check_applied(plan: &Plan, failures: &[impl std::fmt::Debug]) -> Result<(), TestCaseError> {
    prop_assert!(failures.is_empty(), "{failures:?}");
    check_policy(&for_plan(plan))
}

// ---------------------------------------------------------------------------------------------
// Generated valid configurations.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Role,
    Policy,
    User,
    RoleAttachment,
    UserAttachment,
    Profile,
    AccessKey,
    Vpc,
    Subnet,
    SecurityGroup,
    Gateway,
    RouteTable,
    Association,
}

const KINDS: [Kind; 13] = [
    Kind::Role,
    Kind::Policy,
    Kind::User,
    Kind::RoleAttachment,
    Kind::UserAttachment,
    Kind::Profile,
    Kind::AccessKey,
    Kind::Vpc,
    Kind::Subnet,
    Kind::SecurityGroup,
    Kind::Gateway,
    Kind::RouteTable,
    Kind::Association,
];

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Role => "aws_iam_role",
            Kind::Policy => "aws_iam_policy",
            Kind::User => "aws_iam_user",
            Kind::RoleAttachment => "aws_iam_role_policy_attachment",
            Kind::UserAttachment => "aws_iam_user_policy_attachment",
            Kind::Profile => "aws_iam_instance_profile",
            Kind::AccessKey => "aws_iam_access_key",
            Kind::Vpc => "aws_vpc",
            Kind::Subnet => "aws_subnet",
            Kind::SecurityGroup => "aws_security_group",
            Kind::Gateway => "aws_internet_gateway",
            Kind::RouteTable => "aws_route_table",
            Kind::Association => "aws_route_table_association",
        }
    }

    /// The word in labels and object names.
    fn word(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Policy => "policy",
            Kind::User => "user",
            Kind::RoleAttachment => "rattach",
            Kind::UserAttachment => "uattach",
            Kind::Profile => "profile",
            Kind::AccessKey => "key",
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::SecurityGroup => "sg",
            Kind::Gateway => "igw",
            Kind::RouteTable => "rt",
            Kind::Association => "assoc",
        }
    }
}

/// Untidy but valid layout, for `fmt` to put right.
// Each flag is one independent untidiness the generator may pick.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
struct Layout {
    indent: usize,
    before_eq: usize,
    after_eq: usize,
    blank: usize,
    tight_brace: bool,
    comments: bool,
    reverse: bool,
    /// A comment after each one-line attribute.
    trailing: bool,
    tabs: bool,
}

/// What to generate. Every choice is a small number whose 0 is the plainest option, so that
/// shrinking a failure leads to the plainest configuration that still fails.
#[derive(Debug, Clone)]
struct Spec {
    prefix: String,
    flag: bool,
    hours: u8,
    tags: BTreeMap<String, String>,
    typed: bool,
    items: Vec<(Kind, Vec<u8>)>,
    outputs: Vec<u8>,
    layout: Layout,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        0usize..5,
        0usize..3,
        0usize..3,
        0usize..3,
        any::<[bool; 5]>(),
    )
        .prop_map(
            |(
                indent,
                before_eq,
                after_eq,
                blank,
                [tight_brace, comments, reverse, trailing, tabs],
            )| {
                Layout {
                    indent,
                    before_eq,
                    after_eq,
                    blank,
                    tight_brace,
                    comments,
                    reverse,
                    trailing,
                    tabs,
                }
            },
        )
}

fn spec() -> impl Strategy<Value = Spec> {
    let item = (
        proptest::sample::select(KINDS.to_vec()),
        proptest::collection::vec(0u8..8, 12),
    );
    (
        "[a-z]{1,6}",
        any::<bool>(),
        1u8..13,
        proptest::collection::btree_map("[A-Z][a-z]{0,5}", "[a-z0-9 ]{0,8}", 0..4),
        any::<bool>(),
        proptest::collection::vec(item, 1..10),
        proptest::collection::vec(0u8..8, 0..5),
        layout(),
    )
        .prop_map(
            |(prefix, flag, hours, tags, typed, items, outputs, layout)| Spec {
                prefix,
                flag,
                hours,
                tags,
                typed,
                items,
                outputs,
                layout,
            },
        )
}

/// One line of a block body.
enum Line {
    Attr(String, String),
    Block(String, Vec<Line>),
    Comment(String),
}

struct Block {
    header: String,
    body: Vec<Line>,
}

fn attr(key: &str, value: impl Into<String>) -> Line {
    Line::Attr(key.to_string(), value.into())
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// Choice `i` of `picks`, 0 once they run out.
fn pick(picks: &[u8], i: usize) -> u8 {
    picks.get(i).copied().unwrap_or(0)
}

/// Turns a `Spec` into configuration text, declaring whatever a resource refers to before it.
struct Gen {
    blocks: Vec<Block>,
    /// Labels of the declared resources of each kind.
    declared: BTreeMap<Kind, Vec<String>>,
    /// The VPC of each subnet, security group, gateway and route table; and each VPC's
    /// second octet.
    vpc_of: BTreeMap<String, String>,
    octet: BTreeMap<String, u32>,
    /// Subnets cut from each VPC so far.
    cuts: BTreeMap<String, u32>,
    caller: bool,
    next: usize,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            blocks: Vec::new(),
            declared: BTreeMap::new(),
            vpc_of: BTreeMap::new(),
            octet: BTreeMap::new(),
            cuts: BTreeMap::new(),
            caller: false,
            next: 0,
        }
    }

    /// A resource of `kind`: an existing one chosen by `choice`, or a new one.
    fn need(&mut self, kind: Kind, choice: u8) -> String {
        match self.declared.get(&kind) {
            Some(labels) if !labels.is_empty() => {
                labels[usize::from(choice) % labels.len()].clone()
            }
            _ => self.declare(kind, &[]),
        }
    }

    /// A resource of `kind` in `vpc`: an existing one, or a new one.
    fn need_in(&mut self, kind: Kind, vpc: &str) -> String {
        let existing = self.declared.get(&kind).and_then(|labels| {
            labels
                .iter()
                .find(|l| self.vpc_of.get(*l).map(String::as_str) == Some(vpc))
                .cloned()
        });
        existing.unwrap_or_else(|| self.declare_in(kind, &[], Some(vpc)))
    }

    fn declare(&mut self, kind: Kind, picks: &[u8]) -> String {
        self.declare_in(kind, picks, None)
    }

    fn declare_in(&mut self, kind: Kind, picks: &[u8], vpc: Option<&str>) -> String {
        let n = self.next;
        self.next += 1;
        let label = format!("{}{n}", kind.word());
        let p = |i| pick(picks, i);
        let word = kind.word();
        let mut body = Vec::new();
        let vpc_id = |g: &mut Gen, choice: u8| -> String {
            let v = vpc.map_or_else(|| g.need(Kind::Vpc, choice), str::to_string);
            g.vpc_of.insert(label.clone(), v.clone());
            v
        };
        match kind {
            Kind::Role => {
                body.push(attr("name", name_expr(word, n, p(0))));
                body.push(attr("assume_role_policy", self.trust(p(1))));
                push_path(&mut body, p(2));
                if p(3) % 2 == 1 {
                    body.push(attr("description", "\"Role for ${var.prefix}\""));
                }
                match p(4) % 4 {
                    1 => body.push(attr("max_session_duration", "var.hours * 3600")),
                    2 => body.push(attr("max_session_duration", "max(3600, 7200)")),
                    3 => body.push(attr("max_session_duration", "min(43200, 3600 * 2)")),
                    _ => {}
                }
                push_tags(&mut body, p(5));
            }
            Kind::Policy => {
                body.push(attr("name", name_expr(word, n, p(0))));
                let doc = self.policy_doc(p(1), p(6));
                body.push(attr("policy", doc));
                push_path(&mut body, p(2));
                if p(3) % 2 == 1 {
                    body.push(attr("description", "\"Policy ${local.base}\""));
                }
                push_tags(&mut body, p(5));
            }
            Kind::User => {
                body.push(attr("name", name_expr(word, n, p(0))));
                push_path(&mut body, p(2));
                push_tags(&mut body, p(5));
            }
            Kind::RoleAttachment => {
                let role = self.need(Kind::Role, p(0));
                let policy = self.need(Kind::Policy, p(1));
                body.push(attr("role", format!("aws_iam_role.{role}.name")));
                body.push(attr("policy_arn", format!("aws_iam_policy.{policy}.arn")));
            }
            Kind::UserAttachment => {
                let user = self.need(Kind::User, p(0));
                let policy = self.need(Kind::Policy, p(1));
                body.push(attr("user", format!("aws_iam_user.{user}.name")));
                body.push(attr("policy_arn", format!("aws_iam_policy.{policy}.arn")));
                if p(2) % 2 == 1 {
                    body.push(attr("depends_on", format!("[aws_iam_user.{user}]")));
                }
            }
            Kind::Profile => {
                body.push(attr("name", name_expr(word, n, p(0))));
                if p(1) % 3 != 0 {
                    let role = self.need(Kind::Role, p(2));
                    body.push(attr("role", format!("aws_iam_role.{role}.name")));
                }
                push_path(&mut body, p(3));
            }
            Kind::AccessKey => {
                let user = self.need(Kind::User, p(0));
                body.push(attr("user", format!("aws_iam_user.{user}.name")));
                match p(1) % 4 {
                    1 => body.push(attr("status", "\"Active\"")),
                    2 => body.push(attr("status", "\"Inactive\"")),
                    3 => body.push(attr("status", "var.flag ? \"Active\" : \"Inactive\"")),
                    _ => {}
                }
            }
            Kind::Vpc => {
                let octet = u32::try_from(self.octet.len()).unwrap_or(0) + 1;
                self.octet.insert(label.clone(), octet);
                body.push(attr(
                    "cidr_block",
                    match p(0) % 3 {
                        0 => quoted(&format!("10.{octet}.0.0/16")),
                        1 => format!("cidrsubnet(\"10.0.0.0/8\", 8, {octet})"),
                        _ => format!("\"10.${{{octet}}}.0.0/16\""),
                    },
                ));
                match p(1) % 3 {
                    1 => body.push(attr("enable_dns_hostnames", "var.flag")),
                    2 => body.push(attr("enable_dns_hostnames", "true")),
                    _ => {}
                }
                if p(2) % 2 == 1 {
                    body.push(attr("enable_dns_support", "!var.flag"));
                }
                if p(3) % 2 == 1 {
                    body.push(attr("instance_tenancy", "\"default\""));
                }
                push_tags(&mut body, p(5));
            }
            Kind::Subnet => {
                let v = vpc_id(self, p(0));
                let cut = self.cuts.entry(v.clone()).or_default();
                let k = *cut;
                *cut += 1;
                let octet = self.octet.get(&v).copied().unwrap_or(0);
                body.push(attr("vpc_id", format!("aws_vpc.{v}.id")));
                body.push(attr(
                    "cidr_block",
                    match p(1) % 2 {
                        0 => format!("cidrsubnet(aws_vpc.{v}.cidr_block, 8, {k})"),
                        _ => quoted(&format!("10.{octet}.{k}.0/24")),
                    },
                ));
                match p(2) % 3 {
                    1 => body.push(attr("availability_zone", "\"us-east-1a\"")),
                    2 => body.push(attr(
                        "availability_zone",
                        "\"us-east-1${var.flag ? \"b\" : \"c\"}\"",
                    )),
                    _ => {}
                }
                if p(3) % 2 == 1 {
                    body.push(attr("map_public_ip_on_launch", "var.flag"));
                }
                push_tags(&mut body, p(5));
            }
            Kind::SecurityGroup => {
                let v = vpc_id(self, p(0));
                // An earlier group in the same VPC, for rules naming a source group.
                let peer = self.declared.get(&Kind::SecurityGroup).and_then(|labels| {
                    labels
                        .iter()
                        .find(|l| self.vpc_of.get(*l) == Some(&v))
                        .cloned()
                });
                body.push(attr("name", name_expr(word, n, p(1))));
                body.push(attr("vpc_id", format!("aws_vpc.{v}.id")));
                if p(2) % 2 == 1 {
                    body.push(attr("description", "\"Group for ${var.prefix}\""));
                }
                for r in 0..usize::from(p(3) % 4) {
                    body.push(Line::Block(
                        "ingress".into(),
                        rule(pick(picks, 6 + r), &v, peer.as_deref()),
                    ));
                }
                if p(4) % 3 == 1 {
                    body.push(Line::Block("egress".into(), rule(0, &v, None)));
                }
                push_tags(&mut body, p(5));
            }
            Kind::Gateway => {
                let v = vpc_id(self, p(0));
                body.push(attr("vpc_id", format!("aws_vpc.{v}.id")));
                push_tags(&mut body, p(5));
            }
            Kind::RouteTable => {
                let v = vpc_id(self, p(0));
                body.push(attr("vpc_id", format!("aws_vpc.{v}.id")));
                for r in 0..u32::from(p(1) % 3) {
                    let igw = self.need_in(Kind::Gateway, &v);
                    let dest = if r == 0 {
                        "0.0.0.0/0".to_string()
                    } else {
                        format!("192.168.{r}.0/24")
                    };
                    body.push(Line::Block(
                        "route".into(),
                        vec![
                            attr("cidr_block", quoted(&dest)),
                            attr("gateway_id", format!("aws_internet_gateway.{igw}.id")),
                        ],
                    ));
                }
                push_tags(&mut body, p(5));
            }
            Kind::Association => {
                let subnet = self.need(Kind::Subnet, p(0));
                let v = self.vpc_of.get(&subnet).cloned().unwrap_or_default();
                let table = self.need_in(Kind::RouteTable, &v);
                body.push(attr("subnet_id", format!("aws_subnet.{subnet}.id")));
                body.push(attr(
                    "route_table_id",
                    format!("aws_route_table.{table}.id"),
                ));
            }
        }
        self.blocks.push(Block {
            header: format!("resource \"{}\" \"{label}\"", kind.type_name()),
            body,
        });
        self.declared.entry(kind).or_default().push(label.clone());
        label
    }

    /// A trust policy.
    fn trust(&mut self, choice: u8) -> String {
        match choice % 4 {
            0 => "jsonencode({ Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", Action = \"sts:AssumeRole\", Principal = { Service = \"ec2.amazonaws.com\" } }] })".into(),
            1 => "local.trust".into(),
            2 => "<<-EOT\n    {\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"sts:AssumeRole\", \"Principal\": {\"Service\": \"ec2.amazonaws.com\"}}]}\n  EOT".into(),
            _ => {
                self.caller = true;
                "jsonencode({\nVersion = \"2012-10-17\"\nStatement = [{\nEffect = \"Allow\"\nAction = \"sts:AssumeRole\"\nPrincipal = { AWS = \"arn:aws:iam::${data.aws_caller_identity.me.account_id}:root\" }\n}]\n})".into()
            }
        }
    }

    /// A permissions policy document, perhaps naming a role's ARN (known only after apply).
    fn policy_doc(&mut self, choice: u8, role_choice: u8) -> String {
        match choice % 5 {
            0 => "jsonencode({ Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", Action = [\"s3:GetObject\"], Resource = \"*\" }] })".into(),
            1 => "jsonencode({ Version = \"2012-10-17\", Statement = [for a in local.actions : { Effect = \"Allow\", Action = a, Resource = \"*\" }] })".into(),
            2 => {
                let role = self.need(Kind::Role, role_choice);
                format!("jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Action = \"iam:PassRole\", Resource = aws_iam_role.{role}.arn }}] }})")
            }
            3 => "<<EOT\n{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"s3:ListBucket\", \"Resource\": \"arn:aws:s3:::${local.base}-bucket\"}]\n}\nEOT".into(),
            _ => "jsonencode({ Version = \"2012-10-17\", Statement = [{ Effect = var.flag ? \"Allow\" : \"Deny\", Action = \"s3:ListBucket\", Resource = \"*\" }] })".into(),
        }
    }

    fn outputs(&mut self, picks: &[u8]) {
        for (j, &choice) in picks.iter().enumerate() {
            let mut body = Vec::new();
            match choice % 6 {
                0 => {
                    let label = self.need(Kind::Role, 0);
                    body.push(attr("value", format!("aws_iam_role.{label}.arn")));
                }
                1 => {
                    let labels = self.declared.get(&Kind::Vpc).cloned().unwrap_or_default();
                    let list: Vec<String> = labels.iter().map(|l| format!("aws_vpc.{l}")).collect();
                    body.push(attr(
                        "value",
                        format!("[for v in [{}] : v.cidr_block]", list.join(", ")),
                    ));
                }
                2 => body.push(attr("value", "local.base")),
                3 => {
                    let key = self.need(Kind::AccessKey, 0);
                    body.push(attr("value", format!("aws_iam_access_key.{key}.secret")));
                    body.push(attr("sensitive", "true"));
                }
                4 => body.push(attr("value", "{ for k, v in var.tags : k => length(v) }")),
                _ => body.push(attr(
                    "value",
                    "\"${var.prefix}-${length(local.actions)}%{ if var.flag }-on%{ endif }\"",
                )),
            }
            if choice % 2 == 1 {
                body.push(attr("description", format!("\"output {j}\"")));
            }
            self.blocks.push(Block {
                header: format!("output \"out{j}\""),
                body,
            });
        }
    }
}

/// A unique object name (`-WORD-N` makes it so) through one of several kinds of expression.
fn name_expr(word: &str, n: usize, choice: u8) -> String {
    match choice % 8 {
        0 => format!("\"fz-{word}-{n}\""),
        1 => format!("\"${{var.prefix}}-{word}-{n}\""),
        2 => format!("format(\"%s-{word}-%d\", var.prefix, {n})"),
        3 => format!("\"${{local.base}}-{word}-{n}\""),
        4 => format!("var.flag ? \"${{var.prefix}}-{word}-{n}\" : \"off-{word}-{n}\""),
        5 => format!("replace(\"${{upper(var.prefix)}}_{word}_{n}\", \"_\", \"-\")"),
        6 => format!("join(\"-\", [local.base, \"{word}\", \"{n}\"])"),
        _ => format!("\"%{{ if var.flag }}on%{{ else }}off%{{ endif }}-{word}-{n}\""),
    }
}

fn push_path(body: &mut Vec<Line>, choice: u8) {
    match choice % 3 {
        1 => body.push(attr("path", "\"/\"")),
        2 => body.push(attr("path", "\"/${local.base}/\"")),
        _ => {}
    }
}

fn push_tags(body: &mut Vec<Line>, choice: u8) {
    match choice % 6 {
        1 => body.push(attr("tags", "var.tags")),
        2 => body.push(attr(
            "tags",
            "merge(var.tags, { Name = \"${var.prefix}-x\" })",
        )),
        3 => body.push(attr("tags", "{ for k, v in var.tags : k => upper(v) }")),
        4 => body.push(attr("tags", "{\nTeam = \"fuzz\"\n  Owner = var.prefix\n}")),
        5 => body.push(attr("tags", "local.common_tags")),
        _ => {}
    }
}

/// A security group rule.
fn rule(choice: u8, vpc: &str, peer: Option<&str>) -> Vec<Line> {
    let (from, to, protocol) = match choice % 4 {
        0 => (0, 0, "-1"),
        1 => (22, 22, "tcp"),
        2 => (443, 443, "tcp"),
        _ => (8000, 8100, "udp"),
    };
    let mut lines = vec![
        attr("from_port", from.to_string()),
        attr("to_port", to.to_string()),
        attr("protocol", quoted(protocol)),
    ];
    match choice / 4 % 2 {
        0 => lines.push(attr("cidr_blocks", "[\"0.0.0.0/0\"]")),
        _ => lines.push(attr(
            "cidr_blocks",
            format!("[\n\"10.99.0.0/16\",\n  aws_vpc.{vpc}.cidr_block,\n]"),
        )),
    }
    if choice % 3 == 1 {
        lines.push(attr("self", "true"));
    }
    if let (Some(peer), 2) = (peer, choice % 3) {
        lines.push(attr(
            "security_groups",
            format!("[aws_security_group.{peer}.id]"),
        ));
    }
    if choice % 5 == 4 {
        lines.push(attr("description", "\"rule ${var.prefix}\""));
    }
    lines
}

fn render_lines(lines: &[Line], depth: usize, layout: &Layout, out: &mut String) {
    let pad = if layout.tabs { "\t" } else { " " }.repeat(layout.indent * depth);
    for line in lines {
        match line {
            Line::Attr(key, value) => {
                let comment = if layout.trailing && !value.contains('\n') {
                    " # set by the fuzzer"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "{pad}{key}{}={}{value}{comment}\n",
                    " ".repeat(layout.before_eq),
                    " ".repeat(layout.after_eq)
                ));
            }
            Line::Block(header, body) => {
                let brace = if layout.tight_brace { "{" } else { " {" };
                out.push_str(&format!("{pad}{header}{brace}\n"));
                render_lines(body, depth + 1, layout, out);
                out.push_str(&format!("{pad}}}\n"));
            }
            Line::Comment(c) => out.push_str(&format!("{pad}{c}\n")),
        }
    }
}

fn render(spec: &Spec) -> String {
    let mut g = Gen::new();
    for (kind, picks) in &spec.items {
        g.declare(*kind, picks);
    }
    g.outputs(&spec.outputs);
    let mut blocks = std::mem::take(&mut g.blocks);
    let ty = |t: &str| {
        if spec.typed {
            vec![attr("type", t)]
        } else {
            Vec::new()
        }
    };
    let tags: Vec<String> = spec
        .tags
        .iter()
        .map(|(k, v)| format!("{k} = {}", quoted(v)))
        .collect();
    let vars = [
        ("prefix", "string", quoted(&spec.prefix)),
        ("flag", "bool", spec.flag.to_string()),
        ("hours", "number", spec.hours.to_string()),
        ("tags", "map(string)", format!("{{ {} }}", tags.join(", "))),
    ];
    for (name, t, default) in vars {
        let mut body = ty(t);
        body.push(attr("default", default));
        blocks.push(Block {
            header: format!("variable \"{name}\""),
            body,
        });
    }
    blocks.push(Block {
        header: "locals".into(),
        body: vec![
            Line::Comment("# lower-case, for IAM paths".into()),
            attr("base", "lower(var.prefix)"),
            attr("actions", "distinct(concat([\"s3:GetObject\"], [\"s3:ListBucket\", \"s3:GetObject\"]))"),
            attr("trust", "jsonencode({ Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", Action = \"sts:AssumeRole\", Principal = { Service = \"ec2.amazonaws.com\" } }] })"),
            attr("common_tags", "merge(var.tags, { Env = var.flag ? \"prod\" : \"dev\" })"),
        ],
    });
    if g.caller {
        blocks.push(Block {
            header: "data \"aws_caller_identity\" \"me\"".into(),
            body: Vec::new(),
        });
    }
    if spec.layout.reverse {
        blocks.reverse();
    }
    let layout = &spec.layout;
    let mut out = String::new();
    for (i, b) in blocks.iter().enumerate() {
        if layout.comments {
            out.push_str(if i % 2 == 0 {
                "# block\n"
            } else {
                "// block\n"
            });
        }
        let brace = if layout.tight_brace { "{" } else { " {" };
        out.push_str(&format!("{}{brace}\n", b.header));
        render_lines(&b.body, 1, layout, &mut out);
        out.push_str("}\n");
        out.push_str(&"\n".repeat(layout.blank));
    }
    out
}

/// A generated configuration, and the variables that its second round sets.
fn generated() -> impl Strategy<Value = Generated> {
    (
        spec(),
        "[a-z]{1,6}",
        any::<bool>(),
        1u8..13,
        any::<prop::sample::Index>(),
        0u8..3,
    )
        .prop_map(|(spec, prefix, flag, hours, victim, drift)| Generated {
            text: render(&spec),
            vars: vec![
                format!("prefix={prefix}"),
                format!("flag={flag}"),
                format!("hours={hours}"),
            ],
            victim,
            drift,
        })
}

/// A generated configuration, the variables its second round sets, and a change made to one
/// object (`victim`) outside skyform after the first apply.
#[derive(Debug, Clone)]
struct Generated {
    text: String,
    vars: Vec<String>,
    victim: prop::sample::Index,
    /// 0: none, 1: the object is deleted, 2: its tags are changed.
    drift: u8,
}

/// Changes one object in the fake cloud behind skyform's back.
fn drift(p: &FakeProvider<crate::aws::AwsProvider>, victim: prop::sample::Index, how: u8) {
    let mut cloud = p.cloud.borrow_mut();
    let keys: Vec<(String, String)> = cloud.objects.keys().cloned().collect();
    if keys.is_empty() || how == 0 {
        return;
    }
    let key = &keys[victim.index(keys.len())];
    if how == 1 {
        cloud.objects.remove(key);
        return;
    }
    let has_tags = crate::aws::schemas::registry()
        .resources
        .get(&key.0)
        .is_some_and(|s| s.attr("tags").is_some());
    if let (true, Some(attrs)) = (has_tags, cloud.objects.get_mut(key)) {
        attrs.insert("tags".into(), serde_json::json!({ "Drift": "yes" }));
    }
}

/// A generated configuration through its whole life against the fake cloud.
fn whole_life(g: &Generated) -> Result<bool, TestCaseError> {
    let (text, vars) = (g.text.as_str(), &g.vars);
    // `workspace` asserts that loading, validation, the graph and the variables found nothing:
    // the generator makes only valid configurations.
    let ws = workspace(text, &[]);
    let (values, diags) = evaluate_static::<crate::aws::AwsProvider>(&ws);
    prop_assert!(
        !diags.has_errors(),
        "{}",
        diags.render(&ws.config.sources, false)
    );
    prop_assert_eq!(values.len(), ws.config.resources.len());
    check_policy_scopes(&ws)?;
    let managed = ws
        .config
        .resources
        .keys()
        .filter(|a| a.mode == Mode::Managed)
        .count();

    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    let (first, report) = plan_and_apply(&p, &ws, &mut store);
    prop_assert_eq!(first.changes.len(), managed);
    prop_assert!(first.changes.iter().all(|c| c.action == Action::Create));
    check_applied(&first, &report.failures)?;
    prop_assert_eq!(report.added, managed);
    prop_assert_eq!(p.cloud.borrow().objects.len(), managed);
    check_converged(&p, &ws, &mut store)?;

    // A change outside skyform is planned away, and the plan after that is empty.
    drift(&p, g.victim, g.drift);
    let (repaired, report) = plan_and_apply(&p, &ws, &mut store);
    check_applied(&repaired, &report.failures)?;
    check_converged(&p, &ws, &mut store)?;
    prop_assert_eq!(p.cloud.borrow().objects.len(), managed);

    // New variable values: updates and replacements, then the same convergence.
    let var_refs: Vec<&str> = vars.iter().map(String::as_str).collect();
    let ws2 = workspace(text, &var_refs);
    let (second, report) = plan_and_apply(&p, &ws2, &mut store);
    check_applied(&second, &report.failures)?;
    check_converged(&p, &ws2, &mut store)?;
    prop_assert_eq!(
        p.cloud.borrow().objects.len(),
        managed,
        "replacements left objects behind or lost some"
    );

    let destroy = PlanOptions {
        destroy: true,
        ..PlanOptions::default()
    };
    let gone = plan_only(&p, &ws2, &mut store, &destroy);
    let report = run(apply(
        &p,
        &ws2,
        &gone,
        &mut store,
        &ApplyOptions::with_parallelism(4),
        &mut |_| {},
    ))
    .map_err(fail)?;
    check_applied(&gone, &report.failures)?;
    prop_assert!(
        store.0.resources.is_empty(),
        "{:?}",
        store.0.resources.keys()
    );
    let left: BTreeSet<_> = p.cloud.borrow().objects.keys().cloned().collect();
    prop_assert!(left.is_empty(), "left in the cloud: {left:?}");

    check_fmt(text)?;
    Ok(true)
}

#[test]
fn generated_configurations_plan_apply_converge_and_destroy() {
    run_counted(
        "generated_configurations_plan_apply_converge_and_destroy",
        generated(),
        |g| whole_life(&g),
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile text.

/// Everything a configuration goes through, continuing past diagnostics wherever the code can.
/// Returns whether the text was valid enough to plan and apply.
fn exercise(text: &str) -> Result<bool, TestCaseError> {
    // fmt sees every text. When the text parses and fmt keeps its meaning (`skyform fmt` refuses
    // to write anything else), formatting again must change nothing.
    let formatted = format_text(text);
    if same_meaning(text, &formatted) {
        prop_assert_eq!(format_text(&formatted), formatted, "fmt is not idempotent");
    }
    let (config, mut diags) =
        crate::lang::config::load_str(&[("fuzz.sky.hcl", text)], crate::aws::schemas::registry());
    diags.extend(crate::lang::validate::check(&config));
    let graph = Graph::build(&config);
    diags.extend(graph.cycles(&config));
    let (vars, var_diags) = resolve(&config, &VarInputs::default(), false);
    diags.extend(var_diags);
    // Rendering diagnostics reads spans back out of the sources.
    let _ = diags.render(&config.sources, false);
    // With a cycle there is no order, and evaluation sees nothing; otherwise it sees whatever
    // loaded, errors and all.
    let order = graph.order().unwrap_or_default();
    let ws = Workspace {
        config,
        graph,
        order,
        vars,
        files_read: crate::lang::functions::FilesRead::default(),
    };
    let (_, more) = evaluate_static::<crate::aws::AwsProvider>(&ws);
    let _ = more.render(&ws.config.sources, false);
    check_policy_scopes(&ws)?;
    if diags.has_errors() || more.has_errors() {
        return Ok(false);
    }
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    let Ok(planned) = run(plan(
        &p,
        &ws,
        MemoryState::default().0,
        &PlanOptions::default(),
    )) else {
        return Ok(false);
    };
    check_policy(&for_plan(&planned))?;
    let mut store = MemoryState::default();
    // Failures are possible (two roles of one name); only a panic is a bug here.
    let _ = run(apply(
        &p,
        &ws,
        &planned,
        &mut store,
        &ApplyOptions::with_parallelism(2),
        &mut |_| {},
    ));
    Ok(true)
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource \"aws_iam_role\" \"r\" {".to_string()),
        Just("resource \"aws_security_group\" \"g\" {".to_string()),
        Just("resource \"aws_subnet\" \"s\" {".to_string()),
        Just("data \"aws_vpc\" \"v\" {".to_string()),
        Just("variable \"x\" {".to_string()),
        Just("locals {".to_string()),
        Just("output \"o\" {".to_string()),
        Just("ingress {".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("name".to_string()),
        Just("vpc_id".to_string()),
        Just("cidr_block".to_string()),
        Just("assume_role_policy".to_string()),
        Just("aws_iam_role.r.arn".to_string()),
        Just("var.x".to_string()),
        Just("local.y".to_string()),
        Just("data.aws_vpc.v.id".to_string()),
        Just("jsonencode(".to_string()),
        Just("cidrsubnet(".to_string()),
        Just("lookup(".to_string()),
        Just("\"${var.x}\"".to_string()),
        Just("\"%{ if true }a%{ endif }\"".to_string()),
        Just("<<EOT\nx\nEOT\n".to_string()),
        Just("[for s in var.x : s]".to_string()),
        Just("? 1 : 2".to_string()),
        Just("* 2 / 0 - 1".to_string()),
        Just("\"10.0.0.0/16\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("-1e309".to_string()),
        Just("#".to_string()),
        Just("/*".to_string()),
        "[a-z_]{1,8}".prop_map(String::from),
        "\"[ -~]{0,12}\"".prop_map(String::from),
        (0u32..100_000).prop_map(|n| n.to_string()),
    ]
}

#[test]
fn arbitrary_bytes_never_panic() {
    run_counted(
        "arbitrary_bytes_never_panic",
        proptest::collection::vec(any::<u8>(), 0..400),
        |bytes| exercise(&String::from_utf8_lossy(&bytes)),
    );
}

#[test]
fn hcl_shaped_text_never_panics() {
    run_counted(
        "hcl_shaped_text_never_panics",
        proptest::collection::vec(token(), 0..60),
        |tokens| exercise(&tokens.join(" ")),
    );
}

/// A generated configuration with a few edits: text that is nearly valid, so that more of it
/// gets past loading into evaluation and planning than token soup does.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0u8..4, 1usize..12, token());
    (spec(), proptest::collection::vec(edit, 1..4)).prop_map(|(spec, edits)| {
        let mut text: Vec<char> = render(&spec).chars().collect();
        for (at, op, len, token) in edits {
            let i = at.index(text.len() + 1);
            let end = (i + len).min(text.len());
            match op {
                0 => {
                    text.drain(i..end);
                }
                1 => {
                    text.splice(i..i, token.chars());
                }
                2 => {
                    // Duplicate the line that holds `i`.
                    let start = text[..i]
                        .iter()
                        .rposition(|c| *c == '\n')
                        .map_or(0, |p| p + 1);
                    let stop = text[i..]
                        .iter()
                        .position(|c| *c == '\n')
                        .map_or(text.len(), |p| i + p + 1);
                    let line: Vec<char> = text[start..stop].to_vec();
                    text.splice(stop..stop, line);
                }
                _ => {
                    text.splice(i..end, token.chars());
                }
            }
        }
        text.into_iter().collect()
    })
}

#[test]
fn mutated_configurations_never_panic() {
    run_counted("mutated_configurations_never_panic", mutated(), |text| {
        exercise(&text)
    });
}
