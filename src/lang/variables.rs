//! Input variables: `--var NAME=VALUE`, `--var-file FILE`, `SKYFORM_VAR_<name>` and Terraform's
//! `TF_VAR_<name>`, the variables
//! files Terraform loads by itself (`terraform.tfvars`, `*.auto.tfvars`) and defaults.
//!
//! Precedence follows Terraform: defaults, then the environment, then the automatic files,
//! then var files and `--var` flags in the order given. Values are converted to the declared type; a string from the
//! command line or the environment is parsed as an HCL expression when the type is a
//! collection.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl_edit::expr::{Expression, ObjectKey};

use crate::lang::config::{Config, VariableBlock};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::lang::eval::{EvalCtx, EvalError};
use crate::lang::schema::{AttrType, Field};
use crate::lang::value::Value;

/// Where variable values come from.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    pub(crate) cli: Vec<String>,
    pub(crate) files: Vec<PathBuf>,
    /// `SKYFORM_VAR_<name>` pairs from the environment.
    pub(crate) env: Vec<(String, String)>,
}

impl VarInputs {
    pub(crate) fn from_env() -> Vec<(String, String)> {
        env_values(std::env::vars())
    }
}

/// The variable values an environment gives: Terraform's `TF_VAR_<name>`, which scripts and CI
/// written for Terraform set, then skyform's own `SKYFORM_VAR_<name>`, which is later so that
/// it wins when both name one variable.
fn env_values(env: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let (mut terraform, mut skyform) = (Vec::new(), Vec::new());
    for (k, v) in env {
        if let Some(n) = k.strip_prefix("TF_VAR_") {
            terraform.push((n.to_string(), v));
        } else if let Some(n) = k.strip_prefix("SKYFORM_VAR_") {
            skyform.push((n.to_string(), v));
        }
    }
    terraform.extend(skyform);
    terraform
}

/// The variables files Terraform loads from the configuration directory without being asked,
/// in its order: `terraform.tfvars`, `terraform.tfvars.json`, then `*.auto.tfvars` and
/// `*.auto.tfvars.json` in lexical order of their names. A Terraform project keeps its
/// values there, so without them its configuration would plan with the defaults instead.
pub(crate) fn auto_var_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["terraform.tfvars", "terraform.tfvars.json"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    let mut auto: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.ends_with(".auto.tfvars") || n.ends_with(".auto.tfvars.json")
                })
        })
        .collect();
    auto.sort();
    files.extend(auto);
    files
}

/// The resolved variables, and which of them are sensitive.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub(crate) values: BTreeMap<String, Value>,
    pub(crate) sensitive: BTreeSet<String>,
    /// The variables set by an input (`--var`, a var file or the environment) rather than by
    /// their default: `apply PLANFILE` holds those against the values the plan was made with.
    pub(crate) given: BTreeSet<String>,
}

/// The declared type; `None` when there is none (or it is malformed, which is reported).
fn declared_type(config: &Config, name: &str, diags: &mut Diagnostics) -> Option<AttrType> {
    let v = config.variables.get(name)?;
    let e = v.type_constraint.as_ref()?;
    match type_constraint(&e.expr) {
        Ok(t) => Some(t),
        Err(err) => {
            diags.push(
                Diagnostic::error(format!("{} for var.{name}", err.message))
                    .named(format!("var.{name}"))
                    .at(Span {
                        file: e.span.file,
                        range: err.range.unwrap_or_else(|| e.span.range.clone()),
                    }),
            );
            None
        }
    }
}

/// Reads a Terraform type constraint: `string`, `number`, `bool`, `any`, `list(T)`, `set(T)`,
/// `map(T)`, `tuple([T, ...])` and `object({ name = T, name = optional(T, default) })`.
fn type_constraint(e: &Expression) -> Result<AttrType, EvalError> {
    use hcl_edit::Span as _;
    let bad = |what: String| EvalError {
        message: what,
        range: e.span(),
    };
    match e {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(AttrType::String),
            "number" => Ok(AttrType::Number),
            "bool" => Ok(AttrType::Bool),
            "any" => Ok(AttrType::Any),
            // Terraform's legacy shorthands for a collection of `any`.
            "list" => Ok(AttrType::List(Box::new(AttrType::Any))),
            "set" => Ok(AttrType::Set(Box::new(AttrType::Any))),
            "map" => Ok(AttrType::Map(Box::new(AttrType::Any))),
            other => Err(bad(format!("unknown type {other}"))),
        },
        Expression::FuncCall(f) => {
            let kind = f.name.name.as_str();
            let args: Vec<&Expression> = f.args.iter().collect();
            let [arg] = args.as_slice() else {
                return Err(bad(format!(
                    "the type {kind}(...) takes exactly one argument"
                )));
            };
            match (kind, arg) {
                ("list", t) => Ok(AttrType::List(Box::new(type_constraint(t)?))),
                ("set", t) => Ok(AttrType::Set(Box::new(type_constraint(t)?))),
                ("map", t) => Ok(AttrType::Map(Box::new(type_constraint(t)?))),
                ("tuple", Expression::Array(items)) => items
                    .iter()
                    .map(type_constraint)
                    .collect::<Result<Vec<_>, _>>()
                    .map(AttrType::Tuple),
                ("object", Expression::Object(obj)) => {
                    let mut fields = BTreeMap::new();
                    for (k, v) in obj {
                        let key = match k {
                            ObjectKey::Ident(i) => i.as_str().to_string(),
                            ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                            ObjectKey::Expression(k) => {
                                return Err(EvalError {
                                    message: "an object type's attribute names must be \
                                              literal names"
                                        .into(),
                                    range: k.span(),
                                })
                            }
                        };
                        fields.insert(key, object_field(v.expr())?);
                    }
                    Ok(AttrType::Object(fields))
                }
                ("tuple", _) => Err(bad("tuple() takes a list of types: tuple([T, ...])".into())),
                ("object", _) => Err(bad(
                    "object() takes an object of types: object({ name = T })".into(),
                )),
                ("optional", _) => Err(bad(
                    "optional() is allowed only for an attribute of object({...})".into(),
                )),
                (other, _) => Err(bad(format!("unknown type {other}(...)"))),
            }
        }
        _ => Err(bad("not a type constraint".into())),
    }
}

/// An attribute of `object({...})`: `T`, `optional(T)` or `optional(T, default)`, whose default
/// is a constant converted to `T`.
fn object_field(e: &Expression) -> Result<Field, EvalError> {
    use hcl_edit::Span as _;
    let Expression::FuncCall(f) = e else {
        return Ok(required(type_constraint(e)?));
    };
    if f.name.name.as_str() != "optional" {
        return Ok(required(type_constraint(e)?));
    }
    let args: Vec<&Expression> = f.args.iter().collect();
    let (ty, default) = match args.as_slice() {
        [t] => (type_constraint(t)?, None),
        [t, d] => {
            let ty = type_constraint(t)?;
            let (value, _) = EvalCtx::default().eval_top(d)?;
            let value = ty.conform(value).map_err(|m| EvalError {
                message: format!("the default does not fit the type: {m}"),
                range: d.span(),
            })?;
            (ty, Some(value))
        }
        _ => {
            return Err(EvalError {
                message: "optional() takes a type and, optionally, a default".into(),
                range: e.span(),
            })
        }
    };
    Ok(Field {
        ty,
        required: false,
        default,
        description: String::new(),
    })
}

fn required(ty: AttrType) -> Field {
    Field {
        ty,
        required: true,
        default: None,
        description: String::new(),
    }
}

fn parse_value(text: &str, ty: Option<&AttrType>) -> Result<Value, String> {
    let complex = matches!(
        ty,
        Some(
            AttrType::List(_)
                | AttrType::Set(_)
                | AttrType::Map(_)
                | AttrType::Object(_)
                | AttrType::Tuple(_)
        )
    );
    if !complex {
        return Ok(Value::String(text.to_string()));
    }
    let expr = hcl_edit::parser::parse_expr(text)
        .map_err(|e| format!("not a valid HCL value: {}", e.message()))?;
    EvalCtx::default()
        .eval_top(&expr)
        .map(|(v, _)| v)
        .map_err(|e| e.message)
}

/// Resolves every declared variable. With `require_all`, a variable without any value is an
/// error; otherwise (for `validate`) it is unknown.
pub fn resolve(config: &Config, inputs: &VarInputs, require_all: bool) -> (Vars, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut raw: BTreeMap<String, (Value, bool)> = BTreeMap::new(); // value, came as text
    let mut given = BTreeSet::new();
    let ctx = EvalCtx::new(config.dir.clone());
    for (name, v) in &config.variables {
        if let Some(d) = &v.default {
            match ctx.eval_top(&d.expr) {
                Ok((val, _)) => {
                    raw.insert(name.clone(), (val, false));
                }
                Err(e) => diags.push(
                    Diagnostic::error(e.message)
                        .named(format!("var.{name}"))
                        .at(d.span.clone()),
                ),
            }
        }
    }
    for (name, text) in &inputs.env {
        if config.variables.contains_key(name) {
            raw.insert(name.clone(), (Value::String(text.clone()), true));
            given.insert(name.clone());
        }
    }
    for file in &inputs.files {
        match read_var_file(file) {
            Ok(pairs) => {
                for (name, val) in pairs {
                    if config.variables.contains_key(&name) {
                        given.insert(name.clone());
                        raw.insert(name, (val, false));
                    } else {
                        diags.push(
                            Diagnostic::warning(format!(
                                "{} sets var.{name}, which is not declared",
                                file.display()
                            ))
                            .named(name),
                        );
                    }
                }
            }
            Err(e) => diags.push(
                Diagnostic::error(format!(
                    "cannot use the variables file {}: {e}",
                    file.display()
                ))
                .named(file.display().to_string()),
            ),
        }
    }
    for arg in &inputs.cli {
        let Some((name, text)) = arg.split_once('=') else {
            diags.push(
                Diagnostic::error(format!("--var {arg:?} must have the form NAME=VALUE"))
                    .named(arg.clone()),
            );
            continue;
        };
        if !config.variables.contains_key(name) {
            let mut d = Diagnostic::error(format!("--var sets var.{name}, which is not declared"))
                .named(name);
            if let Some(s) = crate::lang::diagnostic::did_you_mean(
                name,
                config.variables.keys().map(String::as_str),
            ) {
                d = d.note(format!("did you mean {s:?}?"));
            }
            diags.push(d);
            continue;
        }
        raw.insert(name.to_string(), (Value::String(text.to_string()), true));
        given.insert(name.to_string());
    }
    let mut vars = Vars {
        given,
        ..Vars::default()
    };
    for (name, v) in &config.variables {
        if v.sensitive {
            vars.sensitive.insert(name.clone());
        }
        let ty = declared_type(config, name, &mut diags);
        let value = match raw.remove(name) {
            Some((Value::String(text), true)) => match parse_value(&text, ty.as_ref()) {
                Ok(val) => val,
                Err(e) => {
                    diags.push(
                        Diagnostic::error(format!("invalid value for var.{name}: {e}"))
                            .named(format!("var.{name}"))
                            .at(v.span.clone()),
                    );
                    continue;
                }
            },
            Some((val, _)) => val,
            None if require_all => {
                diags.push(
                    Diagnostic::error(format!("no value for the required variable var.{name}"))
                        .named(format!("var.{name}"))
                        .at(v.span.clone())
                        .note(format!(
                            "set it with --var {name}=VALUE, a --var-file, or SKYFORM_VAR_{name}"
                        )),
                );
                continue;
            }
            None => Value::Unknown,
        };
        if let Some(value) = checked(config, v, ty.as_ref(), value, &mut diags) {
            vars.values.insert(name.clone(), value);
        }
    }
    (vars, diags)
}

/// The value of input variable `name` of a called module (`config` is the module's): the
/// call's argument, or the default when the call gives none (or null, for a variable that is
/// not nullable), converted to the declared type and checked by the validations.
pub(crate) fn module_input(
    config: &Config,
    name: &str,
    given: Option<Value>,
) -> Result<Value, Diagnostics> {
    let mut diags = Diagnostics::default();
    let Some(v) = config.variables.get(name) else {
        return Ok(Value::Null);
    };
    let default = || -> Result<Value, Diagnostics> {
        let Some(d) = &v.default else {
            return Ok(Value::Null);
        };
        EvalCtx::new(config.dir.clone())
            .eval_top(&d.expr)
            .map(|(val, _)| val)
            .map_err(|e| {
                let mut ds = Diagnostics::default();
                ds.push(
                    Diagnostic::error(e.message)
                        .named(format!("var.{name}"))
                        .at(d.span.clone()),
                );
                ds
            })
    };
    let value = match given {
        None => default()?,
        Some(Value::Null) if !v.nullable => default()?,
        Some(val) => val,
    };
    let ty = declared_type(config, name, &mut diags);
    match checked(config, v, ty.as_ref(), value, &mut diags) {
        Some(value) if !diags.has_errors() => Ok(value),
        _ => Err(diags),
    }
}

/// A variable's value converted to its type, refused when null and not nullable, and
/// checked by its validations (an unknown value is not judged): `None` when it is refused.
fn checked(
    config: &Config,
    v: &VariableBlock,
    ty: Option<&AttrType>,
    value: Value,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let name = &v.name;
    let value = match ty {
        Some(t) => match t.conform(value) {
            Ok(val) => val,
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!("invalid value for var.{name}: {e}"))
                        .named(format!("var.{name}"))
                        .at(v.span.clone()),
                );
                return None;
            }
        },
        None => value,
    };
    if value == Value::Null && !v.nullable {
        diags.push(
            Diagnostic::error(format!(
                "invalid value for var.{name}: the variable is not nullable, so it may not be null"
            ))
            .named(format!("var.{name}"))
            .at(v.span.clone()),
        );
        return None;
    }
    validate(config, v, &value, diags);
    Some(value)
}

/// Runs the variable's `validation` blocks against its value. An unknown value (under
/// `validate`, with no input) is not judged, as Terraform defers such checks.
fn validate(config: &Config, v: &VariableBlock, value: &Value, diags: &mut Diagnostics) {
    if v.validations.is_empty() || *value == Value::Unknown {
        return;
    }
    // Only the variable itself is in scope: `lang::validate` already refused other references.
    let mut scope = EvalCtx::new(config.dir.clone());
    scope.set(&["var", &v.name], value.clone());
    let name = &v.name;
    for val in &v.validations {
        let at_condition = |e: EvalError| {
            Diagnostic::error(format!("invalid validation for var.{name}: {}", e.message))
                .named(format!("var.{name}"))
                .at(Span {
                    file: val.condition.span.file,
                    range: e.range.unwrap_or_else(|| val.condition.span.range.clone()),
                })
        };
        match scope.eval_top(&val.condition.expr) {
            Ok((Value::Bool(true) | Value::Unknown, _)) => {}
            Ok((Value::Bool(false), _)) => {
                let message = match scope.eval_top(&val.error_message.expr) {
                    Ok((Value::String(s), _)) => s,
                    Ok((other, _)) => format!("(the error_message is a {})", other.type_name()),
                    Err(e) => e.message,
                };
                diags.push(
                    Diagnostic::error(format!("invalid value for var.{name}: {message}"))
                        .named(format!("var.{name}"))
                        .at(v.span.clone())
                        .note(format!(
                            "checked by the validation rule at {}",
                            config.sources.location(&val.condition.span)
                        )),
                );
            }
            Ok((other, _)) => diags.push(at_condition(EvalError {
                message: format!("the condition must be a bool, found {}", other.type_name()),
                range: None,
            })),
            Err(e) => diags.push(at_condition(e)),
        }
    }
}

/// A `.json` object, or an HCL file of `name = value` lines.
fn read_var_file(path: &std::path::Path) -> Result<Vec<(String, Value)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let serde_json::Value::Object(map) = json else {
            return Err("a JSON variables file must hold an object".into());
        };
        return Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect());
    }
    let body = hcl_edit::parser::parse_body(&text).map_err(|e| e.to_string())?;
    let ctx = EvalCtx::default();
    let mut out = Vec::new();
    for attr in body.attributes() {
        let (v, _) = ctx
            .eval_top(&attr.value)
            .map_err(|e| format!("{}: {}", attr.key.as_str(), e.message))?;
        out.push((attr.key.as_str().to_string(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::config::load_str;

    const SRC: &str = r#"
variable "name" { default = "a" }
variable "n" { type = number }
variable "tags" { type = map(string) }
variable "secret" { sensitive = true }
"#;

    #[test]
    fn tf_var_variables_are_read_and_skyform_var_wins_over_them() {
        let env = [
            ("SKYFORM_VAR_name", "from-skyform"),
            ("TF_VAR_name", "from-terraform"),
            ("TF_VAR_n", "3"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let inputs = VarInputs {
            env: env_values(env.into_iter()),
            ..VarInputs::default()
        };
        let (config, _) = load_str(&[("v.sky.hcl", SRC)], crate::aws::schemas::registry());
        let (vars, diags) = resolve(&config, &inputs, false);
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(vars.values["name"], Value::string("from-skyform"));
        assert_eq!(vars.values["n"], Value::Number(3.0));
    }

    #[test]
    fn terraform_tfvars_and_auto_tfvars_files_are_found_in_terraforms_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.auto.tfvars",
            "a.auto.tfvars.json",
            "terraform.tfvars",
            "terraform.tfvars.json",
            "other.tfvars",
            "x.auto.tfvars.bak",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("c.auto.tfvars")).unwrap();
        let found: Vec<String> = auto_var_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            found,
            [
                "terraform.tfvars",
                "terraform.tfvars.json",
                "a.auto.tfvars.json",
                "b.auto.tfvars"
            ]
        );
    }

    #[test]
    fn cli_overrides_env_and_values_take_their_declared_type() {
        let (config, _) = load_str(&[("v.sky.hcl", SRC)], crate::aws::schemas::registry());
        let inputs = VarInputs {
            cli: vec!["n=3".into(), "tags={a = \"b\"}".into(), "name=cli".into()],
            files: vec![],
            env: vec![("name".into(), "env".into()), ("secret".into(), "s".into())],
        };
        let (vars, diags) = resolve(&config, &inputs, true);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(vars.values["name"], Value::string("cli"));
        assert_eq!(vars.values["n"], Value::Number(3.0));
        assert_eq!(
            vars.values["tags"],
            Value::Object(BTreeMap::from([("a".into(), Value::string("b"))]))
        );
        assert!(vars.sensitive.contains("secret"));
    }

    #[test]
    fn a_value_from_a_default_is_not_counted_as_given() {
        let (config, _) = load_str(&[("v.sky.hcl", SRC)], crate::aws::schemas::registry());
        let inputs = VarInputs {
            cli: vec!["n=3".into()],
            files: vec![],
            env: vec![("secret".into(), "s".into())],
        };
        let (vars, _) = resolve(&config, &inputs, false);
        assert_eq!(vars.values["name"], Value::string("a"));
        assert_eq!(vars.given.iter().collect::<Vec<_>>(), ["n", "secret"]);
    }

    #[test]
    fn missing_and_mistyped_values_are_errors() {
        let (config, _) = load_str(&[("v.sky.hcl", SRC)], crate::aws::schemas::registry());
        let inputs = VarInputs {
            cli: vec!["n=abc".into(), "nope=1".into()],
            ..VarInputs::default()
        };
        let (_, diags) = resolve(&config, &inputs, true);
        let msgs: Vec<&str> = diags.0.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("var.nope")), "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("invalid value for var.n")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("required variable var.tags")),
            "{msgs:?}"
        );
    }

    const VALIDATED: &str = r#"
variable "env" {
  default = "dev"
  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
  validation {
    condition     = length(var.env) <= 4
    error_message = "env is at most 4 characters."
  }
}
variable "zone" {
  type     = string
  default  = "a"
  nullable = false
}
"#;

    fn messages(cli: &[&str]) -> Vec<String> {
        resolved(VALIDATED, cli).1
    }

    #[test]
    fn a_value_passing_every_validation_is_accepted() {
        assert!(messages(&["env=prod"]).is_empty());
    }

    #[test]
    fn each_failing_validation_reports_its_error_message() {
        let msgs = messages(&["env=staging"]);
        assert_eq!(
            msgs,
            [
                "invalid value for var.env: env must be dev or prod.",
                "invalid value for var.env: env is at most 4 characters."
            ]
        );
    }

    #[test]
    fn a_non_nullable_variable_refuses_null_but_a_nullable_one_takes_it() {
        let src = format!("{VALIDATED}\nvariable \"opt\" {{\n  default = null\n}}\n");
        let (vars, msgs) = resolved(&src, &[]);
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(vars.values["opt"], Value::Null);
        let src = VALIDATED.replace("default  = \"a\"", "default  = null");
        let (_, msgs) = resolved(&src, &[]);
        assert_eq!(
            msgs,
            ["invalid value for var.zone: the variable is not nullable, so it may not be null"]
        );
    }

    #[test]
    fn a_condition_that_is_not_a_bool_is_an_error_at_the_condition() {
        let src = "variable \"x\" {\n  default = \"a\"\n  validation {\n    condition = var.x\n    error_message = \"m\"\n  }\n}\n";
        let (config, _) = load_str(&[("v.sky.hcl", src)], crate::aws::schemas::registry());
        let (_, diags) = resolve(&config, &VarInputs::default(), true);
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert!(diags.0[0].message.contains("must be a bool, found string"));
        let span = diags.0[0].span.clone().unwrap();
        assert_eq!(config.sources.location(&span), "v.sky.hcl:4:17");
    }

    #[test]
    fn an_unknown_value_is_not_judged_by_its_validations() {
        let src = VALIDATED.replace("default = \"dev\"", "");
        let (config, _) = load_str(&[("v.sky.hcl", &src)], crate::aws::schemas::registry());
        let (vars, diags) = resolve(&config, &VarInputs::default(), false);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(vars.values["env"], Value::Unknown);
    }

    fn resolved(src: &str, cli: &[&str]) -> (Vars, Vec<String>) {
        let (config, d) = load_str(&[("v.sky.hcl", src)], crate::aws::schemas::registry());
        assert!(d.is_empty(), "{d:?}");
        let inputs = VarInputs {
            cli: cli.iter().map(|s| (*s).to_string()).collect(),
            ..VarInputs::default()
        };
        let (vars, diags) = resolve(&config, &inputs, true);
        (vars, diags.0.iter().map(|d| d.message.clone()).collect())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        )
    }

    const NODES: &str = r#"
variable "nodes" {
  type = map(object({
    size  = string
    count = optional(number, 1)
    zones = optional(list(string))
  }))
}
"#;

    #[test]
    fn optional_object_attributes_take_their_defaults_or_null() {
        let (vars, msgs) =
            resolve_nodes("nodes={ web = { size = \"m\" }, db = { size = 2, count = \"3\" } }");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(
            vars.values["nodes"],
            obj(&[
                (
                    "db",
                    obj(&[
                        ("count", Value::Number(3.0)),
                        ("size", Value::string("2")),
                        ("zones", Value::Null)
                    ])
                ),
                (
                    "web",
                    obj(&[
                        ("count", Value::Number(1.0)),
                        ("size", Value::string("m")),
                        ("zones", Value::Null)
                    ])
                ),
            ])
        );
    }

    fn resolve_nodes(arg: &str) -> (Vars, Vec<String>) {
        resolved(NODES, &[arg])
    }

    #[test]
    fn a_missing_required_object_attribute_is_an_error() {
        let (_, msgs) = resolve_nodes("nodes={ web = { count = 2 } }");
        assert_eq!(
            msgs,
            ["invalid value for var.nodes: the attribute \"size\" is required"]
        );
    }

    #[test]
    fn tuples_sets_and_any_convert_as_terraform_does() {
        let src = r#"
variable "t" { type = tuple([string, number, bool]) }
variable "s" { type = set(string) }
variable "a" { type = any }
variable "m" { type = map }
"#;
        let (vars, msgs) = resolved(
            src,
            &[
                "t=[1, \"2\", \"true\"]",
                "s=[\"b\", \"a\", \"b\"]",
                "a=x",
                "m={k = 1}",
            ],
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(
            vars.values["t"],
            Value::List(vec![
                Value::string("1"),
                Value::Number(2.0),
                Value::Bool(true)
            ])
        );
        assert_eq!(
            vars.values["s"],
            Value::List(vec![Value::string("a"), Value::string("b")])
        );
        assert_eq!(vars.values["a"], Value::string("x"));
        assert_eq!(vars.values["m"], obj(&[("k", Value::Number(1.0))]));
        let (_, msgs) = resolved(src, &["t=[1]", "s=[]", "a=x", "m={}"]);
        assert_eq!(
            msgs,
            ["invalid value for var.t: expected a tuple of 3 elements, found 1"]
        );
    }

    #[test]
    fn a_malformed_type_constraint_is_reported_where_it_is() {
        let src = "variable \"x\" {\n  type = object({ a = optional(strin) })\n}\n";
        let (config, _) = load_str(&[("v.sky.hcl", src)], crate::aws::schemas::registry());
        let (_, diags) = resolve(&config, &VarInputs::default(), false);
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(diags.0[0].message, "unknown type strin for var.x");
        let span = diags.0[0].span.clone().unwrap();
        assert_eq!(config.sources.location(&span), "v.sky.hcl:2:32");
        let (_, msgs) = resolved(
            "variable \"y\" {\n  type = optional(string)\n  default = \"a\"\n}\n",
            &[],
        );
        assert_eq!(
            msgs,
            ["optional() is allowed only for an attribute of object({...}) for var.y"]
        );
    }
}
