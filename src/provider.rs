//! The seam between the engine and the cloud.
//!
//! The planner and the apply walk reach AWS only through `Provider`. Reads are batched: the
//! engine hands over every resource in state at once, and the implementation groups them by
//! service (one `GetAccountAuthorizationDetails` for all of IAM, for example). `AwsProvider`
//! (in `aws/`) is the real implementation; `FakeProvider` (in `fake.rs`) is an in-memory cloud
//! for unit tests.

use crate::address::Address;
use crate::state::Attrs;

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// One resource to re-read.
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    pub addr: Address,
    pub id: String,
    /// The attributes in state; values AWS never returns again (an access key's secret) are
    /// carried over from here.
    pub prior: Attrs,
}

/// Who is asking for a write: the resource's address and the state's lineage. Providers use
/// them for idempotency tokens (a retried launch must not launch twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpContext {
    pub addr: Address,
    pub lineage: String,
}

/// A failed cloud call, with AWS's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProviderError {
    pub code: String,
    pub message: String,
}

impl ProviderError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ProviderError {
        ProviderError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What the engine needs from a cloud. Every method takes the schema's attribute names and
/// returns them, with `id` and computed attributes filled in.
#[allow(async_fn_in_trait)] // the engine is generic over P and never needs Send futures
pub trait Provider {
    async fn identity(&self) -> Result<Identity, ProviderError>;
    /// Re-reads resources; `None` in the answer means the object no longer exists.
    async fn refresh(
        &self,
        requests: &[RefreshRequest],
    ) -> Result<Vec<Option<Attrs>>, ProviderError>;
    async fn read_data(&self, type_name: &str, args: &Attrs) -> Result<Attrs, ProviderError>;
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
    async fn delete(&self, type_name: &str, id: &str, prior: &Attrs) -> Result<(), ProviderError>;
    /// Looks for an object that a create with these attributes, by this address and lineage,
    /// may have made without its outcome being recorded (a crash): by its skyform tags, or for
    /// IAM by its unique name. Returns its id and attributes when found.
    async fn find(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Option<(String, Attrs)>, ProviderError>;
    /// Every object that carries this lineage's `skyform:lineage` tag, as (the address in its
    /// `skyform:address` tag, id): what this state created, recorded or not.
    /// Only `types` are looked at, so a configuration is never asked for permissions it does
    /// not otherwise need.
    async fn scan(
        &self,
        lineage: &str,
        types: &[&str],
    ) -> Result<Vec<(Address, String)>, ProviderError>;
}
