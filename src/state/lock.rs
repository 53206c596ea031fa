//! The state lock: only one writer at a time. The lock lives in the state store and records
//! its holder's host, user, PID, command, start time, a heartbeat and a lease. A second writer
//! stops at once and names the holder, or waits with `--lock-timeout` (with backoff). A lock
//! whose heartbeat is older than its lease (a CI runner that died), or left by a dead process on
//! this host, is taken over automatically with a notice, race free (`StateStore::take_over`);
//! any other is released by `force-unlock`.
//!
//! Waiting for the lock, and beating its heartbeat, happen on the runtime without blocking it:
//! `Held::hold` runs a command's work and the heartbeat side by side, then releases.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::state::{LockInfo, StateError, StateStore};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("the state is locked by {command:?} (user {user:?}, pid {pid} on {host}, since {since}, last heartbeat {beat}s ago; lock id {id}). Wait for it, pass --lock-timeout, or run `skyform force-unlock {id}` if it is gone", since = .started_at, beat = .heartbeat_age)]
    Held {
        id: String,
        host: String,
        pid: u32,
        user: String,
        command: String,
        started_at: String,
        heartbeat_age: i64,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process of this host is still running. Without /proc, assume it is.
fn alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    if !proc.is_dir() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// How long a lock lasts without a heartbeat, unless `--lock-lease` says otherwise.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_mins(1);

/// How long a waiting writer sleeps first between attempts; it doubles up to `RETRY_MAX`, so
/// that many runners waiting on one S3 lock do not poll it many times a second.
const RETRY: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A lock this process holds.
#[derive(Debug, Clone)]
#[must_use = "a held lock is released by `hold` or `release`"]
pub(crate) struct Held {
    pub(crate) id: String,
    /// The lease it was taken with: the heartbeat beats four times per lease, so that a beat
    /// or two lost to the network does not let the lock expire under a live run.
    pub(crate) lease: Duration,
}

impl Held {
    pub(crate) async fn release<S: StateStore>(&self, store: &mut S) {
        // Releasing is best effort: a lock left behind expires with its lease.
        let _ = store.unlock(&self.id).await;
    }

    /// Runs `work` under the lock, beating the heartbeat through `store` while it runs, and
    /// releases the lock when it is done, whatever it returned. (A release cannot wait in
    /// `Drop`, which is why the lock wraps the work instead of guarding a scope.)
    pub(crate) async fn hold<S: StateStore, T>(
        self,
        store: &mut S,
        work: impl Future<Output = T>,
    ) -> T {
        let every = (self.lease / 4).max(Duration::from_secs(1));
        self.hold_beating(store, every, work).await
    }

    async fn hold_beating<S: StateStore, T>(
        self,
        store: &mut S,
        every: Duration,
        work: impl Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // Beats missed while the thread was busy are not worth catching up on.
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lost = false;
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = beat.tick(), if !lost => {
                    // A missed beat only makes the lock look older to a waiting writer. A lock
                    // taken over is said once; the store fences this run's writes off.
                    if let Err(e @ StateError::LockLost { .. }) = store.heartbeat(&self.id).await {
                        eprintln!("Warning: {e}.");
                        lost = true;
                    }
                }
            }
        };
        self.release(store).await;
        out
    }
}

fn held_error(h: LockInfo) -> LockError {
    LockError::Held {
        started_at: format!("unix time {}", h.started_at),
        heartbeat_age: (now() - h.heartbeat_at).max(0),
        id: h.id,
        host: h.host,
        pid: h.pid,
        user: h.user,
        command: h.command,
    }
}

/// Why `holder`'s lock may be taken over, if it may: its lease ran out without a heartbeat, or
/// its process, on this host, is gone.
fn stale_reason(holder: &LockInfo, me: &LockInfo) -> Option<String> {
    let lease = if holder.lease == 0 {
        DEFAULT_LEASE.as_secs()
    } else {
        holder.lease
    };
    let age = now() - holder.heartbeat_at;
    if age > i64::try_from(lease).unwrap_or(i64::MAX) {
        return Some(format!(
            "its last heartbeat was {age}s ago, past its lease of {lease}s"
        ));
    }
    (holder.host == me.host && holder.pid != me.pid && !alive(holder.pid))
        .then(|| format!("pid {} is no longer running", holder.pid))
}

/// Takes the lock for `command`, recording `lease`, waiting up to `timeout` (with backoff)
/// while another live writer holds it.
pub(crate) async fn acquire<S: StateStore>(
    store: &mut S,
    command: &str,
    timeout: Option<Duration>,
    lease: Duration,
) -> Result<Held, LockError> {
    let lease = lease.max(Duration::from_secs(1));
    let me = LockInfo {
        id: crate::state::new_lineage(),
        host: hostname(),
        pid: std::process::id(),
        user: std::env::var("USER").unwrap_or_default(),
        command: command.to_string(),
        started_at: now(),
        heartbeat_at: now(),
        lease: lease.as_secs(),
    };
    let held = Held {
        id: me.id.clone(),
        lease,
    };
    let deadline = Instant::now() + timeout.unwrap_or_default();
    let mut wait = RETRY;
    loop {
        let Some(holder) = store.try_lock(&me).await? else {
            return Ok(held);
        };
        if let Some(why) = stale_reason(&holder, &me) {
            // Only that very holder's lock is replaced: another writer may have taken it over
            // (or renewed it) since it was read, and then it is simply held.
            if store.take_over(&me, &holder).await?.is_none() {
                eprintln!(
                    "Notice: released a stale lock held by {} ({why}), and took it.",
                    holder.describe()
                );
                return Ok(held);
            }
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(held_error(holder));
        }
        tokio::time::sleep(wait.min(left)).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_writer_is_refused_and_a_dead_holder_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        let held = acquire(&mut a, "apply", None, DEFAULT_LEASE).await.unwrap();
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        match acquire(&mut b, "apply", None, DEFAULT_LEASE).await {
            Err(LockError::Held { command, pid, .. }) => {
                assert_eq!(command, "apply");
                assert_eq!(pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
        held.release(&mut a).await;
        let again = acquire(&mut b, "plan", None, DEFAULT_LEASE).await.unwrap();
        again.release(&mut b).await;
        // A lock whose PID is not running on this host is taken over.
        let dead = LockInfo {
            id: "dead".into(),
            host: hostname(),
            pid: u32::MAX - 1,
            user: String::new(),
            command: "apply".into(),
            started_at: now(),
            heartbeat_at: now(),
            lease: 60,
        };
        assert_eq!(b.try_lock(&dead).await.unwrap(), None);
        let taken = acquire(&mut a, "apply", None, DEFAULT_LEASE).await.unwrap();
        taken.release(&mut a).await;
    }

    fn holder(id: &str) -> LockInfo {
        LockInfo {
            id: id.into(),
            host: hostname(),
            pid: std::process::id(),
            user: String::new(),
            command: "apply".into(),
            started_at: now(),
            heartbeat_at: now(),
            lease: 60,
        }
    }

    #[tokio::test]
    async fn a_waiting_writer_takes_the_lock_once_its_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        let held = acquire(&mut a, "apply", None, DEFAULT_LEASE).await.unwrap();
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        let release_soon = async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            held.release(&mut a).await;
        };
        let (waited, ()) = tokio::join!(
            acquire(&mut b, "plan", Some(Duration::from_secs(5)), DEFAULT_LEASE),
            release_soon
        );
        let taken = waited.unwrap();
        assert_ne!(taken.id, held.id);
        let mut c = crate::state::sqlite::SqliteState::new(path);
        assert!(matches!(
            c.try_lock(&holder("third")).await.unwrap(),
            Some(h) if h.id == taken.id
        ));
    }

    #[tokio::test]
    async fn a_held_lock_beats_while_its_work_runs_and_is_released_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        assert_eq!(a.try_lock(&holder("mine")).await.unwrap(), None);
        let mut b = crate::state::sqlite::SqliteState::new(path);
        let held = Held {
            id: "mine".into(),
            lease: DEFAULT_LEASE,
        };
        let seen = held
            .hold_beating(&mut a, Duration::from_millis(50), async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                b.try_lock(&holder("other")).await.unwrap()
            })
            .await;
        let seen = seen.expect("the lock is held while the work runs");
        assert_eq!(seen.id, "mine");
        assert!(seen.heartbeat_at > 0, "no heartbeat was written");
        // Released once the work is done: the next writer gets it.
        assert_eq!(b.try_lock(&holder("other")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_lock_from_another_host_is_taken_over_once_its_lease_ran_out_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        let mut runner = holder("runner");
        runner.host = "ci-runner-7".into();
        runner.heartbeat_at = now() - 30;
        assert_eq!(a.try_lock(&runner).await.unwrap(), None);
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        assert!(matches!(
            acquire(&mut b, "apply", None, DEFAULT_LEASE).await,
            Err(LockError::Held { id, .. }) if id == "runner"
        ));
        // Its heartbeat stops for longer than its lease: the lock is the next writer's.
        a.unlock("runner").await.unwrap();
        runner.heartbeat_at = now() - 61;
        assert_eq!(a.try_lock(&runner).await.unwrap(), None);
        let taken = acquire(&mut b, "apply", None, DEFAULT_LEASE).await.unwrap();
        assert!(matches!(
            a.try_lock(&holder("third")).await.unwrap(),
            Some(h) if h.id == taken.id && h.lease == 60
        ));
    }
}
