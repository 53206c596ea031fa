//! Command-line arguments (clap derive only; nothing below `commands` sees clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "skyform",
    version,
    about = "Declarative plan/apply for AWS compute clusters"
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Never colour the output (also: NO_COLOR, or a non-terminal stdout).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args, Default)]
pub struct VarArgs {
    /// Set a variable: --var NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file of NAME = VALUE lines, or a JSON object (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration without touching AWS or the state.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show what apply would change.
    Plan {
        #[command(flatten)]
        vars: VarArgs,
        /// Exit 0 with no changes, 2 with changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the destruction of everything in state.
        #[arg(long)]
        destroy: bool,
    },
    /// Make AWS match the configuration.
    Apply {
        #[command(flatten)]
        vars: VarArgs,
        /// Apply without asking for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How many operations may run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
        parallelism: u32,
    },
    /// Delete everything skyform created.
    Destroy {
        #[command(flatten)]
        vars: VarArgs,
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
        parallelism: u32,
    },
    /// Print outputs from the state.
    Output {
        name: Option<String>,
        /// Print a string output without quotes, sensitive or not.
        #[arg(long)]
        raw: bool,
        #[arg(long, conflicts_with = "raw")]
        json: bool,
    },
    /// Inspect the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Show the AWS identity and credential source in use, or diagnose why there is none.
    Check {
        #[command(flatten)]
        vars: VarArgs,
        /// Also compare with the state's owner, and list (and simulate) the IAM actions the
        /// next apply needs.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print the least-privilege IAM policy that lets this configuration be planned and applied.
    Policy {
        #[command(flatten)]
        vars: VarArgs,
        /// What the policy must allow: plan (reads), apply (plan + create and update),
        /// destroy (plan + delete) or all.
        #[arg(long, default_value = "apply", value_parser = ["plan", "apply", "destroy", "all"])]
        scope: String,
        /// Also allow destroying (same as adding the destroy scope).
        #[arg(long)]
        destroy: bool,
        /// Print a ready-to-apply `aws_iam_policy` resource of this name instead of bare JSON.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The 12-digit account id for the ARNs; asked of AWS (STS) when omitted.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Print the attribute reference of resource types, from the schemas (Markdown).
    Schema {
        /// A resource or data source type; all when omitted.
        type_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the addresses in state.
    List,
    /// Show one resource's attributes.
    Show { address: String },
}
