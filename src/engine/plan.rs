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
use crate::lang::address::{Address, Mode, Scope};
use crate::lang::config::{Config, ResourceBlock};
use crate::lang::diagnostic::{Diagnostic, Diagnostics};
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
    /// The evaluation context with variables, `path`, `terraform.workspace` and the
    /// sensitivity marks.
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
        ctx.set(
            &["terraform", "workspace"],
            Value::string(self.config.workspace_name()),
        );
        for name in &self.vars.sensitive {
            ctx.sensitive.insert(vec!["var".into(), name.clone()]);
        }
        crate::engine::modules::mark_sensitive(&self.config, &mut ctx);
        ctx
    }

    /// Evaluates a resource block against its schema: types converted, defaults applied,
    /// allowed values checked, and `tags_all` worked out from the provider's default tags.
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
        conflicts(block, schema, &out.attrs, &mut diags);
        // The default tags of the provider configuration the resource goes to.
        let default_tags = self
            .config
            .default_tags_of(&block.addr.in_module(ctx.current()));
        let defaults = match default_tags {
            Some(e) if crate::engine::default_tags::taggable(schema) => {
                match ctx.eval_top_in_root(&e.expr) {
                    Ok(v) => Some(v),
                    Err(err) => {
                        let owner = crate::engine::default_tags::OWNER;
                        diags.push(eval_diag(err, &e.span, owner));
                        None
                    }
                }
            }
            _ => None,
        };
        if let Err(d) = crate::engine::default_tags::add_tags_all(
            default_tags,
            schema,
            defaults,
            &mut out.attrs,
            &mut out.sensitive,
        ) {
            diags.push(d);
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
            // A computed value the engine works out itself (`tags_all`).
            (AttrMode::Computed, Some(v), _) => v.clone(),
            (AttrMode::Computed, _, Some(live))
            | (AttrMode::OptionalComputed, None | Some(Value::Null), Some(live)) => {
                live.get(name).map_or(Value::Null, Value::from_json)
            }
            // Not set and not made yet: AWS (or the provider, as a cluster's chosen
            // `instance_type`) decides it, so what reads it waits for the apply, as in
            // Terraform.
            (AttrMode::Computed, _, None)
            | (AttrMode::OptionalComputed, None | Some(Value::Null), None) => Value::Unknown,
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

/// The entry the provider's plan-time checks see for one instance of a resource or data
/// source.
fn planned(
    addr: &Address,
    block: &ResourceBlock,
    attrs: BTreeMap<String, Value>,
    refs: &mut BTreeMap<Address, crate::engine::provider::BlockRefs>,
) -> Planned<'static> {
    // Found once per block, not per instance: walking the expressions of a block of 10,000
    // instances 10,000 times was a tenth of `validate`.
    let refs = refs
        .entry(addr.config_addr())
        .or_insert_with(|| std::sync::Arc::new(Workspace::attr_refs(block)))
        .clone();
    Planned {
        addr: addr.clone(),
        attrs: std::borrow::Cow::Owned(attrs),
        refs,
    }
}

/// A provider rule broken, as a diagnostic at the attribute's value (or the block).
fn problem_diag(ws: &Workspace, p: Problem) -> Diagnostic {
    let block = ws.config.block(&p.addr);
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

pub(crate) use crate::lang::eval::eval_diag;

/// Why an action was forced or chosen. The human and Markdown plans print its `text`, the JSON
/// plan its `action_reason`: both come from the kind, so that neither is parsed out of the
/// other's words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Reason {
    /// `--replace ADDR`.
    ReplaceRequested,
    /// Recovery of an interrupted apply forces the replacement, in its words.
    Forced(String),
    /// The block names another provider configuration (`aws`, `aws.west`) than the state.
    ProviderChanged { from: String, to: String },
    /// `lifecycle { replace_triggered_by }`, in its words.
    Triggered(String),
    /// A resource it reads is replaced (the replacement cascade): that resource's address.
    Replaced(String),
    /// A `count` instance whose index is past the count: the index as written (`[2]`).
    CountIndex(String),
    /// A `for_each` instance whose key is gone: the key as written (`["ml"]`).
    EachKey(String),
    /// The block's repetition no longer matches the instance's key: the block's repetition.
    WrongRepetition(RepetitionKind),
    /// Its module, its module instance or its block is no longer in the configuration, in
    /// those words.
    NoConfig(String),
    /// A data source whose configuration reads values not yet known.
    ReadConfigUnknown,
    /// A data source that depends on something with changes pending.
    ReadDependencyPending,
}

/// How a block declares its instances, for [`Reason::WrongRepetition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum RepetitionKind {
    Count,
    ForEach,
    None,
}

impl Reason {
    /// The reason in words, as the human plan prints it (Terraform's where it has some).
    pub(crate) fn text(&self) -> String {
        match self {
            Reason::ReplaceRequested => "replacement was requested with --replace".into(),
            Reason::Forced(why) | Reason::Triggered(why) | Reason::NoConfig(why) => why.clone(),
            Reason::ProviderChanged { from, to } => {
                format!("its provider configuration changes from {from} to {to}")
            }
            Reason::Replaced(addr) => format!("{addr} is replaced"),
            Reason::CountIndex(index) => format!("index {index} is out of range for count"),
            Reason::EachKey(key) => format!("key {key} is not in for_each map"),
            Reason::WrongRepetition(RepetitionKind::Count) => "the resource uses count".into(),
            Reason::WrongRepetition(RepetitionKind::ForEach) => "the resource uses for_each".into(),
            Reason::WrongRepetition(RepetitionKind::None) => {
                "the resource does not use count or for_each".into()
            }
            Reason::ReadConfigUnknown => "config refers to values not yet known".into(),
            Reason::ReadDependencyPending => {
                "depends on a resource or a module with changes pending".into()
            }
        }
    }

    /// Terraform's `action_reason` in the JSON plan for `action` taken for this reason
    /// (`None` for no reason).
    pub(crate) fn action_reason(reason: Option<&Reason>, action: Action) -> Option<&'static str> {
        Some(match (action, reason) {
            (Action::Replace, Some(Reason::ReplaceRequested)) => "replace_by_request",
            (Action::Replace, _) => "replace_because_cannot_update",
            (Action::Delete, Some(Reason::CountIndex(_))) => "delete_because_count_index",
            (Action::Delete, Some(Reason::EachKey(_))) => "delete_because_each_key",
            (Action::Delete, Some(Reason::WrongRepetition(_))) => "delete_because_wrong_repetition",
            (Action::Delete, Some(_)) => "delete_because_no_resource_config",
            (Action::Read, Some(Reason::ReadDependencyPending)) => {
                "read_because_dependency_pending"
            }
            (Action::Read, _) => "read_because_config_unknown",
            _ => return None,
        })
    }
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
    /// Why an action was forced (`aws_iam_role.r` is replaced).
    pub(crate) reason: Option<Reason>,
    pub(crate) id: Option<String>,
    /// The address the object had in the state, when a `moved` block (or adding or removing
    /// `count`) renamed it.
    #[serde(default)]
    pub(crate) previous_address: Option<Address>,
    /// The id of the object an `import` block brings in; apply records it first.
    #[serde(default)]
    pub(crate) importing: Option<String>,
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
// Each flag is one command-line flag, kept by its name in plan files; `refresh_only` and
// `skip_refresh` exclude each other (clap refuses both), but an enum would rename the
// former in every saved plan.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanOptions {
    pub(crate) destroy: bool,
    /// Limit the plan to these resources and what they depend on (what depends on them, for
    /// a destroy).
    pub(crate) targets: Vec<Address>,
    /// Leave these resources or modules alone, and what depends on them (what they depend
    /// on, for a destroy): the inverse of `targets`, usable with it.
    #[serde(default)]
    pub(crate) excludes: Vec<Scope>,
    /// Replace these even though nothing forces it.
    pub(crate) replace: Vec<Address>,
    /// Plan no change; only record what AWS now says.
    pub(crate) refresh_only: bool,
    /// Plan from the state as last recorded, reading nothing of the objects it holds
    /// (`--refresh=false`): a quick review of configuration-only changes on a big estate.
    #[serde(default)]
    pub(crate) skip_refresh: bool,
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
    /// The `--exclude` addresses: a non-empty list also means the plan is partial.
    #[serde(default)]
    pub(crate) excludes: Vec<Scope>,
    /// How many objects the refresh read and how long it took, for the summary line on big
    /// plans; not kept in plan files (it describes this run only).
    #[serde(skip)]
    pub(crate) refreshed: Option<(usize, std::time::Duration)>,
    #[serde(default)]
    pub(crate) refresh_only: bool,
    /// Made with `--refresh=false`: the objects in the state were not read from AWS, so the
    /// plan cannot see what changed outside skyform. Every view says so.
    #[serde(default)]
    pub(crate) skip_refresh: bool,
    /// What an interrupted apply left, found without writing; apply records it first.
    #[serde(default)]
    pub(crate) recovery: crate::engine::reconcile::Recovery,
    /// Renames of state addresses that apply records first (`moved` blocks).
    #[serde(default)]
    pub(crate) moves: Vec<crate::engine::moves::Move>,
    /// Objects that leave the state without being destroyed (`removed` blocks with
    /// `destroy = false`), with their ids.
    #[serde(default)]
    pub(crate) forget: Vec<(Address, String)>,
    /// Warnings: what `check` blocks found and `moved` blocks that could not be followed,
    /// shown with the plan and not saved with it.
    #[serde(skip)]
    pub(crate) warnings: Diagnostics,
    /// What the JSON plan says of the workspace (`variables`, `configuration`, `timestamp`;
    /// `render::json_config::described`), made with the plan and kept in its file, so that
    /// `show --json FILE` prints it without the configuration. It holds no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) described: Option<serde_json::Value>,
}

impl Plan {
    /// Whether `--target` or `--exclude` limited the plan, so that it may not be everything
    /// the configuration asks for.
    pub(crate) fn is_partial(&self) -> bool {
        !self.targets.is_empty() || !self.excludes.is_empty()
    }

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
                // Terraform's summary does not count reads.
                Action::NoOp | Action::Read => {}
            }
        }
        c
    }

    pub(crate) fn has_resource_changes(&self) -> bool {
        !self.moves.is_empty()
            || !self.forget.is_empty()
            || self
                .changes
                .iter()
                .any(|c| c.action != Action::NoOp || c.importing.is_some())
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
            provider: r.provider.clone(),
        })
        .collect();
    if requests.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut live = provider.refresh(&requests).await?;
    for (r, now) in requests.iter().zip(&mut live) {
        if let (Some(now), Some(schema)) = (now, P::schemas().resources.get(&r.addr.type_name)) {
            crate::engine::default_tags::split(schema, now, &r.prior);
        }
    }
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

/// What a partial plan covers: with `--target`, the targets and, transitively, what they
/// depend on (for a destroy: what depends on them); less what `--exclude` names and,
/// transitively, what depends on it (for a destroy: what it depends on).
#[derive(Debug)]
struct Selection {
    /// `None` when no `--target` limits the plan.
    targets: Option<BTreeSet<Address>>,
    excludes: Vec<Scope>,
    /// What is left alone because it depends on (or, for a destroy, is depended on by) an
    /// excluded resource.
    excluded: BTreeSet<Address>,
}

impl Selection {
    fn targeted(&self, a: &Address) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|s| s.contains(a) || (a.key.is_some() && s.contains(&a.base())))
    }

    fn excluded(&self, a: &Address) -> bool {
        self.excludes.iter().any(|e| e.covers(a))
            || self
                .excluded
                .iter()
                .any(|d| Scope::Resource(d.clone()).covers(a))
    }

    /// Whether every instance of `block` is excluded, so that the block is left as it is.
    fn block_excluded(&self, block: &Address) -> bool {
        self.excluded(block)
    }
}

/// The resources and blocks reachable from `seeds` along dependencies, or against them
/// (`dependents`), seeds included: in the state's recorded dependencies and the
/// configuration's graph.
fn closure(
    ws: &Workspace,
    state: &State,
    seeds: Vec<Address>,
    dependents: bool,
) -> BTreeSet<Address> {
    let mut selected: BTreeSet<Address> = seeds.iter().cloned().collect();
    let mut stack = seeds;
    while let Some(a) = stack.pop() {
        let next: Vec<Address> = if dependents {
            let mut found: Vec<Address> = state
                .resources
                .values()
                .filter(|r| r.deps.iter().any(|d| a.is_instance_of(d)))
                .map(|r| r.addr.clone())
                .collect();
            let blocks = ws.graph.index.keys().filter_map(|n| match n {
                Node::Resource(a) => Some(a),
                _ => None,
            });
            let block = a.config_addr();
            found.extend(
                blocks
                    .filter(|r| {
                        ws.graph
                            .resource_deps(&Node::Resource((*r).clone()))
                            .iter()
                            .any(|d| a.is_instance_of(d) || block.is_instance_of(d))
                    })
                    .cloned(),
            );
            found
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
    selected
}

/// The selection of a partial plan; `None` when the plan is whole.
fn selection(
    ws: &Workspace,
    state: &State,
    opts: &PlanOptions,
) -> Result<Option<Selection>, String> {
    if opts.targets.is_empty() && opts.excludes.is_empty() {
        return Ok(None);
    }
    for t in &opts.targets {
        if ws.config.block_of(t).is_none() && !state.resources.contains_key(t) {
            return Err(format!(
                "--target {t}: no such resource in the configuration or the state"
            ));
        }
    }
    let blocks: Vec<&Address> = ws
        .graph
        .index
        .keys()
        .filter_map(|n| match n {
            Node::Resource(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut seeds = Vec::new();
    for e in &opts.excludes {
        let before = seeds.len();
        if let Scope::Resource(a) = e {
            if ws.config.block_of(a).is_some() || state.resources.contains_key(a) {
                seeds.push(a.clone());
            }
        }
        seeds.extend(blocks.iter().filter(|b| e.covers(b)).map(|b| (*b).clone()));
        seeds.extend(state.resources.keys().filter(|a| e.covers(a)).cloned());
        if seeds.len() == before {
            return Err(format!(
                "--exclude {e}: no such resource or module in the configuration or the state"
            ));
        }
    }
    let targets =
        (!opts.targets.is_empty()).then(|| closure(ws, state, opts.targets.clone(), opts.destroy));
    let excluded = closure(ws, state, seeds, !opts.destroy);
    Ok(Some(Selection {
        targets,
        excludes: opts.excludes.clone(),
        excluded,
    }))
}

/// Whether `a` is in a plan's scope: the plan is whole, or `a` is targeted and not excluded.
fn in_selection(selected: Option<&Selection>, a: &Address) -> bool {
    selected.is_none_or(|s| s.targeted(a) && !s.excluded(a))
}

/// A block's value before any instance is planned: an empty list for `count`, an empty map
/// for `for_each`, so that `length()` of a block with no instances is 0.
pub(crate) fn empty_value(block: &ResourceBlock) -> Value {
    match block.repetition {
        Some(crate::lang::config::Repetition::Count(_)) => Value::List(Vec::new()),
        Some(crate::lang::config::Repetition::ForEach(_)) => Value::Object(BTreeMap::new()),
        None => Value::Null,
    }
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
    let started = std::time::Instant::now();
    let recovery = if opts.skip_refresh {
        // Recovery reads AWS (it looks for what a create left, and scans the lineage's
        // tags); without it, an open create could be planned a second time.
        if !state.intents.is_empty() {
            return Err(PlanError::Option(format!(
                "an interrupted apply left {} operation(s) open, which only a plan that reads AWS can settle: run `skyform plan` without --refresh=false once",
                state.intents.len()
            )));
        }
        crate::engine::reconcile::Recovery::default()
    } else {
        crate::engine::reconcile::recover(
            provider,
            &ws.config,
            &ws.graph,
            &state,
            opts.prune_tagged,
        )
        .await?
    };
    let recovering = started.elapsed();
    let state = recovery.applied_to(state);
    // A refresh records what AWS says at the addresses the state has; renames wait for a
    // plan that changes things.
    let (moves, move_diags) = if opts.refresh_only {
        (Vec::new(), Diagnostics::default())
    } else {
        crate::engine::moves::plan_moves(&ws.config, &state)
    };
    if move_diags.has_errors() {
        return Err(PlanError::Config(move_diags));
    }
    let state = crate::engine::moves::moved_state(state, &moves);
    let mut plan = plan_state(provider, ws, state, opts, &recovery.replace).await?;
    // The lineage scan is the refresh's first half: its listings serve the reads by id.
    if let Some((_, took)) = &mut plan.refreshed {
        *took += recovering;
    }
    for c in &mut plan.changes {
        c.previous_address = moves
            .iter()
            .find(|m| m.to == c.addr)
            .map(|m| m.from.clone());
    }
    plan.warnings.extend(move_diags);
    plan.moves = moves;
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
    let started = std::time::Instant::now();
    let (live, refreshed) = if opts.skip_refresh {
        // The state's attributes stand in for AWS's answer: no drift, by construction.
        let recorded = state
            .resources
            .iter()
            .map(|(a, r)| (a.clone(), Some(r.attrs.clone())))
            .collect();
        (recorded, None)
    } else {
        let live = refresh(provider, &state)
            .await
            .map_err(PlanError::Refresh)?;
        let took = (live.len(), started.elapsed());
        (live, Some(took))
    };
    let mut plan = Plan {
        refreshed,
        skip_refresh: opts.skip_refresh,
        drift: if opts.skip_refresh {
            Vec::new()
        } else {
            drift_of::<P>(&state, &live)
        },
        destroy: opts.destroy,
        targets: opts.targets.clone(),
        excludes: opts.excludes.clone(),
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
        block_refs: BTreeMap::new(),
        declared: BTreeSet::new(),
        forgotten: BTreeSet::new(),
        imported: BTreeMap::new(),
        modules: crate::engine::modules::Modules::default(),
        plan,
    };
    walk.forget()?;
    for node in &ws.order {
        match node {
            // A partial plan leaves outputs alone: what they read may not be planned.
            Node::Output(path, _) if path.is_empty() && walk.selected.is_some() => {}
            Node::Output(path, name) if path.is_empty() => walk.output(name),
            Node::Resource(addr) => walk.resource(addr).await?,
            other => {
                crate::engine::modules::eval_value(
                    &ws.config,
                    other,
                    &mut walk.ctx,
                    &mut walk.modules,
                    &mut walk.diags,
                );
            }
        }
    }
    let warnings = crate::engine::checks::run(&ws.config, &mut walk.ctx, eval_diag);
    let mut plan = walk.finish()?;
    plan.warnings.extend(warnings);
    keep_relevant_drift(&ws.config, &mut plan);
    plan.state = state;
    Ok(plan)
}

/// Drops the drift that does not matter to this plan (`relevance`); objects that are gone
/// keep their report.
fn keep_relevant_drift(config: &crate::lang::config::Config, plan: &mut Plan) {
    // What the configuration reads is a walk of every expression: not worth it for no drift.
    if plan.drift.is_empty() {
        return;
    }
    let reads = crate::engine::relevance::Reads::of(config);
    plan.drift.retain_mut(|d| match &mut d.kind {
        DriftKind::Changed(changes) => {
            reads.keep(config, &d.addr, changes);
            !changes.is_empty()
        }
        DriftKind::Deleted => true,
    });
}

/// `--replace` names a managed resource of the configuration.
fn check_replace_targets(ws: &Workspace, opts: &PlanOptions) -> Result<(), PlanError> {
    match opts
        .replace
        .iter()
        .find(|r| r.mode != Mode::Managed || ws.config.block(r).is_none())
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
    selected: Option<&Selection>,
    plan: &mut Plan,
) {
    let in_scope = |a: &Address| in_selection(selected, a);
    plan.changes
        .extend(deletions(ws.config.schemas, state, live, in_scope, |_| {
            None
        }));
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
    selected: Option<&'w Selection>,
    ctx: EvalCtx,
    diags: Diagnostics,
    /// The action decided for each resource so far, for the replacement cascade.
    actions: BTreeMap<Address, Action>,
    /// What the provider's plan-time checks look at, in plan order.
    checked: Vec<Planned<'w>>,
    /// `Planned::refs` of each block, by its address without keys.
    block_refs: BTreeMap<Address, crate::engine::provider::BlockRefs>,
    /// Every instance the configuration declares, as expanded so far.
    declared: BTreeSet<Address>,
    /// What `removed` blocks forget: neither declared nor destroyed.
    forgotten: BTreeSet<Address>,
    /// What `import` blocks bring in: each instance's id and what AWS has.
    imported: BTreeMap<Address, (String, Attrs)>,
    /// The module instances expanded so far.
    modules: crate::engine::modules::Modules,
    plan: Plan,
}

impl<'w, P: Provider> Walk<'w, P> {
    fn in_scope(&self, a: &Address) -> bool {
        in_selection(self.selected, a)
    }

    /// Whether any instance of a block is in the plan's scope.
    fn block_in_scope(&self, block: &Address) -> bool {
        self.selected.is_none_or(|s| {
            !s.block_excluded(block)
                && s.targets
                    .as_ref()
                    .is_none_or(|t| t.iter().any(|a| a.is_instance_of(block)))
        })
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

    /// `removed` blocks with `destroy = false`: what they name leaves the state, and its
    /// object is left alone. The block must be gone from the configuration, as in Terraform.
    fn forget(&mut self) -> Result<(), PlanError> {
        let config = &self.ws.config;
        let mut diags = Diagnostics::default();
        for r in &config.removed {
            if config.resources.contains_key(&r.from.base()) {
                diags.push(
                    Diagnostic::error(format!(
                        "removed resource still exists: this statement declares that {0} was removed, but it is still declared in configuration",
                        r.from
                    ))
                    .named(r.from.to_string())
                    .at(r.span.clone()),
                );
                continue;
            }
            if r.destroy {
                // Destroyed as anything no longer declared is.
                continue;
            }
            for (addr, state) in &self.state.resources {
                let named = if r.from.key.is_some() {
                    *addr == r.from
                } else {
                    addr.is_instance_of(&r.from)
                };
                if named && self.in_scope(addr) && self.forgotten.insert(addr.clone()) {
                    self.plan.forget.push((addr.clone(), state.id.clone()));
                }
            }
        }
        if diags.has_errors() {
            return Err(PlanError::Config(diags));
        }
        Ok(())
    }

    /// A block, in every instance of its module.
    async fn resource(&mut self, config_addr: &Address) -> Result<(), PlanError> {
        for m in self.modules.of(&config_addr.module_path()) {
            self.ctx.enter(&m);
            let planned = self.resource_in(&config_addr.in_module(&m)).await;
            self.ctx.enter(&[]);
            planned?;
        }
        Ok(())
    }

    /// A block in one module instance: its instances, each planned in turn with its
    /// `count.index` or `each`.
    async fn resource_in(&mut self, block_addr: &Address) -> Result<(), PlanError> {
        let ws = self.ws;
        let (Some(block), Some(schema)) = (
            ws.config.block_of(block_addr),
            ws.config
                .schemas
                .get(block_addr.mode, &block_addr.type_name),
        ) else {
            return Ok(());
        };
        self.ctx.set_resource(block_addr, empty_value(block));
        if !self.block_in_scope(block_addr) {
            // Outside the targets: seen as AWS has it, and left alone. Its `count` is not
            // evaluated, so that targeting can first apply what an unknown count reads.
            self.outside_scope(block_addr, block, schema);
            return Ok(());
        }
        self.import(block_addr).await?;
        let instances = match crate::lang::expand::instances(block, &self.ctx) {
            Ok(i) => i,
            Err(d) => {
                self.diags.push(d);
                self.ctx.set_resource(block_addr, Value::Unknown);
                return Ok(());
            }
        };
        for (addr, _) in self.imported.range(block_addr.clone()..) {
            if !addr.is_instance_of(block_addr) {
                break;
            }
            if !instances.iter().any(|i| i.key == addr.key) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "configuration for import target does not exist: the configuration for the given import target {addr} does not exist; all import targets must exist within the configuration"
                    ))
                    .named(addr.to_string())
                    .at(block.span.clone()),
                );
            }
        }
        for instance in instances {
            let addr = block_addr.with_key(instance.key.clone());
            self.declared.insert(addr.clone());
            instance.bind(&mut self.ctx);
            let planned = self.instance(block, schema, &addr).await;
            self.ctx.set_instance(None);
            planned?;
        }
        Ok(())
    }

    /// The `import` blocks into `block_addr`: each target's key and id evaluated (once per
    /// element of the import's `for_each`), and the objects read in one batched refresh.
    /// An instance the state already holds under the same id is left as it is.
    async fn import(&mut self, block_addr: &Address) -> Result<(), PlanError> {
        let config = &self.ws.config;
        let mut wanted: Vec<RefreshRequest> = Vec::new();
        for imp in config.imports.iter().filter(|i| i.to == *block_addr) {
            let elements = match &imp.for_each {
                None => vec![None],
                Some(e) => {
                    let repetition = crate::lang::config::Repetition::ForEach(e.clone());
                    let owner = format!("the import into {block_addr}");
                    match crate::lang::expand::instances_of(Some(&repetition), &owner, &self.ctx) {
                        Ok(i) => i.into_iter().map(Some).collect(),
                        Err(d) => {
                            self.diags.push(d);
                            continue;
                        }
                    }
                }
            };
            for element in elements {
                if let Some(e) = &element {
                    e.bind(&mut self.ctx);
                }
                let key = imp.key.as_ref().map(|k| (self.ctx.eval_top(&k.expr), k));
                let id = self.ctx.eval_top(&imp.id.expr);
                self.ctx.set_instance(None);
                let key = match key {
                    None => None,
                    Some((Ok((v, _)), _))
                        if crate::lang::address::InstanceKey::from_value(&v).is_some() =>
                    {
                        crate::lang::address::InstanceKey::from_value(&v)
                    }
                    Some((other, k)) => {
                        let message = match other {
                            Err(e) => e.message,
                            Ok((v, _)) => format!(
                                "an instance key must be a known string or whole number, not {v}"
                            ),
                        };
                        self.diags.push(
                            Diagnostic::error(format!(
                                "in the import into {block_addr}: {message}"
                            ))
                            .named(block_addr.to_string())
                            .at(k.span.clone()),
                        );
                        continue;
                    }
                };
                let addr = block_addr.with_key(key);
                let id = match id {
                    Ok((Value::String(s), _)) => s,
                    other => {
                        let message = match other {
                            Err(e) => e.message,
                            Ok((v, _)) => format!("the import id must be a known string, not {v}"),
                        };
                        self.diags.push(
                            Diagnostic::error(format!("in the import into {addr}: {message}"))
                                .named(addr.to_string())
                                .at(imp.id.span.clone()),
                        );
                        continue;
                    }
                };
                match self.state.resources.get(&addr) {
                    Some(r) if r.id == id => {}
                    Some(r) => self.diags.push(
                        Diagnostic::error(format!(
                            "{addr} is already managed, as {}; an import block cannot give it the object {id}",
                            r.id
                        ))
                        .named(addr.to_string())
                        .at(imp.span.clone()),
                    ),
                    None => wanted.push(RefreshRequest {
                        provider: self.ws.config.provider_of(&addr),
                        addr,
                        id,
                        prior: Attrs::new(),
                    }),
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let found = self
            .provider
            .refresh(&wanted)
            .await
            .map_err(PlanError::Refresh)?;
        for (r, attrs) in wanted.into_iter().zip(found) {
            match attrs {
                Some(attrs) => {
                    self.imported.insert(r.addr, (r.id, attrs));
                }
                None => self.diags.push(
                    Diagnostic::error(format!(
                        "cannot import non-existent remote object: while attempting to import an existing object to {}, no object exists with the id {:?}",
                        r.addr, r.id
                    ))
                    .named(r.addr.to_string()),
                ),
            }
        }
        Ok(())
    }

    /// A block none of whose instances is targeted: its value is what AWS has of the
    /// instances in state.
    fn outside_scope(&mut self, block_addr: &Address, block: &ResourceBlock, schema: &Schema) {
        let mut any = false;
        for (addr, _) in self
            .state
            .resources
            .range(block_addr.clone()..)
            .take_while(|(a, _)| a.is_instance_of(block_addr))
        {
            if let Some(attrs) = self.live.get(addr).cloned().flatten() {
                self.ctx.set_resource(addr, state_value(schema, &attrs));
                any = true;
            }
        }
        if !any && block.repetition.is_none() {
            self.ctx
                .set_resource(block_addr, resource_value(schema, &BTreeMap::new(), None));
        }
    }

    /// One instance of a block.
    async fn instance(
        &mut self,
        block: &'w ResourceBlock,
        schema: &Schema,
        addr: &Address,
    ) -> Result<(), PlanError> {
        let ws = self.ws;
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
            return self.data_source(addr, block, schema, &desired).await;
        }
        self.checked.push(planned(
            addr,
            block,
            desired.attrs.clone(),
            &mut self.block_refs,
        ));
        self.managed(addr, block, schema, &desired);
        Ok(())
    }

    /// A data source is read now, unless its configuration reads values known only after
    /// apply or its `depends_on` names something with changes pending: then it is read
    /// during apply, as in Terraform, and what reads it sees unknowns until then.
    async fn data_source(
        &mut self,
        addr: &Address,
        block: &'w ResourceBlock,
        schema: &Schema,
        desired: &Desired,
    ) -> Result<(), PlanError> {
        let scoped = self.ws.config.check_data.contains_key(&addr.base());
        let unknown = desired.attrs.values().any(Value::contains_unknown);
        if unknown && scoped {
            // A `check` block's data is not part of the apply; the assertions that read it
            // stay unknown.
            self.ctx
                .set_resource(addr, resource_value(schema, &BTreeMap::new(), None));
            return Ok(());
        }
        if unknown {
            self.defer_read(addr, schema, desired, Reason::ReadConfigUnknown);
            return Ok(());
        }
        if !scoped && self.dependency_pending(block) {
            self.defer_read(addr, schema, desired, Reason::ReadDependencyPending);
            return Ok(());
        }
        let attrs = match self
            .provider
            .read_data(
                &addr.type_name,
                &desired.to_attrs(),
                &self.ws.config.provider_of(addr),
            )
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
        self.checked
            .push(planned(addr, block, read, &mut self.block_refs));
        self.plan.data.insert(addr.clone(), attrs);
        Ok(())
    }

    /// Whether a `depends_on` entry of `block` names a resource or data source of this module
    /// instance with a change planned (a deferred read included).
    fn dependency_pending(&self, block: &ResourceBlock) -> bool {
        block.depends_on.iter().any(|(text, _)| {
            let Ok(dep) = text.parse::<Address>() else {
                return false;
            };
            let dep = dep.in_module(self.ctx.current());
            self.actions
                .iter()
                .any(|(a, action)| a.is_instance_of(&dep) && *action != Action::NoOp)
        })
    }

    /// A data source left for apply to read: planned as a read, its results unknown (what the
    /// configuration sets stays as set).
    fn defer_read(&mut self, addr: &Address, schema: &Schema, desired: &Desired, why: Reason) {
        let mut value = resource_value(schema, &desired.attrs, None);
        if let Value::Object(obj) = &mut value {
            for (name, a) in &schema.attributes {
                if a.mode == AttrMode::OptionalComputed && obj.get(name).is_none_or(Value::is_null)
                {
                    obj.insert(name.clone(), Value::Unknown);
                }
            }
        }
        self.ctx.set_resource(addr, value.clone());
        let Value::Object(after) = value else {
            return;
        };
        self.actions.insert(addr.clone(), Action::Read);
        self.plan.changes.push(ResourceChange {
            addr: addr.clone(),
            action: Action::Read,
            changes: Vec::new(),
            before: None,
            after,
            sensitive: desired
                .sensitive
                .iter()
                .chain(&sensitive_of(self.ws.config.schemas, addr))
                .cloned()
                .collect(),
            reason: Some(why),
            id: None,
            previous_address: None,
            importing: None,
            create_before_destroy: false,
        });
    }

    /// A managed resource: its action against what AWS has, forced replacements, and the
    /// replacement cascade; then its planned value for what reads it.
    fn managed(
        &mut self,
        addr: &Address,
        block: &ResourceBlock,
        schema: &Schema,
        configured: &Desired,
    ) {
        let prior = self.state.resources.get(addr);
        let importing = self.imported.get(addr).map(|(id, _)| id.clone());
        let now = self
            .live
            .get(addr)
            .cloned()
            .flatten()
            .or_else(|| self.imported.get(addr).map(|(_, attrs)| attrs.clone()));
        let desired = &Desired {
            attrs: crate::engine::lifecycle::ignoring(block, now.as_ref(), &configured.attrs),
            sensitive: configured.sensitive.clone(),
        };
        let (mut action, mut changes) = diff::<P>(schema, now.as_ref(), &desired.attrs);
        let mut reason = self.forced_replacement(addr, now.is_some(), &mut action);
        // An object cannot move between provider configurations (another region or account):
        // it is made anew in the one its block names now, and the old one deleted where it is.
        let alias = self.ws.config.provider_of(addr);
        if let Some(p) = prior.filter(|p| now.is_some() && p.provider != alias) {
            if action != Action::Replace {
                action = Action::Replace;
                reason = Some(Reason::ProviderChanged {
                    from: crate::lang::config::provider_name(&p.provider),
                    to: crate::lang::config::provider_name(&alias),
                });
            }
        }
        if let Some(why) = crate::engine::lifecycle::triggered(block, &self.actions, |a, attr| {
            self.plan
                .changes
                .iter()
                .any(|c| &c.addr == a && c.changes.iter().any(|ch| ch.name == attr))
        })
        .filter(|_| now.is_some() && action != Action::Replace)
        {
            action = Action::Replace;
            reason = Some(Reason::Triggered(why));
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
        if action == Action::Replace && addr.key.is_some() {
            // What reads the whole block reads every instance of it.
            self.actions.insert(addr.base(), action);
        }
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
            id: prior.map(|p| p.id.clone()).or_else(|| importing.clone()),
            previous_address: None,
            importing,
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
    ) -> Option<Reason> {
        let mut reason = None;
        if self.opts.replace.contains(addr) && exists && *action != Action::Replace {
            *action = Action::Replace;
            reason = Some(Reason::ReplaceRequested);
        }
        if let Some(why) = self.forced.get(addr).filter(|_| exists) {
            *action = Action::Replace;
            reason = Some(Reason::Forced(why.clone()));
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
    ) -> Option<Reason> {
        let mut reason = None;
        for (attr, expr) in &block.attrs {
            let Some(replaced) = self.replaced_reference(block, &expr.value) else {
                continue;
            };
            let attr = attr.clone();
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
                    forces_replacement: a.forces_new(&desired.attrs),
                });
            }
            if a.forces_new(&desired.attrs) {
                *action = Action::Replace;
            } else if *action == Action::NoOp {
                *action = Action::Update;
            }
            reason = Some(Reason::Replaced(replaced.to_string()));
        }
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        reason
    }

    /// The replaced instance an expression of `block` reads, if any, for the instance being
    /// planned. `aws_x.y[count.index]` reads the one instance its index selects; `each.value`
    /// of a `for_each` over a resource reads that resource's instance `each.key`; a reference
    /// to a whole repeated block reads every instance of it.
    fn replaced_reference(
        &self,
        block: &ResourceBlock,
        expr: &crate::lang::config::Expr,
    ) -> Option<Address> {
        let replaced = |a: &Address| self.actions.get(a) == Some(&Action::Replace);
        let key_of = |v: Value| crate::lang::address::InstanceKey::from_value(&v);
        let refs = references(&expr.expr).0;
        for r in &refs {
            let RefTarget::Resource(target) = &r.target else {
                continue;
            };
            let key = r
                .index
                .as_ref()
                .and_then(|i| self.ctx.eval_top(i).ok())
                .and_then(|(v, _)| key_of(v));
            let instance = target.with_key(key);
            if replaced(&instance) {
                return Some(instance);
            }
        }
        // `for_each = aws_x.y` with `each.value.attr`: the instance of the same key.
        let reads_each_value = refs
            .iter()
            .any(|r| matches!(&r.target, RefTarget::Each(a) if a == "value"));
        if let (true, Some(crate::lang::config::Repetition::ForEach(over))) =
            (reads_each_value, &block.repetition)
        {
            let Some(Value::Object(each)) = self.ctx.roots.get("each") else {
                return None;
            };
            let key = each.get("key")?.clone();
            for r in references(&over.expr).0 {
                if let (RefTarget::Resource(target), None) = (&r.target, &r.attr) {
                    let instance = target.with_key(key_of(key.clone()));
                    if replaced(&instance) {
                        return Some(instance);
                    }
                }
            }
        }
        None
    }

    /// What the configuration no longer declares is deleted, its outputs removed; the
    /// provider's checks run over everything planned; then every problem is reported at once.
    fn finish(mut self) -> Result<Plan, PlanError> {
        let ws = self.ws;
        let selected = self.selected;
        let declared = &self.declared;
        let forgotten = &self.forgotten;
        let orphan = |a: &Address| {
            !declared.contains(a) && !forgotten.contains(a) && in_selection(selected, a)
        };
        self.plan.changes.extend(deletions(
            ws.config.schemas,
            self.state,
            self.live,
            orphan,
            |a| Some(why_orphaned(&ws.config, a)),
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

/// Why an instance in state is no longer declared, in Terraform's words.
fn why_orphaned(config: &Config, a: &Address) -> Reason {
    use crate::lang::address::InstanceKey;
    use crate::lang::config::Repetition;
    let Some(module) = config.module_config(&a.module_path()) else {
        return Reason::NoConfig(format!(
            "its module {} is no longer in the configuration",
            crate::lang::address::module_text(&a.config_addr().module)
        ));
    };
    let Some(block) = module.resources.get(&a.local()) else {
        return Reason::NoConfig("it is no longer in the configuration".into());
    };
    if config.block(a).is_some() && !a.module.is_empty() {
        return Reason::NoConfig(format!(
            "its module instance {} is no longer declared",
            crate::lang::address::module_text(&a.module)
        ));
    }
    let key = || a.key.as_ref().map(ToString::to_string).unwrap_or_default();
    match (&block.repetition, &a.key) {
        (Some(Repetition::Count(_)), Some(InstanceKey::Int(_))) => Reason::CountIndex(key()),
        (Some(Repetition::ForEach(_)), Some(InstanceKey::Str(_))) => Reason::EachKey(key()),
        (Some(Repetition::Count(_)), _) => Reason::WrongRepetition(RepetitionKind::Count),
        (Some(Repetition::ForEach(_)), _) => Reason::WrongRepetition(RepetitionKind::ForEach),
        (None, _) => Reason::WrongRepetition(RepetitionKind::None),
    }
}

/// Delete changes for the resources in state that `select` picks and that still exist.
fn deletions<'a>(
    schemas: &'a Registry,
    state: &'a State,
    live: &'a BTreeMap<Address, Option<Attrs>>,
    select: impl Fn(&Address) -> bool + 'a,
    reason: impl Fn(&Address) -> Option<Reason> + 'a,
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
                reason: reason(addr),
                id: Some(r.id.clone()),
                previous_address: None,
                importing: None,
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
/// Terraform's `ConflictsWith`: two attributes of the schema that may not both be set (to
/// something other than null). Reported once per pair, at the one written later, naming both.
fn conflicts(
    block: &ResourceBlock,
    schema: &Schema,
    values: &BTreeMap<String, Value>,
    diags: &mut Diagnostics,
) {
    let set = |name: &str| {
        block
            .attrs
            .get(name)
            .filter(|_| values.get(name).is_some_and(|v| !v.is_null()))
    };
    for (name, a) in &schema.attributes {
        let Some(here) = set(name) else { continue };
        for other in &a.conflicts_with {
            let Some(there) = set(other) else { continue };
            // A pair declared on both sides is reported by the later-written attribute.
            let mutual = schema
                .attr(other)
                .is_some_and(|o| o.conflicts_with.contains(name));
            if mutual && there.name_span.range.start > here.name_span.range.start {
                continue;
            }
            diags.push(
                Diagnostic::error(format!(
                    "{}.{name} conflicts with {other}: set only one of them",
                    block.addr
                ))
                .named(name.clone())
                .at(here.name_span.clone()),
            );
        }
    }
}

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
    let mut block_refs = BTreeMap::new();
    let mut modules = crate::engine::modules::Modules::stand_ins();
    for node in &ws.order {
        match node {
            Node::Output(path, name) if path.is_empty() => {
                if let Some(expr) = ws.config.outputs.get(name).and_then(|o| o.value.as_ref()) {
                    if let Err(e) = ctx.eval_top(&expr.expr) {
                        diags.push(eval_diag(e, &expr.span, &format!("output.{name}")));
                    }
                }
            }
            Node::Resource(config_addr) => {
                for m in modules.of(&config_addr.module_path()) {
                    ctx.enter(&m);
                    let block_addr = config_addr.in_module(&m);
                    static_block::<P>(
                        ws,
                        &block_addr,
                        &mut ctx,
                        &mut values,
                        (&mut checked, &mut block_refs),
                        &mut diags,
                    );
                    ctx.enter(&[]);
                }
            }
            other => {
                crate::engine::modules::eval_value(
                    &ws.config,
                    other,
                    &mut ctx,
                    &mut modules,
                    &mut diags,
                );
            }
        }
    }
    for p in P::check_plan(&checked) {
        diags.push(problem_diag(ws, p));
    }
    (values, diags)
}

/// One block of one module instance, for `evaluate_static`: each instance evaluated with
/// unknowns for what only AWS knows.
fn static_block<P: Provider>(
    ws: &Workspace,
    block_addr: &Address,
    ctx: &mut EvalCtx,
    values: &mut BTreeMap<Address, Desired>,
    (checked, block_refs): (
        &mut Vec<Planned<'_>>,
        &mut BTreeMap<Address, crate::engine::provider::BlockRefs>,
    ),
    diags: &mut Diagnostics,
) {
    let (Some(block), Some(schema)) = (
        ws.config.block_of(block_addr),
        ws.config
            .schemas
            .get(block_addr.mode, &block_addr.type_name),
    ) else {
        return;
    };
    ctx.set_resource(block_addr, empty_value(block));
    let instances = crate::lang::expand::instances_or_stand_in(block, ctx).unwrap_or_else(|d| {
        diags.push(d);
        Vec::new()
    });
    for instance in instances {
        let addr = block_addr.with_key(instance.key.clone());
        instance.bind(ctx);
        let desired = ws
            .eval_resource::<P>(block, schema, ctx)
            .unwrap_or_else(|d| {
                diags.extend(d);
                Desired::default()
            });
        ctx.set_instance(None);
        checked.push(planned(&addr, block, desired.attrs.clone(), block_refs));
        let value = resource_value(schema, &desired.attrs, None);
        if instance.stand_in {
            // The block's instances are not known: nor is its value.
            ctx.set_resource(block_addr, Value::Unknown);
        } else {
            ctx.set_resource(&addr, value);
        }
        values.insert(addr, desired);
    }
}
