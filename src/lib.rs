//! skyform: declarative plan/apply for AWS compute clusters.
//!
//! # Overview
//! A run goes: load (`config`) → check (`validate`, `graph`) → resolve inputs (`variables`) →
//! refresh and plan (`plan`, using `diff` and `eval`) → render (`render`) → apply (`apply`),
//! with state in `sqlite_state` behind the `state::StateStore` trait and every cloud call
//! behind the `provider::Provider` trait.
//!
//! | module | job |
//! |---|---|
//! | `cli` | clap argument definitions |
//! | `commands` | thin adapters from arguments to the core; all printing of results |
//! | `workflow` | plan, apply (and `apply FILE`), destroy, show, import, refresh: lock, plan, guard, apply |
//! | `state_commands` | `state list/show/rm/mv`, `force-unlock` |
//! | `check`, `credentials` | `skyform check`: identity, credential source, diagnoses |
//! | `config` | the only reader of `*.sky.hcl`; typed blocks with spans |
//! | `diagnostic` | problems with `file:line:col`, collected and rendered |
//! | `address` | `aws_iam_role.r`, `data.T.n` |
//! | `schema` | `schemas/*.json`, the single definition of attributes |
//! | `eval`, `functions`, `value` | expression evaluation with unknown values |
//! | `validate` | static checks against schemas, references and functions |
//! | `variables` | `--var`, `--var-file`, `SKYFORM_VAR_*`, defaults |
//! | `graph` | the dependency graph (petgraph), cycles, order |
//! | `plan` | refresh, drift, evaluation in order, per-resource actions |
//! | `cidr` | VPC and subnet range checks at plan time |
//! | `diff`, `policy` | pure attribute comparison; semantic IAM policy equality |
//! | `permissions` | least-privilege IAM policies from `schemas/permissions.json` |
//! | `render` | Terraform's human plan format |
//! | `render_json`, `render_markdown` | Terraform's JSON plan; the pull-request summary |
//! | `plan_file` | saved plans: checksum, salted digests, fingerprints, redaction of secrets |
//! | `fmt` | canonical layout of `*.sky.hcl` |
//! | `apply` | the operation graph, concurrent walk, per-operation state writes |
//! | `lock`, `reconcile` | the state lock; adopting what an interrupted apply created |
//! | `state`, `sqlite_state` | state model, `StateStore` trait, SQLite store |
//! | `provider`, `aws`, `fake` | the `Provider` trait, its AWS implementation, an in-memory fake |
//! | `error` | operational errors and exit codes |
//!
//! # File overview
//! | file | read by |
//! |---|---|
//! | `*.sky.hcl` in the working directory | `config` |
//! | `--var-file` files | `variables` |
//! | `.skyform/state.db` | `sqlite_state` (resources, outputs, owner, intents, lock) |
//! | plan files (`plan --out`, mode 0600) | `plan_file` |
//! | files the configuration reads (`file()`) | `functions`, recorded by `eval::FilesRead` |
//! | `~/.aws/config`, `~/.aws/credentials` | `credentials` (through aws-config's parser) |
//! | `schemas/**/*.json` (embedded at build time) | `schema` |
//! | `schemas/permissions.json` (embedded) | `permissions` |

pub mod address;
pub mod apply;
pub mod aws;
pub mod check;
pub mod cidr;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod diagnostic;
pub mod diff;
#[cfg(test)]
mod engine_tests;
pub mod error;
pub mod eval;
pub mod fake;
pub mod fmt;
pub mod functions;
#[cfg(test)]
mod fuzz_tests;
pub mod graph;
pub mod lock;
pub mod permissions;
pub mod plan;
pub mod plan_file;
pub mod policy;
pub mod provider;
pub mod reconcile;
pub mod render;
pub mod render_json;
pub mod render_markdown;
pub mod schema;
pub mod sqlite_state;
pub mod state;
pub mod state_commands;
pub mod validate;
pub mod value;
pub mod variables;
pub mod workflow;

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    use clap::Parser as _;
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; every usage error exits 1.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
        }
    };
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match commands::execute(cli) {
        Ok(code) => code,
        Err(error::Error::Config(sources, diags)) => {
            eprintln!("{}", diags.render(&sources, color));
            eprintln!(
                "{} error(s) in the configuration; nothing was changed.",
                diags.errors()
            );
            1
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
