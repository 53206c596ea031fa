//! Reconciling write-ahead intents: before a plan or apply uses the state, every intent a
//! crash left open is settled. The object a create may have made is looked for through the
//! provider and adopted into state when found; either way the intent is closed. Updates and
//! deletes need no search: the refresh that follows reads what AWS now has.

use crate::address::{Address, Mode};
use crate::graph::Node;
use crate::plan::Workspace;
use crate::provider::{OpContext, Provider, ProviderError};
use crate::state::{ResourceState, StateError, StateStore};

/// An object adopted from an interrupted create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub addr: Address,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("looking for what an interrupted apply created for {addr}: {err}")]
    Provider { addr: Address, err: ProviderError },
    #[error("looking for objects tagged with this state's lineage: {0}")]
    Scan(ProviderError),
}

pub async fn reconcile<P: Provider, S: StateStore>(
    provider: &P,
    ws: &Workspace,
    store: &mut S,
) -> Result<Vec<Adopted>, ReconcileError> {
    let state = store.load()?;
    let mut adopted = Vec::new();
    for intent in state.intents.values() {
        if intent.op == "create" && !state.resources.contains_key(&intent.addr) {
            let mut attrs = intent.attrs.clone();
            if intent.addr.type_name == "aws_iam_access_key" {
                // Keys in state are known; any other key of the user was the lost one.
                let known: Vec<serde_json::Value> = state
                    .resources
                    .values()
                    .filter(|r| r.addr.type_name == "aws_iam_access_key")
                    .map(|r| r.id.clone().into())
                    .collect();
                attrs.insert("known_ids".into(), known.into());
            }
            let ctx = OpContext {
                addr: intent.addr.clone(),
                lineage: state.lineage.clone(),
            };
            let found = provider
                .find(&intent.addr.type_name, &attrs, &ctx)
                .await
                .map_err(|err| ReconcileError::Provider {
                    addr: intent.addr.clone(),
                    err,
                })?;
            if let Some((id, live)) = found {
                let deps = ws
                    .graph
                    .resource_deps(&Node::Resource(intent.addr.clone()))
                    .into_iter()
                    .filter(|a| a.mode == Mode::Managed)
                    .collect();
                store.put(&ResourceState {
                    addr: intent.addr.clone(),
                    id: id.clone(),
                    attrs: live,
                    deps,
                    sensitive: Default::default(),
                })?;
                adopted.push(Adopted {
                    addr: intent.addr.clone(),
                    id,
                });
            }
        }
        store.close_intent(&intent.addr)?;
    }
    Ok(adopted)
}

/// Adopts every object tagged with this state's lineage that the state does not hold (a state
/// restored from an old copy, say). Those still in the configuration are simply known again;
/// the others are then planned for deletion like any resource removed from the configuration.
pub async fn adopt_tagged<P: Provider, S: StateStore>(
    provider: &P,
    ws: &Workspace,
    store: &mut S,
) -> Result<Vec<Adopted>, ReconcileError> {
    let state = store.load()?;
    if state.lineage.is_empty() {
        return Ok(Vec::new());
    }
    let types: std::collections::BTreeSet<&str> = ws
        .config
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
    let known: std::collections::BTreeSet<(&str, &str)> = state
        .resources
        .values()
        .map(|r| (r.addr.type_name.as_str(), r.id.as_str()))
        .collect();
    let mut adopted = Vec::new();
    for (addr, id) in tagged {
        if state.resources.contains_key(&addr)
            || known.contains(&(addr.type_name.as_str(), id.as_str()))
            || state
                .forgotten
                .contains(&format!("{}/{id}", addr.type_name))
        {
            continue;
        }
        let live = provider
            .refresh(&[crate::provider::RefreshRequest {
                addr: addr.clone(),
                id: id.clone(),
                prior: crate::state::Attrs::new(),
            }])
            .await
            .map_err(|err| ReconcileError::Provider {
                addr: addr.clone(),
                err,
            })?;
        let Some(Some(attrs)) = live.into_iter().next() else {
            continue;
        };
        let deps = ws
            .graph
            .resource_deps(&Node::Resource(addr.clone()))
            .into_iter()
            .filter(|a| a.mode == Mode::Managed)
            .collect();
        store.put(&ResourceState {
            addr: addr.clone(),
            id: id.clone(),
            attrs,
            deps,
            sensitive: Default::default(),
        })?;
        adopted.push(Adopted { addr, id });
    }
    Ok(adopted)
}
