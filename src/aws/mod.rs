//! The AWS implementation of `Provider`: one file per resource type (the two policy
//! attachments share one, the two inline policies another, and so do route tables and their
//! associations), plus the batched IAM read (`iam_snapshot.rs`) that refresh uses for every IAM
//! type at once.
//!
//! Each type's file fills in one `resource::Resource`: how refresh reads a batch of ids (from
//! the IAM snapshot or with its own Describe), create, update and delete, how a lost create's
//! object is found again (tags, unique name, or what identifies it), and how its objects are
//! described by tag filters for the lineage scan. Data sources fill in a `resource::DataSource`.
//! `registry.rs` lists them, one line each, and every `Provider` method below dispatches
//! through that table: no code here names a resource type. A test checks the table against
//! the schemas in both directions.
//!
//! Credentials and region come from aws-config's default chain (environment, profiles
//! including SSO, `AWS_PROFILE`), overridden by the `provider "aws"` block. Each aliased block
//! is a set of clients of its own (`AwsProvider::aliases`); a call runs in the configuration its
//! request names, refresh reads each configuration's objects in one batch there, and the lineage
//! scan looks in every one. The scan's listings read the objects of the `Read::Describe` types
//! in full, and the refresh that follows in the same command is served from them
//! (`AwsProvider::scanned`); of the `Read::Objects` types, whose attributes need the prior ones,
//! the scan keeps the SDK objects it listed and their refresh builds the attributes from those
//! (`AwsProvider::scanned_objects`): a no-op plan asks once per type, not twice. `AWS_ENDPOINT_URL`
//! is honoured, which is how tests reach a local emulator. Throttling is retried by the SDK's
//! adaptive retry mode (which also paces each service once throttled); IAM's eventual
//! consistency by `retry_propagation`. A refresh reads its types at once, at most
//! `--parallelism` reads in flight, paced by a token bucket per service (`pace`). Every
//! request is counted by service and action (`request_stats`, for `--stats`).

mod adopt;
mod ami;
pub(crate) mod caller_identity;
mod check;
pub(crate) mod cidr;
mod cluster;
pub(crate) mod credentials;
mod ec2_common;
mod eip;
mod iam_access_key;
mod iam_inline_policy;
mod iam_instance_profile;
mod iam_policy;
mod iam_policy_attachment;
mod iam_policy_document;
mod iam_role;
mod iam_snapshot;
mod iam_user;
mod instance;
mod internet_gateway;
mod key_pair;
mod nat_gateway;
mod nodes;
mod pace;
pub mod permissions;
mod placement_group;
pub(crate) mod policy;
mod region;
mod registry;
mod resource;
mod route;
mod route_table;
pub(crate) mod s3_objects;
pub mod schemas;
mod security_group;
mod security_group_rule;
mod security_group_rule_legacy;
mod subnet;
mod vpc;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub(crate) use check::Simulation;
use resource::Read;

use crate::engine::default_tags::flatten;
use crate::engine::provider::{
    ErrorKind, Found, Identity, Lost, OpContext, Provider, ProviderError, RefreshRequest, Rules,
    Scanned,
};
use crate::state::Attrs;

/// Every HTTP request this process sent to AWS (retries included), for the summary line of big
/// plans: what a refresh costs is told in requests, the unit AWS throttles.
static REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Every operation this process started (an operation's retries are further requests of it).
static OPERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The requests that AWS answered with a throttling error.
static THROTTLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The requests sent, by (service, action), for `--stats`.
static BY_ACTION: Mutex<BTreeMap<(&'static str, String), usize>> = Mutex::new(BTreeMap::new());

/// How many requests this process has sent to AWS so far.
pub(crate) fn requests_sent() -> usize {
    REQUESTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// What this process's AWS requests were, for `--stats`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestStats {
    /// Requests sent by (service, action), retries included.
    pub(crate) by_action: BTreeMap<(&'static str, String), usize>,
    /// Requests that repeated an operation already sent (the SDK's retries).
    pub(crate) retries: usize,
    /// Requests AWS answered with a throttling error.
    pub(crate) throttled: usize,
}

/// The requests this process has sent so far.
pub(crate) fn request_stats() -> RequestStats {
    let sent = requests_sent();
    RequestStats {
        by_action: BY_ACTION
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        retries: sent.saturating_sub(OPERATIONS.load(std::sync::atomic::Ordering::Relaxed)),
        throttled: THROTTLED.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// The error codes with which AWS says a caller sends too fast: EC2's `RequestLimitExceeded`,
/// IAM's and STS's `Throttling`, and the JSON services' `ThrottlingException`.
const THROTTLING_CODES: [&str; 3] = ["RequestLimitExceeded", "Throttling", "ThrottlingException"];

/// Counts each attempt as it is sent, by its service and action, and the throttled answers;
/// one interceptor type serves the IAM, STS and EC2 clients, whose `Intercept` is the same
/// trait.
#[derive(Debug)]
struct CountRequests {
    service: &'static str,
    /// `Some` for S3, a REST protocol whose action is in the method and URL, not a form field:
    /// whether the bucket is the URL's first path segment (`use_path_style`).
    s3_path_style: Option<bool>,
}

impl CountRequests {
    /// The counter of a query-protocol client (IAM, STS, EC2).
    const fn query(service: &'static str) -> CountRequests {
        CountRequests {
            service,
            s3_path_style: None,
        }
    }

    /// The counter of an S3 client addressed path-style or not.
    const fn s3(path_style: bool) -> CountRequests {
        CountRequests {
            service: "s3",
            s3_path_style: Some(path_style),
        }
    }
}

impl aws_sdk_ec2::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "skyform: count requests"
    }

    fn read_before_execution(
        &self,
        _ctx: &aws_sdk_ec2::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), aws_sdk_ec2::error::BoxError> {
        OPERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_ec2::config::RuntimeComponents,
        _cfg: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), aws_sdk_ec2::error::BoxError> {
        REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = ctx.request();
        let action = match self.s3_path_style {
            Some(path_style) => {
                let (path, query) = split_uri(request.uri());
                s3_action(request.method(), path, query, path_style).to_string()
            }
            // IAM, STS and EC2 speak AWS's query protocol: the action is a form field.
            None => request
                .body()
                .bytes()
                .and_then(|b| form_field(b, "Action"))
                .unwrap_or_else(|| "(unknown)".to_string()),
        };
        *BY_ACTION
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((self.service, action))
            .or_insert(0) += 1;
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &aws_sdk_ec2::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_ec2::config::RuntimeComponents,
        _cfg: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), aws_sdk_ec2::error::BoxError> {
        let response = ctx.response();
        if response.status().is_client_error() {
            let body = response.body().bytes().map(String::from_utf8_lossy);
            let code = body.as_deref().and_then(|b| xml_text(b, "Code"));
            if code.is_some_and(|c| THROTTLING_CODES.contains(&c.as_str())) {
                THROTTLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// A request URI's path and query (either may be empty), with or without scheme and host.
fn split_uri(uri: &str) -> (&str, &str) {
    let rest = match uri.split_once("://") {
        Some((_, after)) => after.find('/').map_or("", |i| &after[i..]),
        None => uri,
    };
    rest.split_once('?').unwrap_or((rest, ""))
}

/// The S3 action of a request, from its HTTP method, path and query (S3's REST protocol has
/// no action field): the SDK's `x-id` query parameter when it sent one, else what the method
/// does to a bucket or to an object. `bucket_in_path` is path-style addressing, where the
/// first path segment is the bucket and an object's key follows it. The recording proxy of the
/// integration tests names S3 requests with it too, so `--stats` and the proxy agree.
#[must_use]
pub fn s3_action(method: &str, path: &str, query: &str, bucket_in_path: bool) -> &'static str {
    const NAMED: [&str; 7] = [
        "GetObject",
        "PutObject",
        "DeleteObject",
        "DeleteObjects",
        "HeadObject",
        "HeadBucket",
        "ListObjectsV2",
    ];
    let param = |name: &str| {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    };
    if let Some(named) = param("x-id").and_then(|id| NAMED.iter().find(|n| **n == id)) {
        return named;
    }
    let path = path.trim_start_matches('/');
    let object = if bucket_in_path {
        path.split_once('/').is_some_and(|(_, key)| !key.is_empty())
    } else {
        !path.is_empty()
    };
    match (method.to_ascii_uppercase().as_str(), object) {
        ("HEAD", true) => "HeadObject",
        ("HEAD", false) => "HeadBucket",
        ("GET", true) => "GetObject",
        ("GET", false) if param("list-type") == Some("2") => "ListObjectsV2",
        ("GET", false) => "ListObjects",
        ("PUT", true) => "PutObject",
        ("PUT", false) => "CreateBucket",
        ("DELETE", true) => "DeleteObject",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if param("delete").is_some() => "DeleteObjects",
        _ => "(unknown)",
    }
}

/// The value of `name` in a form-encoded body (`Action=CreateRole&Version=...`).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// How many reads a refresh may have in flight at once (`--parallelism`); 10 as apply's.
static PARALLELISM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(10);

/// Sets how many reads a refresh may have in flight. A process setting, like the request
/// counter: one command runs per process, and its flag holds for every provider configuration.
pub(crate) fn set_parallelism(n: usize) {
    PARALLELISM.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

fn parallelism() -> usize {
    PARALLELISM
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1)
}

/// Waits for one of a refresh's slots (`parallelism()` in all), then for a token of the
/// service's bucket (`pace`): a read starts once both allow it.
pub(crate) async fn slot<'a>(
    slots: &'a tokio::sync::Semaphore,
    service: &pace::Pace,
) -> Result<tokio::sync::SemaphorePermit<'a>, ProviderError> {
    // The semaphore lives for one refresh and is never closed; an error would be a bug here.
    let permit = slots
        .acquire()
        .await
        .map_err(|e| ProviderError::new("InternalError", e.to_string()))?;
    service.take().await;
    Ok(permit)
}

/// One provider configuration's clients. The default configuration holds the aliased ones
/// (`provider "aws" { alias = "west" }`) in `aliases`; every `Provider` call picks the
/// configuration its request names (`at`) and runs there, so the type files only ever see the
/// clients of one region and profile.
pub struct AwsProvider {
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) conf: aws_config::SdkConfig,
    pub(crate) region: String,
    /// This configuration's alias; empty for the default.
    pub(crate) alias: String,
    /// The aliased configurations, by alias (only the default's is filled).
    pub(crate) aliases: BTreeMap<String, AwsProvider>,
    /// What the lineage scan read in full in this configuration, by (type, id), for the
    /// refresh that follows it. Each entry serves one refresh and every write empties it: it
    /// is never older than the command's own reads, and a provider lives for one command.
    scanned: Mutex<BTreeMap<(String, String), Attrs>>,
    /// Likewise, the SDK objects the scan listed of the `Read::Objects` types, which their
    /// refresh turns into attributes with the prior ones.
    scanned_objects: Mutex<BTreeMap<(String, String), Vec<resource::Raw>>>,
}

/// Where the provider's settings come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsSettings {
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
}

impl AwsProvider {
    /// The account, ARN and user id behind the credentials (`skyform check` shows them all;
    /// the engine sees only `Provider::identity`).
    pub(crate) async fn caller(&self) -> Result<caller_identity::Caller, ProviderError> {
        caller_identity::caller(self).await
    }

    pub(crate) async fn connect(settings: &AwsSettings) -> Result<AwsProvider, ProviderError> {
        // Adaptive mode: the standard mode's backoff, plus a client-side token bucket per
        // service and region that the first throttling answer turns on and that then paces the
        // requests by CUBIC (faster while none is throttled, slower at once when one is). It
        // is shared by every client of that service in the process, so all of a refresh's
        // concurrent reads slow down together, which a per-call backoff cannot do.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(8));
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &settings.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let conf = loader.load().await;
        let Some(region) = conf.region().map(ToString::to_string) else {
            return Err(ProviderError::new(
                "NoRegion",
                "no AWS region is set: give region in the provider \"aws\" block, or set AWS_REGION",
            ));
        };
        Ok(AwsProvider {
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&conf)
                    .interceptor(CountRequests::query("iam"))
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&conf)
                    .interceptor(CountRequests::query("sts"))
                    .build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&conf)
                    .interceptor(CountRequests::query("ec2"))
                    .build(),
            ),
            conf,
            region,
            alias: String::new(),
            aliases: BTreeMap::new(),
            scanned: Mutex::default(),
            scanned_objects: Mutex::default(),
        })
    }

    /// The default configuration with every aliased one, each with its own settings. A
    /// setting an alias leaves out comes from the environment, as in Terraform.
    pub(crate) async fn connect_all(
        default: &AwsSettings,
        aliases: &BTreeMap<String, AwsSettings>,
    ) -> Result<AwsProvider, ProviderError> {
        let mut p = AwsProvider::connect(default).await?;
        for (alias, settings) in aliases {
            let mut other = AwsProvider::connect(settings).await?;
            other.alias.clone_from(alias);
            p.aliases.insert(alias.clone(), other);
        }
        Ok(p)
    }

    /// The configuration a call names: this one, or one of its aliases.
    pub(crate) fn at(&self, alias: &str) -> Result<&AwsProvider, ProviderError> {
        if alias == self.alias {
            return Ok(self);
        }
        self.aliases.get(alias).ok_or_else(|| {
            ProviderError::new(
                "UnknownProviderConfiguration",
                format!(
                    "there is no provider \"aws\" block with alias = {alias:?}; an object in the state lives in it, so keep the block until the object is destroyed"
                ),
            )
        })
    }

    /// Takes what the lineage scan read of `id`, if it did.
    fn take_scanned(&self, type_name: &str, id: &str) -> Option<Attrs> {
        // A poisoned lock only means a panic elsewhere; the map itself is still whole.
        let mut scanned = self
            .scanned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        scanned.remove(&(type_name.to_string(), id.to_string()))
    }

    /// Takes the SDK objects the lineage scan listed of the `type_name` objects in `priors`.
    fn take_scanned_objects(&self, type_name: &str, priors: &[(String, Attrs)]) -> resource::Raws {
        let mut scanned = self
            .scanned_objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        priors
            .iter()
            .filter_map(|(id, _)| {
                let raws = scanned.remove(&(type_name.to_string(), id.clone()))?;
                Some((id.clone(), raws))
            })
            .collect()
    }

    /// Forgets what every configuration's scan read: a write makes it stale.
    fn forget_scanned(&self) {
        for p in std::iter::once(self).chain(self.aliases.values()) {
            p.scanned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            p.scanned_objects
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
    }

    /// Re-reads the resources of this one configuration. The IAM snapshot's calls and each
    /// type's batched read run at once, at most `parallelism()` of them in flight: a refresh
    /// then takes about as long as its slowest type, not the sum of all of them.
    async fn refresh_here(
        &self,
        requests: &[RefreshRequest],
    ) -> Result<Vec<Option<Attrs>>, ProviderError> {
        // The type files read and compare every tag under `tags`.
        let flat: Vec<RefreshRequest> = requests
            .iter()
            .map(|r| RefreshRequest {
                prior: flatten(r.prior.clone()),
                ..r.clone()
            })
            .collect();
        let requests = &flat[..];
        let slots = tokio::sync::Semaphore::new(parallelism());
        // The other types: one batched Describe per type.
        let reads = registry::RESOURCE_TYPES.iter().map(|t| {
            let slots = &slots;
            async move {
                let of_type = || requests.iter().filter(|r| r.addr.type_name == t.name);
                if matches!(t.read, Read::Snapshot(_)) || of_type().next().is_none() {
                    return Ok(None);
                }
                // Every type read here is EC2's; IAM's are the snapshot's.
                let _slot = slot(slots, &pace::EC2).await?;
                let found = match t.read {
                    Read::Snapshot(_) => return Ok(None),
                    Read::Describe(read_all) => {
                        // What the scan read serves; only the rest (imported objects, or
                        // objects whose lineage tag was removed) is read by id.
                        let mut found = ec2_common::ById::new();
                        let mut missing: Vec<String> = Vec::new();
                        for r in of_type() {
                            match self.take_scanned(t.name, &r.id) {
                                Some(a) => {
                                    found.insert(r.id.clone(), a);
                                }
                                None => missing.push(r.id.clone()),
                            }
                        }
                        if !missing.is_empty() {
                            found.extend(read_all(self, &missing).await?);
                        }
                        found
                    }
                    Read::DescribeWithPrior(read_all) => {
                        let priors: Vec<(String, Attrs)> =
                            of_type().map(|r| (r.id.clone(), r.prior.clone())).collect();
                        read_all(self, &priors).await?
                    }
                    Read::Objects(read_all) => {
                        let priors: Vec<(String, Attrs)> =
                            of_type().map(|r| (r.id.clone(), r.prior.clone())).collect();
                        let raws = self.take_scanned_objects(t.name, &priors);
                        read_all(self, &priors, raws).await?
                    }
                };
                Ok::<_, ProviderError>(Some((t.name, found)))
            }
        });
        let (snapshot, found) = futures_util::future::try_join(
            iam_snapshot::IamSnapshot::load(self, requests, &slots),
            futures_util::future::try_join_all(reads),
        )
        .await?;
        let described: BTreeMap<&str, ec2_common::ById> = found.into_iter().flatten().collect();
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let Some(t) = registry::resource_type(&r.addr.type_name) else {
                return Err(unsupported(&r.addr.type_name));
            };
            out.push(match t.read {
                Read::Snapshot(read) => read(&snapshot, &r.id, &r.prior),
                Read::Describe(_) | Read::DescribeWithPrior(_) | Read::Objects(_) => described
                    .get(t.name)
                    .and_then(|found| found.get(&r.id))
                    .cloned(),
            });
        }
        Ok(out)
    }
}

/// Turns an SDK error into AWS's code and message. moto's IAM and STS access-denied bodies
/// are not parsed by the SDK, so a bare 403 is mapped to `AccessDenied` here.
// By value, so that it reads `.map_err(aws_err)` at each of the many SDK calls.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn aws_err<E>(e: SdkError<E, aws_sdk_iam::config::http::HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    if let (Some(code), message) = (e.code(), e.message()) {
        // A server error (HTTP 5xx, whatever its code: IAM says ServiceFailure) is no proof
        // that nothing was done.
        let kind = match status {
            Some(s) if s >= 500 => ErrorKind::Unknown,
            _ => kind_of(code),
        };
        return ProviderError::new(code, message.unwrap_or_default()).with_kind(kind);
    }
    let text = DisplayErrorContext(&e).to_string();
    if status == Some(403) {
        // The body is still AWS's XML error, only served with a content type the SDK skips.
        let body = e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        return match (xml_text(&body, "Code"), xml_text(&body, "Message")) {
            (Some(code), Some(message)) => ProviderError::new(code, message),
            _ => ProviderError::new("AccessDenied", "access denied (HTTP 403)"),
        };
    }
    if let Some(status) = status {
        // The SDK's own text here embeds the whole raw response; its text alone, shortened,
        // still says what went wrong (an emulator's "action has not been implemented"). A body
        // nobody can read says nothing about whether the call was carried out.
        let body = e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .map(|b| plain_text(&String::from_utf8_lossy(b)))
            .filter(|t| !t.is_empty())
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        return ProviderError::new(
            "UnexpectedResponse",
            format!("AWS answered HTTP {status} with a body the SDK could not read{body}"),
        )
        .with_kind(ErrorKind::Unknown);
    }
    // No answer at all: a cut connection, a timeout, a refused connection.
    ProviderError::new("RequestFailed", text).with_kind(ErrorKind::Unknown)
}

/// What an AWS error code says about the call's outcome. Throttling and validation errors
/// are answered before anything is done; server errors are not proof of anything.
fn kind_of(code: &str) -> ErrorKind {
    match code {
        "EntityAlreadyExists"
        | "InvalidGroup.Duplicate"
        | "InvalidKeyPair.Duplicate"
        | "InvalidPlacementGroup.Duplicate"
        | "RouteAlreadyExists"
        | "Resource.AlreadyAssociated" => ErrorKind::AlreadyExists,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorKind::Unknown,
        _ => ErrorKind::Rejected,
    }
}

/// Runs the rest of a create whose object AWS has already made (attaching, authorizing,
/// waiting, reading back). A failure from here on is never "nothing was made", so the engine
/// keeps its intent open and the next run finds the object.
pub(crate) async fn after_made<T>(
    rest: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    rest.await.map_err(ProviderError::after_partial_write)
}

/// A response body as one short line of text: markup dropped, whitespace collapsed, at most
/// 200 characters.
fn plain_text(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// The text of the first `<tag>` element in an XML error body.
pub(crate) fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().to_string()).filter(|t| !t.is_empty())
}

/// How long to keep retrying IAM's propagation errors ("role not found" right after it was
/// created). `SKYFORM_IAM_PROPAGATION_TIMEOUT` (seconds) changes it.
fn propagation_timeout() -> Duration {
    let secs = std::env::var("SKYFORM_IAM_PROPAGATION_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Retries `f` while `retryable` says the error is IAM catching up, for a bounded time.
pub(crate) async fn retry_propagation<T, F, Fut>(
    mut f: F,
    retryable: impl Fn(&ProviderError) -> bool,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = Instant::now() + propagation_timeout();
    let mut delay = Duration::from_millis(500);
    loop {
        match f().await {
            Err(e) if retryable(&e) && Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

pub(crate) fn is_not_found(e: &ProviderError) -> bool {
    e.code == "NoSuchEntity"
}

/// Attribute helpers over the JSON attribute maps.
pub(crate) fn s<'a>(a: &'a Attrs, key: &str) -> Option<&'a str> {
    a.get(key).and_then(|v| v.as_str())
}

pub(crate) fn req<'a>(a: &'a Attrs, key: &str) -> Result<&'a str, ProviderError> {
    s(a, key).ok_or_else(|| ProviderError::new("MissingAttribute", format!("{key} is required")))
}

pub(crate) fn tags_of(a: &Attrs) -> BTreeMap<String, String> {
    a.get("tags")
        .and_then(|t| t.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

/// skyform's own tags (`skyform:address`, `skyform:lineage`, cluster node tags) are not
/// configuration: reads leave them out, so they are never drift and never removed.
pub(crate) const SYSTEM_TAG_PREFIX: &str = "skyform:";

pub(crate) fn tags_json(tags: &[aws_sdk_iam::types::Tag]) -> serde_json::Value {
    serde_json::Value::Object(
        tags.iter()
            .filter(|t| !t.key().starts_with(SYSTEM_TAG_PREFIX))
            .map(|t| (t.key().to_string(), serde_json::Value::from(t.value())))
            .collect(),
    )
}

/// The planned attributes with `skyform:address` and `skyform:lineage` added to the tags, so
/// that an object whose creation was never recorded can be found again.
fn with_system_tags(type_name: &str, planned: &Attrs, ctx: &OpContext) -> Attrs {
    let mut a = planned.clone();
    // Every type whose schema has tags carries skyform's in its create call.
    let taggable = schemas::registry()
        .resources
        .get(type_name)
        .is_some_and(|s| s.attr("tags").is_some());
    if taggable {
        let mut tags = tags_of(planned);
        tags.insert("skyform:address".into(), ctx.addr.to_string());
        if !ctx.lineage.is_empty() {
            tags.insert("skyform:lineage".into(), ctx.lineage.clone());
        }
        a.insert(
            "tags".into(),
            serde_json::Value::Object(tags.into_iter().map(|(k, v)| (k, v.into())).collect()),
        );
    }
    a
}

/// What a create returns, without skyform's own tags.
fn without_system_tags(mut a: Attrs) -> Attrs {
    if let Some(serde_json::Value::Object(tags)) = a.get_mut("tags") {
        tags.retain(|k, _| !k.starts_with(SYSTEM_TAG_PREFIX));
    }
    a
}

/// The configured tags as the JSON object stored in state.
pub(crate) fn tags_value(a: &Attrs) -> serde_json::Value {
    serde_json::Value::Object(tags_of(a).into_iter().map(|(k, v)| (k, v.into())).collect())
}

/// `sync_tags` for an IAM object: its type's `Untag*`/`Tag*` calls, which the SDK builds with
/// one builder per type and no common trait, so a macro names them:
/// `sync_iam_tags!(p, prior, desired, &mut result, untag_role, tag_role, role_name(name))`.
macro_rules! sync_iam_tags {
    ($p:expr, $prior:expr, $desired:expr, $result:expr, $untag:ident, $tag:ident, $key:ident($id:expr)) => {
        $crate::aws::sync_tags(
            $prior,
            $desired,
            $result,
            |keys| async {
                $p.iam
                    .$untag()
                    .$key($id)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err($crate::aws::aws_err)
            },
            |tags| async {
                $p.iam
                    .$tag()
                    .$key($id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err($crate::aws::aws_err)
            },
        )
    };
}
pub(crate) use sync_iam_tags;

/// Brings an object's tags from `prior` to the configured ones with the type's untag and tag
/// calls, and records them in `result`.
pub(crate) async fn sync_tags<U, T>(
    prior: &Attrs,
    desired: &Attrs,
    result: &mut Attrs,
    untag: impl FnOnce(Vec<String>) -> U,
    tag: impl FnOnce(Vec<aws_sdk_iam::types::Tag>) -> T,
) -> Result<(), ProviderError>
where
    U: Future<Output = Result<(), ProviderError>>,
    T: Future<Output = Result<(), ProviderError>>,
{
    let (add, remove) = tag_changes(&tags_of(prior), &tags_of(desired));
    if !remove.is_empty() {
        untag(remove).await?;
    }
    if !add.is_empty() {
        tag(iam_tags(&add)).await?;
    }
    result.insert("tags".into(), tags_value(desired));
    Ok(())
}

/// Tags to add and keys to remove to get from `old` to `new`.
pub(crate) fn tag_changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let add = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (add, remove)
}

/// A policy document as AWS returned it, decoded to plain JSON text.
pub(crate) fn document(text: &str) -> String {
    crate::aws::policy::parse_document(text).map_or_else(|| text.to_string(), |v| v.to_string())
}

fn unsupported(type_name: &str) -> ProviderError {
    ProviderError::new(
        "UnsupportedType",
        format!("skyform has no AWS implementation for {type_name}"),
    )
}

impl Rules for AwsProvider {
    fn schemas() -> &'static crate::lang::schema::Registry {
        schemas::registry()
    }

    fn check_format(format: &str, value: &str) -> Result<(), String> {
        match format {
            "vpc_cidr" => cidr::check_vpc_range(value).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn same_document(kind: &str, a: &str, b: &str) -> Option<bool> {
        (kind == "iam_policy").then(|| policy::equivalent(a, b))
    }

    fn check_plan(
        planned: &[crate::engine::provider::Planned<'_>],
    ) -> Vec<crate::engine::provider::Problem> {
        let mut problems = cidr::check_plan(planned);
        problems.extend(security_group_rule::check_plan(planned));
        problems.extend(route::check_plan(planned));
        problems.extend(cluster::check_plan(planned));
        problems
    }
}

impl Provider for AwsProvider {
    async fn identity(&self) -> Result<Identity, ProviderError> {
        caller_identity::identity(self).await
    }

    async fn refresh(
        &self,
        requests: &[RefreshRequest],
    ) -> Result<Vec<Option<Attrs>>, ProviderError> {
        // One batch per provider configuration, each read where its objects live; the
        // answers go back in the order asked.
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in requests.iter().enumerate() {
            groups.entry(r.provider.as_str()).or_default().push(i);
        }
        let mut out = vec![None; requests.len()];
        for (alias, indexes) in groups {
            let batch: Vec<RefreshRequest> = indexes.iter().map(|&i| requests[i].clone()).collect();
            let found = self.at(alias)?.refresh_here(&batch).await?;
            for (i, attrs) in indexes.into_iter().zip(found) {
                out[i] = attrs;
            }
        }
        Ok(out)
    }

    async fn read_data(
        &self,
        type_name: &str,
        args: &Attrs,
        provider: &str,
    ) -> Result<Attrs, ProviderError> {
        match registry::data_source(type_name) {
            Some(d) => (d.read)(self.at(provider)?, args).await,
            None => Err(unsupported(type_name)),
        }
    }

    async fn create(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<(String, Attrs), ProviderError> {
        self.forget_scanned();
        let tagged = with_system_tags(type_name, &flatten(planned.clone()), ctx);
        let planned = &tagged;
        let Some(t) = registry::resource_type(type_name) else {
            return Err(unsupported(type_name));
        };
        let p = self.at(&ctx.provider)?;
        let result = nodes::bounded(ctx.timeout, (t.create)(p, planned, ctx)).await;
        result.map(|(id, attrs)| (id, without_system_tags(attrs)))
    }

    async fn evidence(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Attrs, ProviderError> {
        adopt::evidence(
            self.at(&ctx.provider)?,
            type_name,
            &flatten(planned.clone()),
        )
        .await
    }

    async fn find(
        &self,
        type_name: &str,
        lost: Lost<'_>,
        ctx: &OpContext,
    ) -> Result<Found, ProviderError> {
        let planned = flatten(lost.planned.clone());
        let lost = Lost {
            planned: &planned,
            ..lost
        };
        adopt::find(self.at(&ctx.provider)?, type_name, lost, ctx).await
    }

    async fn scan(&self, lineage: &str, types: &[&str]) -> Result<Vec<Scanned>, ProviderError> {
        // Every configuration is looked in: an object's block, and with it its alias, may be
        // gone. Two configurations of one region see the same objects; the first keeps them.
        let mut out: Vec<Scanned> = Vec::new();
        for p in std::iter::once(self).chain(self.aliases.values()) {
            let scan = adopt::scan(p, lineage, types).await?;
            p.scanned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(scan.attrs);
            p.scanned_objects
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(scan.objects);
            for (addr, id) in scan.tagged {
                if !out.iter().any(|s| s.addr == addr && s.id == id) {
                    out.push(Scanned {
                        addr,
                        id,
                        provider: p.alias.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn update(
        &self,
        type_name: &str,
        id: &str,
        prior: &Attrs,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Attrs, ProviderError> {
        self.forget_scanned();
        match registry::resource_type(type_name).and_then(|t| t.update) {
            Some(update) => {
                let (prior, planned) = (flatten(prior.clone()), flatten(planned.clone()));
                let p = self.at(&ctx.provider)?;
                nodes::bounded(ctx.timeout, update(p, id, &prior, &planned, ctx)).await
            }
            None => Err(ProviderError::new(
                "NotUpdatable",
                format!("{type_name} cannot be updated in place"),
            )),
        }
    }

    async fn delete(
        &self,
        type_name: &str,
        id: &str,
        prior: &Attrs,
        ctx: &OpContext,
    ) -> Result<(), ProviderError> {
        self.forget_scanned();
        let result = match registry::resource_type(type_name) {
            Some(t) => {
                let prior = flatten(prior.clone());
                nodes::bounded(ctx.timeout, (t.delete)(self.at(&ctx.provider)?, id, &prior)).await
            }
            None => Err(unsupported(type_name)),
        };
        // Already gone is what a delete wants.
        match result {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{form_field, plain_text, s3_action, split_uri};

    #[test]
    fn an_s3_request_is_named_by_its_method_path_and_query() {
        let named = |method, uri, path_style| {
            let (path, query) = split_uri(uri);
            s3_action(method, path, query, path_style)
        };
        // Path-style, as against moto: the bucket is the first segment.
        let cases = [
            ("PUT", "http://h:1/b/k.skylock?x-id=PutObject", "PutObject"),
            ("PUT", "http://h:1/b/env%3A/s/k.skystate", "PutObject"),
            ("GET", "http://h:1/b/k.skystate?x-id=GetObject", "GetObject"),
            ("GET", "http://h:1/b/k.skystate", "GetObject"),
            ("GET", "http://h:1/b?list-type=2&prefix=k.", "ListObjectsV2"),
            ("GET", "http://h:1/b/", "ListObjects"),
            ("HEAD", "http://h:1/b/k.skystate", "HeadObject"),
            ("HEAD", "http://h:1/b", "HeadBucket"),
            ("DELETE", "http://h:1/b/k.skylock", "DeleteObject"),
            ("POST", "http://h:1/b?delete", "DeleteObjects"),
            ("POST", "http://h:1/b/?delete=", "DeleteObjects"),
            ("PATCH", "http://h:1/b/k", "(unknown)"),
        ];
        for (method, uri, action) in cases {
            assert_eq!(named(method, uri, true), action, "{method} {uri}");
        }
        // Virtual-hosted: the bucket is in the host, every non-empty path is a key.
        assert_eq!(
            named("HEAD", "https://b.s3.amazonaws.com/", false),
            "HeadBucket"
        );
        assert_eq!(
            named("HEAD", "https://b.s3.amazonaws.com/k", false),
            "HeadObject"
        );
        assert_eq!(
            named("GET", "https://b.s3.amazonaws.com/?list-type=2", false),
            "ListObjectsV2"
        );
        assert_eq!(named("head", "/b/k", true), "HeadObject");
    }

    #[test]
    fn the_action_is_read_from_a_query_protocol_body() {
        let body = b"Action=CreateRole&Version=2010-05-08&RoleName=a%2Fb";
        assert_eq!(form_field(body, "Action").as_deref(), Some("CreateRole"));
        assert_eq!(form_field(body, "RoleName").as_deref(), Some("a/b"));
        assert_eq!(form_field(body, "Missing"), None);
        assert_eq!(form_field(b"", "Action"), None);
    }

    #[test]
    fn an_unreadable_error_body_is_shown_as_one_short_line_of_its_text() {
        let html = "<!doctype html>\n<html><title>500</title>\n<p>The CreatePlacementGroup action has not been implemented</p></html>";
        assert_eq!(
            plain_text(html),
            "500 The CreatePlacementGroup action has not been implemented"
        );
        let long = "x ".repeat(300);
        assert_eq!(plain_text(&long).chars().count(), 203);
        assert_eq!(plain_text(""), "");
    }
}
