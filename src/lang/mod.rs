//! The language: everything about a configuration that needs neither AWS nor a state.
//!
//! Owns loading `*.sky.hcl` into typed blocks with spans (`config`), diagnostics (`diagnostic`),
//! values with unknowns and sensitivity (`value`), addresses (`address`), the schemas that
//! define every attribute (`schema`), expressions (`eval`) and their functions (`functions`),
//! variables (`variables`), static checks (`validate`), the canonical layout (`fmt`), the
//! digests the rest of skyform uses (`digest`), and JSON documents in attributes (`document`).
//!
//! May use: nothing else in skyform. Everything else uses it.

pub mod address;
pub mod config;
pub mod diagnostic;
pub mod digest;
pub mod document;
pub mod eval;
pub mod fmt;
pub mod functions;
pub mod schema;
pub mod validate;
pub mod value;
pub mod variables;
