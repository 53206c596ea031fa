//! The state lock: only one writer at a time. The lock lives in the state store and records
//! its holder's host, PID, command, start time and a heartbeat. A second writer stops at once
//! and names the holder, or waits with `--lock-timeout`. A lock left by a dead process on this
//! host is released automatically, with a notice; any other is released by `force-unlock`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::state::{LockInfo, StateError, StateStore};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
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
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn hostname() -> String {
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

/// A lock this process holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
}

impl Held {
    pub fn release<S: StateStore>(&self, store: &mut S) {
        // Releasing is best effort: a lock left behind is released by its dead PID next time.
        let _ = store.unlock(&self.id);
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
pub fn acquire<S: StateStore>(
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
        let Some(holder) = store.try_lock(&me)? else {
            return Ok(Held { id: me.id });
        };
        if holder.host == me.host && holder.pid != me.pid && !alive(holder.pid) {
            eprintln!(
                "Notice: released a stale lock left by {:?} (pid {}, no longer running).",
                holder.command, holder.pid
            );
            store.unlock(&holder.id)?;
            continue;
        }
        if Instant::now() >= deadline {
            return Err(held_error(holder));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Takes the lock only if it is free now; `None` when someone holds it.
pub fn try_acquire<S: StateStore>(
    store: &mut S,
    command: &str,
) -> Result<Option<Held>, StateError> {
    match acquire(store, command, None) {
        Ok(h) => Ok(Some(h)),
        Err(LockError::Held { .. }) => Ok(None),
        Err(LockError::State(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_a_dead_holder_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = crate::state::sqlite::SqliteState::new(path.clone());
        let held = acquire(&mut a, "apply", None).unwrap();
        let mut b = crate::state::sqlite::SqliteState::new(path.clone());
        match acquire(&mut b, "apply", None) {
            Err(LockError::Held { command, pid, .. }) => {
                assert_eq!(command, "apply");
                assert_eq!(pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
        held.release(&mut a);
        let again = acquire(&mut b, "plan", None).unwrap();
        again.release(&mut b);
        // A lock whose PID is not running on this host is taken over.
        let dead = LockInfo {
            id: "dead".into(),
            host: hostname(),
            pid: u32::MAX - 1,
            command: "apply".into(),
            started_at: 0,
            heartbeat_at: 0,
        };
        assert_eq!(b.try_lock(&dead).unwrap(), None);
        let taken = acquire(&mut a, "apply", None).unwrap();
        taken.release(&mut a);
    }
}
