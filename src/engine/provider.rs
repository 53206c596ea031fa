//! The seam between the engine and the cloud.
//!
//! The planner and the apply walk reach AWS only through `Provider`. Reads are batched: the
//! engine hands over every resource in state at once, and the implementation groups them by
//! service (one `GetAccountAuthorizationDetails` for all of IAM, for example). `AwsProvider`
//! (in `aws/`) is the real implementation; `FakeProvider` (in `fake.rs`) is an in-memory cloud
//! for unit tests.

use crate::lang::address::Address;
use crate::lang::schema::Registry;
use crate::lang::value::Value;
use crate::state::Attrs;

/// Who the credentials belong to, as the engine sees it: an opaque principal within a
/// tenant (for AWS, an ARN within an account). The engine only compares them; the provider
/// and the command line say what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Where the principal lives; another tenant's objects are never written.
    pub(crate) tenant: String,
    pub(crate) principal: String,
}

/// One resource to re-read.
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    pub(crate) addr: Address,
    pub(crate) id: String,
    /// The attributes in state; values AWS never returns again (an access key's secret) are
    /// carried over from here.
    pub(crate) prior: Attrs,
    /// The provider configuration the object lives in: the alias (`west` for `aws.west`), or
    /// empty for the default one. It comes from the state, so that an object whose block is
    /// gone is still read where it is.
    pub(crate) provider: String,
}

/// Who is asking for a write: the resource's address and the state's lineage. Providers use
/// them for idempotency tokens (a retried launch must not launch twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpContext {
    pub(crate) addr: Address,
    pub(crate) lineage: String,
    /// How long the provider may wait for this operation to settle (the block's `timeouts`
    /// for it); `None` leaves the provider's default.
    pub(crate) timeout: Option<std::time::Duration>,
    /// The provider configuration to call (see `RefreshRequest::provider`): the block's for a
    /// create or update, the state's for a delete.
    pub(crate) provider: String,
}

/// One object the lineage scan found: the address in its `skyform:address` tag, its id, and
/// the provider configuration (alias, empty for the default) it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub(crate) addr: Address,
    pub(crate) id: String,
    pub(crate) provider: String,
}

/// What a failed call tells about the cloud afterwards. The engine keeps a write-ahead intent
/// open only when the outcome is unknown: an answered error changed nothing, so there is
/// nothing to look for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The cloud answered with an error: the call changed nothing.
    Rejected,
    /// The cloud answered that the object already exists: this call made nothing, but an
    /// object by that name or key is there (perhaps one an interrupted apply made).
    AlreadyExists,
    /// No answer, a cut connection, a timeout, a server error, or a failure after part of a
    /// multi-call create: something may have been made.
    Unknown,
}

/// A failed cloud call, with AWS's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProviderError {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) kind: ErrorKind,
}

impl ProviderError {
    /// An answered error: nothing was changed.
    pub(crate) fn new(code: impl Into<String>, message: impl Into<String>) -> ProviderError {
        ProviderError {
            code: code.into(),
            message: message.into(),
            kind: ErrorKind::Rejected,
        }
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> ProviderError {
        self.kind = kind;
        self
    }

    /// The same error, raised after an earlier call of the same operation already changed
    /// something (the second call of a two-call create): the outcome is no longer "nothing".
    #[must_use]
    pub(crate) fn after_partial_write(self) -> ProviderError {
        self.with_kind(ErrorKind::Unknown)
    }
}

/// What a create that was interrupted, or that conflicted with an existing object, may have
/// left: the engine asks the provider to look, and acts on the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// Nothing this state made.
    Nothing,
    /// This object is what the create made: record it.
    Adopt { id: String, attrs: Attrs },
    /// This object is what the create made, but it cannot be used as it is (an access key
    /// whose secret was never recorded): record it and plan its replacement, for this reason.
    Replace {
        id: String,
        attrs: Attrs,
        reason: String,
    },
    /// Several objects could be it and nothing proves which: touch none, and say so.
    Ambiguous { ids: Vec<String>, reason: String },
}

/// What the engine knows about a create whose outcome it never heard.
#[derive(Debug, Clone, Copy)]
pub struct Lost<'a> {
    /// The attributes the create was called with.
    pub(crate) planned: &'a Attrs,
    /// What `Provider::evidence` recorded before the call.
    pub(crate) evidence: &'a Attrs,
    /// The ids of this type that the state already holds: never candidates.
    pub(crate) known_ids: &'a [String],
}

/// One resource (or data source) as a plan meets it, for the provider's plan-time checks.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    /// The instance's address.
    pub(crate) addr: Address,
    /// The evaluated attributes (unknown where not known yet); a data source's results.
    pub(crate) attrs: std::borrow::Cow<'a, std::collections::BTreeMap<String, Value>>,
    /// For each attribute, the resources and data sources its expression refers to.
    /// Shared by the instances of a block: they read the same.
    pub(crate) refs: BlockRefs,
}

/// For each attribute of a block, the resources and data sources its expression refers to.
pub(crate) type BlockRefs =
    std::sync::Arc<std::collections::BTreeMap<String, std::collections::BTreeSet<Address>>>;

/// A provider rule that a planned resource breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub(crate) addr: Address,
    /// The attribute at fault, where one is.
    pub(crate) attr: Option<String>,
    pub(crate) message: String,
}

/// A provider's rules that need no connection, so that `validate` can apply them too: its
/// schemas (the resource types it offers), attribute formats its schemas name
/// (`check_format`), the kinds of document they hold (`same_document`), and checks across
/// resources (`check_plan`, like Terraform's `CustomizeDiff`). The engine knows the rules only
/// through these.
pub trait Rules {
    /// Every resource and data source type, with its attributes.
    fn schemas() -> &'static Registry;
    /// Checks a value of an attribute whose schema names a `format`; `Err` says what is wrong.
    fn check_format(format: &str, value: &str) -> Result<(), String> {
        let _ = (format, value);
        Ok(())
    }
    /// Whether two documents of a schema `kind` mean the same; `None` for a kind the provider
    /// has no rule for (they are then compared as JSON).
    fn same_document(kind: &str, a: &str, b: &str) -> Option<bool> {
        let _ = (kind, a, b);
        None
    }
    /// Checks across the planned resources, in plan order (a subnet's range inside its VPC's).
    fn check_plan(planned: &[Planned<'_>]) -> Vec<Problem> {
        let _ = planned;
        Vec::new()
    }
}

/// What the engine needs from a cloud. Every method takes the schema's attribute names and
/// returns them, with `id` and computed attributes filled in.
///
/// Tags (`engine::default_tags`): for a type with `tags_all`, what the provider is given holds
/// under `tags_all` every tag the object should carry, and what it returns holds every tag the
/// object carries under `tags` (or echoes `tags_all`); the engine tells the two apart.
///
/// Besides the calls, a provider has its `Rules`.
#[allow(async_fn_in_trait)] // the engine is generic over P and never needs Send futures
pub trait Provider: Rules {
    async fn identity(&self) -> Result<Identity, ProviderError>;
    /// Re-reads resources; `None` in the answer means the object no longer exists.
    async fn refresh(
        &self,
        requests: &[RefreshRequest],
    ) -> Result<Vec<Option<Attrs>>, ProviderError>;
    /// Reads a data source through the provider configuration `provider` (an alias, or empty
    /// for the default).
    async fn read_data(
        &self,
        type_name: &str,
        args: &Attrs,
        provider: &str,
    ) -> Result<Attrs, ProviderError>;
    /// Creates an object; returns its id and attributes.
    async fn create(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<(String, Attrs), ProviderError>;
    async fn update(
        &self,
        type_name: &str,
        id: &str,
        prior: &Attrs,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Attrs, ProviderError>;
    async fn delete(
        &self,
        type_name: &str,
        id: &str,
        prior: &Attrs,
        ctx: &OpContext,
    ) -> Result<(), ProviderError>;
    /// Records, before a create, what will tell its object from others afterwards (for an
    /// access key, the keys the user already has). Read-only. Most types need nothing.
    async fn evidence(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Attrs, ProviderError> {
        let _ = (type_name, planned, ctx);
        Ok(Attrs::new())
    }
    /// Looks for an object that a create with these attributes, by this address and lineage,
    /// may have made without its outcome being recorded (a crash, or a conflict on create): by
    /// its skyform tags, its unique name, or for objects that carry neither by what identifies
    /// them and the evidence recorded before the call. Read-only: it never writes, so `plan`
    /// can call it. It may answer only what it can prove this state made.
    async fn find(
        &self,
        type_name: &str,
        lost: Lost<'_>,
        ctx: &OpContext,
    ) -> Result<Found, ProviderError>;
    /// Every object that carries this lineage's `skyform:lineage` tag, in every provider
    /// configuration: what this state created, recorded or not.
    /// Only `types` are looked at, so a configuration is never asked for permissions it does
    /// not otherwise need.
    async fn scan(&self, lineage: &str, types: &[&str]) -> Result<Vec<Scanned>, ProviderError>;
}
