//! The `terraform {}` block: `required_version` checked against the Terraform language version
//! skyform implements, `required_providers` limited to `aws`, and the `backend` block: where
//! the state lives (`local`, the default, or `s3`), read the way Terraform reads it.
//!
//! Only the backend is kept (in `Config::backend`); the rest decides whether the configuration
//! may be used by skyform at all. `config::read_backend` reads the backend alone, for the commands that
//! need the state but not the configuration (`state list`, `output`, `workspace`).

use hcl_edit::expr::Expression;
use hcl_edit::structure::Block;
use hcl_edit::Span as _;

use crate::lang::diagnostic::{Diagnostic, Diagnostics, Span};

/// The Terraform language version whose semantics skyform follows; `required_version` is
/// checked against it, as Terraform checks its own version.
pub(crate) const TERRAFORM_VERSION: &str = "1.5.7";

/// Where the state lives, from the `backend` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Backend {
    /// `.skyform/state.db` (no backend block, or `backend "local"`).
    #[default]
    Local,
    S3(S3Backend),
}

/// A `backend "s3"` block: Terraform's S3 backend settings that skyform honours.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct S3Backend {
    pub(crate) bucket: String,
    /// The default workspace's state is named after it; others live under
    /// `<workspace_key_prefix>/<workspace>/<key>`.
    pub(crate) key: String,
    /// `None`: the region of the AWS credential chain (`AWS_REGION`, the profile).
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    /// SSE-S3 (AES256) on every object written.
    pub(crate) encrypt: bool,
    /// SSE-KMS with this key on every object written (wins over `encrypt`, as in Terraform).
    pub(crate) kms_key_id: Option<String>,
    pub(crate) workspace_key_prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`), for S3-compatible endpoints.
    pub(crate) use_path_style: bool,
}

/// Terraform's default `workspace_key_prefix`.
pub(crate) const WORKSPACE_KEY_PREFIX: &str = "env:";

impl S3Backend {
    /// The state's key for `workspace`, as Terraform lays them out: the default workspace at
    /// `key`, any other at `<workspace_key_prefix>/<workspace>/<key>`.
    pub(crate) fn key_for(&self, workspace: &str) -> String {
        if workspace == crate::lang::eval::WORKSPACE {
            self.key.clone()
        } else {
            format!("{}/{workspace}/{}", self.workspace_key_prefix, self.key)
        }
    }
}

/// Reads one `backend "TYPE" { ... }` block into `found`, as Terraform does: one backend per
/// configuration, literal values only (a backend is set up before any variable is known).
pub(crate) fn backend_block(
    block: &Block,
    file: usize,
    found: &mut Option<(Backend, Span)>,
    diags: &mut Diagnostics,
) {
    let span = |range: Option<std::ops::Range<usize>>| Span::new(file, range);
    let here = span(block.ident.span());
    if found.is_some() {
        diags.push(
            Diagnostic::error("duplicate backend block: a configuration has at most one backend")
                .named("backend")
                .at(here),
        );
        return;
    }
    let [label] = block.labels.as_slice() else {
        diags.push(
            Diagnostic::error("a backend block takes one label, its type: backend \"s3\"")
                .named("backend")
                .at(here),
        );
        return;
    };
    let kind = label.as_str().to_string();
    for nested in block.body.blocks() {
        diags.push(
            Diagnostic::error(format!(
                "unexpected block {:?} in backend {kind:?}",
                nested.ident.as_str()
            ))
            .named(nested.ident.as_str())
            .at(span(nested.ident.span())),
        );
    }
    match kind.as_str() {
        "local" => {
            for attr in block.body.attributes() {
                diags.push(
                    Diagnostic::error(format!(
                        "{:?} is not supported in backend \"local\": skyform's local state is .skyform/state.db",
                        attr.key.as_str()
                    ))
                    .named(attr.key.as_str())
                    .at(span(attr.key.span())),
                );
            }
            *found = Some((Backend::Local, here));
        }
        "s3" => {
            if let Some(s3) = s3_block(block, file, diags) {
                *found = Some((Backend::S3(s3), here));
            }
        }
        other => diags.push(
            Diagnostic::error(format!(
                "backend {other:?} is not supported; skyform keeps its state locally or in S3 (backend \"s3\")"
            ))
            .named("backend")
            .at(here),
        ),
    }
}

/// The literal value of a backend attribute.
enum Literal {
    Text(String),
    Bool(bool),
}

fn literal(value: &Expression) -> Option<Literal> {
    match value {
        Expression::String(s) => Some(Literal::Text(s.value().clone())),
        Expression::Bool(b) => Some(Literal::Bool(*b.value())),
        // A template without interpolation is still a literal ("a" written as a template).
        Expression::StringTemplate(t) => {
            let mut out = String::new();
            for element in t {
                match element {
                    hcl_edit::template::Element::Literal(l) => out.push_str(l.value()),
                    _ => return None,
                }
            }
            Some(Literal::Text(out))
        }
        _ => None,
    }
}

/// A `backend "s3"` block's settings; `None` after an error (reported in `diags`).
fn s3_block(block: &Block, file: usize, diags: &mut Diagnostics) -> Option<S3Backend> {
    let span = |range: Option<std::ops::Range<usize>>| Span::new(file, range);
    let errors_before = diags.errors();
    let mut s3 = S3Backend {
        workspace_key_prefix: WORKSPACE_KEY_PREFIX.into(),
        ..S3Backend::default()
    };
    let (mut bucket, mut key) = (false, false);
    for attr in block.body.attributes() {
        let name = attr.key.as_str();
        let at = span(attr.value.span());
        bucket |= name == "bucket";
        key |= name == "key";
        let Some(value) = literal(&attr.value) else {
            diags.push(
                Diagnostic::error(format!(
                    "{name}: a backend setting must be a literal value (the backend is read before variables and references are known)"
                ))
                .named(name)
                .at(at),
            );
            continue;
        };
        let text = |value: Literal, diags: &mut Diagnostics| match value {
            Literal::Text(t) if !t.is_empty() => Some(t),
            _ => {
                diags.push(
                    Diagnostic::error(format!("{name} must be a non-empty string"))
                        .named(name)
                        .at(at.clone()),
                );
                None
            }
        };
        let flag = |value: Literal, diags: &mut Diagnostics| match value {
            Literal::Bool(b) => Some(b),
            Literal::Text(_) => {
                diags.push(
                    Diagnostic::error(format!("{name} must be true or false"))
                        .named(name)
                        .at(at.clone()),
                );
                None
            }
        };
        match name {
            "bucket" => {
                s3.bucket = text(value, diags).unwrap_or_default();
            }
            "key" => {
                if let Some(k) = text(value, diags) {
                    if k.starts_with('/') || k.ends_with('/') {
                        diags.push(
                            Diagnostic::error("key must not start or end with \"/\"")
                                .named(name)
                                .at(at.clone()),
                        );
                    }
                    s3.key = k;
                }
            }
            "region" => s3.region = text(value, diags),
            "profile" => s3.profile = text(value, diags),
            "kms_key_id" => s3.kms_key_id = text(value, diags),
            "workspace_key_prefix" => {
                if let Some(p) = text(value, diags) {
                    s3.workspace_key_prefix = p;
                }
            }
            "encrypt" => s3.encrypt = flag(value, diags).unwrap_or_default(),
            // force_path_style is the spelling of Terraform before 1.6.
            "use_path_style" | "force_path_style" => s3.use_path_style = flag(value, diags).unwrap_or_default(),
            "use_lockfile" => {
                if flag(value, diags) == Some(false) {
                    diags.push(
                        Diagnostic::warning(
                            "use_lockfile = false is ignored: skyform always locks the state with an S3 lock object (conditional writes)",
                        )
                        .named(name)
                        .at(at),
                    );
                }
            }
            "dynamodb_table" => diags.push(
                Diagnostic::warning(
                    "dynamodb_table is ignored: skyform locks the state with S3 conditional writes and needs no DynamoDB table",
                )
                .named(name)
                .at(at),
            ),
            other => {
                let mut d = Diagnostic::error(format!(
                    "{other:?} is not supported in backend \"s3\""
                ))
                .named(other)
                .at(span(attr.key.span()));
                if let Some(s) = crate::lang::diagnostic::did_you_mean(other, S3_SETTINGS) {
                    d = d.note(format!("did you mean {s:?}?"));
                }
                diags.push(d);
            }
        }
    }
    for (given, name) in [(bucket, "bucket"), (key, "key")] {
        if !given {
            diags.push(
                Diagnostic::error(format!("backend \"s3\" needs {name}"))
                    .named("backend")
                    .at(span(block.ident.span())),
            );
        }
    }
    (diags.errors() == errors_before).then_some(s3)
}

/// The settings a `backend "s3"` block may hold.
const S3_SETTINGS: [&str; 11] = [
    "bucket",
    "key",
    "region",
    "profile",
    "encrypt",
    "kms_key_id",
    "workspace_key_prefix",
    "use_path_style",
    "use_lockfile",
    "dynamodb_table",
    "force_path_style",
];

/// Checks one `terraform {}` block of source `file`, and reads its backend into `backend`.
pub(crate) fn check_block(
    block: &Block,
    file: usize,
    backend: &mut Option<(Backend, Span)>,
    diags: &mut Diagnostics,
) {
    let span = |range: Option<std::ops::Range<usize>>| Span::new(file, range);
    if !block.labels.is_empty() {
        diags.push(
            Diagnostic::error("a terraform block takes no labels")
                .named("terraform")
                .at(span(block.ident.span())),
        );
    }
    for attr in block.body.attributes() {
        let key = attr.key.as_str();
        match key {
            "required_version" => {
                if let Expression::String(s) = &attr.value {
                    if let Err(d) = check_required_version(s.value()) {
                        diags.push(d.named(key).at(span(attr.value.span())));
                    }
                } else {
                    diags.push(
                        Diagnostic::error("required_version must be a literal string")
                            .named(key)
                            .at(span(attr.value.span())),
                    );
                }
            }
            // Terraform's experiments change the language; skyform implements none of them.
            _ => diags.push(
                Diagnostic::error(format!("{key:?} is not supported in a terraform block"))
                    .named(key)
                    .at(span(attr.key.span())),
            ),
        }
    }
    for inner in block.body.blocks() {
        let name = inner.ident.as_str();
        match name {
            "required_providers" => {
                for attr in inner.body.attributes() {
                    let provider = attr.key.as_str();
                    if provider != "aws" {
                        diags.push(
                            Diagnostic::error(format!(
                                "provider {provider:?} is not supported; skyform manages AWS only"
                            ))
                            .named(provider)
                            .at(span(attr.key.span())),
                        );
                    }
                }
                for nested in inner.body.blocks() {
                    diags.push(
                        Diagnostic::error(format!(
                            "unexpected block {:?} in required_providers",
                            nested.ident.as_str()
                        ))
                        .named(nested.ident.as_str())
                        .at(span(nested.ident.span())),
                    );
                }
            }
            "backend" => backend_block(inner, file, backend, diags),
            _ => diags.push(
                Diagnostic::error(format!(
                    "{name:?} blocks are not supported in a terraform block"
                ))
                .named(name)
                .at(span(inner.ident.span())),
            ),
        }
    }
}

/// A version as Terraform's constraints compare it: missing segments are zero.
type Version = [u64; 3];

/// Parses `1`, `1.2` or `1.2.3`, returning the version and how many segments were written.
fn parse_version(text: &str) -> Option<(Version, usize)> {
    let mut out = [0; 3];
    let mut n = 0;
    for part in text.trim().trim_start_matches('v').split('.') {
        if n == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out[n] = part.parse().ok()?;
        n += 1;
    }
    (n > 0).then_some((out, n))
}

/// Whether `version` meets one constraint such as `>= 1.3` or `~> 1.5.0`.
fn meets(version: Version, constraint: &str) -> Result<bool, String> {
    let c = constraint.trim();
    let ops = ["~>", ">=", "<=", "!=", ">", "<", "="];
    let (op, rest) = ops
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("=", c));
    let (want, segments) =
        parse_version(rest).ok_or_else(|| format!("invalid version constraint {constraint:?}"))?;
    Ok(match op {
        ">=" => version >= want,
        "<=" => version <= want,
        "!=" => version != want,
        ">" => version > want,
        "<" => version < want,
        // The pessimistic operator lets only the last written segment grow.
        "~>" => version >= want && version[..segments - 1] == want[..segments - 1],
        _ => version == want,
    })
}

/// Checks a `required_version` string (comma-separated constraints, all of which must hold).
fn check_required_version(constraints: &str) -> Result<(), Diagnostic> {
    let (ours, _) = parse_version(TERRAFORM_VERSION).unwrap_or(([0; 3], 0));
    for constraint in constraints.split(',') {
        match meets(ours, constraint) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Diagnostic::error(format!(
                    "Unsupported Terraform Core version: this configuration does not support \
                     Terraform version {TERRAFORM_VERSION}, the language version skyform \
                     implements"
                ))
                .note(format!("required_version = {constraints:?}")));
            }
            Err(msg) => return Err(Diagnostic::error(msg)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backend of `text`'s terraform blocks, and the diagnostics' messages.
    fn backend_of(text: &str) -> (Option<Backend>, Vec<String>) {
        let body = hcl_edit::parser::parse_body(text).unwrap();
        let (mut found, mut diags) = (None, Diagnostics::default());
        for block in body.blocks() {
            check_block(block, 0, &mut found, &mut diags);
        }
        (
            found.map(|(b, _)| b),
            diags.0.iter().map(|d| d.message.clone()).collect(),
        )
    }

    #[test]
    fn an_s3_backend_block_is_read_as_terraform_writes_it() {
        let (backend, diags) = backend_of(
            r#"terraform {
  backend "s3" {
    bucket               = "team-state"
    key                  = "skypilot/terraform.tfstate"
    region               = "eu-west-1"
    encrypt              = true
    kms_key_id           = "alias/state"
    profile              = "ci"
    workspace_key_prefix = "envs"
    use_path_style       = true
    use_lockfile         = true
  }
}"#,
        );
        assert_eq!(diags, Vec::<String>::new());
        let Some(Backend::S3(s3)) = backend else {
            panic!("{backend:?}")
        };
        assert_eq!(
            s3,
            S3Backend {
                bucket: "team-state".into(),
                key: "skypilot/terraform.tfstate".into(),
                region: Some("eu-west-1".into()),
                profile: Some("ci".into()),
                encrypt: true,
                kms_key_id: Some("alias/state".into()),
                workspace_key_prefix: "envs".into(),
                use_path_style: true,
            }
        );
        assert_eq!(s3.key_for("default"), "skypilot/terraform.tfstate");
        assert_eq!(s3.key_for("prod"), "envs/prod/skypilot/terraform.tfstate");
    }

    #[test]
    fn backend_settings_must_be_known_literals() {
        let (backend, diags) = backend_of(
            r#"terraform {
  backend "s3" {
    bucket         = var.bucket
    key            = "k"
    dynamodb_table = "locks"
    endpoint_url   = "http://x"
  }
}"#,
        );
        assert_eq!(backend, None);
        assert_eq!(diags.len(), 3, "{diags:?}");
        assert!(diags[0].contains("bucket: a backend setting must be a literal value"));
        assert!(diags[1].contains("dynamodb_table is ignored"));
        assert!(diags[2].contains("\"endpoint_url\" is not supported in backend \"s3\""));
        let (_, diags) = backend_of("terraform {\n backend \"s3\" { bucket = \"b\" }\n}");
        assert_eq!(diags, ["backend \"s3\" needs key"]);
        let (backend, diags) = backend_of("terraform {\n backend \"local\" {}\n}");
        assert_eq!((backend, diags), (Some(Backend::Local), vec![]));
        let (_, diags) = backend_of("terraform {\n backend \"gcs\" {}\n}");
        assert!(
            diags[0].contains("backend \"gcs\" is not supported"),
            "{diags:?}"
        );
    }

    #[test]
    fn version_constraints_follow_terraform_operators() {
        let v = [1, 5, 7];
        for (c, want) in [
            (">= 1.0", true),
            ("1.5.7", true),
            ("= 1.5.6", false),
            ("~> 1.5.0", true),
            ("~> 1.4.0", false),
            ("~> 1.2", true),
            ("~> 0.12", false),
            ("< 1.5.7", false),
            ("!= 1.5.7", false),
            ("> 1.5", true),
        ] {
            assert_eq!(meets(v, c), Ok(want), "{c}");
        }
        assert!(meets(v, ">= one").is_err());
    }

    #[test]
    fn every_constraint_of_a_list_must_hold() {
        assert!(check_required_version(">= 1.0, < 2.0").is_ok());
        let err = check_required_version(">= 1.0, < 1.5").unwrap_err();
        assert!(err.message.contains("Unsupported Terraform Core version"));
        assert!(err.message.contains(TERRAFORM_VERSION));
    }
}
