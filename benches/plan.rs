//! The engine's apply at a scale moto cannot serve: `scripts/bench`'s configuration of N
//! resources (100,000 by default), loaded, validated, planned, applied and planned again in
//! process, against the in-memory fake cloud and the in-memory state (no AWS calls, no SQLite
//! commits). Prints the time of each step and the peak memory.
//! `cargo bench --bench plan [-- N]`; `scripts/bench` measures the binary itself.

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

/// The configuration `scripts/bench` gives the binary: N resources, N/2 roles and N/2
/// instance profiles that read them, all reading shared `locals`; half the pairs are separate
/// blocks, a quarter `count`, a quarter `for_each`.
fn config(n: usize) -> String {
    let pairs = n / 2;
    let (blocks, counted) = (pairs / 2, pairs / 4);
    let each = pairs - blocks - counted;
    let mut text = format!(
        r#"locals {{
  prefix = "bench"
  path   = "/bench/"
  trust  = jsonencode({{ Version = "2012-10-17", Statement = [] }})
  names  = toset(slice(flatten([for a in range({}) : [for b in range(1000) : "e${{a}}-${{b}}"]]), 0, {each}))
}}
resource "aws_iam_role" "c" {{
  count              = {counted}
  name               = "${{local.prefix}}-c${{count.index}}"
  path               = local.path
  assume_role_policy = local.trust
}}
resource "aws_iam_instance_profile" "c" {{
  count = {counted}
  name  = "${{local.prefix}}-c${{count.index}}"
  role  = aws_iam_role.c[count.index].name
}}
resource "aws_iam_role" "e" {{
  for_each           = local.names
  name               = "${{local.prefix}}-${{each.key}}"
  path               = local.path
  assume_role_policy = local.trust
}}
resource "aws_iam_instance_profile" "e" {{
  for_each = local.names
  name     = "${{local.prefix}}-${{each.key}}"
  role     = aws_iam_role.e[each.key].name
}}
"#,
        each / 1000 + 1
    );
    for i in 0..blocks {
        text.push_str(&format!(
            r#"resource "aws_iam_role" "r{i}" {{
  name               = "${{local.prefix}}-r{i}"
  path               = local.path
  assume_role_policy = local.trust
}}
resource "aws_iam_instance_profile" "r{i}" {{
  name = "${{local.prefix}}-r{i}"
  role = aws_iam_role.r{i}.name
}}
"#
        ));
    }
    text
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let text = config(n);
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
    assert_eq!(report.added, n);
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
    println!("resources              {n}");
    println!("load, validate, graph  {load:.2?}");
    println!("first plan             {first_plan:.2?}");
    println!("apply (fake cloud)     {apply:.2?}");
    println!("plan with no changes   {second_plan:.2?}");
    println!("peak memory            {}", peak_rss_mb());
}
