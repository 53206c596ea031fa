//! `skyform check [-v]`: which AWS identity skyform would act as, where its credentials come
//! from, and, when they do not work, a diagnosis with the fix.
//!
//! The order of the checks follows the guide's troubleshooting: first whether any profile or
//! key is reachable (`credentials::analyse`, no network), then whether the chain can load it
//! (an SSO token can be missing), then whether AWS accepts it (STS `GetCallerIdentity`). With
//! `-v` it also compares the identity with the state's owner and lists, for the configuration
//! at hand, the IAM actions the next apply needs, simulated against the caller's policies
//! where IAM allows it. No secret is ever printed: an access key id is masked.

use crate::aws::credentials::{
    analyse, masked, no_credentials, region, Problem, ProfileKind, Snapshot, Source,
};
use crate::aws::permissions::{self, Grant};
use crate::aws::{AwsProvider, AwsSettings, Simulation};
use crate::cli::args::VarArgs;
use crate::cli::context::{print_warnings, provider_settings, workspace, Context};
use crate::engine::plan::Workspace;
use crate::engine::provider::Identity;
use crate::error::{Error, Outcome};
use crate::state::State;

fn has_config(ctx: &Context) -> bool {
    std::fs::read_dir(&ctx.dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| crate::lang::config::is_config_file(&e.file_name().to_string_lossy()))
    })
}

/// Reports a diagnosis; the command has failed, in its own words.
fn fail(problem: &Problem) -> Outcome {
    eprintln!("AWS credentials: not usable.\n\n{problem}");
    Outcome::Failed
}

pub(crate) async fn check(ctx: &Context, vars: &VarArgs, verbose: bool) -> Result<Outcome, Error> {
    // The provider block may name a profile or region; a configuration with errors must not
    // stop a credential check, so it is then left out with a note.
    let ws = if has_config(ctx) {
        match workspace(&ctx.dir, vars, false) {
            Ok((ws, warnings)) => {
                print_warnings(&ws, &warnings, ctx.style);
                Some(ws)
            }
            Err(Error::Config(..)) => {
                eprintln!("note: the configuration has errors (see `skyform validate`); checking the credentials without it\n");
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let settings = match &ws {
        Some(ws) => provider_settings(ws)?,
        None => AwsSettings::default(),
    };
    let snapshot = Snapshot::load(settings.profile.clone(), settings.region.clone()).await;
    let source = match analyse(&snapshot) {
        Ok(s) => s,
        Err(p) => return Ok(fail(&p)),
    };
    let region_source = region(&snapshot);
    if region_source.is_none() && !matches!(source, Source::InstanceMetadata { .. }) {
        return Ok(fail(&Problem::NoRegion));
    }
    let provider = match AwsProvider::connect(&settings).await {
        Ok(p) => p,
        Err(e) if e.code == "NoRegion" => return Ok(fail(&Problem::NoRegion)),
        Err(e) => return Err(e.into()),
    };
    let creds = match provider.load_credentials().await {
        Ok(c) => c,
        Err(detail) => {
            return Ok(fail(&match &source {
                Source::Profile {
                    name,
                    kind: ProfileKind::Sso,
                    ..
                } => Problem::SsoLogin {
                    profile: name.clone(),
                    detail,
                },
                Source::InstanceMetadata { .. } => {
                    no_credentials(&snapshot, snapshot.all_profiles())
                }
                other => Problem::NotLoaded {
                    source: other.to_string(),
                    detail,
                },
            }))
        }
    };
    // The AWS view (with the user id); `identity` is the engine's view of the same caller.
    let caller = match provider.caller().await {
        Ok(c) => c,
        Err(e) => {
            return Ok(fail(&Problem::Rejected {
                source: source.to_string(),
                message: e.to_string(),
            }))
        }
    };
    let identity = Identity {
        tenant: caller.account.clone(),
        principal: caller.arn.clone(),
    };
    println!("{}\n", ctx.style.bold("AWS credentials work."));
    let region_text = match &region_source {
        Some((r, from)) => format!("{r} (from {from})"),
        None => format!("{} (from instance metadata)", provider.region),
    };
    let mut rows = vec![
        ("account", caller.account.clone()),
        ("arn", caller.arn.clone()),
        ("user id", caller.user_id.clone()),
        ("region", region_text),
        ("source", source.to_string()),
        ("key id", masked(&creds.access_key_id)),
    ];
    if creds.session_token {
        rows.push((
            "session",
            "temporary credentials (session token present)".into(),
        ));
    }
    if let Some(exp) = creds.expiry {
        let left = exp
            .duration_since(std::time::SystemTime::now())
            .map_or(0, |d| d.as_secs() / 60);
        rows.push(("expires", format!("in {left} minutes")));
    }
    for (k, v) in &rows {
        println!("  {k:<8} {v}");
    }
    if let Source::InstanceMetadata { unreachable } = &source {
        if !unreachable.is_empty() {
            println!(
                "\nnote: these profiles exist but nothing selects them (no AWS_PROFILE, none named \"default\"): {}",
                unreachable.join(", ")
            );
        }
    }
    if verbose {
        verbose_report(ctx, ws.as_ref(), &provider, &identity).await?;
    }
    Ok(Outcome::Done)
}

async fn load_state(ctx: &Context) -> Result<Option<State>, Error> {
    Ok(ctx.state().load_existing().await?)
}

async fn verbose_report(
    ctx: &Context,
    ws: Option<&Workspace>,
    provider: &AwsProvider,
    identity: &Identity,
) -> Result<(), Error> {
    let state = load_state(ctx).await?;
    println!("\n{}", ctx.style.bold("State owner"));
    match state.as_ref().map(|s| &s.owner) {
        None => println!("  no state yet in {}", ctx.dir.display()),
        Some(None) => println!(
            "  the state has no owner recorded yet; the next apply records {}",
            identity.principal
        ),
        Some(Some(o)) if o.tenant != identity.tenant => println!(
            "  account {} ({}), NOT the current account {}: apply and destroy will refuse to write",
            o.tenant, o.principal, identity.tenant
        ),
        Some(Some(o)) if o.principal != identity.principal => println!(
            "  account {} ({}): same account, another identity; apply warns and proceeds",
            o.tenant, o.principal
        ),
        Some(Some(o)) => println!(
            "  account {} ({}): the current identity",
            o.tenant, o.principal
        ),
    }
    let Some(ws) = ws else {
        println!("\nNo configuration here, so no IAM actions to list.");
        return Ok(());
    };
    println!("\n{}", ctx.style.bold("IAM actions the next apply needs"));
    let needs = match crate::engine::plan::plan(
        provider,
        ws,
        state.unwrap_or_default(),
        &crate::engine::plan::PlanOptions::default(),
    )
    .await
    {
        Ok(plan) => permissions::for_plan(&plan),
        Err(e) => {
            println!(
                "  (the plan failed: {e}; listing what a full apply of the configuration needs)"
            );
            permissions::for_config(ws, permissions::Scope::parse("apply").unwrap_or_default())
        }
    };
    let grants: Vec<Grant> = permissions::grants(&needs, &identity.tenant)
        .into_iter()
        .collect();
    if grants.is_empty() {
        println!("  none: the configuration and AWS already agree");
        return Ok(());
    }
    for g in &grants {
        println!("  {:<36} {}", g.action, g.resource);
    }
    if identity.principal.ends_with(":root") {
        println!("\nThe root user is allowed every action; nothing to simulate.");
        return Ok(());
    }
    match provider.simulate(&identity.principal, &grants).await {
        Simulation::Denied(denied) if denied.is_empty() => {
            println!("\nSimulated with iam:SimulatePrincipalPolicy: all {} are allowed.", grants.len());
        }
        Simulation::Denied(denied) => {
            println!(
                "\nSimulated with iam:SimulatePrincipalPolicy: {} of {} are DENIED:",
                denied.len(),
                grants.len()
            );
            for g in &denied {
                println!("  {:<36} {}", g.action, g.resource);
            }
            println!("`skyform policy` prints a policy that allows them.");
        }
        Simulation::Unavailable(reason) => println!(
            "\nSimulation is unavailable ({reason}), so whether these are allowed was not checked.\n`skyform policy` prints them as a policy to compare with yours."
        ),
    }
    Ok(())
}
