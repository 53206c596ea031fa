//! Which drift a plan reports. As Terraform does since 1.2, a change made outside skyform is
//! shown when it matters to this plan: the object is gone, the plan sets the attribute (it is
//! written in the block, or it is not computed, so its default applies) and so undoes the
//! change, or some expression of the configuration reads the attribute. What is left out is a computed or unmanaged attribute
//! that moved because another resource acted on the object: a NAT gateway attaching its
//! Elastic IP to an interface, an `aws_route` adding a route to a table that declares no
//! `route` blocks. Nobody has to undo those, and a "changed outside skyform" note for them on
//! every plan of a healthy configuration would teach people to skip the note. A refresh-only
//! plan keeps everything: recording it is what such a plan is for.

use std::collections::BTreeSet;

use crate::engine::diff::AttrChange;
use crate::lang::address::Address;
use crate::lang::config::Config;
use crate::lang::eval::{references, RefTarget};
use crate::lang::expr::Expr;
use crate::lang::schema::AttrMode;

/// What the configuration reads of a block: `(module path, local address, attribute)`, the
/// attribute `None` when an expression reads the whole object.
type Read = (Vec<String>, Address, Option<String>);

/// Every attribute of every block that some expression of the configuration reads.
fn reads(config: &Config) -> BTreeSet<Read> {
    let mut out = BTreeSet::new();
    for (path, module) in config.all_modules() {
        let mut exprs: Vec<&Expr> = module.locals.values().map(|l| &l.value).collect();
        for r in module.resources.values() {
            exprs.extend(r.attrs.values().map(|a| &a.value));
            exprs.extend(
                r.repetition
                    .as_ref()
                    .map(crate::lang::config::Repetition::expr),
            );
            exprs.extend(r.lifecycle.exprs());
        }
        exprs.extend(module.outputs.values().filter_map(|o| o.value.as_ref()));
        for call in module.modules.values() {
            exprs.extend(call.inputs.values().map(|a| &a.value));
            exprs.extend(
                call.repetition
                    .as_ref()
                    .map(crate::lang::config::Repetition::expr),
            );
        }
        for check in module.checks.values() {
            exprs.extend(
                check
                    .asserts
                    .iter()
                    .flat_map(|c| [&c.condition, &c.error_message]),
            );
        }
        for e in exprs {
            for r in references(&e.expr).0 {
                if let RefTarget::Resource(a) = r.target {
                    out.insert((path.clone(), a.local(), r.attr));
                }
            }
        }
    }
    out
}

/// What the configuration reads of its blocks, for deciding which drift matters.
pub(crate) struct Reads(BTreeSet<Read>);

impl Reads {
    pub(crate) fn of(config: &Config) -> Reads {
        Reads(reads(config))
    }

    /// Keeps of `changes`, drift of the object at `addr`, the attributes that matter: set by
    /// the plan (written in its block, or not computed), or read by the configuration. An
    /// object whose block is gone keeps them all.
    pub(crate) fn keep(&self, config: &Config, addr: &Address, changes: &mut Vec<AttrChange>) {
        let Some(block) = config.block_of(addr) else {
            return;
        };
        let (path, local) = (addr.module_path(), addr.local());
        let whole = self.0.contains(&(path.clone(), local.clone(), None));
        let schema = config.schemas.get(addr.mode, &addr.type_name);
        changes.retain(|c| {
            // A required or optional (not computed) attribute is set by the plan whether
            // written or not (its default): the plan undoes the change.
            let managed = schema
                .and_then(|s| s.attr(&c.name))
                .is_some_and(|a| matches!(a.mode, AttrMode::Required | AttrMode::Optional));
            let configured = managed
                || block.attrs.contains_key(&c.name)
                || (c.name == "tags_all"
                    && (block.attrs.contains_key("tags")
                        || config.default_tags_of(addr).is_some()));
            configured
                || whole
                || self
                    .0
                    .contains(&(path.clone(), local.clone(), Some(c.name.clone())))
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fake::FakeProvider;
    use crate::engine::plan::{DriftKind, PlanOptions};
    use crate::engine::tests::{plan_and_apply, plan_only, workspace};
    use crate::state::MemoryState;

    const SRC: &str = r#"
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
  tags       = { team = "a" }
}
"#;

    /// Applies `src`, then changes the subnet's `availability_zone` (optional and computed,
    /// not set in `src`) in the fake cloud, and returns the names of the
    /// drifted attributes a plan (or refresh-only plan) of `src` reports.
    fn drifted(src: &str, refresh_only: bool) -> Vec<String> {
        let p = FakeProvider::<crate::aws::AwsProvider>::default();
        let ws = workspace(src, &[]);
        let mut store = MemoryState::default();
        plan_and_apply(&p, &ws, &mut store);
        // The fake computes nothing: give state and cloud a zone each, as AWS would.
        for (addr, r) in &mut store.0.resources {
            if addr.type_name == "aws_subnet" {
                r.attrs
                    .insert("availability_zone".into(), "us-east-1a".into());
            }
        }
        for ((kind, _), a) in &mut p.cloud.borrow_mut().objects {
            if kind == "aws_subnet" {
                a.insert("availability_zone".into(), "us-east-1f".into());
            }
        }
        let opts = PlanOptions {
            refresh_only,
            ..PlanOptions::default()
        };
        let plan = plan_only(&p, &ws, &mut store, &opts);
        plan.drift
            .iter()
            .flat_map(|d| match &d.kind {
                DriftKind::Changed(c) => c.iter().map(|c| c.name.clone()).collect(),
                DriftKind::Deleted => vec!["(deleted)".to_string()],
            })
            .collect()
    }

    #[test]
    fn a_computed_attribute_nothing_reads_or_sets_is_not_reported() {
        assert!(drifted(SRC, false).is_empty());
    }

    #[test]
    fn a_computed_attribute_the_configuration_reads_is_reported() {
        let src = format!("{SRC}output \"u\" {{ value = aws_subnet.s.availability_zone }}\n");
        let names = drifted(&src, false);
        assert!(
            names.contains(&"availability_zone".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn a_refresh_only_plan_reports_every_drifted_attribute() {
        let names = drifted(SRC, true);
        assert!(
            names.contains(&"availability_zone".to_string()),
            "{names:?}"
        );
    }
}
