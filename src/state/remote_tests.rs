//! Tests of the remote state's protocol over `MemoryObjects`: the fold of every write, the
//! conditional writes between two writers, compaction under a reader, the lease, and a kill at
//! every object write of an apply.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::engine::fake::FakeProvider;
use crate::engine::plan::PlanOptions;
use crate::engine::tests::{run, workspace};
use crate::state::lock::{acquire, LockError, DEFAULT_LEASE};
use crate::state::objects::{MemoryObjects, Object};
use crate::state::sqlite::tests::{intent, role};
use crate::state::MemoryState;

fn store(objects: &MemoryObjects) -> RemoteState<MemoryObjects> {
    RemoteState::new(objects.clone(), "env/prod/terraform.tfstate", DEFAULT_LEASE)
}

/// Whether `state` records the role `name`.
fn holds(state: &State, name: &str) -> bool {
    state
        .resources
        .contains_key(&Address::managed("aws_iam_role", name))
}

fn holder(id: &str, heartbeat_at: i64) -> LockInfo {
    LockInfo {
        id: id.into(),
        host: "ci-runner-7".into(),
        pid: 4242,
        user: "ci".into(),
        command: "apply".into(),
        started_at: heartbeat_at,
        heartbeat_at,
        lease: 60,
    }
}

/// Every kind of write, as the engine and the commands make them, to any store.
async fn every_write<S: StateStore>(s: &mut S) {
    s.set_lineage("l-1").await.unwrap();
    s.set_owner(&Owner {
        tenant: "123456789012".into(),
        principal: "arn:aws:iam::123456789012:user/ci".into(),
    })
    .await
    .unwrap();
    for name in ["a", "b", "c", "d"] {
        s.open_intent(&intent(name)).await.unwrap();
        s.put(&role(name)).await.unwrap();
        s.close_intent(&Address::managed("aws_iam_role", name))
            .await
            .unwrap();
    }
    let mut c = role("c");
    c.deps = vec![Address::managed("aws_iam_role", "a")];
    s.put(&c).await.unwrap();
    s.rename(
        &Address::managed("aws_iam_role", "a"),
        &Address::managed("aws_iam_role", "z"),
    )
    .await
    .unwrap();
    s.remove(&Address::managed("aws_iam_role", "b"))
        .await
        .unwrap();
    s.forget(&Address::managed("aws_iam_role", "d"))
        .await
        .unwrap();
    s.open_intent(&intent("e")).await.unwrap();
    let mut outputs = BTreeMap::new();
    outputs.insert(
        "arn".to_string(),
        OutputState {
            value: "arn:aws:iam::123456789012:role/z".into(),
            sensitive: false,
        },
    );
    s.set_outputs(&outputs).await.unwrap();
    let mut seen = BTreeMap::new();
    seen.insert(
        "aws_iam_role.z".to_string(),
        "2026-11-29T10:00:00Z".to_string(),
    );
    s.set_drift_seen(&seen).await.unwrap();
}

async fn expected() -> State {
    let mut memory = MemoryState::default();
    every_write(&mut memory).await;
    memory.0
}

#[tokio::test]
async fn every_kind_of_write_reads_back_the_same_before_and_after_compaction() {
    let objects = MemoryObjects::default();
    let mut writer = store(&objects);
    every_write(&mut writer).await;
    let want = expected().await;
    assert_eq!(
        want.intents.len(),
        1,
        "the open intent is part of the state"
    );
    assert_eq!(store(&objects).load().await.unwrap(), want);
    assert_eq!(
        store(&objects).load().await.unwrap().drift_seen,
        want.drift_seen,
        "drift_seen, outside State's serde, survives"
    );
    // Compaction (as at the lock's release) folds the journal away and keeps the state.
    store(&objects).compact().await.unwrap();
    assert_eq!(store(&objects).load().await.unwrap(), want);
    let journal: Vec<String> = objects
        .keys()
        .into_iter()
        .filter(|k| k.contains(".skyjournal/"))
        .collect();
    assert_eq!(
        journal,
        Vec::<String>::new(),
        "the folded journal is deleted"
    );
    assert!(
        !objects
            .keys()
            .contains(&"env/prod/terraform.tfstate".to_string()),
        "Terraform's own state object is never written"
    );
}

#[tokio::test]
async fn a_read_writes_nothing_and_an_empty_state_is_not_created_by_it() {
    let objects = MemoryObjects::default();
    let state = store(&objects).load().await.unwrap();
    assert_eq!(state, State::default());
    assert_eq!(objects.writes(), 0);
    assert!(objects.keys().is_empty());
}

#[tokio::test]
async fn a_create_costs_two_small_puts_intent_before_and_outcome_after() {
    let objects = MemoryObjects::default();
    let mut s = store(&objects);
    s.put(&role("first")).await.unwrap();
    for name in ["a", "b", "c"] {
        let before = objects.writes();
        s.open_intent(&intent(name)).await.unwrap();
        s.put(&role(name)).await.unwrap();
        s.close_intent(&Address::managed("aws_iam_role", name))
            .await
            .unwrap();
        assert_eq!(
            objects.writes() - before,
            2,
            "PUTs for the create of {name}"
        );
    }
    let entry = objects
        .keys()
        .into_iter()
        .rfind(|k| k.contains(".skyjournal/"))
        .unwrap();
    let size = objects_body(&objects, &entry).await.len();
    assert!(size < 1024, "a journal entry of a role is {size} bytes");
    // An update and a delete cost the same.
    let before = objects.writes();
    s.open_intent(&intent("a")).await.unwrap();
    s.remove(&Address::managed("aws_iam_role", "a"))
        .await
        .unwrap();
    s.close_intent(&Address::managed("aws_iam_role", "a"))
        .await
        .unwrap();
    assert_eq!(objects.writes() - before, 2);
}

#[tokio::test]
async fn a_writer_reads_its_own_state_again_and_settles_it_without_reading_the_journal_back() {
    let objects = MemoryObjects::default();
    let mut s = store(&objects);
    let mut lock = store(&objects);
    assert_eq!(lock.try_lock(&holder("me", now())).await.unwrap(), None);
    s.load().await.unwrap();
    for i in 0..40 {
        s.put(&role(&format!("r{i}"))).await.unwrap();
    }
    // Apply's outputs: the writer's own state, read again.
    let before = objects.reads();
    assert!(holds(&s.load().await.unwrap(), "r39"));
    assert!(
        objects.reads() - before <= 2,
        "a reread took {} reads",
        objects.reads() - before
    );
    // Settled by the writer, the journal leaves the lock's release nothing to read back.
    s.settle().await.unwrap();
    let before = objects.reads();
    assert!(lock.unlock("me").await.unwrap());
    assert!(
        objects.reads() - before <= 8,
        "the release took {} reads",
        objects.reads() - before
    );
    let state = store(&objects).load().await.unwrap();
    assert_eq!(state.resources.len(), 40);
    assert!(!objects.keys().iter().any(|k| k.contains(".skyjournal/")));
}

#[tokio::test]
async fn a_journal_past_its_bound_is_folded_by_its_writer_and_reads_the_same() {
    let objects = MemoryObjects::default();
    let mut s = store(&objects);
    let mut memory = MemoryState::default();
    let writes = usize::try_from(COMPACT_AFTER).unwrap() + 10;
    for i in 0..writes {
        let r = role(&format!("r{}", i % 7));
        assert_eq!(
            s.put(&r).await.unwrap(),
            memory.put(&r).await.unwrap(),
            "serial of write {i}"
        );
    }
    let journal = objects
        .keys()
        .iter()
        .filter(|k| k.contains(".skyjournal/"))
        .count();
    assert!(journal < 20, "{journal} journal objects left");
    let state = store(&objects).load().await.unwrap();
    assert_eq!(
        (state.serial, state.resources),
        (memory.0.serial, memory.0.resources)
    );
}

async fn objects_body(objects: &MemoryObjects, key: &str) -> Vec<u8> {
    objects.get(key).await.unwrap().unwrap().body
}

#[tokio::test]
async fn replace_writes_a_whole_state_and_fences_off_a_writer_of_the_old_one() {
    let objects = MemoryObjects::default();
    let mut old = store(&objects);
    old.put(&role("a")).await.unwrap();
    let want = expected().await;
    let mut migrate = store(&objects);
    assert_eq!(migrate.replace(&want).await.unwrap(), want.serial);
    assert_eq!(store(&objects).load().await.unwrap(), want);
    let err = old.put(&role("b")).await.unwrap_err();
    assert!(matches!(err, StateError::Changed { .. }), "{err}");
    assert_eq!(store(&objects).load().await.unwrap(), want, "nothing lost");
    // A replace of a state that does not exist yet creates it.
    let empty = MemoryObjects::default();
    store(&empty).replace(&want).await.unwrap();
    assert_eq!(store(&empty).load().await.unwrap(), want);
}

#[tokio::test]
async fn a_second_writer_is_refused_naming_the_holder_and_nothing_is_lost() {
    let objects = MemoryObjects::default();
    let mut a = store(&objects);
    a.put(&role("seed")).await.unwrap();
    let mut lock = store(&objects);
    assert_eq!(lock.try_lock(&holder("L-a", now())).await.unwrap(), None);
    let mut b = store(&objects);
    b.load().await.unwrap();
    a.put(&role("a")).await.unwrap();
    let err = b.put(&role("b")).await.unwrap_err();
    match &err {
        StateError::Changed {
            holder: Some(h), ..
        } => assert_eq!(h.id, "L-a"),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("changed since it was read"), "{text}");
    assert!(
        text.contains("ci-runner-7") && text.contains("L-a"),
        "{text}"
    );
    let state = store(&objects).load().await.unwrap();
    assert!(holds(&state, "a"));
    assert!(!holds(&state, "b"));
}

/// Objects whose first listing of a journal runs `race` first: a compaction by another writer
/// lands between a reader's GET of the snapshot and its LIST of the journal.
struct Racing {
    objects: MemoryObjects,
    race: RefCell<Option<RemoteState<MemoryObjects>>>,
    at_get: bool,
}

impl Racing {
    async fn maybe_race(&self) {
        let other = self.race.borrow_mut().take();
        if let Some(mut other) = other {
            other.compact().await.unwrap();
        }
    }
}

impl ObjectStore for Racing {
    fn location(&self) -> String {
        self.objects.location()
    }
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        if self.at_get && key.contains(".skyjournal/") {
            self.maybe_race().await;
        }
        self.objects.get(key).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, when: PutIf<'_>) -> Result<String, ObjectError> {
        self.objects.put(key, body, when).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        if !self.at_get && prefix.contains(".skyjournal/") {
            self.maybe_race().await;
        }
        self.objects.list(prefix).await
    }
    async fn delete(&self, keys: &[String]) -> Result<(), ObjectError> {
        self.objects.delete(keys).await
    }
}

#[tokio::test]
async fn a_reader_during_compaction_sees_a_consistent_state() {
    let want = expected().await;
    // Raced between the snapshot and the listing, and between the listing and an entry.
    for at_get in [false, true] {
        let objects = MemoryObjects::default();
        every_write(&mut store(&objects)).await;
        let racing = Racing {
            objects: objects.clone(),
            race: RefCell::new(Some(store(&objects))),
            at_get,
        };
        let mut reader = RemoteState::new(racing, "env/prod/terraform.tfstate", DEFAULT_LEASE);
        assert_eq!(reader.load().await.unwrap(), want, "raced at get: {at_get}");
        assert!(reader.objects.race.borrow().is_none(), "the race ran");
    }
    // A compaction stopped at each of its writes (the seal, the snapshot, the deletes)
    // leaves a state that reads the same, and that the next writer goes on from.
    let objects = MemoryObjects::default();
    every_write(&mut store(&objects)).await;
    let start = objects.writes();
    store(&objects).compact().await.unwrap();
    let writes = objects.writes() - start;
    assert!(writes >= 3, "seal, snapshot, delete: {writes}");
    for k in 0..writes {
        let objects = MemoryObjects::default();
        every_write(&mut store(&objects)).await;
        objects.fail_from(Some(objects.writes() + k));
        let _ = store(&objects).compact().await;
        objects.fail_from(None);
        assert_eq!(
            store(&objects).load().await.unwrap(),
            want,
            "stopped at {k}"
        );
        let mut next = store(&objects);
        next.put(&role("after")).await.unwrap();
        let state = store(&objects).load().await.unwrap();
        assert_eq!(state.serial, want.serial + 1, "stopped at {k}");
        assert!(holds(&state, "after"));
    }
}

#[tokio::test]
async fn a_lock_whose_heartbeat_stopped_is_taken_over_after_its_lease_and_its_holder_is_fenced() {
    let objects = MemoryObjects::default();
    // A runner took the lock, wrote, and stopped beating two minutes ago (lease 60 s).
    let mut dead_lock = store(&objects);
    let dead = holder("L-dead", now() - 120);
    assert_eq!(dead_lock.try_lock(&dead).await.unwrap(), None);
    let mut dead_work = store(&objects);
    dead_work.put(&role("a")).await.unwrap();
    // The next run takes it over with no force-unlock.
    let mut next = store(&objects);
    let held = acquire(&mut next, "apply", None, DEFAULT_LEASE)
        .await
        .unwrap();
    let lock: LockInfo =
        serde_json::from_slice(&objects_body(&objects, "env/prod/terraform.tfstate.skylock").await)
            .unwrap();
    assert_eq!(lock.id, held.id);
    assert_eq!(lock.lease, 60);
    // The old holder, still alive after all, can neither write nor renew.
    let err = dead_work.put(&role("b")).await.unwrap_err();
    assert!(
        matches!(&err, StateError::Changed { holder: Some(h), .. } if h.id == held.id),
        "{err}"
    );
    let err = dead_lock.heartbeat("L-dead").await.unwrap_err();
    assert!(matches!(err, StateError::LockLost { .. }), "{err}");
    let state = store(&objects).load().await.unwrap();
    assert!(holds(&state, "a"));
    assert!(!holds(&state, "b"));
    // Its release of a lock that is no longer its own leaves the lock alone.
    assert!(!dead_lock.unlock("L-dead").await.unwrap());
    assert!(matches!(
        store(&objects).try_lock(&holder("third", now())).await.unwrap(),
        Some(h) if h.id == held.id
    ));
    held.release(&mut next).await;
    assert!(!objects.keys().iter().any(|k| k.ends_with(".skylock")));
}

#[tokio::test]
async fn a_live_holders_lock_is_not_taken_over_and_its_heartbeat_renews_it() {
    let objects = MemoryObjects::default();
    let mut live = store(&objects);
    assert_eq!(
        live.try_lock(&holder("L-live", now() - 30)).await.unwrap(),
        None
    );
    live.heartbeat("L-live").await.unwrap();
    let mut next = store(&objects);
    match acquire(&mut next, "apply", None, DEFAULT_LEASE).await {
        Err(LockError::Held { id, user, host, .. }) => {
            assert_eq!(
                (id.as_str(), user.as_str(), host.as_str()),
                ("L-live", "ci", "ci-runner-7")
            );
        }
        other => panic!("{other:?}"),
    }
    // Waiting with backoff does not take it either while it beats.
    let waited = acquire(
        &mut next,
        "apply",
        Some(Duration::from_millis(600)),
        DEFAULT_LEASE,
    )
    .await;
    assert!(matches!(waited, Err(LockError::Held { .. })));
    let lock: LockInfo =
        serde_json::from_slice(&objects_body(&objects, "env/prod/terraform.tfstate.skylock").await)
            .unwrap();
    assert!(now() - lock.heartbeat_at < 5, "the heartbeat renewed it");
    // A lock renewed between its read and a takeover is not taken.
    let mut racer = store(&objects);
    let me = holder("L-racer", now());
    let seen = racer.try_lock(&me).await.unwrap().unwrap();
    live.heartbeat("L-live").await.unwrap();
    assert!(matches!(
        racer.take_over(&me, &seen).await.unwrap(),
        Some(h) if h.id == "L-live"
    ));
}

const CONFIG: &str = r#"
resource "aws_iam_role" "r" {
  name               = "r1"
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_policy" "p" {
  name   = "p1"
  policy = jsonencode({ Statement = [] })
}
resource "aws_iam_user" "u" {
  name = "u1"
}
resource "aws_iam_instance_profile" "ip" {
  name = "ip1"
  role = aws_iam_role.r.name
}
output "arn" { value = aws_iam_role.r.arn }
"#;

/// One run of `apply` as a fresh runner does it: take the lock (taking over one left by a
/// killed run, as the lease would), load, plan, apply, release. Errors stop it as a kill would.
async fn runner(objects: &MemoryObjects, p: &FakeProvider<crate::aws::AwsProvider>) {
    let ws = workspace(CONFIG, &[]);
    let mut lock = store(objects);
    let me = LockInfo {
        id: random_id(),
        ..holder("", now())
    };
    let taken = match lock.try_lock(&me).await {
        Ok(None) => true,
        Ok(Some(left)) => matches!(lock.take_over(&me, &left).await, Ok(None)),
        Err(_) => false,
    };
    if !taken {
        return;
    }
    let mut work = store(objects);
    if let Ok(state) = work.load().await {
        if let Ok(planned) = crate::engine::plan::plan(p, &ws, state, &PlanOptions::default()).await
        {
            let _ = crate::engine::apply::apply(
                p,
                &ws,
                &planned,
                &mut work,
                &crate::engine::apply::ApplyOptions::with_parallelism(4),
                &mut |_| {},
            )
            .await;
        }
    }
    let _ = lock.unlock(&me.id).await;
}

#[test]
fn a_kill_at_every_object_write_of_an_apply_converges_on_the_next_runner() {
    let full = MemoryObjects::default();
    let p = FakeProvider::<crate::aws::AwsProvider>::default();
    run(runner(&full, &p));
    let writes = full.writes();
    let reference = run(store(&full).load()).unwrap();
    assert_eq!(reference.resources.len(), 4);
    for k in 0..=writes {
        let objects = MemoryObjects::default();
        let p = FakeProvider::<crate::aws::AwsProvider>::default();
        objects.fail_from(Some(k));
        run(runner(&objects, &p));
        objects.fail_from(None);
        // A fresh runner: nothing local, only the objects.
        run(runner(&objects, &p));
        let state = run(store(&objects).load()).unwrap();
        let ids = |s: &State| -> Vec<(String, String)> {
            s.resources
                .values()
                .map(|r| (r.addr.type_name.clone(), r.id.clone()))
                .collect()
        };
        assert_eq!(ids(&state), ids(&reference), "killed at write {k}");
        assert!(state.intents.is_empty(), "killed at write {k}");
        let cloud: Vec<(String, String)> = p.cloud.borrow().objects.keys().cloned().collect();
        let mut held = ids(&state);
        held.sort();
        assert_eq!(cloud, held, "no duplicate, no orphan (killed at write {k})");
        assert_eq!(state.outputs, reference.outputs, "killed at write {k}");
        // Converged: a third run changes nothing.
        let writes = p.writes();
        run(runner(&objects, &p));
        assert_eq!(p.writes(), writes, "killed at write {k}");
    }
}
