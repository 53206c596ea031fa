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
    pub(crate) chdir: Option<PathBuf>,
    /// Never colour the output (also: `NO_COLOR`, or a non-terminal stdout).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
    /// Wait this long (30s, 5m, 1h) for the state lock instead of stopping at once.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) lock_timeout: Option<std::time::Duration>,
    /// How long a lock of the S3 backend's state lasts without a heartbeat: a lock left by a
    /// runner that died is taken over once it expires.
    #[arg(long, global = true, value_name = "DURATION", env = "SKYFORM_LOCK_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub(crate) lock_lease: std::time::Duration,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Args, Default)]
pub(crate) struct VarArgs {
    /// Set a variable: --var NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
    /// Read variables from a file of NAME = VALUE lines, or a JSON object (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args, Default)]
pub(crate) struct TargetArgs {
    /// Limit the run to this resource and what it depends on (repeatable); the plan is partial.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub(crate) targets: Vec<String>,
    /// Leave this resource, instance or module alone, and what depends on it (repeatable; with
    /// a destroy: what it depends on); the plan is partial.
    #[arg(long = "exclude", value_name = "ADDRESS")]
    pub(crate) excludes: Vec<String>,
    /// Also delete objects tagged with this state's lineage that neither the state nor the
    /// configuration holds (by default the plan lists them and leaves them alone).
    #[arg(long)]
    pub(crate) prune_tagged: bool,
}

#[derive(Debug, Clone, Copy, Args, Default)]
pub(crate) struct StatsArg {
    /// Print to stderr what the run cost: AWS requests by service and action, retries,
    /// throttles, wall time per phase and peak memory.
    #[arg(long)]
    pub(crate) stats: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the configuration without touching AWS or the state.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Say which backend holds the state and check that it is reachable; writes nothing.
    Init,
    /// Manage workspaces: separate states of one configuration (staging, prod).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Show what apply would change.
    Plan {
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        targets: TargetArgs,
        /// Exit 0 with no changes, 2 with changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the destruction of everything in state.
        #[arg(long, conflicts_with = "refresh_only")]
        destroy: bool,
        /// Force the replacement of this resource (repeatable).
        #[arg(long = "replace", value_name = "ADDRESS")]
        replace: Vec<String>,
        /// Plan no change: show only what a refresh would record in the state.
        #[arg(long)]
        refresh_only: bool,
        /// `--refresh=false` plans from the state as last recorded, without reading the
        /// objects it holds from AWS (Terraform's flag): fast, but blind to changes made
        /// outside skyform. The plan says so.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, conflicts_with = "refresh_only")]
        refresh: bool,
        /// How many AWS reads the refresh may have in flight at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
        parallelism: u32,
        #[command(flatten)]
        stats: StatsArg,
        /// Save the plan to FILE, for `skyform apply FILE` and `skyform show FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print Terraform's JSON plan representation instead of the human plan.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print a Markdown summary for a pull request instead of the human plan.
        #[arg(long)]
        markdown: bool,
        /// The most characters the Markdown may have (GitHub's comment limit by default): the
        /// full plan, then the changes table, is cut to fit, saying so.
        #[arg(long, value_name = "N", default_value_t = 65_535, value_parser = clap::value_parser!(u64).range(1024..))]
        markdown_limit: u64,
    },
    /// Make AWS match the configuration, or apply a saved plan exactly.
    Apply {
        /// A plan saved with `plan --out`: applied without a prompt, if nothing changed since.
        #[arg(value_name = "PLANFILE")]
        plan_file: Option<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        targets: TargetArgs,
        /// Force the replacement of this resource (repeatable).
        #[arg(long = "replace", value_name = "ADDRESS")]
        replace: Vec<String>,
        /// Apply without asking for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How many operations (and refresh reads) may run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
        parallelism: u32,
        #[command(flatten)]
        stats: StatsArg,
    },
    /// Delete everything skyform created.
    Destroy {
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        targets: TargetArgs,
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
        parallelism: u32,
        #[command(flatten)]
        stats: StatsArg,
    },
    /// Print a saved plan; without one, `--json` prints the state (Terraform's `values`).
    Show {
        #[arg(value_name = "PLANFILE")]
        file: Option<PathBuf>,
        /// Terraform's JSON plan representation (of the state, without PLANFILE).
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// A Markdown summary.
        #[arg(long)]
        markdown: bool,
        /// The most characters the Markdown may have (GitHub's comment limit by default).
        #[arg(long, value_name = "N", default_value_t = 65_535, value_parser = clap::value_parser!(u64).range(1024..))]
        markdown_limit: u64,
    },
    /// Adopt an existing AWS object into the state under ADDRESS.
    Import {
        /// The resource's address in the configuration, e.g. `aws_iam_role.r`.
        address: String,
        /// The object's id, as `skyform schema TYPE` describes `id` (a role's name, a policy's ARN).
        id: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Report what changed in AWS outside skyform, and since when; exit 2 when anything did.
    /// It records only when each drift was first seen (unless --no-record).
    Drift {
        #[command(flatten)]
        vars: VarArgs,
        /// Terraform's `resource_drift` entries, each with `first_seen` times.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// A Markdown table, e.g. for an issue opened by a scheduled CI job.
        #[arg(long)]
        markdown: bool,
        /// Write nothing at all, not even when each drift was first seen.
        #[arg(long)]
        no_record: bool,
    },
    /// Record in the state what AWS now says; change nothing in AWS.
    Refresh {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Rewrite *.sky.hcl and *.tf files in the canonical format.
    Fmt {
        /// Change nothing; exit 1 when a file is not formatted.
        #[arg(long)]
        check: bool,
        /// Print the changes as a diff.
        #[arg(long)]
        diff: bool,
    },
    /// Print the dependency graph in DOT.
    Graph,
    /// Release a state lock left by a writer that is gone (see the lock error for its id).
    ForceUnlock {
        lock_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
    /// Print the reference of the built-in functions (Markdown).
    Functions,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// List the addresses in state.
    List,
    /// Show one resource's attributes.
    Show { address: String },
    /// Forget resources without deleting them from AWS.
    Rm {
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
    /// Rename a resource in the state (after renaming its block).
    Mv { from: String, to: String },
    /// Give this state a new lineage, for a state copied to start another environment: objects
    /// tagged with the old lineage that this state does not hold are then never adopted.
    NewLineage,
    /// Copy the state to another backend (`--to s3` after adding a backend "s3" block, `--to
    /// local` before removing it), with its lineage, serial, owner and intents.
    Migrate {
        #[arg(long, value_parser = ["s3", "local"])]
        to: String,
    },
    /// Print the whole state as JSON (skyform's format), secrets included: for backups.
    Pull,
    /// Replace the state with FILE (from `state pull`); refused unless it is the same lineage
    /// and newer, unless --force.
    Push {
        file: PathBuf,
        /// Skip the lineage and serial checks.
        #[arg(long)]
        force: bool,
    },
    /// Take over what a Terraform state (format version 4) holds: every object of a supported
    /// type is read from AWS and recorded under its Terraform address; other types and data
    /// sources are listed and left out. Only into an empty skyform state; the Terraform state
    /// file is only read.
    ImportTerraform {
        /// The Terraform state file, e.g. `terraform.tfstate` (or `terraform state pull > FILE`).
        #[arg(required_unless_present = "from_backend")]
        path: Option<PathBuf>,
        /// Read the Terraform state from the S3 backend instead: the object at the backend's
        /// `key` (for the selected workspace), which Terraform wrote and skyform never writes.
        #[arg(long, conflicts_with = "path")]
        from_backend: bool,
        #[command(flatten)]
        vars: VarArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// List the workspaces; the selected one is marked with `*`.
    List,
    /// Create a workspace and select it.
    New { name: String },
    /// Select a workspace for the next commands (recorded in .skyform/environment).
    Select { name: String },
    /// Delete a workspace's state; refused for the selected one, and for a state that holds
    /// resources unless --force.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Print the selected workspace.
    Show,
}

/// `--lock-timeout`: plain seconds, or a duration as humantime reads it (`30s`, `5m`, `1h`,
/// `1h 30m`). humantime is the well-kept parser of these spellings; plain seconds are
/// skyform's own, kept for scripts that pass a number.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| format!("{text:?} is not a duration such as 30s, 5m or 1h"));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("{text:?} is not a duration such as 30s, 5m or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_in_seconds_or_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("soon"),
            Err("\"soon\" is not a duration such as 30s, 5m or 1h".into())
        );
    }
}
