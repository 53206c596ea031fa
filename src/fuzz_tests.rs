//! Hostile input never panics: arbitrary bytes, and text shaped like HCL (blocks, references,
//! functions, templates, operators, unbalanced brackets), go through loading, validation, the
//! graph, variables and evaluation. `PROPTEST_CASES` sets the number of cases; `scripts/fuzz`
//! runs a long session and reports how many executions ran clean.

use proptest::prelude::*;

use crate::graph::Graph;
use crate::plan::Workspace;
use crate::variables::{resolve, VarInputs};

/// Everything a configuration goes through before AWS is involved.
fn exercise(text: &str) {
    let (config, mut diags) = crate::config::load_str(&[("fuzz.sky.hcl", text)]);
    diags.extend(crate::validate::check(&config));
    let graph = Graph::build(&config);
    diags.extend(graph.cycles(&config));
    let (vars, var_diags) = resolve(&config, &VarInputs::default(), false);
    diags.extend(var_diags);
    // Rendering diagnostics reads spans back out of the sources.
    let _ = diags.render(&config.sources, false);
    if diags.has_errors() {
        return;
    }
    let order = graph.order().unwrap_or_default();
    let ws = Workspace {
        config,
        graph,
        order,
        vars,
        files_read: Default::default(),
    };
    let (_, more) = crate::plan::evaluate_static(&ws);
    let _ = more.render(&ws.config.sources, false);
    let _ = crate::fmt::format_text(text);
    let _ = crate::permissions::for_config(&ws, crate::permissions::Scope::default());
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource \"aws_iam_role\" \"r\" {".to_string()),
        Just("resource \"aws_security_group\" \"g\" {".to_string()),
        Just("data \"aws_vpc\" \"v\" {".to_string()),
        Just("variable \"x\" {".to_string()),
        Just("locals {".to_string()),
        Just("output \"o\" {".to_string()),
        Just("ingress {".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("name".to_string()),
        Just("vpc_id".to_string()),
        Just("cidr_block".to_string()),
        Just("aws_iam_role.r.arn".to_string()),
        Just("var.x".to_string()),
        Just("local.y".to_string()),
        Just("data.aws_vpc.v.id".to_string()),
        Just("jsonencode(".to_string()),
        Just("cidrsubnet(".to_string()),
        Just("lookup(".to_string()),
        Just("\"${var.x}\"".to_string()),
        Just("\"%{ if true }a%{ endif }\"".to_string()),
        Just("<<EOT\nx\nEOT\n".to_string()),
        Just("[for s in var.x : s]".to_string()),
        Just("? 1 : 2".to_string()),
        Just("* 2 / 0 - 1".to_string()),
        Just("\"10.0.0.0/16\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("-1e309".to_string()),
        Just("#".to_string()),
        Just("/*".to_string()),
        "[a-z_]{1,8}".prop_map(String::from),
        "\"[ -~]{0,12}\"".prop_map(String::from),
        (0u32..100_000).prop_map(|n| n.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn hcl_shaped_text_never_panics(tokens in proptest::collection::vec(token(), 0..60)) {
        exercise(&tokens.join(" "));
    }
}
