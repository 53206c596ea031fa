//! The `terraform {}` block: `required_version` checked against the Terraform language version
//! skyform implements, `required_providers` limited to `aws`, and `backend` reported as ignored.
//!
//! Nothing here is kept in the `Config`: the block only decides whether the configuration may
//! be used by skyform at all, so it produces diagnostics and nothing else.

use hcl_edit::expr::Expression;
use hcl_edit::structure::Block;
use hcl_edit::Span as _;

use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};

/// The Terraform language version whose semantics skyform follows; `required_version` is
/// checked against it, as Terraform checks its own version.
pub(crate) const TERRAFORM_VERSION: &str = "1.5.7";

/// Checks one `terraform {}` block of source `file`.
pub(crate) fn check_block(block: &Block, file: usize, diags: &mut Diagnostics) {
    let span = |range: Option<std::ops::Range<usize>>| Span::new(file, range);
    if !block.labels.is_empty() {
        diags.push(
            Diagnostic::error("a terraform block takes no labels")
                .named("terraform")
                .at(span(block.ident.span())),
        );
    }
    for attr in block.body.attributes() {
        let key = attr.key.as_str();
        match key {
            "required_version" => {
                if let Expression::String(s) = &attr.value {
                    if let Err(d) = check_required_version(s.value()) {
                        diags.push(d.named(key).at(span(attr.value.span())));
                    }
                } else {
                    diags.push(
                        Diagnostic::error("required_version must be a literal string")
                            .named(key)
                            .at(span(attr.value.span())),
                    );
                }
            }
            // Terraform's experiments change the language; skyform implements none of them.
            _ => diags.push(
                Diagnostic::error(format!("{key:?} is not supported in a terraform block"))
                    .named(key)
                    .at(span(attr.key.span())),
            ),
        }
    }
    for inner in block.body.blocks() {
        let name = inner.ident.as_str();
        match name {
            "required_providers" => {
                for attr in inner.body.attributes() {
                    let provider = attr.key.as_str();
                    if provider != "aws" {
                        diags.push(
                            Diagnostic::error(format!(
                                "provider {provider:?} is not supported; skyform manages AWS only"
                            ))
                            .named(provider)
                            .at(span(attr.key.span())),
                        );
                    }
                }
                for nested in inner.body.blocks() {
                    diags.push(
                        Diagnostic::error(format!(
                            "unexpected block {:?} in required_providers",
                            nested.ident.as_str()
                        ))
                        .named(nested.ident.as_str())
                        .at(span(nested.ident.span())),
                    );
                }
            }
            // Silently dropping a backend would let someone believe their state is remote.
            "backend" => diags.push(
                Diagnostic::warning(
                    "the backend block is ignored: skyform keeps its state in .skyform/state.db",
                )
                .named("backend")
                .at(span(inner.ident.span())),
            ),
            _ => diags.push(
                Diagnostic::error(format!(
                    "{name:?} blocks are not supported in a terraform block"
                ))
                .named(name)
                .at(span(inner.ident.span())),
            ),
        }
    }
}

/// A version as Terraform's constraints compare it: missing segments are zero.
type Version = [u64; 3];

/// Parses `1`, `1.2` or `1.2.3`, returning the version and how many segments were written.
fn parse_version(text: &str) -> Option<(Version, usize)> {
    let mut out = [0; 3];
    let mut n = 0;
    for part in text.trim().trim_start_matches('v').split('.') {
        if n == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out[n] = part.parse().ok()?;
        n += 1;
    }
    (n > 0).then_some((out, n))
}

/// Whether `version` meets one constraint such as `>= 1.3` or `~> 1.5.0`.
fn meets(version: Version, constraint: &str) -> Result<bool, String> {
    let c = constraint.trim();
    let ops = ["~>", ">=", "<=", "!=", ">", "<", "="];
    let (op, rest) = ops
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("=", c));
    let (want, segments) =
        parse_version(rest).ok_or_else(|| format!("invalid version constraint {constraint:?}"))?;
    Ok(match op {
        ">=" => version >= want,
        "<=" => version <= want,
        "!=" => version != want,
        ">" => version > want,
        "<" => version < want,
        // The pessimistic operator lets only the last written segment grow.
        "~>" => version >= want && version[..segments - 1] == want[..segments - 1],
        _ => version == want,
    })
}

/// Checks a `required_version` string (comma-separated constraints, all of which must hold).
fn check_required_version(constraints: &str) -> Result<(), Diagnostic> {
    let (ours, _) = parse_version(TERRAFORM_VERSION).unwrap_or(([0; 3], 0));
    for constraint in constraints.split(',') {
        match meets(ours, constraint) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Diagnostic::error(format!(
                    "Unsupported Terraform Core version: this configuration does not support \
                     Terraform version {TERRAFORM_VERSION}, the language version skyform \
                     implements"
                ))
                .note(format!("required_version = {constraints:?}")));
            }
            Err(msg) => return Err(Diagnostic::error(msg)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constraints_follow_terraform_operators() {
        let v = [1, 5, 7];
        for (c, want) in [
            (">= 1.0", true),
            ("1.5.7", true),
            ("= 1.5.6", false),
            ("~> 1.5.0", true),
            ("~> 1.4.0", false),
            ("~> 1.2", true),
            ("~> 0.12", false),
            ("< 1.5.7", false),
            ("!= 1.5.7", false),
            ("> 1.5", true),
        ] {
            assert_eq!(meets(v, c), Ok(want), "{c}");
        }
        assert!(meets(v, ">= one").is_err());
    }

    #[test]
    fn every_constraint_of_a_list_must_hold() {
        assert!(check_required_version(">= 1.0, < 2.0").is_ok());
        let err = check_required_version(">= 1.0, < 1.5").unwrap_err();
        assert!(err.message.contains("Unsupported Terraform Core version"));
        assert!(err.message.contains(TERRAFORM_VERSION));
    }
}
