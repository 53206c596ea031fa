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
//! | `lang` | loading `*.sky.hcl`, diagnostics, values, addresses, schemas, expressions, functions, variables, validation, fmt, digests | nothing |
//! | `state` | the state model, the `StateStore` trait, the SQLite and memory stores, the lock | `lang` |
//! | `engine` | the `Provider` trait, graph, refresh and plan, diff, recovery, apply, saved plan files, the fake provider | `lang`, `state` |
//! | `render` | the human, JSON and Markdown plans | `engine`, `state`, `lang` |
//! | `aws` | the AWS provider: one file per resource type, each filling one `aws::resource::Resource` and registered by one line in `aws::registry`, through which every `Provider` call dispatches; IAM policy semantics, CIDR rules, least-privilege policies, credentials | `engine`, `state`, `lang` |
//! | `cli` | arguments, commands, the workflow, state edits, `check` | everything |
//! | `error` | operational errors and the exit code | `lang`, `state`, `engine` |
//!
//! `tests::architecture` (in `src/architecture_tests.rs`) reads the sources and fails on an
//! arrow against this table or on an import cycle between modules, so the map stays true.
//!
//! # File overview
//! | file | read by |
//! |---|---|
//! | `*.sky.hcl` in the working directory | `lang::config` |
//! | `--var-file` files | `lang::variables` |
//! | `.skyform/state.db` | `state::sqlite` (resources, outputs, owner, intents, lock) |
//! | plan files (`plan --out`) | `engine::plan_file` |
//! | `~/.aws/config`, `~/.aws/credentials` | `aws::credentials` (through aws-config's parser) |
//! | `schemas/**/*.json` (embedded at build time, each by its type's file in `aws/`) | `aws::schemas`, parsed by `lang::schema` |
//! | `schemas/permissions.json` (embedded) | `aws::permissions` |

#[cfg(test)]
mod architecture_tests;
pub mod aws;
pub mod cli;
pub mod engine;
pub mod error;
#[cfg(test)]
mod fuzz_tests;
pub mod lang;
pub mod render;
pub mod state;

/// Runs the command line and returns the exit code (the table is `error::exit_code`).
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
