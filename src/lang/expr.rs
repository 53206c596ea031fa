//! An expression with the place it was written: what every block keeps of its attributes
//! until the planner evaluates them.

use hcl_edit::expr::Expression;

use crate::lang::diagnostic::Span;

/// An expression and where it is. The syntax tree is boxed: a block keeps its attributes in a
/// `BTreeMap`, whose nodes hold eleven entries each whatever the count, and an unboxed
/// `Expression` made those nodes most of a resource block's memory (heaptrack, issue 16).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) expr: Box<Expression>,
    pub(crate) span: Span,
}
