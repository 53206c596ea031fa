//! `skyform workspace list|new|select|delete|show`: several states of one configuration, laid
//! out as Terraform lays them (S3: `<workspace_key_prefix>/<name>/<key>`; local:
//! `.skyform/workspaces/<name>/state.db`), the selection recorded in `.skyform/environment`.

use crate::cli::backend::{check_name, environment_file, Store, DEFAULT_WORKSPACE};
use crate::cli::context::Context;
use crate::error::{Error, Outcome};
use crate::lang::terraform::Backend;
use crate::state::objects::ObjectStore as _;
use crate::state::StateStore as _;

/// Every workspace that has a state (or was created), `default` first, then by name.
pub(crate) async fn names(ctx: &Context) -> Result<Vec<String>, Error> {
    let mut found = std::collections::BTreeSet::new();
    if let (Backend::S3(s3), Some(objects)) = (&ctx.selection.backend, &ctx.selection.objects) {
        let prefix = format!("{}/", s3.workspace_key_prefix);
        let keys = objects.list(&prefix).await.map_err(|e| state_err(&e))?;
        for k in keys {
            let Some((name, rest)) = k
                .strip_prefix(prefix.as_str())
                .and_then(|k| k.split_once('/'))
            else {
                continue;
            };
            // The state's own objects (`<key>.skystate`, its journal and lock), or a
            // Terraform state at exactly `<key>`.
            let ours = rest
                .strip_prefix(s3.key.as_str())
                .is_some_and(|tail| tail.is_empty() || tail.starts_with(".sky"));
            if ours && check_name(name).is_ok() {
                found.insert(name.to_string());
            }
        }
    } else {
        let dir = ctx.dir.join(".skyform").join("workspaces");
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() && check_name(&name).is_ok() {
                        found.insert(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    found.remove(DEFAULT_WORKSPACE);
    Ok(std::iter::once(DEFAULT_WORKSPACE.to_string())
        .chain(found)
        .collect())
}

fn state_err(e: &crate::state::objects::ObjectError) -> Error {
    crate::state::StateError::Db(e.to_string()).into()
}

pub(crate) async fn list(ctx: &Context) -> Result<Outcome, Error> {
    for name in names(ctx).await? {
        let mark = if name == ctx.selection.workspace {
            "*"
        } else {
            " "
        };
        println!("{mark} {name}");
    }
    Ok(Outcome::Done)
}

pub(crate) fn show(ctx: &Context) -> Outcome {
    println!("{}", ctx.selection.workspace);
    Outcome::Done
}

/// Records the selection; says so when an environment variable overrides it.
fn record(ctx: &Context, name: &str) -> Result<(), Error> {
    let file = environment_file(&ctx.dir);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&file, format!("{name}\n"))?;
    for var in ["SKYFORM_WORKSPACE", "TF_WORKSPACE"] {
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            eprintln!("Note: {var} is set, and overrides the selection while it is.");
        }
    }
    Ok(())
}

pub(crate) async fn new(ctx: &Context, name: &str) -> Result<Outcome, Error> {
    check_name(name).map_err(Error::Usage)?;
    if names(ctx).await?.iter().any(|n| n == name) {
        return Err(Error::Usage(format!(
            "workspace {name:?} already exists; select it with `skyform workspace select {name}`"
        )));
    }
    // The workspace exists once its state does: an empty state of its own lineage, as
    // Terraform writes one.
    let mut store = ctx.selection.store_of(&ctx.dir, name);
    let fresh = crate::state::State {
        lineage: crate::state::new_lineage(),
        ..crate::state::State::default()
    };
    store.replace(&fresh).await?;
    record(ctx, name)?;
    println!(
        "Created and switched to workspace {name:?} ({}).",
        store.location()
    );
    Ok(Outcome::Done)
}

pub(crate) async fn select(ctx: &Context, name: &str) -> Result<Outcome, Error> {
    check_name(name).map_err(Error::Usage)?;
    if !names(ctx).await?.iter().any(|n| n == name) {
        return Err(Error::Usage(format!(
            "workspace {name:?} does not exist; create it with `skyform workspace new {name}`"
        )));
    }
    record(ctx, name)?;
    println!("Switched to workspace {name:?}.");
    Ok(Outcome::Done)
}

pub(crate) async fn delete(ctx: &Context, name: &str, force: bool) -> Result<Outcome, Error> {
    check_name(name).map_err(Error::Usage)?;
    if name == DEFAULT_WORKSPACE {
        return Err(Error::Usage(
            "the default workspace cannot be deleted".into(),
        ));
    }
    if name == ctx.selection.workspace {
        return Err(Error::Usage(format!(
            "workspace {name:?} is selected; select another one (`skyform workspace select default`) before deleting it"
        )));
    }
    if !names(ctx).await?.iter().any(|n| n == name) {
        return Err(Error::Usage(format!("workspace {name:?} does not exist")));
    }
    let mut store = ctx.selection.store_of(&ctx.dir, name);
    // A runner may be applying to that workspace right now: deleting its state under it would
    // lose its writes, so the delete holds the workspace's lock like any writer.
    let held = crate::state::lock::acquire(
        &mut store,
        "workspace delete",
        ctx.lock_timeout,
        ctx.selection.lease,
    )
    .await?;
    let refusal = match store.load_existing().await {
        Ok(Some(state)) if !force && (!state.resources.is_empty() || !state.intents.is_empty()) => {
            Some(Error::Usage(format!(
                "workspace {name:?} still manages {} resource(s); destroy them first (`skyform workspace select {name}`, `skyform destroy`), or pass --force to forget them (they stay in AWS)",
                state.resources.len()
            )))
        }
        Ok(_) => None,
        Err(e) => Some(e.into()),
    };
    if let Some(e) = refusal {
        held.release(&mut store).await;
        return Err(e);
    }
    // The lock goes with the workspace's objects (it is one of them), so it is not released:
    // a release would fold the journal into a new snapshot and bring the state back.
    match (&store, &ctx.selection.objects) {
        (Store::S3(_), Some(objects)) => {
            let Backend::S3(s3) = &ctx.selection.backend else {
                return Ok(Outcome::Done);
            };
            let keys = objects
                .list(&format!("{}.sky", s3.key_for(name)))
                .await
                .map_err(|e| state_err(&e))?;
            objects.delete(&keys).await.map_err(|e| state_err(&e))?;
        }
        _ => std::fs::remove_dir_all(ctx.dir.join(".skyform").join("workspaces").join(name))?,
    }
    println!("Deleted workspace {name:?}.");
    Ok(Outcome::Done)
}
