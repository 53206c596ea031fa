//! One batched read of IAM for a refresh: `GetAccountAuthorizationDetails` (roles, users,
//! local policies with every version, attachments, inline policies and tags), `ListRoles`
//! (descriptions and session lengths, which the former omits) and `ListInstanceProfiles`,
//! each paginated. Only what the requested types need is fetched. Policy tags and access keys have no account-wide
//! listing, so they cost one call per policy and per user. All of these run at once, bounded by
//! the refresh's slots (`--parallelism`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::EntityType;
use tokio::sync::Semaphore;

use super::{aws_err, document, AwsProvider};
use crate::engine::provider::{ProviderError, RefreshRequest};

#[derive(Debug, Default)]
pub(super) struct RoleInfo {
    pub(crate) arn: String,
    pub(crate) role_id: String,
    pub(crate) path: String,
    pub(crate) description: Option<String>,
    pub(crate) max_session_duration: Option<i32>,
    pub(crate) trust: String,
    pub(crate) tags: serde_json::Value,
    pub(crate) attached: BTreeSet<String>,
    /// Inline policies (`aws_iam_role_policy`): name to document, normalised.
    pub(crate) inline: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub(super) struct UserInfo {
    pub(crate) arn: String,
    pub(crate) user_id: String,
    pub(crate) path: String,
    pub(crate) tags: serde_json::Value,
    pub(crate) attached: BTreeSet<String>,
    /// Inline policies (`aws_iam_user_policy`): name to document, normalised.
    pub(crate) inline: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub(super) struct PolicyInfo {
    pub(crate) name: String,
    pub(crate) policy_id: String,
    pub(crate) path: String,
    pub(crate) description: Option<String>,
    pub(crate) document: String,
    pub(crate) tags: serde_json::Value,
}

#[derive(Debug, Default)]
pub(super) struct ProfileInfo {
    pub(crate) arn: String,
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) roles: Vec<String>,
    pub(crate) tags: serde_json::Value,
}

#[derive(Debug, Default)]
pub(super) struct KeyInfo {
    pub(crate) user: String,
    pub(crate) status: String,
}

#[derive(Debug, Default)]
pub(super) struct IamSnapshot {
    pub(crate) roles: BTreeMap<String, RoleInfo>,
    pub(crate) users: BTreeMap<String, UserInfo>,
    pub(crate) policies: BTreeMap<String, PolicyInfo>,
    pub(crate) profiles: BTreeMap<String, ProfileInfo>,
    pub(crate) keys: BTreeMap<String, KeyInfo>,
}

impl IamSnapshot {
    /// Reads what the requested types need. Every listing, and each policy's tags and each
    /// user's keys, is read at once, each holding one of the refresh's `slots`; the answers are
    /// put together once all are in.
    pub(super) async fn load(
        p: &AwsProvider,
        requests: &[RefreshRequest],
        slots: &Semaphore,
    ) -> Result<IamSnapshot, ProviderError> {
        let types: BTreeSet<&str> = requests.iter().map(|r| r.addr.type_name.as_str()).collect();
        let want_roles = types.contains("aws_iam_role")
            || types.contains("aws_iam_role_policy_attachment")
            || types.contains("aws_iam_role_policy");
        let want_users = types.contains("aws_iam_user")
            || types.contains("aws_iam_user_policy_attachment")
            || types.contains("aws_iam_user_policy");
        let want_policies = types.contains("aws_iam_policy");
        let mut filter = Vec::new();
        if want_roles {
            filter.push(EntityType::Role);
        }
        if want_users {
            filter.push(EntityType::User);
        }
        if want_policies {
            filter.push(EntityType::LocalManagedPolicy);
        }
        let policies: Vec<&str> = requests
            .iter()
            .filter(|r| r.addr.type_name == "aws_iam_policy")
            .map(|r| r.id.as_str())
            .collect();
        let key_users: BTreeSet<&str> = requests
            .iter()
            .filter(|r| r.addr.type_name == "aws_iam_access_key")
            .filter_map(|r| super::s(&r.prior, "user"))
            .collect();
        let (mut snap, roles, profiles, tags, keys) = futures_util::future::try_join5(
            details(p, filter, slots),
            role_settings(p, types.contains("aws_iam_role"), slots),
            instance_profiles(p, types.contains("aws_iam_instance_profile"), slots),
            futures_util::future::try_join_all(
                policies.into_iter().map(|arn| policy_tags(p, arn, slots)),
            ),
            futures_util::future::try_join_all(
                key_users
                    .into_iter()
                    .map(|user| access_keys(p, user, slots)),
            ),
        )
        .await?;
        for (name, (description, max)) in roles {
            if let Some(info) = snap.roles.get_mut(&name) {
                info.description = description;
                info.max_session_duration = max;
            }
        }
        snap.profiles = profiles;
        for (arn, tags) in tags.into_iter().flatten() {
            if let Some(info) = snap.policies.get_mut(&arn) {
                info.tags = tags;
            }
        }
        snap.keys = keys.into_iter().flatten().collect();
        Ok(snap)
    }
}

/// `GetAccountAuthorizationDetails` for the entity types in `filter` (none: no call): roles,
/// users and local policies, with their attachments, inline policies and tags.
async fn details(
    p: &AwsProvider,
    filter: Vec<EntityType>,
    slots: &Semaphore,
) -> Result<IamSnapshot, ProviderError> {
    let mut snap = IamSnapshot::default();
    if filter.is_empty() {
        return Ok(snap);
    }
    let _slot = super::slot(slots, &super::pace::IAM).await?;
    let mut marker: Option<String> = None;
    loop {
        let out = p
            .iam
            .get_account_authorization_details()
            .set_filter(Some(filter.clone()))
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(aws_err)?;
        for r in out.role_detail_list() {
            let Some(name) = r.role_name() else { continue };
            snap.roles.insert(
                name.to_string(),
                RoleInfo {
                    arn: r.arn().unwrap_or_default().to_string(),
                    role_id: r.role_id().unwrap_or_default().to_string(),
                    path: r.path().unwrap_or("/").to_string(),
                    trust: r
                        .assume_role_policy_document()
                        .map(document)
                        .unwrap_or_default(),
                    tags: super::tags_json(r.tags()),
                    attached: r
                        .attached_managed_policies()
                        .iter()
                        .filter_map(|a| a.policy_arn().map(String::from))
                        .collect(),
                    inline: inline(r.role_policy_list()),
                    ..RoleInfo::default()
                },
            );
        }
        for u in out.user_detail_list() {
            let Some(name) = u.user_name() else { continue };
            snap.users.insert(
                name.to_string(),
                UserInfo {
                    arn: u.arn().unwrap_or_default().to_string(),
                    user_id: u.user_id().unwrap_or_default().to_string(),
                    path: u.path().unwrap_or("/").to_string(),
                    tags: super::tags_json(u.tags()),
                    attached: u
                        .attached_managed_policies()
                        .iter()
                        .filter_map(|a| a.policy_arn().map(String::from))
                        .collect(),
                    inline: inline(u.user_policy_list()),
                },
            );
        }
        for pol in out.policies() {
            let Some(arn) = pol.arn() else { continue };
            let doc = pol
                .policy_version_list()
                .iter()
                .find(|v| v.is_default_version())
                .and_then(|v| v.document())
                .map(document);
            // Some emulators leave the name out; the ARN ends with it.
            let name = pol.policy_name().map_or_else(
                || arn.rsplit('/').next().unwrap_or_default().to_string(),
                String::from,
            );
            snap.policies.insert(
                arn.to_string(),
                PolicyInfo {
                    name,
                    policy_id: pol.policy_id().unwrap_or_default().to_string(),
                    path: pol.path().unwrap_or("/").to_string(),
                    description: pol
                        .description()
                        .filter(|d| !d.is_empty())
                        .map(String::from),
                    document: doc.unwrap_or_default(),
                    tags: serde_json::Value::Object(serde_json::Map::new()),
                },
            );
        }
        marker = out.marker().map(String::from);
        if !out.is_truncated() || marker.is_none() {
            break;
        }
    }
    Ok(snap)
}

/// A role's description and session length, which only `ListRoles` gives.
type RoleSettings = (Option<String>, Option<i32>);

/// `ListRoles` (when `wanted`): each role's description and session length, by name.
async fn role_settings(
    p: &AwsProvider,
    wanted: bool,
    slots: &Semaphore,
) -> Result<BTreeMap<String, RoleSettings>, ProviderError> {
    let mut out = BTreeMap::new();
    if !wanted {
        return Ok(out);
    }
    let _slot = super::slot(slots, &super::pace::IAM).await?;
    let mut pages = p.iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_err)?;
        for r in page.roles() {
            out.insert(
                r.role_name().to_string(),
                (
                    r.description().filter(|d| !d.is_empty()).map(String::from),
                    r.max_session_duration(),
                ),
            );
        }
    }
    Ok(out)
}

/// `ListInstanceProfiles` (when `wanted`), by name.
async fn instance_profiles(
    p: &AwsProvider,
    wanted: bool,
    slots: &Semaphore,
) -> Result<BTreeMap<String, ProfileInfo>, ProviderError> {
    let mut out = BTreeMap::new();
    if !wanted {
        return Ok(out);
    }
    let _slot = super::slot(slots, &super::pace::IAM).await?;
    let mut pages = p.iam.list_instance_profiles().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_err)?;
        for ip in page.instance_profiles() {
            out.insert(
                ip.instance_profile_name().to_string(),
                ProfileInfo {
                    arn: ip.arn().to_string(),
                    id: ip.instance_profile_id().to_string(),
                    path: ip.path().to_string(),
                    roles: ip
                        .roles()
                        .iter()
                        .map(|r| r.role_name().to_string())
                        .collect(),
                    tags: super::tags_json(ip.tags()),
                },
            );
        }
    }
    Ok(out)
}

/// One managed policy's tags (`None` when the policy is gone): IAM has no account-wide
/// listing of them.
async fn policy_tags(
    p: &AwsProvider,
    arn: &str,
    slots: &Semaphore,
) -> Result<Option<(String, serde_json::Value)>, ProviderError> {
    let _slot = super::slot(slots, &super::pace::IAM).await?;
    match p
        .iam
        .list_policy_tags()
        .policy_arn(arn)
        .send()
        .await
        .map_err(aws_err)
    {
        Ok(out) => Ok(Some((arn.to_string(), super::tags_json(out.tags())))),
        // Asked at the same time as the listing: a policy deleted outside skyform is absent
        // from both.
        Err(e) if super::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One user's access keys, by key id: they have no account-wide listing either.
async fn access_keys(
    p: &AwsProvider,
    user: &str,
    slots: &Semaphore,
) -> Result<Vec<(String, KeyInfo)>, ProviderError> {
    let _slot = super::slot(slots, &super::pace::IAM).await?;
    match p
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(aws_err)
    {
        Ok(out) => Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                let id = k.access_key_id()?;
                let status = k.status().map_or("Active", |s| s.as_str()).to_string();
                Some((
                    id.to_string(),
                    KeyInfo {
                        user: user.to_string(),
                        status,
                    },
                ))
            })
            .collect()),
        // The user is gone, and its keys with it.
        Err(e) if super::is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The inline policies `GetAccountAuthorizationDetails` lists for one role or user, by name,
/// with their documents decoded (AWS URL-encodes them).
fn inline(list: &[aws_sdk_iam::types::PolicyDetail]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|d| {
            Some((
                d.policy_name()?.to_string(),
                d.policy_document().map(document).unwrap_or_default(),
            ))
        })
        .collect()
}
