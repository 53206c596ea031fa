//! `count` and `for_each`: which instances a block declares, and what `count.index`,
//! `each.key` and `each.value` are for each of them.
//!
//! Expansion happens while planning, in dependency order, because `count` and `for_each` may
//! read variables, locals and data sources. A value known only after apply cannot decide how
//! many instances there are: that is Terraform's error, with its advice to apply the
//! dependencies first with `--target`.

use std::collections::BTreeSet;

use crate::lang::address::InstanceKey;
use crate::lang::config::{Repetition, ResourceBlock};
use crate::lang::diagnostic::{Diagnostic, Span};
use crate::lang::eval::EvalCtx;
use crate::lang::value::Value;

/// One instance of a block: its key (none for a block without `count` or `for_each`) and,
/// for `for_each`, its `each.value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instance {
    pub(crate) key: Option<InstanceKey>,
    pub(crate) value: Option<Value>,
    /// Stands for instances not known yet (see `instances_or_stand_in`): its `count.index`
    /// or `each` is unknown.
    pub(crate) stand_in: bool,
}

impl Instance {
    /// What `count` / `each` show while this instance is evaluated.
    pub(crate) fn bind(&self, ctx: &mut EvalCtx) {
        ctx.set_instance(self.key.as_ref().map(|k| (k, self.value.as_ref())));
        if self.stand_in {
            let root = match self.key {
                Some(InstanceKey::Int(_)) => "count",
                _ => "each",
            };
            ctx.set(&[root], Value::Unknown);
        }
    }
}

/// For `validate`, which evaluates without AWS: the instances when they are known, else one
/// stand-in instance whose `count.index` or `each` is unknown, so that every expression of
/// the block is still checked.
pub(crate) fn instances_or_stand_in(
    block: &ResourceBlock,
    ctx: &mut EvalCtx,
) -> Result<Vec<Instance>, Diagnostic> {
    if let Some(r) = &block.repetition {
        if matches!(ctx.eval_top(&r.expr().expr), Ok((v, _)) if v.contains_unknown()) {
            let key = match r {
                Repetition::Count(_) => InstanceKey::Int(0),
                Repetition::ForEach(_) => InstanceKey::Str(String::new()),
            };
            return Ok(vec![Instance {
                key: Some(key),
                value: Some(Value::Unknown),
                stand_in: true,
            }]);
        }
    }
    instances(block, ctx)
}

/// The instances of `block`, in key order, evaluated against `ctx`.
pub(crate) fn instances(block: &ResourceBlock, ctx: &EvalCtx) -> Result<Vec<Instance>, Diagnostic> {
    let owner = format!(
        "{}{}",
        crate::lang::address::module_prefix(ctx.current()),
        block.addr
    );
    instances_of(block.repetition.as_ref(), &owner, ctx)
}

/// The instances that `repetition` declares for `owner` (a block or a module call).
pub(crate) fn instances_of(
    repetition: Option<&Repetition>,
    owner: &str,
    ctx: &EvalCtx,
) -> Result<Vec<Instance>, Diagnostic> {
    let Some(repetition) = repetition else {
        return Ok(vec![Instance {
            key: None,
            value: None,
            stand_in: false,
        }]);
    };
    let expr = repetition.expr();
    let fail = |message: String, range: Option<std::ops::Range<usize>>| {
        let span = Span {
            file: expr.span.file,
            range: range.unwrap_or_else(|| expr.span.range.clone()),
        };
        Diagnostic::error(message).named(owner).at(span)
    };
    let (value, sensitive) = ctx
        .eval_top(&expr.expr)
        .map_err(|e| fail(format!("in {owner}: {}", e.message), e.range))?;
    match repetition {
        Repetition::Count(_) => count(&value).map_err(|m| fail(m, None)),
        Repetition::ForEach(_) if sensitive => Err(fail(
            "invalid for_each argument: sensitive values, or values derived from sensitive values, cannot be used as for_each arguments; if used, the sensitive value could be exposed as a resource instance key".into(),
            None,
        )),
        Repetition::ForEach(_) => for_each(value).map_err(|m| fail(m, None)),
    }
}

fn count(value: &Value) -> Result<Vec<Instance>, String> {
    let n = match value {
        Value::Unknown => return Err(
            "invalid count argument: the \"count\" value depends on resource attributes that cannot be determined until apply, so skyform cannot predict how many instances will be created; to work around this, use --target to first apply only the resources that the count depends on".into(),
        ),
        Value::Null => {
            return Err(
                "invalid count argument: the given \"count\" argument value is null; an integer is required".into(),
            )
        }
        Value::Number(n) => *n,
        // Terraform converts a numeric string, as it converts any string to a number.
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
            format!("invalid count argument: the given \"count\" argument value is unsuitable: a number is required, not {s:?}")
        })?,
        other => {
            return Err(format!(
                "invalid count argument: the given \"count\" argument value is unsuitable: a number is required, not a {}",
                other.type_name()
            ))
        }
    };
    if n < 0.0 {
        return Err("invalid count argument: the given \"count\" argument value is unsuitable: must be greater than or equal to zero".into());
    }
    if n.fract() != 0.0 || n > f64::from(u32::MAX) {
        return Err(format!(
            "invalid count argument: the given \"count\" argument value is unsuitable: {} is not a whole number of instances",
            crate::lang::value::format_number(n)
        ));
    }
    // Whole and within u32, checked just above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = n as u64;
    Ok((0..n)
        .map(|i| Instance {
            key: Some(InstanceKey::Int(i)),
            value: None,
            stand_in: false,
        })
        .collect())
}

fn for_each(value: Value) -> Result<Vec<Instance>, String> {
    const UNKNOWN_KEYS: &str = "invalid for_each argument: the \"for_each\" map includes keys derived from resource attributes that cannot be determined until apply, and so skyform cannot determine the full set of keys that will identify the instances of this resource; when working with unknown values in for_each, it's better to define the map keys statically in your configuration and place apply-time results only in the map values, or use --target to first apply only the resources that the for_each value depends on, and then apply a second time to fully converge";
    match value {
        Value::Unknown => Err(UNKNOWN_KEYS.into()),
        Value::Null => Err("invalid for_each argument: the given \"for_each\" argument value is null; a map, or set of strings is allowed".into()),
        Value::Object(map) => Ok(map
            .into_iter()
            .map(|(k, v)| Instance {
                key: Some(InstanceKey::Str(k)),
                value: Some(v),
                stand_in: false,
            })
            .collect()),
        // Sets are lists here (`toset` gives a sorted list without duplicates), so a list of
        // strings is taken as the set of its strings.
        Value::List(items) => {
            let mut keys: BTreeSet<String> = BTreeSet::new();
            for item in items {
                match item {
                    Value::String(s) => {
                        keys.insert(s);
                    }
                    Value::Unknown => return Err(UNKNOWN_KEYS.replace("map includes keys", "set includes values")),
                    Value::Null => return Err("invalid for_each argument: for_each sets must not contain null values".into()),
                    other => {
                        return Err(format!(
                            "invalid for_each argument: the given \"for_each\" argument value is unsuitable: the \"for_each\" argument must be a map, or set of strings, and you have provided a set of {}",
                            other.type_name()
                        ))
                    }
                }
            }
            Ok(keys
                .into_iter()
                .map(|k| Instance {
                    key: Some(InstanceKey::Str(k.clone())),
                    value: Some(Value::String(k)),
                    stand_in: false,
                })
                .collect())
        }
        other => Err(format!(
            "invalid for_each argument: the given \"for_each\" argument value is unsuitable: the \"for_each\" argument must be a map, or set of strings, and you have provided a value of type {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::config::load_str;

    fn expand(src: &str) -> Result<Vec<String>, String> {
        let (config, diags) = load_str(&[("m.tf", src)], crate::aws::schemas::registry());
        assert!(diags.is_empty(), "{diags:?}");
        let block = config.resources.values().next().unwrap();
        let mut ctx = EvalCtx::default();
        ctx.set(&["var", "unknown"], Value::Unknown);
        instances(block, &ctx)
            .map(|is| {
                is.iter()
                    .map(|i| {
                        let key = i.key.as_ref().map(ToString::to_string).unwrap_or_default();
                        match &i.value {
                            Some(v) => format!("{key}={v}"),
                            None => key,
                        }
                    })
                    .collect()
            })
            .map_err(|d| d.message)
    }

    #[test]
    fn count_declares_indexes_from_zero() {
        assert_eq!(
            expand("resource \"aws_iam_user\" \"u\" {\n  count = 3\n  name = \"u\"\n}\n").unwrap(),
            ["[0]", "[1]", "[2]"]
        );
        assert_eq!(
            expand("resource \"aws_iam_user\" \"u\" {\n  count = \"0\"\n  name = \"u\"\n}\n")
                .unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn for_each_takes_a_map_or_a_set_of_strings() {
        assert_eq!(
            expand("resource \"aws_iam_user\" \"u\" {\n  for_each = { b = 1, a = 2 }\n  name = each.key\n}\n").unwrap(),
            ["[\"a\"]=2", "[\"b\"]=1"]
        );
        assert_eq!(
            expand("resource \"aws_iam_user\" \"u\" {\n  for_each = toset([\"x\", \"y\", \"x\"])\n  name = each.key\n}\n").unwrap(),
            ["[\"x\"]=\"x\"", "[\"y\"]=\"y\""]
        );
    }

    #[test]
    fn unknown_or_unsuitable_repetitions_are_errors_with_terraforms_advice() {
        let e =
            expand("resource \"aws_iam_user\" \"u\" {\n  count = var.unknown\n  name = \"u\"\n}\n")
                .unwrap_err();
        assert!(
            e.contains("cannot predict how many instances") && e.contains("--target"),
            "{e}"
        );
        let e = expand(
            "resource \"aws_iam_user\" \"u\" {\n  for_each = var.unknown\n  name = \"u\"\n}\n",
        )
        .unwrap_err();
        assert!(e.contains("--target"), "{e}");
        for (src, want) in [
            ("count = -1", "greater than or equal to zero"),
            ("count = 1.5", "not a whole number"),
            ("count = null", "is null"),
            ("for_each = [1, 2]", "set of number"),
            ("for_each = 3", "value of type number"),
            ("for_each = null", "is null"),
        ] {
            let e = expand(&format!(
                "resource \"aws_iam_user\" \"u\" {{\n  {src}\n  name = \"u\"\n}}\n"
            ))
            .unwrap_err();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
