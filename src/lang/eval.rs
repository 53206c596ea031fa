//! Expression evaluation and reference discovery over hcl-edit syntax trees.
//!
//! skyform evaluates expressions itself instead of using `hcl::eval`, for two reasons: values
//! that exist only after apply must flow through as `Value::Unknown` (so the plan can say
//! "(known after apply)"), and every error needs the span of the sub-expression at fault.
//! Reading a sensitive value (a sensitive variable, an access key secret) marks the result
//! sensitive, so the renderer can mask anything derived from it. Every file a function reads
//! is recorded (`FilesRead`), so that a saved plan can prove at apply time that it is unchanged.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::{Directive, Element, Template};
use hcl_edit::Span as _;

use crate::lang::address::{Address, InstanceKey};
use crate::lang::functions::{Files, FilesRead};
use crate::lang::value::Value;

/// An evaluation failure at a place in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EvalError {
    pub(crate) message: String,
    pub(crate) range: Option<Range<usize>>,
}

impl EvalError {
    fn new(message: impl Into<String>, range: Option<Range<usize>>) -> EvalError {
        EvalError {
            message: message.into(),
            range,
        }
    }
}

/// The default workspace's name: what `terraform.workspace` reads unless another workspace
/// is selected (`skyform workspace select`, `SKYFORM_WORKSPACE`).
pub(crate) const WORKSPACE: &str = "default";

/// What expressions can see: `var`, `local`, `data`, `path` and one root per resource type.
#[derive(Debug, Default)]
pub(crate) struct EvalCtx {
    pub(crate) roots: BTreeMap<String, Value>,
    /// Paths (`["var", "password"]`, `["aws_iam_access_key", "k", "secret"]`) whose values are
    /// sensitive, and so is anything computed from them.
    pub(crate) sensitive: BTreeSet<Vec<String>>,
    /// The configuration's files, for `file()` and its kin.
    pub(crate) files: Files,
    touched_sensitive: Cell<bool>,
    /// The variables of the `for` expressions being evaluated, innermost last, each with the
    /// path it stands for when it iterates over a resource's instances
    /// (`for k in aws_iam_access_key.keys`): reading `k.id` is then judged by the path
    /// `aws_iam_access_key.keys.id`, so only the instances' sensitive attributes mark what
    /// reads them, as Terraform's marks on values do.
    aliases: RefCell<Vec<(String, Option<Vec<String>>)>>,
    /// The module instance whose names `roots` and `sensitive` hold (the root: empty).
    current: crate::lang::address::ModuleInstance,
    /// The names of every other module instance, kept while another is current.
    parked: BTreeMap<crate::lang::address::ModuleInstance, Scope>,
}

/// The names one module instance sees.
#[derive(Debug, Default)]
struct Scope {
    roots: BTreeMap<String, Value>,
    sensitive: BTreeSet<Vec<String>>,
}

impl EvalCtx {
    pub(crate) fn new(base_dir: PathBuf) -> EvalCtx {
        EvalCtx {
            files: Files {
                base_dir,
                read: FilesRead::default(),
            },
            ..EvalCtx::default()
        }
    }

    /// Makes module instance `module` the one whose names expressions see (created empty the
    /// first time). Each module instance has its own `var`, `local`, resources and `module`.
    pub(crate) fn enter(&mut self, module: &[crate::lang::address::ModuleStep]) {
        if self.current == module {
            return;
        }
        let leaving = Scope {
            roots: std::mem::take(&mut self.roots),
            sensitive: std::mem::take(&mut self.sensitive),
        };
        let previous = std::mem::replace(&mut self.current, module.to_vec());
        self.parked.insert(previous, leaving);
        let entering = self.parked.remove(module).unwrap_or_default();
        self.roots = entering.roots;
        self.sensitive = entering.sensitive;
    }

    /// Evaluates an expression of the root module from wherever evaluation is: the provider
    /// block's `default_tags` apply to the resources of every module, but read the root's
    /// names. Only the names the expression reads are copied out of the root's scope.
    pub(crate) fn eval_top_in_root(&self, expr: &Expression) -> Result<(Value, bool), EvalError> {
        let Some(root) = self
            .parked
            .get(&Vec::new())
            .filter(|_| !self.current.is_empty())
        else {
            return self.eval_top(expr);
        };
        let mut names = BTreeSet::new();
        for r in references(expr).0 {
            names.insert(match r.target {
                RefTarget::Var(_) => "var".to_string(),
                RefTarget::Local(_) => "local".to_string(),
                RefTarget::Path => "path".to_string(),
                RefTarget::Terraform => "terraform".to_string(),
                RefTarget::Module(_) => "module".to_string(),
                RefTarget::Resource(a) if a.mode == crate::lang::address::Mode::Data => {
                    "data".to_string()
                }
                RefTarget::Resource(a) => a.type_name,
                RefTarget::Count(_) | RefTarget::Each(_) | RefTarget::Unknown(_) => continue,
            });
        }
        let view = EvalCtx {
            roots: names
                .into_iter()
                .filter_map(|n| root.roots.get(&n).map(|v| (n, v.clone())))
                .collect(),
            sensitive: root.sensitive.clone(),
            files: Files {
                base_dir: self.files.base_dir.clone(),
                read: self.files.read.clone(),
            },
            ..EvalCtx::default()
        };
        view.eval_top(expr)
    }

    /// The module instance being evaluated.
    pub(crate) fn current(&self) -> &[crate::lang::address::ModuleStep] {
        &self.current
    }

    /// Sets `root.key` (for `var.x`) or `root.key.name` (for `data.T.n`) in the context.
    pub(crate) fn set(&mut self, path: &[&str], value: Value) {
        if let Some(slot) = self.slot(path) {
            *slot = value;
        }
    }

    /// The place at `path` among the roots, made (as objects) where it is missing; `None` for
    /// an empty path.
    pub(crate) fn slot(&mut self, path: &[&str]) -> Option<&mut Value> {
        let (first, rest) = path.split_first()?;
        let mut slot = self
            .roots
            .entry((*first).to_string())
            .or_insert_with(|| Value::Object(BTreeMap::new()));
        for key in rest {
            slot = object_entry(slot, key);
        }
        Some(slot)
    }

    /// Stores a resource's value under its address. An instance's value goes into its
    /// block's value: the list of a `count` block, the map of a `for_each` block.
    pub(crate) fn set_resource(&mut self, addr: &Address, value: Value) {
        let path = match addr.mode {
            crate::lang::address::Mode::Managed => vec![addr.type_name.as_str(), &addr.name],
            crate::lang::address::Mode::Data => vec!["data", &addr.type_name, &addr.name],
        };
        let Some(slot) = self.slot(&path) else { return };
        let slot = match &addr.key {
            None => Some(slot),
            Some(key) => instance_slot(slot, key),
        };
        if let Some(slot) = slot {
            *slot = value;
        }
    }

    /// Makes `count.index`, or `each.key` and `each.value`, visible for one instance's
    /// evaluation; `None` hides them again.
    pub(crate) fn set_instance(&mut self, instance: Option<(&InstanceKey, Option<&Value>)>) {
        self.roots.remove("count");
        self.roots.remove("each");
        match instance {
            None => {}
            Some((key @ InstanceKey::Int(_), _)) => {
                self.set(&["count", "index"], key.to_value());
            }
            Some((key @ InstanceKey::Str(_), value)) => {
                self.set(&["each", "key"], key.to_value());
                self.set(&["each", "value"], value.cloned().unwrap_or(Value::Unknown));
            }
        }
    }

    /// Evaluates an expression and reports whether it read anything sensitive.
    pub(crate) fn eval_top(&self, expr: &Expression) -> Result<(Value, bool), EvalError> {
        self.touched_sensitive.set(false);
        let v = self.eval(expr, &mut Vec::new())?;
        Ok((v, self.touched_sensitive.get()))
    }

    /// `templatefile(path, vars)`: the file is a template that sees only `vars` (and the
    /// functions), as in Terraform, so it is rendered in a context of its own; the read is
    /// recorded like `file()`'s.
    fn templatefile(
        &self,
        call: &hcl_edit::expr::FuncCall,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        let fail = |m: String| EvalError::new(format!("templatefile(): {m}"), call.span());
        let mut args = Vec::new();
        for a in &call.args {
            args.push(self.eval(a, locals)?);
        }
        let [path, vars] = &args[..] else {
            return Err(fail(format!("takes 2 argument(s), got {}", args.len())));
        };
        if path.contains_unknown() || vars.contains_unknown() {
            return Ok(Value::Unknown);
        }
        let Value::String(path) = path else {
            return Err(fail(format!(
                "the path must be a string, found {}",
                path.type_name()
            )));
        };
        let Value::Object(vars) = vars else {
            return Err(fail("invalid vars value: must be a map".into()));
        };
        let (full, bytes) = crate::lang::functions::read_file(&self.files, path).map_err(fail)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| fail(format!("{} is not UTF-8 text", full.display())))?;
        let template =
            hcl_edit::parser::parse_template(&text).map_err(|e| fail(format!("{path}: {e}")))?;
        let inner = EvalCtx {
            roots: vars.clone(),
            files: self.files.clone(),
            ..EvalCtx::default()
        };
        inner
            .template(&template, &mut Vec::new())
            .map_err(|e| fail(format!("{path}: {}", e.message)))
    }

    /// `try` and `can` see their arguments' errors, so they evaluate them themselves. As in
    /// Terraform, a result that is not yet wholly known makes the answer unknown: the value
    /// after apply might still fail.
    fn try_or_can(
        &self,
        call: &hcl_edit::expr::FuncCall,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        let name = call.name.name.as_str();
        let fail = |m: String| EvalError::new(format!("{name}(): {m}"), call.span());
        if name == "can" {
            let args: Vec<&Expression> = call.args.iter().collect();
            let [arg] = args[..] else {
                return Err(fail(format!("takes 1 argument(s), got {}", args.len())));
            };
            return Ok(match self.eval(arg, locals) {
                Ok(v) if v.contains_unknown() => Value::Unknown,
                Ok(_) => Value::Bool(true),
                Err(_) => Value::Bool(false),
            });
        }
        if call.args.is_empty() {
            return Err(fail("at least one argument is required".into()));
        }
        let mut errors = Vec::new();
        for arg in &call.args {
            match self.eval(arg, locals) {
                Ok(v) if v.contains_unknown() => return Ok(Value::Unknown),
                Ok(v) => return Ok(v),
                Err(e) => errors.push(format!("- {}", e.message)),
            }
        }
        Err(fail(format!(
            "no expression succeeded:\n{}\nAt least one expression must produce a successful result",
            errors.join("\n")
        )))
    }

    fn eval(
        &self,
        expr: &Expression,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(0.0))),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, locals)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(obj) => {
                let mut out = BTreeMap::new();
                for (key, value) in obj {
                    let k = match key {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(e) => match self.eval(e, locals)? {
                            Value::Unknown => return Ok(Value::Unknown),
                            v => v.to_template_string().ok_or_else(|| {
                                EvalError::new(
                                    format!("object key must be a string, found {}", v.type_name()),
                                    e.span(),
                                )
                            })?,
                        },
                    };
                    out.insert(k, self.eval(value.expr(), locals)?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => {
                // Terraform 0.11's `"${var.x}"` is, as in Terraform, the value itself rather
                // than its string form: a list stays a list.
                let mut elements = t.iter();
                if let (Some(Element::Interpolation(i)), None) = (elements.next(), elements.next())
                {
                    return self.eval(&i.expr, locals);
                }
                self.template(t, locals)
            }
            Expression::HeredocTemplate(h) => self.template(&h.template, locals),
            Expression::Parenthesis(p) => self.eval(p.inner(), locals),
            Expression::Variable(v) => self.lookup(v, locals, true),
            Expression::Conditional(c) => match self.eval(&c.cond_expr, locals)? {
                Value::Unknown => Ok(Value::Unknown),
                v if as_bool(&v) == Some(true) => self.eval(&c.true_expr, locals),
                v if as_bool(&v) == Some(false) => self.eval(&c.false_expr, locals),
                v => Err(EvalError::new(
                    format!("condition must be a bool, found {}", v.type_name()),
                    c.cond_expr.span(),
                )),
            },
            Expression::FuncCall(call) if call.name.name.as_str() == "templatefile" => {
                self.templatefile(call, locals)
            }
            Expression::FuncCall(call) if matches!(call.name.name.as_str(), "try" | "can") => {
                self.try_or_can(call, locals)
            }
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                let mut args = Vec::with_capacity(call.args.len());
                for a in &call.args {
                    args.push(self.eval(a, locals)?);
                }
                if call.args.expand_final() {
                    match args.pop() {
                        Some(Value::List(items)) => args.extend(items),
                        Some(Value::Unknown) => return Ok(Value::Unknown),
                        Some(v) => {
                            return Err(EvalError::new(
                                format!("cannot expand a {} with ...", v.type_name()),
                                call.span(),
                            ))
                        }
                        None => {}
                    }
                }
                crate::lang::functions::call(name, &args, &self.files)
                    .map_err(|m| EvalError::new(format!("{name}(): {m}"), call.span()))
            }
            Expression::Traversal(t) => self.traversal(t, locals),
            Expression::UnaryOp(op) => {
                let v = self.eval(&op.expr, locals)?;
                match (op.operator.value(), v) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOperator::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOperator::Not, v) if as_bool(&v).is_some() => {
                        Ok(Value::Bool(as_bool(&v) == Some(false)))
                    }
                    (o, v) => Err(EvalError::new(
                        format!("cannot apply {} to {}", o.as_str(), v.type_name()),
                        op.span(),
                    )),
                }
            }
            Expression::BinaryOp(op) => {
                let l = self.eval(&op.lhs_expr, locals)?;
                let r = self.eval(&op.rhs_expr, locals)?;
                binary(*op.operator.value(), &l, &r).map_err(|m| EvalError::new(m, op.span()))
            }
            Expression::ForExpr(f) => self.for_expr(f, locals),
        }
    }

    /// Reads a root name; `whole` is false when a traversal reads only part of it, and the
    /// traversal then judges sensitivity by the full path.
    fn lookup(
        &self,
        v: &hcl_edit::Decorated<hcl_edit::Ident>,
        locals: &[(String, Value)],
        whole: bool,
    ) -> Result<Value, EvalError> {
        let name = v.as_str();
        if let Some((_, value)) = locals.iter().rev().find(|(n, _)| n == name) {
            if let Some(path) = self.alias(name).filter(|_| whole) {
                self.note_sensitive(&path);
            }
            return Ok(value.clone());
        }
        if whole {
            self.note_sensitive(&[name.to_string()]);
        }
        self.roots
            .get(name)
            .cloned()
            .ok_or_else(|| EvalError::new(format!("undefined reference {name:?}"), v.span()))
    }

    /// The path a `for` variable stands for, if it iterates over a resource's instances.
    fn alias(&self, name: &str) -> Option<Vec<String>> {
        self.aliases
            .borrow()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, path)| path.clone())
    }

    /// The path of a `for` collection that is a whole resource (`aws_x.y`, `data.T.n`) with a
    /// sensitive attribute, whose elements are then its instances; `None` for anything else.
    fn instances_path(&self, e: &Expression, locals: &[(String, Value)]) -> Option<Vec<String>> {
        let Expression::Traversal(t) = e else {
            return None;
        };
        let Expression::Variable(root) = &t.expr else {
            return None;
        };
        let root = root.as_str();
        if locals.iter().any(|(n, _)| n == root)
            || matches!(
                root,
                "var" | "local" | "module" | "path" | "count" | "each" | "self" | "terraform"
            )
        {
            return None;
        }
        let mut path = vec![root.to_string()];
        for op in &t.operators {
            let TraversalOperator::GetAttr(name) = op.value() else {
                return None;
            };
            path.push(name.as_str().to_string());
        }
        let whole = if root == "data" { 3 } else { 2 };
        (path.len() == whole
            && self
                .sensitive
                .iter()
                .any(|p| p.len() > path.len() && p.starts_with(&path)))
        .then_some(path)
    }

    fn note_sensitive(&self, path: &[String]) {
        if self
            .sensitive
            .iter()
            .any(|p| path.starts_with(p) || p.starts_with(path))
        {
            self.touched_sensitive.set(true);
        }
    }

    fn traversal(
        &self,
        t: &hcl_edit::expr::Traversal,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        // The path of plain attribute names from the root, for sensitivity checks.
        // An instance key or a splat is passed over: sensitive paths name no instance, so
        // `aws_iam_access_key.k["a"].id` is judged as `aws_iam_access_key.k.id`.
        if let Expression::Variable(root) = &t.expr {
            let mut path = self
                .alias(root.as_str())
                .unwrap_or_else(|| vec![root.as_str().to_string()]);
            for op in &t.operators {
                if let TraversalOperator::GetAttr(name) = op.value() {
                    path.push(name.as_str().to_string());
                }
            }
            self.note_sensitive(&path);
        }
        let ops: Vec<&TraversalOperator> =
            t.operators.iter().map(hcl_edit::Decorated::value).collect();
        // A root from the context is walked by reference through its leading attribute names,
        // and only what is reached is cloned: cloning the root first would copy every resource
        // of the type on every reference.
        if let Expression::Variable(root) = &t.expr {
            let shadowed = locals.iter().any(|(n, _)| n == root.as_str());
            if let (false, Some(mut at)) = (shadowed, self.roots.get(root.as_str())) {
                let mut used = 0;
                for op in &ops {
                    // Through an index too (`aws_iam_role.r[count.index]`): cloning the list
                    // of every instance for each instance that reads one would be quadratic.
                    let next = match (op, at) {
                        (TraversalOperator::GetAttr(name), Value::Object(map)) => {
                            map.get(name.as_str())
                        }
                        (TraversalOperator::Index(e), Value::List(_) | Value::Object(_)) => {
                            let key = self.eval(e, locals).ok();
                            match (key.as_ref().and_then(InstanceKey::from_value), at) {
                                (Some(InstanceKey::Int(i)), Value::List(items)) => {
                                    usize::try_from(i).ok().and_then(|i| items.get(i))
                                }
                                (Some(InstanceKey::Str(k)), Value::Object(map)) => map.get(&k),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    let Some(next) = next else {
                        break;
                    };
                    at = next;
                    used += 1;
                }
                return self.apply_ops(at.clone(), &ops[used..], locals, t);
            }
        }
        let value = match &t.expr {
            Expression::Variable(root) => self.lookup(root, locals, false)?,
            other => self.eval(other, locals)?,
        };
        self.apply_ops(value, &ops, locals, t)
    }

    fn apply_ops(
        &self,
        mut value: Value,
        ops: &[&TraversalOperator],
        locals: &mut Vec<(String, Value)>,
        t: &hcl_edit::expr::Traversal,
    ) -> Result<Value, EvalError> {
        for (i, op) in ops.iter().enumerate() {
            if value == Value::Unknown {
                return Ok(Value::Unknown);
            }
            value = match op {
                TraversalOperator::GetAttr(name) => match value {
                    Value::Object(mut map) => map.remove(name.as_str()).ok_or_else(|| {
                        EvalError::new(
                            format!("no attribute {:?} here", name.as_str()),
                            name.span().or_else(|| t.span()),
                        )
                    })?,
                    Value::Null => {
                        return Err(EvalError::new(
                            format!("attribute {:?} of a null value", name.as_str()),
                            t.span(),
                        ))
                    }
                    v => {
                        return Err(EvalError::new(
                            format!(
                                "cannot read attribute {:?} of a {}",
                                name.as_str(),
                                v.type_name()
                            ),
                            t.span(),
                        ))
                    }
                },
                TraversalOperator::Index(e) => {
                    let key = self.eval(e, locals)?;
                    index(value, &key).map_err(|m| EvalError::new(m, e.span()))?
                }
                TraversalOperator::LegacyIndex(n) => {
                    index(value, &Value::Number(*n.value() as f64))
                        .map_err(|m| EvalError::new(m, t.span()))?
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match value {
                        Value::List(items) => items,
                        Value::Null => Vec::new(),
                        v => vec![v],
                    };
                    let rest = &ops[i + 1..];
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.apply_ops(item, rest, locals, t)?);
                    }
                    return Ok(Value::List(out));
                }
            };
        }
        Ok(value)
    }

    fn template(
        &self,
        t: &Template,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        let mut out = String::new();
        for element in t {
            match element {
                Element::Literal(s) => out.push_str(s.value()),
                Element::Interpolation(i) => match self.eval(&i.expr, locals)? {
                    Value::Unknown => return Ok(Value::Unknown),
                    v => out.push_str(&v.to_template_string().ok_or_else(|| {
                        EvalError::new(
                            format!("cannot interpolate a {} into a string", v.type_name()),
                            i.expr.span(),
                        )
                    })?),
                },
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        let branch = match self.eval(&ifd.if_expr.cond_expr, locals)? {
                            Value::Unknown => return Ok(Value::Unknown),
                            v if as_bool(&v) == Some(true) => Some(&ifd.if_expr.template),
                            v if as_bool(&v) == Some(false) => {
                                ifd.else_expr.as_ref().map(|e| &e.template)
                            }
                            v => {
                                return Err(EvalError::new(
                                    format!("condition must be a bool, found {}", v.type_name()),
                                    ifd.if_expr.cond_expr.span(),
                                ))
                            }
                        };
                        if let Some(chosen) = branch {
                            match self.template(chosen, locals)? {
                                Value::String(s) => out.push_str(&s),
                                _ => return Ok(Value::Unknown),
                            }
                        }
                    }
                    Directive::For(ford) => {
                        let intro = &ford.for_expr;
                        let coll = self.eval(&intro.collection_expr, locals)?;
                        let pairs = iterate(coll, intro.collection_expr.span())?;
                        for (k, v) in pairs.unwrap_or_default() {
                            let depth = locals.len();
                            if let Some(kv) = &intro.key_var {
                                locals.push((kv.as_str().to_string(), k));
                            }
                            locals.push((intro.value_var.as_str().to_string(), v));
                            let body = self.template(&intro.template, locals);
                            locals.truncate(depth);
                            match body? {
                                Value::String(s) => out.push_str(&s),
                                _ => return Ok(Value::Unknown),
                            }
                        }
                    }
                },
            }
        }
        Ok(Value::String(out))
    }

    fn for_expr(
        &self,
        f: &hcl_edit::expr::ForExpr,
        locals: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        let alias = self.instances_path(&f.intro.collection_expr, locals);
        let coll = if alias.is_some() {
            // Judged by what the body reads of each instance instead.
            let touched = self.touched_sensitive.get();
            let coll = self.eval(&f.intro.collection_expr, locals);
            self.touched_sensitive.set(touched);
            coll?
        } else {
            self.eval(&f.intro.collection_expr, locals)?
        };
        let Some(pairs) = iterate(coll, f.intro.collection_expr.span())? else {
            return Ok(Value::Unknown);
        };
        let mut list = Vec::new();
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in pairs {
            let n = locals.len();
            let bound = self.aliases.borrow().len();
            if let Some(kv) = &f.intro.key_var {
                locals.push((kv.as_str().to_string(), k));
                self.aliases
                    .borrow_mut()
                    .push((kv.as_str().to_string(), None));
            }
            let value_var = f.intro.value_var.as_str().to_string();
            locals.push((value_var.clone(), v));
            self.aliases.borrow_mut().push((value_var, alias.clone()));
            let result = (|| {
                if let Some(cond) = &f.cond {
                    match self.eval(&cond.expr, locals)? {
                        Value::Bool(true) => {}
                        Value::Bool(false) => return Ok(None),
                        Value::Unknown => return Ok(Some((None, Value::Unknown))),
                        v => {
                            return Err(EvalError::new(
                                format!("for condition must be a bool, found {}", v.type_name()),
                                cond.expr.span(),
                            ))
                        }
                    }
                }
                let key = match &f.key_expr {
                    Some(ke) => Some(self.eval(ke, locals)?),
                    None => None,
                };
                Ok(Some((key, self.eval(&f.value_expr, locals)?)))
            })();
            locals.truncate(n);
            self.aliases.borrow_mut().truncate(bound);
            match result? {
                None => {}
                Some((None, v)) => list.push(v),
                Some((Some(key), v)) => {
                    let Some(key) = key.to_template_string() else {
                        return Ok(Value::Unknown);
                    };
                    if f.grouping {
                        if let Value::List(items) =
                            map.entry(key).or_insert_with(|| Value::List(Vec::new()))
                        {
                            items.push(v);
                        }
                    } else if map.insert(key.clone(), v).is_some() {
                        return Err(EvalError::new(
                            format!("duplicate key {key:?} in for expression; use ... to group"),
                            f.key_expr.as_ref().and_then(hcl_edit::Span::span),
                        ));
                    }
                }
            }
        }
        Ok(if f.key_expr.is_some() {
            Value::Object(map)
        } else {
            Value::List(list)
        })
    }
}

/// The (key, value) pairs of a collection, or `None` when it is unknown.
fn iterate(
    coll: Value,
    range: Option<Range<usize>>,
) -> Result<Option<Vec<(Value, Value)>>, EvalError> {
    Ok(Some(match coll {
        Value::List(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::Number(i as f64), v))
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (Value::String(k), v))
            .collect(),
        Value::Unknown => return Ok(None),
        v => {
            return Err(EvalError::new(
                format!("cannot iterate over a {}", v.type_name()),
                range,
            ))
        }
    }))
}

fn index(value: Value, key: &Value) -> Result<Value, String> {
    match (value, key) {
        (_, Value::Unknown) | (Value::Unknown, _) => Ok(Value::Unknown),
        (Value::List(items), Value::Number(n)) => {
            let len = items.len();
            if *n < 0.0 || n.fract() != 0.0 {
                return Err(format!("invalid index {n}"));
            }
            items
                .into_iter()
                .nth(*n as usize)
                .ok_or_else(|| format!("index {n} out of range for a list of {len}"))
        }
        (Value::Object(mut map), k) => {
            let k = k.to_template_string().ok_or("object keys are strings")?;
            map.remove(&k)
                .ok_or_else(|| format!("no key {k:?} in this map"))
        }
        (Value::List(items), Value::String(s)) => match s.parse::<usize>() {
            Ok(i) => items
                .into_iter()
                .nth(i)
                .ok_or_else(|| format!("index {i} out of range")),
            Err(_) => Err(format!("a list index must be a number, found {s:?}")),
        },
        (v, _) => Err(format!("cannot index a {}", v.type_name())),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A bool, or a string that HCL converts to one: a variable set with `--var flag=false` and
/// no declared type arrives as the string "false", and must still work as a condition.
fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

fn binary(op: BinaryOperator, l: &Value, r: &Value) -> Result<Value, String> {
    use BinaryOperator as B;
    if *l == Value::Unknown || *r == Value::Unknown {
        return Ok(Value::Unknown);
    }
    match op {
        B::Eq => Ok(Value::Bool(l == r)),
        B::NotEq => Ok(Value::Bool(l != r)),
        B::And | B::Or => match (as_bool(l), as_bool(r)) {
            (Some(a), Some(b)) => Ok(Value::Bool(if op == B::And { a && b } else { a || b })),
            _ => Err(format!(
                "{} needs two bools, found {} and {}",
                op.as_str(),
                l.type_name(),
                r.type_name()
            )),
        },
        _ => {
            let (Some(a), Some(b)) = (as_number(l), as_number(r)) else {
                return Err(format!(
                    "{} needs two numbers, found {} and {}",
                    op.as_str(),
                    l.type_name(),
                    r.type_name()
                ));
            };
            Ok(match op {
                B::Plus => Value::Number(a + b),
                B::Minus => Value::Number(a - b),
                B::Mul => Value::Number(a * b),
                B::Div if b == 0.0 => return Err("division by zero".into()),
                B::Div => Value::Number(a / b),
                B::Mod if b == 0.0 => return Err("modulo by zero".into()),
                B::Mod => Value::Number(a % b),
                B::Less => Value::Bool(a < b),
                B::LessEq => Value::Bool(a <= b),
                B::Greater => Value::Bool(a > b),
                B::GreaterEq => Value::Bool(a >= b),
                _ => return Err(format!("unsupported operator {}", op.as_str())),
            })
        }
    }
}

/// An evaluation error as a diagnostic at its place inside `outer`, naming what was evaluated.
pub(crate) fn eval_diag(
    e: EvalError,
    outer: &crate::lang::diagnostic::Span,
    name: &str,
) -> crate::lang::diagnostic::Diagnostic {
    let span = crate::lang::diagnostic::Span {
        file: outer.file,
        range: e.range.unwrap_or_else(|| outer.range.clone()),
    };
    crate::lang::diagnostic::Diagnostic::error(format!("in {name}: {}", e.message))
        .named(name)
        .at(span)
}

/// The element of a block's value that holds one instance: an index of a `count` block's list
/// (grown with nulls up to it), a key of a `for_each` block's map. `None` for an index beyond
/// any `count` (one read from a damaged state), rather than a list that large.
pub(crate) fn instance_slot<'a>(slot: &'a mut Value, key: &InstanceKey) -> Option<&'a mut Value> {
    match key {
        InstanceKey::Str(k) => Some(object_entry(slot, k)),
        InstanceKey::Int(i) => {
            let i = usize::try_from(*i)
                .ok()
                .filter(|i| u32::try_from(*i).is_ok())?;
            if !matches!(slot, Value::List(_)) {
                *slot = Value::List(Vec::new());
            }
            let Value::List(items) = slot else {
                return None;
            };
            if items.len() <= i {
                items.resize(i + 1, Value::Null);
            }
            items.get_mut(i)
        }
    }
}

/// `map[key]` of an object value, made an object first if it is not one.
pub(crate) fn object_entry<'a>(slot: &'a mut Value, key: &str) -> &'a mut Value {
    if !matches!(slot, Value::Object(_)) {
        *slot = Value::Object(BTreeMap::new());
    }
    match slot {
        Value::Object(map) => map.entry(key.to_string()).or_insert(Value::Null),
        // Made an object just above.
        other => other,
    }
}

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RefTarget {
    Var(String),
    Local(String),
    Resource(Address),
    Path,
    /// `terraform.workspace`, the one attribute of Terraform's `terraform` object.
    Terraform,
    /// `count.index`: the attribute read.
    Count(String),
    /// `each.key` or `each.value`.
    Each(String),
    /// `module.NAME`: a module call's outputs (the output read is the reference's `attr`).
    Module(String),
    /// A name that is none of the above (reported as undefined).
    Unknown(String),
}

/// One reference found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) target: RefTarget,
    /// The attribute read from a resource, if any (`arn` in `aws_iam_role.r.arn`).
    pub(crate) attr: Option<String>,
    pub(crate) text: String,
    pub(crate) range: Option<Range<usize>>,
    /// The instance key a resource reference selects (`0` in `aws_iam_user.u[0].arn`), as
    /// an expression to evaluate where the reference is (`count.index`, `each.key`).
    pub(crate) index: Option<Expression>,
    /// The attribute read after the instance key (`name` in `aws_iam_user.u[0].name`): the
    /// JSON plan's `references` list it, as Terraform does.
    pub(crate) indexed_attr: Option<String>,
}

/// A function call found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuncUse {
    pub(crate) name: String,
    pub(crate) range: Option<Range<usize>>,
}

/// Collects the references and function calls of an expression, skipping names bound by
/// `for` expressions.
pub(crate) fn references(expr: &Expression) -> (Vec<Reference>, Vec<FuncUse>) {
    let mut w = Walker::default();
    w.expr(expr);
    (w.refs, w.funcs)
}

#[derive(Default)]
struct Walker {
    bound: Vec<String>,
    refs: Vec<Reference>,
    funcs: Vec<FuncUse>,
}

impl Walker {
    fn expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Null(_)
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_) => {}
            Expression::Array(items) => items.iter().for_each(|i| self.expr(i)),
            Expression::Object(obj) => {
                for (k, v) in obj {
                    if let ObjectKey::Expression(e) = k {
                        // `{ (local.k) = v }` and bare identifiers as keys: only the
                        // parenthesised form is a reference.
                        if !matches!(e, Expression::Variable(_)) {
                            self.expr(e);
                        }
                    }
                    self.expr(v.expr());
                }
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => self.template(&h.template),
            Expression::Parenthesis(p) => self.expr(p.inner()),
            Expression::Variable(v) => {
                let name = v.as_str();
                if !self.bound.iter().any(|b| b == name) {
                    self.refs.push(Reference {
                        target: RefTarget::Unknown(name.to_string()),
                        attr: None,
                        text: name.to_string(),
                        range: v.span(),
                        index: None,
                        indexed_attr: None,
                    });
                }
            }
            Expression::Conditional(c) => {
                self.expr(&c.cond_expr);
                self.expr(&c.true_expr);
                self.expr(&c.false_expr);
            }
            Expression::FuncCall(call) => {
                self.funcs.push(FuncUse {
                    name: call.name.name.as_str().to_string(),
                    range: call.name.name.span(),
                });
                call.args.iter().for_each(|a| self.expr(a));
            }
            Expression::Traversal(t) => self.traversal(t),
            Expression::UnaryOp(op) => self.expr(&op.expr),
            Expression::BinaryOp(op) => {
                self.expr(&op.lhs_expr);
                self.expr(&op.rhs_expr);
            }
            Expression::ForExpr(f) => {
                self.expr(&f.intro.collection_expr);
                let n = self.bound.len();
                if let Some(k) = &f.intro.key_var {
                    self.bound.push(k.as_str().to_string());
                }
                self.bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    self.expr(k);
                }
                self.expr(&f.value_expr);
                if let Some(c) = &f.cond {
                    self.expr(&c.expr);
                }
                self.bound.truncate(n);
            }
        }
    }

    fn template(&mut self, t: &Template) {
        for element in t {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        self.expr(&ifd.if_expr.cond_expr);
                        self.template(&ifd.if_expr.template);
                        if let Some(e) = &ifd.else_expr {
                            self.template(&e.template);
                        }
                    }
                    Directive::For(ford) => {
                        let f = &ford.for_expr;
                        self.expr(&f.collection_expr);
                        let n = self.bound.len();
                        if let Some(k) = &f.key_var {
                            self.bound.push(k.as_str().to_string());
                        }
                        self.bound.push(f.value_var.as_str().to_string());
                        self.template(&f.template);
                        self.bound.truncate(n);
                    }
                },
            }
        }
    }

    fn traversal(&mut self, t: &hcl_edit::expr::Traversal) {
        for op in &t.operators {
            if let TraversalOperator::Index(e) = op.value() {
                self.expr(e);
            }
        }
        let Expression::Variable(root) = &t.expr else {
            self.expr(&t.expr);
            return;
        };
        let root_name = root.as_str();
        if self.bound.iter().any(|b| b == root_name) {
            return;
        }
        let names: Vec<&str> = t
            .operators
            .iter()
            .map_while(|o| match o.value() {
                TraversalOperator::GetAttr(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let range = t.span();
        let (target, attr, used) = match (root_name, names.as_slice()) {
            ("var", [name, ..]) => (RefTarget::Var((*name).to_string()), None, 1),
            ("local", [name, ..]) => (RefTarget::Local((*name).to_string()), None, 1),
            ("path", _) => (RefTarget::Path, None, names.len().min(1)),
            ("terraform", ["workspace", ..]) => (RefTarget::Terraform, None, 1),
            ("terraform", _) => (RefTarget::Unknown(root_name.to_string()), None, names.len()),
            ("count", [attr, ..]) => (RefTarget::Count((*attr).to_string()), None, 1),
            ("module", [name, rest @ ..]) => (
                RefTarget::Module((*name).to_string()),
                rest.first().map(|s| (*s).to_string()),
                1,
            ),
            ("each", [attr, ..]) => (RefTarget::Each((*attr).to_string()), None, 1),
            ("data", [t, n, rest @ ..]) => (
                RefTarget::Resource(Address::data(*t, *n)),
                rest.first().map(|s| (*s).to_string()),
                2,
            ),
            ("var" | "local" | "data", _) => {
                (RefTarget::Unknown(root_name.to_string()), None, names.len())
            }
            (_, [n, rest @ ..]) => (
                RefTarget::Resource(Address::managed(root_name, *n)),
                rest.first().map(|s| (*s).to_string()),
                1,
            ),
            (_, []) => (RefTarget::Unknown(root_name.to_string()), None, 0),
        };
        let mut text = root_name.to_string();
        for n in names.iter().take(used + usize::from(attr.is_some())) {
            text.push('.');
            text.push_str(n);
        }
        // The operator right after a resource's name, when it selects an instance.
        let (index, indexed_attr) = match &target {
            RefTarget::Resource(a) => {
                let name_ops = if a.mode == crate::lang::address::Mode::Data {
                    2
                } else {
                    1
                };
                let index = match t.operators.get(name_ops).map(hcl_edit::Decorated::value) {
                    Some(TraversalOperator::Index(e)) => Some(e.clone()),
                    Some(TraversalOperator::LegacyIndex(i)) => {
                        Some(Expression::from(hcl_edit::Number::from(*i.value())))
                    }
                    _ => None,
                };
                let after = match t
                    .operators
                    .get(name_ops + 1)
                    .map(hcl_edit::Decorated::value)
                {
                    Some(TraversalOperator::GetAttr(n)) if index.is_some() => {
                        Some(n.as_str().to_string())
                    }
                    _ => None,
                };
                (index, after)
            }
            _ => (None, None),
        };
        self.refs.push(Reference {
            target,
            attr,
            text,
            range,
            index,
            indexed_attr,
        });
    }
}

/// `aws_iam_role.r` or `data.T.n` as text, for `depends_on` entries.
pub(crate) fn traversal_text(expr: &Expression) -> Option<String> {
    let Expression::Traversal(t) = expr else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    let mut text = root.as_str().to_string();
    for op in &t.operators {
        let TraversalOperator::GetAttr(n) = op.value() else {
            return None;
        };
        text.push('.');
        text.push_str(n.as_str());
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expression {
        hcl_edit::parser::parse_expr(s).unwrap()
    }

    fn ctx() -> EvalCtx {
        let mut c = EvalCtx::new(PathBuf::from("."));
        c.set(&["var", "name"], Value::string("sky"));
        c.set(&["var", "n"], Value::Number(3.0));
        c.set(
            &["aws_iam_role", "r"],
            Value::Object(BTreeMap::from([
                ("arn".into(), Value::Unknown),
                ("name".into(), Value::string("r1")),
            ])),
        );
        c
    }

    #[test]
    fn templatefile_renders_a_file_with_only_its_vars_and_records_the_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("backends.tftpl"),
            "%{ for addr in ip_addrs }backend ${addr}:${port}\n%{ endfor }",
        )
        .unwrap();
        std::fs::write(dir.path().join("leak.tftpl"), "${var.name}").unwrap();
        let mut c = EvalCtx::new(dir.path().to_path_buf());
        c.set(&["var", "name"], Value::string("sky"));
        let eval = |s: &str| c.eval_top(&parse(s)).map(|r| r.0);
        assert_eq!(
            eval(r#"templatefile("backends.tftpl", { port = 8080, ip_addrs = ["10.0.0.1", "10.0.0.2"] })"#)
                .unwrap(),
            Value::string("backend 10.0.0.1:8080\nbackend 10.0.0.2:8080\n")
        );
        assert!(c.files.read.digests().contains_key("backends.tftpl"));
        // The configuration's own variables are not the template's.
        assert!(eval(r#"templatefile("leak.tftpl", {})"#).is_err());
        assert_eq!(
            eval(r#"templatefile("backends.tftpl", [1])"#)
                .unwrap_err()
                .message,
            "templatefile(): invalid vars value: must be a map"
        );
        assert!(eval(r#"templatefile("missing.tftpl", {})"#)
            .unwrap_err()
            .message
            .starts_with("templatefile(): cannot read"));
    }

    #[test]
    fn try_gives_the_first_argument_that_succeeds_and_can_says_whether_one_does() {
        let c = ctx();
        let eval = |s: &str| c.eval_top(&parse(s)).map(|r| r.0);
        assert_eq!(
            eval(r#"try(var.name.nope, upper(var.name), "x")"#).unwrap(),
            Value::string("SKY")
        );
        assert_eq!(
            eval(r#"try(tonumber("x"), 7)"#).unwrap(),
            Value::Number(7.0)
        );
        assert_eq!(eval(r#"can(tonumber("x"))"#).unwrap(), Value::Bool(false));
        assert_eq!(eval("can(var.n + 1)").unwrap(), Value::Bool(true));
        // Known only after apply, the value might still fail then: the answer waits too.
        assert_eq!(eval("try(aws_iam_role.r.arn, 1)").unwrap(), Value::Unknown);
        assert_eq!(eval("can(aws_iam_role.r.arn)").unwrap(), Value::Unknown);
        let e = eval(r#"try(tonumber("x"), tonumber("y"))"#).unwrap_err();
        assert!(
            e.message
                .starts_with("try(): no expression succeeded:\n- tonumber(): ")
                && e.message
                    .ends_with("At least one expression must produce a successful result"),
            "{}",
            e.message
        );
        assert!(eval("try()").is_err());
        assert!(eval("can(1, 2)").is_err());
    }

    #[test]
    fn a_true_or_false_string_works_wherever_a_bool_is_needed() {
        let mut c = ctx();
        // What an untyped variable holds after `--var flag=false`.
        c.set(&["var", "flag"], Value::string("false"));
        let eval = |s: &str| c.eval_top(&parse(s)).unwrap().0;
        assert_eq!(eval(r#"var.flag ? "on" : "off""#), Value::string("off"));
        assert_eq!(eval("!var.flag"), Value::Bool(true));
        assert_eq!(eval(r#"var.flag || "true""#), Value::Bool(true));
        assert_eq!(eval("var.flag && true"), Value::Bool(false));
        assert_eq!(
            eval(r#""%{ if var.flag }on%{ else }off%{ endif }""#),
            Value::string("off")
        );
        assert!(c.eval_top(&parse(r#""yes" ? 1 : 2"#)).is_err());
        assert!(c.eval_top(&parse("!var.name")).is_err());
    }

    #[test]
    fn templates_interpolate_and_unknowns_propagate() {
        let c = ctx();
        assert_eq!(
            c.eval_top(&parse(r#""${var.name}-${var.n}""#)).unwrap().0,
            Value::string("sky-3")
        );
        assert_eq!(
            c.eval_top(&parse(r#""x-${aws_iam_role.r.arn}""#))
                .unwrap()
                .0,
            Value::Unknown
        );
        assert_eq!(
            c.eval_top(&parse("aws_iam_role.r.name")).unwrap().0,
            Value::string("r1")
        );
    }

    #[test]
    fn operators_conditionals_and_for_expressions_evaluate() {
        let c = ctx();
        assert_eq!(
            c.eval_top(&parse("var.n * 2 + 1")).unwrap().0,
            Value::Number(7.0)
        );
        assert_eq!(
            c.eval_top(&parse(r#"var.n > 2 ? "big" : "small""#))
                .unwrap()
                .0,
            Value::string("big")
        );
        assert_eq!(
            c.eval_top(&parse(r#"[for s in ["a", "b"] : upper(s) if s != "b"]"#))
                .unwrap()
                .0,
            Value::List(vec![Value::string("A")])
        );
        assert_eq!(
            c.eval_top(&parse(r"{for k, v in {a = 1} : k => v + 1}"))
                .unwrap()
                .0,
            Value::Object(BTreeMap::from([("a".into(), Value::Number(2.0))]))
        );
    }

    #[test]
    fn reading_a_sensitive_variable_marks_the_result() {
        let mut c = ctx();
        c.sensitive.insert(vec!["var".into(), "name".into()]);
        assert!(c.eval_top(&parse(r#""${var.name}!""#)).unwrap().1);
        assert!(!c.eval_top(&parse("var.n")).unwrap().1);
    }

    /// Terraform marks values, not references: an instance's or a `for` element's other
    /// attributes are not sensitive because one attribute of the resource is.
    #[test]
    fn only_the_sensitive_attribute_of_a_repeated_resource_marks_what_reads_it() {
        let mut c = ctx();
        let key = |id: &str| {
            Value::Object(BTreeMap::from([
                ("id".into(), Value::string(id)),
                ("secret".into(), Value::string("s")),
            ]))
        };
        c.set(
            &["aws_iam_access_key", "k"],
            Value::Object(BTreeMap::from([
                ("a".into(), key("AK1")),
                ("b".into(), key("AK2")),
            ])),
        );
        c.sensitive.insert(vec![
            "aws_iam_access_key".into(),
            "k".into(),
            "secret".into(),
        ]);
        let marked = |src: &str| c.eval_top(&parse(src)).unwrap().1;
        assert!(!marked(r#"aws_iam_access_key.k["a"].id"#));
        assert!(marked(r#"aws_iam_access_key.k["a"].secret"#));
        assert!(marked(r#"aws_iam_access_key.k["a"]"#));
        assert!(!marked("{ for n, k in aws_iam_access_key.k : n => k.id }"));
        assert!(!marked(
            "[for k in aws_iam_access_key.k : k.id if k.id != \"\"]"
        ));
        assert!(marked(
            "{ for n, k in aws_iam_access_key.k : n => k.secret }"
        ));
        assert!(marked("[for k in aws_iam_access_key.k : k]"));
        assert!(marked("[for k in aws_iam_access_key.k : jsonencode(k)]"));
        assert!(
            marked("values(aws_iam_access_key.k)"),
            "anything else stays marked"
        );
        // A nested for over another collection binds its own variable.
        assert!(!marked(
            "[for k in aws_iam_access_key.k : [for k in [\"x\"] : k]]"
        ));
        assert!(marked(
            "[for k in aws_iam_access_key.k : [for j in [k.secret] : j]]"
        ));
    }

    #[test]
    fn references_are_found_and_for_variables_are_not_references() {
        let (refs, funcs) = references(&parse(
            r#"[for x in var.list : "${x}-${aws_iam_role.r.arn}-${data.aws_caller_identity.me.account_id}"]"#,
        ));
        let targets: Vec<_> = refs.iter().map(|r| r.text.clone()).collect();
        assert_eq!(
            targets,
            [
                "var.list",
                "aws_iam_role.r.arn",
                "data.aws_caller_identity.me.account_id"
            ]
        );
        assert_eq!(refs[1].attr.as_deref(), Some("arn"));
        assert!(funcs.is_empty());
    }

    #[test]
    fn errors_carry_the_span_of_the_failing_expression() {
        let c = ctx();
        let err = c.eval_top(&parse("var.n + {}")).unwrap_err();
        assert!(err.message.contains("two numbers"), "{err:?}");
        assert!(err.range.is_some());
    }
}
