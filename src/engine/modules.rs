//! Module instances while evaluating: expanding each module call's `count` or `for_each`,
//! giving each instance its input variables, and passing its outputs back to the caller as
//! `module.NAME`.
//!
//! Every module instance evaluates in its own scope of the one `EvalCtx` (`EvalCtx::enter`):
//! its own `var`, `local`, resources and calls. The graph orders the steps; plan, apply and
//! `validate` run the same steps here, so a value means the same in all three.

use std::collections::BTreeMap;

use crate::engine::graph::Node;
use crate::lang::address::{InstanceKey, Mode, ModuleInstance, ModuleStep};
use crate::lang::config::Config;
use crate::lang::diagnostic::Diagnostics;
use crate::lang::eval::{eval_diag, EvalCtx};
use crate::lang::value::Value;

/// The instances of every module known so far, by module path; the root has one, itself.
#[derive(Debug, Clone)]
pub(crate) struct Modules {
    instances: BTreeMap<Vec<String>, Vec<ModuleInstance>>,
    /// `each.value` of the module instances made by a `for_each`.
    each: BTreeMap<ModuleInstance, Value>,
    /// For `validate`: a call whose `count` or `for_each` is unknown stands as one instance
    /// whose key is unknown, so that the module is still checked.
    stand_ins: bool,
    /// Where the value nodes (not resources, not root outputs) are in the order, found on
    /// the first `eval_values`: a configuration of many resources and few locals should not
    /// walk every resource each time it runs.
    value_nodes: Option<Vec<usize>>,
}

impl Default for Modules {
    fn default() -> Modules {
        Modules {
            instances: BTreeMap::from([(Vec::new(), vec![Vec::new()])]),
            each: BTreeMap::new(),
            stand_ins: false,
            value_nodes: None,
        }
    }
}

impl Modules {
    /// Modules for `validate`, where a count may be unknown (see `stand_ins`).
    pub(crate) fn stand_ins() -> Modules {
        Modules {
            stand_ins: true,
            ..Modules::default()
        }
    }

    /// The instances of the module at `path` (none when its call expanded to none).
    pub(crate) fn of(&self, path: &[String]) -> Vec<ModuleInstance> {
        self.instances.get(path).cloned().unwrap_or_default()
    }

    /// Makes the call's `count.index` or `each` visible in the calling module's scope, for
    /// evaluating the arguments of instance `m`.
    fn bind_call(&self, m: &[ModuleStep], ctx: &mut EvalCtx) {
        let key = m.last().and_then(|s| s.key.as_ref());
        ctx.set_instance(key.map(|k| (k, self.each.get(m))));
    }
}

/// The object the schema-sensitive attributes of a module's resources are marked with, so that
/// reading them marks what reads them.
pub(crate) fn mark_sensitive(config: &Config, ctx: &mut EvalCtx) {
    for addr in config.resources.keys() {
        if let Some(schema) = config.schemas.get(addr.mode, &addr.type_name) {
            for (attr, a) in &schema.attributes {
                if a.sensitive {
                    let mut path = if addr.mode == Mode::Data {
                        vec!["data".to_string()]
                    } else {
                        vec![]
                    };
                    path.extend([addr.type_name.clone(), addr.name.clone(), attr.clone()]);
                    ctx.sensitive.insert(path);
                }
            }
        }
    }
}

/// Expands the call at `path` in every instance of its calling module: each instance gets
/// a scope with `path.module`, and the caller's `module.NAME` starts empty.
pub(crate) fn expand_module(
    config: &Config,
    path: &[String],
    ctx: &mut EvalCtx,
    modules: &mut Modules,
    diags: &mut Diagnostics,
) {
    let (Some((name, parent)), Some(call)) = (path.split_last(), config.module_call(path)) else {
        return;
    };
    let mut made = Vec::new();
    for p in modules.of(parent) {
        ctx.enter(&p);
        let owner = format!("{}module.{name}", crate::lang::address::module_prefix(&p));
        let unknown = call.repetition.as_ref().is_some_and(
            |r| matches!(ctx.eval_top(&r.expr().expr), Ok((v, _)) if v.contains_unknown()),
        );
        let expanded = if modules.stand_ins && unknown {
            let key = match &call.repetition {
                Some(crate::lang::config::Repetition::Count(_)) => InstanceKey::Int(0),
                _ => InstanceKey::Str(String::new()),
            };
            Ok(vec![crate::lang::expand::Instance {
                key: Some(key),
                value: Some(Value::Unknown),
                stand_in: true,
            }])
        } else {
            crate::lang::expand::instances_of(call.repetition.as_ref(), &owner, ctx)
        };
        let instances = match expanded {
            Ok(i) => i,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let empty = match &call.repetition {
            Some(crate::lang::config::Repetition::Count(_)) => Value::List(Vec::new()),
            None | Some(crate::lang::config::Repetition::ForEach(_)) => {
                Value::Object(BTreeMap::new())
            }
        };
        ctx.set(&["module", name], empty);
        for i in instances {
            let mut m = p.clone();
            m.push(ModuleStep {
                name: name.clone(),
                key: i.key.clone(),
            });
            if let Some(v) = i.value {
                modules.each.insert(m.clone(), v);
            }
            made.push(m);
        }
    }
    for m in &made {
        ctx.enter(m);
        let dir = Value::string(call.config.dir.display().to_string());
        let root = Value::string(config.dir.display().to_string());
        ctx.set(&["path", "module"], dir);
        ctx.set(&["path", "root"], root.clone());
        ctx.set(&["path", "cwd"], root);
        ctx.set(
            &["terraform", "workspace"],
            Value::string(config.workspace_name()),
        );
        mark_sensitive(&call.config, ctx);
    }
    ctx.enter(&[]);
    modules.instances.insert(path.to_vec(), made);
}

/// Gives variable `name` of the module at `path` its value in every instance: the call's
/// argument evaluated where the call is (or the variable's default), converted to its type
/// and checked by its validations.
pub(crate) fn eval_module_var(
    config: &Config,
    path: &[String],
    name: &str,
    ctx: &mut EvalCtx,
    modules: &Modules,
    diags: &mut Diagnostics,
) {
    let Some(call) = config.module_call(path) else {
        return;
    };
    for m in modules.of(path) {
        let parent = &m[..m.len().saturating_sub(1)];
        ctx.enter(parent);
        modules.bind_call(&m, ctx);
        let owner = format!("{}.var.{name}", crate::lang::address::module_text(&m));
        let given = call.inputs.get(name).map(|input| {
            ctx.eval_top(&input.value.expr)
                .map_err(|e| eval_diag(e, &input.value.span, &owner))
        });
        ctx.set_instance(None);
        let (value, sensitive) = match given {
            None => (None, false),
            Some(Ok((v, s))) => (Some(v), s),
            Some(Err(d)) => {
                diags.push(d);
                (Some(Value::Unknown), false)
            }
        };
        let value = match crate::lang::variables::module_input(&call.config, name, value) {
            Ok(v) => v,
            Err(d) => {
                for mut one in d.0 {
                    one.message =
                        format!("{}: {}", crate::lang::address::module_text(&m), one.message);
                    diags.push(one);
                }
                Value::Unknown
            }
        };
        ctx.enter(&m);
        ctx.set(&["var", name], value);
        let declared = call.config.variables.get(name).is_some_and(|v| v.sensitive);
        if sensitive || declared {
            ctx.sensitive.insert(vec!["var".into(), name.to_string()]);
        }
    }
    ctx.enter(&[]);
}

/// Evaluates output `name` of the module at `path` in every instance, and passes it to
/// the caller as `module.CALL.name` (`module.CALL[key].name` for a repeated call).
pub(crate) fn eval_module_output(
    config: &Config,
    path: &[String],
    name: &str,
    ctx: &mut EvalCtx,
    modules: &Modules,
    diags: &mut Diagnostics,
) {
    let Some(out) = config.module_config(path).and_then(|c| c.outputs.get(name)) else {
        return;
    };
    let Some(expr) = &out.value else { return };
    for m in modules.of(path) {
        ctx.enter(&m);
        let owner = format!("{}.output.{name}", crate::lang::address::module_text(&m));
        let (value, sensitive) = match ctx.eval_top(&expr.expr) {
            Ok(v) => v,
            Err(e) => {
                diags.push(eval_diag(e, &expr.span, &owner));
                (Value::Unknown, false)
            }
        };
        let Some((step, parent)) = m.split_last() else {
            continue;
        };
        ctx.enter(parent);
        set_module_value(ctx, step, name, value);
        if sensitive || out.sensitive {
            ctx.sensitive
                .insert(vec!["module".into(), step.name.clone()]);
        }
    }
    ctx.enter(&[]);
}

/// Evaluates local `name` of the module at `path` in every instance of it.
pub(crate) fn eval_local_in(
    config: &Config,
    path: &[String],
    name: &str,
    ctx: &mut EvalCtx,
    modules: &Modules,
    diags: &mut Diagnostics,
) {
    let Some(module) = config.module_config(path) else {
        return;
    };
    let Some(l) = module.locals.get(name) else {
        return;
    };
    for m in modules.of(path) {
        ctx.enter(&m);
        let owner = format!("{}local.{name}", crate::lang::address::module_prefix(&m));
        match ctx.eval_top(&l.value.expr) {
            Ok((v, _)) => ctx.set(&["local", name], v),
            Err(e) => {
                diags.push(eval_diag(e, &l.value.span, &owner));
                ctx.set(&["local", name], Value::Unknown);
            }
        }
    }
    ctx.enter(&[]);
}

/// Evaluates every value that is not a resource, in dependency order: module expansions,
/// module variables, locals and module outputs. Apply runs this again once a resource is
/// known, so that what read it is known too.
pub(crate) fn eval_values(
    config: &Config,
    order: &[Node],
    ctx: &mut EvalCtx,
    modules: &mut Modules,
) {
    let mut ignored = Diagnostics::default();
    let at = modules
        .value_nodes
        .get_or_insert_with(|| {
            order
                .iter()
                .enumerate()
                .filter(|(_, n)| match n {
                    Node::Resource(_) => false,
                    Node::Output(path, _) => !path.is_empty(),
                    _ => true,
                })
                .map(|(i, _)| i)
                .collect()
        })
        .clone();
    eval_values_at(config, order, at, ctx, modules, &mut ignored);
}

/// `eval_values` for only the value nodes at these positions of `order` (ascending, so that
/// what a value reads is evaluated before it).
pub(crate) fn eval_values_at(
    config: &Config,
    order: &[Node],
    at: impl IntoIterator<Item = usize>,
    ctx: &mut EvalCtx,
    modules: &mut Modules,
    diags: &mut Diagnostics,
) {
    for i in at {
        if let Some(node) = order.get(i) {
            eval_value(config, node, ctx, modules, diags);
        }
    }
}

/// One value node: what `eval_values` and the planner's walk do for anything but a
/// resource or a root output. Returns false for those.
pub(crate) fn eval_value(
    config: &Config,
    node: &Node,
    ctx: &mut EvalCtx,
    modules: &mut Modules,
    diags: &mut Diagnostics,
) -> bool {
    match node {
        Node::Module(path) => expand_module(config, path, ctx, modules, diags),
        Node::Var(path, name) => eval_module_var(config, path, name, ctx, modules, diags),
        Node::Local(path, name) => eval_local_in(config, path, name, ctx, modules, diags),
        Node::Output(path, name) if !path.is_empty() => {
            eval_module_output(config, path, name, ctx, modules, diags);
        }
        Node::Output(..) | Node::Resource(_) => return false,
    }
    true
}

/// Sets `module.CALL.name` (or `module.CALL[key].name`) in the calling module's scope.
fn set_module_value(ctx: &mut EvalCtx, step: &ModuleStep, output: &str, value: Value) {
    let Some(call) = ctx.slot(&["module", &step.name]) else {
        return;
    };
    let instance = match &step.key {
        None => Some(call),
        Some(key) => crate::lang::eval::instance_slot(call, key),
    };
    if let Some(instance) = instance {
        *crate::lang::eval::object_entry(instance, output) = value;
    }
}
