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
