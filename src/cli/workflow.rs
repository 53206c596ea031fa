//! The commands that read AWS and may write it: `plan` (and `--out`), `apply` (and `apply
//! FILE`), `destroy`, `show FILE`, `import`, `state import-terraform`, `refresh` and `drift`.
//! Each is a thin sequence over the core: load the workspace and state, plan through the
//! provider, print, guard the owner, apply, report.

use std::future::Future;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use crate::aws::AwsProvider;
use crate::cli::args::VarArgs;
use crate::cli::context::{ask, connect, print_warnings, shown, workspace, Context, Format};
use crate::cli::stats;
use crate::engine::apply::{check_owner, Event, OpKind, OwnerCheck};
use crate::engine::diff::Action;
use crate::engine::plan::{Plan, PlanError, PlanOptions, Workspace};
use crate::engine::plan_file;
use crate::engine::provider::{Provider as _, RefreshRequest};
use crate::error::{ConfigError, Error, ImportError, Outcome, StalePlan, TerraformImportError};
use crate::lang::address::{Address, Mode};
use crate::lang::schema::Registry;
use crate::state::{Owner, ResourceState, State, StateStore};

/// Runs `work` under the state lock taken for `command`: another writer is refused (or waited
/// for, with `--lock-timeout`), the heartbeat beats while `work` runs, and the lock is released
/// when it is done, whatever it returned. The lock's store is the command's own store kind,
/// opened once more, so that its heartbeat never waits behind the work's writes.
pub(crate) async fn locked<T>(
    ctx: &Context,
    command: &str,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut store = ctx.state();
    let held =
        crate::state::lock::acquire(&mut store, command, ctx.lock_timeout, ctx.selection.lease)
            .await?;
    held.hold(&mut store, work).await
}

/// A plan with what made it, so that apply reuses the same connection and state.
struct Planned<S> {
    ws: Workspace,
    plan: Plan,
    store: S,
    provider: AwsProvider,
}

fn plan_error(ws: Workspace, e: PlanError) -> Error {
    match e {
        PlanError::Config(d) => ConfigError::new(ws.config.sources, d).into(),
        e => Error::Plan(e),
    }
}

/// Loads the configuration and variables (all of them required), printing its warnings.
fn plan_workspace(ctx: &Context, vars: &VarArgs) -> Result<Workspace, Error> {
    let (ws, warnings) = stats::timed("load", || workspace(&ctx.dir, vars, true))?;
    print_warnings(&ws, &warnings, ctx.style);
    Ok(ws)
}

/// Connects, reads the state from `store` and plans. It writes nothing: what an interrupted
/// apply left is shown in the plan, and only an apply records it. A writer calls it inside
/// `locked`, so that the state it plans against is the one it will write.
async fn make_plan<S: StateStore>(
    ws: Workspace,
    mut store: S,
    opts: &PlanOptions,
) -> Result<Planned<S>, Error> {
    let provider = connect(&ws).await?;
    let state = store.load().await?;
    let sent = crate::aws::requests_sent();
    let started = std::time::Instant::now();
    match crate::engine::plan::plan(&provider, &ws, state, opts).await {
        Ok(plan) => {
            let refreshing = plan.refreshed.map_or(std::time::Duration::ZERO, |(_, d)| d);
            stats::phase("refresh", refreshing);
            stats::phase("evaluate", started.elapsed().saturating_sub(refreshing));
            if let Some((n, took)) = plan.refreshed.filter(|(n, _)| *n >= REFRESH_SUMMARY_MIN) {
                // On stderr: stdout may be a JSON or Markdown plan. The requests are the
                // whole plan's: the lineage scan, the refresh and the data sources.
                let requests = crate::aws::requests_sent() - sent;
                eprintln!(
                    "Refreshed {} resources in {:.1} s ({} request{})",
                    thousands(n),
                    took.as_secs_f64(),
                    thousands(requests),
                    if requests == 1 { "" } else { "s" }
                );
            }
            Ok(Planned {
                ws,
                plan,
                store,
                provider,
            })
        }
        Err(e) => Err(plan_error(ws, e)),
    }
}

/// From how many refreshed objects a plan says how long its refresh took.
const REFRESH_SUMMARY_MIN: usize = 100;

/// `12000` as `12,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints the human plan to stdout as it is rendered (`render::human::write_plan`).
fn print_human(plan: &Plan, schemas: &Registry, style: crate::render::human::Style) {
    use std::io::Write as _;
    /// `fmt::Write` onto stdout. A closed stdout (`| head`) ends the rendering.
    struct Out<W>(W);
    impl<W: std::io::Write> std::fmt::Write for Out<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
        }
    }
    let mut out = Out(std::io::BufWriter::new(std::io::stdout().lock()));
    let _ = crate::render::human::write_plan(&mut out, plan, schemas, style);
    let _ = out.0.flush();
}

/// What a `--refresh=false` plan says of itself, in every view.
const NOT_REFRESHED: &str = "AWS was not read (--refresh=false): this plan compares the configuration with the state as last recorded, and cannot see changes made outside skyform.";

fn print_plan(plan: &Plan, schemas: &Registry, format: Format, ctx: &Context) {
    match format {
        Format::Human => {
            if plan.skip_refresh {
                println!("{} {NOT_REFRESHED}\n", ctx.style.bold("Note:"));
            }
            print_human(plan, schemas, ctx.style);
        }
        Format::Json => {
            let mut json = crate::render::json::plan_json(plan, schemas);
            if let (true, Some(o)) = (plan.skip_refresh, json.as_object_mut()) {
                // skyform's own key: Terraform's format has no word for it.
                o.insert(
                    "skyform_not_refreshed".into(),
                    serde_json::Value::from(NOT_REFRESHED),
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Markdown(limit) => {
            let mut limit = limit;
            if plan.skip_refresh {
                let note = format!("> **Note:** {NOT_REFRESHED}\n\n");
                // The limit is the whole comment's.
                limit = limit.saturating_sub(note.chars().count());
                print!("{note}");
            }
            print!(
                "{}",
                crate::render::markdown::plan_markdown(plan, schemas, limit)
            );
        }
    }
}

/// What `skyform plan` was asked for.
pub(crate) struct PlanRequest {
    pub(crate) opts: PlanOptions,
    pub(crate) format: Format,
    pub(crate) out: Option<PathBuf>,
    pub(crate) detailed: bool,
}

pub(crate) async fn plan(
    ctx: &Context,
    vars: &VarArgs,
    req: PlanRequest,
) -> Result<Outcome, Error> {
    let ws = plan_workspace(ctx, vars)?;
    crate::cli::backend::announce(&ctx.dir, &ctx.selection).await?;
    let Planned {
        ws, plan, provider, ..
    } = make_plan(ws, ctx.state(), &req.opts).await?;
    // Only the JSON plan and a plan file say what the configuration was; describing it is a
    // sixth of a large plan's time, so a human plan does without.
    let mut plan = plan;
    if req.format == Format::Json || req.out.is_some() {
        plan.described = Some(crate::render::json_config::described(&ws));
    }
    print_plan(&plan, ws.config.schemas, req.format, ctx);
    print_warnings(&ws, &plan.warnings, ctx.style);
    if let Some(out) = &req.out {
        plan_file::write(out, &plan_file::save(&ws, &plan, &req.opts))?;
        let note = format!(
            "\nSaved the plan to {}. To apply exactly this plan: skyform apply {}",
            out.display(),
            out.display()
        );
        // Machine-readable output keeps stdout to itself.
        if req.format == Format::Human {
            println!("{note}");
        } else {
            eprintln!("{note}");
        }
    }
    // Planning is a read, so it works under any identity; it says who owns what it reads.
    // Not with --refresh=false, which reads nothing (an apply still refuses a stranger).
    if plan.state.owner.is_some() && plan.has_effect() && !plan.skip_refresh {
        let caller = provider.identity().await?;
        match check_owner(&plan.state, &caller) {
            OwnerCheck::OtherAccount(o) => {
                eprintln!(
                    "\nWarning: the state belongs to account {} ({}); you are {} in account {}. Apply will refuse to write.",
                    o.tenant, o.principal, caller.principal, caller.tenant
                );
                for r in plan.state.resources.values() {
                    if let Some(owner) = r.attrs.get("owner").and_then(|o| o.get("arn")) {
                        eprintln!(
                            "  {} is owned by {}",
                            r.addr,
                            owner.as_str().unwrap_or_default()
                        );
                    }
                }
            }
            OwnerCheck::SameAccount(o) => eprintln!(
                "\nNote: the state was created by {}; you are {} in the same account.",
                o.principal, caller.principal
            ),
            OwnerCheck::Same | OwnerCheck::Unowned => {}
        }
    }
    let outcome = if req.detailed && plan.has_effect() {
        Outcome::Changes
    } else {
        Outcome::Done
    };
    crate::cli::context::leave_to_exit((ws, plan));
    Ok(outcome)
}

async fn confirm(command: &'static str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Unconfirmed {
            command,
            advice: "review the plan and run again with --auto-approve",
        });
    }
    let answer = ask("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ").await?;
    Ok(answer.trim() == "yes")
}

/// The guide's owner rule, before any write: another account is refused, another identity of
/// the same account is warned about. Returns the caller, to record as owner when there is none.
async fn guard_owner(provider: &AwsProvider, state: &State) -> Result<(OwnerCheck, Owner), Error> {
    let caller = provider.identity().await?;
    let check = check_owner(state, &caller);
    match &check {
        OwnerCheck::OtherAccount(o) => {
            return Err(Error::OtherOwner {
                owner_account: o.tenant.clone(),
                owner_arn: o.principal.clone(),
                caller_account: caller.tenant,
                caller_arn: caller.principal,
            })
        }
        OwnerCheck::SameAccount(o) => eprintln!(
            "Warning: the state was created by {}; you are {} in the same account. Proceeding.",
            o.principal, caller.principal
        ),
        OwnerCheck::Same | OwnerCheck::Unowned => {}
    }
    Ok((
        check,
        Owner {
            tenant: caller.tenant,
            principal: caller.principal,
        },
    ))
}

pub(crate) async fn apply(
    ctx: &Context,
    vars: &VarArgs,
    opts: PlanOptions,
    auto_approve: bool,
    parallelism: usize,
) -> Result<Outcome, Error> {
    let command = if opts.destroy { "destroy" } else { "apply" };
    // Refuse before anything is read or locked: without a terminal there is nobody to ask.
    if !auto_approve && !std::io::stdin().is_terminal() {
        return Err(Error::Unconfirmed {
            command,
            advice: "review `skyform plan` and run again with --auto-approve",
        });
    }
    let ws = plan_workspace(ctx, vars)?;
    crate::cli::backend::announce(&ctx.dir, &ctx.selection).await?;
    // Boxed: an apply's future is about 64 KB, too much to keep on the caller's stack.
    Box::pin(locked(
        ctx,
        command,
        apply_locked(ctx, ws, opts, auto_approve, parallelism),
    ))
    .await
}

/// `apply` and `destroy` once the state is locked: plan, show, confirm, execute.
async fn apply_locked(
    ctx: &Context,
    ws: Workspace,
    opts: PlanOptions,
    auto_approve: bool,
    parallelism: usize,
) -> Result<Outcome, Error> {
    let Planned {
        ws,
        plan,
        mut store,
        provider,
    } = make_plan(ws, ctx.state(), &opts).await?;
    print_human(&plan, ws.config.schemas, ctx.style);
    print_warnings(&ws, &plan.warnings, ctx.style);
    // Another account sees none of this state's objects: its "nothing to do" would be wrong
    // too, so the guard comes before that answer.
    let (check, caller) = guard_owner(&provider, &plan.state).await?;
    if !plan.has_effect() {
        return Ok(Outcome::Done);
    }
    if !auto_approve && !confirm(if plan.destroy { "destroy" } else { "apply" }).await? {
        println!("\nApply cancelled.");
        return Ok(Outcome::Failed);
    }
    if check == OwnerCheck::Unowned {
        store.set_owner(&caller).await?;
    }
    execute(ctx, &ws, &plan, &mut store, &provider, parallelism).await
}

/// Runs a reviewed plan and reports: per-operation progress, failures by address, counts.
async fn execute<S: StateStore>(
    ctx: &Context,
    ws: &Workspace,
    plan: &Plan,
    store: &mut S,
    provider: &AwsProvider,
    parallelism: usize,
) -> Result<Outcome, Error> {
    println!();
    let mut on_event = |e: Event| match e {
        Event::Started(op) => println!("{}: {}...", op.addr, verb(op.kind, false)),
        Event::Finished { op, id, secs } => {
            let id = if op.kind == OpKind::Delete || id.is_empty() {
                String::new()
            } else {
                format!(" [id={id}]")
            };
            println!("{}: {} after {secs}s{id}", op.addr, verb(op.kind, true));
        }
        Event::Failed { op, .. } => println!("{}: {} failed", op.addr, verb(op.kind, false)),
        Event::Note { op, message } => println!("{}: {message}", op.addr),
        Event::Still { op, elapsed } => println!(
            "{}: Still {}... [{} elapsed]",
            op.addr,
            verb(op.kind, false).to_lowercase(),
            elapsed_text(elapsed)
        ),
    };
    let opts = crate::engine::apply::ApplyOptions {
        progress: Some(progress_interval()),
        ..crate::engine::apply::ApplyOptions::with_parallelism(parallelism)
    };
    let watcher = tokio::spawn(watch_signals(opts.cancel.clone()));
    let started = std::time::Instant::now();
    let report = crate::engine::apply::apply(provider, ws, plan, store, &opts, &mut on_event).await;
    stats::phase("apply", started.elapsed());
    watcher.abort();
    let report = report?;
    // Best effort: what is not settled now is folded when the lock is released, at the cost
    // of reading the journal back.
    let _ = store.settle().await;
    print_warnings(ws, &report.warnings, ctx.style);
    if !report.not_started.is_empty() {
        eprintln!(
            "\nInterrupted: {} operation(s) were not started ({}); everything that finished is in the state. Run apply again to continue.",
            report.not_started.len(),
            report
                .not_started
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Outcome::Failed);
    }
    for (addr, err) in &report.failures {
        eprintln!("\nError: {addr}: {err}");
    }
    for addr in &report.skipped {
        eprintln!("skipped {addr}: something it depends on failed");
    }
    let summary = if plan.destroy {
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
        if !plan.destroy && !plan.is_partial() {
            let outputs = store.load().await?.outputs;
            if !outputs.is_empty() {
                println!("\nOutputs:\n");
                for (name, o) in &outputs {
                    println!("{name} = {}", shown(o));
                }
            }
        }
        Ok(Outcome::Done)
    } else {
        eprintln!("\nApply failed: {} of the planned operations failed; state records everything that succeeded.", report.failures.len());
        Ok(Outcome::Failed)
    }
}

/// The first SIGINT or SIGTERM stops new work (in-flight calls finish and are recorded); a
/// second exits at once, which the write-ahead intents make safe too.
async fn watch_signals(cancel: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    async fn next_signal() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    next_signal().await;
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!("\nInterrupt: finishing the operations in flight and starting no new ones (interrupt again to stop at once).");
    next_signal().await;
    eprintln!("Stopping now; the next run reconciles what was in flight.");
    std::process::exit(crate::error::INTERRUPTED);
}

/// How often a running operation is reported: Terraform's 10 s, or
/// `SKYFORM_PROGRESS_INTERVAL_MS` (for tests; a value that is not a positive number is
/// ignored).
fn progress_interval() -> std::time::Duration {
    std::env::var("SKYFORM_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis,
        )
}

/// Terraform's way of writing a wait: `10s`, `1m10s`; under a second (only with a short
/// test interval), in milliseconds.
fn elapsed_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{secs}s"),
        _ => format!("{}m{}s", secs / 60, secs % 60),
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
        (OpKind::Read, false) => "Reading",
        (OpKind::Read, true) => "Read complete",
        // Steps of the walk are never reported as events.
        (OpKind::Ready | OpKind::Gone, _) => "Passing",
    }
}

fn action_name(a: Option<Action>) -> &'static str {
    match a {
        None => "absent",
        Some(Action::NoOp) => "unchanged",
        Some(Action::Create) => "created",
        Some(Action::Update) => "updated",
        Some(Action::Replace) => "replaced",
        Some(Action::Delete) => "destroyed",
        Some(Action::Read) => "read during apply",
    }
}

/// `apply FILE`: applies exactly the saved plan, after proving that the configuration, the
/// files it reads, the sensitive variables (given again: the file holds only their digests),
/// the state, every object the plan touches and the planned values are as they were when it
/// was made.
pub(crate) async fn apply_saved(
    ctx: &Context,
    file: &Path,
    vars: &VarArgs,
    parallelism: usize,
) -> Result<Outcome, Error> {
    let saved = plan_file::read(file)?;
    crate::cli::backend::announce(&ctx.dir, &ctx.selection).await?;
    // Boxed, as in `apply`: the future is too large for the caller's stack.
    Box::pin(locked(
        ctx,
        "apply (saved plan)",
        apply_saved_locked(ctx, saved, vars, parallelism),
    ))
    .await
}

/// `apply FILE` once the state is locked.
async fn apply_saved_locked(
    ctx: &Context,
    saved: plan_file::SavedPlan,
    vars: &VarArgs,
    parallelism: usize,
) -> Result<Outcome, Error> {
    // Variables the plan carries need not be given again, so none is required here.
    let (mut ws, warnings) = stats::timed("load", || workspace(&ctx.dir, vars, false))?;
    print_warnings(&ws, &warnings, ctx.style);
    let problems = plan_file::check_inputs(&saved, &ws.config, &mut ws.vars);
    if !problems.is_empty() {
        return Err(StalePlan::Inputs(problems).into());
    }
    let mut store = ctx.state();
    let state = store.load().await?;
    // A plan made before any state existed matches a state that is still empty (taking the
    // lock creates the database, and with it a lineage).
    let fresh_then = saved.lineage.is_empty() && saved.serial == 0;
    let fresh_now = state.serial == 0 && state.resources.is_empty();
    if !(fresh_then && fresh_now)
        && (state.lineage != saved.lineage || state.serial != saved.serial)
    {
        return Err(StalePlan::State {
            then: saved.serial,
            now: state.serial,
            other_lineage: state.lineage != saved.lineage,
        }
        .into());
    }
    let provider = connect(&ws).await?;
    let fresh = match crate::engine::plan::plan(&provider, &ws, state, &saved.options).await {
        Ok(p) => p,
        Err(e) => return Err(plan_error(ws, e)),
    };
    let then = plan_file::touched(&saved.plan);
    let now = plan_file::touched(&fresh);
    let fresh_live: std::collections::BTreeMap<&Address, Option<&crate::state::Attrs>> = fresh
        .changes
        .iter()
        .map(|c| (&c.addr, c.before.as_ref()))
        .chain(fresh.drift.iter().map(|d| (&d.addr, d.live.as_ref())))
        .collect();
    let mut problems = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for (addr, fp) in &saved.fingerprints {
        let live_now = now
            .get(addr)
            .cloned()
            .unwrap_or_else(|| fresh_live.get(addr).copied().flatten().cloned());
        let fp_now = live_now.as_ref().map_or_else(
            || "absent".to_string(),
            |a| plan_file::fingerprint(&saved.salt, a),
        );
        if &fp_now != fp {
            let mut lines = plan_file::differences(
                then.get(addr).and_then(Option::as_ref),
                live_now.as_ref(),
                &saved.plan.sensitive_attrs(ws.config.schemas, addr),
                &saved.salt,
            );
            if lines.is_empty() {
                lines.push("what it read differs".into());
            }
            problems.push(format!(
                "  {addr} changed in AWS:\n    {}",
                lines.join("\n    ")
            ));
            reported.insert(addr.clone());
        }
    }
    // Drift a refresh-only plan did not read is something it would not record: its actions
    // (none) cannot show that, so it is reported here.
    if saved.plan.refresh_only {
        for addr in now.keys().filter(|a| !saved.fingerprints.contains_key(*a)) {
            if reported.insert(addr.clone()) {
                problems.push(format!("  {addr} changed in AWS since the plan was made"));
            }
        }
    }
    let action_of =
        |p: &Plan, a: &Address| p.changes.iter().find(|c| &c.addr == a).map(|c| c.action);
    let addrs: std::collections::BTreeSet<&Address> = saved
        .plan
        .changes
        .iter()
        .chain(fresh.changes.iter())
        .map(|c| &c.addr)
        .collect();
    for a in addrs {
        let (was, is) = (action_of(&saved.plan, a), action_of(&fresh, a));
        if was != is && !reported.contains(a) {
            problems.push(format!(
                "  {a} would now be {} (the plan says {})",
                action_name(is),
                action_name(was)
            ));
            reported.insert(a.clone());
        }
    }
    problems.extend(plan_file::planned_differences(
        ws.config.schemas,
        &saved,
        &fresh,
        &reported,
    ));
    problems.extend(plan_file::recovery_differences(&saved.plan, &fresh));
    if !problems.is_empty() {
        return Err(StalePlan::Live(problems).into());
    }
    print_human(&saved.plan, ws.config.schemas, ctx.style);
    let plan = plan_file::rejoin(saved.plan, fresh);
    if !plan.has_effect() {
        return Ok(Outcome::Done);
    }
    let (check, caller) = guard_owner(&provider, &plan.state).await?;
    if check == OwnerCheck::Unowned {
        store.set_owner(&caller).await?;
    }
    if plan.refresh_only {
        let (updated, removed) = crate::engine::apply::apply_refresh(&plan, &mut store).await?;
        println!(
            "\n{}",
            ctx.style.bold(&format!(
                "Refresh complete! {updated} updated, {removed} removed from the state."
            ))
        );
        return Ok(Outcome::Done);
    }
    execute(ctx, &ws, &plan, &mut store, &provider, parallelism).await
}

/// `show FILE`: a saved plan, as it was made.
pub(crate) fn show(ctx: &Context, file: &Path, format: Format) -> Result<Outcome, Error> {
    let saved = plan_file::read(file)?;
    // A plan file is shown without loading the configuration: with the provider's schemas.
    print_plan(&saved.plan, crate::aws::schemas::registry(), format, ctx);
    Ok(Outcome::Done)
}

/// `show --json` without a plan file: the state as Terraform's `values` document. It reads
/// the state only: no AWS call, no write.
pub(crate) async fn show_state(ctx: &Context) -> Result<Outcome, Error> {
    let state = ctx.state().load().await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::render::json_config::state_json(
            &state,
            crate::aws::schemas::registry()
        ))
        .unwrap_or_default()
    );
    Ok(Outcome::Done)
}

/// `refresh`: records what AWS now says, and changes nothing in AWS.
pub(crate) async fn refresh(ctx: &Context, vars: &VarArgs) -> Result<Outcome, Error> {
    let opts = PlanOptions {
        refresh_only: true,
        ..PlanOptions::default()
    };
    let ws = plan_workspace(ctx, vars)?;
    crate::cli::backend::announce(&ctx.dir, &ctx.selection).await?;
    // Boxed, as in `apply`: the future is too large for the caller's stack.
    Box::pin(locked(ctx, "refresh", refresh_locked(ctx, ws, opts))).await
}

/// `refresh` once the state is locked.
async fn refresh_locked(ctx: &Context, ws: Workspace, opts: PlanOptions) -> Result<Outcome, Error> {
    let Planned {
        ws,
        plan,
        mut store,
        provider,
        ..
    } = make_plan(ws, ctx.state(), &opts).await?;
    print_human(&plan, ws.config.schemas, ctx.style);
    if !plan.has_effect() {
        return Ok(Outcome::Done);
    }
    // Another account sees none of this state's objects; recording that would forget them all.
    guard_owner(&provider, &plan.state).await?;
    let (updated, removed) = crate::engine::apply::apply_refresh(&plan, &mut store).await?;
    println!(
        "\n{}",
        ctx.style.bold(&format!(
            "Refresh complete! {updated} updated, {removed} removed from the state."
        ))
    );
    Ok(Outcome::Done)
}

/// `drift`: refreshes and reports every change made outside skyform, with how long each has
/// been seen; `Changes` (exit 2) when there is any. Its one write, unless `record` is false,
/// is the first-seen times in the state's bookkeeping, under the lock for just that write;
/// AWS, resources and outputs are never written.
pub(crate) async fn drift(
    ctx: &Context,
    vars: &VarArgs,
    format: Format,
    record: bool,
) -> Result<Outcome, Error> {
    let opts = PlanOptions {
        refresh_only: true,
        ..PlanOptions::default()
    };
    let ws = plan_workspace(ctx, vars)?;
    crate::cli::backend::announce(&ctx.dir, &ctx.selection).await?;
    let Planned { ws, plan, .. } = Box::pin(make_plan(ws, ctx.state(), &opts)).await?;
    let now = std::time::SystemTime::now();
    let seen = if record {
        locked(ctx, "drift", async {
            let mut store = ctx.state();
            // Read again under the lock: another run may have recorded times meanwhile.
            let earlier = store.load().await?.drift_seen;
            let seen = crate::engine::drift_seen::carried(&earlier, &plan.drift, now);
            if seen != earlier {
                store.set_drift_seen(&seen).await?;
            }
            Ok(seen)
        })
        .await?
    } else {
        crate::engine::drift_seen::carried(&plan.state.drift_seen, &plan.drift, now)
    };
    let schemas = ws.config.schemas;
    match format {
        Format::Human => print!(
            "{}",
            crate::render::drift::drift_text(&plan, schemas, &seen, now, ctx.style)
        ),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::render::drift::drift_json(&plan, schemas, &seen))
                .unwrap_or_default()
        ),
        Format::Markdown(_) => print!(
            "{}",
            crate::render::drift::drift_markdown(&plan, schemas, &seen, now)
        ),
    }
    print_warnings(&ws, &plan.warnings, ctx.style);
    Ok(if plan.drift.is_empty() {
        Outcome::Done
    } else {
        Outcome::Changes
    })
}

/// `import ADDRESS ID`: adopts an existing object. The next plan shows only how it differs
/// from its configuration.
pub(crate) async fn import(
    ctx: &Context,
    vars: &VarArgs,
    addr: &Address,
    id: &str,
) -> Result<Outcome, Error> {
    let (ws, warnings) = workspace(&ctx.dir, vars, false)?;
    print_warnings(&ws, &warnings, ctx.style);
    if addr.mode != Mode::Managed || ws.config.block(addr).is_none() {
        return Err(ImportError::NotConfigured(addr.clone()).into());
    }
    if addr.type_name == "aws_iam_access_key" {
        return Err(ImportError::AccessKey.into());
    }
    // Boxed, as in `apply`: the future is too large for the caller's stack.
    Box::pin(locked(ctx, "import", import_locked(ctx, ws, addr, id))).await
}

/// `import` once the state is locked.
async fn import_locked(
    ctx: &Context,
    ws: Workspace,
    addr: &Address,
    id: &str,
) -> Result<Outcome, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    if state.resources.contains_key(addr) {
        return Err(ImportError::AlreadyManaged(addr.clone()).into());
    }
    let provider = connect(&ws).await?;
    let (check, caller) = guard_owner(&provider, &state).await?;
    let alias = ws.config.provider_of(addr);
    let found = provider
        .refresh(&[RefreshRequest {
            addr: addr.clone(),
            id: id.to_string(),
            prior: crate::state::Attrs::new(),
            provider: alias.clone(),
        }])
        .await?;
    let Some(Some(attrs)) = found.into_iter().next() else {
        return Err(ImportError::NotFound {
            type_name: addr.type_name.clone(),
            id: id.to_string(),
            region: provider.at(&alias)?.region.clone(),
        }
        .into());
    };
    if check == OwnerCheck::Unowned {
        store.set_owner(&caller).await?;
    }
    let deps = ws.graph.managed_deps(addr);
    store
        .put(&ResourceState {
            addr: addr.clone(),
            id: id.to_string(),
            attrs,
            deps,
            provider: alias,
            sensitive: std::collections::BTreeSet::new(),
        })
        .await?;
    println!(
        "{}",
        ctx.style.bold(&format!(
            "Import successful! {addr} (id {id}) is now managed by skyform."
        ))
    );
    println!("Run `skyform plan` to see how it differs from the configuration.");
    Ok(Outcome::Done)
}

/// `state import-terraform PATH` (or `--from-backend`, `path` `None`): takes over what a
/// Terraform state holds, in one write of the whole state (`StateStore::replace`), so that a
/// failure leaves skyform's state as it was. The file, or the backend's object, is only read.
pub(crate) async fn import_terraform(
    ctx: &Context,
    vars: &VarArgs,
    path: Option<&Path>,
) -> Result<Outcome, Error> {
    let bytes = match path {
        // Relative to `-C DIR`, as every other file skyform reads (Terraform's `-chdir` too).
        Some(path) => {
            std::fs::read(ctx.dir.join(path)).map_err(|e| TerraformImportError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?
        }
        None => crate::cli::backend::terraform_state(&ctx.selection).await?,
    };
    // A state that cannot be read is refused before AWS is asked anything.
    crate::cli::import_terraform::map(&bytes, crate::aws::schemas::registry())?;
    let (ws, warnings) = workspace(&ctx.dir, vars, false)?;
    print_warnings(&ws, &warnings, ctx.style);
    let imported = Box::pin(locked(ctx, "state import-terraform", async {
        let mut store = ctx.state();
        let state = store.load().await?;
        // `import_terraform` refuses this too; checked here first so that no AWS call is made.
        if !state.resources.is_empty() {
            return Err(TerraformImportError::NotEmpty(state.resources.len()).into());
        }
        let provider = connect(&ws).await?;
        let (_, caller) = guard_owner(&provider, &state).await?;
        let imported = crate::cli::import_terraform::import_terraform(
            &bytes,
            &provider,
            &state,
            caller,
            |addr| {
                ws.config
                    .block(addr)
                    .map(|_| (ws.graph.managed_deps(addr), ws.config.provider_of(addr)))
            },
            |alias| {
                provider
                    .at(alias)
                    .map(|p| p.region.clone())
                    .unwrap_or_default()
            },
        )
        .await?;
        store.replace(&imported.state).await?;
        Ok(imported)
    }))
    .await?;
    if !imported.left_out.is_empty() {
        eprintln!(
            "Warning: {} object(s) of the Terraform state were left out:",
            imported.left_out.len()
        );
        for (addr, why) in &imported.left_out {
            eprintln!("  {addr}: {why}");
        }
        eprintln!();
    }
    for (addr, note) in &imported.notes {
        eprintln!("Warning: {addr}: {note}.\n");
    }
    println!(
        "{}",
        ctx.style.bold(&format!(
            "Imported {} resource(s) and {} output(s) from {}.",
            imported.state.resources.len(),
            imported.state.outputs.len(),
            path.map_or_else(|| ctx.selection.describe_key(), |p| p.display().to_string())
        ))
    );
    println!("Run `skyform plan` to see how they differ from the configuration.");
    Ok(Outcome::Done)
}

#[cfg(test)]
mod summary_tests {
    #[test]
    fn counts_are_written_with_thousands_separators() {
        assert_eq!(super::thousands(7), "7");
        assert_eq!(super::thousands(100), "100");
        assert_eq!(super::thousands(12_000), "12,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
