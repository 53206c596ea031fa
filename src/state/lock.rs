//! The state lock: only one writer at a time. The lock lives in the state store and records
//! its holder's host, PID, command, start time and a heartbeat. A second writer stops at once
//! and names the holder, or waits with `--lock-timeout`. A lock left by a dead process on this
//! host is released automatically, with a notice; any other is released by `force-unlock`.
//!
//! Waiting for the lock, and beating its heartbeat, happen on the runtime without blocking it:
//! `Held::hold` runs a command's work and the heartbeat side by side, then releases.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::state::{LockInfo, StateError, StateStore};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("the state is locked by {command:?} (pid {pid} on {host}, since {since}, last heartbeat {beat}s ago; lock id {id}). Wait for it, pass --lock-timeout, or run `skyform force-unlock {id}` if it is gone", since = .started_at, beat = .heartbeat_age)]
    Held {
        id: String,
        host: String,
        pid: u32,
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

/// How often a holder refreshes its heartbeat, for a waiting writer to see it is alive.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// How long a waiting writer sleeps between attempts.
const RETRY: Duration = Duration::from_millis(500);

/// A lock this process holds.
#[derive(Debug, Clone)]
#[must_use = "a held lock is released by `hold` or `release`"]
pub(crate) struct Held {
    pub(crate) id: String,
}

impl Held {
    pub(crate) async fn release<S: StateStore>(&self, store: &mut S) {
        // Releasing is best effort: a lock left behind is released by its dead PID next time.
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
        self.hold_beating(store, HEARTBEAT, work).await
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
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = beat.tick() => {
                    // A missed beat only makes the lock look older to a waiting writer.
                    let _ = store.heartbeat(&self.id).await;
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
        command: h.command,
    }
}

/// Takes the lock for `command`, waiting up to `timeout` while another live writer holds it.
pub(crate) async fn acquire<S: StateStore>(
    store: &mut S,
    command: &str,
    timeout: Option<Duration>,
) -> Result<Held, LockError> {
    let me = LockInfo {
        id: crate::state::new_lineage(),
        host: hostname(),
        pid: std::process::id(),
        command: command.to_string(),
        started_at: now(),
        heartbeat_at: now(),
    };
    let deadline = Instant::now() + timeout.unwrap_or_default();
    loop {
        let Some(holder) = store.try_lock(&me).await? else {
            return Ok(Held { id: me.id });
        };
        if holder.host == me.host && holder.pid != me.pid && !alive(holder.pid) {
            eprintln!(
                "Notice: released a stale lock left by {:?} (pid {}, no longer running).",
                holder.command, holder.pid
            );
            store.unlock(&holder.id).await?;
            continue;
        }
        if Instant::now() >= deadline {
            return Err(held_error(holder));
        }
        tokio::time::sleep(RETRY).await;
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
        let held = acquire(&mut a, "apply", None).await.unwrap();
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        match acquire(&mut b, "apply", None).await {
            Err(LockError::Held { command, pid, .. }) => {
                assert_eq!(command, "apply");
                assert_eq!(pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
        held.release(&mut a).await;
        let again = acquire(&mut b, "plan", None).await.unwrap();
        again.release(&mut b).await;
        // A lock whose PID is not running on this host is taken over.
        let dead = LockInfo {
            id: "dead".into(),
            host: hostname(),
            pid: u32::MAX - 1,
            command: "apply".into(),
            started_at: 0,
            heartbeat_at: 0,
        };
        assert_eq!(b.try_lock(&dead).await.unwrap(), None);
        let taken = acquire(&mut a, "apply", None).await.unwrap();
        taken.release(&mut a).await;
    }

    fn holder(id: &str) -> LockInfo {
        LockInfo {
            id: id.into(),
            host: hostname(),
            pid: std::process::id(),
            command: "apply".into(),
            started_at: 0,
            heartbeat_at: 0,
        }
    }

    #[tokio::test]
    async fn a_waiting_writer_takes_the_lock_once_its_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        let held = acquire(&mut a, "apply", None).await.unwrap();
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        let release_soon = async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            held.release(&mut a).await;
        };
        let (waited, ()) = tokio::join!(
            acquire(&mut b, "plan", Some(Duration::from_secs(5))),
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
        let held = Held { id: "mine".into() };
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
}
