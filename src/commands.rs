//! The commands: thin adapters from parsed arguments to the core (`plan`, `apply`, state).
//! Each returns an exit code or an `Error`; printing happens here and in `render`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use crate::address::Address;
use crate::apply::{check_owner, Event, OpKind, OwnerCheck};
use crate::aws::{AwsProvider, AwsSettings};
use crate::cli::{Cli, Command, StateCommand, VarArgs};
use crate::diagnostic::Diagnostics;
use crate::error::Error;
use crate::graph::Graph;
use crate::plan::Workspace;
use crate::render::{render_plan, Style};
use crate::sqlite_state::SqliteState;
use crate::state::StateStore as _;
use crate::value::Value;
use crate::variables::{resolve, VarInputs};

/// Settings every command shares.
pub struct Context {
    pub dir: PathBuf,
    pub style: Style,
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
    };
    match cli.command {
        Command::Validate { vars } => validate(&ctx, &vars),
        Command::Plan {
            vars,
            detailed_exitcode,
            destroy,
        } => runtime()?.block_on(plan(&ctx, &vars, detailed_exitcode, destroy)),
        Command::Apply {
            vars,
            auto_approve,
            parallelism,
        } => runtime()?.block_on(apply(
            &ctx,
            &vars,
            auto_approve,
            parallelism as usize,
            false,
        )),
        Command::Destroy {
            vars,
            auto_approve,
            parallelism,
        } => runtime()?.block_on(apply(&ctx, &vars, auto_approve, parallelism as usize, true)),
        Command::Output { name, raw, json } => output(&ctx, name.as_deref(), raw, json),
        Command::State(StateCommand::List) => state_list(&ctx),
        Command::State(StateCommand::Show { address }) => state_show(&ctx, &address),
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
    }
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

/// A plan with what made it, so that apply reuses the same connection and state.
struct Planned {
    ws: Workspace,
    plan: crate::plan::Plan,
    store: SqliteState,
    provider: AwsProvider,
}

async fn make_plan(ctx: &Context, vars: &VarArgs, destroy: bool) -> Result<Planned, Error> {
    let (ws, warnings) = workspace(&ctx.dir, vars, true)?;
    print_warnings(&ws, &warnings, ctx.style);
    let mut store = ctx.state();
    let state = store.load()?;
    let provider = connect(&ws).await?;
    let plan = match crate::plan::plan(&provider, &ws, state, destroy).await {
        Ok(p) => p,
        Err(crate::plan::PlanError::Config(d)) => {
            return Err(Error::Config(Box::new(ws.config.sources), d))
        }
        Err(e) => return Err(Error::Usage(e.to_string())),
    };
    Ok(Planned {
        ws,
        plan,
        store,
        provider,
    })
}

async fn plan(ctx: &Context, vars: &VarArgs, detailed: bool, destroy: bool) -> Result<i32, Error> {
    let Planned { plan, provider, .. } = make_plan(ctx, vars, destroy).await?;
    print!("{}", render_plan(&plan, ctx.style));
    // Planning is a read, so it works under any identity; it says who owns what it reads.
    if plan.state.owner.is_some() && plan.has_resource_changes() {
        let caller = crate::provider::Provider::identity(&provider).await?;
        match check_owner(&plan.state, &caller) {
            OwnerCheck::OtherAccount(o) => eprintln!(
                "\nWarning: the state belongs to account {} ({}); you are {} in account {}. Apply will refuse to write.",
                o.account, o.arn, caller.arn, caller.account
            ),
            OwnerCheck::SameAccount(o) => eprintln!(
                "\nNote: the state was created by {}; you are {} in the same account.",
                o.arn, caller.arn
            ),
            OwnerCheck::Same | OwnerCheck::Unowned => {}
        }
    }
    Ok(if detailed && plan.has_changes() { 2 } else { 0 })
}

fn confirm(what: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{what} needs confirmation, but stdin is not a terminal; review the plan and run again with --auto-approve"
        )));
    }
    print!("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

async fn apply(
    ctx: &Context,
    vars: &VarArgs,
    auto_approve: bool,
    parallelism: usize,
    destroy: bool,
) -> Result<i32, Error> {
    let Planned {
        ws,
        plan,
        mut store,
        provider,
    } = make_plan(ctx, vars, destroy).await?;
    print!("{}", render_plan(&plan, ctx.style));
    if !plan.has_changes() {
        return Ok(0);
    }
    // The owner guard runs before the prompt and before any write, AWS or state.
    let caller = crate::provider::Provider::identity(&provider).await?;
    let owner_check = check_owner(&plan.state, &caller);
    match &owner_check {
        OwnerCheck::OtherAccount(o) => {
            return Err(Error::Usage(format!(
                "refusing to write: this state belongs to AWS account {} ({}), but the credentials are {} in account {}. Use the owner's credentials (see `skyform check -v`).",
                o.account, o.arn, caller.arn, caller.account
            )))
        }
        OwnerCheck::SameAccount(o) => eprintln!(
            "Warning: the state was created by {}; you are {} in the same account. Proceeding.",
            o.arn, caller.arn
        ),
        OwnerCheck::Same | OwnerCheck::Unowned => {}
    }
    if !auto_approve && !confirm(if destroy { "destroy" } else { "apply" })? {
        println!("\nApply cancelled.");
        return Ok(1);
    }
    if owner_check == OwnerCheck::Unowned {
        store.set_owner(&crate::state::Owner {
            account: caller.account.clone(),
            arn: caller.arn.clone(),
        })?;
    }
    println!();
    let mut on_event = |e: Event| match e {
        Event::Started(op) => println!("{}: {}...", op.addr, verb(op.kind, false)),
        Event::Finished { op, id, secs } => {
            let id = if op.kind == OpKind::Delete {
                String::new()
            } else {
                format!(" [id={id}]")
            };
            println!("{}: {} after {secs}s{id}", op.addr, verb(op.kind, true));
        }
        Event::Failed { op, .. } => println!("{}: {} failed", op.addr, verb(op.kind, false)),
    };
    let report = crate::apply::apply(
        &provider,
        &ws,
        &plan,
        &mut store,
        parallelism,
        &mut on_event,
    )
    .await?;
    for (addr, err) in &report.failures {
        eprintln!("\nError: {addr}: {err}");
    }
    for addr in &report.skipped {
        eprintln!("skipped {addr}: something it depends on failed");
    }
    let summary = if destroy {
        format!(
            "Destroy complete! Resources: {} destroyed.",
            report.destroyed
        )
    } else {
        format!(
            "Apply complete! Resources: {} added, {} changed, {} destroyed.",
            report.added, report.changed, report.destroyed
        )
    };
    if report.failures.is_empty() {
        println!("\n{}", ctx.style.bold(&summary));
        if !destroy {
            print_outputs(&store.load()?.outputs);
        }
        Ok(0)
    } else {
        eprintln!("\nApply failed: {} of the planned operations failed; state records everything that succeeded.", report.failures.len());
        Ok(1)
    }
}

fn verb(kind: OpKind, done: bool) -> &'static str {
    match (kind, done) {
        (OpKind::Create, false) => "Creating",
        (OpKind::Create, true) => "Creation complete",
        (OpKind::Update, false) => "Modifying",
        (OpKind::Update, true) => "Modifications complete",
        (OpKind::Delete, false) => "Destroying",
        (OpKind::Delete, true) => "Destruction complete",
    }
}

fn print_outputs(outputs: &BTreeMap<String, crate::state::OutputState>) {
    if outputs.is_empty() {
        return;
    }
    println!("\nOutputs:\n");
    for (name, o) in outputs {
        println!("{name} = {}", shown(o));
    }
}

fn shown(o: &crate::state::OutputState) -> String {
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

fn state_list(ctx: &Context) -> Result<i32, Error> {
    for addr in ctx.state().load()?.resources.keys() {
        println!("{addr}");
    }
    Ok(0)
}

fn state_show(ctx: &Context, address: &str) -> Result<i32, Error> {
    let addr: Address = address
        .parse()
        .map_err(|e: crate::address::AddressError| Error::Usage(e.to_string()))?;
    let state = ctx.state().load()?;
    let r = state
        .resources
        .get(&addr)
        .ok_or_else(|| Error::Usage(format!("{addr} is not in the state")))?;
    let sensitive = crate::plan::sensitive_of(&addr);
    println!(
        "# {addr}:\nresource {} {} {{",
        crate::value::quote(&addr.type_name),
        crate::value::quote(&addr.name)
    );
    let width = r.attrs.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &r.attrs {
        let text = if sensitive.contains(k) {
            "(sensitive value)".to_string()
        } else {
            Value::from_json(v).to_string()
        };
        println!("    {k:width$} = {text}");
    }
    println!("}}");
    Ok(0)
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
