//! Static checks of a loaded configuration against the schemas: types, attributes, references
//! and functions. Nothing here evaluates an expression; value and type errors are found when the
//! planner (or `skyform validate`) evaluates with unknowns.

use crate::lang::address::Mode;
use crate::lang::config::{Config, Expr, Repetition};
use crate::lang::diagnostic::{did_you_mean, not_supported_yet, Diagnostic, Diagnostics, Span};
use crate::lang::eval::{references, RefTarget};

/// Checks the root module and every module it calls, each against its own names.
#[must_use]
pub fn check(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (path, module) in config.all_modules() {
        diags.extend(check_module(module));
        for call in module.modules.values() {
            check_call(module, call, &mut diags);
        }
        check_provider_refs(config, &path, module, &mut diags);
    }
    diags
}

/// Every `provider = aws.x` of a block and every configuration a module call passes on must
/// name a `provider "aws"` block of the root (through the `providers` of the calls between).
fn check_provider_refs(root: &Config, path: &[String], module: &Config, diags: &mut Diagnostics) {
    if !path.is_empty() {
        // Only the root's blocks configure providers; a module's would silently not apply.
        let own = std::iter::once(&module.provider).chain(module.aliases.values());
        for span in own.filter_map(|p| p.span.as_ref()) {
            diags.push(
                Diagnostic::warning(format!(
                    "provider \"aws\" blocks in module.{} are ignored: the root module's provider configurations are used, passed in with providers = {{ ... }} on the module call",
                    path.join(".module.")
                ))
                .named("provider")
                .at(span.clone()),
            );
        }
    }
    let refs = module
        .resources
        .values()
        .filter_map(|b| b.provider.as_ref())
        .chain(module.modules.values().flat_map(|c| c.providers.values()));
    for (alias, span) in refs {
        if root.resolve_provider(path, alias).is_some() {
            continue;
        }
        let name = crate::lang::config::provider_name(alias);
        let mut d = Diagnostic::error(format!(
            "reference to undefined provider: there is no provider \"aws\" configuration {name} here; declare it with a provider \"aws\" block with alias = {alias:?}"
        ))
        .named(name.clone())
        .at(span.clone());
        if !path.is_empty() {
            d = d.note(format!(
                "a module sees only the aliased configurations its call passes in, as providers = {{ {name} = {name} }}"
            ));
        }
        if let Some(s) = did_you_mean(alias, root.aliases.keys().map(String::as_str)) {
            d = d.note(format!("did you mean aws.{s}?"));
        }
        diags.push(d);
    }
}

/// A module call against the module's variables: every input declared, every variable
/// without a default given, and the inputs' expressions valid where the call is.
fn check_call(parent: &Config, call: &crate::lang::config::ModuleCall, diags: &mut Diagnostics) {
    let child = &call.config;
    for (name, input) in &call.inputs {
        if !child.variables.contains_key(name) {
            let mut d = Diagnostic::error(format!(
                "unsupported argument: an argument named {name:?} is not expected here; module.{} declares no variable {name:?}",
                call.name
            ))
            .named(name.clone())
            .at(input.name_span.clone());
            if let Some(s) = did_you_mean(name, child.variables.keys().map(String::as_str)) {
                d = d.note(format!("did you mean {s:?}?"));
            }
            diags.push(d);
        }
        check_expr_in(parent, &input.value, call.repetition.as_ref(), diags);
    }
    for (name, v) in &child.variables {
        if v.default.is_none() && !call.inputs.contains_key(name) {
            diags.push(
                Diagnostic::error(format!(
                    "missing required argument: the argument {name:?} is required by module.{}, but no definition was found",
                    call.name
                ))
                .named(name.clone())
                .at(call.span.clone()),
            );
        }
    }
    if let Some(r) = &call.repetition {
        check_expr(parent, r.expr(), diags);
    }
    for (text, span) in &call.depends_on {
        let known = match text.strip_prefix("module.") {
            Some(m) => parent.modules.contains_key(m),
            None => text
                .parse::<crate::lang::address::Address>()
                .is_ok_and(|a| parent.resources.contains_key(&a)),
        };
        if !known {
            diags.push(
                Diagnostic::error(format!(
                    "depends_on in module.{} names {text}, which is not declared",
                    call.name
                ))
                .named(text.clone())
                .at(span.clone()),
            );
        }
    }
}

/// The checks of one module's own blocks.
fn check_module(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let reg = config.schemas;
    for (addr, block) in &config.resources {
        if let Some(why) = reg.refused.get(&addr.type_name) {
            if addr.mode == Mode::Managed {
                diags.push(
                    Diagnostic::error(format!(
                        "resource type {:?} is not supported by skyform: {why}",
                        addr.type_name
                    ))
                    .named(addr.type_name.clone())
                    .at(block.type_span.clone()),
                );
                continue;
            }
        }
        let Some(schema) = reg.get(addr.mode, &addr.type_name) else {
            let kind = if addr.mode == Mode::Data {
                "data source"
            } else {
                "resource"
            };
            let known: Vec<&str> = match addr.mode {
                Mode::Managed => reg.resources.keys().map(String::as_str).collect(),
                Mode::Data => reg.data.keys().map(String::as_str).collect(),
            };
            let mut d = Diagnostic::error(format!("unknown {kind} type {:?}", addr.type_name))
                .named(addr.type_name.clone())
                .at(block.type_span.clone());
            if let Some(s) = did_you_mean(&addr.type_name, known) {
                d = d.note(format!("did you mean {s:?}?"));
            }
            diags.push(d);
            continue;
        };
        for (name, attr) in &block.attrs {
            match schema.attr(name) {
                None => {
                    if schema.lacks(name) {
                        diags.push(
                            not_supported_yet(&addr.type_name, name).at(attr.name_span.clone()),
                        );
                        continue;
                    }
                    let mut d = Diagnostic::error(format!("unknown attribute {name:?} in {addr}"))
                        .named(name.clone())
                        .at(attr.name_span.clone());
                    if let Some(s) = did_you_mean(name, schema.settable_names()) {
                        d = d.note(format!("did you mean {s:?}?"));
                    }
                    diags.push(d);
                }
                Some(a) if !a.settable() => diags.push(
                    Diagnostic::error(format!(
                        "{name:?} in {addr} is computed by AWS and cannot be set"
                    ))
                    .named(name.clone())
                    .at(attr.name_span.clone()),
                ),
                Some(_) => {}
            }
        }
        for (name, a) in &schema.attributes {
            if a.mode == crate::lang::schema::AttrMode::Required && !block.attrs.contains_key(name)
            {
                diags.push(
                    Diagnostic::error(format!("{addr} is missing the required attribute {name:?}"))
                        .named(name.clone())
                        .at(block.span.clone()),
                );
            }
        }
        for (text, span) in &block.depends_on {
            match text.parse::<crate::lang::address::Address>() {
                Ok(dep) if config.resources.contains_key(&dep) => {}
                _ => diags.push(
                    Diagnostic::error(format!(
                        "depends_on in {addr} names {text}, which is not declared"
                    ))
                    .named(text.clone())
                    .at(span.clone()),
                ),
            }
        }
        for attr in block.attrs.values() {
            check_expr_in(config, &attr.value, block.repetition.as_ref(), &mut diags);
        }
        if let Some(r) = &block.repetition {
            check_expr(config, r.expr(), &mut diags);
        }
        check_lifecycle(config, block, schema, &mut diags);
    }
    for l in config.locals.values() {
        check_expr(config, &l.value, &mut diags);
    }
    for imp in &config.imports {
        if !config.resources.contains_key(&imp.to) {
            diags.push(
                Diagnostic::error(format!(
                    "configuration for import target does not exist: the configuration for the given import target {} does not exist; all import targets must exist within the configuration",
                    imp.to
                ))
                .named(imp.to.to_string())
                .at(imp.span.clone()),
            );
        }
        let repetition = imp.for_each.clone().map(Repetition::ForEach);
        for e in [Some(&imp.id), imp.key.as_ref()].into_iter().flatten() {
            check_expr_in(config, e, repetition.as_ref(), &mut diags);
        }
        if let Some(e) = &imp.for_each {
            check_expr(config, e, &mut diags);
        }
    }
    for a in config.checks.values().flat_map(|c| &c.asserts) {
        check_expr(config, &a.condition, &mut diags);
        check_expr(config, &a.error_message, &mut diags);
    }
    for o in config.outputs.values() {
        if let Some(v) = &o.value {
            check_expr(config, v, &mut diags);
        }
    }
    for e in std::iter::once(&config.provider)
        .chain(config.aliases.values())
        .flat_map(|p| [&p.region, &p.profile, &p.default_tags])
        .flatten()
    {
        check_expr(config, e, &mut diags);
    }
    for v in config.variables.values() {
        if let Some(d) = &v.default {
            let (refs, _) = references(&d.expr);
            if let Some(r) = refs.first() {
                diags.push(
                    Diagnostic::error(format!(
                        "the default of var.{} must be a constant, but it reads {}",
                        v.name, r.text
                    ))
                    .named(r.text.clone())
                    .at(sub_span(d, r.range.clone())),
                );
            }
        }
        for val in &v.validations {
            for e in [&val.condition, &val.error_message] {
                let (refs, _) = references(&e.expr);
                for r in refs {
                    if !matches!(&r.target, RefTarget::Var(n) if *n == v.name) {
                        diags.push(
                            Diagnostic::error(format!(
                                "invalid reference in the validation of var.{0}: it can only \
                                 refer to the variable itself, using var.{0}, but it reads {1}",
                                v.name, r.text
                            ))
                            .named(r.text.clone())
                            .at(sub_span(e, r.range.clone())),
                        );
                    }
                }
            }
        }
    }
    diags
}

/// The static checks of a lifecycle block: what its triggers and preconditions read exists,
/// and `ignore_changes` names attributes of the type. Postconditions read `self`, so their
/// references are checked when they are evaluated.
fn check_lifecycle(
    config: &Config,
    block: &crate::lang::config::ResourceBlock,
    schema: &crate::lang::schema::Schema,
    diags: &mut Diagnostics,
) {
    let lc = &block.lifecycle;
    for e in lc.replace_triggered_by.iter().map(|t| &t.expr).chain(
        lc.preconditions
            .iter()
            .flat_map(|c| [&c.condition, &c.error_message]),
    ) {
        check_expr_in(config, e, block.repetition.as_ref(), diags);
    }
    if let crate::lang::lifecycle::IgnoreChanges::Attrs(names) = &lc.ignore_changes {
        for n in names {
            let why = match schema.attr(n) {
                Some(a) if a.settable() => continue,
                // Sending a computed attribute's old value back would be sending what the
                // configuration cannot set.
                Some(_) => "which is computed by AWS, so there is nothing to ignore",
                None => "which the type does not have",
            };
            diags.push(
                Diagnostic::error(format!(
                    "Unsupported attribute: lifecycle.ignore_changes in {} names {n:?}, {why}",
                    block.addr
                ))
                .named(n.clone())
                .at(block.span.clone()),
            );
        }
    }
}

fn sub_span(e: &Expr, range: Option<std::ops::Range<usize>>) -> Span {
    Span {
        file: e.span.file,
        range: range.unwrap_or_else(|| e.span.range.clone()),
    }
}

/// Checks an expression outside any repeated block: `count` and `each` are not defined there.
fn check_expr(config: &Config, e: &Expr, diags: &mut Diagnostics) {
    check_expr_in(config, e, None, diags);
}

/// What is wrong with a `count.x` or `each.x` reference in a block repeated by `repetition`,
/// in Terraform's words.
fn instance_ref_problem(target: &RefTarget, repetition: Option<&Repetition>) -> Option<String> {
    match (target, repetition) {
        (RefTarget::Count(_), Some(Repetition::Count(_))) | (RefTarget::Each(_), Some(Repetition::ForEach(_))) => None,
        (RefTarget::Count(_), _) => Some(
            "reference to \"count\" in non-counted context: the \"count\" object can only be used in \"module\", \"resource\", and \"data\" blocks, and only when the \"count\" argument is set".into(),
        ),
        (RefTarget::Each(_), _) => Some(
            "reference to \"each\" in context without for_each: the \"each\" object can be used only in \"module\" or \"resource\" blocks, and only when the \"for_each\" argument is set".into(),
        ),
        _ => None,
    }
}

/// Checks an expression of a block repeated by `repetition` (`None`: not repeated).
fn check_expr_in(
    config: &Config,
    e: &Expr,
    repetition: Option<&Repetition>,
    diags: &mut Diagnostics,
) {
    let (refs, funcs) = references(&e.expr);
    for r in refs {
        let span = sub_span(e, r.range.clone());
        let problem = match &r.target {
            t @ (RefTarget::Count(_) | RefTarget::Each(_))
                if instance_ref_problem(t, repetition).is_some() =>
            {
                instance_ref_problem(t, repetition).map(|m| (m, None))
            }
            RefTarget::Count(a) if a != "index" => Some((
                format!("invalid \"count\" attribute: the \"count\" object does not have an attribute named {a:?}; the only supported attribute is count.index, which is the index of each instance of a resource block that has the \"count\" argument set"),
                None,
            )),
            RefTarget::Each(a) if a != "key" && a != "value" => Some((
                format!("invalid \"each\" attribute: the \"each\" object does not have an attribute named {a:?}; the supported attributes are each.key and each.value, the current key and value pair of the \"for_each\" attribute set"),
                None,
            )),
            RefTarget::Var(n) if !config.variables.contains_key(n) => Some((
                format!("undefined variable var.{n}"),
                did_you_mean(n, config.variables.keys().map(String::as_str))
                    .map(|s| format!("var.{s}")),
            )),
            RefTarget::Local(n) if !config.locals.contains_key(n) => Some((
                format!("undefined local value local.{n}"),
                did_you_mean(n, config.locals.keys().map(String::as_str))
                    .map(|s| format!("local.{s}")),
            )),
            RefTarget::Resource(a) if !config.resources.contains_key(a) => {
                let names: Vec<String> = config.resources.keys().map(ToString::to_string).collect();
                Some((
                    format!("undefined reference to {a}"),
                    did_you_mean(&a.to_string(), names.iter().map(String::as_str))
                        .map(String::from),
                ))
            }
            RefTarget::Resource(a) => match (&r.attr, config.schemas.get(a.mode, &a.type_name)) {
                (Some(attr), Some(schema)) if schema.attr(attr).is_none() => Some((
                    format!("{a} has no attribute {attr:?}"),
                    did_you_mean(attr, schema.attributes.keys().map(String::as_str))
                        .map(|s| format!("{a}.{s}")),
                )),
                _ => None,
            },
            RefTarget::Module(m) => match (config.modules.get(m), &r.attr) {
                (None, _) => Some((
                    format!("reference to undeclared module: no module call named {m:?} is declared"),
                    did_you_mean(m, config.modules.keys().map(String::as_str))
                        .map(|s| format!("module.{s}")),
                )),
                (Some(call), Some(out)) if !call.config.outputs.contains_key(out) => Some((
                    format!("unsupported attribute: module.{m} has no output named {out:?}"),
                    did_you_mean(out, call.config.outputs.keys().map(String::as_str))
                        .map(|s| format!("module.{m}.{s}")),
                )),
                _ => None,
            },
            RefTarget::Unknown(_) => Some((format!("undefined reference {}", r.text), None)),
            _ => None,
        };
        if let Some((msg, hint)) = problem {
            let mut d = Diagnostic::error(msg).named(r.text.clone()).at(span);
            if let Some(h) = hint {
                d = d.note(format!("did you mean {h}?"));
            }
            diags.push(d);
        }
    }
    for f in funcs {
        if crate::lang::functions::lookup(&f.name).is_none() {
            let mut d = Diagnostic::error(format!("undefined function {}()", f.name))
                .named(f.name.clone())
                .at(sub_span(e, f.range));
            if let Some(s) = did_you_mean(
                &f.name,
                crate::lang::functions::FUNCTIONS.iter().map(|f| f.name),
            ) {
                d = d.note(format!("did you mean {s}()?"));
            }
            diags.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::config::load_str;

    fn errors(src: &str) -> Vec<String> {
        let (config, mut diags) = load_str(&[("m.sky.hcl", src)], crate::aws::schemas::registry());
        diags.extend(check(&config));
        diags
            .0
            .iter()
            .map(|d| format!("{} [{}]", d.message, d.name.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn unknown_types_and_attributes_get_hints() {
        let e = errors("resource \"aws_iam_rol\" \"r\" {}\nresource \"aws_iam_user\" \"u\" {\n  nmae = \"x\"\n}\n");
        assert!(
            e.iter()
                .any(|m| m.contains("unknown resource type \"aws_iam_rol\"")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("unknown attribute \"nmae\"")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("missing the required attribute \"name\"")),
            "{e:?}"
        );
    }

    #[test]
    fn undefined_references_variables_and_functions_are_all_reported() {
        let e = errors(
            "resource \"aws_iam_user\" \"u\" {\n  name = \"${var.nope}-${local.x}-${aws_iam_role.gone.arn}-${nofunc(1)}\"\n}\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("undefined variable var.nope"));
        assert!(e[1].contains("undefined local value local.x"));
        assert!(e[2].contains("undefined reference to aws_iam_role.gone"));
        assert!(e[3].contains("undefined function nofunc()"));
    }

    #[test]
    fn a_computed_attribute_cannot_be_set() {
        let e = errors("resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n  arn = \"x\"\n}\n");
        assert!(
            e.iter()
                .any(|m| m.contains("\"arn\" in aws_iam_user.u is computed")),
            "{e:?}"
        );
    }

    #[test]
    fn a_validation_may_read_only_its_own_variable() {
        let e = errors(
            "variable \"a\" {}\nvariable \"b\" {\n  validation {\n    condition = var.b != var.a\n    error_message = \"differs from ${var.a}\"\n  }\n}\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("can only refer to the variable itself, using var.b, but it reads var.a"),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_provider_alias_is_reported_where_it_is_written_with_a_hint() {
        let src = "provider \"aws\" {\n  alias = \"west\"\n}\n\
                   data \"aws_vpc\" \"d\" {\n  provider = aws.wset\n}\n";
        let (config, mut diags) = load_str(&[("m.sky.hcl", src)], crate::aws::schemas::registry());
        diags.extend(check(&config));
        assert_eq!(diags.errors(), 1, "{diags:?}");
        let d = &diags.0[0];
        assert!(
            d.message
                .contains("reference to undefined provider: there is no provider \"aws\" configuration aws.wset"),
            "{d:?}"
        );
        assert!(
            d.notes.iter().any(|n| n.contains("did you mean aws.west?")),
            "{d:?}"
        );
        let span = d.span.as_ref().expect("span");
        assert_eq!(config.sources.location(span), "m.sky.hcl:5:14");
    }
}
