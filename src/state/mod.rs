//! The state: what skyform created, keyed by address, with a lineage and a serial.
//!
//! Owns the model (`State`, `ResourceState`, intents, the owner, lock holders), the small
//! `StateStore` trait, and its implementations: SQLite on disk (`sqlite`) and memory
//! (`MemoryState`, for tests), plus the lock protocol on top of the trait (`lock`). A remote
//! store (S3 with a conditional-write lock) implements the same trait without touching the
//! engine. Every write of a resource, an output, the owner or the lineage is one committed
//! transaction that bumps the serial: an apply records each create, update and delete the
//! moment it succeeds, never only at the end. Intents and the lock are bookkeeping, committed
//! the same way but without a new serial.
//!
//! The trait is async because a store waits: on the network for S3, on the disk (and on other
//! writers' transactions) for SQLite. A store must not block the runtime while it waits, since
//! AWS calls and the lock's heartbeat run on that same thread; the SQLite store does its work on
//! tokio's blocking pool. A write's future resolves only once the write is durable, so awaiting
//! it keeps write-ahead exactly as strong as a synchronous commit.
//!
//! May use: `lang`. The engine and the command line use it.

pub(crate) mod lock;
// Wired to the S3 backend by the commits that follow this one.
#[allow(dead_code)]
pub(crate) mod objects;
#[allow(dead_code)]
pub(crate) mod remote;
pub(crate) mod sqlite;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lang::address::Address;

pub(crate) type Attrs = serde_json::Map<String, serde_json::Value>;

/// One managed resource as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    pub(crate) addr: Address,
    pub(crate) id: String,
    pub(crate) attrs: Attrs,
    /// What it depended on when it was written; deletes run in reverse of this.
    pub(crate) deps: Vec<Address>,
    /// Attributes whose value came from a sensitive input (a `sensitive` variable, or another
    /// sensitive value), as Terraform's `sensitive_attributes`: shown masked, never saved in a
    /// plan file. Schema-sensitive attributes are masked whether listed here or not.
    #[serde(default)]
    pub(crate) sensitive: std::collections::BTreeSet<String>,
    /// The provider configuration the object lives in: its alias (`west` for `aws.west`), or
    /// empty for the default. Reads and deletes go there even once the block is gone.
    #[serde(default)]
    pub(crate) provider: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    pub(crate) value: serde_json::Value,
    pub(crate) sensitive: bool,
}

/// The identity that first wrote the state (see `engine::provider::Identity`). Writes from
/// another tenant are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    #[serde(alias = "account")]
    pub(crate) tenant: String,
    #[serde(alias = "arn")]
    pub(crate) principal: String,
}

/// A write-ahead record of a create (or update, or delete) whose outcome is not recorded yet.
/// It is written, in its own committed transaction, before the call; the outcome clears it. An
/// intent left open by a crash is reconciled on the next run: the object is looked for (by its
/// tags, or for IAM by its unique name) and adopted when it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub(crate) addr: Address,
    pub(crate) op: String,
    pub(crate) token: String,
    /// The attributes the call was made with (names to look the object up by).
    pub(crate) attrs: Attrs,
    /// What the provider recorded before the call to tell its own object from others later
    /// (for an access key: the ids of the keys the user already had).
    #[serde(default)]
    pub(crate) evidence: Attrs,
    /// The provider configuration the call went to (see `ResourceState::provider`): a lost
    /// create's object is looked for there.
    #[serde(default)]
    pub(crate) provider: String,
}

/// Who holds a state's lock, and for how long without a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The holder's login (`USER`), empty when unknown.
    #[serde(default)]
    pub(crate) user: String,
    pub(crate) command: String,
    pub(crate) started_at: i64,
    pub(crate) heartbeat_at: i64,
    /// Seconds after its last heartbeat that the lock is released to the next writer.
    #[serde(default)]
    pub(crate) lease: u64,
}

impl LockInfo {
    /// Who this is, for messages: `"apply" (user ann, pid 12 on ci-1, lock id L)`.
    pub(crate) fn describe(&self) -> String {
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("user {}, ", self.user)
        };
        format!(
            "{:?} ({user}pid {} on {}, lock id {})",
            self.command, self.pid, self.host, self.id
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub(crate) lineage: String,
    pub(crate) serial: u64,
    pub(crate) owner: Option<Owner>,
    pub(crate) resources: BTreeMap<Address, ResourceState>,
    pub(crate) outputs: BTreeMap<String, OutputState>,
    #[serde(default)]
    pub(crate) intents: BTreeMap<Address, Intent>,
    /// Objects `state rm` handed off, as `type/id`: never adopted again by their tags.
    #[serde(default)]
    pub(crate) forgotten: std::collections::BTreeSet<String>,
    /// When `skyform drift` first saw each drift that is still there (`engine::drift_seen`
    /// keys, RFC 3339 times), from `meta`'s `drift_seen`. It describes AWS, not what skyform
    /// manages, so plan files leave it out.
    #[serde(skip)]
    pub(crate) drift_seen: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the state at {path}: {message}")]
    Open { path: String, message: String },
    #[error("the state at {path} is not a skyform state ({message}); it was left untouched")]
    Foreign { path: String, message: String },
    #[error("the state at {path} has schema version {found}, newer than this skyform understands ({supported}); upgrade skyform")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("state database error: {0}")]
    Db(String),
    /// A conditional write found the state written by someone else since this run read it.
    #[error("the state at {location} changed since it was read{}; nothing was overwritten", holder_note(.holder.as_ref()))]
    Changed {
        location: String,
        holder: Option<LockInfo>,
    },
    /// This run's lock was taken over (its lease expired): its writes are fenced off.
    #[error("the lock on the state at {location} was taken over{}, its lease having expired; this run's later writes are refused", holder_note(.holder.as_ref()))]
    LockLost {
        location: String,
        holder: Option<LockInfo>,
    },
}

fn holder_note(holder: Option<&LockInfo>) -> String {
    holder.map_or_else(String::new, |h| {
        format!(" (the lock is held by {})", h.describe())
    })
}

/// Reading and writing state. Each write is durable when its future resolves.
///
/// Native `async fn`, as `Provider`: the engine and the commands are generic over the store
/// and run on one thread, so they never need `Send` futures or a boxed trait object.
#[allow(async_fn_in_trait)]
pub trait StateStore {
    async fn load(&mut self) -> Result<State, StateError>;
    /// Writes `state` in place of what the store holds, in one durable write, keeping its
    /// lineage, serial, owner, resources, outputs, intents and handed-off objects (`state
    /// migrate`, `state push`, `state import-terraform`); returns the serial. Nothing is
    /// half-written: a failure leaves the store as it was.
    async fn replace(&mut self, state: &State) -> Result<u64, StateError>;
    /// Records a resource (insert or replace); returns the new serial.
    async fn put(&mut self, r: &ResourceState) -> Result<u64, StateError>;
    /// Forgets a resource; returns the new serial.
    async fn remove(&mut self, addr: &Address) -> Result<u64, StateError>;
    /// Forgets a resource that stays in AWS on purpose (`state rm`): it is remembered as handed
    /// off, so that its skyform tags never bring it back. Returns the new serial.
    async fn forget(&mut self, addr: &Address) -> Result<u64, StateError>;
    /// Replaces all outputs; returns the new serial.
    async fn set_outputs(
        &mut self,
        outputs: &BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError>;
    /// Records the owning identity; returns the new serial.
    async fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError>;
    /// Replaces the lineage (`state new-lineage`); returns the new serial.
    async fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError>;
    /// Renames a resource, and every dependency on it, in one write; returns the new serial.
    async fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError>;
    /// Records an intent before its call (no serial change: intents are bookkeeping).
    async fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError>;
    async fn close_intent(&mut self, addr: &Address) -> Result<(), StateError>;
    /// Records the resource a create or update made (`put`) and closes its intent, in one
    /// write where the store can: apply makes one per operation, on its critical path.
    async fn put_closing_intent(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        let serial = self.put(r).await?;
        self.close_intent(&r.addr).await?;
        Ok(serial)
    }
    /// Puts what this store wrote into the form that is cheapest for the next reader (the
    /// remote state folds its journal into a snapshot from what it already holds, so that the
    /// lock's release need not read the journal back); nothing for stores without such a form.
    async fn settle(&mut self) -> Result<(), StateError> {
        Ok(())
    }
    /// Takes the lock, or says who holds it.
    async fn try_lock(&mut self, me: &LockInfo) -> Result<Option<LockInfo>, StateError>;
    /// Takes the lock from `stale` (a holder whose lease expired) only if it is still exactly
    /// that holder's, in one conditional step; otherwise says who holds it now. The lock is
    /// taken when it was released meanwhile.
    async fn take_over(
        &mut self,
        me: &LockInfo,
        stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError>;
    /// Releases the lock with this id; false when it was not held under that id.
    async fn unlock(&mut self, id: &str) -> Result<bool, StateError>;
    async fn heartbeat(&mut self, id: &str) -> Result<(), StateError>;
    /// Replaces the first-seen times of drift (an empty map deletes them), without bumping
    /// the serial: they are bookkeeping about AWS, and a saved plan stays applicable.
    async fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError>;
}

/// Dependency lists after a rename.
pub(crate) fn renamed_deps(deps: &[Address], from: &Address, to: &Address) -> Vec<Address> {
    deps.iter()
        .map(|d| if d == from { to.clone() } else { d.clone() })
        .collect()
}

/// A random lineage id.
pub(crate) fn new_lineage() -> String {
    let hex = crate::lang::digest::hex(&random_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// 16 bytes from the OS random source (falling back to time and pid).
pub(crate) fn random_bytes() -> [u8; 16] {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = t ^ (u128::from(std::process::id()) << 64);
        bytes = mixed.to_le_bytes();
    }
    bytes
}

/// An in-memory store, for unit tests of the engine.
#[derive(Debug, Default)]
pub struct MemoryState(pub State);

impl StateStore for MemoryState {
    async fn load(&mut self) -> Result<State, StateError> {
        if self.0.lineage.is_empty() {
            self.0.lineage = new_lineage();
        }
        Ok(self.0.clone())
    }
    async fn replace(&mut self, state: &State) -> Result<u64, StateError> {
        self.0 = state.clone();
        Ok(self.0.serial)
    }
    async fn put(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        self.0.resources.insert(r.addr.clone(), r.clone());
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn remove(&mut self, addr: &Address) -> Result<u64, StateError> {
        self.0.resources.remove(addr);
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn set_outputs(
        &mut self,
        outputs: &BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError> {
        self.0.outputs = outputs.clone();
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError> {
        self.0.owner = Some(owner.clone());
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError> {
        self.0.lineage = lineage.to_string();
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError> {
        self.0.intents.insert(intent.addr.clone(), intent.clone());
        Ok(())
    }
    async fn forget(&mut self, addr: &Address) -> Result<u64, StateError> {
        if let Some(r) = self.0.resources.remove(addr) {
            self.0
                .forgotten
                .insert(format!("{}/{}", addr.type_name, r.id));
        }
        self.0.serial += 1;
        Ok(self.0.serial)
    }
    async fn close_intent(&mut self, addr: &Address) -> Result<(), StateError> {
        self.0.intents.remove(addr);
        Ok(())
    }
    async fn try_lock(&mut self, _me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        Ok(None)
    }
    async fn take_over(
        &mut self,
        _me: &LockInfo,
        _stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError> {
        Ok(None)
    }
    async fn unlock(&mut self, _id: &str) -> Result<bool, StateError> {
        Ok(true)
    }
    async fn heartbeat(&mut self, _id: &str) -> Result<(), StateError> {
        Ok(())
    }
    async fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError> {
        self.0.drift_seen.clone_from(seen);
        Ok(())
    }
    async fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError> {
        if let Some(mut r) = self.0.resources.remove(from) {
            r.addr = to.clone();
            self.0.resources.insert(to.clone(), r);
        }
        for r in self.0.resources.values_mut() {
            r.deps = renamed_deps(&r.deps, from, to);
        }
        self.0.serial += 1;
        Ok(self.0.serial)
    }
}
