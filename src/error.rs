//! Operational errors and how they map to the exit code (always 1; `plan
//! --detailed-exitcode` uses 2 for "changes", which is not an error).

use crate::lang::diagnostic::{Diagnostics, Sources};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .1.render(.0, false))]
    Config(Box<Sources>, Diagnostics),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("AWS: {0}")]
    Provider(#[from] crate::engine::provider::ProviderError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
