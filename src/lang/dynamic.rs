//! Nested blocks (`ingress { ... }`) and Terraform's `dynamic` blocks, turned at load time into
//! the list expressions they stand for.
//!
//! A nested block is the object of its attributes, and every block of one name is one list
//! attribute. A `dynamic "ingress" { for_each = X, iterator = it, content { ... } }` becomes
//! `[for it in [for k, v in X : { key = k, value = v }] : { ...content... }]`, and static and
//! dynamic blocks of one name are joined with `concat` in the order written. Because the result
//! is an ordinary expression, evaluation, references (graph edges), unknowns at plan time and
//! validation need nothing of their own. Blocks inside a nested block become list attributes of
//! its object in the same way, so dynamic blocks nest.

use std::collections::BTreeMap;

use hcl_edit::expr::{
    Array, Expression, ForExpr, ForIntro, FuncArgs, FuncCall, Object, ObjectKey, ObjectValue,
};
use hcl_edit::structure::{Block, Body};
use hcl_edit::{Decorated, Ident, Span as _};

use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::schema::{AttrType, Field};

/// The fields of a nested block's object, by the block's name; `None` when no nested block of
/// that name belongs where it is written.
pub(crate) type FieldsOf<'s> = dyn Fn(&str) -> Option<&'s BTreeMap<String, Field>> + 's;

/// The fields of a nested block whose list attribute has type `t` (`set(object)` or
/// `list(object)`).
pub(crate) fn object_fields(t: &AttrType) -> Option<&BTreeMap<String, Field>> {
    match t {
        AttrType::Set(inner) | AttrType::List(inner) => match inner.as_ref() {
            AttrType::Object(fields) => Some(fields),
            _ => None,
        },
        _ => None,
    }
}

/// The blocks of one name, in the order written: runs of static blocks and dynamic blocks.
enum Segment {
    Static(Vec<Expression>),
    Dynamic(Expression),
}

/// Builds the list attributes of nested blocks, reporting what does not belong.
pub(crate) struct Nested<'a> {
    pub(crate) file: usize,
    pub(crate) diags: &'a mut Diagnostics,
}

impl Nested<'_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, range)
    }

    fn error(&mut self, message: String, name: &str, range: Option<std::ops::Range<usize>>) {
        let d = Diagnostic::error(message).named(name).at(self.span(range));
        self.diags.push(d);
    }

    /// The list attribute of every block name among `blocks` (static and dynamic blocks),
    /// each with the span of its first block. `owner` names the place in messages.
    pub(crate) fn lists<'b>(
        &mut self,
        blocks: impl IntoIterator<Item = &'b Block>,
        fields_of: &FieldsOf<'_>,
        owner: &str,
    ) -> BTreeMap<String, (Expression, Span)> {
        let mut lists: BTreeMap<String, (Span, Vec<Segment>)> = BTreeMap::new();
        for block in blocks {
            let ident = block.ident.as_str();
            if ident == "dynamic" {
                if let Some((name, expr)) = self.dynamic(block, fields_of, owner) {
                    let span = self.span(block.ident.span());
                    lists
                        .entry(name)
                        .or_insert_with(|| (span, Vec::new()))
                        .1
                        .push(Segment::Dynamic(expr));
                }
                continue;
            }
            let Some(fields) = fields_of(ident) else {
                self.error(
                    format!("unexpected block {ident:?} in {owner}"),
                    ident,
                    block.ident.span(),
                );
                continue;
            };
            if !block.labels.is_empty() {
                self.error(
                    format!("a {ident:?} block takes no labels, in {owner}"),
                    ident,
                    block.ident.span(),
                );
                continue;
            }
            let object = self.object(&block.body, fields, &format!("{ident}, in {owner}"));
            let span = self.span(block.ident.span());
            let segments = &mut lists
                .entry(ident.to_string())
                .or_insert_with(|| (span, Vec::new()))
                .1;
            if let Some(Segment::Static(items)) = segments.last_mut() {
                items.push(object);
            } else {
                segments.push(Segment::Static(vec![object]));
            }
        }
        lists
            .into_iter()
            .map(|(name, (span, segments))| (name, (join(segments), span)))
            .collect()
    }

    /// The object a nested block's body stands for; its own nested blocks become list fields.
    fn object(&mut self, body: &Body, fields: &BTreeMap<String, Field>, owner: &str) -> Expression {
        let mut object = Object::new();
        for a in body.attributes() {
            object.insert(
                ObjectKey::Ident(a.key.clone()),
                ObjectValue::new(a.value.clone()),
            );
        }
        let fields_of = |n: &str| fields.get(n).and_then(|f| object_fields(&f.ty));
        for (name, (expr, span)) in self.lists(body.blocks(), &fields_of, owner) {
            if body.get_attribute(&name).is_some() {
                self.diags.push(
                    Diagnostic::error(format!(
                        "{name} is given both as an attribute and as blocks, in {owner}"
                    ))
                    .named(name)
                    .at(span),
                );
                continue;
            }
            object.insert(
                ObjectKey::Ident(Decorated::new(Ident::new_sanitized(&name))),
                ObjectValue::new(expr),
            );
        }
        Expression::Object(object)
    }

    /// A `dynamic "name" { ... }` block: the name it generates and the list expression.
    fn dynamic(
        &mut self,
        block: &Block,
        fields_of: &FieldsOf<'_>,
        owner: &str,
    ) -> Option<(String, Expression)> {
        let [label] = block.labels.as_slice() else {
            self.error(
                format!(
                    "a dynamic block takes 1 label (the type of the blocks it generates), found {}, in {owner}",
                    block.labels.len()
                ),
                "dynamic",
                block.ident.span(),
            );
            return None;
        };
        let name = label.as_str();
        let where_ = format!("dynamic {name:?}, in {owner}");
        let Some(fields) = fields_of(name) else {
            self.error(
                format!(
                    "Unsupported block type: blocks of type {name:?} are not expected here, in {owner}"
                ),
                name,
                block.ident.span(),
            );
            return None;
        };
        let mut for_each = None;
        let mut iterator = None;
        let mut ok = true;
        for attr in block.body.attributes() {
            match attr.key.as_str() {
                "for_each" => for_each = Some(attr.value.clone()),
                "iterator" => {
                    if let Expression::Variable(v) = &attr.value {
                        iterator = Some(v.clone());
                    } else {
                        self.error(
                            format!(
                                "Invalid dynamic iterator name: dynamic iterator must be a single variable name, in {where_}"
                            ),
                            "iterator",
                            attr.value.span(),
                        );
                        ok = false;
                    }
                }
                // The nested blocks of AWS's schemas take no labels, so only none fits.
                "labels" => {
                    if !matches!(&attr.value, Expression::Array(a) if a.is_empty()) {
                        self.error(
                            format!(
                                "{name:?} blocks take no labels, so labels must be [], in {where_}"
                            ),
                            "labels",
                            attr.value.span(),
                        );
                        ok = false;
                    }
                }
                other => {
                    self.error(
                        format!(
                            "unknown attribute {other:?} in {where_}; a dynamic block takes for_each, iterator, labels and a content block"
                        ),
                        other,
                        attr.key.span(),
                    );
                    ok = false;
                }
            }
        }
        let mut content = None;
        for inner in block.body.blocks() {
            let ident = inner.ident.as_str();
            if ident != "content" || !inner.labels.is_empty() || content.is_some() {
                let why = if ident != "content" {
                    format!("unexpected block {ident:?} in {where_}; only one content block belongs here")
                } else if content.is_some() {
                    format!("duplicate content block in {where_}")
                } else {
                    format!("a content block takes no labels, in {where_}")
                };
                self.error(why, ident, inner.ident.span());
                ok = false;
                continue;
            }
            content = Some(self.object(&inner.body, fields, &where_));
        }
        let Some(for_each) = for_each else {
            self.error(
                format!(
                    "Missing required argument: the argument \"for_each\" is required, but no definition was found, in {where_}"
                ),
                name,
                block.ident.span(),
            );
            return None;
        };
        let Some(content) = content else {
            self.error(
                format!(
                    "Missing content block: a dynamic block must have a nested block of type \"content\" to describe the body of each generated block, in {where_}"
                ),
                name,
                block.ident.span(),
            );
            return None;
        };
        if !ok {
            return None;
        }
        let iterator = iterator.unwrap_or_else(|| Decorated::new(Ident::new_sanitized(name)));
        Some((name.to_string(), generate(for_each, iterator, content)))
    }
}

/// `[for it in [for k, v in for_each : { key = k, value = v }] : content]`.
fn generate(for_each: Expression, iterator: Decorated<Ident>, content: Expression) -> Expression {
    let mut entry = Object::new();
    for (field, var) in [("key", "k"), ("value", "v")] {
        entry.insert(
            ObjectKey::Ident(Decorated::new(Ident::new_sanitized(field))),
            ObjectValue::new(Expression::Variable(Decorated::new(Ident::new_sanitized(
                var,
            )))),
        );
    }
    let mut pairs_intro = ForIntro::new(Ident::new_sanitized("v"), for_each);
    pairs_intro.key_var = Some(Decorated::new(Ident::new_sanitized("k")));
    let pairs = ForExpr::new(pairs_intro, Expression::Object(entry));
    let list = ForExpr::new(
        ForIntro::new(iterator, Expression::ForExpr(Box::new(pairs))),
        content,
    );
    Expression::ForExpr(Box::new(list))
}

/// One list expression for the segments of one block name.
fn join(segments: Vec<Segment>) -> Expression {
    let mut parts: Vec<Expression> = segments
        .into_iter()
        .map(|s| match s {
            Segment::Static(items) => Expression::Array(Array::from(items)),
            Segment::Dynamic(e) => e,
        })
        .collect();
    if parts.len() == 1 {
        if let Some(only) = parts.pop() {
            return only;
        }
    }
    Expression::FuncCall(Box::new(FuncCall::new(
        Ident::new_sanitized("concat"),
        FuncArgs::from(parts),
    )))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::lang::address::Address;
    use crate::lang::config::load_str;
    use crate::lang::eval::EvalCtx;
    use crate::lang::value::Value;

    fn load(body: &str) -> (crate::lang::config::Config, Vec<String>) {
        let (config, diags) = load_str(&[("main.sky.hcl", body)], crate::aws::schemas::registry());
        let msgs = diags.0.iter().map(|d| d.message.clone()).collect();
        (config, msgs)
    }

    fn ingress(config: &crate::lang::config::Config, ports: &[f64]) -> Value {
        let mut ctx = EvalCtx::new(PathBuf::from("."));
        ctx.set(
            &["var", "ports"],
            Value::List(ports.iter().map(|p| Value::Number(*p)).collect()),
        );
        let sg = &config.resources[&Address::managed("aws_security_group", "sg")];
        ctx.eval_top(&sg.attrs["ingress"].value.expr).unwrap().0
    }

    fn ports_of(v: &Value) -> Vec<(f64, String)> {
        let Value::List(items) = v else {
            panic!("not a list: {v:?}")
        };
        items
            .iter()
            .map(|i| {
                let Value::Object(o) = i else { panic!("{i:?}") };
                let Value::Number(p) = o["from_port"] else {
                    panic!("{o:?}")
                };
                (
                    p,
                    o.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }

    const SG: &str = r#"
resource "aws_security_group" "sg" {
  name = "web"
  ingress {
    from_port = 22
    to_port = 22
    protocol = "tcp"
    description = "static"
  }
  dynamic "ingress" {
    for_each = var.ports
    iterator = port
    content {
      from_port = port.value
      to_port = port.value
      protocol = "tcp"
      description = "rule ${port.key}"
    }
  }
  ingress {
    from_port = 8080
    to_port = 8080
    protocol = "tcp"
    description = "last"
  }
}
"#;

    #[test]
    fn dynamic_blocks_join_static_blocks_of_their_name_in_the_order_written() {
        let (config, msgs) = load(SG);
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(
            ports_of(&ingress(&config, &[80.0, 443.0])),
            [
                (22.0, "static".to_string()),
                (80.0, "rule 0".to_string()),
                (443.0, "rule 1".to_string()),
                (8080.0, "last".to_string()),
            ]
        );
        assert_eq!(ports_of(&ingress(&config, &[])).len(), 2);
    }

    #[test]
    fn the_iterator_defaults_to_the_block_name_and_unknown_for_each_gives_unknown() {
        let (config, msgs) = load(
            r#"
resource "aws_security_group" "sg" {
  name = "web"
  dynamic "ingress" {
    for_each = var.ports
    content {
      from_port = ingress.value
      to_port = ingress.value
      protocol = "tcp"
    }
  }
}
"#,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(ports_of(&ingress(&config, &[5.0])), [(5.0, String::new())]);
        let mut ctx = EvalCtx::new(PathBuf::from("."));
        ctx.set(&["var", "ports"], Value::Unknown);
        let sg = &config.resources[&Address::managed("aws_security_group", "sg")];
        let (v, _) = ctx.eval_top(&sg.attrs["ingress"].value.expr).unwrap();
        assert_eq!(v, Value::Unknown);
    }

    #[test]
    fn a_dynamic_blocks_for_each_is_a_reference_but_its_iterator_is_not() {
        let (config, _) = load(
            r#"
resource "aws_security_group" "sg" {
  name = "web"
  dynamic "ingress" {
    for_each = { a = aws_vpc.v.cidr_block }
    content {
      from_port = 1
      to_port = 1
      protocol = "tcp"
      cidr_blocks = [ingress.value]
    }
  }
}
"#,
        );
        let sg = &config.resources[&Address::managed("aws_security_group", "sg")];
        let (refs, _) = crate::lang::eval::references(&sg.attrs["ingress"].value.expr);
        let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["aws_vpc.v.cidr_block"]);
    }

    #[test]
    fn a_dynamic_block_is_checked_as_terraform_checks_it() {
        let cases = [
            (
                "dynamic \"rule\" {\n for_each = []\n content {}\n}",
                "Unsupported block type: blocks of type \"rule\" are not expected here",
            ),
            (
                "dynamic \"ingress\" {\n content {}\n}",
                "Missing required argument: the argument \"for_each\" is required",
            ),
            (
                "dynamic \"ingress\" {\n for_each = []\n}",
                "Missing content block",
            ),
            (
                "dynamic \"ingress\" {\n for_each = []\n iterator = a.b\n content {}\n}",
                "Invalid dynamic iterator name",
            ),
            (
                "dynamic \"ingress\" {\n for_each = []\n labels = [\"x\"]\n content {}\n}",
                "labels must be []",
            ),
            (
                "dynamic {\n for_each = []\n content {}\n}",
                "a dynamic block takes 1 label",
            ),
            (
                "dynamic \"ingress\" {\n for_each = []\n content {\n nope {}\n }\n}",
                "unexpected block \"nope\" in dynamic \"ingress\"",
            ),
        ];
        for (inner, want) in cases {
            let (_, msgs) = load(&format!(
                "resource \"aws_security_group\" \"sg\" {{\n  name = \"web\"\n  {inner}\n}}\n"
            ));
            assert!(msgs.iter().any(|m| m.contains(want)), "{inner}: {msgs:?}");
        }
    }

    /// No AWS schema here has a block inside a nested block yet, so the fields are made up:
    /// `rule { port = N, source { cidr = "..." }... }`.
    #[test]
    fn a_dynamic_block_inside_a_nested_block_becomes_a_list_field_of_its_object() {
        use crate::lang::schema::{AttrType, Field};
        use std::collections::BTreeMap;
        let field = |ty| Field {
            ty,
            required: false,
            default: None,
            description: String::new(),
        };
        let source = BTreeMap::from([("cidr".to_string(), field(AttrType::String))]);
        let rule = BTreeMap::from([
            ("port".to_string(), field(AttrType::Number)),
            (
                "source".to_string(),
                field(AttrType::List(Box::new(AttrType::Object(source)))),
            ),
        ]);
        let body = hcl_edit::parser::parse_body(
            r#"
dynamic "rule" {
  for_each = { web = ["10.0.0.0/8", "192.168.0.0/16"], ssh = [] }
  content {
    port = rule.key == "web" ? 443 : 22
    source {
      cidr = "127.0.0.1/32"
    }
    dynamic "source" {
      for_each = rule.value
      iterator = net
      content {
        cidr = net.value
      }
    }
  }
}
"#,
        )
        .unwrap();
        let mut diags = crate::lang::diagnostic::Diagnostics::default();
        let fields_of = |n: &str| (n == "rule").then_some(&rule);
        let lists = super::Nested {
            file: 0,
            diags: &mut diags,
        }
        .lists(body.blocks(), &fields_of, "a test");
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = EvalCtx::new(PathBuf::from("."));
        let (value, _) = ctx.eval_top(&lists["rule"].0).unwrap();
        let cidrs = |i: usize| -> Vec<String> {
            let Value::List(rules) = &value else {
                panic!("{value:?}")
            };
            let Value::Object(rule) = &rules[i] else {
                panic!("{rules:?}")
            };
            let Value::List(sources) = &rule["source"] else {
                panic!("{rule:?}")
            };
            sources
                .iter()
                .map(|s| match s {
                    Value::Object(o) => o["cidr"].as_str().unwrap_or_default().to_string(),
                    _ => panic!("{s:?}"),
                })
                .collect()
        };
        // Map keys are iterated in order: "ssh", then "web".
        assert_eq!(cidrs(0), ["127.0.0.1/32"]);
        assert_eq!(cidrs(1), ["127.0.0.1/32", "10.0.0.0/8", "192.168.0.0/16"]);
    }
}
