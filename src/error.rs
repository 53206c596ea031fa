//! The errors a command can end with, one type per kind with the data it is about, and the one
//! table that turns a command's result into the process's exit code.
//!
//! | code | when |
//! |---|---|
//! | 0 | the command did what it was asked; `plan --detailed-exitcode`: and there is nothing to change |
//! | 1 | any error (every `Error` variant, and a command-line clap cannot parse), and a command that reported its own failure ([`Outcome::Failed`]) |
//! | 2 | `plan --detailed-exitcode` found changes ([`Outcome::Changes`]); not an error |
//! | 130 | a second interrupt stopped an apply at once ([`INTERRUPTED`]) |
//!
//! Every error is 1 on purpose: scripts tell "changes" from "failed" by 2 versus 1, and the
//! message says which failure it was; a code per kind would be a promise nobody tests against.

use crate::engine::plan::PlanError;
use crate::engine::plan_file::PlanFileError;
use crate::engine::provider::ProviderError;
use crate::lang::address::{Address, AddressError};
use crate::lang::diagnostic::{Diagnostics, Sources};
use crate::state::lock::LockError;
use crate::state::StateError;

/// The command did what it was asked (for `plan --detailed-exitcode`: and found no change).
pub(crate) const SUCCESS: i32 = 0;
/// Something failed.
pub(crate) const FAILURE: i32 = 1;
/// `plan --detailed-exitcode` found changes.
pub(crate) const CHANGES: i32 = 2;
/// A second SIGINT or SIGTERM stopped an apply at once (128 + SIGINT, as shells report it).
pub(crate) const INTERRUPTED: i32 = 130;

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; for `plan --detailed-exitcode`, also: nothing to change.
    Done,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// The command reported its own failure as it went, in its own words: operations that
    /// failed, an interrupted or declined apply, files `fmt --check` would change, credentials
    /// `check` found unusable, a declined `force-unlock`.
    Failed,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> i32 {
        match self {
            Outcome::Done => SUCCESS,
            Outcome::Changes => CHANGES,
            Outcome::Failed => FAILURE,
        }
    }
}

/// The exit code of a command's result: the whole table, in one place.
pub(crate) fn exit_code(result: &Result<Outcome, Error>) -> i32 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => e.exit_code(),
    }
}

/// The exit code when clap did not produce a command: asking for help or the version is not
/// an error; anything else is a bad command line. (clap's own default for that is 2, which
/// here means "changes".)
pub(crate) fn unparsed_exit_code(kind: clap::error::ErrorKind) -> i32 {
    match kind {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => SUCCESS,
        _ => FAILURE,
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The configuration has errors; `run` prints them with their source lines.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command line itself is wrong: a bad flag value, a missing argument, options that
    /// cannot go together.
    #[error("{0}")]
    Usage(String),
    /// An address given on the command line does not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("AWS: {0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Planning failed for a reason other than the configuration (which is `Config`).
    #[error(transparent)]
    Plan(PlanError),
    #[error(transparent)]
    PlanFile(#[from] PlanFileError),
    #[error(transparent)]
    Stale(#[from] StalePlan),
    #[error(transparent)]
    StateEdit(#[from] StateEditError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    TerraformImport(#[from] TerraformImportError),
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Writing is refused: the state belongs to another AWS account.
    #[error("refusing to write: this state belongs to AWS account {owner_account} ({owner_arn}), but the credentials are {caller_arn} in account {caller_account}. Use the owner's credentials (see `skyform check -v`).")]
    OtherOwner {
        owner_account: String,
        owner_arn: String,
        caller_account: String,
        caller_arn: String,
    },
    /// A command that asks before it acts has nobody to ask.
    #[error("{command} needs confirmation, but stdin is not a terminal; {advice}")]
    Unconfirmed {
        command: &'static str,
        advice: &'static str,
    },
    /// A `provider "aws"` setting evaluated to something other than a string.
    #[error("provider settings must be strings")]
    ProviderSetting,
    /// `policy` without `--account`, and AWS would not say which account the caller is in.
    #[error(
        "cannot learn the account id from AWS ({0}); pass --account ID, or run `skyform check`"
    )]
    AccountUnknown(ProviderError),
    /// `schema NAME` for a type no provider has.
    #[error("no resource or data source type {0:?}")]
    UnknownType(String),
    /// `fmt` found files whose formatted text would mean something else.
    #[error("could not format {} without changing its meaning; left unchanged", .0.join(", "))]
    Unformattable(Vec<String>),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// This error's exit code. The match names every variant, so that a new kind of error
    /// gets its code decided here rather than by a catch-all.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::Usage(_)
            | Error::Address(_)
            | Error::Provider(_)
            | Error::State(_)
            | Error::Lock(_)
            | Error::Plan(_)
            | Error::PlanFile(_)
            | Error::Stale(_)
            | Error::StateEdit(_)
            | Error::Import(_)
            | Error::TerraformImport(_)
            | Error::Output(_)
            | Error::OtherOwner { .. }
            | Error::Unconfirmed { .. }
            | Error::ProviderSetting
            | Error::AccountUnknown(_)
            | Error::UnknownType(_)
            | Error::Unformattable(_)
            | Error::Io(_) => FAILURE,
        }
    }
}

/// Errors in the configuration, with the sources their diagnostics point into.
#[derive(Debug, thiserror::Error)]
#[error("{}", .diagnostics.render(.sources, false))]
pub(crate) struct ConfigError {
    pub(crate) sources: Box<Sources>,
    pub(crate) diagnostics: Diagnostics,
}

impl ConfigError {
    pub(crate) fn new(sources: Sources, diagnostics: Diagnostics) -> ConfigError {
        ConfigError {
            sources: Box::new(sources),
            diagnostics,
        }
    }
}

/// Why `apply FILE` refused a saved plan; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StalePlan {
    /// The configuration, the files it reads or the variables differ from the plan's.
    #[error("the saved plan is stale: {}\nNothing was changed; make a new plan.", .0.join("\n  "))]
    Inputs(Vec<String>),
    /// The state was written since, or is another state.
    #[error("the saved plan is stale: the state changed since it was made (serial {then} then, {now} now{}).\nNothing was changed; make a new plan.", another_state(*.other_lineage))]
    State {
        then: u64,
        now: u64,
        other_lineage: bool,
    },
    /// What AWS holds, or what the configuration now evaluates to, differs from the plan.
    #[error("the saved plan is stale: AWS or the evaluated configuration no longer matches the plan:\n{}\nNothing was changed; make a new plan.", .0.join("\n"))]
    Live(Vec<String>),
}

fn another_state(other_lineage: bool) -> &'static str {
    if other_lineage {
        ", and it is another state"
    } else {
        ""
    }
}

/// Why a `state` command or `force-unlock` changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateEditError {
    #[error("{0} is not in the state")]
    NotInState(Address),
    /// `state rm` with addresses the state does not hold; all are checked before any is removed.
    #[error("not in the state: {}; nothing was removed", list(.0))]
    NoneRemoved(Vec<Address>),
    #[error("{0} is already in the state")]
    AlreadyInState(Address),
    #[error("cannot move {from} to {to}: a resource keeps its type")]
    TypeChange { from: Address, to: Address },
    #[error("there is no state here yet; a new state gets a fresh lineage of its own")]
    NoState,
    #[error("the state has {0} operation(s) an interrupted apply left open; run `skyform apply` to settle them first")]
    OpenIntents(usize),
    #[error("no lock with id {0} holds this state")]
    NoSuchLock(String),
    /// `state migrate` or `state push` refused, or could not read what it was given.
    #[error("{0}")]
    Move(String),
}

fn list(addrs: &[Address]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `import ADDRESS ID` adopted nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("import needs a resource block for {0} in the configuration; add one, then import")]
    NotConfigured(Address),
    #[error("aws_iam_access_key cannot be imported: AWS never shows a key's secret again; create a new key with skyform instead")]
    AccessKey,
    #[error("{0} is already in the state; `skyform state rm {0}` first to import another object")]
    AlreadyManaged(Address),
    #[error("no {type_name} with id {id:?} exists in AWS ({region}); check the id (`skyform schema {type_name}` describes it)")]
    NotFound {
        type_name: String,
        id: String,
        region: String,
    },
}

/// Why a Terraform state was not imported; nothing was written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TerraformImportError {
    #[error("this is not a Terraform state (not valid JSON: {0}); nothing was imported")]
    NotJson(String),
    #[error("the Terraform state has format version {0}; only version 4 (written by Terraform 0.12 and later) is read. Let a current Terraform rewrite it (`terraform apply -refresh-only`), then import again; nothing was imported")]
    Version(u64),
    #[error("the Terraform state does not have the version 4 shape ({0}); nothing was imported")]
    Shape(String),
    #[error("skyform's state already holds {0} resource(s); import-terraform only fills an empty state. Import in a fresh directory, or `skyform state rm` them first; nothing was imported")]
    NotEmpty(usize),
    #[error("{addr} is {why} in the Terraform state, so Terraform would replace it; settle it with Terraform first (`terraform apply`), then import again; nothing was imported")]
    Unsettled { addr: String, why: &'static str },
    #[error("cannot read the Terraform state {path}: {message}; nothing was imported")]
    Read { path: String, message: String },
    #[error("{addr} (id {id:?}) from the Terraform state does not exist in AWS ({region}); nothing was imported")]
    NotFound {
        addr: Address,
        id: String,
        region: String,
    },
}

/// Why `output` printed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    #[error("no output named {name:?} in state; outputs: {}", .available.join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
    /// `--raw` prints only a string, number or bool.
    #[error("output {0:?} is not a string, number or bool; use --json")]
    NotScalar(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    /// One error of every kind, each with the code the table gives it.
    fn every_kind() -> Vec<(Error, i32)> {
        let aws = || ProviderError::new("AccessDenied", "no");
        let held = LockError::Held {
            id: "L".into(),
            host: "h".into(),
            pid: 1,
            user: "u".into(),
            command: "apply".into(),
            started_at: "t".into(),
            heartbeat_age: 0,
        };
        vec![
            (
                Error::Config(ConfigError::new(Sources::default(), Diagnostics::default())),
                1,
            ),
            (Error::Usage("--raw needs an output name".into()), 1),
            (Error::Address(AddressError("x".into())), 1),
            (Error::Provider(aws()), 1),
            (Error::State(StateError::Db("gone".into())), 1),
            (Error::Lock(held), 1),
            (Error::Plan(PlanError::Refresh(aws())), 1),
            (Error::PlanFile(PlanFileError::Corrupt("p".into())), 1),
            (Error::Stale(StalePlan::Inputs(vec!["x".into()])), 1),
            (Error::StateEdit(StateEditError::NoState), 1),
            (Error::Import(ImportError::AccessKey), 1),
            (Error::TerraformImport(TerraformImportError::Version(3)), 1),
            (Error::Output(OutputError::NotScalar("o".into())), 1),
            (
                Error::OtherOwner {
                    owner_account: "1".into(),
                    owner_arn: "a".into(),
                    caller_account: "2".into(),
                    caller_arn: "b".into(),
                },
                1,
            ),
            (
                Error::Unconfirmed {
                    command: "apply",
                    advice: "pass --auto-approve",
                },
                1,
            ),
            (Error::ProviderSetting, 1),
            (Error::AccountUnknown(aws()), 1),
            (Error::UnknownType("aws_x".into()), 1),
            (Error::Unformattable(vec!["a.sky.hcl".into()]), 1),
            (Error::Io(std::io::Error::other("disk")), 1),
        ]
    }

    #[test]
    fn every_kind_of_error_exits_with_the_code_the_table_gives_it() {
        for (error, code) in every_kind() {
            let shown = format!("{error:?}");
            assert_eq!(error.exit_code(), code, "{shown}");
            assert_eq!(exit_code(&Err(error)), code, "{shown}");
        }
    }

    #[test]
    fn outcomes_exit_0_for_done_2_for_changes_and_1_for_a_reported_failure() {
        assert_eq!(exit_code(&Ok(Outcome::Done)), 0);
        assert_eq!(exit_code(&Ok(Outcome::Changes)), 2);
        assert_eq!(exit_code(&Ok(Outcome::Failed)), 1);
    }

    #[test]
    fn help_and_version_are_not_errors_but_a_bad_command_line_is() {
        use clap::error::ErrorKind;
        assert_eq!(unparsed_exit_code(ErrorKind::DisplayHelp), 0);
        assert_eq!(unparsed_exit_code(ErrorKind::DisplayVersion), 0);
        assert_eq!(unparsed_exit_code(ErrorKind::UnknownArgument), 1);
        assert_eq!(unparsed_exit_code(ErrorKind::MissingRequiredArgument), 1);
    }

    #[test]
    fn typed_errors_keep_the_messages_users_and_tests_rely_on() {
        let stale = Error::Stale(StalePlan::State {
            then: 3,
            now: 5,
            other_lineage: true,
        });
        assert_eq!(
            stale.to_string(),
            "the saved plan is stale: the state changed since it was made (serial 3 then, 5 now, and it is another state).\nNothing was changed; make a new plan."
        );
        let missing = StateEditError::NoneRemoved(vec![addr("aws_vpc.a"), addr("aws_vpc.b")]);
        assert_eq!(
            missing.to_string(),
            "not in the state: aws_vpc.a, aws_vpc.b; nothing was removed"
        );
        let found = ImportError::NotFound {
            type_name: "aws_vpc".into(),
            id: "vpc-1".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(
            found.to_string(),
            "no aws_vpc with id \"vpc-1\" exists in AWS (us-east-1); check the id (`skyform schema aws_vpc` describes it)"
        );
        assert_eq!(
            Error::Provider(ProviderError::new("Throttling", "slow down")).to_string(),
            "AWS: Throttling: slow down"
        );
    }
}
