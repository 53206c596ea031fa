//! Renames in the state that the configuration asks for: `moved` blocks, and Terraform's
//! implicit moves when `count` is added to a block (`r` becomes `r[0]`) or taken away
//! (`r[0]` becomes `r`).
//!
//! Moves are worked out by `plan` without writing: the plan is made against the renamed
//! state, shows each object as "has moved to", and `apply` records the renames before any
//! other operation. A moved object is never destroyed and created again.

use std::collections::BTreeMap;

use crate::lang::address::{Address, InstanceKey};
use crate::lang::config::{Config, Repetition};
use crate::lang::diagnostic::{Diagnostic, Diagnostics};
use crate::state::State;

/// One rename: the object at `from` in the state is `to`'s.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Move {
    pub(crate) from: Address,
    pub(crate) to: Address,
}

/// The moves `config` asks of `state`, in the order they are recorded, with the warnings and
/// errors of statements that cannot be followed.
pub(crate) fn plan_moves(config: &Config, state: &State) -> (Vec<Move>, Diagnostics) {
    let mut diags = Diagnostics::default();
    // Where each object of the state is now, by its original address; chains (a to b, then
    // b to c) compose, as in Terraform.
    let mut at: BTreeMap<Address, Address> = state
        .resources
        .keys()
        .map(|a| (a.clone(), a.clone()))
        .collect();
    // Where each address is now, the other way round, so that a move's target is looked up
    // and not searched for (a configuration of many blocks checks one per block).
    let mut held: BTreeMap<Address, Address> = at
        .iter()
        .map(|(orig, now)| (now.clone(), orig.clone()))
        .collect();
    for m in &config.moved {
        // Two keyless addresses move a whole resource. Otherwise each side is one instance,
        // a keyless `from` being the resource's keyless instance, which is still declared only
        // while the resource has no repetition.
        let whole = m.from.key.is_none() && m.to.key.is_none();
        let still_declared = config
            .block_of(&m.from)
            .filter(|b| m.from.key.is_none() && (whole || b.repetition.is_none()));
        if let Some(declared) = still_declared {
            let first = config.sources.location(&declared.span);
            diags.push(
                Diagnostic::error(format!(
                    "moved object still exists: this statement declares a move from {0}, but that resource is still declared at {first}; change your configuration so that this address will be declared as {1} instead",
                    m.from, m.to
                ))
                .named(m.from.to_string())
                .at(m.span.clone()),
            );
            continue;
        }
        let matching: Vec<(Address, Address)> = at
            .iter()
            .filter(|(_, now)| {
                if whole {
                    now.is_instance_of(&m.from)
                } else {
                    **now == m.from
                }
            })
            .map(|(orig, now)| {
                let to = if whole {
                    m.to.with_key(now.key.clone())
                } else {
                    m.to.clone()
                };
                (orig.clone(), to)
            })
            .collect();
        for (orig, to) in matching {
            if held.contains_key(&to) {
                diags.push(
                    Diagnostic::warning(format!(
                        "unresolved resource instance address change: skyform tried to move {} to {to}, but an object is already recorded at {to}; the move was ignored",
                        at[&orig]
                    ))
                    .named(to.to_string())
                    .at(m.span.clone()),
                );
                continue;
            }
            if let Some(now) = at.insert(orig.clone(), to.clone()) {
                held.remove(&now);
            }
            held.insert(to, orig);
        }
    }
    implicit_moves(config, &mut at, &mut held);
    let moves = at
        .into_iter()
        .filter(|(from, to)| from != to)
        .map(|(from, to)| Move { from, to })
        .collect();
    (moves, diags)
}

/// `r` and `r[0]` are one object when a block gains or loses `count`, unless the state
/// already holds the other address.
fn implicit_moves(
    config: &Config,
    at: &mut BTreeMap<Address, Address>,
    held: &mut BTreeMap<Address, Address>,
) {
    for (addr, block) in &config.resources {
        let (old, new) = match block.repetition {
            None => (addr.with_key(Some(InstanceKey::Int(0))), addr.clone()),
            Some(Repetition::Count(_)) => (addr.clone(), addr.with_key(Some(InstanceKey::Int(0)))),
            Some(Repetition::ForEach(_)) => continue,
        };
        if held.contains_key(&new) {
            continue;
        }
        if let Some(orig) = held.remove(&old) {
            at.insert(orig.clone(), new.clone());
            held.insert(new, orig);
        }
    }
}

/// The state as it is once `moves` are made.
pub(crate) fn moved_state(mut state: State, moves: &[Move]) -> State {
    // All taken out before any is put back, so that moves may swap two addresses.
    let taken: Vec<_> = moves
        .iter()
        .filter_map(|m| state.resources.remove(&m.from).map(|r| (m, r)))
        .collect();
    for (m, mut r) in taken {
        r.addr = m.to.clone();
        state.resources.insert(m.to.clone(), r);
    }
    for m in moves {
        if m.from.key.is_none() && m.to.key.is_none() {
            // Dependencies name blocks as declared (no keys), so the block's own name moves.
            let (from, to) = (m.from.config_addr(), m.to.config_addr());
            for r in state.resources.values_mut() {
                r.deps = crate::state::renamed_deps(&r.deps, &from, &to);
            }
        }
    }
    state
}
