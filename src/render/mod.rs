//! Views of a plan: Terraform's human format (`human`), Terraform's JSON plan representation
//! (`json`), the pull-request summary (`markdown`), and `skyform drift`'s report (`drift`). Pure
//! functions from a `Plan` to text.
//!
//! May use: `engine`, `state` and `lang`. Never `aws` or `cli`.

pub(crate) mod drift;
pub(crate) mod human;
pub(crate) mod json;
pub(crate) mod json_config;
pub(crate) mod markdown;
#[cfg(test)]
mod read_tests;
