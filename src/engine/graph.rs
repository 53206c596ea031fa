//! The dependency graph: resources, data sources, locals and outputs, with an edge from each
//! dependency to its dependent (from references and `depends_on`).
//!
//! Cycles are diagnostics that list every address in the cycle. The topological order is the
//! evaluation order for planning; applies and destroys walk their own operation graph built
//! from these edges (see `apply`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::lang::address::Address;
use crate::lang::config::{Config, Expr};
use crate::lang::diagnostic::{Diagnostic, Diagnostics};
use crate::lang::eval::{references, RefTarget};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// A resource or data source block, in its module (no keys).
    Resource(Address),
    /// A local value of the module at the path (module names from the root).
    Local(Vec<String>, String),
    /// An output of the module at the path.
    Output(Vec<String>, String),
    /// An input variable of a called module: the call's argument, evaluated where the call is.
    Var(Vec<String>, String),
    /// A module call: its `count` or `for_each`, which decide the module's instances.
    Module(Vec<String>),
}

/// `module.a.module.b.` for a module path (empty for the root).
fn prefix(path: &[String]) -> String {
    path.iter().fold(String::new(), |mut out, m| {
        out.push_str("module.");
        out.push_str(m);
        out.push('.');
        out
    })
}

/// The module path of a call named `name` in module `path`.
pub(crate) fn child_path(path: &[String], name: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(name.to_string());
    p
}

/// The module instance of a path, without keys: how blocks are named in the graph.
pub(crate) fn module_of(path: &[String]) -> crate::lang::address::ModuleInstance {
    path.iter()
        .map(|name| crate::lang::address::ModuleStep {
            name: name.clone(),
            key: None,
        })
        .collect()
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Resource(a) => write!(f, "{a}"),
            Node::Local(p, n) => write!(f, "{}local.{n}", prefix(p)),
            Node::Output(p, n) => write!(f, "{}output.{n}", prefix(p)),
            Node::Var(p, n) => write!(f, "{}var.{n}", prefix(p)),
            Node::Module(p) => write!(f, "{}", prefix(p).trim_end_matches('.')),
        }
    }
}

fn dot_id(n: &Node) -> String {
    format!(
        "\"{}\"",
        n.to_string().replace('\\', "\\\\").replace('"', "\\\"")
    )
}

// `graph` is petgraph's graph; the lint fires since the edge set made three fields.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default)]
pub struct Graph {
    pub(crate) graph: DiGraph<Node, ()>,
    pub(crate) index: BTreeMap<Node, NodeIndex>,
    /// The edges added so far. petgraph's `update_edge` finds a duplicate by walking the
    /// source's edges, so a local read by N resources cost O(N²) to build (36% of `validate`
    /// at 50,000 resources); a set makes each edge O(1).
    edges: HashSet<(NodeIndex, NodeIndex)>,
}

impl Graph {
    fn node(&mut self, n: Node) -> NodeIndex {
        if let Some(i) = self.index.get(&n) {
            return *i;
        }
        let i = self.graph.add_node(n.clone());
        self.index.insert(n, i);
        i
    }

    /// An edge from `from` to `to`, once however often it is read.
    fn edge(&mut self, from: NodeIndex, to: NodeIndex) {
        if self.edges.insert((from, to)) {
            self.graph.add_edge(from, to, ());
        }
    }

    /// The graph of a configuration and every module it calls. References to things that do
    /// not exist are left out here; `validate` reports them.
    #[must_use]
    pub fn build(config: &Config) -> Graph {
        let mut g = Graph::default();
        for (path, module) in config.all_modules() {
            g.add_module(&path, module);
            // A taggable resource's tags_all reads its provider configuration's default_tags,
            // in the root.
            let in_module = module_of(&path);
            for addr in module.resources.keys() {
                let addr = addr.in_module(&in_module);
                if let Some(tags) = config.default_tags_of(&addr) {
                    if crate::engine::default_tags::applies(module, &addr) {
                        g.edges_from(&[], config, tags, Node::Resource(addr));
                    }
                }
            }
        }
        // An import's id and key are evaluated before its target block is planned (import
        // blocks belong to the root module, as in Terraform).
        for imp in &config.imports {
            if !config.resources.contains_key(&imp.to) {
                continue;
            }
            let exprs = [Some(&imp.id), imp.key.as_ref(), imp.for_each.as_ref()];
            for e in exprs.into_iter().flatten() {
                g.edges_from(&[], config, e, Node::Resource(imp.to.clone()));
            }
        }
        g
    }

    /// What an expression of module `path` (whose configuration is `config`) reads.
    fn refs_of(path: &[String], config: &Config, e: &Expr) -> Vec<Node> {
        let module = module_of(path);
        references(&e.expr)
            .0
            .into_iter()
            .flat_map(|r| match r.target {
                RefTarget::Resource(a) if config.resources.contains_key(&a) => {
                    vec![Node::Resource(a.in_module(&module))]
                }
                RefTarget::Local(n) if config.locals.contains_key(&n) => {
                    vec![Node::Local(path.to_vec(), n)]
                }
                RefTarget::Var(n) if !path.is_empty() && config.variables.contains_key(&n) => {
                    vec![Node::Var(path.to_vec(), n)]
                }
                RefTarget::Module(m) => match config.modules.get(&m) {
                    Some(call) => {
                        let child = child_path(path, &m);
                        match &r.attr {
                            Some(out) if call.config.outputs.contains_key(out) => {
                                vec![Node::Output(child, out.clone())]
                            }
                            _ => call
                                .config
                                .outputs
                                .keys()
                                .map(|o| Node::Output(child.clone(), o.clone()))
                                .collect(),
                        }
                    }
                    None => Vec::new(),
                },
                _ => Vec::new(),
            })
            .collect()
    }

    /// Edges from everything `e` reads to `me`.
    fn edges_from(&mut self, path: &[String], config: &Config, e: &Expr, me: Node) {
        let me = self.node(me);
        for dep in Self::refs_of(path, config, e) {
            let d = self.node(dep);
            self.edge(d, me);
        }
    }

    /// Edges for a `depends_on` entry of module `path`: a resource, or a whole module call.
    fn depends_on(&mut self, path: &[String], config: &Config, text: &str, me: &Node) {
        let me = self.node(me.clone());
        let deps: Vec<Node> = match text.strip_prefix("module.") {
            Some(m) => match config.modules.get(m) {
                Some(call) => call
                    .config
                    .all_modules()
                    .into_iter()
                    .flat_map(|(p, c)| {
                        let mut full = child_path(path, m);
                        full.extend(p);
                        let module = module_of(&full);
                        c.resources
                            .keys()
                            .map(move |a| Node::Resource(a.in_module(&module)))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                None => Vec::new(),
            },
            None => match text.parse::<Address>() {
                Ok(dep) if config.resources.contains_key(&dep) => {
                    vec![Node::Resource(dep.in_module(&module_of(path)))]
                }
                _ => Vec::new(),
            },
        };
        for dep in deps {
            let d = self.node(dep);
            self.edge(d, me);
        }
    }

    /// The nodes and edges of one module's blocks. Inside a called module, everything waits
    /// for the call's expansion (`Node::Module`), and the module's variables read the call's
    /// inputs in the calling module.
    fn add_module(&mut self, path: &[String], config: &Config) {
        let module = module_of(path);
        let expansion = (!path.is_empty()).then(|| Node::Module(path.to_vec()));
        let mut inside: Vec<Node> = Vec::new();
        for (name, l) in &config.locals {
            let me = Node::Local(path.to_vec(), name.clone());
            self.node(me.clone());
            self.edges_from(path, config, &l.value, me.clone());
            inside.push(me);
        }
        for (addr, r) in &config.resources {
            let me = Node::Resource(addr.in_module(&module));
            // Every block is a node, even one that reads nothing and nothing reads.
            self.node(me.clone());
            let repetition = r
                .repetition
                .as_ref()
                .map(crate::lang::config::Repetition::expr);
            let lifecycle = r.lifecycle.exprs();
            for e in r
                .attrs
                .values()
                .map(|a| &a.value)
                .chain(repetition)
                .chain(lifecycle)
            {
                self.edges_from(path, config, e, me.clone());
            }
            for (text, _) in &r.depends_on {
                self.depends_on(path, config, text, &me);
            }
            inside.push(me);
        }
        for (name, o) in &config.outputs {
            let me = Node::Output(path.to_vec(), name.clone());
            self.node(me.clone());
            if let Some(v) = &o.value {
                self.edges_from(path, config, v, me.clone());
            }
            inside.push(me);
        }
        for (name, call) in &config.modules {
            let child = child_path(path, name);
            let me = Node::Module(child.clone());
            self.node(me.clone());
            if let Some(r) = &call.repetition {
                self.edges_from(path, config, r.expr(), me.clone());
            }
            for (text, _) in &call.depends_on {
                self.depends_on(path, config, text, &me);
            }
            for var in call.config.variables.keys() {
                let v = Node::Var(child.clone(), var.clone());
                let (vi, mi) = (self.node(v.clone()), self.node(me.clone()));
                self.edge(mi, vi);
                if let Some(input) = call.inputs.get(var) {
                    self.edges_from(path, config, &input.value, v);
                }
            }
            inside.push(me);
        }
        if let Some(expansion) = expansion {
            let e = self.node(expansion);
            for n in inside {
                let i = self.node(n);
                self.edge(e, i);
            }
        }
    }

    /// Every cycle, as a diagnostic naming all its members.
    pub(crate) fn cycles(&self, config: &Config) -> Diagnostics {
        let mut diags = Diagnostics::default();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<String> =
                scc.iter().map(|i| self.graph[*i].to_string()).collect();
            let list = members.iter().cloned().collect::<Vec<_>>().join(", ");
            let first = &self.graph[scc[0]];
            let mut d = Diagnostic::error(format!("dependency cycle: {list}")).named(list.clone());
            let span = scc
                .iter()
                .filter_map(|i| Self::span_of(&self.graph[*i], config))
                .min_by_key(|s| (s.file, s.range.start));
            if let Some(span) = span.or_else(|| Self::span_of(first, config)) {
                d = d.at(span);
            }
            diags.push(d);
        }
        diags
    }

    fn span_of(node: &Node, config: &Config) -> Option<crate::lang::diagnostic::Span> {
        match node {
            Node::Resource(a) => config.block_of(a).map(|r| r.span.clone()),
            Node::Local(p, n) => config
                .module_config(p)?
                .locals
                .get(n)
                .map(|l| l.name_span.clone()),
            Node::Output(p, n) => config
                .module_config(p)?
                .outputs
                .get(n)
                .map(|o| o.span.clone()),
            Node::Var(p, n) => config
                .module_call(p)
                .and_then(|c| c.inputs.get(n).map(|i| i.name_span.clone()))
                .or_else(|| config.module_call(p).map(|c| c.span.clone())),
            Node::Module(p) => config.module_call(p).map(|c| c.span.clone()),
        }
    }

    /// Nodes in dependency order, ties broken by name so runs are repeatable. `None` when
    /// there is a cycle.
    #[must_use]
    pub fn order(&self) -> Option<Vec<Node>> {
        // A stable order: Kahn's algorithm over a sorted ready set. petgraph's toposort is
        // only used to detect a cycle.
        toposort(&self.graph, None).ok()?;
        let mut indegree: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|i| {
                (
                    i,
                    self.graph
                        .neighbors_directed(i, petgraph::Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<(Node, NodeIndex)> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| (self.graph[*i].clone(), *i))
            .collect();
        let mut out = Vec::new();
        while let Some(first) = ready.iter().next().cloned() {
            ready.remove(&first);
            out.push(first.0.clone());
            for n in self
                .graph
                .neighbors_directed(first.1, petgraph::Direction::Outgoing)
            {
                if let Some(d) = indegree.get_mut(&n) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert((self.graph[n].clone(), n));
                    }
                }
            }
        }
        Some(out)
    }

    /// The graph in Graphviz DOT, every node and edge in a stable order: an edge points from
    /// a node to what it depends on, as in `terraform graph`.
    pub(crate) fn to_dot(&self) -> String {
        let mut out = String::from("digraph skyform {\n  rankdir = \"RL\";\n");
        for node in self.index.keys() {
            let shape = match node {
                Node::Resource(a) if a.mode == crate::lang::address::Mode::Data => "note",
                Node::Resource(_) => "box",
                Node::Local(..) | Node::Output(..) | Node::Var(..) | Node::Module(_) => "ellipse",
            };
            out.push_str(&format!("  {} [shape = {shape}];\n", dot_id(node)));
        }
        let mut edges: Vec<(String, String)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(from, to)| (dot_id(&self.graph[to]), dot_id(&self.graph[from])))
            .collect();
        edges.sort();
        edges.dedup();
        for (dependent, dependency) in edges {
            out.push_str(&format!("  {dependent} -> {dependency};\n"));
        }
        out.push_str("}\n");
        out
    }

    /// For each resource block, the value nodes (locals, module calls and variables, module
    /// outputs: what `modules::eval_values` evaluates) that `dir` reaches from it through other
    /// value nodes, as positions in `order`, ascending. `Outgoing`: the values that read the
    /// block, which a completed operation makes stale; `Incoming`: the values the block reads,
    /// which must be fresh before it is evaluated. Apply re-evaluates only those, so that an
    /// operation costs what it touches, not every value of the configuration.
    pub(crate) fn values_around(
        &self,
        order: &[Node],
        dir: petgraph::Direction,
    ) -> HashMap<Node, Vec<usize>> {
        let is_value = |n: &Node| match n {
            Node::Resource(_) => false,
            Node::Output(path, _) => !path.is_empty(),
            Node::Local(..) | Node::Var(..) | Node::Module(_) => true,
        };
        let position: HashMap<NodeIndex, usize> = order
            .iter()
            .enumerate()
            .filter(|(_, n)| is_value(n))
            .filter_map(|(at, n)| self.index.get(n).map(|i| (*i, at)))
            .collect();
        let mut out = HashMap::new();
        for (node, start) in &self.index {
            if !matches!(node, Node::Resource(_)) {
                continue;
            }
            let mut seen = HashSet::new();
            let mut stack = vec![*start];
            while let Some(n) = stack.pop() {
                for next in self.graph.neighbors_directed(n, dir) {
                    if position.contains_key(&next) && seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
            if !seen.is_empty() {
                let mut at: Vec<usize> = seen
                    .iter()
                    .filter_map(|i| position.get(i).copied())
                    .collect();
                at.sort_unstable();
                out.insert(node.clone(), at);
            }
        }
        out
    }

    /// The managed resources a resource depends on, as the state records them (deletes run
    /// in reverse of this; data sources are read, never deleted).
    #[must_use]
    pub fn managed_deps(&self, addr: &Address) -> Vec<Address> {
        self.resource_deps(&Node::Resource(addr.clone()))
            .into_iter()
            .filter(|a| a.mode == crate::lang::address::Mode::Managed)
            .collect()
    }

    /// The resources a node depends on directly.
    /// An instance (`r[0]`) depends on what its block depends on: on every instance of it.
    pub(crate) fn resource_deps(&self, node: &Node) -> BTreeSet<Address> {
        let mut out = BTreeSet::new();
        let block;
        let node = match node {
            Node::Resource(a) => {
                block = Node::Resource(a.config_addr());
                &block
            }
            n => n,
        };
        let Some(i) = self.index.get(node) else {
            return out;
        };
        // Locals are transparent: a resource that reads a local depends on what the local reads.
        let mut stack = vec![*i];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            for d in self
                .graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
            {
                if !seen.insert(d) {
                    continue;
                }
                match &self.graph[d] {
                    Node::Resource(a) => {
                        out.insert(a.clone());
                    }
                    Node::Local(..) | Node::Output(..) | Node::Var(..) | Node::Module(_) => {
                        stack.push(d);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::config::load_str;

    /// A configuration of one file, which must load without a diagnostic.
    fn config_of(text: &str) -> Config {
        let (config, diags) = load_str(&[("m.sky.hcl", text)], crate::aws::schemas::registry());
        assert!(diags.is_empty(), "{diags:?}");
        config
    }

    #[test]
    fn references_and_depends_on_become_edges_in_order() {
        let config = config_of(
            r#"
resource "aws_iam_role" "r" { name = "r" }
locals { role = aws_iam_role.r.name }
resource "aws_iam_instance_profile" "p" {
  name = "p"
  role = local.role
}
resource "aws_iam_user" "u" {
  name = "u"
  depends_on = [aws_iam_instance_profile.p]
}
"#,
        );
        let g = Graph::build(&config);
        let order: Vec<String> = g.order().unwrap().iter().map(ToString::to_string).collect();
        let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
        assert!(pos("aws_iam_role.r") < pos("local.role"));
        assert!(pos("local.role") < pos("aws_iam_instance_profile.p"));
        assert!(pos("aws_iam_instance_profile.p") < pos("aws_iam_user.u"));
        let deps = g.resource_deps(&Node::Resource(Address::managed(
            "aws_iam_instance_profile",
            "p",
        )));
        assert_eq!(
            deps.into_iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["aws_iam_role.r"]
        );
    }

    #[test]
    fn apply_refreshes_only_the_values_around_a_resource() {
        let config = config_of(
            r#"
resource "aws_iam_role" "r" { name = "r" }
locals {
  arn    = aws_iam_role.r.arn
  quoted = "arn: ${local.arn}"
  fixed  = "fixed"
}
resource "aws_iam_instance_profile" "p" {
  name = local.fixed
  role = local.quoted
}
resource "aws_iam_user" "u" { name = local.fixed }
"#,
        );
        let g = Graph::build(&config);
        let order = g.order().unwrap();
        let names = |around: &HashMap<Node, Vec<usize>>, block: &str| -> Vec<String> {
            let addr: Address = block.parse().unwrap();
            around
                .get(&Node::Resource(addr))
                .into_iter()
                .flatten()
                .map(|i| order[*i].to_string())
                .collect()
        };
        let readers = g.values_around(&order, petgraph::Direction::Outgoing);
        let reads = g.values_around(&order, petgraph::Direction::Incoming);
        // A finished role makes stale what reads it, through locals, and nothing else.
        assert_eq!(
            names(&readers, "aws_iam_role.r"),
            ["local.arn", "local.quoted"]
        );
        assert!(names(&readers, "aws_iam_user.u").is_empty());
        // The profile needs every value it reads, in evaluation order; the user only its own.
        assert_eq!(
            names(&reads, "aws_iam_instance_profile.p"),
            ["local.arn", "local.fixed", "local.quoted"]
        );
        assert_eq!(names(&reads, "aws_iam_user.u"), ["local.fixed"]);
    }

    #[test]
    fn a_cycle_lists_every_member() {
        let (config, _) = load_str(
            &[(
                "m.sky.hcl",
                r#"
resource "aws_iam_user" "a" { name = aws_iam_user.c.name }
resource "aws_iam_user" "b" { name = aws_iam_user.a.name }
resource "aws_iam_user" "c" { name = aws_iam_user.b.name }
"#,
            )],
            crate::aws::schemas::registry(),
        );
        let g = Graph::build(&config);
        assert!(g.order().is_none());
        let d = g.cycles(&config);
        assert_eq!(d.errors(), 1);
        assert!(
            d.0[0]
                .message
                .contains("aws_iam_user.a, aws_iam_user.b, aws_iam_user.c"),
            "{:?}",
            d.0[0].message
        );
    }
}
