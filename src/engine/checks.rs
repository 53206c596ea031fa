//! Top-level `check` blocks: their assertions evaluated against the values known at the end of
//! a plan and of an apply. A failed assertion, or one that cannot be evaluated, is a warning and
//! never stops anything, as in Terraform; one still unknown at plan time is left for the apply.
//! So are the problems of a check's scoped data source.

use crate::engine::lifecycle::{check, When};
use crate::lang::address::Address;
use crate::lang::config::Config;
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Severity, Span};
use crate::lang::eval::{EvalCtx, EvalError};

/// A scoped data source's problems (`data` inside a `check`) as warnings, as Terraform reports
/// them; any other resource's stay as they are.
pub(crate) fn scoped(config: &Config, addr: &Address, diags: Diagnostics) -> Diagnostics {
    let Some(check) = config.check_data.get(addr) else {
        return diags;
    };
    let mut out = Diagnostics::default();
    for mut d in diags.0 {
        d.severity = Severity::Warning;
        d.notes.push(format!(
            "{addr} belongs to check.{check}, so this does not stop the plan"
        ));
        out.push(d);
    }
    out
}

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
