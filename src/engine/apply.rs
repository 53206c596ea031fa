//! Executing a plan: an operation graph walked concurrently, with state written the moment
//! each operation succeeds.
//!
//! Every replace becomes a delete and a create; creates and updates wait for what they depend
//! on, deletes wait for what depends on them. Up to `parallelism` operations run at once. A
//! failure lets in-flight work finish, skips everything downstream of it, and leaves
//! independent branches running, so the state always matches what AWS has.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::stream::{FuturesUnordered, StreamExt as _};

use crate::engine::diff::Action;
use crate::engine::graph::Node;
use crate::engine::plan::{state_value, Plan, Workspace};
use crate::engine::provider::{
    ErrorKind, Found, Identity, Lost, OpContext, Provider, ProviderError,
};
use crate::lang::address::{Address, InstanceKey};
use crate::lang::expand::Instance;
use crate::lang::value::Value;
use crate::state::{
    Attrs, Intent, OutputState, Owner, ResourceState, State, StateError, StateStore,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OpKind {
    Delete,
    Create,
    Update,
    /// A data source read during apply, once what its configuration reads is known. Its
    /// result goes to what reads it; nothing is written to the state.
    Read,
    /// Not a call: passed once every create and update of a block's instances is done.
    /// Dependencies are between blocks, as in Terraform, so an instance that reads a block
    /// waits for this one step instead of for each instance (N x M waits for N readers of M
    /// instances).
    Ready,
    /// Not a call: passed once every delete of a block's instances is done; what the block
    /// depended on is deleted after it.
    Gone,
}

impl OpKind {
    /// The operation's name, as intents record it and as `timeouts` blocks key it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Read => "read",
            OpKind::Delete => "delete",
            OpKind::Ready => "ready",
            OpKind::Gone => "gone",
        }
    }

    /// Whether this is a step of the walk rather than a call to the provider.
    pub(crate) fn is_step(self) -> bool {
        matches!(self, OpKind::Ready | OpKind::Gone)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Op {
    pub(crate) kind: OpKind,
    pub(crate) addr: Address,
}

/// Progress, for the printer.
#[derive(Debug, Clone)]
pub enum Event {
    Started(Op),
    Finished {
        op: Op,
        id: String,
        secs: u64,
    },
    Failed {
        op: Op,
        error: String,
    },
    /// Something worth saying about an operation that went on (an adopted object).
    Note {
        op: Op,
        message: String,
    },
    /// An operation still running, every `ApplyOptions::progress` interval: Terraform's
    /// "Still creating... [10s elapsed]".
    Still {
        op: Op,
        elapsed: std::time::Duration,
    },
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub added: usize,
    pub(crate) changed: usize,
    pub(crate) destroyed: usize,
    pub(crate) failures: Vec<(Address, String)>,
    pub(crate) skipped: Vec<Address>,
    /// Operations never started because the apply was interrupted.
    pub(crate) not_started: Vec<Address>,
    /// What `check` blocks found once the apply was done: warnings.
    pub(crate) warnings: crate::lang::diagnostic::Diagnostics,
}

/// How an apply runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How many operations may run at once.
    pub(crate) parallelism: usize,
    /// Set (by a signal) to start no new operation; those in flight finish and are recorded.
    pub(crate) cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How often to report each operation still running (`Event::Still`); `None` reports
    /// nothing, and needs no timer in the runtime.
    pub(crate) progress: Option<std::time::Duration>,
}

impl ApplyOptions {
    #[must_use]
    pub fn with_parallelism(parallelism: usize) -> ApplyOptions {
        ApplyOptions {
            parallelism,
            cancel: std::sync::Arc::default(),
            progress: None,
        }
    }
}

/// How the identity running an apply relates to the state's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerCheck {
    /// Nobody has written this state yet; the caller becomes its owner.
    Unowned,
    Same,
    /// Another user or role of the owner's account: allowed, with a warning.
    SameAccount(Owner),
    /// Another account: every write is refused.
    OtherAccount(Owner),
}

/// Compares the caller with the state's owner, the guide's rule that the identity that
/// created something owns it.
pub(crate) fn check_owner(state: &State, caller: &Identity) -> OwnerCheck {
    match &state.owner {
        None => OwnerCheck::Unowned,
        Some(o) if o.tenant != caller.tenant => OwnerCheck::OtherAccount(o.clone()),
        Some(o) if o.principal != caller.principal => OwnerCheck::SameAccount(o.clone()),
        Some(_) => OwnerCheck::Same,
    }
}

/// Builds the operations of a plan and what each waits for.
pub(crate) fn operations(ws: &Workspace, plan: &Plan) -> BTreeMap<Op, BTreeSet<Op>> {
    let mut ops: BTreeMap<Op, BTreeSet<Op>> = BTreeMap::new();
    let op = |kind, addr: &Address| Op {
        kind,
        addr: addr.clone(),
    };
    for c in &plan.changes {
        match c.action {
            Action::NoOp => {}
            Action::Create => {
                ops.insert(op(OpKind::Create, &c.addr), BTreeSet::new());
            }
            Action::Update => {
                ops.insert(op(OpKind::Update, &c.addr), BTreeSet::new());
            }
            Action::Read => {
                ops.insert(op(OpKind::Read, &c.addr), BTreeSet::new());
            }
            Action::Delete => {
                ops.insert(op(OpKind::Delete, &c.addr), BTreeSet::new());
            }
            // `create_before_destroy`: the old object goes once its successor exists.
            Action::Replace if c.create_before_destroy => {
                ops.insert(op(OpKind::Create, &c.addr), BTreeSet::new());
                ops.insert(
                    op(OpKind::Delete, &c.addr),
                    BTreeSet::from([op(OpKind::Create, &c.addr)]),
                );
            }
            Action::Replace => {
                ops.insert(op(OpKind::Delete, &c.addr), BTreeSet::new());
                ops.insert(
                    op(OpKind::Create, &c.addr),
                    BTreeSet::from([op(OpKind::Delete, &c.addr)]),
                );
            }
        }
    }
    // Dependencies name blocks as the configuration declares them; a block stands for all
    // its instances, in every instance of its module, through its Ready and Gone steps.
    let mut by_block: BTreeMap<Address, Vec<Op>> = BTreeMap::new();
    for o in ops.keys() {
        by_block
            .entry(o.addr.config_addr())
            .or_default()
            .push(o.clone());
    }
    let cbd: BTreeSet<&Address> = plan
        .changes
        .iter()
        .filter(|c| c.create_before_destroy && c.action == Action::Replace)
        .map(|c| &c.addr)
        .collect();
    let step = |kind, block: &Address| Op {
        kind,
        addr: block.clone(),
    };
    for (block, members) in &by_block {
        let made: BTreeSet<Op> = members
            .iter()
            .filter(|m| m.kind != OpKind::Delete)
            .cloned()
            .collect();
        let gone: BTreeSet<Op> = members
            .iter()
            .filter(|m| m.kind == OpKind::Delete)
            .cloned()
            .collect();
        ops.insert(step(OpKind::Ready, block), made);
        ops.insert(step(OpKind::Gone, block), gone);
    }
    let keys: Vec<Op> = ops.keys().filter(|o| !o.kind.is_step()).cloned().collect();
    for o in &keys {
        match o.kind {
            OpKind::Create | OpKind::Update | OpKind::Read => {
                let deps = ws.graph.resource_deps(&Node::Resource(o.addr.clone()));
                for d in &deps {
                    // What read a deposed object moves to its successor before it goes.
                    for dep in by_block.get(&d.config_addr()).into_iter().flatten() {
                        if dep.kind == OpKind::Delete && cbd.contains(&dep.addr) {
                            ops.entry(dep.clone()).or_default().insert(o.clone());
                        }
                    }
                }
                for d in deps {
                    let ready = step(OpKind::Ready, &d.config_addr());
                    if ops.contains_key(&ready) {
                        ops.entry(o.clone()).or_default().insert(ready);
                    }
                }
            }
            OpKind::Delete => {
                // Whatever this object depended on is deleted only after it (after every
                // instance of its block).
                if let Some(r) = plan.state.resources.get(&o.addr) {
                    let gone = step(OpKind::Gone, &o.addr.config_addr());
                    for d in &r.deps {
                        for dep in by_block.get(&d.config_addr()).into_iter().flatten() {
                            if dep.kind == OpKind::Delete && dep != o {
                                if let Some(waits) = ops.get_mut(dep) {
                                    waits.insert(gone.clone());
                                }
                            }
                        }
                    }
                }
            }
            OpKind::Ready | OpKind::Gone => {}
        }
    }
    ops
}

/// Applies a plan. Returns the report; a state write failure aborts at once (nothing more is
/// started, since it could not be recorded).
///
/// The steps: record what recovery found and set up (`Run::prepare`), then until nothing is
/// left: start what is ready (`Run::start`, which commits each write-ahead intent before its
/// call), wait for one call to finish, and record it (`Run::succeeded` / `Run::failed`).
pub async fn apply<P: Provider, S: StateStore>(
    provider: &P,
    ws: &Workspace,
    plan: &Plan,
    store: &mut S,
    opts: &ApplyOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<ApplyReport, StateError> {
    let mut run = Run::prepare(ws, plan, store).await?;
    let parallelism = opts.parallelism.max(1);
    let mut running = FuturesUnordered::new();
    // When each operation in flight started, and how many progress lines it has had.
    let mut in_flight: BTreeMap<Op, (std::time::Instant, u32)> = BTreeMap::new();
    loop {
        // Start what is ready, unless interrupted: then only what is in flight completes.
        let cancelled = opts.cancel.load(std::sync::atomic::Ordering::SeqCst);
        if cancelled && running.is_empty() {
            // A replace is two operations on one address: each address once.
            let unstarted: BTreeSet<Address> = run
                .pending
                .keys()
                .filter(|o| !o.kind.is_step())
                .map(|o| o.addr.clone())
                .collect();
            run.report.not_started = unstarted.into_iter().collect();
            break;
        }
        let room = if cancelled {
            0
        } else {
            parallelism.saturating_sub(running.len())
        };
        // Steps are passed at once: they make no call, and may ready more operations.
        // Steps sort after every call (`OpKind`'s order), so the last ready one tells.
        while let Some(step) = run.ready.last().filter(|o| o.kind.is_step()).cloned() {
            run.pass(&step);
        }
        let starting: Vec<Op> = run.ready.iter().take(room).cloned().collect();
        for o in starting {
            let call = run.start(provider, store, o).await?;
            on_event(Event::Started(call.op.clone()));
            in_flight.insert(call.op.clone(), (std::time::Instant::now(), 0));
            running.push(call.perform(provider));
        }
        let next = match opts.progress {
            None => running.next().await,
            Some(every) => next_reporting(&mut running, &mut in_flight, every, on_event).await,
        };
        let Some((o, result, secs)) = next else {
            break;
        };
        in_flight.remove(&o);
        match result {
            Ok(done) => run.succeeded(store, o, done, secs, on_event).await?,
            Err(e) => run.failed(store, o, &e, on_event).await?,
        }
    }
    run.freshen(None);
    // Outputs of a partial apply could read what it did not touch; they wait for a whole one.
    if !plan.is_partial() {
        write_outputs(ws, &run.ctx, store, plan.destroy).await?;
    }
    if !plan.destroy && !plan.refresh_only {
        run.report.warnings =
            crate::engine::checks::run(&ws.config, &mut run.ctx, crate::engine::plan::eval_diag);
    }
    Ok(run.report)
}

/// The next operation to finish; meanwhile, each one in flight is reported (`Event::Still`)
/// every `every` from its start, so that a long wait is not silent.
async fn next_reporting<F: std::future::Future>(
    running: &mut FuturesUnordered<F>,
    in_flight: &mut BTreeMap<Op, (std::time::Instant, u32)>,
    every: std::time::Duration,
    on_event: &mut dyn FnMut(Event),
) -> Option<F::Output> {
    loop {
        let due = |(start, n): &(std::time::Instant, u32)| *start + every * (n + 1);
        let Some(first) = in_flight.values().map(due).min() else {
            return running.next().await;
        };
        tokio::select! {
            done = running.next() => return done,
            () = tokio::time::sleep_until(first.into()) => {
                let now = std::time::Instant::now();
                for (op, entry) in in_flight.iter_mut() {
                    if due(entry) <= now {
                        entry.1 += 1;
                        on_event(Event::Still {
                            op: op.clone(),
                            elapsed: every * entry.1,
                        });
                    }
                }
            }
        }
    }
}

/// What an apply carries from one operation to the next.
struct Run<'a, P> {
    ws: &'a Workspace,
    /// The state's lineage, for idempotency tokens and intents.
    lineage: String,
    /// What each resource is now: the plan's view, then each result as it comes.
    current: BTreeMap<Address, ResourceState>,
    /// Values of resources, data sources and locals, for evaluating the next operations.
    ctx: crate::lang::eval::EvalCtx,
    /// The module instances, as the values pass expands them.
    modules: crate::engine::modules::Modules,
    /// The ids the state held when the apply began, by type, shared by every call (copying
    /// them for each create would be quadratic).
    known: BTreeMap<String, std::sync::Arc<[String]>>,
    /// Operations not started yet, with what each still waits for.
    pending: BTreeMap<Op, BTreeSet<Op>>,
    /// Who waits for whom, the other way round, so that each completion touches only its
    /// dependents.
    dependents: BTreeMap<Op, Vec<Op>>,
    ready: BTreeSet<Op>,
    report: ApplyReport,
    /// Replacements made create-before-destroy, and the old objects their creates deposed,
    /// until each is deleted. The state holds one object per address, so a deposed object
    /// lives here only: if its delete fails it is left in AWS (tagged with the lineage).
    deposing: BTreeSet<Address>,
    deposed: BTreeMap<Address, ResourceState>,
    /// Values (positions in `ws.order`) that read a resource finished since they were last
    /// evaluated. They are evaluated when an operation reads them (`Run::freshen`), not after
    /// every completion: that made an apply cost operations × values.
    stale: BTreeSet<usize>,
    /// `Graph::values_around`: the values that read each block, and the values it reads.
    readers: HashMap<Node, Vec<usize>>,
    inputs: HashMap<Node, Vec<usize>>,
    each: EachCache,
    provider: std::marker::PhantomData<P>,
}

/// The instances of each `for_each` block instance (by its address without key) whose
/// collection was wholly known when evaluated: finished operations only make unknown values
/// known, so such a collection cannot change, and evaluating it again for every instance
/// made a block of N instances cost N².
#[derive(Default)]
struct EachCache(HashMap<Address, BTreeMap<Option<InstanceKey>, Instance>>);

/// One operation about to be sent, with everything it needs.
struct Call {
    op: Op,
    type_name: String,
    /// The evaluated attributes, or why there are none.
    planned: Result<Attrs, ProviderError>,
    prior: Option<ResourceState>,
    evidence: Attrs,
    /// The ids of this type the state held when the apply began: what a lost create's
    /// search must not take for its own (objects created since are checked when recorded).
    known_ids: std::sync::Arc<[String]>,
    ctx: OpContext,
}

impl<'a, P: Provider> Run<'a, P> {
    /// Records what recovery found, and sets up from the plan: the operations and their
    /// order, the lineage, what each resource is, and the values expressions read.
    async fn prepare<S: StateStore>(
        ws: &'a Workspace,
        plan: &Plan,
        store: &mut S,
    ) -> Result<Run<'a, P>, StateError> {
        // What an interrupted apply left was shown in the plan; it is recorded before anything
        // else, so the operations below start from the state the plan was made against.
        plan.recovery.persist(store).await?;
        // Then the renames the configuration asked for, so that every operation below finds
        // its object at the address the plan used.
        for m in &plan.moves {
            store.rename(&m.from, &m.to).await?;
        }
        for (addr, _) in &plan.forget {
            store.forget(addr).await?;
        }
        // What import blocks bring in is recorded before it is changed.
        for c in &plan.changes {
            if let (Some(id), Some(attrs)) = (&c.importing, &c.before) {
                store
                    .put(&ResourceState {
                        addr: c.addr.clone(),
                        id: id.clone(),
                        attrs: attrs.clone(),
                        deps: ws.graph.managed_deps(&c.addr),
                        sensitive: c.sensitive.clone(),
                        provider: ws.config.provider_of(&c.addr),
                    })
                    .await?;
            }
        }
        let pending = operations(ws, plan);
        // The lineage exists once anything was written (the owner is recorded before an apply).
        let lineage = match store.load().await?.lineage {
            l if l.is_empty() => plan.state.lineage.clone(),
            l => l,
        };
        // Updates and deletes start from what AWS said at plan time, not from older state.
        let mut current: BTreeMap<Address, ResourceState> = plan.state.resources.clone();
        for (addr, _) in &plan.forget {
            current.remove(addr);
        }
        for c in &plan.changes {
            if let (Some(id), Some(attrs)) = (&c.importing, &c.before) {
                current.insert(
                    c.addr.clone(),
                    ResourceState {
                        addr: c.addr.clone(),
                        id: id.clone(),
                        attrs: attrs.clone(),
                        deps: ws.graph.managed_deps(&c.addr),
                        sensitive: c.sensitive.clone(),
                        provider: ws.config.provider_of(&c.addr),
                    },
                );
            }
        }
        for c in &plan.changes {
            if let (Some(r), Some(live)) = (current.get_mut(&c.addr), &c.before) {
                r.attrs.clone_from(live);
            }
        }
        // Objects that are gone from AWS and that nothing recreates leave the state now (a
        // delete interrupted after AWS acted, or a destroy of what someone else removed).
        for d in &plan.drift {
            let recreated = plan
                .changes
                .iter()
                .any(|c| c.addr == d.addr && matches!(c.action, Action::Create | Action::Replace));
            if d.live.is_none() && !recreated && !plan.refresh_only {
                store.remove(&d.addr).await?;
                current.remove(&d.addr);
            }
        }
        let mut ctx = ws.base_ctx();
        // The module instances first, so that every block's value starts empty in each.
        let mut modules = crate::engine::modules::Modules::default();
        crate::engine::modules::eval_values(&ws.config, &ws.order, &mut ctx, &mut modules);
        for (path, module) in ws.config.all_modules() {
            for m in modules.of(&path) {
                ctx.enter(&m);
                for block in module.resources.values() {
                    if block.repetition.is_some() {
                        ctx.set_resource(&block.addr, crate::engine::plan::empty_value(block));
                    }
                }
            }
        }
        for (addr, attrs) in &plan.data {
            if let Some(schema) = ws.config.schemas.get(addr.mode, &addr.type_name) {
                ctx.enter(&addr.module);
                ctx.set_resource(addr, state_value(schema, attrs));
            }
        }
        // What the plan deletes is not there to read (a `count` lowered must not leave its
        // old instances in the block's list).
        let deleted: BTreeSet<&Address> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| &c.addr)
            .collect();
        for (addr, r) in &current {
            if let Some(schema) = ws.config.schemas.resources.get(&addr.type_name) {
                if !deleted.contains(addr) {
                    ctx.enter(&addr.module);
                    ctx.set_resource(addr, state_value(schema, &r.attrs));
                }
            }
        }
        ctx.enter(&[]);
        crate::engine::modules::eval_values(&ws.config, &ws.order, &mut ctx, &mut modules);
        let readers = ws
            .graph
            .values_around(&ws.order, petgraph::Direction::Outgoing);
        let inputs = ws
            .graph
            .values_around(&ws.order, petgraph::Direction::Incoming);
        let mut known: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in current.values() {
            known
                .entry(r.addr.type_name.clone())
                .or_default()
                .push(r.id.clone());
        }
        let known = known
            .into_iter()
            .map(|(t, ids)| (t, std::sync::Arc::from(ids)))
            .collect();
        let mut dependents: BTreeMap<Op, Vec<Op>> = BTreeMap::new();
        for (o, waits) in &pending {
            for w in waits {
                dependents.entry(w.clone()).or_default().push(o.clone());
            }
        }
        let ready = pending
            .iter()
            .filter(|(_, w)| w.is_empty())
            .map(|(o, _)| o.clone())
            .collect();
        Ok(Run {
            ws,
            lineage,
            known,
            current,
            ctx,
            modules,
            pending,
            dependents,
            ready,
            report: ApplyReport::default(),
            deposing: plan
                .changes
                .iter()
                .filter(|c| c.create_before_destroy && c.action == Action::Replace)
                .map(|c| c.addr.clone())
                .collect(),
            deposed: BTreeMap::new(),
            stale: BTreeSet::new(),
            readers,
            inputs,
            each: EachCache::default(),
            provider: std::marker::PhantomData,
        })
    }

    /// Takes an operation off the ready set and prepares its call: the configuration
    /// evaluated with what is known now, the provider's evidence for a create, and the
    /// write-ahead intent, committed before the call exists.
    async fn start<S: StateStore>(
        &mut self,
        provider: &P,
        store: &mut S,
        o: Op,
    ) -> Result<Call, StateError> {
        self.ready.remove(&o);
        self.pending.remove(&o);
        let type_name = o.addr.type_name.clone();
        let mut planned = match o.kind {
            OpKind::Delete | OpKind::Ready | OpKind::Gone => Ok(Attrs::new()),
            OpKind::Create | OpKind::Update | OpKind::Read => {
                self.freshen(Some(&o.addr));
                evaluate::<P>(self.ws, &mut self.ctx, &mut self.each, &o.addr)
                    .map_err(|m| ProviderError::new("Unevaluated", m))
            }
        };
        // A precondition unknown at plan time is checked now, before the object is touched.
        if let (OpKind::Create | OpKind::Update | OpKind::Read, Some(block)) =
            (o.kind, self.ws.config.block_of(&o.addr))
        {
            let failed = crate::engine::lifecycle::check(
                &mut self.ctx,
                &block.lifecycle.preconditions,
                &o.addr.to_string(),
                (crate::engine::lifecycle::When::Pre, None),
                crate::engine::plan::eval_diag,
            );
            if let Some(d) = failed.0.into_iter().next() {
                let message = std::iter::once(d.message)
                    .chain(d.notes)
                    .collect::<Vec<_>>()
                    .join(": ");
                planned = Err(ProviderError::new("PreconditionFailed", message));
            }
        }
        if let (OpKind::Update, Ok(attrs), Some(block), Some(prior)) = (
            o.kind,
            &mut planned,
            self.ws.config.block_of(&o.addr),
            self.current.get(&o.addr),
        ) {
            crate::engine::lifecycle::keep_ignored(block, &prior.attrs, attrs);
        }
        let prior = match o.kind {
            OpKind::Delete => self.deposed.get(&o.addr),
            OpKind::Create | OpKind::Update | OpKind::Read | OpKind::Ready | OpKind::Gone => None,
        }
        .or_else(|| self.current.get(&o.addr))
        .cloned();
        let ctx = OpContext {
            addr: o.addr.clone(),
            lineage: self.lineage.clone(),
            // A block's `timeouts` name the operations as the intent does.
            timeout: self
                .ws
                .config
                .block_of(&o.addr)
                .and_then(|b| b.timeouts.get(o.kind.name()))
                .copied(),
            // A delete goes where the object is; a create or update where its block says (a
            // change of configuration was planned as a replacement).
            provider: match (o.kind, &prior) {
                (OpKind::Delete, Some(p)) => p.provider.clone(),
                _ => self.ws.config.provider_of(&o.addr),
            },
        };
        // What will tell this create's object from others if its answer is lost. Few types
        // need any, and those need one read.
        let evidence = match (&planned, o.kind) {
            (Ok(attrs), OpKind::Create) => provider.evidence(&type_name, attrs, &ctx).await,
            _ => Ok(Attrs::new()),
        };
        let (planned, evidence) = match (planned, evidence) {
            (Ok(p), Ok(e)) => (Ok(p), e),
            (Err(e), _) | (_, Err(e)) => (Err(e), Attrs::new()),
        };
        // Write-ahead: the intent is committed before the call, so a crash during it leaves a
        // trace the next run reconciles. The store's future resolves only once the intent is
        // durable, and the call is not made before that. A read changes nothing to trace.
        if let (Ok(attrs), false) = (&planned, o.kind == OpKind::Read) {
            store
                .open_intent(&Intent {
                    addr: o.addr.clone(),
                    op: o.kind.name().into(),
                    token: self.lineage.clone(),
                    attrs: attrs.clone(),
                    evidence: evidence.clone(),
                    provider: ctx.provider.clone(),
                })
                .await?;
        }
        let known_ids = self
            .known
            .get(&type_name)
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::from(Vec::new()));
        Ok(Call {
            prior,
            ctx,
            op: o,
            type_name,
            planned,
            evidence,
            known_ids,
        })
    }

    /// Records a finished operation, and readies what waited for it.
    async fn succeeded<S: StateStore>(
        &mut self,
        store: &mut S,
        o: Op,
        done: Done,
        secs: u64,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<(), StateError> {
        let Done { id, attrs, note } = done;
        let mut postcondition = None;
        // An adopted object must not be one that another address of this state holds: one
        // made earlier in this apply is not among the ids the search was told to pass over.
        let holder = (o.kind == OpKind::Create && note.is_some())
            .then(|| {
                self.current.values().find(|r| {
                    r.addr != o.addr && r.addr.type_name == o.addr.type_name && r.id == id
                })
            })
            .flatten();
        if let Some(holder) = holder {
            let e = ProviderError::new(
                "AlreadyExists",
                format!(
                    "the object {id} that answers this create is {}'s",
                    holder.addr
                ),
            );
            return self.failed(store, o, &e, on_event).await;
        }
        if let Some(message) = note {
            on_event(Event::Note {
                op: o.clone(),
                message,
            });
        }
        match o.kind {
            // A deposed object's successor is in the state already and stays there.
            OpKind::Delete if self.deposed.remove(&o.addr).is_some() => {
                self.report.destroyed += 1;
            }
            OpKind::Delete => {
                store.remove(&o.addr).await?;
                self.current.remove(&o.addr);
                self.report.destroyed += 1;
            }
            // Passed by the walk (`Run::pass`), never performed.
            OpKind::Ready | OpKind::Gone => {}
            OpKind::Read => {
                postcondition = self.read_done(&o.addr, &attrs);
            }
            OpKind::Create | OpKind::Update => {
                let ws = self.ws;
                let deps = ws.graph.managed_deps(&o.addr);
                self.freshen(Some(&o.addr));
                let r = ResourceState {
                    addr: o.addr.clone(),
                    id: id.clone(),
                    attrs: attrs.clone(),
                    deps,
                    sensitive: sensitive_inputs::<P>(ws, &mut self.ctx, &mut self.each, &o.addr),
                    provider: ws.config.provider_of(&o.addr),
                };
                // Its intent is closed in the same write (the object is recorded).
                store.put_closing_intent(&r).await?;
                if let Some(old) = self.current.insert(o.addr.clone(), r) {
                    if o.kind == OpKind::Create && self.deposing.contains(&o.addr) {
                        self.deposed.insert(o.addr.clone(), old);
                    }
                }
                if o.kind == OpKind::Create {
                    self.report.added += 1;
                } else {
                    self.report.changed += 1;
                }
                if let Some(schema) = ws.config.schemas.resources.get(&o.addr.type_name) {
                    self.ctx.enter(&o.addr.module);
                    self.ctx.set_resource(&o.addr, state_value(schema, &attrs));
                    if let Some(block) = ws.config.block_of(&o.addr) {
                        postcondition = crate::engine::lifecycle::check(
                            &mut self.ctx,
                            &block.lifecycle.postconditions,
                            &o.addr.to_string(),
                            (
                                crate::engine::lifecycle::When::Post,
                                Some(state_value(schema, &attrs)),
                            ),
                            crate::engine::plan::eval_diag,
                        )
                        .0
                        .into_iter()
                        .next();
                    }
                    self.ctx.enter(&[]);
                }
                // Locals, module variables and outputs that read this resource may now be
                // known.
                self.went_stale(&o.addr);
            }
        }
        // A create's or update's intent was closed with its `put`.
        if !matches!(o.kind, OpKind::Read | OpKind::Create | OpKind::Update) {
            store.close_intent(&o.addr).await?;
        }
        // The object is made and recorded, but what depends on it must not build on an object
        // that fails its postcondition: the operation counts as failed, as in Terraform.
        if let Some(d) = postcondition {
            let message = std::iter::once(d.message)
                .chain(d.notes)
                .collect::<Vec<_>>()
                .join(": ");
            let e = ProviderError::new("PostconditionFailed", message);
            return self.failed(store, o, &e, on_event).await;
        }
        self.release(&o);
        on_event(Event::Finished { op: o, id, secs });
        Ok(())
    }

    /// Records a failed operation and skips everything downstream of it.
    async fn failed<S: StateStore>(
        &mut self,
        store: &mut S,
        o: Op,
        e: &ProviderError,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<(), StateError> {
        // An intent stays open only when the outcome is unknown: a create that got no answer,
        // or failed after part of its work, may have made something the next run must find.
        // An answered error made nothing; an update or delete needs no search, since the next
        // refresh reads what AWS has.
        if o.kind != OpKind::Read && (o.kind != OpKind::Create || e.kind != ErrorKind::Unknown) {
            store.close_intent(&o.addr).await?;
        }
        let message = e.to_string();
        self.report.failures.push((o.addr.clone(), message.clone()));
        on_event(Event::Failed {
            op: o.clone(),
            error: message,
        });
        let mut doomed: Vec<Op> = self.dependents.get(&o).cloned().unwrap_or_default();
        let mut skipped: BTreeSet<Address> = self.report.skipped.iter().cloned().collect();
        while let Some(d) = doomed.pop() {
            if self.pending.remove(&d).is_none() {
                continue;
            }
            self.ready.remove(&d);
            if !d.kind.is_step() && skipped.insert(d.addr.clone()) {
                self.report.skipped.push(d.addr.clone());
            }
            doomed.extend(self.dependents.get(&d).cloned().unwrap_or_default());
        }
        Ok(())
    }

    /// A deferred data source was read: its values are what expressions see from now on, and
    /// its postconditions are checked. Returns the first that failed.
    fn read_done(
        &mut self,
        addr: &Address,
        attrs: &Attrs,
    ) -> Option<crate::lang::diagnostic::Diagnostic> {
        let ws = self.ws;
        let schema = ws.config.schemas.get(addr.mode, &addr.type_name)?;
        let value = state_value(schema, attrs);
        self.ctx.enter(&addr.module);
        self.ctx.set_resource(addr, value.clone());
        let failed = ws.config.block_of(addr).and_then(|block| {
            crate::engine::lifecycle::check(
                &mut self.ctx,
                &block.lifecycle.postconditions,
                &addr.to_string(),
                (crate::engine::lifecycle::When::Post, Some(value)),
                crate::engine::plan::eval_diag,
            )
            .0
            .into_iter()
            .next()
        });
        self.ctx.enter(&[]);
        self.went_stale(addr);
        failed
    }

    /// The values that read `addr` may have become known.
    fn went_stale(&mut self, addr: &Address) {
        if let Some(at) = self.readers.get(&Node::Resource(addr.config_addr())) {
            self.stale.extend(at.iter().copied());
        }
    }

    /// Evaluates the stale values that `addr` reads, or every stale value (`None`).
    fn freshen(&mut self, addr: Option<&Address>) {
        if self.stale.is_empty() {
            return;
        }
        let at: Vec<usize> = match addr {
            None => std::mem::take(&mut self.stale).into_iter().collect(),
            Some(addr) => self
                .inputs
                .get(&Node::Resource(addr.config_addr()))
                .into_iter()
                .flatten()
                .filter(|i| self.stale.remove(i))
                .copied()
                .collect(),
        };
        let ws = self.ws;
        crate::engine::modules::eval_values_at(
            &ws.config,
            &ws.order,
            at,
            &mut self.ctx,
            &mut self.modules,
            &mut crate::lang::diagnostic::Diagnostics::default(),
        );
    }

    /// Passes a step: what waited for it is readied.
    fn pass(&mut self, step: &Op) {
        self.ready.remove(step);
        self.pending.remove(step);
        self.release(step);
    }

    /// Readies what waited only for `o`, now done.
    fn release(&mut self, o: &Op) {
        for d in self.dependents.get(o).into_iter().flatten() {
            if let Some(waits) = self.pending.get_mut(d) {
                waits.remove(o);
                if waits.is_empty() {
                    self.ready.insert(d.clone());
                }
            }
        }
    }
}

impl Call {
    /// Sends the call; the answer comes back with the operation and how long it took.
    async fn perform<P: Provider>(self, provider: &P) -> (Op, Result<Done, ProviderError>, u64) {
        let started = std::time::Instant::now();
        let Call {
            op,
            type_name,
            planned,
            prior,
            evidence,
            known_ids,
            ctx,
        } = self;
        let result = match planned {
            Err(e) => Err(e),
            Ok(planned) => match (op.kind, prior) {
                (OpKind::Create, _) => {
                    create_or_adopt(provider, &type_name, &planned, &evidence, &known_ids, &ctx)
                        .await
                }
                (OpKind::Update, Some(p)) => provider
                    .update(&type_name, &p.id, &p.attrs, &planned, &ctx)
                    .await
                    .map(|a| Done::made(p.id.clone(), a)),
                (OpKind::Delete, Some(p)) => provider
                    .delete(&type_name, &p.id, &p.attrs, &ctx)
                    .await
                    .map(|()| Done::made(p.id.clone(), Attrs::new())),
                // A read's id is the one its result names, for the progress line.
                (OpKind::Read, _) => provider
                    .read_data(&type_name, &planned, &ctx.provider)
                    .await
                    .map(|attrs| {
                        let id = attrs
                            .get("id")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        Done::made(id, attrs)
                    }),
                // Steps are passed by the walk, never sent.
                (OpKind::Ready | OpKind::Gone, _) => Err(ProviderError::new(
                    "NotACall",
                    "a step of the walk is not sent",
                )),
                (_, None) => Err(ProviderError::new("NotInState", "there is no prior object")),
            }
            .map(|mut done| {
                // `tags` and `tags_all` told apart again, as they were sent (a data source of
                // a resource type's name has no such pair).
                if let (Some(schema), false) = (
                    P::schemas().resources.get(&type_name),
                    op.kind == OpKind::Read,
                ) {
                    crate::engine::default_tags::split(schema, &mut done.attrs, &planned);
                }
                done
            }),
        };
        (op, result, started.elapsed().as_secs())
    }
}

/// What a finished operation records.
struct Done {
    id: String,
    attrs: Attrs,
    /// Said to the user (an object adopted instead of created).
    note: Option<String>,
}

impl Done {
    fn made(id: String, attrs: Attrs) -> Done {
        Done {
            id,
            attrs,
            note: None,
        }
    }
}

/// Creates an object. When AWS answers that it already exists, asks the provider whether it is
/// one this state made (it carries this state's lineage, or matches the intent's evidence):
/// such an object, left by an interrupted apply, is adopted and brought to the planned
/// attributes instead of failing every later apply. Done here once, for every type.
async fn create_or_adopt<P: Provider>(
    provider: &P,
    type_name: &str,
    planned: &Attrs,
    evidence: &Attrs,
    known_ids: &[String],
    ctx: &OpContext,
) -> Result<Done, ProviderError> {
    let conflict = match provider.create(type_name, planned, ctx).await {
        Ok((id, attrs)) => return Ok(Done::made(id, attrs)),
        Err(e) if e.kind == ErrorKind::AlreadyExists => e,
        Err(e) => return Err(e),
    };
    let lost = Lost {
        planned,
        evidence,
        known_ids,
    };
    let (id, mut live) = match provider.find(type_name, lost, ctx).await? {
        // An object the state holds is not a lost create: adopting it as a successor
        // (`create_before_destroy` of a unique name) would then delete it as the old one.
        Found::Adopt { id, .. } if known_ids.contains(&id) => return Err(conflict),
        Found::Adopt { id, attrs } => (id, attrs),
        // Someone else's object, or one that cannot be used as it is: the conflict stands.
        Found::Nothing | Found::Replace { .. } | Found::Ambiguous { .. } => return Err(conflict),
    };
    let Some(schema) = P::schemas().resources.get(type_name) else {
        return Err(conflict);
    };
    crate::engine::default_tags::split(schema, &mut live, planned);
    let desired: BTreeMap<String, Value> = planned
        .iter()
        .map(|(k, v)| (k.clone(), Value::from_json(v)))
        .collect();
    let (action, changes) = crate::engine::diff::diff::<P>(schema, Some(&live), &desired);
    let attrs = match action {
        Action::NoOp => live,
        // From here on the object is proven ours but not recorded: a failure keeps the
        // intent open, so the next plan adopts it and plans what is left.
        Action::Update => provider
            .update(type_name, &id, &live, planned, ctx)
            .await
            .map_err(ProviderError::after_partial_write)?,
        _ => {
            let fixed: Vec<&str> = changes
                .iter()
                .filter(|c| c.forces_replacement)
                .map(|c| c.name.as_str())
                .collect();
            return Err(ProviderError::new(
                conflict.code,
                format!(
                    "{}; the existing object carries this state's tags but differs in {}, which cannot change in place; run plan again to replace it",
                    conflict.message,
                    fixed.join(", ")
                ),
            )
            .after_partial_write());
        }
    };
    Ok(Done {
        note: Some(format!(
            "an object by this name already existed ({}), made by an interrupted apply of this state: adopted {id}",
            conflict.code
        )),
        id,
        attrs,
    })
}

/// Records a refresh-only plan: what AWS now says replaces what state held, and objects that
/// are gone are forgotten. Nothing is written to AWS. Returns (updated, removed).
pub(crate) async fn apply_refresh<S: StateStore>(
    plan: &Plan,
    store: &mut S,
) -> Result<(usize, usize), StateError> {
    plan.recovery.persist(store).await?;
    let (mut updated, mut removed) = (0, 0);
    for d in &plan.drift {
        match (&d.live, plan.state.resources.get(&d.addr)) {
            (None, _) => {
                store.remove(&d.addr).await?;
                removed += 1;
            }
            (Some(live), Some(prior)) => {
                store
                    .put(&ResourceState {
                        attrs: live.clone(),
                        ..prior.clone()
                    })
                    .await?;
                updated += 1;
            }
            (Some(_), None) => {}
        }
    }
    Ok((updated, removed))
}

/// A resource's configuration evaluated against the values known now, as provider input.
fn evaluate<P: Provider>(
    ws: &Workspace,
    ctx: &mut crate::lang::eval::EvalCtx,
    each: &mut EachCache,
    addr: &Address,
) -> Result<Attrs, String> {
    match desired::<P>(ws, ctx, each, addr)? {
        d if d.attrs.values().any(Value::contains_unknown) => {
            Err("some of its values are still unknown".to_string())
        }
        d => Ok(d.to_attrs()),
    }
}

/// The attributes of a resource whose value came from a sensitive input, for the state to
/// keep masking them (`state show`, later plans) and to keep them out of plan files. Which
/// inputs an attribute reads does not depend on what is known yet, so this holds whenever
/// the resource was evaluated.
fn sensitive_inputs<P: Provider>(
    ws: &Workspace,
    ctx: &mut crate::lang::eval::EvalCtx,
    each: &mut EachCache,
    addr: &Address,
) -> BTreeSet<String> {
    desired::<P>(ws, ctx, each, addr)
        .map(|d| d.sensitive)
        .unwrap_or_default()
}

/// An instance's configuration evaluated against the values known now. A `for_each`
/// block's collection is evaluated again, since its values may have become known, unless
/// they were all known already (`EachCache`).
fn desired<P: Provider>(
    ws: &Workspace,
    ctx: &mut crate::lang::eval::EvalCtx,
    each: &mut EachCache,
    addr: &Address,
) -> Result<crate::engine::plan::Desired, String> {
    let (Some(block), Some(schema)) = (
        ws.config.block(addr),
        ws.config.schemas.get(addr.mode, &addr.type_name),
    ) else {
        return Err("it is not in the configuration".to_string());
    };
    // In the scope of the block's module instance, and back at the root whatever happens.
    ctx.enter(&addr.module);
    let desired = instance_desired::<P>(ws, ctx, each, addr, block, schema);
    ctx.set_instance(None);
    ctx.enter(&[]);
    desired
}

/// `desired`, in the module instance's scope.
fn instance_desired<P: Provider>(
    ws: &Workspace,
    ctx: &mut crate::lang::eval::EvalCtx,
    each: &mut EachCache,
    addr: &Address,
    block: &crate::lang::config::ResourceBlock,
    schema: &crate::lang::schema::Schema,
) -> Result<crate::engine::plan::Desired, String> {
    let instance = match &addr.key {
        Some(InstanceKey::Str(_)) => {
            let owner = Address {
                key: None,
                ..addr.clone()
            };
            let cached = each
                .0
                .get(&owner)
                .and_then(|all| all.get(&addr.key))
                .cloned();
            if let Some(i) = cached {
                i
            } else {
                let all = crate::lang::expand::instances(block, ctx).map_err(|d| d.message)?;
                let found = all.iter().find(|i| i.key == addr.key).cloned();
                let known = all
                    .iter()
                    .all(|i| !i.stand_in && !i.value.as_ref().is_some_and(Value::contains_unknown));
                if known {
                    each.0
                        .insert(owner, all.into_iter().map(|i| (i.key.clone(), i)).collect());
                }
                found.ok_or_else(|| format!("{addr} is no longer in its block's for_each"))?
            }
        }
        key => Instance {
            key: key.clone(),
            value: None,
            stand_in: false,
        },
    };
    instance.bind(ctx);
    ws.eval_resource::<P>(block, schema, ctx).map_err(|diags| {
        diags
            .0
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Evaluates outputs against the final values and records the known ones.
async fn write_outputs<S: StateStore>(
    ws: &Workspace,
    ctx: &crate::lang::eval::EvalCtx,
    store: &mut S,
    destroy: bool,
) -> Result<(), StateError> {
    let mut outputs = BTreeMap::new();
    if !destroy {
        for (name, o) in &ws.config.outputs {
            let Some(expr) = &o.value else { continue };
            if let Ok((v, _)) = ctx.eval_top(&expr.expr) {
                if !v.contains_unknown() {
                    outputs.insert(
                        name.clone(),
                        OutputState {
                            value: v.to_json(),
                            sensitive: o.sensitive,
                        },
                    );
                }
            }
        }
    }
    store.set_outputs(&outputs).await?;
    Ok(())
}
