//! An object store with conditional writes: what the remote state needs of S3, and no more.
//!
//! `state::remote` keeps a state in such a store (a snapshot, a journal of small objects, and
//! a lock object); `aws::s3_objects` implements the trait over S3, and `MemoryObjects` in memory
//! so that the remote store's protocol is tested without a network, at every write.
//!
//! Conditional writes carry the whole concurrency story: `PutIf::Absent` is S3's
//! `If-None-Match: *` (create only), `PutIf::Matches` is `If-Match: <etag>` (replace only the
//! version that was read). A write whose condition fails is `ObjectError::Precondition`, never
//! a silent overwrite.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One stored object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) body: Vec<u8>,
    pub(crate) etag: String,
}

/// When a write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutIf<'a> {
    /// Whatever is there (S3's plain `PutObject`).
    Always,
    /// Only when no object has the key (`If-None-Match: *`).
    Absent,
    /// Only when the object is still the version with this etag (`If-Match`).
    Matches(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ObjectError {
    /// The write's condition did not hold: someone else wrote first.
    #[error("the object {key} changed since it was read (precondition failed)")]
    Precondition { key: String },
    /// Anything else: the network, permissions, a missing bucket. `message` says which.
    #[error("{message}")]
    Other { message: String },
}

/// What the remote state needs of an object store. Every method resolves once the store has
/// answered: a write is durable when its future resolves.
#[allow(async_fn_in_trait)]
pub(crate) trait ObjectStore {
    /// Where the objects live, for messages (`s3://bucket`).
    fn location(&self) -> String;
    /// The object, or `None` when there is none under `key`.
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError>;
    /// Writes `body` under `key` when `when` holds; returns the new etag.
    async fn put(&self, key: &str, body: Vec<u8>, when: PutIf<'_>) -> Result<String, ObjectError>;
    /// Every key that starts with `prefix`, in lexical order (all pages).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError>;
    /// Deletes these keys; a key already gone is not an error.
    async fn delete(&self, keys: &[String]) -> Result<(), ObjectError>;
}

/// Objects in memory, shared by clones (two clones are two processes seeing one bucket).
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryObjects {
    inner: Arc<Mutex<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    objects: BTreeMap<String, Object>,
    /// Counts writes (puts and deletes), for etags and for tests that stop at a given write.
    writes: usize,
    /// When set, writes from this number on fail as if the process had died before them.
    fail_from: Option<usize>,
    /// Counts reads (gets and lists), for tests of what a read costs.
    reads: usize,
}

impl MemoryObjects {
    /// How many writes (puts and deletes) were made so far.
    pub(crate) fn writes(&self) -> usize {
        self.lock().writes
    }

    /// How many reads (gets and lists) were made so far.
    pub(crate) fn reads(&self) -> usize {
        self.lock().reads
    }

    /// Makes every write from the `n`th on (counting from 0 over the store's life) fail, as a
    /// process killed just before it would leave things.
    pub(crate) fn fail_from(&self, n: Option<usize>) {
        self.lock().fail_from = n;
    }

    /// The keys held now.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding the lock is a test failure already; its data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Memory {
    fn write(&mut self, key: &str) -> Result<usize, ObjectError> {
        if self.fail_from.is_some_and(|n| self.writes >= n) {
            return Err(ObjectError::Other {
                message: format!("writing {key}: the test stopped writes here"),
            });
        }
        self.writes += 1;
        Ok(self.writes)
    }
}

impl ObjectStore for MemoryObjects {
    fn location(&self) -> String {
        "memory://".into()
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let mut m = self.lock();
        m.reads += 1;
        Ok(m.objects.get(key).cloned())
    }

    async fn put(&self, key: &str, body: Vec<u8>, when: PutIf<'_>) -> Result<String, ObjectError> {
        let mut m = self.lock();
        let current = m.objects.get(key).map(|o| o.etag.clone());
        let allowed = match when {
            PutIf::Always => true,
            PutIf::Absent => current.is_none(),
            PutIf::Matches(etag) => current.as_deref() == Some(etag),
        };
        if !allowed {
            return Err(ObjectError::Precondition { key: key.into() });
        }
        let n = m.write(key)?;
        let etag = format!("\"{n:016x}\"");
        m.objects.insert(
            key.into(),
            Object {
                body,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut m = self.lock();
        m.reads += 1;
        Ok(m.objects
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), ObjectError> {
        let mut m = self.lock();
        for key in keys {
            m.write(key)?;
            m.objects.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_refuse_what_changed_since_it_was_read() {
        let store = MemoryObjects::default();
        let first = store.put("k", b"1".to_vec(), PutIf::Absent).await.unwrap();
        assert!(matches!(
            store.put("k", b"2".to_vec(), PutIf::Absent).await,
            Err(ObjectError::Precondition { .. })
        ));
        let second = store
            .put("k", b"2".to_vec(), PutIf::Matches(&first))
            .await
            .unwrap();
        assert!(matches!(
            store.put("k", b"3".to_vec(), PutIf::Matches(&first)).await,
            Err(ObjectError::Precondition { .. })
        ));
        let now = store.get("k").await.unwrap().unwrap();
        assert_eq!((now.body, now.etag), (b"2".to_vec(), second));
        store.put("k.a", vec![], PutIf::Always).await.unwrap();
        store.put("l", vec![], PutIf::Always).await.unwrap();
        assert_eq!(store.list("k").await.unwrap(), ["k", "k.a"]);
        store.fail_from(Some(store.writes()));
        assert!(store.delete(&["k".into()]).await.is_err());
        assert_eq!(store.keys(), ["k", "k.a", "l"]);
    }
}
