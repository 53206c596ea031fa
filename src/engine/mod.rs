//! The engine: from a loaded configuration and a state to a plan, and from a plan to a new
//! state, reaching the cloud only through the `provider::Provider` trait.
//!
//! Owns the dependency graph (`graph`), the pure per-resource decision (`diff`), refresh and
//! planning (`plan`), what `lifecycle` blocks do to both (`lifecycle`), top-level `check` blocks (`checks`), recovery from interrupted applies (`reconcile`), the concurrent apply
//! walk (`apply`), saved plan files (`plan_file`: they serialize a `Plan`, so they live here
//! rather than in `state`), and an in-memory cloud for tests (`fake`).
//!
//! May use: `lang` and `state`. Never `aws`, `render` or `cli`.

pub mod apply;
pub(crate) mod checks;
pub(crate) mod default_tags;
pub(crate) mod diff;
pub(crate) mod drift_seen;
pub mod fake;
pub mod graph;
#[cfg(test)]
mod instance_tests;
pub(crate) mod lifecycle;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod module_tests;
pub(crate) mod modules;
pub(crate) mod moves;
pub mod plan;
pub(crate) mod plan_file;
pub(crate) mod provider;
#[cfg(test)]
pub(crate) mod read_tests;
pub(crate) mod reconcile;
#[cfg(test)]
mod refactor_tests;
pub(crate) mod relevance;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tiny_provider_tests;
