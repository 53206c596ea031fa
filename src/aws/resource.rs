//! What one AWS resource type (or data source) gives the provider: a `Resource` is the
//! struct of functions each type's file fills in, and `registry.rs` lists them. Also the
//! helpers those functions share for finding what a lost create made.
//!
//! The functions are plain `fn` pointers returning boxed futures rather than a trait with
//! `async fn`: a table of `&dyn Trait` cannot hold async methods without boxing anyway, and a
//! struct lets each entry say which read path and which recovery it uses as data that the
//! provider and the tests can inspect. One allocation per call is nothing next to the network
//! round trip it waits for.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_ec2::types::Filter;

use super::ec2_common::{filter, ById};
use super::iam_snapshot::IamSnapshot;
use super::AwsProvider;
use crate::engine::provider::{
    Found, Lost, OpContext, Provider as _, ProviderError, RefreshRequest,
};
use crate::state::Attrs;

/// A boxed AWS call that borrows the provider and the arguments for `'a`. Not `Send`: the engine
/// never moves provider futures across threads.
pub(crate) type AwsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + 'a>>;

/// One object that a Describe by tag filters returned: its tags, its id, and what the lineage
/// scan keeps of it for the refresh that follows (`Kept`).
pub(crate) type Tagged = (Vec<aws_sdk_ec2::types::Tag>, String, Kept);

/// An SDK object as a listing returned it (an `Instance`, an `Address`), kept for the refresh
/// that turns it into attributes with the prior ones. Type-erased because each type keeps its
/// own SDK struct and only its own read looks inside.
pub(crate) type Raw = Box<dyn std::any::Any + Send>;

/// The SDK objects the lineage scan listed, by id (a cluster has one per node).
pub(crate) type Raws = BTreeMap<String, Vec<Raw>>;

/// What the lineage scan keeps of a listed object so that the refresh need not ask again.
pub(crate) enum Kept {
    /// Nothing: the refresh reads the object by id.
    Nothing,
    /// The very attributes a refresh by id reads (`Read::Describe`).
    Attrs(Attrs),
    /// The SDK object, which the type's `Read::Objects` read turns into attributes with the
    /// prior ones.
    Object(Raw),
}

/// One object of a Describe by tag filters: its tags and id.
pub(crate) fn tagged(tags: &[aws_sdk_ec2::types::Tag], id: Option<&str>) -> Tagged {
    (
        tags.to_vec(),
        id.unwrap_or_default().to_string(),
        Kept::Nothing,
    )
}

/// One object of a full read by filters: its tags, id and attributes.
pub(crate) fn described(tags: &[aws_sdk_ec2::types::Tag], id: &str, attrs: Attrs) -> Tagged {
    (tags.to_vec(), id.to_string(), Kept::Attrs(attrs))
}

/// One listed SDK object, kept whole for a `Read::Objects` refresh.
pub(crate) fn listed<T: Send + 'static>(
    tags: &[aws_sdk_ec2::types::Tag],
    id: Option<&str>,
    object: T,
) -> Tagged {
    (
        tags.to_vec(),
        id.unwrap_or_default().to_string(),
        Kept::Object(Box::new(object)),
    )
}

/// A full read's objects by id, as refresh wants them.
pub(crate) fn by_id(found: Vec<Tagged>) -> ById {
    found
        .into_iter()
        .filter_map(|(_, id, kept)| match kept {
            Kept::Attrs(a) => Some((id, a)),
            Kept::Nothing | Kept::Object(_) => None,
        })
        .collect()
}

/// The SDK objects (of type `T`) of the ids in `priors`: those the lineage scan kept, and
/// the others from `list_missing`, called with their ids only when there are any.
pub(crate) async fn kept_or_listed<T: 'static, Fut>(
    priors: &[(String, Attrs)],
    mut raws: Raws,
    list_missing: impl FnOnce(Vec<String>) -> Fut,
) -> Result<Vec<T>, ProviderError>
where
    Fut: Future<Output = Result<Vec<T>, ProviderError>>,
{
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (id, _) in priors {
        let objects: Vec<T> = raws
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.downcast::<T>().ok().map(|o| *o))
            .collect();
        if objects.is_empty() {
            missing.push(id.clone());
        } else {
            found.extend(objects);
        }
    }
    if !missing.is_empty() {
        found.extend(list_missing(missing).await?);
    }
    Ok(found)
}

pub(crate) type Create =
    for<'a> fn(&'a AwsProvider, &'a Attrs, &'a OpContext) -> AwsFuture<'a, (String, Attrs)>;
pub(crate) type Update = for<'a> fn(
    &'a AwsProvider,
    &'a str,
    &'a Attrs,
    &'a Attrs,
    &'a OpContext,
) -> AwsFuture<'a, Attrs>;
pub(crate) type Delete = for<'a> fn(&'a AwsProvider, &'a str, &'a Attrs) -> AwsFuture<'a, ()>;
pub(crate) type DescribeTagged =
    for<'a> fn(&'a AwsProvider, Vec<Filter>) -> AwsFuture<'a, Vec<Tagged>>;
pub(crate) type Evidence = for<'a> fn(&'a AwsProvider, &'a Attrs) -> AwsFuture<'a, Attrs>;

pub(crate) type ReadIds = for<'a> fn(&'a AwsProvider, &'a [String]) -> AwsFuture<'a, ById>;
pub(crate) type ReadWithPrior =
    for<'a> fn(&'a AwsProvider, &'a [(String, Attrs)]) -> AwsFuture<'a, ById>;
pub(crate) type ReadObjects =
    for<'a> fn(&'a AwsProvider, &'a [(String, Attrs)], Raws) -> AwsFuture<'a, ById>;

/// How refresh reads a type: every type is read in one batch per refresh.
pub(crate) enum Read {
    /// From the IAM snapshot refresh loads once for all IAM types: (snapshot, id, prior).
    Snapshot(fn(&IamSnapshot, &str, &Attrs) -> Option<Attrs>),
    /// With one Describe of its own, filtered by the ids in state.
    Describe(ReadIds),
    /// With one Describe of its own, given each id with its prior attributes (what AWS never
    /// shows again, like an instance's user data, is carried over from them).
    DescribeWithPrior(ReadWithPrior),
    /// Like `DescribeWithPrior`, given as well the SDK objects the lineage scan listed (of
    /// the ids it saw): the type turns those into attributes with the prior ones and
    /// describes only the other ids, so a plan lists the type once.
    Objects(ReadObjects),
}

/// How the object of a create whose outcome was lost is found again (`Provider::find`).
pub(crate) enum Recover {
    /// By the `skyform:address` and `skyform:lineage` tags it was created with, through the
    /// type's `describe_tagged`.
    Tags,
    /// By its unique `name`: the function answers the object's id and tags, or `None` when no
    /// object has that name; it is adopted only when it carries this lineage's tags.
    UniqueName(for<'a> fn(&'a AwsProvider, &'a str) -> AwsFuture<'a, Option<Named>>),
    /// By what identifies it (an attachment's pair, a key's evidence): the type decides.
    Identity(for<'a> fn(&'a AwsProvider, Lost<'a>, &'a OpContext) -> AwsFuture<'a, Found>),
}

/// An object found by its unique name: its id and its tags as pairs.
pub(crate) struct Named {
    pub(crate) id: String,
    pub(crate) tags: Vec<(String, String)>,
}

/// One resource type: everything the provider does with it goes through these.
pub(crate) struct Resource {
    /// The schema's type name (`aws_vpc`).
    pub(crate) name: &'static str,
    /// The schema file's text (`schemas/aws_vpc.json`, embedded): the type's attributes.
    pub(crate) schema: &'static str,
    pub(crate) read: Read,
    pub(crate) create: Create,
    /// `None` when every change replaces the object (its settable attributes are all
    /// `force_new`; a test holds the schemas to that).
    pub(crate) update: Option<Update>,
    /// Deletes by id; an object already gone is success (the caller sees to that).
    pub(crate) delete: Delete,
    pub(crate) recover: Recover,
    /// Lists the type's objects that match tag filters, for the lineage scan and
    /// `Recover::Tags`. `None` for types never scanned: IAM objects are found by their unique
    /// names, so intents are enough.
    pub(crate) describe_tagged: Option<DescribeTagged>,
    /// What to record before a create so that its object can be told from others afterwards
    /// (`Provider::evidence`); `None` for the types that need nothing.
    pub(crate) evidence: Option<Evidence>,
}

/// One data source.
pub(crate) struct DataSource {
    /// The schema's type name (`aws_subnets`).
    pub(crate) name: &'static str,
    /// The schema file's text (`schemas/data/aws_subnets.json`, embedded).
    pub(crate) schema: &'static str,
    pub(crate) read: for<'a> fn(&'a AwsProvider, &'a Attrs) -> AwsFuture<'a, Attrs>,
}

/// Whether an object's tags say this address in this lineage made it.
pub(crate) fn ours(tags: &[(String, String)], ctx: &OpContext) -> bool {
    tags.iter()
        .any(|(k, v)| k == "skyform:lineage" && v == &ctx.lineage)
        && tags
            .iter()
            .any(|(k, v)| k == "skyform:address" && *v == ctx.addr.to_string())
}

pub(crate) fn iam_pairs(tags: &[aws_sdk_iam::types::Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// The tag filters that find what this address created in this lineage.
pub(crate) fn tag_filters(ctx: &OpContext) -> Vec<Filter> {
    vec![
        filter("tag:skyform:address", &[ctx.addr.to_string()]),
        filter("tag:skyform:lineage", std::slice::from_ref(&ctx.lineage)),
    ]
}

/// Reads an object through the normal refresh path, by id, so that what is adopted looks
/// exactly like what the next refresh will read.
pub(crate) async fn read_back(
    p: &AwsProvider,
    ctx: &OpContext,
    id: &str,
    prior: &Attrs,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let found = p
        .refresh(&[RefreshRequest {
            addr: ctx.addr.clone(),
            id: id.to_string(),
            prior: prior.clone(),
            provider: ctx.provider.clone(),
        }])
        .await?;
    Ok(found
        .into_iter()
        .next()
        .flatten()
        .map(|a| (id.to_string(), a)))
}

/// Finds a lost create's object that is identified by two of its planned attributes joined
/// into its id (`ROLE/POLICY_ARN`, `ROLE:NAME`): objects without tags or an id of their own,
/// for which an existing object with those attributes is what the create made. Nothing when
/// either attribute is unknown.
pub(crate) async fn find_by_pair(
    p: &AwsProvider,
    lost: Lost<'_>,
    ctx: &OpContext,
    (first, sep, second): (&str, char, &str),
) -> Result<Found, ProviderError> {
    let planned = lost.planned;
    let (Some(a), Some(b)) = (super::s(planned, first), super::s(planned, second)) else {
        return Ok(Found::Nothing);
    };
    Ok(adopted(
        read_back(p, ctx, &format!("{a}{sep}{b}"), planned).await?,
    ))
}

/// Adopts what a read found; nothing when nothing was.
pub(crate) fn adopted(found: Option<(String, Attrs)>) -> Found {
    found.map_or(Found::Nothing, |(id, attrs)| Found::Adopt { id, attrs })
}

/// A read by unique name where "no such entity" means no object, not a failure.
pub(crate) fn absent_when_missing<T>(
    result: Result<Option<T>, ProviderError>,
) -> Result<Option<T>, ProviderError> {
    match result {
        Err(e) if super::is_not_found(&e) => Ok(None),
        other => other,
    }
}
