//! The configured state backend and workspace: which store every command opens (`Store`, the
//! local SQLite state or the remote state on S3), where each workspace's state lives
//! (Terraform's layout), and which workspace is selected (`.skyform/environment`, overridden
//! by `SKYFORM_WORKSPACE` or `TF_WORKSPACE`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::aws::s3_objects::S3Objects;
use crate::error::{ConfigError, Error};
use crate::lang::address::Address;
use crate::lang::terraform::Backend;
use crate::state::remote::RemoteState;
use crate::state::sqlite::SqliteState;
use crate::state::{
    Intent, LockInfo, OutputState, Owner, ResourceState, State, StateError, StateStore,
};

/// The default workspace's name.
pub(crate) const DEFAULT_WORKSPACE: &str = crate::lang::eval::WORKSPACE;

/// The configured backend, opened for one workspace.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub(crate) backend: Backend,
    pub(crate) workspace: String,
    /// The bucket's objects, one client for the whole command (S3 only).
    pub(crate) objects: Option<S3Objects>,
    /// How long a lock of the remote state lasts without a heartbeat.
    pub(crate) lease: Duration,
}

impl Selection {
    /// Reads the backend block (only it) of the configuration in `dir`, and the selected
    /// workspace.
    pub(crate) fn read(dir: &Path, lease: Duration) -> Result<Selection, Error> {
        let (backend, diags, sources) = crate::lang::config::read_backend(dir)?;
        if diags.has_errors() {
            return Err(ConfigError::new(sources, diags).into());
        }
        Ok(Selection::of(backend, current_workspace(dir)?, lease))
    }

    pub(crate) fn of(backend: Backend, workspace: String, lease: Duration) -> Selection {
        let objects = match &backend {
            Backend::S3(s3) => Some(S3Objects::new(s3.clone())),
            Backend::Local => None,
        };
        Selection {
            backend,
            workspace,
            objects,
            lease,
        }
    }

    /// The store of the selected workspace.
    pub(crate) fn store(&self, dir: &Path) -> Store {
        self.store_of(dir, &self.workspace)
    }

    /// The store of `workspace` in this backend.
    pub(crate) fn store_of(&self, dir: &Path, workspace: &str) -> Store {
        match (&self.backend, &self.objects) {
            (Backend::S3(s3), Some(objects)) => Store::S3(Box::new(RemoteState::new(
                objects.clone(),
                s3.key_for(workspace),
                self.lease,
            ))),
            _ => Store::Local(SqliteState::new(local_path(dir, workspace))),
        }
    }

    /// Where the selected workspace's Terraform state object is, for messages
    /// (`s3://bucket/key`); the local backend has none.
    pub(crate) fn describe_key(&self) -> String {
        match &self.backend {
            Backend::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.key_for(&self.workspace)),
            Backend::Local => "the local backend".into(),
        }
    }

    /// `Using the S3 backend at s3://bucket/key (workspace default).`
    pub(crate) fn describe(&self, dir: &Path) -> String {
        match &self.backend {
            Backend::S3(_) => format!(
                "Using the S3 backend at {} (workspace {}).",
                self.describe_key(),
                self.workspace
            ),
            Backend::Local => format!(
                "Using the local backend at {} (workspace {}).",
                local_path(dir, &self.workspace).display(),
                self.workspace
            ),
        }
    }
}

/// Where the local backend keeps `workspace`'s state: the default at `.skyform/state.db`,
/// others at `.skyform/workspaces/<name>/state.db` (as Terraform's `terraform.tfstate.d`).
pub(crate) fn local_path(dir: &Path, workspace: &str) -> PathBuf {
    let root = dir.join(".skyform");
    if workspace == DEFAULT_WORKSPACE {
        root.join("state.db")
    } else {
        root.join("workspaces").join(workspace).join("state.db")
    }
}

/// The file that records the selected workspace (Terraform's `.terraform/environment`).
pub(crate) fn environment_file(dir: &Path) -> PathBuf {
    dir.join(".skyform").join("environment")
}

/// The selected workspace: `SKYFORM_WORKSPACE`, else `TF_WORKSPACE`, else the one recorded
/// by `workspace select`, else `default`.
pub(crate) fn current_workspace(dir: &Path) -> Result<String, Error> {
    for var in ["SKYFORM_WORKSPACE", "TF_WORKSPACE"] {
        if let Some(name) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            check_name(&name).map_err(|e| Error::Usage(format!("{var}: {e}")))?;
            return Ok(name);
        }
    }
    let file = environment_file(dir);
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => {
            let name = text.trim().to_string();
            check_name(&name).map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
            Ok(name)
        }
        Ok(_) => Ok(DEFAULT_WORKSPACE.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_WORKSPACE.into()),
        Err(e) => Err(e.into()),
    }
}

/// A workspace name is one path segment of a key and of a directory: letters, digits, `-`,
/// `_` and `.`, not `.` or `..` (Terraform refuses what a URL path would escape).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 90
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid workspace name (letters, digits, '-', '_' and '.')"
        ))
    }
}

/// The Terraform state the S3 backend holds for the selected workspace: the object at `key`
/// itself (Terraform's; skyform's own objects are `<key>.sky*`), for `state import-terraform
/// --from-backend`. Only read.
pub(crate) async fn terraform_state(selection: &Selection) -> Result<Vec<u8>, Error> {
    use crate::state::objects::ObjectStore as _;
    let (Backend::S3(s3), Some(objects)) = (&selection.backend, &selection.objects) else {
        return Err(Error::Usage(
            "--from-backend reads the Terraform state of the backend \"s3\" block, and there is none; give the state file instead".into(),
        ));
    };
    let key = s3.key_for(&selection.workspace);
    let place = selection.describe_key();
    match objects.get(&key).await {
        Ok(Some(object)) => Ok(object.body),
        Ok(None) => Err(crate::error::TerraformImportError::Read {
            path: place,
            message: "there is no object there (Terraform writes its state at the backend's key)"
                .into(),
        }
        .into()),
        Err(e) => Err(crate::error::TerraformImportError::Read {
            path: place,
            message: e.to_string(),
        }
        .into()),
    }
}

/// Whether a loaded state holds nothing: never written, or written with nothing in it.
pub(crate) fn is_empty(state: &State) -> bool {
    state.lineage.is_empty()
        || (state.serial == 0 && state.resources.is_empty() && state.intents.is_empty())
}

/// The state store a command opens: the local SQLite state or the remote state on S3.
pub(crate) enum Store {
    Local(SqliteState),
    S3(Box<RemoteState<S3Objects>>),
}

impl Store {
    /// Where the state lives, for messages.
    pub(crate) fn location(&self) -> String {
        match self {
            Store::Local(s) => s.path().display().to_string(),
            Store::S3(s) => s.location(),
        }
    }

    /// The state, or `None` when there is none yet; reads only.
    pub(crate) async fn load_existing(&mut self) -> Result<Option<State>, StateError> {
        if let Store::Local(s) = self {
            if !s.path().exists() {
                return Ok(None);
            }
        }
        let state = self.load().await?;
        Ok((!is_empty(&state)).then_some(state))
    }
}

/// Forwards each `StateStore` call to the store inside. The remote store's futures are large
/// (a read folds a journal); boxed, they stay off the stack of every command's future, at the
/// cost of an allocation per call next to a network round trip.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Local($s) => $call.await,
            Store::S3($s) => Box::pin($call).await,
        }
    };
}

impl StateStore for Store {
    async fn load(&mut self) -> Result<State, StateError> {
        delegate!(self, s => s.load())
    }
    async fn replace(&mut self, state: &State) -> Result<u64, StateError> {
        delegate!(self, s => s.replace(state))
    }
    async fn put(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        delegate!(self, s => s.put(r))
    }
    async fn remove(&mut self, addr: &Address) -> Result<u64, StateError> {
        delegate!(self, s => s.remove(addr))
    }
    async fn forget(&mut self, addr: &Address) -> Result<u64, StateError> {
        delegate!(self, s => s.forget(addr))
    }
    async fn set_outputs(
        &mut self,
        outputs: &BTreeMap<String, OutputState>,
    ) -> Result<u64, StateError> {
        delegate!(self, s => s.set_outputs(outputs))
    }
    async fn set_owner(&mut self, owner: &Owner) -> Result<u64, StateError> {
        delegate!(self, s => s.set_owner(owner))
    }
    async fn set_lineage(&mut self, lineage: &str) -> Result<u64, StateError> {
        delegate!(self, s => s.set_lineage(lineage))
    }
    async fn rename(&mut self, from: &Address, to: &Address) -> Result<u64, StateError> {
        delegate!(self, s => s.rename(from, to))
    }
    async fn open_intent(&mut self, intent: &Intent) -> Result<(), StateError> {
        delegate!(self, s => s.open_intent(intent))
    }
    async fn close_intent(&mut self, addr: &Address) -> Result<(), StateError> {
        delegate!(self, s => s.close_intent(addr))
    }
    async fn put_closing_intent(&mut self, r: &ResourceState) -> Result<u64, StateError> {
        delegate!(self, s => s.put_closing_intent(r))
    }
    async fn settle(&mut self) -> Result<(), StateError> {
        delegate!(self, s => s.settle())
    }
    async fn try_lock(&mut self, me: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        delegate!(self, s => s.try_lock(me))
    }
    async fn take_over(
        &mut self,
        me: &LockInfo,
        stale: &LockInfo,
    ) -> Result<Option<LockInfo>, StateError> {
        delegate!(self, s => s.take_over(me, stale))
    }
    async fn unlock(&mut self, id: &str) -> Result<bool, StateError> {
        delegate!(self, s => s.unlock(id))
    }
    async fn heartbeat(&mut self, id: &str) -> Result<(), StateError> {
        delegate!(self, s => s.heartbeat(id))
    }
    async fn set_drift_seen(&mut self, seen: &BTreeMap<String, String>) -> Result<(), StateError> {
        delegate!(self, s => s.set_drift_seen(seen))
    }
}

/// Before a command that plans or writes: says which backend is in use when it is not the
/// local default (on stderr: stdout may be a JSON or Markdown plan), and refuses an S3 backend that holds no state while the
/// local state holds resources: planning against the empty remote state would plan to create
/// everything again.
pub(crate) async fn announce(dir: &Path, selection: &Selection) -> Result<(), Error> {
    // The local default is what skyform always did; only a choice the user made is named.
    if selection.backend != Backend::Local || selection.workspace != DEFAULT_WORKSPACE {
        eprintln!("{}", selection.describe(dir));
    }
    refuse_unmigrated(dir, selection).await
}

/// The refusal of `announce`, alone (`init` says which backend on stdout).
pub(crate) async fn refuse_unmigrated(dir: &Path, selection: &Selection) -> Result<(), Error> {
    if let Backend::S3(_) = selection.backend {
        let mut remote = selection.store(dir);
        if remote.load_existing().await?.is_some() {
            return Ok(());
        }
        let mut local = Store::Local(SqliteState::new(local_path(dir, &selection.workspace)));
        if let Some(state) = local.load_existing().await? {
            if !state.resources.is_empty() {
                return Err(Error::Usage(format!(
                    "the S3 backend holds no state at {}, but {} holds {} resource(s); run `skyform state migrate --to s3` to move it there first",
                    remote.location(),
                    local.location(),
                    state.resources.len()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names_are_one_safe_path_segment() {
        assert!(check_name("staging").is_ok());
        assert!(check_name("pr-42.v2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_workspaces_live_beside_the_default_state() {
        let dir = Path::new("/p");
        assert_eq!(
            local_path(dir, "default"),
            Path::new("/p/.skyform/state.db")
        );
        assert_eq!(
            local_path(dir, "prod"),
            Path::new("/p/.skyform/workspaces/prod/state.db")
        );
    }
}
