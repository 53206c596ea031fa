//! The engine at scale: a configuration of N roles, N policies and N attachments (3N
//! resources, 30,000 by default), loaded, validated, planned, applied and planned again
//! against the in-memory fake cloud. Prints the time of each step and the peak memory.
//! `cargo bench --bench plan [-- N]`, or `scripts/bench`.

use std::time::Instant;

use skyform::engine::fake::FakeProvider;
use skyform::engine::graph::Graph;
use skyform::engine::plan::{plan, PlanOptions, Workspace};
use skyform::lang::variables::{resolve, VarInputs};
use skyform::state::{MemoryState, StateStore as _};

fn peak_rss_mb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(|| "n/a".into(), |kb| format!("{:.0} MB", kb / 1024.0))
}

/// N roles, N policies and N attachments, one block each.
fn blocks(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "resource \"aws_iam_role\" \"r{i}\" {{\n  name = \"role-{i}\"\n  assume_role_policy = jsonencode({{ Statement = [] }})\n}}\n\
             resource \"aws_iam_policy\" \"p{i}\" {{\n  name = \"policy-{i}\"\n  policy = jsonencode({{ Statement = [] }})\n}}\n\
             resource \"aws_iam_role_policy_attachment\" \"a{i}\" {{\n  role = aws_iam_role.r{i}.name\n  policy_arn = aws_iam_policy.p{i}.arn\n}}\n"
        ));
    }
    text
}

/// The same 3N objects from three blocks with `count = N`.
fn counted_blocks(n: usize) -> String {
    format!(
        "variable \"n\" {{\n  default = {n}\n}}\n\
         resource \"aws_iam_role\" \"r\" {{\n  count = var.n\n  name = \"role-${{count.index}}\"\n  assume_role_policy = jsonencode({{ Statement = [] }})\n}}\n\
         resource \"aws_iam_policy\" \"p\" {{\n  count = var.n\n  name = \"policy-${{count.index}}\"\n  policy = jsonencode({{ Statement = [] }})\n}}\n\
         resource \"aws_iam_role_policy_attachment\" \"a\" {{\n  count = var.n\n  role = aws_iam_role.r[count.index].name\n  policy_arn = aws_iam_policy.p[count.index].arn\n}}\n"
    )
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let counted = std::env::args().any(|a| a == "count");
    let text = if counted {
        counted_blocks(n)
    } else {
        blocks(n)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    let (config, diags) = skyform::lang::config::load_str(
        &[("bench.sky.hcl", &text)],
        skyform::aws::schemas::registry(),
    );
    assert!(!diags.has_errors());
    let checks = skyform::lang::validate::check(&config);
    assert!(!checks.has_errors());
    let graph = Graph::build(&config);
    let (vars, _) = resolve(&config, &VarInputs::default(), true);
    let order = graph.order().expect("acyclic");
    // `FilesRead` is not part of the library surface, so the bench cannot name it.
    #[allow(clippy::default_trait_access)]
    let ws = Workspace {
        config,
        graph,
        order,
        vars,
        files_read: Default::default(),
    };
    let load = t.elapsed();
    let p = FakeProvider::<skyform::aws::AwsProvider>::default();
    let mut store = MemoryState::default();
    let t = Instant::now();
    let first = rt
        .block_on(plan(
            &p,
            &ws,
            rt.block_on(store.load()).expect("load"),
            &PlanOptions::default(),
        ))
        .expect("plan");
    let first_plan = t.elapsed();
    let t = Instant::now();
    let report = rt
        .block_on(skyform::engine::apply::apply(
            &p,
            &ws,
            &first,
            &mut store,
            &skyform::engine::apply::ApplyOptions::with_parallelism(10),
            &mut |_| {},
        ))
        .expect("apply");
    let apply = t.elapsed();
    assert_eq!(report.added, 3 * n);
    let t = Instant::now();
    let again = rt
        .block_on(plan(
            &p,
            &ws,
            rt.block_on(store.load()).expect("load"),
            &PlanOptions::default(),
        ))
        .expect("plan");
    let second_plan = t.elapsed();
    assert!(!again.has_changes());
    println!("resources              {}", 3 * n);
    println!("load, validate, graph  {load:.2?}");
    println!("first plan             {first_plan:.2?}");
    println!("apply (fake cloud)     {apply:.2?}");
    println!("plan with no changes   {second_plan:.2?}");
    println!("peak memory            {}", peak_rss_mb());
}
