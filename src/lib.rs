//! skyform: declarative plan/apply for AWS compute clusters.
//!
//! # Overview
//! A run flows through one folder per stage, and the dependencies point one way:
//!
//! ```text
//! lang  (config → values, schemas, expressions)
//!   ↑
//! state (the store trait, SQLite, memory, the lock)
//!   ↑
//! engine (graph → refresh → diff → plan → apply, recovery, saved plans; the Provider trait)
//!   ↑                ↑
//! render (views)     aws (implements Provider)
//!   ↑                ↑
//! cli (arguments, commands, the workflow between them)
//! ```
//!
//! | folder | job | may use |
//! |---|---|---|
//! | `lang` | loading `*.sky.hcl` and `*.tf`, the `terraform {}` block, diagnostics, values, addresses, schemas, expressions, functions, variables, validation, fmt, digests | nothing |
//! | `state` | the state model, the `StateStore` trait, the SQLite and memory stores, the lock | `lang` |
//! | `engine` | the `Provider` trait, graph, refresh and plan, diff, recovery, apply, saved plan files, the fake provider | `lang`, `state` |
//! | `render` | the human, JSON and Markdown plans | `engine`, `state`, `lang` |
//! | `aws` | the AWS provider: one file per resource type, each filling one `aws::resource::Resource` and registered by one line in `aws::registry`, through which every `Provider` call dispatches; IAM policy semantics, CIDR rules, least-privilege policies, credentials | `engine`, `state`, `lang` |
//! | `cli` | arguments, commands, the workflow, state edits, taking over a Terraform state, `check` | everything |
//! | `error` | operational errors and the exit code | `lang`, `state`, `engine` |
//!
//! `tests::architecture` (in `src/architecture_tests.rs`) reads the sources and fails on an
//! arrow against this table or on an import cycle between modules, so the map stays true.
//!
//! # File overview
//! | file | read by |
//! |---|---|
//! | `*.sky.hcl` and `*.tf` in the working directory | `lang::config` (the `terraform {}` block: `lang::terraform`) |
//! | `--var-file` files | `lang::variables` |
//! | `.skyform/state.db` | `state::sqlite` (resources, outputs, owner, intents, lock, drift first-seen times) |
//! | `.skyform/workspaces/<name>/state.db` | `state::sqlite`, for a workspace other than `default` (`cli::backend`) |
//! | `.skyform/environment` (the selected workspace) | `cli::backend` (written by `cli::workspace`) |
//! | S3 objects `<key>.sky*` (with a `backend "s3"` block) | `state::remote` over `aws::s3_objects` |
//! | plan files (`plan --out`) | `engine::plan_file` |
//! | a Terraform state (`state import-terraform PATH`; only read) | `cli::import_terraform` |
//! | `~/.aws/config`, `~/.aws/credentials` | `aws::credentials` (through aws-config's parser) |
//! | `schemas/**/*.json` (embedded at build time, each by its type's file in `aws/`) | `aws::schemas`, parsed by `lang::schema` |
//! | `schemas/permissions.json` (embedded) | `aws::permissions` |
//!
//! # Library surface
//! skyform is a binary; the library exists so that `tests/` and `benches/` can reach the
//! engine without the command line. Everything is `pub(crate)` except what they use, and
//! `unreachable_pub` (in `Cargo.toml`'s `[lints]`) keeps it that way:
//!
//! | `pub` item | used by |
//! |---|---|
//! | [`run`] | `main.rs` |
//! | `cli::args::Cli` (parsing only) | `tests/review_workflow.rs` checks the README's command lines |
//! | `lang::document::parse_document` | `tests/aws_iam.rs` reads policy documents AWS returns |
//! | `aws::permissions::glob` | `tests/check_and_policy.rs` matches ARNs as IAM does |
//! | `aws::s3_action` | `tests/support.rs`: the recording proxy names S3 requests as `--stats` does |
//! | `lang::config::load_str`, `lang::validate::check`, `lang::variables::{resolve, VarInputs}`, `aws::schemas::registry` | `benches/plan.rs` loads a configuration |
//! | `engine::graph::Graph` (`build`, `order`), `engine::plan::{plan, PlanOptions, Workspace}`, `engine::apply::{apply, ApplyOptions::with_parallelism}` | `benches/plan.rs` plans and applies |
//! | `engine::fake::FakeProvider`, `aws::AwsProvider`, `state::{MemoryState, StateStore}` | `benches/plan.rs`: the fake cloud with AWS's rules, in memory |
//!
//! The types those items take or return (`Config`, `Plan`, `Diagnostics`, the `Provider`
//! trait, …) are `pub` because they appear in those signatures, but their modules are
//! `pub(crate)`: they cannot be named from outside, and their fields and methods are
//! `pub(crate)` unless the bench reads them (`Diagnostics::has_errors`, `Plan::has_changes`,
//! `ApplyReport::added`, `Workspace`'s fields).

#[cfg(test)]
mod architecture_tests;
pub mod aws;
pub mod cli;
pub mod engine;
pub(crate) mod error;
#[cfg(test)]
mod fuzz_tests;
pub mod lang;
pub(crate) mod render;
pub mod state;

/// Runs the command line and returns the exit code (the table is `error::exit_code`).
#[must_use]
pub fn run() -> i32 {
    use clap::Parser as _;
    let cli = match cli::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return error::unparsed_exit_code(e.kind());
        }
    };
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let result = cli::commands::execute(cli);
    match &result {
        Ok(_) => {}
        Err(error::Error::Config(e)) => {
            eprintln!("{}", e.diagnostics.render(&e.sources, color));
            eprintln!(
                "{} error(s) in the configuration; nothing was changed.",
                e.diagnostics.errors()
            );
        }
        Err(e) => eprintln!("Error: {e}"),
    }
    error::exit_code(&result)
}
