//! The one integration-test binary: runs the built `skyform` against configuration fixtures
//! and, for AWS behaviour, against a moto server started per test behind a recording proxy.

mod aws_cluster;
mod aws_iam;
mod aws_network;
mod capacity;
mod check_and_policy;
mod checkov;
mod config_errors;
mod data_sources;
mod default_tags;
mod deferred_reads;
mod drift;
mod example_plans;
mod examples_applied;
mod exclude;
mod fmt_differential;
mod iam_inline_policies;
mod instance_attributes;
mod instances;
mod json_format;
mod lang_blocks;
mod modules;
mod nat_gateway;
mod placement_groups;
mod plan_secrets;
mod progress;
mod provider_aliases;
mod reliability;
mod request_counts;
mod review_workflow;
mod routes;
mod safety;
mod security_group_rules;
mod support;
mod terraform_compat;
mod terraform_files;
