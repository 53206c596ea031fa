//! The dependency graph: resources, data sources, locals and outputs, with an edge from each
//! dependency to its dependent (from references and `depends_on`).
//!
//! Cycles are diagnostics that list every address in the cycle. The topological order is the
//! evaluation order for planning; applies and destroys walk their own operation graph built
//! from these edges (see `apply`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::lang::address::Address;
use crate::lang::config::{Config, Expr};
use crate::lang::diagnostic::{Diagnostic, Diagnostics};
use crate::lang::eval::{references, RefTarget};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Resource(Address),
    Local(String),
    Output(String),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Resource(a) => write!(f, "{a}"),
            Node::Local(n) => write!(f, "local.{n}"),
            Node::Output(n) => write!(f, "output.{n}"),
        }
    }
}

fn dot_id(n: &Node) -> String {
    format!(
        "\"{}\"",
        n.to_string().replace('\\', "\\\\").replace('"', "\\\"")
    )
}

#[derive(Debug, Default)]
pub struct Graph {
    pub(crate) graph: DiGraph<Node, ()>,
    pub(crate) index: BTreeMap<Node, NodeIndex>,
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

    /// The graph of a configuration. References to things that do not exist are left out here;
    /// `validate` reports them.
    #[must_use]
    pub fn build(config: &Config) -> Graph {
        let mut g = Graph::default();
        let refs_of = |e: &Expr| -> Vec<Node> {
            references(&e.expr)
                .0
                .into_iter()
                .filter_map(|r| match r.target {
                    RefTarget::Resource(a) if config.resources.contains_key(&a) => {
                        Some(Node::Resource(a))
                    }
                    RefTarget::Local(n) if config.locals.contains_key(&n) => Some(Node::Local(n)),
                    _ => None,
                })
                .collect()
        };
        for (name, l) in &config.locals {
            let me = g.node(Node::Local(name.clone()));
            for dep in refs_of(&l.value) {
                let d = g.node(dep);
                g.graph.update_edge(d, me, ());
            }
        }
        for (addr, r) in &config.resources {
            let me = g.node(Node::Resource(addr.clone()));
            for a in r.attrs.values() {
                for dep in refs_of(&a.value) {
                    let d = g.node(dep);
                    g.graph.update_edge(d, me, ());
                }
            }
            for e in r.lifecycle.exprs() {
                for dep in refs_of(e) {
                    let d = g.node(dep);
                    g.graph.update_edge(d, me, ());
                }
            }
            for (text, _) in &r.depends_on {
                if let Ok(dep) = text.parse::<Address>() {
                    if config.resources.contains_key(&dep) {
                        let d = g.node(Node::Resource(dep));
                        g.graph.update_edge(d, me, ());
                    }
                }
            }
        }
        for (name, o) in &config.outputs {
            let me = g.node(Node::Output(name.clone()));
            if let Some(v) = &o.value {
                for dep in refs_of(v) {
                    let d = g.node(dep);
                    g.graph.update_edge(d, me, ());
                }
            }
        }
        g
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
            Node::Resource(a) => config.resources.get(a).map(|r| r.span.clone()),
            Node::Local(n) => config.locals.get(n).map(|l| l.name_span.clone()),
            Node::Output(n) => config.outputs.get(n).map(|o| o.span.clone()),
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
                Node::Local(_) | Node::Output(_) => "ellipse",
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
    pub(crate) fn resource_deps(&self, node: &Node) -> BTreeSet<Address> {
        let mut out = BTreeSet::new();
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
                    Node::Local(_) | Node::Output(_) => stack.push(d),
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

    #[test]
    fn references_and_depends_on_become_edges_in_order() {
        let (config, diags) = load_str(
            &[(
                "m.sky.hcl",
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
            )],
            crate::aws::schemas::registry(),
        );
        assert!(diags.is_empty(), "{diags:?}");
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
