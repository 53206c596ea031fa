//! Recovery from an interrupted apply, worked out without writing anything.
//!
//! Every write of an apply is preceded by a write-ahead intent. An intent still open when a run
//! starts means a crash (or a lost answer) left that call's outcome unknown. `recover` looks
//! for what such a create may have made, through `Provider::find`, which may answer only with
//! what it can prove this state made. It also looks for objects tagged with this state's
//! lineage that the state does not hold (a state restored from an older copy).
//!
//! The answer is a `Recovery`: data, not actions. The planner plans against the state with the
//! recovery applied in memory and shows it; only `apply` records it (`persist`), after the plan
//! was approved. So `plan` never writes, to AWS or to the state, and a saved plan carries the
//! recovery it was reviewed with.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::graph::Graph;
use crate::engine::provider::{
    Found, Lost, OpContext, Provider, ProviderError, RefreshRequest, Scanned,
};
use crate::lang::address::{Address, Mode};
use crate::lang::config::Config;
use crate::state::{ResourceState, State, StateError, StateStore};

/// An object tagged with this state's lineage that neither the state nor the configuration
/// knows: listed in the plan and left alone unless `--prune-tagged` asks for its deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stray {
    pub(crate) addr: Address,
    pub(crate) id: String,
}

/// What a run found that an interrupted apply left behind, and what it will do about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recovery {
    /// Objects to record in the state: made by an interrupted create, or tagged with this
    /// lineage and still configured (or, with `--prune-tagged`, to be deleted).
    pub(crate) adopted: Vec<ResourceState>,
    /// Adopted objects that must be replaced, with the reason the plan shows.
    pub(crate) replace: BTreeMap<Address, String>,
    /// The open intents this recovery settles; they are closed when it is recorded.
    pub(crate) settled: Vec<Address>,
    /// Tagged objects left alone.
    pub(crate) strays: Vec<Stray>,
    /// What recovery saw and deliberately did not touch (several candidate objects, say).
    pub(crate) warnings: Vec<String>,
}

impl Recovery {
    /// The state as it will be once this recovery is recorded.
    pub(crate) fn applied_to(&self, mut state: State) -> State {
        for r in &self.adopted {
            state.resources.insert(r.addr.clone(), r.clone());
        }
        for a in &self.settled {
            state.intents.remove(a);
        }
        state
    }

    /// Leaves an adoption to a later run: its object stays out of the state and its intent
    /// open. For an object that must be replaced when this plan does not replace it (a
    /// refresh, or `--target` elsewhere): adopted without its replacement, it would stay in
    /// the state as if it were usable.
    pub(crate) fn defer(&mut self, addr: &Address) {
        self.adopted.retain(|r| &r.addr != addr);
        self.replace.remove(addr);
        self.settled.retain(|a| a != addr);
    }

    /// Records the recovery: the adopted objects, then the settled intents closed. Called by
    /// apply only, under the state lock, after the plan was approved.
    pub(crate) async fn persist<S: StateStore>(&self, store: &mut S) -> Result<(), StateError> {
        for r in &self.adopted {
            store.put(r).await?;
        }
        for a in &self.settled {
            store.close_intent(a).await?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("looking for what an interrupted apply created for {addr}: {err}")]
    Provider { addr: Address, err: ProviderError },
    #[error("looking for objects tagged with this state's lineage: {0}")]
    Scan(ProviderError),
}

/// Works out the recovery for `state`; reads only. `prune_tagged` turns tagged objects that
/// are no longer configured into adoptions (the plan then deletes them) instead of strays.
pub(crate) async fn recover<P: Provider>(
    provider: &P,
    config: &Config,
    graph: &Graph,
    state: &State,
    prune_tagged: bool,
) -> Result<Recovery, ReconcileError> {
    let mut rec = Recovery::default();
    settle_intents(provider, graph, state, &mut rec).await?;
    scan_tagged(provider, config, graph, state, prune_tagged, &mut rec).await?;
    Ok(rec)
}

/// Settles every open intent: a create's object is looked for, and adopted when the provider
/// proves it ours. Updates and deletes need no search: the refresh reads what AWS now has.
async fn settle_intents<P: Provider>(
    provider: &P,
    graph: &Graph,
    state: &State,
    rec: &mut Recovery,
) -> Result<(), ReconcileError> {
    for intent in state.intents.values() {
        if intent.op != "create" || state.resources.contains_key(&intent.addr) {
            rec.settled.push(intent.addr.clone());
            continue;
        }
        let known_ids: Vec<String> = state
            .resources
            .values()
            .filter(|r| r.addr.type_name == intent.addr.type_name)
            .map(|r| r.id.clone())
            .collect();
        let lost = Lost {
            planned: &intent.attrs,
            evidence: &intent.evidence,
            known_ids: &known_ids,
        };
        let ctx = OpContext {
            addr: intent.addr.clone(),
            lineage: state.lineage.clone(),
            timeout: None,
            provider: intent.provider.clone(),
        };
        let found = provider
            .find(&intent.addr.type_name, lost, &ctx)
            .await
            .map_err(|err| ReconcileError::Provider {
                addr: intent.addr.clone(),
                err,
            })?;
        let adopt = |id: String, attrs| ResourceState {
            addr: intent.addr.clone(),
            id,
            attrs,
            deps: graph.managed_deps(&intent.addr),
            sensitive: BTreeSet::new(),
            provider: intent.provider.clone(),
        };
        match found {
            Found::Nothing => rec.settled.push(intent.addr.clone()),
            Found::Adopt { id, attrs } => {
                rec.adopted.push(adopt(id, attrs));
                rec.settled.push(intent.addr.clone());
            }
            Found::Replace { id, attrs, reason } => {
                rec.replace.insert(intent.addr.clone(), reason);
                rec.adopted.push(adopt(id, attrs));
                rec.settled.push(intent.addr.clone());
            }
            // Nothing proves which is ours: the intent stays open, so that every plan says so
            // until someone removes the extra objects, and none is touched meanwhile.
            Found::Ambiguous { ids, reason } => rec.warnings.push(format!(
                "{}: {reason}; left alone: {}",
                intent.addr,
                ids.join(", ")
            )),
        }
    }
    Ok(())
}

/// Looks for objects tagged with this state's lineage that the state does not hold. Those the
/// configuration declares are adopted (they match a block); the others are strays, never
/// deleted unless asked: a state copied to start a second environment shares the lineage, and
/// each copy would otherwise delete the other's objects.
async fn scan_tagged<P: Provider>(
    provider: &P,
    config: &Config,
    graph: &Graph,
    state: &State,
    prune_tagged: bool,
    rec: &mut Recovery,
) -> Result<(), ReconcileError> {
    if state.lineage.is_empty() {
        return Ok(());
    }
    let types: BTreeSet<&str> = config
        .resources
        .keys()
        .chain(state.resources.keys())
        .filter(|a| a.mode == Mode::Managed)
        .map(|a| a.type_name.as_str())
        .collect();
    let types: Vec<&str> = types.into_iter().collect();
    let tagged = provider
        .scan(&state.lineage, &types)
        .await
        .map_err(ReconcileError::Scan)?;
    let known: BTreeSet<(&str, &str)> = state
        .resources
        .values()
        .chain(&rec.adopted)
        .map(|r| (r.addr.type_name.as_str(), r.id.as_str()))
        .collect();
    let held: BTreeSet<&Address> = state
        .resources
        .keys()
        .chain(rec.adopted.iter().map(|r| &r.addr))
        .collect();
    let mut wanted = Vec::new();
    for Scanned { addr, id, provider } in tagged {
        if held.contains(&addr)
            || known.contains(&(addr.type_name.as_str(), id.as_str()))
            || state
                .forgotten
                .contains(&format!("{}/{id}", addr.type_name))
        {
            continue;
        }
        // A second object tagged with an address already being adopted is a duplicate: it is
        // listed, not adopted over the first.
        let duplicate = wanted.iter().any(|w: &RefreshRequest| w.addr == addr);
        if (config.block(&addr).is_some() || prune_tagged) && !duplicate {
            wanted.push(RefreshRequest {
                addr,
                id,
                prior: crate::state::Attrs::new(),
                provider,
            });
        } else {
            rec.strays.push(Stray { addr, id });
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    // One batched read for all of them, as a refresh.
    let live = provider
        .refresh(&wanted)
        .await
        .map_err(ReconcileError::Scan)?;
    for (req, attrs) in wanted.into_iter().zip(live) {
        let Some(attrs) = attrs else { continue };
        let deps = graph.managed_deps(&req.addr);
        rec.adopted.push(ResourceState {
            addr: req.addr,
            id: req.id,
            attrs,
            deps,
            sensitive: BTreeSet::new(),
            provider: req.provider,
        });
    }
    Ok(())
}
