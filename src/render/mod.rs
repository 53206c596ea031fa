//! Views of a plan: Terraform's human format (`human`), Terraform's JSON plan representation
//! (`json`), and the pull-request summary (`markdown`). Pure functions from a `Plan` to text.
//!
//! May use: `engine`, `state` and `lang`. Never `aws` or `cli`.

pub(crate) mod human;
pub(crate) mod json;
pub(crate) mod json_config;
pub(crate) mod markdown;
#[cfg(test)]
mod read_tests;
