//! The remote state: a state kept in an object store with conditional writes (S3), shared by a
//! team and by CI runners that vanish.
//!
//! (Skeleton: the protocol lands in the next commit.)

use std::time::Duration;

use crate::lang::address::Address;
use crate::state::objects::ObjectStore;
use crate::state::{
    Intent, LockInfo, OutputState, Owner, ResourceState, State, StateError, StateStore,
};

/// A state under `key` in `objects`.
pub(crate) struct RemoteState<O: ObjectStore> {
    objects: O,
    key: String,
    lease: Duration,
}

impl<O: ObjectStore> RemoteState<O> {
    /// The state whose objects are named after `key`; a lock this store takes lasts `lease`
    /// without a heartbeat.
    pub(crate) fn new(objects: O, key: impl Into<String>, lease: Duration) -> RemoteState<O> {
        RemoteState {
            objects,
            key: key.into(),
            lease,
        }
    }

    /// Where the state lives, for messages: `s3://bucket/key`.
    pub(crate) fn location(&self) -> String {
        format!("{}/{}", self.objects.location(), self.key)
    }

    fn pending(&self) -> StateError {
        StateError::Db(format!(
            "{}: the remote state is not implemented yet (lease {:?})",
            self.location(),
            self.lease
        ))
    }
}

impl<O: ObjectStore> StateStore for RemoteState<O> {
    async fn load(&mut self) -> Result<State, StateError> {
        Err(self.pending())
    }
    async fn replace(&mut self, _state: &State) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn put(&mut self, _r: &ResourceState) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn remove(&mut self, _addr: &Address) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn forget(&mut self, _addr: &Address) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn set_outputs(
        &mut self,
        _outputs: &std::collections::BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn set_owner(&mut self, _owner: &Owner) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn set_lineage(&mut self, _lineage: &str) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn rename(&mut self, _from: &Address, _to: &Address) -> Result<u64, StateError> {
        Err(self.pending())
    }
    async fn open_intent(&mut self, _intent: &Intent) -> Result<(), StateError> {
        Err(self.pending())
    }
    async fn close_intent(&mut self, _addr: &Address) -> Result<(), StateError> {
        Err(self.pending())
    }
    async fn try_lock(&mut self, _me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        Err(self.pending())
    }
    async fn unlock(&mut self, _id: &str) -> Result<bool, StateError> {
        Err(self.pending())
    }
    async fn heartbeat(&mut self, _id: &str) -> Result<(), StateError> {
        Err(self.pending())
    }
    async fn set_drift_seen(
        &mut self,
        _seen: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StateError> {
        Err(self.pending())
    }
}
