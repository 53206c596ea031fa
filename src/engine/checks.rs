//! Top-level `check` blocks: their assertions evaluated against the values known at the end of
//! a plan and of an apply. A failed assertion, or one that cannot be evaluated, is a warning and
//! never stops anything, as in Terraform; one still unknown at plan time is left for the apply.

use crate::engine::lifecycle::{check, When};
use crate::lang::config::Config;
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Severity, Span};
use crate::lang::eval::{EvalCtx, EvalError};

/// The warnings of every `check` block, evaluated in `ctx`; `eval_diag` words evaluation
/// errors as the caller's stage does.
pub(crate) fn run(
    config: &Config,
    ctx: &mut EvalCtx,
    eval_diag: fn(EvalError, &Span, &str) -> Diagnostic,
) -> Diagnostics {
    let mut out = Diagnostics::default();
    for c in config.checks.values() {
        let owner = format!("check.{}", c.name);
        for mut d in check(ctx, &c.asserts, &owner, (When::Assert, None), eval_diag).0 {
            d.severity = Severity::Warning;
            out.push(d);
        }
    }
    out
}
