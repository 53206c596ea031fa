//! Where the AWS credentials come from, and what is wrong when they cannot be found.
//!
//! aws-config's default chain answers "which credentials", never "why these" or "why none".
//! `skyform check` needs both, so this module replays the chain's choice over a snapshot of
//! the environment and the two profile files (read with aws-config's own parser): environment
//! keys first, then the selected profile (the provider block's `profile`, else `AWS_PROFILE`,
//! else `default`), then web identity, container and instance metadata. The analysis is pure;
//! loading the snapshot is the only I/O. Nothing here ever holds a secret value.

use std::collections::BTreeMap;
use std::fmt;

use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

/// What one profile section provides, without any secret.
// Each flag is an independent fact about the section (a profile may have keys and SSO
// settings at once); an enum would lose that.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProfileInfo {
    pub(crate) static_keys: bool,
    pub(crate) sso: bool,
    pub(crate) role_arn: Option<String>,
    pub(crate) process: bool,
    pub(crate) web_identity: bool,
    pub(crate) region: Option<String>,
}

/// The profiles of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProfileFile {
    pub(crate) path: String,
    pub(crate) profiles: BTreeMap<String, ProfileInfo>,
}

/// Everything the analysis looks at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) config: ProfileFile,
    pub(crate) credentials: ProfileFile,
    /// `profile` and `region` from the `provider "aws"` block.
    pub(crate) provider_profile: Option<String>,
    pub(crate) provider_region: Option<String>,
}

const ENV_NAMES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
];

impl Snapshot {
    /// Reads the environment and both profile files, as aws-config would.
    pub(crate) async fn load(
        provider_profile: Option<String>,
        provider_region: Option<String>,
    ) -> Snapshot {
        let env: BTreeMap<String, String> = ENV_NAMES
            .iter()
            .filter_map(|n| {
                std::env::var(n)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*n).to_string(), v))
            })
            .collect();
        let home = std::env::var("HOME").unwrap_or_default();
        let path_of = |var: &str, default: &str| {
            env.get(var)
                .cloned()
                .unwrap_or_else(|| default.replacen('~', &home, 1))
        };
        let config_path = path_of("AWS_CONFIG_FILE", "~/.aws/config");
        let credentials_path = path_of("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
        Snapshot {
            config: read_profiles(EnvConfigFileKind::Config, config_path).await,
            credentials: read_profiles(EnvConfigFileKind::Credentials, credentials_path).await,
            env,
            provider_profile,
            provider_region,
        }
    }

    fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// Every profile name in either file, with the files that hold it.
    pub(crate) fn all_profiles(&self) -> BTreeMap<String, Vec<String>> {
        let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in [&self.config, &self.credentials] {
            for name in file.profiles.keys() {
                all.entry(name.clone()).or_default().push(file.path.clone());
            }
        }
        all
    }

    fn profile(&self, name: &str) -> Option<(ProfileInfo, bool)> {
        let c = self.config.profiles.get(name);
        let k = self.credentials.profiles.get(name);
        if c.is_none() && k.is_none() {
            return None;
        }
        let c = c.cloned().unwrap_or_default();
        let k = k.cloned().unwrap_or_default();
        // The credentials file wins for keys, as in the AWS CLI and SDKs.
        let from_credentials_file = k.static_keys;
        let merged = ProfileInfo {
            static_keys: c.static_keys || k.static_keys,
            sso: c.sso || k.sso,
            role_arn: k.role_arn.or(c.role_arn),
            process: c.process || k.process,
            web_identity: c.web_identity || k.web_identity,
            region: c.region.or(k.region),
        };
        Some((merged, from_credentials_file))
    }
}

async fn read_profiles(kind: EnvConfigFileKind, path: String) -> ProfileFile {
    let files = EnvConfigFiles::builder().with_file(kind, &path).build();
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let mut out = ProfileFile {
        path,
        profiles: BTreeMap::new(),
    };
    // A file that does not parse holds no usable profile; aws-config itself reports it when
    // the chain runs, and `check` shows that message.
    let Ok(set) = aws_config::profile::load(&fs, &env, &files, None).await else {
        return out;
    };
    for name in set.profiles() {
        if let Some(p) = set.get_profile(name) {
            out.profiles.insert(
                name.to_string(),
                ProfileInfo {
                    static_keys: p.get("aws_access_key_id").is_some(),
                    sso: p.get("sso_start_url").is_some() || p.get("sso_session").is_some(),
                    role_arn: p.get("role_arn").map(String::from),
                    process: p.get("credential_process").is_some(),
                    web_identity: p.get("web_identity_token_file").is_some(),
                    region: p.get("region").map(String::from),
                },
            );
        }
    }
    out
}

/// Who picked the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chooser {
    ProviderBlock,
    AwsProfile,
    Default,
}

impl fmt::Display for Chooser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Chooser::ProviderBlock => "chosen by the provider \"aws\" block",
            Chooser::AwsProfile => "chosen by AWS_PROFILE",
            Chooser::Default => "the default profile",
        })
    }
}

/// How a profile provides credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileKind {
    StaticKeys { file: String },
    Sso,
    AssumeRole { role_arn: String },
    Process,
    WebIdentity,
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Environment {
        session_token: bool,
    },
    Profile {
        name: String,
        chosen_by: Chooser,
        kind: ProfileKind,
    },
    WebIdentity,
    Container,
    /// Only the instance metadata service is left; `unreachable` lists profiles that exist
    /// but that nothing selects.
    InstanceMetadata {
        unreachable: Vec<String>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment { session_token } => write!(
                f,
                "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY{})",
                if *session_token {
                    ", AWS_SESSION_TOKEN"
                } else {
                    ""
                }
            ),
            Source::Profile {
                name,
                chosen_by,
                kind,
            } => {
                write!(f, "profile {name:?} ({chosen_by}): ")?;
                match kind {
                    ProfileKind::StaticKeys { file } => {
                        write!(f, "static keys from the shared credentials file {file}")
                    }
                    ProfileKind::Sso => f.write_str("SSO (IAM Identity Center)"),
                    ProfileKind::AssumeRole { role_arn } => write!(f, "assumes role {role_arn}"),
                    ProfileKind::Process => f.write_str("credential_process"),
                    ProfileKind::WebIdentity => f.write_str("web identity token"),
                }
            }
            Source::WebIdentity => {
                f.write_str("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)")
            }
            Source::Container => {
                f.write_str("container metadata (ECS or EKS credentials endpoint)")
            }
            Source::InstanceMetadata { .. } => f.write_str("EC2 instance metadata (IMDS)"),
        }
    }
}

/// A diagnosis: why no credentials can be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    ProfileMissing {
        name: String,
        chosen_by: Chooser,
        existing: BTreeMap<String, Vec<String>>,
        files: [String; 2],
    },
    NoDefaultProfile {
        existing: BTreeMap<String, Vec<String>>,
    },
    ProfileWithoutCredentials {
        name: String,
    },
    NoCredentials {
        files: [String; 2],
    },
    SsoLogin {
        profile: String,
        detail: String,
    },
    NotLoaded {
        source: String,
        detail: String,
    },
    Rejected {
        source: String,
        message: String,
    },
    NoRegion,
}

fn list(existing: &BTreeMap<String, Vec<String>>) -> String {
    existing
        .iter()
        .map(|(name, files)| format!("  {name}  (in {})", files.join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ProfileMissing {
                name,
                chosen_by,
                existing,
                files,
            } => {
                let who = match chosen_by {
                    Chooser::ProviderBlock => "The provider \"aws\" block names",
                    _ => "AWS_PROFILE is set to",
                };
                writeln!(
                    f,
                    "{who} profile {name:?}, but no profile of that name exists in {} or {}.",
                    files[0], files[1]
                )?;
                if existing.is_empty() {
                    f.write_str("No profiles exist at all; create one with `aws configure --profile NAME` or `aws configure sso`.")
                } else {
                    write!(
                        f,
                        "The profiles that exist:\n{}\nPick one (export AWS_PROFILE=NAME), or unset AWS_PROFILE to use the profile named \"default\".",
                        list(existing)
                    )
                }
            }
            Problem::NoDefaultProfile { existing } => {
                let first = existing.keys().next().map_or("NAME", String::as_str);
                write!(
                    f,
                    "No AWS_PROFILE is set and no profile is named \"default\", so none of these profiles is used:\n{}\nPick one with `export AWS_PROFILE={first}`, or rename the one you want to [default].",
                    list(existing)
                )
            }
            Problem::ProfileWithoutCredentials { name } => write!(
                f,
                "Profile {name:?} exists but provides no credentials (no aws_access_key_id, sso_session or sso_start_url, role_arn or credential_process).\nAdd keys with `aws configure --profile {name}`, or SSO with `aws configure sso --profile {name}`."
            ),
            Problem::NoCredentials { files } => write!(
                f,
                "No AWS credentials were found: no AWS_ACCESS_KEY_ID in the environment, no profile in {} or {}, and no container or instance credentials.\nConfigure them in one of these ways:\n  aws configure        (the access key of a dedicated IAM user)\n  aws configure sso    (IAM Identity Center)\n  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...",
                files[0], files[1]
            ),
            Problem::SsoLogin { profile, detail } => write!(
                f,
                "The SSO session of profile {profile:?} has expired or was never started ({detail}).\nRun: aws sso login --profile {profile}"
            ),
            Problem::NotLoaded { source, detail } => {
                write!(f, "Credentials from {source} could not be loaded: {detail}")
            }
            Problem::Rejected { source, message } => write!(
                f,
                "AWS rejected the credentials from {source}:\n  {message}"
            ),
            Problem::NoRegion => f.write_str(
                "No AWS region is set. Set AWS_REGION, give `region` in the provider \"aws\" block, or add `region = ...` to the profile.",
            ),
        }
    }
}

/// The profile the chain would use, and who chose it.
pub(crate) fn selected_profile(s: &Snapshot) -> (String, Chooser) {
    if let Some(p) = &s.provider_profile {
        (p.clone(), Chooser::ProviderBlock)
    } else if let Some(p) = s.env("AWS_PROFILE") {
        (p.to_string(), Chooser::AwsProfile)
    } else {
        ("default".into(), Chooser::Default)
    }
}

/// Replays the default credential chain's choice.
pub(crate) fn analyse(s: &Snapshot) -> Result<Source, Problem> {
    let (name, chosen_by) = selected_profile(s);
    let files = [s.config.path.clone(), s.credentials.path.clone()];
    let profile = s.profile(&name);
    // A profile someone named but that does not exist is a mistake even when environment
    // keys would be used instead: the AWS CLI refuses it too.
    if profile.is_none() && chosen_by != Chooser::Default {
        return Err(Problem::ProfileMissing {
            name,
            chosen_by,
            existing: s.all_profiles(),
            files,
        });
    }
    if s.env("AWS_ACCESS_KEY_ID").is_some() && s.env("AWS_SECRET_ACCESS_KEY").is_some() {
        return Ok(Source::Environment {
            session_token: s.env("AWS_SESSION_TOKEN").is_some(),
        });
    }
    if let Some((p, from_credentials_file)) = profile {
        let kind = if p.sso {
            ProfileKind::Sso
        } else if let Some(role_arn) = p.role_arn {
            ProfileKind::AssumeRole { role_arn }
        } else if p.web_identity {
            ProfileKind::WebIdentity
        } else if p.process {
            ProfileKind::Process
        } else if p.static_keys {
            ProfileKind::StaticKeys {
                file: if from_credentials_file {
                    s.credentials.path.clone()
                } else {
                    s.config.path.clone()
                },
            }
        } else {
            return Err(Problem::ProfileWithoutCredentials { name });
        };
        return Ok(Source::Profile {
            name,
            chosen_by,
            kind,
        });
    }
    if s.env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && s.env("AWS_ROLE_ARN").is_some() {
        return Ok(Source::WebIdentity);
    }
    if s.env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || s.env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        return Ok(Source::Container);
    }
    let existing = s.all_profiles();
    if s.env("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(no_credentials(s, existing));
    }
    Ok(Source::InstanceMetadata {
        unreachable: existing.into_keys().collect(),
    })
}

/// The diagnosis when nothing in the chain answered.
pub(crate) fn no_credentials(s: &Snapshot, existing: BTreeMap<String, Vec<String>>) -> Problem {
    if existing.is_empty() {
        Problem::NoCredentials {
            files: [s.config.path.clone(), s.credentials.path.clone()],
        }
    } else {
        Problem::NoDefaultProfile { existing }
    }
}

/// The region the SDK will use, and where it comes from.
pub(crate) fn region(s: &Snapshot) -> Option<(String, String)> {
    if let Some(r) = &s.provider_region {
        return Some((r.clone(), "the provider \"aws\" block".into()));
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(r) = s.env(var) {
            return Some((r.to_string(), var.to_string()));
        }
    }
    let (name, _) = selected_profile(s);
    let (p, _) = s.profile(&name)?;
    p.region.map(|r| (r, format!("profile {name:?}")))
}

/// An access key id with all but its last four characters hidden, as `aws configure list`
/// shows it.
pub(crate) fn masked(key_id: &str) -> String {
    let n = key_id.chars().count();
    let tail: String = key_id.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{tail}", "*".repeat(n.saturating_sub(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(env: &[(&str, &str)], config: &[(&str, ProfileInfo)]) -> Snapshot {
        Snapshot {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            config: ProfileFile {
                path: "/h/.aws/config".into(),
                profiles: config
                    .iter()
                    .map(|(n, p)| ((*n).to_string(), p.clone()))
                    .collect(),
            },
            credentials: ProfileFile {
                path: "/h/.aws/credentials".into(),
                profiles: BTreeMap::new(),
            },
            ..Snapshot::default()
        }
    }

    fn keys() -> ProfileInfo {
        ProfileInfo {
            static_keys: true,
            ..ProfileInfo::default()
        }
    }

    #[test]
    fn environment_keys_come_first() {
        let s = snapshot(
            &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
            &[("default", keys())],
        );
        assert_eq!(
            analyse(&s),
            Ok(Source::Environment {
                session_token: false
            })
        );
    }

    #[test]
    fn a_missing_named_profile_is_diagnosed_even_with_environment_keys() {
        let s = snapshot(
            &[
                ("AWS_PROFILE", "nope"),
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "b"),
            ],
            &[("work", keys())],
        );
        let Err(p) = analyse(&s) else { panic!() };
        let text = p.to_string();
        assert!(text.contains("\"nope\"") && text.contains("work"), "{text}");
    }

    #[test]
    fn without_a_default_the_other_profiles_are_listed() {
        let s = snapshot(
            &[("AWS_EC2_METADATA_DISABLED", "true")],
            &[("AWSPowerUserAccess-123456789012", ProfileInfo::default())],
        );
        let Err(p) = analyse(&s) else { panic!() };
        let text = p.to_string();
        assert!(text.contains("AWSPowerUserAccess-123456789012"));
        assert!(text.contains("AWS_PROFILE"));
    }

    #[test]
    fn sso_and_role_profiles_are_recognised() {
        let sso = ProfileInfo {
            sso: true,
            ..ProfileInfo::default()
        };
        let s = snapshot(&[("AWS_PROFILE", "a")], &[("a", sso)]);
        assert!(matches!(
            analyse(&s),
            Ok(Source::Profile {
                kind: ProfileKind::Sso,
                chosen_by: Chooser::AwsProfile,
                ..
            })
        ));
        let role = ProfileInfo {
            role_arn: Some("arn:aws:iam::1:role/x".into()),
            ..ProfileInfo::default()
        };
        let s = snapshot(&[], &[("default", role)]);
        assert!(matches!(
            analyse(&s),
            Ok(Source::Profile {
                kind: ProfileKind::AssumeRole { .. },
                chosen_by: Chooser::Default,
                ..
            })
        ));
    }

    #[test]
    fn nothing_at_all_says_how_to_configure() {
        let s = snapshot(&[("AWS_EC2_METADATA_DISABLED", "true")], &[]);
        let Err(p) = analyse(&s) else { panic!() };
        assert!(p.to_string().contains("aws configure"));
    }

    #[test]
    fn the_region_follows_the_sdk_order() {
        let mut with_region = keys();
        with_region.region = Some("eu-west-1".into());
        let s = snapshot(&[], &[("default", with_region)]);
        assert_eq!(region(&s).map(|r| r.0), Some("eu-west-1".into()));
        let s = snapshot(&[("AWS_DEFAULT_REGION", "us-west-2")], &[]);
        assert_eq!(
            region(&s),
            Some(("us-west-2".into(), "AWS_DEFAULT_REGION".into()))
        );
    }

    #[test]
    fn masking_keeps_only_the_last_four_characters() {
        assert_eq!(masked("AKIAABCDEFGH"), "********EFGH");
        assert_eq!(masked("ab"), "ab");
    }
}
