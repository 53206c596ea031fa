//! The commands: thin adapters from parsed arguments to the core (`plan`, `apply`, state).
//! Each returns an `Outcome` or an `Error` (`error::exit_code` turns either into the exit
//! code); printing happens here and in `render`.

use std::io::IsTerminal as _;

use crate::cli::args::{Cli, Command, StateCommand, TargetArgs, VarArgs, WorkspaceCommand};
use crate::cli::backend::{self, Selection};
use crate::cli::context::{connect, print_warnings, shown, workspace, Context, Format};
use crate::cli::{state_commands, workflow};
use crate::engine::plan::PlanOptions;
use crate::error::{ConfigError, Error, Outcome, OutputError};
use crate::lang::address::Address;
use crate::render::human::Style;
use crate::state::objects::ObjectStore as _;
use crate::state::StateStore as _;

pub(crate) fn execute(cli: Cli) -> Result<Outcome, Error> {
    let result = run(cli);
    // Also after a failure: what a failed run cost is worth knowing.
    crate::cli::stats::report();
    result
}

fn run(cli: Cli) -> Result<Outcome, Error> {
    let ctx = context(&cli)?;
    match cli.command {
        Command::Init => block_on(init(&ctx)),
        Command::Workspace(command) => block_on(workspace_command(&ctx, command)),
        Command::Validate { vars } => validate(&ctx, &vars),
        Command::Plan {
            vars,
            targets,
            detailed_exitcode,
            destroy,
            replace,
            refresh_only,
            refresh,
            parallelism,
            stats,
            out,
            json,
            markdown,
            markdown_limit,
        } => {
            crate::aws::set_parallelism(parallelism as usize);
            crate::cli::stats::enable(stats.stats);
            let request = workflow::PlanRequest {
                opts: PlanOptions {
                    refresh_only,
                    skip_refresh: !refresh,
                    ..options(&targets, &replace, destroy)?
                },
                format: Format::of(json, markdown, markdown_limit),
                out,
                detailed: detailed_exitcode,
            };
            block_on(workflow::plan(&ctx, &vars, request))
        }
        Command::Apply {
            plan_file: Some(file),
            vars,
            targets,
            replace,
            parallelism,
            stats,
            ..
        } => {
            crate::aws::set_parallelism(parallelism as usize);
            crate::cli::stats::enable(stats.stats);
            if !targets.targets.is_empty()
                || !targets.excludes.is_empty()
                || targets.prune_tagged
                || !replace.is_empty()
            {
                return Err(Error::Usage(
                    "a saved plan carries its own options; --target, --exclude, --prune-tagged and --replace cannot be given with PLANFILE".into(),
                ));
            }
            // Sensitive variables are given again: the plan file holds only their digests.
            block_on(workflow::apply_saved(
                &ctx,
                &file,
                &vars,
                parallelism as usize,
            ))
        }
        Command::Apply {
            plan_file: None,
            vars,
            targets,
            replace,
            auto_approve,
            parallelism,
            stats,
        } => {
            crate::aws::set_parallelism(parallelism as usize);
            crate::cli::stats::enable(stats.stats);
            let opts = options(&targets, &replace, false)?;
            block_on(workflow::apply(
                &ctx,
                &vars,
                opts,
                auto_approve,
                parallelism as usize,
            ))
        }
        Command::Destroy {
            vars,
            targets,
            auto_approve,
            parallelism,
            stats,
        } => {
            crate::aws::set_parallelism(parallelism as usize);
            crate::cli::stats::enable(stats.stats);
            let opts = options(&targets, &[], true)?;
            block_on(workflow::apply(
                &ctx,
                &vars,
                opts,
                auto_approve,
                parallelism as usize,
            ))
        }
        Command::Show {
            file,
            json,
            markdown,
            markdown_limit,
        } => match file {
            Some(file) => workflow::show(&ctx, &file, Format::of(json, markdown, markdown_limit)),
            None if json => block_on(workflow::show_state(&ctx)),
            None => Err(Error::Usage(
                "show needs a PLANFILE; without one, `show --json` prints the state".into(),
            )),
        },
        Command::Import { address, id, vars } => {
            block_on(workflow::import(&ctx, &vars, &address_of(&address)?, &id))
        }
        Command::Drift {
            vars,
            json,
            markdown,
            no_record,
        } => block_on(workflow::drift(
            &ctx,
            &vars,
            Format::of(json, markdown, 0),
            !no_record,
        )),
        Command::Refresh { vars } => block_on(workflow::refresh(&ctx, &vars)),
        Command::Output { name, raw, json } => block_on(output(&ctx, name.as_deref(), raw, json)),
        Command::State(command) => state(&ctx, command),
        Command::Schema { type_name } => schema(type_name.as_deref()),
        Command::Functions => {
            print!("{}", crate::lang::functions::reference_markdown());
            Ok(Outcome::Done)
        }
        Command::Check { vars, verbose } => {
            block_on(crate::cli::check::check(&ctx, &vars, verbose))
        }
        Command::Policy {
            vars,
            scope,
            destroy,
            name,
            account,
        } => block_on(policy(
            &ctx,
            &vars,
            &scope,
            destroy,
            name.as_deref(),
            account,
        )),
        Command::Fmt { check, diff } => crate::cli::fmt::run(&ctx.dir, check, diff),
        Command::Graph => graph(&ctx),
        Command::ForceUnlock { lock_id, force } => {
            block_on(state_commands::force_unlock(&ctx, &lock_id, force))
        }
        Command::Completions { shell } => Ok(completions(shell)),
    }
}

/// The settings every command shares, from the global flags.
fn context(cli: &Cli) -> Result<Context, Error> {
    let dir = match &cli.chdir {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "-C: {} is not a directory",
            dir.display()
        )));
    }
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    // Commands that never open the state do not read the backend either: `fmt` must work on
    // files whose backend block is wrong, to fix them.
    let needs_state = !matches!(
        cli.command,
        Command::Fmt { .. }
            | Command::Completions { .. }
            | Command::Schema { .. }
            | Command::Functions
            | Command::Validate { .. }
            | Command::Graph
    );
    let selection = if needs_state {
        Selection::read(&dir, cli.lock_lease)?
    } else {
        Selection::of(
            crate::lang::terraform::Backend::Local,
            crate::cli::backend::DEFAULT_WORKSPACE.into(),
            cli.lock_lease,
        )
    };
    Ok(Context {
        dir,
        style: Style { color },
        lock_timeout: cli.lock_timeout,
        selection,
    })
}

/// `init`: says which backend and workspace hold the state, checks that an S3 bucket is
/// reachable with these credentials and what it holds, and writes nothing (CI runs it first).
async fn init(ctx: &Context) -> Result<Outcome, Error> {
    println!("{}", ctx.selection.describe(&ctx.dir));
    if let Some(objects) = &ctx.selection.objects {
        objects
            .check_bucket()
            .await
            .map_err(|e| crate::state::StateError::Db(e.to_string()))?;
        println!("The bucket {} is reachable.", objects.location());
    }
    backend::refuse_unmigrated(&ctx.dir, &ctx.selection).await?;
    match ctx.state().load_existing().await? {
        Some(s) => println!(
            "It holds a state: lineage {}, serial {}, {} resources.",
            s.lineage,
            s.serial,
            s.resources.len()
        ),
        None => println!("It holds no state yet; the first apply writes one."),
    }
    println!("skyform is initialized.");
    Ok(Outcome::Done)
}

/// `workspace list|new|select|delete|show`.
async fn workspace_command(ctx: &Context, command: WorkspaceCommand) -> Result<Outcome, Error> {
    use crate::cli::workspace as ws;
    match command {
        WorkspaceCommand::List => ws::list(ctx).await,
        WorkspaceCommand::Show => Ok(ws::show(ctx)),
        WorkspaceCommand::New { name } => ws::new(ctx, &name).await,
        WorkspaceCommand::Select { name } => ws::select(ctx, &name).await,
        WorkspaceCommand::Delete { name, force } => ws::delete(ctx, &name, force).await,
    }
}

/// What a plan covers, from `--target`, `--prune-tagged` and `--replace`.
fn options(targets: &TargetArgs, replace: &[String], destroy: bool) -> Result<PlanOptions, Error> {
    Ok(PlanOptions {
        destroy,
        targets: addresses(&targets.targets)?,
        excludes: targets
            .excludes
            .iter()
            .map(|e| e.parse())
            .collect::<Result<_, _>>()?,
        replace: addresses(replace)?,
        prune_tagged: targets.prune_tagged,
        ..PlanOptions::default()
    })
}

/// `state list|show|rm|mv|new-lineage|import-terraform`; the edits take the state lock.
fn state(ctx: &Context, command: StateCommand) -> Result<Outcome, Error> {
    match command {
        StateCommand::List => block_on(state_commands::list(ctx)),
        StateCommand::Show { address } => {
            block_on(state_commands::show(ctx, &address_of(&address)?))
        }
        StateCommand::Rm { addresses: list } => {
            let list = addresses(&list)?;
            block_on(workflow::locked(
                ctx,
                "state rm",
                state_commands::rm(ctx, &list),
            ))
        }
        StateCommand::Mv { from, to } => {
            let (from, to) = (address_of(&from)?, address_of(&to)?);
            block_on(workflow::locked(
                ctx,
                "state mv",
                state_commands::mv(ctx, &from, &to),
            ))
        }
        StateCommand::ImportTerraform { path, vars, .. } => {
            block_on(workflow::import_terraform(ctx, &vars, path.as_deref()))
        }
        StateCommand::NewLineage => block_on(workflow::locked(
            ctx,
            "state new-lineage",
            state_commands::new_lineage(ctx),
        )),
        StateCommand::Migrate { to } => block_on(state_commands::migrate(ctx, to == "s3")),
        StateCommand::Pull => block_on(state_commands::pull(ctx)),
        StateCommand::Push { file, force } => block_on(workflow::locked(
            ctx,
            "state push",
            state_commands::push(ctx, &file, force),
        )),
    }
}

/// A shell completion script, from clap's own description of the command line.
fn completions(shell: clap_complete::Shell) -> Outcome {
    use clap::CommandFactory as _;
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "skyform",
        &mut std::io::stdout(),
    );
    Outcome::Done
}

/// Runs a command's async work on a runtime of its own: skyform is one thread, and the AWS
/// calls it makes at once are futures on it.
fn block_on<T>(work: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    runtime()?.block_on(work)
}

pub(crate) fn address_of(text: &str) -> Result<Address, Error> {
    Ok(text.parse()?)
}

fn addresses(list: &[String]) -> Result<Vec<Address>, Error> {
    list.iter().map(|t| address_of(t)).collect()
}

fn graph(ctx: &Context) -> Result<Outcome, Error> {
    let (ws, warnings) = workspace(&ctx.dir, &VarArgs::default(), false)?;
    print_warnings(&ws, &warnings, ctx.style);
    print!("{}", ws.graph.to_dot());
    Ok(Outcome::Done)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn validate(ctx: &Context, vars: &VarArgs) -> Result<Outcome, Error> {
    let (ws, warnings) = workspace(&ctx.dir, vars, false)?;
    print_warnings(&ws, &warnings, ctx.style);
    let diags = crate::engine::plan::check_values::<crate::aws::AwsProvider>(&ws);
    if diags.has_errors() {
        return Err(ConfigError::new(ws.config.sources, diags).into());
    }
    println!(
        "Success! The configuration is valid ({} resources, {} data sources).",
        ws.config
            .resources
            .keys()
            .filter(|a| a.mode == crate::lang::address::Mode::Managed)
            .count(),
        ws.config
            .resources
            .keys()
            .filter(|a| a.mode == crate::lang::address::Mode::Data)
            .count()
    );
    crate::cli::context::leave_to_exit(ws);
    Ok(Outcome::Done)
}

async fn output(
    ctx: &Context,
    name: Option<&str>,
    raw: bool,
    json: bool,
) -> Result<Outcome, Error> {
    let state = ctx.state().load().await?;
    match name {
        None if raw => Err(Error::Usage("--raw needs an output name".into())),
        None if json => {
            let all: serde_json::Map<String, serde_json::Value> = state
                .outputs
                .iter()
                .map(|(n, o)| {
                    (
                        n.clone(),
                        serde_json::json!({"value": o.value, "sensitive": o.sensitive}),
                    )
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            Ok(Outcome::Done)
        }
        None => {
            for (n, o) in &state.outputs {
                println!("{n} = {}", shown(o));
            }
            Ok(Outcome::Done)
        }
        Some(n) => {
            let o = state.outputs.get(n).ok_or_else(|| OutputError::Unknown {
                name: n.to_string(),
                available: state.outputs.keys().cloned().collect(),
            })?;
            if json {
                println!("{}", o.value);
            } else if raw {
                match &o.value {
                    serde_json::Value::String(s) => println!("{s}"),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                        println!("{}", o.value);
                    }
                    _ => return Err(OutputError::NotScalar(n.to_string()).into()),
                }
            } else {
                println!("{}", shown(o));
            }
            Ok(Outcome::Done)
        }
    }
}

async fn policy(
    ctx: &Context,
    vars: &VarArgs,
    scope: &str,
    destroy: bool,
    name: Option<&str>,
    account: Option<String>,
) -> Result<Outcome, Error> {
    let mut scope = crate::aws::permissions::Scope::parse(scope)
        .ok_or_else(|| Error::Usage(format!("unknown scope {scope:?}")))?;
    scope.destroy |= destroy;
    let (ws, warnings) = workspace(&ctx.dir, vars, false)?;
    print_warnings(&ws, &warnings, ctx.style);
    let account = match account {
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a,
        Some(a) => {
            return Err(Error::Usage(format!(
                "--account must be a 12-digit AWS account id, not {a:?}"
            )))
        }
        None => {
            let provider = connect(&ws).await?;
            crate::engine::provider::Provider::identity(&provider)
                .await
                .map_err(Error::AccountUnknown)?
                .tenant
        }
    };
    let needs = crate::aws::permissions::for_config(&ws, scope);
    let mut grants = crate::aws::permissions::grants(&needs, &account);
    if let Some((crate::lang::terraform::Backend::S3(s3), _)) = &ws.config.backend {
        grants.extend(crate::aws::permissions::backend_grants(s3, &account));
    }
    let doc = crate::aws::permissions::document(&grants);
    match name {
        Some(n) => print!("{}", crate::aws::permissions::resource_block(n, &doc)),
        None => println!("{}", doc.to_pretty()),
    }
    Ok(Outcome::Done)
}

fn schema(type_name: Option<&str>) -> Result<Outcome, Error> {
    let reg = crate::aws::schemas::registry();
    let mut printed = false;
    for (kind, map) in [("resource", &reg.resources), ("data source", &reg.data)] {
        for (name, s) in map {
            if type_name.is_none_or(|t| t == name) {
                println!("{}", s.to_markdown(kind));
                printed = true;
            }
        }
    }
    if printed {
        Ok(Outcome::Done)
    } else {
        Err(Error::UnknownType(
            type_name.unwrap_or_default().to_string(),
        ))
    }
}
