//! The refactoring blocks: `moved { from, to }`, `removed { from, lifecycle { destroy } }` and
//! `import { to, id, for_each }`, read as Terraform reads them.
//!
//! `moved` and `removed` name addresses literally, so they are parsed into addresses here. An
//! `import` block's `id` (and, with `for_each`, the key in `to`) are expressions, evaluated
//! by the planner like any other.

use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::structure::Block;
use hcl_edit::Span as _;

use crate::lang::address::{Address, Mode};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::expr::Expr;

/// `moved { from = a, to = b }`: `a` in the state is now `b`. Two addresses without keys move
/// a whole resource (every instance keeps its key); otherwise each names one instance, a
/// keyless one being the single instance of a resource without `count` or `for_each` (as in
/// Terraform's `from = aws_instance.a, to = aws_instance.a["small"]`).
#[derive(Debug, Clone)]
pub(crate) struct Moved {
    pub(crate) from: Address,
    pub(crate) to: Address,
    pub(crate) span: Span,
}

/// `removed { from = a }`: `a` leaves the state; with `lifecycle { destroy = false }` its
/// object is left alone in AWS, else it is destroyed.
#[derive(Debug, Clone)]
pub(crate) struct Removed {
    pub(crate) from: Address,
    pub(crate) destroy: bool,
    pub(crate) span: Span,
}

/// `import { to = a, id = "..." }`: the object `id` becomes `a`'s.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    /// The block imported into (its address without a key).
    pub(crate) to: Address,
    /// The instance key of `to`, as written (`[each.key]`, `[0]`), if any.
    pub(crate) key: Option<Expr>,
    pub(crate) id: Expr,
    pub(crate) for_each: Option<Expr>,
    pub(crate) span: Span,
}

struct Reader<'a> {
    file: usize,
    diags: &'a mut Diagnostics,
    owner: &'static str,
}

impl Reader<'_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, range)
    }

    fn error(&mut self, message: String, name: &str, range: Option<std::ops::Range<usize>>) {
        let span = self.span(range);
        self.diags
            .push(Diagnostic::error(message).named(name).at(span));
    }

    /// The attributes of a block with no labels, each checked to be one of `known`.
    fn attrs<'b>(
        &mut self,
        block: &'b Block,
        known: &[&str],
    ) -> std::collections::BTreeMap<&'b str, &'b Expression> {
        if !block.labels.is_empty() {
            self.error(
                format!("a {} block takes no labels", self.owner),
                self.owner,
                block.ident.span(),
            );
        }
        let mut out = std::collections::BTreeMap::new();
        for attr in block.body.attributes() {
            let key = attr.key.as_str();
            if known.contains(&key) {
                out.insert(key, &attr.value);
            } else {
                self.error(
                    format!("unknown attribute {key:?} in a {} block", self.owner),
                    key,
                    attr.key.span(),
                );
            }
        }
        out
    }

    fn required<'b>(
        &mut self,
        block: &Block,
        attrs: &std::collections::BTreeMap<&str, &'b Expression>,
        name: &str,
    ) -> Option<&'b Expression> {
        let found = attrs.get(name).copied();
        if found.is_none() {
            self.error(
                format!("a {} block needs the attribute {name:?}", self.owner),
                name,
                block.ident.span(),
            );
        }
        found
    }

    /// A literal address: `aws_x.y`, `aws_x.y[0]`, `aws_x.y["k"]`, `data.aws_x.y`.
    fn address(&mut self, expr: &Expression, what: &str) -> Option<Address> {
        let text = expr.to_string();
        match text.trim().parse::<Address>() {
            Ok(a) if matches!(expr, Expression::Traversal(_)) => Some(a),
            _ => {
                self.error(
                    format!(
                        "{what} in a {} block must be a resource address such as aws_iam_role.r or aws_iam_role.r[0], not {}",
                        self.owner,
                        text.trim()
                    ),
                    what,
                    expr.span(),
                );
                None
            }
        }
    }
}

/// Reads a `moved` block.
pub(crate) fn moved(block: &Block, file: usize, diags: &mut Diagnostics) -> Option<Moved> {
    let mut r = Reader {
        file,
        diags,
        owner: "moved",
    };
    let attrs = r.attrs(block, &["from", "to"]);
    let from = r.required(block, &attrs, "from");
    let to = r.required(block, &attrs, "to");
    let (from, to) = (r.address(from?, "from")?, r.address(to?, "to")?);
    let span = r.span(block.ident.span());
    if from.mode != Mode::Managed || to.mode != Mode::Managed {
        r.error(
            "moved blocks move managed resources; data sources are read, not kept".into(),
            "moved",
            block.ident.span(),
        );
        return None;
    }
    if from.type_name != to.type_name {
        r.error(
            format!(
                "resource type mismatch: this statement declares a move from {from} to {to}, which is a resource of a different type"
            ),
            "moved",
            block.ident.span(),
        );
        return None;
    }
    // A whole resource on one side and an instance on the other is allowed, as in Terraform:
    // the resource side then means its instance with no key (`a` to `a["x"]` when `for_each`
    // is added), which is how Terraform's documentation moves a resource under `count` or
    // `for_each`.
    Some(Moved { from, to, span })
}

/// Reads a `removed` block.
pub(crate) fn removed(block: &Block, file: usize, diags: &mut Diagnostics) -> Option<Removed> {
    let mut r = Reader {
        file,
        diags,
        owner: "removed",
    };
    let attrs = r.attrs(block, &["from"]);
    let from = r.required(block, &attrs, "from");
    let mut destroy = true;
    for inner in block.body.blocks() {
        if inner.ident.as_str() != "lifecycle" {
            r.error(
                format!(
                    "unexpected block {:?} in a removed block",
                    inner.ident.as_str()
                ),
                inner.ident.as_str(),
                inner.ident.span(),
            );
            continue;
        }
        for attr in inner.body.attributes() {
            match (attr.key.as_str(), &attr.value) {
                ("destroy", Expression::Bool(b)) => destroy = *b.value(),
                ("destroy", v) => r.error(
                    "destroy in a removed block's lifecycle must be true or false".into(),
                    "destroy",
                    v.span(),
                ),
                (key, _) => r.error(
                    format!("unknown attribute {key:?} in a removed block's lifecycle"),
                    key,
                    attr.key.span(),
                ),
            }
        }
    }
    let from = r.address(from?, "from")?;
    let span = r.span(block.ident.span());
    Some(Removed {
        from,
        destroy,
        span,
    })
}

/// Reads an `import` block.
pub(crate) fn import(block: &Block, file: usize, diags: &mut Diagnostics) -> Option<Import> {
    let mut r = Reader {
        file,
        diags,
        owner: "import",
    };
    let attrs = r.attrs(block, &["to", "id", "for_each", "provider"]);
    let to = r.required(block, &attrs, "to");
    let id = r.required(block, &attrs, "id");
    let (to, id) = (to?, id?);
    let span = r.span(block.ident.span());
    let expr = |e: &Expression| Expr {
        expr: Box::new(e.clone()),
        span: Span::new(file, e.span()),
    };
    // `to` is a resource address whose key may be an expression (`aws_x.y[each.key]`).
    let parsed = match to {
        Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
            (Expression::Variable(root), [name, rest @ ..]) if root.as_str() != "data" => {
                match (name.value(), rest) {
                    (TraversalOperator::GetAttr(n), []) => {
                        Some((Address::managed(root.as_str(), n.as_str()), None))
                    }
                    (TraversalOperator::GetAttr(n), [index]) => match index.value() {
                        TraversalOperator::Index(k) => {
                            Some((Address::managed(root.as_str(), n.as_str()), Some(expr(k))))
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    let Some((to_addr, key)) = parsed else {
        r.error(
            format!(
                "to in an import block must be a managed resource address such as aws_iam_role.r or aws_iam_role.r[each.key], not {}",
                to.to_string().trim()
            ),
            "to",
            to.span(),
        );
        return None;
    };
    Some(Import {
        to: to_addr,
        key,
        id: expr(id),
        for_each: attrs.get("for_each").map(|e| expr(e)),
        span,
    })
}
