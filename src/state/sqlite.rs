//! The local state store: SQLite at `.skyform/state.db` (directory 0700, file 0600), in WAL
//! mode so that a reader never sees a half-written state.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward; a database with a
//! newer version, or one that is not a skyform state at all, is refused and never overwritten.
//!
//! SQLite blocks (on the disk, and up to its busy timeout on another writer), so `SqliteState`
//! runs each call on tokio's blocking pool against one connection (`Db`, which does the work
//! synchronously) and resolves once the transaction is committed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use crate::lang::address::Address;
use crate::state::{
    new_lineage, Intent, LockInfo, OutputState, Owner, ResourceState, State, StateError, StateStore,
};

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 5;

const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE resources (
         address TEXT PRIMARY KEY,
         type TEXT NOT NULL,
         id TEXT NOT NULL,
         attributes TEXT NOT NULL,
         dependencies TEXT NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE outputs (name TEXT PRIMARY KEY, value TEXT NOT NULL, sensitive INTEGER NOT NULL);",
    // 1 -> 2: write-ahead intents and the lock.
    "CREATE TABLE intents (
         address TEXT PRIMARY KEY,
         op TEXT NOT NULL,
         token TEXT NOT NULL,
         attributes TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE lock (
         one INTEGER PRIMARY KEY CHECK (one = 1),
         lock_id TEXT NOT NULL,
         host TEXT NOT NULL,
         pid INTEGER NOT NULL,
         command TEXT NOT NULL,
         started_at INTEGER NOT NULL,
         heartbeat_at INTEGER NOT NULL
     );",
    // 2 -> 3: which attributes came from sensitive inputs; what a provider recorded before a
    // create to recognise its own object afterwards.
    "ALTER TABLE resources ADD COLUMN sensitive TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE intents ADD COLUMN evidence TEXT NOT NULL DEFAULT '{}';",
    // 3 -> 4: the provider configuration (alias, '' for the default) each object lives in,
    // so that it is read and deleted there after its block is gone.
    "ALTER TABLE resources ADD COLUMN provider TEXT NOT NULL DEFAULT '';
     ALTER TABLE intents ADD COLUMN provider TEXT NOT NULL DEFAULT '';",
    // 4 -> 5: the lock's holder login and lease, so that a lock whose heartbeat stopped is
    // taken over after its lease (a lock from an older build gets the default lease).
    "ALTER TABLE lock ADD COLUMN user TEXT NOT NULL DEFAULT '';
     ALTER TABLE lock ADD COLUMN lease INTEGER NOT NULL DEFAULT 60;",
];

/// The store at a path, for the async world: each call runs `Db` off the runtime's thread.
pub(crate) struct SqliteState {
    path: PathBuf,
    /// Shared with the blocking task of the call in flight. A call whose future is dropped
    /// still finishes its transaction on the pool; the next call waits for it here.
    db: Arc<Mutex<Db>>,
}

impl SqliteState {
    /// The store at `path`. Nothing is created until the first write, so `plan` in a fresh
    /// directory leaves no files behind.
    pub(crate) fn new(path: PathBuf) -> SqliteState {
        SqliteState {
            db: Arc::new(Mutex::new(Db::new(path.clone()))),
            path,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the blocking pool and waits for it without blocking the runtime. Outside
    /// a runtime there is nothing to block, and it runs here.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Db) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let db = Arc::clone(&self.db);
        let run = move || {
            // A panic inside a call poisons the lock; the connection itself stays consistent
            // (SQLite rolls back an uncommitted transaction), so it is used again.
            let mut db = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut db)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn_blocking(run).await.map_err(|e| {
                StateError::Db(format!(
                    "{}: the state call did not finish: {e}",
                    self.path.display()
                ))
            })?,
            Err(_) => run(),
        }
    }
}

/// One SQLite connection and what it knows of the database; every method blocks.
struct Db {
    path: PathBuf,
    conn: Option<Connection>,
    /// Whether `conn` was opened read-only (by a load): a write reopens it read-write.
    read_only: bool,
    /// The schema version of the open database; a read-only open leaves an older one as it
    /// is, and reads it as it is.
    version: i64,
}

impl Db {
    fn new(path: PathBuf) -> Db {
        Db {
            path,
            conn: None,
            read_only: false,
            version: SCHEMA_VERSION,
        }
    }

    fn db_err(&self, e: &rusqlite::Error) -> StateError {
        StateError::Db(format!("{}: {e}", self.path.display()))
    }

    fn foreign(&self, message: impl Into<String>) -> StateError {
        StateError::Foreign {
            path: self.path.display().to_string(),
            message: message.into(),
        }
    }

    /// Opens (and with `create`, makes) the database; `None` when it does not exist.
    ///
    /// Without `create` the database is opened read-only and never migrated: a command that
    /// only reads leaves an older state exactly as it found it. With `create`, it is opened
    /// read-write and migrated forward.
    ///
    /// The directory and the file are created private (0700 and 0600) by the calls that create
    /// them, so there is no moment at which another user could open them; a database that
    /// already exists is made private too, and a failure to do so is an error.
    fn conn(&mut self, create: bool) -> Result<Option<&mut Connection>, StateError> {
        if create && self.read_only {
            self.conn = None;
        }
        if self.conn.is_none() {
            let open_err = |path: &Path, e: &dyn std::fmt::Display| StateError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            };
            let existed = self.path.exists();
            if !existed {
                if !create {
                    return Ok(None);
                }
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(|e| open_err(dir, &e))?;
                }
                create_private_file(&self.path).map_err(|e| open_err(&self.path, &e))?;
            } else if create {
                make_private(&self.path, 0o600).map_err(|e| open_err(&self.path, &e))?;
            }
            let flags = if create {
                rusqlite::OpenFlags::default()
            } else {
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            };
            let conn = Connection::open_with_flags(&self.path, flags)
                .map_err(|e| open_err(&self.path, &e))?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(|e| self.db_err(&e))?;
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| self.foreign(e.to_string()))?;
            if version > SCHEMA_VERSION {
                return Err(StateError::TooNew {
                    path: self.path.display().to_string(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if version == 0 && existed {
                let tables: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .map_err(|e| self.foreign(e.to_string()))?;
                if tables > 0 {
                    return Err(self.foreign("it has tables but no skyform schema version"));
                }
            }
            self.read_only = !create;
            self.version = version;
            if create {
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(|e| self.db_err(&e))?;
                self.conn = Some(conn);
                self.migrate(version)?;
                self.version = SCHEMA_VERSION;
            } else {
                self.conn = Some(conn);
            }
        }
        Ok(self.conn.as_mut())
    }

    fn migrate(&mut self, from: i64) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(from).unwrap_or(0))
        {
            let tx = conn
                .transaction()
                .map_err(|e| StateError::Db(format!("{path}: {e}")))?;
            tx.execute_batch(sql)
                .map_err(|e| StateError::Db(format!("{path}: {e}")))?;
            if i == 0 {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('lineage', ?1), ('serial', '0')",
                    params![new_lineage()],
                )
                .map_err(|e| StateError::Db(format!("{path}: {e}")))?;
            }
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
            .map_err(|e| StateError::Db(format!("{path}: {e}")))?;
            tx.commit()
                .map_err(|e| StateError::Db(format!("{path}: {e}")))?;
        }
        Ok(())
    }

    /// Runs one write in its own transaction, without touching the serial (intents, the lock).
    fn bookkeeping<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let path = self.path.display().to_string();
        let err = |e: rusqlite::Error| StateError::Db(format!("{path}: {e}"));
        let Some(conn) = self.conn(true)? else {
            return Err(StateError::Db(format!("{path}: cannot create")));
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Runs one write in a transaction that also bumps the serial.
    fn write(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<u64, StateError> {
        let path = self.path.display().to_string();
        let err = |e: rusqlite::Error| StateError::Db(format!("{path}: {e}"));
        let Some(conn) = self.conn(true)? else {
            return Err(StateError::Db(format!("{path}: cannot create")));
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        f(&tx).map_err(err)?;
        let serial: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'serial'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let serial = serial.parse::<u64>().unwrap_or(0) + 1;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'serial'",
            params![serial.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(serial)
    }
}

/// Creates `dir` (and its parents) with mode 0700 from the start; an existing one is made
/// 0700 when it is not.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    make_private(dir, 0o700)
}

/// Creates the empty database file with mode 0600 (`O_CREAT | O_EXCL`), before SQLite opens
/// it. SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it first: it is made private below like any existing one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => make_private(path, 0o600),
        Err(e) => Err(e),
    }
}

/// Sets `mode` unless it is already set; a failure is an error, never ignored.
#[cfg(unix)]
fn make_private(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot make it private (mode {mode:o}): {e}"),
        )
    })
}

#[cfg(not(unix))]
fn make_private(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The store's calls, each one blocking until it is committed.
impl Db {
    fn load(&mut self) -> Result<State, StateError> {
        let path = self.path.display().to_string();
        // A writer's connection serves its loads too; otherwise a read-only one.
        let writable = self.conn.is_some() && !self.read_only;
        if self.conn(writable)?.is_none() {
            return Ok(State::default());
        }
        let version = self.version;
        let Some(conn) = self.conn.as_mut().filter(|_| version > 0) else {
            // An empty file: no state yet.
            return Ok(State::default());
        };
        // Columns and tables a read-only open of an older schema does not have yet.
        let sensitive_column = if version >= 3 { "sensitive" } else { "'[]'" };
        let evidence_column = if version >= 3 { "evidence" } else { "'{}'" };
        let provider_column = if version >= 4 { "provider" } else { "''" };
        let foreign = |e: rusqlite::Error| StateError::Foreign {
            path: path.clone(),
            message: e.to_string(),
        };
        let tx = conn.transaction().map_err(foreign)?;
        let lineage: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(foreign)?;
        let Some(lineage) = lineage else {
            return Err(StateError::Foreign {
                path,
                message: "it has no lineage".into(),
            });
        };
        let serial: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'serial'", [], |r| {
                r.get(0)
            })
            .map_err(foreign)?;
        let meta = |key: &str| -> Result<Option<String>, StateError> {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| StateError::Foreign {
                    path: path.clone(),
                    message: e.to_string(),
                })
        };
        let forgotten = meta("forgotten")?
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default();
        let owner = match (meta("owner_account")?, meta("owner_arn")?) {
            (Some(tenant), Some(principal)) => Some(Owner { tenant, principal }),
            _ => None,
        };
        // A map that does not parse is only lost bookkeeping: the next drift run starts it anew.
        let drift_seen = meta("drift_seen")?
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default();
        let mut state = State {
            lineage,
            serial: serial.parse().unwrap_or(0),
            owner,
            forgotten,
            drift_seen,
            ..State::default()
        };
        {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT address, id, attributes, dependencies, {sensitive_column}, {provider_column} FROM resources ORDER BY address"
                ))
                .map_err(foreign)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(foreign)?;
            for row in rows {
                let (address, id, attrs, deps, sensitive, provider) = row.map_err(foreign)?;
                let bad = |what: &str| StateError::Foreign {
                    path: path.clone(),
                    message: format!("resource {address:?} has invalid {what}"),
                };
                let addr: Address = address.parse().map_err(|_| bad("address"))?;
                let attrs = serde_json::from_str(&attrs).map_err(|_| bad("attributes"))?;
                let deps: Vec<String> =
                    serde_json::from_str(&deps).map_err(|_| bad("dependencies"))?;
                let deps = deps
                    .iter()
                    .map(|d| d.parse())
                    .collect::<Result<Vec<Address>, _>>()
                    .map_err(|_| bad("dependencies"))?;
                let sensitive =
                    serde_json::from_str(&sensitive).map_err(|_| bad("sensitive attributes"))?;
                state.resources.insert(
                    addr.clone(),
                    ResourceState {
                        addr,
                        id,
                        attrs,
                        deps,
                        sensitive,
                        provider,
                    },
                );
            }
            let mut stmt = tx
                .prepare("SELECT name, value, sensitive FROM outputs ORDER BY name")
                .map_err(foreign)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                })
                .map_err(foreign)?;
            for row in rows {
                let (name, value, sensitive) = row.map_err(foreign)?;
                let value = serde_json::from_str(&value).map_err(|_| StateError::Foreign {
                    path: path.clone(),
                    message: format!("output {name:?} is not JSON"),
                })?;
                state.outputs.insert(name, OutputState { value, sensitive });
            }
            if version < 2 {
                return Ok(state);
            }
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT address, op, token, attributes, {evidence_column}, {provider_column} FROM intents ORDER BY address"
                ))
                .map_err(foreign)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(foreign)?;
            for row in rows {
                let (address, op, token, attrs, evidence, provider) = row.map_err(foreign)?;
                let bad = || StateError::Foreign {
                    path: path.clone(),
                    message: format!("intent {address:?} is invalid"),
                };
                let addr: Address = address.parse().map_err(|_| bad())?;
                let attrs = serde_json::from_str(&attrs).map_err(|_| bad())?;
                let evidence = serde_json::from_str(&evidence).map_err(|_| bad())?;
                state.intents.insert(
                    addr.clone(),
                    Intent {
                        addr,
                        op,
                        token,
                        attrs,
                        evidence,
                        provider,
                    },
                );
            }
        }
        Ok(state)
    }

    fn put(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        self.put_with(r, false)
    }

    /// `put`, and with `close_intent` the deletion of the resource's intent in the same
    /// transaction: one commit (one fsync of the WAL) instead of two.
    fn put_with(&mut self, r: &ResourceState, close_intent: bool) -> Result<u64, StateError> {
        let attrs = serde_json::Value::Object(r.attrs.clone()).to_string();
        let deps =
            serde_json::to_string(&r.deps.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into());
        let sensitive = serde_json::to_string(&r.sensitive).unwrap_or_else(|_| "[]".into());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO resources (address, type, id, attributes, dependencies, updated_at, sensitive, provider) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(address) DO UPDATE SET type = ?2, id = ?3, attributes = ?4, dependencies = ?5, updated_at = ?6, sensitive = ?7, provider = ?8",
                params![r.addr.to_string(), r.addr.type_name, r.id, attrs, deps, now(), sensitive, r.provider],
            )?;
            if close_intent {
                tx.execute(
                    "DELETE FROM intents WHERE address = ?1",
                    params![r.addr.to_string()],
                )?;
            }
            Ok(())
        })
    }

    fn remove(&mut self, addr: &Address) -> Result<u64, StateError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM resources WHERE address = ?1",
                params![addr.to_string()],
            )
            .map(|_| ())
        })
    }

    fn set_outputs(&mut self, outputs: &BTreeMap<String, OutputState>) -> Result<u64, StateError> {
        self.write(|tx| {
            tx.execute("DELETE FROM outputs", [])?;
            for (name, o) in outputs {
                tx.execute(
                    "INSERT INTO outputs (name, value, sensitive) VALUES (?1, ?2, ?3)",
                    params![name, o.value.to_string(), o.sensitive],
                )?;
            }
            Ok(())
        })
    }

    fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError> {
        let (from_text, to_text) = (from.to_string(), to.to_string());
        self.write(|tx| {
            tx.execute(
                "UPDATE resources SET address = ?2 WHERE address = ?1",
                params![from_text, to_text],
            )?;
            let rows: Vec<(String, String)> = {
                let mut stmt = tx.prepare("SELECT address, dependencies FROM resources")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (address, deps) in rows {
                let list: Vec<String> = serde_json::from_str(&deps).unwrap_or_default();
                if list.contains(&from_text) {
                    let list: Vec<&String> = list
                        .iter()
                        .map(|d| if d == &from_text { &to_text } else { d })
                        .collect();
                    let text = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
                    tx.execute(
                        "UPDATE resources SET dependencies = ?2 WHERE address = ?1",
                        params![address, text],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn forget(&mut self, addr: &Address) -> Result<u64, StateError> {
        let address = addr.to_string();
        let type_name = addr.type_name.clone();
        self.write(|tx| {
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM resources WHERE address = ?1",
                    params![address],
                    |r| r.get(0),
                )
                .optional()?;
            let mut forgotten: std::collections::BTreeSet<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'forgotten'", [], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default();
            if let Some(id) = id {
                forgotten.insert(format!("{type_name}/{id}"));
            }
            let text = serde_json::to_string(&forgotten).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('forgotten', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![text],
            )?;
            tx.execute("DELETE FROM resources WHERE address = ?1", params![address])?;
            Ok(())
        })
    }

    fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError> {
        let attrs = serde_json::Value::Object(intent.attrs.clone()).to_string();
        let evidence = serde_json::Value::Object(intent.evidence.clone()).to_string();
        let (addr, op, token, provider) = (
            intent.addr.to_string(),
            intent.op.clone(),
            intent.token.clone(),
            intent.provider.clone(),
        );
        self.bookkeeping(|tx| {
            tx.execute(
                "INSERT INTO intents (address, op, token, attributes, created_at, evidence, provider) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(address) DO UPDATE SET op = ?2, token = ?3, attributes = ?4, created_at = ?5, evidence = ?6, provider = ?7",
                params![addr, op, token, attrs, now(), evidence, provider],
            )
            .map(|_| ())
        })
    }

    fn close_intent(&mut self, addr: &Address) -> Result<(), StateError> {
        let addr = addr.to_string();
        self.bookkeeping(|tx| {
            tx.execute("DELETE FROM intents WHERE address = ?1", params![addr])
                .map(|_| ())
        })
    }

    fn try_lock(&mut self, me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        let me = me.clone();
        self.bookkeeping(|tx| {
            if let Some(h) = lock_holder(tx)? {
                return Ok(Some(h));
            }
            insert_lock(tx, &me)?;
            Ok(None)
        })
    }

    fn take_over(
        &mut self,
        me: &LockInfo,
        stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError> {
        let (me, stale) = (me.clone(), stale.clone());
        // One transaction: the holder compared is the holder replaced.
        self.bookkeeping(|tx| match lock_holder(tx)? {
            Some(h) if h != stale => Ok(Some(h)),
            _ => {
                tx.execute("DELETE FROM lock", [])?;
                insert_lock(tx, &me)?;
                Ok(None)
            }
        })
    }

    fn unlock(&mut self, id: &str) -> Result<bool, StateError> {
        if !self.path.exists() {
            return Ok(false);
        }
        let id = id.to_string();
        self.bookkeeping(|tx| {
            tx.execute("DELETE FROM lock WHERE lock_id = ?1", params![id])
                .map(|n| n > 0)
        })
    }

    fn heartbeat(&mut self, id: &str) -> Result<(), StateError> {
        let id = id.to_string();
        self.bookkeeping(|tx| {
            tx.execute(
                "UPDATE lock SET heartbeat_at = ?2 WHERE lock_id = ?1",
                params![id, now()],
            )
            .map(|_| ())
        })
    }

    fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'lineage'",
                params![lineage],
            )
            .map(|_| ())
        })
    }

    fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('owner_account', ?1), ('owner_arn', ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![owner.tenant, owner.principal],
            )
            .map(|_| ())
        })
    }
}

/// Who holds the lock, if anyone.
fn lock_holder(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Option<LockInfo>> {
    tx.query_row(
        "SELECT lock_id, host, pid, user, command, started_at, heartbeat_at, lease FROM lock WHERE one = 1",
        [],
        |r| {
            Ok(LockInfo {
                id: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                user: r.get(3)?,
                command: r.get(4)?,
                started_at: r.get(5)?,
                heartbeat_at: r.get(6)?,
                lease: r.get(7)?,
            })
        },
    )
    .optional()
}

fn insert_lock(tx: &rusqlite::Transaction<'_>, me: &LockInfo) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO lock (one, lock_id, host, pid, user, command, started_at, heartbeat_at, lease) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![me.id, me.host, me.pid, me.user, me.command, me.started_at, me.heartbeat_at, me.lease],
    )
    .map(|_| ())
}

/// A value as the JSON text a column holds.
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Db {
    /// Writes `state` in place of whatever is here, in one transaction, keeping its serial.
    fn replace(&mut self, state: &State) -> Result<u64, StateError> {
        let state = state.clone();
        self.bookkeeping(|tx| {
            tx.execute("DELETE FROM resources", [])?;
            tx.execute("DELETE FROM outputs", [])?;
            tx.execute("DELETE FROM intents", [])?;
            tx.execute(
                "DELETE FROM meta WHERE key IN ('owner_account', 'owner_arn', 'forgotten', 'drift_seen')",
                [],
            )?;
            let mut meta = vec![
                ("lineage", state.lineage.clone()),
                ("serial", state.serial.to_string()),
                ("forgotten", json_text(&state.forgotten)),
            ];
            if let Some(o) = &state.owner {
                meta.push(("owner_account", o.tenant.clone()));
                meta.push(("owner_arn", o.principal.clone()));
            }
            if !state.drift_seen.is_empty() {
                meta.push(("drift_seen", json_text(&state.drift_seen)));
            }
            for (key, value) in meta {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?;
            }
            for r in state.resources.values() {
                let deps: Vec<String> = r.deps.iter().map(ToString::to_string).collect();
                tx.execute(
                    "INSERT INTO resources (address, type, id, attributes, dependencies, updated_at, sensitive, provider) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        r.addr.to_string(),
                        r.addr.type_name,
                        r.id,
                        serde_json::Value::Object(r.attrs.clone()).to_string(),
                        json_text(&deps),
                        now(),
                        json_text(&r.sensitive),
                        r.provider
                    ],
                )?;
            }
            for (name, o) in &state.outputs {
                tx.execute(
                    "INSERT INTO outputs (name, value, sensitive) VALUES (?1, ?2, ?3)",
                    params![name, o.value.to_string(), o.sensitive],
                )?;
            }
            for i in state.intents.values() {
                tx.execute(
                    "INSERT INTO intents (address, op, token, attributes, created_at, evidence, provider) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        i.addr.to_string(),
                        i.op,
                        i.token,
                        serde_json::Value::Object(i.attrs.clone()).to_string(),
                        now(),
                        serde_json::Value::Object(i.evidence.clone()).to_string(),
                        i.provider
                    ],
                )?;
            }
            Ok(state.serial)
        })
    }
}

impl Db {
    fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError> {
        let text = serde_json::to_string(seen).unwrap_or_else(|_| "{}".into());
        let empty = seen.is_empty();
        self.bookkeeping(|tx| {
            if empty {
                tx.execute("DELETE FROM meta WHERE key = 'drift_seen'", [])
            } else {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('drift_seen', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![text],
                )
            }
            .map(|_| ())
        })
    }
}

impl StateStore for SqliteState {
    async fn load(&mut self) -> Result<State, StateError> {
        self.blocking(Db::load).await
    }
    async fn replace(&mut self, state: &State) -> Result<u64, StateError> {
        let state = state.clone();
        self.blocking(move |db| db.replace(&state)).await
    }
    async fn put(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        let r = r.clone();
        self.blocking(move |db| db.put(&r)).await
    }
    async fn put_closing_intent(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        let r = r.clone();
        self.blocking(move |db| db.put_with(&r, true)).await
    }
    async fn remove(&mut self, addr: &Address) -> Result<u64, StateError> {
        let addr = addr.clone();
        self.blocking(move |db| db.remove(&addr)).await
    }
    async fn forget(&mut self, addr: &Address) -> Result<u64, StateError> {
        let addr = addr.clone();
        self.blocking(move |db| db.forget(&addr)).await
    }
    async fn set_outputs(
        &mut self,
        outputs: &BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError> {
        let outputs = outputs.clone();
        self.blocking(move |db| db.set_outputs(&outputs)).await
    }
    async fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError> {
        let owner = owner.clone();
        self.blocking(move |db| db.set_owner(&owner)).await
    }
    async fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError> {
        let lineage = lineage.to_string();
        self.blocking(move |db| db.set_lineage(&lineage)).await
    }
    async fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError> {
        let seen = seen.clone();
        self.blocking(move |db| db.set_drift_seen(&seen)).await
    }
    async fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |db| db.rename(&from, &to)).await
    }
    async fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError> {
        let intent = intent.clone();
        self.blocking(move |db| db.open_intent(&intent)).await
    }
    async fn close_intent(&mut self, addr: &Address) -> Result<(), StateError> {
        let addr = addr.clone();
        self.blocking(move |db| db.close_intent(&addr)).await
    }
    async fn try_lock(&mut self, me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        let me = me.clone();
        self.blocking(move |db| db.try_lock(&me)).await
    }
    async fn take_over(
        &mut self,
        me: &LockInfo,
        stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError> {
        let (me, stale) = (me.clone(), stale.clone());
        self.blocking(move |db| db.take_over(&me, &stale)).await
    }
    async fn unlock(&mut self, id: &str) -> Result<bool, StateError> {
        let id = id.to_string();
        self.blocking(move |db| db.unlock(&id)).await
    }
    async fn heartbeat(&mut self, id: &str) -> Result<(), StateError> {
        let id = id.to_string();
        self.blocking(move |db| db.heartbeat(&id)).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A role as recorded, named `name`.
    pub(crate) fn role(name: &str) -> ResourceState {
        let mut attrs = crate::state::Attrs::new();
        attrs.insert("name".into(), name.into());
        ResourceState {
            addr: Address::managed("aws_iam_role", name),
            id: name.into(),
            attrs,
            deps: vec![],
            sensitive: std::collections::BTreeSet::new(),
            provider: String::new(),
        }
    }

    /// The addresses a map of the state holds, as text.
    fn addresses<V>(map: &BTreeMap<Address, V>) -> Vec<String> {
        map.keys().map(ToString::to_string).collect()
    }

    /// An open create intent of the role `name`.
    pub(crate) fn intent(name: &str) -> Intent {
        Intent {
            addr: Address::managed("aws_iam_role", name),
            op: "create".into(),
            token: "t".into(),
            attrs: crate::state::Attrs::new(),
            evidence: crate::state::Attrs::new(),
            provider: String::new(),
        }
    }

    #[tokio::test]
    async fn recording_a_made_resource_closes_its_intent_in_the_same_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = SqliteState::new(path.clone());
        for name in ["a", "b"] {
            s.open_intent(&intent(name)).await.unwrap();
        }
        // One serial for the write, and only its own intent closed.
        assert_eq!(s.put_closing_intent(&role("a")).await.unwrap(), 1);
        let state = SqliteState::new(path).load().await.unwrap();
        assert_eq!(state.serial, 1);
        assert_eq!(addresses(&state.resources), ["aws_iam_role.a"]);
        assert_eq!(addresses(&state.intents), ["aws_iam_role.b"]);
    }

    #[tokio::test]
    async fn writes_are_durable_and_bump_the_serial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".skyform/state.db");
        let mut s = SqliteState::new(path.clone());
        assert_eq!(s.load().await.unwrap().resources.len(), 0);
        assert!(!path.exists(), "loading must not create the database");
        assert_eq!(s.put(&role("a")).await.unwrap(), 1);
        assert_eq!(s.put(&role("b")).await.unwrap(), 2);
        assert_eq!(
            s.remove(&Address::managed("aws_iam_role", "a"))
                .await
                .unwrap(),
            3
        );
        let mut again = SqliteState::new(path.clone());
        let state = again.load().await.unwrap();
        assert_eq!(state.serial, 3);
        assert_eq!(addresses(&state.resources), ["aws_iam_role.b"]);
        assert!(!state.lineage.is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(path.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
        }
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"this is not sqlite at all, just some bytes......").unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = SqliteState::new(path.clone()).load().await.unwrap_err();
        assert!(
            matches!(err, StateError::Foreign { .. } | StateError::Db(_)),
            "{err}"
        );
        assert!(SqliteState::new(path.clone())
            .put(&role("a"))
            .await
            .is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// A state database at schema `version`, holding what `rows` (SQL) inserts.
    fn old_state(version: usize, rows: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(rows).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        (dir, path)
    }

    fn version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_version_2_state_migrates_to_the_current_version_keeping_its_resources_and_intents() {
        let (_dir, path) = old_state(
            2,
            "INSERT INTO meta VALUES ('lineage', 'l-1'), ('serial', '7');
             INSERT INTO resources VALUES ('aws_iam_role.r', 'aws_iam_role', 'r', '{\"name\":\"r\"}', '[]', 0);
             INSERT INTO intents VALUES ('aws_iam_user.u', 'create', 'l-1', '{\"name\":\"u\"}', 0);",
        );
        // A read leaves the old schema as it is, and reads it as it is.
        let mut s = SqliteState::new(path.clone());
        let read = s.load().await.unwrap();
        assert_eq!(read.serial, 7);
        assert_eq!(read.intents.len(), 1);
        assert_eq!(version(&path), 2, "a load must not migrate");
        // The first write migrates.
        s.put(&role("b")).await.unwrap();
        assert_eq!(version(&path), SCHEMA_VERSION);
        let state = SqliteState::new(path).load().await.unwrap();
        assert_eq!((state.lineage.as_str(), state.serial), ("l-1", 8));
        let r = &state.resources[&Address::managed("aws_iam_role", "r")];
        assert!(r.sensitive.is_empty());
        let intent = &state.intents[&Address::managed("aws_iam_user", "u")];
        assert!(intent.evidence.is_empty());
        assert_eq!(intent.attrs["name"], "u");
    }

    #[tokio::test]
    async fn a_version_3_state_migrates_with_every_object_in_the_default_provider() {
        let (_dir, path) = old_state(
            3,
            "INSERT INTO meta VALUES ('lineage', 'l-1'), ('serial', '3');
             INSERT INTO resources VALUES ('aws_vpc.v', 'aws_vpc', 'vpc-1', '{}', '[]', 0, '[]');
             INSERT INTO intents VALUES ('aws_vpc.w', 'create', 'l-1', '{}', 0, '{}');",
        );
        let mut s = SqliteState::new(path.clone());
        let read = s.load().await.unwrap();
        assert_eq!(
            read.resources[&Address::managed("aws_vpc", "v")].provider,
            ""
        );
        assert_eq!(version(&path), 3, "a load must not migrate");
        // The first write migrates, and what it records keeps its provider configuration.
        let west = ResourceState {
            provider: "west".into(),
            ..role("w")
        };
        s.put(&west).await.unwrap();
        s.open_intent(&Intent {
            addr: Address::managed("aws_iam_user", "u"),
            op: "create".into(),
            token: "l-1".into(),
            attrs: crate::state::Attrs::new(),
            evidence: crate::state::Attrs::new(),
            provider: "west".into(),
        })
        .await
        .unwrap();
        assert_eq!(version(&path), SCHEMA_VERSION);
        let state = SqliteState::new(path).load().await.unwrap();
        assert_eq!(
            state.resources[&Address::managed("aws_vpc", "v")].provider,
            ""
        );
        assert_eq!(state.resources[&west.addr], west);
        assert_eq!(
            state.intents[&Address::managed("aws_vpc", "w")].provider,
            ""
        );
        assert_eq!(
            state.intents[&Address::managed("aws_iam_user", "u")].provider,
            "west"
        );
    }

    #[tokio::test]
    async fn a_write_waiting_for_another_writer_leaves_the_runtime_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = SqliteState::new(path.clone());
        s.put(&role("a")).await.unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let b = role("b");
        let write = s.put(&b);
        tokio::pin!(write);
        // The write waits (up to the busy timeout) for `other`; on this one-thread runtime a
        // timer fires meanwhile only if that wait happens off the runtime's thread.
        let finished_first = tokio::select! {
            r = &mut write => Some(r),
            () = tokio::time::sleep(std::time::Duration::from_millis(300)) => None,
        };
        assert!(finished_first.is_none(), "{finished_first:?}");
        other.execute_batch("COMMIT").unwrap();
        assert_eq!(write.await.unwrap(), 2);
        let state = SqliteState::new(path).load().await.unwrap();
        assert_eq!(state.resources.len(), 2);
    }

    #[tokio::test]
    async fn a_newer_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteState::new(path).load().await.unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn replace_writes_a_whole_state_in_place_of_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = SqliteState::new(path.clone());
        s.put(&role("old")).await.unwrap();
        s.open_intent(&intent("stale")).await.unwrap();
        let mut want = State {
            lineage: "l-migrated".into(),
            serial: 41,
            owner: Some(Owner {
                tenant: "123456789012".into(),
                principal: "arn:aws:iam::123456789012:user/ci".into(),
            }),
            ..State::default()
        };
        want.resources
            .insert(Address::managed("aws_iam_role", "a"), role("a"));
        want.outputs.insert(
            "arn".into(),
            OutputState {
                value: "arn:a".into(),
                sensitive: true,
            },
        );
        want.intents.insert(
            Address::managed("aws_iam_user", "u"),
            Intent {
                addr: Address::managed("aws_iam_user", "u"),
                op: "create".into(),
                token: "l-migrated".into(),
                attrs: crate::state::Attrs::new(),
                evidence: crate::state::Attrs::new(),
                provider: "west".into(),
            },
        );
        want.forgotten.insert("aws_iam_role/handed-off".into());
        want.drift_seen
            .insert("aws_iam_role.a".into(), "2026-11-29T10:00:00Z".into());
        assert_eq!(s.replace(&want).await.unwrap(), 41);
        assert_eq!(SqliteState::new(path.clone()).load().await.unwrap(), want);
        // The serial goes on from the replaced state.
        assert_eq!(s.put(&role("b")).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_version_4_lock_migrates_with_the_default_lease_and_can_be_taken_over() {
        let (_dir, path) = old_state(
            4,
            "INSERT INTO meta VALUES ('lineage', 'l-1'), ('serial', '3');
             INSERT INTO lock VALUES (1, 'L-old', 'ci-runner-7', 4242, 'apply', 0, 0);",
        );
        let mut s = SqliteState::new(path.clone());
        let me = LockInfo {
            id: "L-new".into(),
            host: "here".into(),
            pid: 1,
            user: "ann".into(),
            command: "apply".into(),
            started_at: now(),
            heartbeat_at: now(),
            lease: 120,
        };
        let old = s
            .try_lock(&me)
            .await
            .unwrap()
            .expect("the old lock is held");
        assert_eq!(version(&path), SCHEMA_VERSION);
        assert_eq!(
            (old.id.as_str(), old.user.as_str(), old.lease),
            ("L-old", "", 60)
        );
        // A takeover of a holder that is no longer the one read is refused.
        let mut renewed = old.clone();
        renewed.heartbeat_at = 1;
        assert_eq!(s.take_over(&me, &renewed).await.unwrap(), Some(old.clone()));
        assert_eq!(s.take_over(&me, &old).await.unwrap(), None);
        let mut other = me.clone();
        other.id = "L-third".into();
        assert_eq!(s.try_lock(&other).await.unwrap(), Some(me));
    }
}
