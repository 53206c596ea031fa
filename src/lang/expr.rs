//! An expression with the place it was written: what every block keeps of its attributes
//! until the planner evaluates them.

use hcl_edit::expr::Expression;

use crate::lang::diagnostic::Span;

/// An expression and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) expr: Expression,
    pub(crate) span: Span,
}
