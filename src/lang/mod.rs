//! The language: everything about a configuration that needs neither AWS nor a state.
//!
//! Owns loading `*.sky.hcl` and `*.tf` into typed blocks with spans (`config`), the
//! `terraform {}` block (`terraform`), nested and `dynamic` blocks (`dynamic`), `lifecycle`
//! blocks (`lifecycle`), `check` blocks (`check`), diagnostics (`diagnostic`), values with
//! unknowns and sensitivity (`value`), addresses (`address`), the schemas that define every
//! attribute (`schema`), expressions with their places (`expr`), their evaluation (`eval`) and
//! functions (`functions`), the instances of `count` and `for_each` (`expand`), variables
//! (`variables`), the refactoring blocks `moved`, `removed` and `import` (`refactor`), static
//! checks (`validate`), the canonical layout (`fmt`), the digests the rest of skyform uses
//! (`digest`), and JSON documents in attributes (`document`).
//!
//! May use: nothing else in skyform. Everything else uses it.

pub(crate) mod address;
pub(crate) mod check;
pub mod config;
pub(crate) mod diagnostic;
pub(crate) mod digest;
pub mod document;
pub(crate) mod dynamic;
pub(crate) mod eval;
pub(crate) mod expand;
pub(crate) mod expr;
pub(crate) mod fmt;
pub(crate) mod functions;
pub(crate) mod lifecycle;
pub(crate) mod refactor;
pub(crate) mod schema;
pub(crate) mod terraform;
pub(crate) mod tf_json;
pub mod validate;
pub(crate) mod value;
pub mod variables;
