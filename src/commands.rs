//! The commands: thin adapters from parsed arguments to the core (`plan`, `apply`, state).
//! Each returns an exit code or an `Error`; printing happens here and in `render`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use crate::address::Address;
use crate::aws::{AwsProvider, AwsSettings};
use crate::cli::{Cli, Command, StateCommand, VarArgs};
use crate::diagnostic::Diagnostics;
use crate::error::Error;
use crate::graph::Graph;
use crate::plan::{PlanOptions, Workspace};
use crate::render::Style;
use crate::sqlite_state::SqliteState;
use crate::state::StateStore as _;
use crate::value::Value;
use crate::variables::{resolve, VarInputs};
use crate::{state_commands, workflow};

/// Settings every command shares.
pub struct Context {
    pub dir: PathBuf,
    pub style: Style,
    pub lock_timeout: Option<std::time::Duration>,
}

impl Context {
    pub fn state(&self) -> SqliteState {
        SqliteState::new(self.dir.join(".skyform").join("state.db"))
    }
}

pub fn execute(cli: Cli) -> Result<i32, Error> {
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
    let ctx = Context {
        dir,
        style: Style { color },
        lock_timeout: cli.lock_timeout,
    };
    match cli.command {
        Command::Validate { vars } => validate(&ctx, &vars),
        Command::Plan {
            vars,
            targets,
            detailed_exitcode,
            destroy,
            replace,
            refresh_only,
            out,
            json,
            markdown,
        } => {
            let opts = PlanOptions {
                destroy,
                targets: addresses(&targets.targets)?,
                replace: addresses(&replace)?,
                refresh_only,
                prune_tagged: targets.prune_tagged,
            };
            let format = Format::of(json, markdown);
            let request = workflow::PlanRequest {
                opts,
                format,
                out,
                detailed: detailed_exitcode,
            };
            runtime()?.block_on(workflow::plan(&ctx, &vars, request))
        }
        Command::Apply {
            plan_file: Some(file),
            vars,
            targets,
            replace,
            parallelism,
            ..
        } => {
            if !targets.targets.is_empty() || targets.prune_tagged || !replace.is_empty() {
                return Err(Error::Usage(
                    "a saved plan carries its own options; --target, --prune-tagged and --replace cannot be given with PLANFILE".into(),
                ));
            }
            // Sensitive variables are given again: the plan file holds only their digests.
            runtime()?.block_on(workflow::apply_saved(
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
        } => {
            let opts = PlanOptions {
                targets: addresses(&targets.targets)?,
                replace: addresses(&replace)?,
                prune_tagged: targets.prune_tagged,
                ..PlanOptions::default()
            };
            runtime()?.block_on(workflow::apply(
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
        } => {
            let opts = PlanOptions {
                destroy: true,
                targets: addresses(&targets.targets)?,
                prune_tagged: targets.prune_tagged,
                ..PlanOptions::default()
            };
            runtime()?.block_on(workflow::apply(
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
        } => workflow::show(&ctx, &file, Format::of(json, markdown)),
        Command::Import { address, id, vars } => {
            let addr = address_of(&address)?;
            runtime()?.block_on(workflow::import(&ctx, &vars, &addr, &id))
        }
        Command::Refresh { vars } => runtime()?.block_on(workflow::refresh(&ctx, &vars)),
        Command::Output { name, raw, json } => output(&ctx, name.as_deref(), raw, json),
        Command::State(StateCommand::List) => state_commands::list(&ctx),
        Command::State(StateCommand::Show { address }) => {
            state_commands::show(&ctx, &address_of(&address)?)
        }
        Command::State(StateCommand::Rm { addresses: list }) => {
            let list = addresses(&list)?;
            let _lock = workflow::StateLock::take(&ctx, "state rm")?;
            state_commands::rm(&ctx, &list)
        }
        Command::State(StateCommand::Mv { from, to }) => {
            let (from, to) = (address_of(&from)?, address_of(&to)?);
            let _lock = workflow::StateLock::take(&ctx, "state mv")?;
            state_commands::mv(&ctx, &from, &to)
        }
        Command::State(StateCommand::NewLineage) => {
            let _lock = workflow::StateLock::take(&ctx, "state new-lineage")?;
            state_commands::new_lineage(&ctx)
        }
        Command::Schema { type_name } => schema(type_name.as_deref()),
        Command::Check { vars, verbose } => {
            runtime()?.block_on(crate::check::check(&ctx, &vars, verbose))
        }
        Command::Policy {
            vars,
            scope,
            destroy,
            name,
            account,
        } => runtime()?.block_on(policy(
            &ctx,
            &vars,
            &scope,
            destroy,
            name.as_deref(),
            account,
        )),
        Command::Fmt { check, diff } => crate::fmt::run(&ctx.dir, check, diff),
        Command::Graph => graph(&ctx),
        Command::ForceUnlock { lock_id, force } => {
            state_commands::force_unlock(&ctx, &lock_id, force)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "skyform",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    }
}

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

impl Format {
    fn of(json: bool, markdown: bool) -> Format {
        if json {
            Format::Json
        } else if markdown {
            Format::Markdown
        } else {
            Format::Human
        }
    }
}

pub fn address_of(text: &str) -> Result<Address, Error> {
    text.parse()
        .map_err(|e: crate::address::AddressError| Error::Usage(e.to_string()))
}

fn addresses(list: &[String]) -> Result<Vec<Address>, Error> {
    list.iter().map(|t| address_of(t)).collect()
}

fn graph(ctx: &Context) -> Result<i32, Error> {
    let (ws, warnings) = workspace(&ctx.dir, &VarArgs::default(), false)?;
    print_warnings(&ws, &warnings, ctx.style);
    print!("{}", ws.graph.to_dot());
    Ok(0)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Loads, checks and resolves the configuration; every problem is reported at once.
pub fn workspace(
    dir: &Path,
    vars: &VarArgs,
    require_vars: bool,
) -> Result<(Workspace, Diagnostics), Error> {
    let (config, mut diags) = crate::config::load(dir)?;
    diags.extend(crate::validate::check(&config));
    let graph = Graph::build(&config);
    diags.extend(graph.cycles(&config));
    let inputs = VarInputs {
        cli: vars.vars.clone(),
        files: vars.var_files.clone(),
        env: VarInputs::from_env(),
    };
    let (vars, var_diags) = resolve(&config, &inputs, require_vars);
    diags.extend(var_diags);
    if diags.has_errors() {
        return Err(Error::Config(Box::new(config.sources), diags));
    }
    let order = graph.order().unwrap_or_default();
    Ok((
        Workspace {
            config,
            graph,
            order,
            vars,
            files_read: Default::default(),
        },
        diags,
    ))
}

pub fn print_warnings(ws: &Workspace, diags: &Diagnostics, style: Style) {
    if !diags.is_empty() {
        eprintln!("{}", diags.render(&ws.config.sources, style.color));
    }
}

fn validate(ctx: &Context, vars: &VarArgs) -> Result<i32, Error> {
    let (ws, warnings) = workspace(&ctx.dir, vars, false)?;
    print_warnings(&ws, &warnings, ctx.style);
    let diags = crate::plan::check_values(&ws);
    if diags.has_errors() {
        return Err(Error::Config(Box::new(ws.config.sources), diags));
    }
    println!(
        "Success! The configuration is valid ({} resources, {} data sources).",
        ws.config
            .resources
            .keys()
            .filter(|a| a.mode == crate::address::Mode::Managed)
            .count(),
        ws.config
            .resources
            .keys()
            .filter(|a| a.mode == crate::address::Mode::Data)
            .count()
    );
    Ok(0)
}

/// The `provider "aws"` block's settings, evaluated.
pub fn provider_settings(ws: &Workspace) -> Result<AwsSettings, Error> {
    let ctx = ws.base_ctx();
    let eval = |e: &Option<crate::config::Expr>| -> Result<Option<String>, Error> {
        let Some(e) = e else { return Ok(None) };
        match ctx.eval_top(&e.expr) {
            Ok((Value::Null, _)) => Ok(None),
            Ok((v, _)) => v
                .to_template_string()
                .map(Some)
                .ok_or_else(|| Error::Usage("provider settings must be strings".into())),
            Err(err) => {
                let d = crate::plan::eval_diag(err, &e.span, "provider \"aws\"");
                Err(Error::Config(
                    Box::new(ws.config.sources.clone()),
                    Diagnostics(vec![d]),
                ))
            }
        }
    };
    Ok(AwsSettings {
        region: eval(&ws.config.provider.region)?,
        profile: eval(&ws.config.provider.profile)?,
    })
}

pub async fn connect(ws: &Workspace) -> Result<AwsProvider, Error> {
    Ok(AwsProvider::connect(&provider_settings(ws)?).await?)
}

pub fn shown(o: &crate::state::OutputState) -> String {
    if o.sensitive {
        "(sensitive value)".into()
    } else {
        Value::from_json(&o.value).to_string()
    }
}

fn output(ctx: &Context, name: Option<&str>, raw: bool, json: bool) -> Result<i32, Error> {
    let state = ctx.state().load()?;
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
            Ok(0)
        }
        None => {
            for (n, o) in &state.outputs {
                println!("{n} = {}", shown(o));
            }
            Ok(0)
        }
        Some(n) => {
            let o = state.outputs.get(n).ok_or_else(|| {
                Error::Usage(format!(
                    "no output named {n:?} in state; outputs: {}",
                    state.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            if json {
                println!("{}", o.value);
            } else if raw {
                match &o.value {
                    serde_json::Value::String(s) => println!("{s}"),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                        println!("{}", o.value)
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "output {n:?} is not a string, number or bool; use --json"
                        )))
                    }
                }
            } else {
                println!("{}", shown(o));
            }
            Ok(0)
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
) -> Result<i32, Error> {
    let mut scope = crate::permissions::Scope::parse(scope)
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
            crate::provider::Provider::identity(&provider)
                .await
                .map_err(|e| {
                    Error::Usage(format!(
                        "cannot learn the account id from AWS ({e}); pass --account ID, or run `skyform check`"
                    ))
                })?
                .account
        }
    };
    let needs = crate::permissions::for_config(&ws, scope);
    let doc = crate::permissions::document(&crate::permissions::grants(&needs, &account));
    match name {
        Some(n) => print!("{}", crate::permissions::resource_block(n, &doc)),
        None => println!("{}", doc.to_pretty()),
    }
    Ok(0)
}

fn schema(type_name: Option<&str>) -> Result<i32, Error> {
    let reg = crate::schema::registry();
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
        Ok(0)
    } else {
        Err(Error::Usage(format!(
            "no resource or data source type {:?}",
            type_name.unwrap_or_default()
        )))
    }
}
