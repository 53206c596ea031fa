//! The remote state: a state kept in an object store with conditional writes (S3), shared by a
//! team and by CI runners that vanish. Owns the object layout and the protocol over it.
//!
//! Objects, for the state under `key` (`<key>` itself is Terraform's state object, never
//! written, so that a Terraform user's state survives next to skyform's):
//! - `<key>.skystate`, the head: a small JSON naming the current `base` (and, for people, its
//!   lineage and serial). Replacing it with `If-Match` is the one commit point of a compaction.
//! - `<key>.skysnapshot/<base>`: the whole state (with `drift_seen`) as of that base; written
//!   once, never changed.
//! - `<key>.skyjournal/<base>/<seq>`: one small object per write since that snapshot, each
//!   created with `If-None-Match: *`. A slot is claimed once, so two writers can never both
//!   append slot n: the loser gets `StateError::Changed`, never a lost update. Uploading the
//!   whole state per operation would make a large apply quadratic; an entry is one resource.
//! - `<key>.skylock`, the lock, created with `If-None-Match: *` and renewed with `If-Match`.
//!
//! Compaction folds the journal into a new snapshot: when the lock is released, when a journal
//! grows past `COMPACT_AFTER`, when a stale lock is taken over, and on `replace`. It first
//! claims the next slot with a *seal*, so that a writer still appending to the old base (a
//! runner whose lease expired but which is still alive) fails on its next write: that is the
//! fencing. Since a dead base's objects (its seal too) are deleted afterwards, a writer also
//! GETs the small head after each entry: a head that moved means its entry may be lost, and the
//! write fails. A reader folds a contiguous prefix of slots and reads again when the head moved.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lang::address::Address;
use crate::state::objects::{Object, ObjectError, ObjectStore, PutIf};
use crate::state::{
    renamed_deps, Intent, LockInfo, OutputState, Owner, ResourceState, State, StateError,
    StateStore,
};

/// What a snapshot says it is, so that another object under the name is never taken for one.
const FORMAT: &str = "skyform-remote-state";
const VERSION: u32 = 1;

/// Journal entries after which a writer folds them into a new snapshot. A reader GETs every
/// entry, so this bounds a plan's reads; a compaction costs a snapshot PUT, so it must be rare.
const COMPACT_AFTER: u64 = 500;

/// How many times a reader starts over when compaction moves the state under it.
const READ_ATTEMPTS: usize = 20;

/// A state under `key` in `objects`.
pub(crate) struct RemoteState<O: ObjectStore> {
    objects: O,
    key: String,
    lease: Duration,
    /// What this store last read or wrote; writes extend it, and fail when it is outdated.
    view: Option<View>,
    /// The etag of the lock object as this store last wrote or read it, with its holder.
    lock: Option<(LockInfo, String)>,
}

/// The state as folded from one base and its journal.
#[derive(Debug, Clone)]
struct View {
    base: String,
    /// The head's etag; `None` when there is no state yet.
    etag: Option<String>,
    /// The next free journal slot.
    next: u64,
    state: State,
    /// The base's journal ends with a seal whose compaction did not finish: no more entries.
    sealed: bool,
}

/// The head object: which base is current.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    format: String,
    version: u32,
    base: String,
    /// For people looking at the bucket; the snapshot is what counts.
    lineage: String,
    serial: u64,
}

/// A snapshot body.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    state: State,
    /// `State` leaves `drift_seen` out of its serde form (plan files must not carry it).
    #[serde(default)]
    drift_seen: BTreeMap<String, String>,
}

/// One write, as a journal object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Entry {
    /// Records a resource, and closes its intent (the engine closes it right after anyway).
    Put {
        resource: ResourceState,
    },
    /// Forgets a resource and closes its intent.
    Remove {
        addr: Address,
    },
    Forget {
        addr: Address,
    },
    Outputs {
        outputs: BTreeMap<String, OutputState>,
    },
    Owner {
        owner: Owner,
    },
    Lineage {
        lineage: String,
    },
    Rename {
        from: Address,
        to: Address,
    },
    OpenIntent {
        intent: Intent,
    },
    CloseIntent {
        addr: Address,
    },
    DriftSeen {
        seen: BTreeMap<String, String>,
    },
    /// Nothing more is written to this base: a compaction superseded it.
    Seal,
}

impl Entry {
    /// Applies the entry to `state`, with SQLite's serial rules: what skyform manages bumps the
    /// serial, bookkeeping (intents, drift times) does not.
    fn fold(&self, state: &mut State) {
        let bumps = match self {
            Entry::Put { resource } => {
                state.intents.remove(&resource.addr);
                state
                    .resources
                    .insert(resource.addr.clone(), resource.clone());
                true
            }
            Entry::Remove { addr } => {
                state.intents.remove(addr);
                state.resources.remove(addr);
                true
            }
            Entry::Forget { addr } => {
                if let Some(r) = state.resources.remove(addr) {
                    state
                        .forgotten
                        .insert(format!("{}/{}", addr.type_name, r.id));
                }
                true
            }
            Entry::Outputs { outputs } => {
                state.outputs.clone_from(outputs);
                true
            }
            Entry::Owner { owner } => {
                state.owner = Some(owner.clone());
                true
            }
            Entry::Lineage { lineage } => {
                state.lineage.clone_from(lineage);
                true
            }
            Entry::Rename { from, to } => {
                if let Some(mut r) = state.resources.remove(from) {
                    r.addr = to.clone();
                    state.resources.insert(to.clone(), r);
                }
                for r in state.resources.values_mut() {
                    r.deps = renamed_deps(&r.deps, from, to);
                }
                true
            }
            Entry::OpenIntent { intent } => {
                state.intents.insert(intent.addr.clone(), intent.clone());
                false
            }
            Entry::CloseIntent { addr } => {
                state.intents.remove(addr);
                false
            }
            Entry::DriftSeen { seen } => {
                state.drift_seen.clone_from(seen);
                false
            }
            Entry::Seal => false,
        };
        if bumps {
            state.serial += 1;
        }
    }
}

/// A random id for a base or a lock.
fn random_id() -> String {
    crate::lang::digest::hex(&crate::state::random_bytes())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl<O: ObjectStore> RemoteState<O> {
    /// The state whose objects are named after `key`; a lock this store takes lasts `lease`
    /// without a heartbeat, unless the lock it is asked to take says otherwise.
    pub(crate) fn new(objects: O, key: impl Into<String>, lease: Duration) -> RemoteState<O> {
        RemoteState {
            objects,
            key: key.into(),
            lease,
            view: None,
            lock: None,
        }
    }

    /// Where the state lives, for messages: `s3://bucket/key`.
    pub(crate) fn location(&self) -> String {
        format!("{}/{}", self.objects.location(), self.key)
    }

    fn head_key(&self) -> String {
        format!("{}.skystate", self.key)
    }

    fn snapshot_root(&self) -> String {
        format!("{}.skysnapshot/", self.key)
    }

    fn snapshot_key(&self, base: &str) -> String {
        format!("{}{base}", self.snapshot_root())
    }

    fn journal_root(&self) -> String {
        format!("{}.skyjournal/", self.key)
    }

    fn journal_prefix(&self, base: &str) -> String {
        format!("{}{base}/", self.journal_root())
    }

    fn slot_key(&self, base: &str, seq: u64) -> String {
        format!("{}{seq:010}", self.journal_prefix(base))
    }

    fn lock_key(&self) -> String {
        format!("{}.skylock", self.key)
    }

    fn io(&self, e: &ObjectError) -> StateError {
        StateError::Db(format!("{}: {e}", self.location()))
    }

    fn corrupt(&self, what: &str, e: &serde_json::Error) -> StateError {
        StateError::Foreign {
            path: self.location(),
            message: format!("{what} is not skyform's: {e}"),
        }
    }

    /// The error for a write whose condition failed, naming the lock's holder when there is one.
    async fn changed(&mut self) -> StateError {
        // Whatever this store believed is outdated now.
        self.view = None;
        let holder = self.read_lock().await.ok().flatten().map(|(h, _)| h);
        StateError::Changed {
            location: self.location(),
            holder,
        }
    }

    /// The object under `key`, if there is one.
    async fn get(&self, key: &str) -> Result<Option<Object>, StateError> {
        self.objects.get(key).await.map_err(|e| self.io(&e))
    }

    /// The lock object and its etag, if there is one.
    async fn read_lock(&self) -> Result<Option<(LockInfo, String)>, StateError> {
        let Some(o) = self.get(&self.lock_key()).await? else {
            return Ok(None);
        };
        let info: LockInfo =
            serde_json::from_slice(&o.body).map_err(|e| self.corrupt("the lock object", &e))?;
        Ok(Some((info, o.etag)))
    }

    /// Reads the snapshot and folds its journal: a consistent state, written or not. It never
    /// writes, so `plan` may call it without the lock.
    async fn read(&self) -> Result<View, StateError> {
        for _ in 0..READ_ATTEMPTS {
            if let Some(view) = self.read_once().await? {
                return Ok(view);
            }
        }
        Err(StateError::Db(format!(
            "{}: the state kept changing while it was read ({READ_ATTEMPTS} attempts)",
            self.location()
        )))
    }

    /// The head's etag now (`None`: no state yet).
    async fn head_etag(&self) -> Result<Option<String>, StateError> {
        Ok(self.get(&self.head_key()).await?.map(|o| o.etag))
    }

    /// One attempt at `read`; `None` when a compaction moved the state meanwhile.
    async fn read_once(&self) -> Result<Option<View>, StateError> {
        let head = self.get(&self.head_key()).await?;
        let Some(head) = head else {
            // No state yet: nothing is written until the first write.
            return Ok(Some(View {
                base: String::new(),
                etag: None,
                next: 0,
                state: State::default(),
                sealed: false,
            }));
        };
        let parsed: Head =
            serde_json::from_slice(&head.body).map_err(|e| self.corrupt("the head", &e))?;
        if parsed.format != FORMAT || parsed.version > VERSION {
            return Err(StateError::Foreign {
                path: self.location(),
                message: format!(
                    "its head is {:?} version {}, this skyform reads {FORMAT} version {VERSION}",
                    parsed.format, parsed.version
                ),
            });
        }
        let Some(body) = self.get(&self.snapshot_key(&parsed.base)).await? else {
            // Deleted by a compaction that moved the head on since.
            return Ok(None);
        };
        let snapshot: Snapshot =
            serde_json::from_slice(&body.body).map_err(|e| self.corrupt("the snapshot", &e))?;
        let mut view = View {
            base: parsed.base,
            etag: Some(head.etag),
            next: 0,
            state: snapshot.state,
            sealed: false,
        };
        view.state.drift_seen = snapshot.drift_seen;
        let listed = self
            .objects
            .list(&self.journal_prefix(&view.base))
            .await
            .map_err(|e| self.io(&e))?;
        for key in listed {
            // Only a contiguous prefix of slots is a state (a gap: compaction is deleting).
            if key != self.slot_key(&view.base, view.next) || !self.fold_slot(&mut view).await? {
                break;
            }
        }
        // A journal listed empty or cut short may be one a compaction deleted: the state is
        // what was folded only if the head did not move meanwhile. Otherwise, a seal under an
        // unmoved head is a compaction that died, and the folded prefix is the state.
        if self.head_etag().await? == view.etag {
            Ok(Some(view))
        } else {
            Ok(None)
        }
    }

    /// Folds the view's next slot into it; false when there is no such entry, or it is a seal
    /// (nothing follows a seal).
    async fn fold_slot(&self, view: &mut View) -> Result<bool, StateError> {
        let key = self.slot_key(&view.base, view.next);
        let Some(o) = self.get(&key).await? else {
            return Ok(false);
        };
        let entry: Entry = serde_json::from_slice(&o.body)
            .map_err(|e| self.corrupt(&format!("the journal entry {key}"), &e))?;
        view.next += 1;
        if entry == Entry::Seal {
            view.sealed = true;
            return Ok(false);
        }
        entry.fold(&mut view.state);
        Ok(true)
    }

    /// The state as now, read from what this store already folded: the entries appended since
    /// (usually none, one GET), then the head, as `read_once` checks it. A writer that reads its
    /// own state again (apply's outputs, the fold at release) so costs two GETs, not one per
    /// entry of the journal. `None` when the head moved: then only a whole read will do.
    async fn read_on(&self, mut view: View) -> Result<Option<View>, StateError> {
        if view.etag.is_none() || view.sealed {
            return Ok(None);
        }
        while self.fold_slot(&mut view).await? {}
        if self.head_etag().await? == view.etag {
            Ok(Some(view))
        } else {
            Ok(None)
        }
    }

    /// `read`, from this store's view when it has one that is still current.
    async fn reread(&self) -> Result<View, StateError> {
        if let Some(view) = self.view.clone() {
            if let Some(view) = self.read_on(view).await? {
                return Ok(view);
            }
        }
        self.read().await
    }

    /// What this store believes the state is, reading it when it has not yet.
    async fn current(&mut self) -> Result<View, StateError> {
        if let Some(v) = &self.view {
            return Ok(v.clone());
        }
        let v = self.read().await?;
        self.view = Some(v.clone());
        Ok(v)
    }

    /// Writes `state` as a new snapshot with a new base, and moves the head to it from exactly
    /// the head of `view` (or none). The old base must be sealed already.
    async fn write_snapshot(&mut self, view: &View, state: State) -> Result<View, StateError> {
        let base = random_id();
        let encode = |e: serde_json::Error| StateError::Db(format!("{}: {e}", self.location()));
        let body = serde_json::to_vec(&Snapshot {
            drift_seen: state.drift_seen.clone(),
            state: state.clone(),
        })
        .map_err(encode)?;
        let head = serde_json::to_vec(&Head {
            format: FORMAT.into(),
            version: VERSION,
            base: base.clone(),
            lineage: state.lineage.clone(),
            serial: state.serial,
        })
        .map_err(encode)?;
        self.objects
            .put(&self.snapshot_key(&base), body, PutIf::Absent)
            .await
            .map_err(|e| self.io(&e))?;
        let when = view.etag.as_deref().map_or(PutIf::Absent, PutIf::Matches);
        match self.objects.put(&self.head_key(), head, when).await {
            Ok(etag) => {
                let written = View {
                    base,
                    etag: Some(etag),
                    next: 0,
                    state,
                    sealed: false,
                };
                self.view = Some(written.clone());
                Ok(written)
            }
            Err(ObjectError::Precondition { .. }) => Err(self.changed().await),
            Err(e) => Err(self.io(&e)),
        }
    }

    /// Claims the view's next slot for `entry`; `Changed` when someone else claimed it, or
    /// when the head moved (the entry may have gone to a base already folded and deleted).
    async fn claim(&mut self, view: &View, entry: &Entry) -> Result<(), StateError> {
        let body = serde_json::to_vec(entry)
            .map_err(|e| StateError::Db(format!("{}: {e}", self.location())))?;
        let key = self.slot_key(&view.base, view.next);
        match self.objects.put(&key, body, PutIf::Absent).await {
            Ok(_) => {}
            Err(ObjectError::Precondition { .. }) => return Err(self.changed().await),
            Err(e) => {
                // Whether the write landed is unknown: read again before the next one.
                self.view = None;
                return Err(self.io(&e));
            }
        }
        // A seal needs no check: the head's conditional write that follows it is the check.
        if *entry != Entry::Seal && self.head_etag().await? != view.etag {
            return Err(self.changed().await);
        }
        Ok(())
    }

    /// Seals the view's base (when it has a snapshot) and writes `state` as the new snapshot,
    /// then deletes what older bases left.
    async fn supersede(&mut self, view: View, state: State) -> Result<View, StateError> {
        if view.etag.is_some() && !view.sealed {
            self.claim(&view, &Entry::Seal).await?;
        }
        let written = self.write_snapshot(&view, state).await?;
        self.sweep(&written.base).await;
        Ok(written)
    }

    /// Deletes the snapshots and journal objects of every base but `base` and the head's
    /// (best effort: what is left is deleted by the next compaction).
    async fn sweep(&self, base: &str) {
        let mut keep = vec![base.to_string()];
        // A compaction after this one may have moved the head on already.
        if let Ok(Some(head)) = self.objects.get(&self.head_key()).await {
            if let Ok(head) = serde_json::from_slice::<Head>(&head.body) {
                keep.push(head.base);
            }
        }
        for root in [self.journal_root(), self.snapshot_root()] {
            let Ok(keys) = self.objects.list(&root).await else {
                continue;
            };
            let dead: Vec<String> = keys
                .into_iter()
                .filter(|k| {
                    let rest = k.strip_prefix(&root).unwrap_or(k);
                    let base = rest.split('/').next().unwrap_or_default();
                    !keep.iter().any(|b| b == base)
                })
                .collect();
            if !dead.is_empty() {
                let _ = self.objects.delete(&dead).await;
            }
        }
    }

    /// Folds the journal into a new snapshot, reading the state afresh (from this store's view
    /// when it is still current).
    async fn compact(&mut self) -> Result<(), StateError> {
        let view = self.reread().await?;
        self.view = Some(view.clone());
        if view.etag.is_none() || (view.next == 0 && !view.sealed) {
            // Nothing to fold.
            return Ok(());
        }
        let state = view.state.clone();
        self.supersede(view, state).await.map(|_| ())
    }

    /// Appends `entry`, after whatever first write makes the state exist; returns the serial.
    async fn append(&mut self, entry: Entry) -> Result<u64, StateError> {
        let mut view = self.current().await?;
        if view.etag.is_none() {
            // The first write of a state: its lineage is born with its snapshot.
            let mut state = view.state.clone();
            if state.lineage.is_empty() {
                state.lineage = crate::state::new_lineage();
            }
            view = self.write_snapshot(&view, state).await?;
        } else if view.sealed {
            // A compaction died after its seal: finish it, then write to the new base.
            let state = view.state.clone();
            view = self.supersede(view, state).await?;
        }
        self.claim(&view, &entry).await?;
        entry.fold(&mut view.state);
        view.next += 1;
        let serial = view.state.serial;
        let full = view.next >= COMPACT_AFTER;
        self.view = Some(view);
        if full {
            self.compact().await?;
        }
        Ok(serial)
    }
}

impl<O: ObjectStore> StateStore for RemoteState<O> {
    async fn load(&mut self) -> Result<State, StateError> {
        let view = self.reread().await?;
        let state = view.state.clone();
        self.view = Some(view);
        Ok(state)
    }

    async fn replace(&mut self, state: &State) -> Result<u64, StateError> {
        let view = self.current().await?;
        let written = self.supersede(view, state.clone()).await?;
        Ok(written.state.serial)
    }

    async fn settle(&mut self) -> Result<(), StateError> {
        self.compact().await
    }

    async fn put(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        self.append(Entry::Put {
            resource: r.clone(),
        })
        .await
    }

    async fn remove(&mut self, addr: &Address) -> Result<u64, StateError> {
        self.append(Entry::Remove { addr: addr.clone() }).await
    }

    async fn forget(&mut self, addr: &Address) -> Result<u64, StateError> {
        self.append(Entry::Forget { addr: addr.clone() }).await
    }

    async fn set_outputs(
        &mut self,
        outputs: &BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError> {
        self.append(Entry::Outputs {
            outputs: outputs.clone(),
        })
        .await
    }

    async fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError> {
        self.append(Entry::Owner {
            owner: owner.clone(),
        })
        .await
    }

    async fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError> {
        self.append(Entry::Lineage {
            lineage: lineage.to_string(),
        })
        .await
    }

    async fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError> {
        self.append(Entry::Rename {
            from: from.clone(),
            to: to.clone(),
        })
        .await
    }

    async fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError> {
        self.append(Entry::OpenIntent {
            intent: intent.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn close_intent(&mut self, addr: &Address) -> Result<(), StateError> {
        // The common case, a put or remove, closed it already: a PUT saved per operation.
        if !self.current().await?.state.intents.contains_key(addr) {
            return Ok(());
        }
        self.append(Entry::CloseIntent { addr: addr.clone() })
            .await
            .map(|_| ())
    }

    async fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError> {
        self.append(Entry::DriftSeen { seen: seen.clone() })
            .await
            .map(|_| ())
    }

    async fn try_lock(&mut self, me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        let mut me = me.clone();
        if me.lease == 0 {
            me.lease = self.lease.as_secs();
        }
        let body = serde_json::to_vec(&me)
            .map_err(|e| StateError::Db(format!("{}: {e}", self.location())))?;
        // The lock may be released between a refused create and the read of its holder.
        for _ in 0..READ_ATTEMPTS {
            match self
                .objects
                .put(&self.lock_key(), body.clone(), PutIf::Absent)
                .await
            {
                Ok(etag) => {
                    self.lock = Some((me, etag));
                    return Ok(None);
                }
                Err(ObjectError::Precondition { .. }) => {}
                Err(e) => return Err(self.io(&e)),
            }
            if let Some((holder, etag)) = self.read_lock().await? {
                self.lock = Some((holder.clone(), etag));
                return Ok(Some(holder));
            }
        }
        Err(StateError::Db(format!(
            "{}: the lock kept changing while it was taken",
            self.location()
        )))
    }

    async fn take_over(
        &mut self,
        me: &LockInfo,
        stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError> {
        let etag = match self.lock.take() {
            Some((h, etag)) if h == *stale => etag,
            _ => match self.read_lock().await? {
                Some((h, etag)) if h == *stale => etag,
                Some((h, _)) => return Ok(Some(h)),
                // Released meanwhile: simply take it.
                None => return self.try_lock(me).await,
            },
        };
        let mut me = me.clone();
        if me.lease == 0 {
            me.lease = self.lease.as_secs();
        }
        let body = serde_json::to_vec(&me)
            .map_err(|e| StateError::Db(format!("{}: {e}", self.location())))?;
        match self
            .objects
            .put(&self.lock_key(), body, PutIf::Matches(&etag))
            .await
        {
            Ok(etag) => self.lock = Some((me.clone(), etag)),
            Err(ObjectError::Precondition { .. }) => {
                return match self.read_lock().await? {
                    Some((h, _)) => Ok(Some(h)),
                    None => self.try_lock(&me).await,
                };
            }
            Err(e) => return Err(self.io(&e)),
        }
        // Fence the old holder off: its next journal write meets the seal and fails.
        if let Err(e) = self.compact().await {
            let _ = self.unlock(&me.id).await;
            return Err(e);
        }
        Ok(None)
    }

    async fn unlock(&mut self, id: &str) -> Result<bool, StateError> {
        match self.read_lock().await? {
            Some((h, _)) if h.id == id => {}
            _ => return Ok(false),
        }
        // The holder folds its journal before it lets go, so that the next reader GETs one
        // snapshot rather than every entry. A failure leaves the journal for the next time.
        let folded = self.compact().await;
        self.objects
            .delete(&[self.lock_key()])
            .await
            .map_err(|e| self.io(&e))?;
        self.lock = None;
        folded.map(|()| true)
    }

    async fn heartbeat(&mut self, id: &str) -> Result<(), StateError> {
        let mine = match self.lock.clone() {
            Some((h, etag)) if h.id == id => Some((h, etag)),
            _ => self.read_lock().await?.filter(|(h, _)| h.id == id),
        };
        let Some((mut info, etag)) = mine else {
            return Err(self.lost().await);
        };
        info.heartbeat_at = now();
        let body = serde_json::to_vec(&info)
            .map_err(|e| StateError::Db(format!("{}: {e}", self.location())))?;
        match self
            .objects
            .put(&self.lock_key(), body, PutIf::Matches(&etag))
            .await
        {
            Ok(etag) => {
                self.lock = Some((info, etag));
                Ok(())
            }
            Err(ObjectError::Precondition { .. }) => Err(self.lost().await),
            Err(e) => Err(self.io(&e)),
        }
    }
}

impl<O: ObjectStore> RemoteState<O> {
    /// The error for a lock that is no longer this run's.
    async fn lost(&mut self) -> StateError {
        self.lock = None;
        StateError::LockLost {
            location: self.location(),
            holder: self.read_lock().await.ok().flatten().map(|(h, _)| h),
        }
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
