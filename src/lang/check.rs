//! Top-level `check "name" { assert { condition, error_message } ... }` blocks, parsed and
//! checked as Terraform checks them. Evaluating them (at the end of a plan and of an apply,
//! where a failure is a warning) is the engine's (`engine::checks`).
//!
//! A scoped data source (`data "T" "n" { ... }` inside the check) is loaded by `config` as a
//! data source of its global address, and recorded as the check's: its failures are warnings.

use hcl_edit::structure::Block;
use hcl_edit::Span as _;

use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::lifecycle::Condition;

/// One `check` block.
#[derive(Debug, Clone)]
pub(crate) struct CheckBlock {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) asserts: Vec<Condition>,
}

/// Parses `check "name" { ... }`; `None` when it is too malformed to keep.
pub(crate) fn parse(block: &Block, file: usize, diags: &mut Diagnostics) -> Option<CheckBlock> {
    let span = |r: Option<std::ops::Range<usize>>| Span::new(file, r);
    let [label] = block.labels.as_slice() else {
        diags.push(
            Diagnostic::error(format!(
                "a check block takes 1 label (the check's name), found {}",
                block.labels.len()
            ))
            .named("check")
            .at(span(block.ident.span())),
        );
        return None;
    };
    let name = label.as_str().to_string();
    let owner = format!("check {name:?}");
    for attr in block.body.attributes() {
        diags.push(
            Diagnostic::error(format!(
                "unexpected attribute {:?} in {owner}; it holds assert blocks",
                attr.key.as_str()
            ))
            .named(attr.key.as_str())
            .at(span(attr.key.span())),
        );
    }
    let mut asserts = Vec::new();
    for inner in block.body.blocks() {
        match inner.ident.as_str() {
            "assert" => {
                let what = format!("an assert block in {owner}");
                asserts.extend(crate::lang::lifecycle::condition(inner, file, &what, diags));
            }
            // Loaded by `config` as a data source.
            "data" => {}
            other => diags.push(
                Diagnostic::error(format!(
                    "unexpected block {other:?} in {owner}; only assert blocks belong here"
                ))
                .named(other)
                .at(span(inner.ident.span())),
            ),
        }
    }
    if asserts.is_empty() && !block.body.blocks().any(|b| b.ident.as_str() == "assert") {
        diags.push(
            Diagnostic::error(format!(
                "Missing required block: {owner} needs at least one assert block"
            ))
            .named(name.clone())
            .at(span(label_range(label))),
        );
    }
    Some(CheckBlock {
        name,
        span: span(label_range(label)),
        asserts,
    })
}

fn label_range(label: &hcl_edit::structure::BlockLabel) -> Option<std::ops::Range<usize>> {
    match label {
        hcl_edit::structure::BlockLabel::Ident(i) => i.span(),
        hcl_edit::structure::BlockLabel::String(s) => s.span(),
    }
}

#[cfg(test)]
mod tests {
    use crate::lang::config::load_str;

    fn load(text: &str) -> (crate::lang::config::Config, Vec<String>) {
        let (config, diags) = load_str(&[("c.sky.hcl", text)], crate::aws::schemas::registry());
        (config, diags.0.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn a_check_block_holds_its_assertions() {
        let (config, msgs) = load(
            "check \"names\" {\n  assert {\n    condition = true\n    error_message = \"x\"\n  }\n  assert {\n    condition = 1 == 1\n    error_message = \"y\"\n  }\n}\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(config.checks["names"].asserts.len(), 2);
    }

    #[test]
    fn a_scoped_data_source_is_a_data_source_of_its_check() {
        let (config, msgs) = load(
            "check \"c\" {\n  data \"aws_vpc\" \"v\" {\n    default = true\n  }\n  assert {\n    condition = data.aws_vpc.v.id != \"\"\n    error_message = \"x\"\n  }\n}\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let addr = crate::lang::address::Address::data("aws_vpc", "v");
        assert!(config.resources.contains_key(&addr));
        assert_eq!(config.check_data[&addr], "c");
    }

    #[test]
    fn a_malformed_check_block_gets_clear_errors() {
        for (text, want) in [
            ("check \"c\" {\n  assert {\n    condition = true\n  }\n}\n", "needs \"error_message\""),
            ("check \"c\" {\n}\n", "needs at least one assert block"),
            ("check {\n}\n", "a check block takes 1 label"),
            ("check \"c\" {\n  x = 1\n  assert {\n    condition = true\n    error_message = \"x\"\n  }\n}\n", "unexpected attribute \"x\""),
        ] {
            let (_, msgs) = load(text);
            assert!(msgs.iter().any(|m| m.contains(want)), "{text}: {msgs:?}");
        }
        let twice =
            "check \"c\" {\n  assert {\n    condition = true\n    error_message = \"x\"\n  }\n}\n";
        let (_, msgs) = load(&format!("{twice}{twice}"));
        assert_eq!(msgs, ["duplicate check.c"]);
    }
}
