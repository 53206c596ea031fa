//! Planning: refresh what state knows, evaluate the configuration in dependency order, and
//! decide an action for every resource.
//!
//! The only I/O is through the `Provider` (one batched refresh, one read per data source);
//! everything else is the pure pieces: `eval`, `diff`, `graph`. The same `Workspace` helpers
//! evaluate a resource again at apply time, once the values it waited for are known.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::diff::{diff, Action, AttrChange};
use crate::engine::graph::{Graph, Node};
use crate::engine::provider::{Planned, Problem, Provider, ProviderError, RefreshRequest};
use crate::lang::address::{Address, Mode};
use crate::lang::config::{Config, ResourceBlock};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::eval::{references, EvalCtx, RefTarget};
use crate::lang::schema::{AttrMode, Registry, Schema};
use crate::lang::value::Value;
use crate::lang::variables::Vars;
use crate::state::{Attrs, State};

/// A validated configuration with its graph and variables: everything needed to evaluate.
pub struct Workspace {
    pub config: Config,
    pub graph: Graph,
    pub order: Vec<Node>,
    pub vars: Vars,
    /// What `file()` read while evaluating this workspace; a saved plan records it.
    pub files_read: crate::lang::functions::FilesRead,
}

/// A resource's evaluated configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Desired {
    pub(crate) attrs: BTreeMap<String, Value>,
    pub(crate) sensitive: BTreeSet<String>,
}

impl Desired {
    /// The known, non-null values as JSON, the form providers take.
    pub(crate) fn to_attrs(&self) -> Attrs {
        self.attrs
            .iter()
            .filter(|(_, v)| !v.is_null() && !v.contains_unknown())
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }
}

impl Workspace {
    /// The evaluation context with variables, `path` and the sensitivity marks.
    pub(crate) fn base_ctx(&self) -> EvalCtx {
        let mut ctx = EvalCtx::new(self.config.dir.clone());
        ctx.files.read = self.files_read.clone();
        ctx.set(&["var"], Value::Object(self.vars.values.clone()));
        let dir = Value::string(self.config.dir.display().to_string());
        ctx.set(
            &["path"],
            Value::Object(BTreeMap::from([
                ("module".into(), dir.clone()),
                ("root".into(), dir.clone()),
                ("cwd".into(), dir),
            ])),
        );
        for name in &self.vars.sensitive {
            ctx.sensitive.insert(vec!["var".into(), name.clone()]);
        }
        for addr in self.config.resources.keys() {
            if let Some(schema) = self.config.schemas.get(addr.mode, &addr.type_name) {
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
        ctx
    }

    /// Evaluates one local into the context.
    pub(crate) fn eval_local(&self, name: &str, ctx: &mut EvalCtx, diags: &mut Diagnostics) {
        let Some(l) = self.config.locals.get(name) else {
            return;
        };
        match ctx.eval_top(&l.value.expr) {
            Ok((v, _)) => ctx.set(&["local", name], v),
            Err(e) => {
                diags.push(eval_diag(e, &l.value.span, &format!("local.{name}")));
                ctx.set(&["local", name], Value::Unknown);
            }
        }
    }

    /// Re-evaluates every local in order (at apply time, after a resource became known).
    pub(crate) fn eval_all_locals(&self, ctx: &mut EvalCtx) {
        let mut ignored = Diagnostics::default();
        for node in &self.order {
            if let Node::Local(n) = node {
                self.eval_local(n, ctx, &mut ignored);
            }
        }
    }

    /// Evaluates a resource block against its schema: types converted, defaults applied,
    /// allowed values checked.
    // A method although it reads only its arguments: the block and schema come from this
    // workspace's configuration, and callers read as `ws.eval_resource(..)`.
    #[allow(clippy::unused_self)]
    pub(crate) fn eval_resource<P: Provider>(
        &self,
        block: &ResourceBlock,
        schema: &Schema,
        ctx: &EvalCtx,
    ) -> Result<Desired, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut out = Desired::default();
        for (name, a) in &schema.attributes {
            if !a.settable() {
                continue;
            }
            if a.sensitive {
                out.sensitive.insert(name.clone());
            }
            let Some(expr) = block.attrs.get(name) else {
                out.attrs
                    .insert(name.clone(), a.default.clone().unwrap_or(Value::Null));
                continue;
            };
            let owner = format!("{}.{name}", block.addr);
            let value = match ctx.eval_top(&expr.value.expr) {
                Ok((v, sensitive)) => {
                    if sensitive {
                        out.sensitive.insert(name.clone());
                    }
                    v
                }
                Err(e) => {
                    diags.push(eval_diag(e, &expr.value.span, &owner));
                    continue;
                }
            };
            let value = match a.ty.conform(value) {
                Ok(v) => v,
                Err(m) => {
                    diags.push(
                        Diagnostic::error(format!("wrong type for {owner}: {m}"))
                            .named(name.clone())
                            .at(expr.value.span.clone()),
                    );
                    continue;
                }
            };
            if let (Some(format), Value::String(s)) = (a.format.as_deref(), &value) {
                if let Err(m) = P::check_format(format, s) {
                    diags.push(
                        Diagnostic::error(format!("invalid {owner}: {m}"))
                            .named(name.clone())
                            .at(expr.value.span.clone()),
                    );
                    continue;
                }
            }
            if let (Some(allowed), Value::String(s)) = (&a.enum_values, &value) {
                if !allowed.contains(s) {
                    diags.push(
                        Diagnostic::error(format!(
                            "{owner} must be one of {}, not {s:?}",
                            allowed.join(", ")
                        ))
                        .named(name.clone())
                        .at(expr.value.span.clone()),
                    );
                    continue;
                }
            }
            let value = if value.is_null() {
                a.default.clone().unwrap_or(Value::Null)
            } else {
                value
            };
            out.attrs.insert(name.clone(), value);
        }
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok(out)
        }
    }

    /// Which resources each attribute of a block reads, for the replacement cascade.
    fn attr_refs(block: &ResourceBlock) -> BTreeMap<String, BTreeSet<Address>> {
        block
            .attrs
            .iter()
            .map(|(name, a)| {
                let refs = references(&a.value.expr)
                    .0
                    .into_iter()
                    .filter_map(|r| match r.target {
                        RefTarget::Resource(addr) => Some(addr),
                        _ => None,
                    })
                    .collect();
                (name.clone(), refs)
            })
            .collect()
    }
}

/// The object value of a resource, as other expressions see it: every schema attribute, with
/// computed ones taken from `live` or unknown.
pub(crate) fn resource_value(
    schema: &Schema,
    desired: &BTreeMap<String, Value>,
    live: Option<&Attrs>,
) -> Value {
    let mut obj = BTreeMap::new();
    for (name, a) in &schema.attributes {
        let v = match (a.mode, desired.get(name), live) {
            (AttrMode::Computed, _, Some(live))
            | (AttrMode::OptionalComputed, None | Some(Value::Null), Some(live)) => {
                live.get(name).map_or(Value::Null, Value::from_json)
            }
            (AttrMode::Computed, _, None) => Value::Unknown,
            (_, Some(v), _) => v.clone(),
            (_, None, _) => Value::Null,
        };
        obj.insert(name.clone(), v);
    }
    Value::Object(obj)
}

/// A value read from state or AWS, as expressions see it.
pub(crate) fn state_value(schema: &Schema, attrs: &Attrs) -> Value {
    let mut obj = BTreeMap::new();
    for name in schema.attributes.keys() {
        obj.insert(
            name.clone(),
            attrs.get(name).map_or(Value::Null, Value::from_json),
        );
    }
    Value::Object(obj)
}

/// The entry the provider's plan-time checks see for one resource or data source.
fn planned(block: &ResourceBlock, attrs: BTreeMap<String, Value>) -> Planned<'_> {
    Planned {
        addr: &block.addr,
        attrs: std::borrow::Cow::Owned(attrs),
        refs: Workspace::attr_refs(block),
    }
}

/// A provider rule broken, as a diagnostic at the attribute's value (or the block).
fn problem_diag(ws: &Workspace, p: Problem) -> Diagnostic {
    let block = ws.config.resources.get(&p.addr);
    let span = block.and_then(|b| {
        p.attr
            .as_ref()
            .and_then(|a| b.attrs.get(a))
            .map(|a| a.value.span.clone())
            .or_else(|| Some(b.span.clone()))
    });
    let d = Diagnostic::error(p.message).named(p.attr.unwrap_or_else(|| p.addr.to_string()));
    match span {
        Some(s) => d.at(s),
        None => d,
    }
}

pub(crate) fn eval_diag(e: crate::lang::eval::EvalError, outer: &Span, name: &str) -> Diagnostic {
    let span = Span {
        file: outer.file,
        range: e.range.unwrap_or_else(|| outer.range.clone()),
    };
    Diagnostic::error(format!("in {name}: {}", e.message))
        .named(name)
        .at(span)
}

/// The planned change of one resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ResourceChange {
    pub(crate) addr: Address,
    pub(crate) action: Action,
    /// The attributes that change (for update and replace).
    pub(crate) changes: Vec<AttrChange>,
    /// The refreshed live attributes, when the object exists.
    pub(crate) before: Option<Attrs>,
    /// The planned object: settable values and computed ones (unknown when not yet known).
    pub(crate) after: BTreeMap<String, Value>,
    pub(crate) sensitive: BTreeSet<String>,
    /// Why an action was forced ("`aws_iam_role.r` is replaced").
    pub(crate) reason: Option<String>,
    pub(crate) id: Option<String>,
    /// A replacement that creates the new object before deleting the old (`lifecycle {
    /// create_before_destroy = true }`).
    #[serde(default)]
    pub(crate) create_before_destroy: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum DriftKind {
    Deleted,
    Changed(Vec<AttrChange>),
}

/// A change made outside skyform since the last apply.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Drift {
    pub(crate) addr: Address,
    pub(crate) kind: DriftKind,
    pub(crate) prior: Attrs,
    /// What AWS says now (`None` when the object is gone): what a refresh records.
    #[serde(default)]
    pub(crate) live: Option<Attrs>,
}

/// What to plan: everything (the default), a destroy, part of the world, or only a refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanOptions {
    pub(crate) destroy: bool,
    /// Limit the plan to these resources and what they depend on (what depends on them, for
    /// a destroy).
    pub(crate) targets: Vec<Address>,
    /// Replace these even though nothing forces it.
    pub(crate) replace: Vec<Address>,
    /// Plan no change; only record what AWS now says.
    pub(crate) refresh_only: bool,
    /// Delete objects tagged with this state's lineage that neither state nor configuration
    /// holds (by default they are listed and left alone).
    #[serde(default)]
    pub(crate) prune_tagged: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct OutputChange {
    pub(crate) name: String,
    pub(crate) before: Option<serde_json::Value>,
    pub(crate) after: Option<Value>,
    pub(crate) sensitive: bool,
}

/// A complete plan.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Every resource in configuration or state, in address order (no-ops included).
    pub(crate) changes: Vec<ResourceChange>,
    pub(crate) drift: Vec<Drift>,
    pub(crate) outputs: Vec<OutputChange>,
    /// The state the plan was made against.
    pub(crate) state: State,
    /// Data source results.
    pub(crate) data: BTreeMap<Address, Attrs>,
    pub(crate) destroy: bool,
    /// The `--target` addresses: a non-empty list means the plan is partial.
    #[serde(default)]
    pub(crate) targets: Vec<Address>,
    #[serde(default)]
    pub(crate) refresh_only: bool,
    /// What an interrupted apply left, found without writing; apply records it first.
    #[serde(default)]
    pub(crate) recovery: crate::engine::reconcile::Recovery,
    /// What `check` blocks found: warnings, shown after the plan and not saved with it.
    #[serde(skip)]
    pub(crate) warnings: Diagnostics,
}

impl Plan {
    /// (to add, to change, to destroy), as Terraform counts them.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for ch in &self.changes {
            match ch.action {
                Action::Create => c.0 += 1,
                Action::Update => c.1 += 1,
                Action::Replace => {
                    c.0 += 1;
                    c.2 += 1;
                }
                Action::Delete => c.2 += 1,
                Action::NoOp => {}
            }
        }
        c
    }

    pub(crate) fn has_resource_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// Whether applying the plan would write anything: changes, or for a refresh-only plan,
    /// drift to record.
    pub(crate) fn has_effect(&self) -> bool {
        let recovered = !self.recovery.adopted.is_empty() || !self.recovery.settled.is_empty();
        recovered
            || if self.refresh_only {
                !self.drift.is_empty()
            } else {
                self.has_changes()
            }
    }

    pub(crate) fn has_output_changes(&self) -> bool {
        self.outputs.iter().any(|o| match (&o.before, &o.after) {
            (None, None) => false,
            (Some(b), Some(a)) => a.contains_unknown() || &a.to_json() != b,
            _ => true,
        })
    }

    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.has_resource_changes() || self.has_output_changes()
    }

    /// Every attribute of a resource whose value must never be shown or saved: those its
    /// schema marks sensitive, those the state recorded as derived from a sensitive input,
    /// and those the planned change read from one.
    pub(crate) fn sensitive_attrs(&self, schemas: &Registry, addr: &Address) -> BTreeSet<String> {
        let mut out = sensitive_of(schemas, addr);
        if let Some(r) = self.state.resources.get(addr) {
            out.extend(r.sensitive.iter().cloned());
        }
        for c in self.changes.iter().filter(|c| &c.addr == addr) {
            out.extend(c.sensitive.iter().cloned());
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the configuration could not be evaluated")]
    Config(Diagnostics),
    #[error("refreshing state from AWS failed: {0}")]
    Refresh(ProviderError),
    #[error("reading {addr} failed: {err}")]
    Data { addr: Address, err: ProviderError },
    #[error("{0}")]
    Option(String),
    #[error(transparent)]
    Recover(#[from] crate::engine::reconcile::ReconcileError),
}

/// Reads every resource in state from the cloud, in one batched provider call.
pub(crate) async fn refresh<P: Provider>(
    provider: &P,
    state: &State,
) -> Result<BTreeMap<Address, Option<Attrs>>, ProviderError> {
    let requests: Vec<RefreshRequest> = state
        .resources
        .values()
        .map(|r| RefreshRequest {
            addr: r.addr.clone(),
            id: r.id.clone(),
            prior: r.attrs.clone(),
        })
        .collect();
    if requests.is_empty() {
        return Ok(BTreeMap::new());
    }
    let live = provider.refresh(&requests).await?;
    Ok(requests.into_iter().map(|r| r.addr).zip(live).collect())
}

/// Compares state with what AWS now says.
fn drift_of<P: Provider>(state: &State, live: &BTreeMap<Address, Option<Attrs>>) -> Vec<Drift> {
    let mut out = Vec::new();
    for (addr, r) in &state.resources {
        let Some(schema) = P::schemas().resources.get(&addr.type_name) else {
            continue;
        };
        match live.get(addr) {
            Some(None) => out.push(Drift {
                addr: addr.clone(),
                kind: DriftKind::Deleted,
                prior: r.attrs.clone(),
                live: None,
            }),
            Some(Some(now)) => {
                let prior: BTreeMap<String, Value> = r
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect();
                let (_, changes) = diff::<P>(schema, Some(now), &prior);
                if !changes.is_empty() {
                    // Report as "was X, is now Y": before is the state's value.
                    let changes = changes
                        .into_iter()
                        .map(|c| AttrChange {
                            before: c.after,
                            after: c.before,
                            ..c
                        })
                        .collect();
                    out.push(Drift {
                        addr: addr.clone(),
                        kind: DriftKind::Changed(changes),
                        prior: r.attrs.clone(),
                        live: Some(now.clone()),
                    });
                }
            }
            None => {}
        }
    }
    out
}

/// The resources a partial plan covers: the targets and, transitively, what they depend on
/// (for a destroy: what depends on them). `None` when the plan is whole.
fn selection(
    ws: &Workspace,
    state: &State,
    opts: &PlanOptions,
) -> Result<Option<BTreeSet<Address>>, String> {
    if opts.targets.is_empty() {
        return Ok(None);
    }
    for t in &opts.targets {
        if !ws.config.resources.contains_key(t) && !state.resources.contains_key(t) {
            return Err(format!(
                "--target {t}: no such resource in the configuration or the state"
            ));
        }
    }
    let mut selected: BTreeSet<Address> = opts.targets.iter().cloned().collect();
    let mut stack: Vec<Address> = opts.targets.clone();
    while let Some(a) = stack.pop() {
        let next: Vec<Address> = if opts.destroy {
            let mut dependents: Vec<Address> = state
                .resources
                .values()
                .filter(|r| r.deps.contains(&a))
                .map(|r| r.addr.clone())
                .collect();
            dependents.extend(
                ws.config
                    .resources
                    .keys()
                    .filter(|r| {
                        ws.graph
                            .resource_deps(&Node::Resource((*r).clone()))
                            .contains(&a)
                    })
                    .cloned(),
            );
            dependents
        } else {
            ws.graph
                .resource_deps(&Node::Resource(a.clone()))
                .into_iter()
                .collect()
        };
        for n in next {
            if selected.insert(n.clone()) {
                stack.push(n);
            }
        }
    }
    Ok(Some(selected))
}

/// Makes a plan: refresh, drift, then an action per resource, as `opts` asks. It plans against `state` as it will be once what an interrupted apply left is recovered: the
/// recovery is worked out (reading only), applied in memory, and carried in the plan, which
/// apply records before anything else.
pub async fn plan<P: Provider>(
    provider: &P,
    ws: &Workspace,
    state: State,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let recovery = crate::engine::reconcile::recover(
        provider,
        &ws.config,
        &ws.graph,
        &state,
        opts.prune_tagged,
    )
    .await?;
    let state = recovery.applied_to(state);
    let mut plan = plan_state(provider, ws, state, opts, &recovery.replace).await?;
    let mut recovery = recovery;
    // An object recovery adopts only to replace it is adopted only by a plan that replaces
    // (or destroys) it.
    let unplanned: Vec<Address> = recovery
        .replace
        .keys()
        .filter(|a| {
            !plan
                .changes
                .iter()
                .any(|c| &c.addr == *a && matches!(c.action, Action::Replace | Action::Delete))
        })
        .cloned()
        .collect();
    for a in &unplanned {
        recovery.defer(a);
        plan.state.resources.remove(a);
    }
    // Recovery could not evaluate the configuration; the plan did: what an adopted object's
    // block reads from sensitive inputs is masked in the state as for any object.
    for r in &mut recovery.adopted {
        if let Some(c) = plan.changes.iter().find(|c| c.addr == r.addr) {
            r.sensitive.clone_from(&c.sensitive);
        }
    }
    plan.recovery = recovery;
    Ok(plan)
}

/// Plans against `state` as it is. `forced` names resources to replace, with the reason.
///
/// The steps: check the options, refresh what the state holds, then either record the
/// refresh, plan the destruction, or walk the configuration in dependency order deciding each
/// resource, and finish with what the configuration no longer declares.
async fn plan_state<P: Provider>(
    provider: &P,
    ws: &Workspace,
    state: State,
    opts: &PlanOptions,
    forced: &BTreeMap<Address, String>,
) -> Result<Plan, PlanError> {
    let selected = selection(ws, &state, opts).map_err(PlanError::Option)?;
    check_replace_targets(ws, opts)?;
    let live = refresh(provider, &state)
        .await
        .map_err(PlanError::Refresh)?;
    let mut plan = Plan {
        drift: drift_of::<P>(&state, &live),
        destroy: opts.destroy,
        targets: opts.targets.clone(),
        refresh_only: opts.refresh_only,
        ..Plan::default()
    };
    if opts.refresh_only {
        plan.state = state;
        return Ok(plan);
    }
    plan.drift.retain_mut(|d| match &mut d.kind {
        DriftKind::Changed(changes) => {
            crate::engine::lifecycle::drop_ignored(&ws.config, &d.addr, changes)
        }
        DriftKind::Deleted => true,
    });
    if opts.destroy {
        plan_destroy(ws, &state, &live, selected.as_ref(), &mut plan);
        let prevented = crate::engine::lifecycle::prevent_destroy(
            &ws.config,
            plan.changes.iter().map(|c| (&c.addr, c.action)),
        );
        if prevented.has_errors() {
            return Err(PlanError::Config(prevented));
        }
        plan.state = state;
        return Ok(plan);
    }
    let mut walk = Walk {
        provider,
        ws,
        state: &state,
        live: &live,
        opts,
        forced,
        selected: selected.as_ref(),
        ctx: ws.base_ctx(),
        diags: Diagnostics::default(),
        actions: BTreeMap::new(),
        checked: Vec::new(),
        plan,
    };
    for node in &ws.order {
        match node {
            Node::Local(name) => ws.eval_local(name, &mut walk.ctx, &mut walk.diags),
            // A partial plan leaves outputs alone: what they read may not be planned.
            Node::Output(_) if walk.selected.is_some() => {}
            Node::Output(name) => walk.output(name),
            Node::Resource(addr) => walk.resource(addr).await?,
        }
    }
    let warnings = crate::engine::checks::run(&ws.config, &mut walk.ctx, eval_diag);
    let mut plan = walk.finish()?;
    plan.warnings.extend(warnings);
    plan.state = state;
    Ok(plan)
}

/// `--replace` names a managed resource of the configuration.
fn check_replace_targets(ws: &Workspace, opts: &PlanOptions) -> Result<(), PlanError> {
    match opts
        .replace
        .iter()
        .find(|r| r.mode != Mode::Managed || !ws.config.resources.contains_key(*r))
    {
        Some(r) => Err(PlanError::Option(format!(
            "--replace {r}: no such resource in the configuration"
        ))),
        None => Ok(()),
    }
}

/// A destroy: every selected object that still exists is deleted; a whole destroy also drops
/// the outputs.
fn plan_destroy(
    ws: &Workspace,
    state: &State,
    live: &BTreeMap<Address, Option<Attrs>>,
    selected: Option<&BTreeSet<Address>>,
    plan: &mut Plan,
) {
    let in_scope = |a: &Address| selected.is_none_or(|s| s.contains(a));
    plan.changes
        .extend(deletions(ws.config.schemas, state, live, in_scope, None));
    if selected.is_none() {
        plan.outputs.extend(removed_outputs(state, |_| true));
    }
}

/// Output changes for the outputs in state that `gone` picks: each is removed.
fn removed_outputs<'a>(
    state: &'a State,
    gone: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = OutputChange> + 'a {
    state
        .outputs
        .iter()
        .filter(move |(name, _)| gone(name))
        .map(|(name, o)| OutputChange {
            name: name.clone(),
            before: Some(o.value.clone()),
            after: None,
            sensitive: o.sensitive,
        })
}

/// What the walk over the configuration carries from node to node.
struct Walk<'w, P> {
    provider: &'w P,
    ws: &'w Workspace,
    state: &'w State,
    live: &'w BTreeMap<Address, Option<Attrs>>,
    opts: &'w PlanOptions,
    forced: &'w BTreeMap<Address, String>,
    selected: Option<&'w BTreeSet<Address>>,
    ctx: EvalCtx,
    diags: Diagnostics,
    /// The action decided for each resource so far, for the replacement cascade.
    actions: BTreeMap<Address, Action>,
    /// What the provider's plan-time checks look at, in plan order.
    checked: Vec<Planned<'w>>,
    plan: Plan,
}

impl<'w, P: Provider> Walk<'w, P> {
    fn in_scope(&self, a: &Address) -> bool {
        self.selected.is_none_or(|s| s.contains(a))
    }

    fn output(&mut self, name: &str) {
        let Some(o) = self.ws.config.outputs.get(name) else {
            return;
        };
        let Some(expr) = &o.value else { return };
        match self.ctx.eval_top(&expr.expr) {
            Ok((v, sensitive)) => {
                if sensitive && !o.sensitive {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "output {name:?} reads a sensitive value; mark it sensitive = true"
                        ))
                        .named(format!("output.{name}"))
                        .at(o.span.clone()),
                    );
                }
                self.plan.outputs.push(OutputChange {
                    name: name.to_string(),
                    before: self.state.outputs.get(name).map(|s| s.value.clone()),
                    after: Some(v),
                    sensitive: o.sensitive,
                });
            }
            Err(e) => self
                .diags
                .push(eval_diag(e, &expr.span, &format!("output.{name}"))),
        }
    }

    async fn resource(&mut self, addr: &Address) -> Result<(), PlanError> {
        let ws = self.ws;
        let (Some(block), Some(schema)) = (
            ws.config.resources.get(addr),
            ws.config.schemas.get(addr.mode, &addr.type_name),
        ) else {
            return Ok(());
        };
        if !self.in_scope(addr) {
            // Outside the targets: seen as AWS has it, and left alone.
            let value = match self.live.get(addr).cloned().flatten() {
                Some(attrs) => state_value(schema, &attrs),
                None => resource_value(schema, &BTreeMap::new(), None),
            };
            self.ctx.set_resource(addr, value);
            return Ok(());
        }
        let pre = crate::engine::lifecycle::check(
            &mut self.ctx,
            &block.lifecycle.preconditions,
            &addr.to_string(),
            (crate::engine::lifecycle::When::Pre, None),
            eval_diag,
        );
        if pre.has_errors() {
            self.diags.extend(pre);
            self.ctx
                .set_resource(addr, resource_value(schema, &BTreeMap::new(), None));
            return Ok(());
        }
        let desired = match ws.eval_resource::<P>(block, schema, &self.ctx) {
            Ok(d) => d,
            Err(d) => {
                self.diags
                    .extend(crate::engine::checks::scoped(&ws.config, addr, d));
                self.ctx
                    .set_resource(addr, resource_value(schema, &BTreeMap::new(), None));
                return Ok(());
            }
        };
        if addr.mode == Mode::Data {
            return self.data_source(block, schema, &desired).await;
        }
        self.checked.push(planned(block, desired.attrs.clone()));
        self.managed(block, schema, &desired);
        Ok(())
    }

    /// A data source is read now; it must not depend on values known only after apply.
    async fn data_source(
        &mut self,
        block: &'w ResourceBlock,
        schema: &Schema,
        desired: &Desired,
    ) -> Result<(), PlanError> {
        let addr = &block.addr;
        let scoped = self.ws.config.check_data.contains_key(addr);
        if desired.attrs.values().any(Value::contains_unknown) && scoped {
            // Terraform reads it during the apply; skyform reads data only while planning, so
            // the assertions that read it stay unknown.
            self.ctx
                .set_resource(addr, resource_value(schema, &BTreeMap::new(), None));
            return Ok(());
        }
        if desired.attrs.values().any(Value::contains_unknown) {
            self.diags.push(
                Diagnostic::error(format!("{addr} reads values known only after apply; data sources must depend on known values"))
                    .named(addr.to_string())
                    .at(block.span.clone()),
            );
            self.ctx
                .set_resource(addr, resource_value(schema, &desired.attrs, None));
            return Ok(());
        }
        let attrs = match self
            .provider
            .read_data(&addr.type_name, &desired.to_attrs())
            .await
        {
            Ok(attrs) => attrs,
            Err(err) if scoped => {
                self.diags.extend(crate::engine::checks::scoped(
                    &self.ws.config,
                    addr,
                    Diagnostics(vec![Diagnostic::error(format!(
                        "reading {addr} failed: {err}"
                    ))
                    .named(addr.to_string())
                    .at(block.span.clone())]),
                ));
                self.ctx
                    .set_resource(addr, resource_value(schema, &BTreeMap::new(), None));
                return Ok(());
            }
            Err(err) => {
                return Err(PlanError::Data {
                    addr: addr.clone(),
                    err,
                })
            }
        };
        self.ctx.set_resource(addr, state_value(schema, &attrs));
        let post = crate::engine::lifecycle::check(
            &mut self.ctx,
            &block.lifecycle.postconditions,
            &addr.to_string(),
            (
                crate::engine::lifecycle::When::Post,
                Some(state_value(schema, &attrs)),
            ),
            eval_diag,
        );
        self.diags.extend(post);
        let read = attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect();
        self.checked.push(planned(block, read));
        self.plan.data.insert(addr.clone(), attrs);
        Ok(())
    }

    /// A managed resource: its action against what AWS has, forced replacements, and the
    /// replacement cascade; then its planned value for what reads it.
    fn managed(&mut self, block: &ResourceBlock, schema: &Schema, configured: &Desired) {
        let addr = &block.addr;
        let prior = self.state.resources.get(addr);
        let now = self.live.get(addr).cloned().flatten();
        let desired = &Desired {
            attrs: crate::engine::lifecycle::ignoring(block, now.as_ref(), &configured.attrs),
            sensitive: configured.sensitive.clone(),
        };
        let (mut action, mut changes) = diff::<P>(schema, now.as_ref(), &desired.attrs);
        let mut reason = self.forced_replacement(addr, now.is_some(), &mut action);
        if let Some(why) = crate::engine::lifecycle::triggered(block, &self.actions, |a, attr| {
            self.plan
                .changes
                .iter()
                .any(|c| &c.addr == a && c.changes.iter().any(|ch| ch.name == attr))
        })
        .filter(|_| now.is_some() && action != Action::Replace)
        {
            action = Action::Replace;
            reason = Some(why);
        }
        if matches!(action, Action::NoOp | Action::Update) {
            if let Some(r) = self.cascade(
                block,
                schema,
                desired,
                now.as_ref(),
                &mut action,
                &mut changes,
            ) {
                reason = Some(r);
            }
        }
        let computed_from = if matches!(action, Action::NoOp | Action::Update) {
            now.as_ref()
        } else {
            None
        };
        // A new object is made from the configuration, ignored attributes included.
        let made_from = if action == Action::Replace {
            configured
        } else {
            desired
        };
        let value = resource_value(schema, &made_from.attrs, computed_from);
        self.ctx.set_resource(addr, value.clone());
        let post = crate::engine::lifecycle::check(
            &mut self.ctx,
            &block.lifecycle.postconditions,
            &addr.to_string(),
            (crate::engine::lifecycle::When::Post, Some(value.clone())),
            eval_diag,
        );
        self.diags.extend(post);
        let Value::Object(after) = value else {
            return;
        };
        self.actions.insert(addr.clone(), action);
        self.plan.changes.push(ResourceChange {
            addr: addr.clone(),
            action,
            changes,
            before: now,
            after,
            // What the state recorded as sensitive stays masked in `before`, even when the
            // configuration no longer reads a sensitive input there.
            sensitive: desired
                .sensitive
                .iter()
                .chain(&sensitive_of(self.ws.config.schemas, addr))
                .chain(prior.iter().flat_map(|p| &p.sensitive))
                .cloned()
                .collect(),
            reason,
            id: prior.map(|p| p.id.clone()),
            create_before_destroy: action == Action::Replace
                && block.lifecycle.create_before_destroy,
        });
    }

    /// A replacement asked for with `--replace`, or forced by recovery (with its reason); only
    /// an object that exists can be replaced.
    fn forced_replacement(
        &self,
        addr: &Address,
        exists: bool,
        action: &mut Action,
    ) -> Option<String> {
        let mut reason = None;
        if self.opts.replace.contains(addr) && exists && *action != Action::Replace {
            *action = Action::Replace;
            reason = Some("replacement was requested with --replace".into());
        }
        if let Some(why) = self.forced.get(addr).filter(|_| exists) {
            *action = Action::Replace;
            reason = Some(why.clone());
        }
        reason
    }

    /// The replacement cascade: what reads a replaced resource must follow it, replaced
    /// through a `force_new` attribute and updated through another. Returns the reason.
    fn cascade(
        &self,
        block: &ResourceBlock,
        schema: &Schema,
        desired: &Desired,
        now: Option<&Attrs>,
        action: &mut Action,
        changes: &mut Vec<AttrChange>,
    ) -> Option<String> {
        let mut reason = None;
        for (attr, targets) in Workspace::attr_refs(block) {
            let Some(replaced) = targets
                .iter()
                .find(|t| self.actions.get(*t) == Some(&Action::Replace))
            else {
                continue;
            };
            let Some(a) = schema.attr(&attr) else {
                continue;
            };
            let value = desired.attrs.get(&attr).cloned().unwrap_or(Value::Null);
            if !changes.iter().any(|c| c.name == attr) {
                let before = now
                    .and_then(|n| n.get(&attr))
                    .map_or(Value::Null, Value::from_json);
                changes.push(AttrChange {
                    name: attr.clone(),
                    before,
                    after: value,
                    forces_replacement: a.force_new,
                });
            }
            if a.force_new {
                *action = Action::Replace;
            } else if *action == Action::NoOp {
                *action = Action::Update;
            }
            reason = Some(format!("{replaced} is replaced"));
        }
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        reason
    }

    /// What the configuration no longer declares is deleted, its outputs removed; the
    /// provider's checks run over everything planned; then every problem is reported at once.
    fn finish(mut self) -> Result<Plan, PlanError> {
        let ws = self.ws;
        let selected = self.selected;
        let orphan = |a: &Address| {
            !ws.config.resources.contains_key(a) && selected.is_none_or(|s| s.contains(a))
        };
        self.plan.changes.extend(deletions(
            ws.config.schemas,
            self.state,
            self.live,
            orphan,
            Some("it is no longer in the configuration"),
        ));
        if selected.is_none() {
            self.plan
                .outputs
                .extend(removed_outputs(self.state, |name| {
                    !ws.config.outputs.contains_key(name)
                }));
        }
        for p in P::check_plan(&self.checked) {
            self.diags.push(problem_diag(ws, p));
        }
        self.diags.extend(crate::engine::lifecycle::prevent_destroy(
            &ws.config,
            self.plan.changes.iter().map(|c| (&c.addr, c.action)),
        ));
        if self.diags.has_errors() {
            return Err(PlanError::Config(self.diags));
        }
        let mut plan = self.plan;
        // What is left is warnings (a check's data source that failed).
        plan.warnings = self.diags;
        plan.changes.sort_by(|a, b| a.addr.cmp(&b.addr));
        plan.outputs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(plan)
    }
}

/// Delete changes for the resources in state that `select` picks and that still exist.
fn deletions<'a>(
    schemas: &'a Registry,
    state: &'a State,
    live: &'a BTreeMap<Address, Option<Attrs>>,
    select: impl Fn(&Address) -> bool + 'a,
    reason: Option<&'a str>,
) -> impl Iterator<Item = ResourceChange> + 'a {
    state
        .resources
        .iter()
        .filter(move |(a, _)| select(a))
        .filter_map(move |(addr, r)| {
            let now = live.get(addr).cloned().flatten()?;
            Some(ResourceChange {
                addr: addr.clone(),
                action: Action::Delete,
                changes: Vec::new(),
                before: Some(now),
                after: BTreeMap::new(),
                sensitive: sensitive_of(schemas, addr)
                    .union(&r.sensitive)
                    .cloned()
                    .collect(),
                reason: reason.map(String::from),
                id: Some(r.id.clone()),
                create_before_destroy: false,
            })
        })
}

/// The schema-sensitive attributes of a resource type.
pub(crate) fn sensitive_of(schemas: &Registry, addr: &Address) -> BTreeSet<String> {
    schemas
        .get(addr.mode, &addr.type_name)
        .map(|s| {
            s.attributes
                .iter()
                .filter(|(_, a)| a.sensitive)
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluates the whole configuration with every computed value unknown and no AWS calls, for
/// `skyform validate`: finds type errors and bad values wherever they are knowable.
pub(crate) fn check_values<P: Provider>(ws: &Workspace) -> Diagnostics {
    evaluate_static::<P>(ws).1
}

/// Evaluates the whole configuration without AWS or state: every value that depends on
/// something computed is unknown. `validate` uses the diagnostics; `skyform policy` the values.
pub(crate) fn evaluate_static<P: Provider>(
    ws: &Workspace,
) -> (BTreeMap<Address, Desired>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut values = BTreeMap::new();
    let mut ctx = ws.base_ctx();
    let mut checked: Vec<Planned<'_>> = Vec::new();
    for node in &ws.order {
        match node {
            Node::Local(name) => ws.eval_local(name, &mut ctx, &mut diags),
            Node::Output(name) => {
                if let Some(expr) = ws.config.outputs.get(name).and_then(|o| o.value.as_ref()) {
                    if let Err(e) = ctx.eval_top(&expr.expr) {
                        diags.push(eval_diag(e, &expr.span, &format!("output.{name}")));
                    }
                }
            }
            Node::Resource(addr) => {
                let (Some(block), Some(schema)) = (
                    ws.config.resources.get(addr),
                    ws.config.schemas.get(addr.mode, &addr.type_name),
                ) else {
                    continue;
                };
                let desired = ws
                    .eval_resource::<P>(block, schema, &ctx)
                    .unwrap_or_else(|d| {
                        diags.extend(d);
                        Desired::default()
                    });
                checked.push(planned(block, desired.attrs.clone()));
                ctx.set_resource(addr, resource_value(schema, &desired.attrs, None));
                values.insert(addr.clone(), desired);
            }
        }
    }
    for p in P::check_plan(&checked) {
        diags.push(problem_diag(ws, p));
    }
    (values, diags)
}
