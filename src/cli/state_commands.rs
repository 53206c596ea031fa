//! `skyform state list|show|rm|mv|new-lineage|migrate|pull|push` and `skyform force-unlock`:
//! reading, editing and moving the state without touching AWS. Every edit is one committed
//! transaction that bumps the serial, so a plan saved before it is refused as stale; a move
//! (`migrate`, `push`) is one `replace`, which keeps the lineage and serial it was given.

use crate::cli::backend::{local_path, Store};
use crate::cli::context::{ask, Context};
use crate::error::{Error, Outcome, StateEditError};
use crate::lang::address::Address;
use crate::lang::value::Value;
use crate::state::lock::acquire;
use crate::state::sqlite::SqliteState;
use crate::state::StateStore as _;

pub(crate) async fn list(ctx: &Context) -> Result<Outcome, Error> {
    for addr in ctx.state().load().await?.resources.keys() {
        println!("{addr}");
    }
    Ok(Outcome::Done)
}

pub(crate) async fn show(ctx: &Context, addr: &Address) -> Result<Outcome, Error> {
    let state = ctx.state().load().await?;
    let r = state
        .resources
        .get(addr)
        .ok_or_else(|| StateEditError::NotInState(addr.clone()))?;
    // Masked: what the schema marks sensitive, and what apply recorded as derived from a
    // sensitive input (a tag built from a `sensitive` variable).
    let sensitive = crate::engine::plan::sensitive_of(crate::aws::schemas::registry(), addr)
        .union(&r.sensitive)
        .cloned()
        .collect::<std::collections::BTreeSet<_>>();
    println!(
        "# {addr}:\nresource {} {} {{",
        crate::lang::value::quote(&addr.type_name),
        crate::lang::value::quote(&addr.name)
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
    Ok(Outcome::Done)
}

/// `force-unlock LOCK_ID`: releases a lock whose holder is gone.
pub(crate) async fn force_unlock(ctx: &Context, id: &str, force: bool) -> Result<Outcome, Error> {
    use std::io::IsTerminal as _;
    if !force {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Unconfirmed {
                command: "force-unlock",
                advice: "run again with --force",
            });
        }
        let line = ask(&format!("Release lock {id}? A writer that still runs would then race another.\n  Only 'yes' will be accepted: ")).await?;
        if line.trim() != "yes" {
            println!("Nothing was released.");
            return Ok(Outcome::Failed);
        }
    }
    if ctx.state().unlock(id).await? {
        println!("Released lock {id}.");
        Ok(Outcome::Done)
    } else {
        Err(StateEditError::NoSuchLock(id.to_string()).into())
    }
}

/// Forgets resources; the objects stay in AWS. All addresses are checked before any is removed.
pub(crate) async fn rm(ctx: &Context, addrs: &[Address]) -> Result<Outcome, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    let missing: Vec<Address> = addrs
        .iter()
        .filter(|a| !state.resources.contains_key(*a))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(StateEditError::NoneRemoved(missing).into());
    }
    for a in addrs {
        store.forget(a).await?;
        println!("Removed {a} from the state (the object itself is still in AWS).");
    }
    Ok(Outcome::Done)
}

/// Renames a resource in the state, for a block that was renamed in the configuration.
pub(crate) async fn mv(ctx: &Context, from: &Address, to: &Address) -> Result<Outcome, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    // An open intent names its address: renaming under it would leave recovery looking for
    // the object under the old name.
    if !state.intents.is_empty() {
        return Err(StateEditError::OpenIntents(state.intents.len()).into());
    }
    if !state.resources.contains_key(from) {
        return Err(StateEditError::NotInState(from.clone()).into());
    }
    if state.resources.contains_key(to) {
        return Err(StateEditError::AlreadyInState(to.clone()).into());
    }
    if from.mode != to.mode || from.type_name != to.type_name {
        return Err(StateEditError::TypeChange {
            from: from.clone(),
            to: to.clone(),
        }
        .into());
    }
    store.rename(from, to).await?;
    println!("Moved {from} to {to}.");
    Ok(Outcome::Done)
}

/// Gives the state a fresh lineage. Refused while intents are open: they were written under
/// the old lineage, and only that lineage's tags can prove what their creates made.
pub(crate) async fn new_lineage(ctx: &Context) -> Result<Outcome, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    if state.lineage.is_empty() {
        return Err(StateEditError::NoState.into());
    }
    if !state.intents.is_empty() {
        return Err(StateEditError::OpenIntents(state.intents.len()).into());
    }
    let lineage = crate::state::new_lineage();
    store.set_lineage(&lineage).await?;
    println!(
        "The state's lineage is now {lineage} (it was {}). Objects created from now on carry the new lineage; objects tagged with the old one are no longer adopted by this state.",
        state.lineage
    );
    Ok(Outcome::Done)
}

/// `state migrate --to s3|local`: copies the selected workspace's state between the local
/// store and the S3 backend of the `backend "s3"` block (which must be there both ways: it
/// says where the S3 state is). Both states are locked; the source is left as it was.
pub(crate) async fn migrate(ctx: &Context, to_s3: bool) -> Result<Outcome, Error> {
    let crate::lang::terraform::Backend::S3(_) = ctx.selection.backend else {
        return Err(Error::Usage(
            "state migrate needs a backend \"s3\" block in the terraform block: it says where the S3 state is (add it before `--to s3`, and remove it after `--to local`)".into(),
        ));
    };
    let local = || {
        Store::Local(SqliteState::new(local_path(
            &ctx.dir,
            &ctx.selection.workspace,
        )))
    };
    let (mut source, mut target) = if to_s3 {
        (local(), ctx.state())
    } else {
        (ctx.state(), local())
    };
    let (mut source_lock, mut target_lock) = if to_s3 {
        (local(), ctx.state())
    } else {
        (ctx.state(), local())
    };
    let held = acquire(
        &mut source_lock,
        "state migrate",
        ctx.lock_timeout,
        ctx.selection.lease,
    )
    .await?;
    held.hold(&mut source_lock, async {
        let held = acquire(
            &mut target_lock,
            "state migrate",
            ctx.lock_timeout,
            ctx.selection.lease,
        )
        .await?;
        held.hold(&mut target_lock, copy(&mut source, &mut target))
            .await
    })
    .await
}

/// The copy of `migrate`, once both states are locked.
async fn copy(source: &mut Store, target: &mut Store) -> Result<Outcome, Error> {
    let Some(state) = source.load_existing().await? else {
        return Err(StateEditError::Move(format!(
            "there is no state to migrate at {}",
            source.location()
        ))
        .into());
    };
    if let Some(there) = target.load_existing().await? {
        if there.lineage != state.lineage {
            return Err(StateEditError::Move(format!(
                "{} already holds another state (lineage {}, serial {}; this one is lineage {}); nothing was copied. Move it away, or pull it and compare, before migrating",
                target.location(),
                there.lineage,
                there.serial,
                state.lineage
            ))
            .into());
        }
        if there.serial > state.serial {
            return Err(StateEditError::Move(format!(
                "{} holds a newer copy of this state (serial {} there, {} here); nothing was copied",
                target.location(),
                there.serial,
                state.serial
            ))
            .into());
        }
        println!(
            "{} holds an earlier copy of this state (same lineage, serial {}); it is replaced.",
            target.location(),
            there.serial
        );
    }
    target.replace(&state).await?;
    println!(
        "Copied the state (lineage {}, serial {}, {} resources) from {} to {}. The copy at {} was left as it was; remove it once you no longer need it.",
        state.lineage,
        state.serial,
        state.resources.len(),
        source.location(),
        target.location(),
        source.location()
    );
    Ok(Outcome::Done)
}

/// `state pull`: the whole state as JSON. Secrets included: the state holds them, and a pull
/// is a backup, which must restore exactly; `state show` is the masked view.
pub(crate) async fn pull(ctx: &Context) -> Result<Outcome, Error> {
    let state = ctx
        .state()
        .load_existing()
        .await?
        .ok_or(StateEditError::NoState)?;
    let text = serde_json::to_string_pretty(&state)
        .map_err(|e| StateEditError::Move(format!("cannot write the state as JSON: {e}")))?;
    println!("{text}");
    Ok(Outcome::Done)
}

/// `state push FILE`: replaces the state with a pulled one; refused unless it is the same
/// lineage and newer (a push of an older copy would lose writes), unless `force`.
pub(crate) async fn push(
    ctx: &Context,
    file: &std::path::Path,
    force: bool,
) -> Result<Outcome, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    let state: crate::state::State = serde_json::from_str(&text).map_err(|e| {
        StateEditError::Move(format!(
            "{} is not a state written by `skyform state pull`: {e}",
            file.display()
        ))
    })?;
    if state.lineage.is_empty() {
        return Err(StateEditError::Move(format!("{} has no lineage", file.display())).into());
    }
    let mut store = ctx.state();
    if let Some(now) = store.load_existing().await? {
        if !force && now.lineage != state.lineage {
            return Err(StateEditError::Move(format!(
                "{} is another state (lineage {}; the state at {} is lineage {}); nothing was pushed (--force pushes it anyway)",
                file.display(),
                state.lineage,
                store.location(),
                now.lineage
            ))
            .into());
        }
        if !force && state.serial <= now.serial {
            return Err(StateEditError::Move(format!(
                "{} is not newer than the state at {} (serial {} in the file, {} there); nothing was pushed (--force pushes it anyway)",
                file.display(),
                store.location(),
                state.serial,
                now.serial
            ))
            .into());
        }
    }
    store.replace(&state).await?;
    println!(
        "Pushed {} to {} (lineage {}, serial {}, {} resources).",
        file.display(),
        store.location(),
        state.lineage,
        state.serial,
        state.resources.len()
    );
    Ok(Outcome::Done)
}
