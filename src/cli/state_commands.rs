//! `skyform state list|show|rm|mv|new-lineage` and `skyform force-unlock`: reading and editing
//! the state without touching AWS. Every edit is one committed transaction that bumps the
//! serial, so a plan saved before it is refused as stale.

use crate::cli::context::{ask, Context};
use crate::error::{Error, Outcome, StateEditError};
use crate::lang::address::Address;
use crate::lang::value::Value;
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
