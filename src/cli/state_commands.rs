//! `skyform state list|show|rm|mv`: reading and editing the state without touching AWS.
//! Every edit is one committed transaction that bumps the serial, so a plan saved before it
//! is refused as stale.

use crate::cli::context::{ask, Context};
use crate::error::Error;
use crate::lang::address::Address;
use crate::lang::value::Value;
use crate::state::StateStore as _;

pub async fn list(ctx: &Context) -> Result<i32, Error> {
    for addr in ctx.state().load().await?.resources.keys() {
        println!("{addr}");
    }
    Ok(0)
}

pub async fn show(ctx: &Context, addr: &Address) -> Result<i32, Error> {
    let state = ctx.state().load().await?;
    let r = state
        .resources
        .get(addr)
        .ok_or_else(|| Error::Usage(format!("{addr} is not in the state")))?;
    // Masked: what the schema marks sensitive, and what apply recorded as derived from a
    // sensitive input (a tag built from a `sensitive` variable).
    let sensitive = crate::engine::plan::sensitive_of(addr)
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
    Ok(0)
}

/// `force-unlock LOCK_ID`: releases a lock whose holder is gone.
pub async fn force_unlock(ctx: &Context, id: &str, force: bool) -> Result<i32, Error> {
    use std::io::IsTerminal as _;
    if !force {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "force-unlock needs confirmation, but stdin is not a terminal; run again with --force".into(),
            ));
        }
        let line = ask(&format!("Release lock {id}? A writer that still runs would then race another.\n  Only 'yes' will be accepted: ")).await?;
        if line.trim() != "yes" {
            println!("Nothing was released.");
            return Ok(1);
        }
    }
    if ctx.state().unlock(id).await? {
        println!("Released lock {id}.");
        Ok(0)
    } else {
        Err(Error::Usage(format!(
            "no lock with id {id} holds this state"
        )))
    }
}

/// Forgets resources; the objects stay in AWS. All addresses are checked before any is removed.
pub async fn rm(ctx: &Context, addrs: &[Address]) -> Result<i32, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    let missing: Vec<String> = addrs
        .iter()
        .filter(|a| !state.resources.contains_key(*a))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "not in the state: {}; nothing was removed",
            missing.join(", ")
        )));
    }
    for a in addrs {
        store.forget(a).await?;
        println!("Removed {a} from the state (the object itself is still in AWS).");
    }
    Ok(0)
}

/// Renames a resource in the state, for a block that was renamed in the configuration.
pub async fn mv(ctx: &Context, from: &Address, to: &Address) -> Result<i32, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    if !state.resources.contains_key(from) {
        return Err(Error::Usage(format!("{from} is not in the state")));
    }
    if state.resources.contains_key(to) {
        return Err(Error::Usage(format!("{to} is already in the state")));
    }
    if from.mode != to.mode || from.type_name != to.type_name {
        return Err(Error::Usage(format!(
            "cannot move {from} to {to}: a resource keeps its type"
        )));
    }
    store.rename(from, to).await?;
    println!("Moved {from} to {to}.");
    Ok(0)
}

/// Gives the state a fresh lineage. Refused while intents are open: they were written under
/// the old lineage, and only that lineage's tags can prove what their creates made.
pub async fn new_lineage(ctx: &Context) -> Result<i32, Error> {
    let mut store = ctx.state();
    let state = store.load().await?;
    if state.lineage.is_empty() {
        return Err(Error::Usage(
            "there is no state here yet; a new state gets a fresh lineage of its own".into(),
        ));
    }
    if !state.intents.is_empty() {
        return Err(Error::Usage(format!(
            "the state has {} operation(s) an interrupted apply left open; run `skyform apply` to settle them first",
            state.intents.len()
        )));
    }
    let lineage = crate::state::new_lineage();
    store.set_lineage(&lineage).await?;
    println!(
        "The state's lineage is now {lineage} (it was {}). Objects created from now on carry the new lineage; objects tagged with the old one are no longer adopted by this state.",
        state.lineage
    );
    Ok(0)
}
