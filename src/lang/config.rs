//! Loading `*.sky.hcl`, `*.tf` and `*.tf.json` files into typed blocks, with a span on
//! everything a diagnostic can name.
//!
//! This is the only module that reads configuration files. Expressions are kept as hcl-edit
//! syntax trees (not evaluated here): evaluation needs values that only the planner has.

use crate::lang::schema::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, BlockLabel, Body};
use hcl_edit::Span as _;

use crate::lang::address::{Address, InstanceKey, Mode};
use crate::lang::diagnostic::{Diagnostic, Diagnostics, Sources, Span};

pub(crate) use crate::lang::expr::Expr;

/// `name = expr` inside a block.
#[derive(Debug, Clone)]
pub(crate) struct AttrExpr {
    pub(crate) name_span: Span,
    pub(crate) value: Expr,
}

/// `provider "aws" { ... }`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProviderBlock {
    pub(crate) region: Option<Expr>,
    pub(crate) profile: Option<Expr>,
    /// `default_tags { tags = ... }`: merged under every taggable resource's own tags
    /// (`engine::default_tags`).
    pub(crate) default_tags: Option<Expr>,
    /// Where the block is, once one was read: a second one is a duplicate.
    pub(crate) span: Option<Span>,
}

/// A reference to a provider configuration, as `provider = aws.west` or a module call's
/// `providers = { aws = aws.west }` writes it: the alias (empty for plain `aws`, the default
/// configuration) and where it is written.
pub(crate) type ProviderRef = (String, Span);

/// How a provider configuration is written in a configuration: `aws`, or `aws.west`.
pub(crate) fn provider_name(alias: &str) -> String {
    if alias.is_empty() {
        "aws".into()
    } else {
        format!("aws.{alias}")
    }
}

/// `variable "x" { ... }`.
#[derive(Debug, Clone)]
pub(crate) struct VariableBlock {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) type_constraint: Option<Expr>,
    pub(crate) default: Option<Expr>,
    pub(crate) description: Option<String>,
    pub(crate) sensitive: bool,
    /// `nullable = false` refuses null, as Terraform does; the default is true.
    pub(crate) nullable: bool,
    pub(crate) validations: Vec<Validation>,
}

/// `validation { condition = ..., error_message = ... }` inside a variable.
#[derive(Debug, Clone)]
pub(crate) struct Validation {
    pub(crate) condition: Expr,
    pub(crate) error_message: Expr,
}

/// `resource "T" "n" { ... }` or `data "T" "n" { ... }`.
#[derive(Debug, Clone)]
pub(crate) struct ResourceBlock {
    pub(crate) addr: Address,
    /// The span of the block header's labels.
    pub(crate) span: Span,
    pub(crate) type_span: Span,
    pub(crate) attrs: BTreeMap<String, AttrExpr>,
    pub(crate) depends_on: Vec<(String, Span)>,
    /// `count` or `for_each`, when the block declares several instances.
    pub(crate) repetition: Option<Repetition>,
    /// `timeouts { create = "30m" }`: how long the provider may wait for each operation.
    pub(crate) timeouts: BTreeMap<String, std::time::Duration>,
    pub(crate) lifecycle: crate::lang::lifecycle::Lifecycle,
    /// `provider = aws.west`: the provider configuration, by its alias in this module, that
    /// every call for this block goes to. `None` is the module's default configuration.
    pub(crate) provider: Option<ProviderRef>,
}

/// How a block declares its instances: `count = N` (keys 0..N) or `for_each = map or set`
/// (keys the map's keys or the set's strings).
#[derive(Debug, Clone)]
pub(crate) enum Repetition {
    Count(Expr),
    ForEach(Expr),
}

impl Repetition {
    pub(crate) fn expr(&self) -> &Expr {
        match self {
            Repetition::Count(e) | Repetition::ForEach(e) => e,
        }
    }
}

/// `module "x" { source = "./modules/x" ... }`: a call of a module in a local directory,
/// with the configuration loaded from it.
#[derive(Debug, Clone)]
pub(crate) struct ModuleCall {
    pub(crate) name: String,
    /// The span of the block's label.
    pub(crate) span: Span,
    pub(crate) source: String,
    /// The module's input variables, as the call sets them.
    pub(crate) inputs: BTreeMap<String, AttrExpr>,
    pub(crate) repetition: Option<Repetition>,
    pub(crate) depends_on: Vec<(String, Span)>,
    /// `providers = { aws = aws.west, aws.east = aws }`: for each configuration the module
    /// sees (by its alias there, empty for its default), the caller's configuration it is. A
    /// module's default configuration not named here is the caller's default, as in Terraform.
    pub(crate) providers: BTreeMap<String, ProviderRef>,
    /// What the module's directory declares.
    pub(crate) config: Box<Config>,
}

/// `output "x" { ... }`.
#[derive(Debug, Clone)]
pub(crate) struct OutputBlock {
    pub(crate) span: Span,
    pub(crate) value: Option<Expr>,
    pub(crate) description: Option<String>,
    pub(crate) sensitive: bool,
}

/// Everything declared in the working directory.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The resource types the configuration was loaded against: its provider's schemas.
    pub(crate) schemas: &'static Registry,
    pub(crate) dir: PathBuf,
    pub(crate) sources: Sources,
    pub(crate) provider: ProviderBlock,
    /// The aliased `provider "aws"` blocks (`alias = "west"`), by alias; each is a region and
    /// profile of its own, with its own `default_tags`.
    pub(crate) aliases: BTreeMap<String, ProviderBlock>,
    pub(crate) variables: BTreeMap<String, VariableBlock>,
    pub(crate) locals: BTreeMap<String, AttrExpr>,
    pub(crate) resources: BTreeMap<Address, ResourceBlock>,
    pub(crate) outputs: BTreeMap<String, OutputBlock>,
    /// `moved`, `removed` and `import` blocks, in the order written.
    pub(crate) moved: Vec<crate::lang::refactor::Moved>,
    pub(crate) removed: Vec<crate::lang::refactor::Removed>,
    pub(crate) imports: Vec<crate::lang::refactor::Import>,
    /// `module` calls, by name.
    pub(crate) modules: BTreeMap<String, ModuleCall>,
    pub(crate) checks: BTreeMap<String, crate::lang::check::CheckBlock>,
    /// The data sources declared inside a `check` block, by the check's name: their failures
    /// are warnings, as in Terraform.
    pub(crate) check_data: BTreeMap<Address, String>,
    /// Where the state lives (`terraform { backend ... }`), with the block's place; `None`
    /// without a backend block (the local state).
    pub(crate) backend: Option<(crate::lang::terraform::Backend, Span)>,
    /// The selected workspace, for `terraform.workspace`; empty means `default`. The command
    /// line sets it (from `.skyform/environment` or `SKYFORM_WORKSPACE`).
    pub(crate) workspace: String,
}

impl Config {
    /// The name `terraform.workspace` reads.
    pub(crate) fn workspace_name(&self) -> &str {
        if self.workspace.is_empty() {
            crate::lang::eval::WORKSPACE
        } else {
            &self.workspace
        }
    }

    /// The configuration of the module at `path` (module names from the root), if declared.
    pub(crate) fn module_config(&self, path: &[String]) -> Option<&Config> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.modules.get(first)?.config.module_config(rest),
        }
    }

    /// The module call at `path` (its last name is the call's), if declared.
    pub(crate) fn module_call(&self, path: &[String]) -> Option<&ModuleCall> {
        let (last, parent) = path.split_last()?;
        self.module_config(parent)?.modules.get(last)
    }

    /// Every module's configuration with its path, the root first, parents before children.
    pub(crate) fn all_modules(&self) -> Vec<(Vec<String>, &Config)> {
        let mut out = vec![(Vec::new(), self)];
        let mut i = 0;
        while i < out.len() {
            let (path, config) = (out[i].0.clone(), out[i].1);
            for (name, call) in &config.modules {
                let mut p = path.clone();
                p.push(name.clone());
                out.push((p, &call.config));
            }
            i += 1;
        }
        out
    }

    /// The block `addr` names, whatever keys the address carries.
    pub(crate) fn block_of(&self, addr: &Address) -> Option<&ResourceBlock> {
        self.module_config(&addr.module_path())?
            .resources
            .get(&addr.local())
    }

    /// The provider configuration `alias` (empty for the default), in the root.
    pub(crate) fn provider_block(&self, alias: &str) -> Option<&ProviderBlock> {
        if alias.is_empty() {
            Some(&self.provider)
        } else {
            self.aliases.get(alias)
        }
    }

    /// The root's alias of the configuration that `local` (an alias as the module at `path`
    /// writes it, empty for its default) stands for, following each module call's
    /// `providers` up to the root, where the provider blocks are. `None` when it names no
    /// configuration.
    pub(crate) fn resolve_provider(&self, path: &[String], local: &str) -> Option<String> {
        let Some((_, parent)) = path.split_last() else {
            return self.provider_block(local).map(|_| local.to_string());
        };
        match self.module_call(path)?.providers.get(local) {
            Some((up, _)) => self.resolve_provider(parent, up),
            None if local.is_empty() => self.resolve_provider(parent, ""),
            None => None,
        }
    }

    /// The root's alias of the provider configuration every call for `addr` goes to (empty
    /// for the default). `validate` has refused a reference to nothing; should one get here,
    /// the default is used.
    pub(crate) fn provider_of(&self, addr: &Address) -> String {
        let local = self
            .block_of(addr)
            .and_then(|b| b.provider.as_ref())
            .map_or("", |(alias, _)| alias.as_str());
        self.resolve_provider(&addr.module_path(), local)
            .unwrap_or_default()
    }

    /// The `default_tags` of the provider configuration `addr` goes to.
    pub(crate) fn default_tags_of(&self, addr: &Address) -> Option<&Expr> {
        self.provider_block(&self.provider_of(addr))?
            .default_tags
            .as_ref()
    }

    /// The block that declares `addr`, which may be one of its instances, in whichever
    /// module. An instance key must match the block's repetition: an integer for `count`, a
    /// string for `for_each`, none without either.
    pub(crate) fn block(&self, addr: &Address) -> Option<&ResourceBlock> {
        let block = self
            .module_config(&addr.module_path())?
            .resources
            .get(&addr.local())?;
        let fits = matches!(
            (&block.repetition, &addr.key),
            (None, None)
                | (Some(Repetition::Count(_)), Some(InstanceKey::Int(_)))
                | (Some(Repetition::ForEach(_)), Some(InstanceKey::Str(_)))
        );
        fits.then_some(block)
    }
}

/// Meta-arguments that belong to a later version; they are refused clearly instead of being
/// mistaken for unknown attributes.
const RESERVED_META: &[&str] = &["provisioner", "connection"];

/// Whether a file name is a configuration file: `*.sky.hcl` or Terraform's `*.tf`. Like
/// Terraform, hidden files and editor leftovers (`.#x.tf`, `#x.tf#`, `x.tf~`) are not.
// Case-sensitive as in Terraform, which does not load `main.TF`.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
pub(crate) fn is_config_file(name: &str) -> bool {
    let ignored = name.starts_with('.') || name.starts_with('#') || name.ends_with('~');
    !ignored && (name.ends_with(".sky.hcl") || name.ends_with(".tf") || name.ends_with(".tf.json"))
}

/// Adds one configuration file to `sources`: a `*.tf.json` file as its native rendering
/// (`tf_json`), with what is wrong with its JSON if anything.
pub(crate) fn add_source(
    sources: &mut Sources,
    display: String,
    path: PathBuf,
    text: String,
    schemas: &'static Registry,
) -> (usize, Option<Diagnostic>) {
    if !display.ends_with(".tf.json") {
        return (sources.add(display, path, text), None);
    }
    match crate::lang::tf_json::convert(&text, schemas) {
        Ok(converted) => (sources.add_json(display, path, text, converted), None),
        Err((message, range)) => {
            let file = sources.add_json(
                display.clone(),
                path,
                text,
                crate::lang::tf_json::Converted::identity(range.as_ref().map_or(0, |r| r.start)),
            );
            let d = Diagnostic::error(message)
                .named(display)
                .at(Span::new(file, Some(0..1)));
            (file, Some(d))
        }
    }
}

/// The configuration files of a directory, sorted so that every run sees them in one order.
pub(crate) fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_config_file)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Terraform files that skyform cannot read as Terraform would: JSON syntax, and override
/// files, whose blocks merge into others instead of declaring new ones. Loading an override
/// as a plain file would report duplicates, and skipping either kind would plan a
/// configuration other than the one written, so both are refused by name.
fn unsupported_files(dir: &Path) -> std::io::Result<Vec<(String, &'static str)>> {
    let mut found: Vec<(String, &'static str)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|name| {
            let why = if name.starts_with('.') {
                return None;
            } else if is_config_file(&name)
                && (name == "override.tf"
                    || name.ends_with("_override.tf")
                    || name == "override.tf.json"
                    || name.ends_with("_override.tf.json"))
            {
                "override files are not supported yet"
            } else {
                return None;
            };
            Some((name, why))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Loads and parses every `*.sky.hcl` and `*.tf` file in `dir` as one configuration. Problems
/// are collected, never thrown.
pub(crate) fn load(
    dir: &Path,
    schemas: &'static Registry,
) -> Result<(Config, Diagnostics), std::io::Error> {
    let mut config = Config {
        schemas,
        dir: dir.to_path_buf(),
        ..Config::default()
    };
    let mut diags = Diagnostics::default();
    for raw in read_sources(dir)?.files {
        let (_, problem) = add_source(
            &mut config.sources,
            raw.display,
            raw.path,
            raw.text,
            schemas,
        );
        diags.extend(Diagnostics(problem.into_iter().collect()));
    }
    for (name, why) in unsupported_files(dir)? {
        diags.push(Diagnostic::error(format!("{name}: {why}")).named(name));
    }
    if config.sources.files.is_empty() {
        diags.push(Diagnostic::error(format!(
            "no *.sky.hcl, *.tf or *.tf.json files in {}",
            dir.display()
        )));
    }
    for file in 0..config.sources.files.len() {
        parse_file(&mut config, file, &mut diags);
    }
    let mut sources = std::mem::take(&mut config.sources);
    load_modules(&mut config, dir, &mut sources, &mut diags, &mut Vec::new());
    share_sources(&mut config, &sources);
    config.sources = sources;
    Ok((config, diags))
}

/// How deep modules may call modules; deeper is almost surely a loop through symlinks.
const MAX_MODULE_DEPTH: usize = 16;

/// Loads the directory of every module `config` calls, recursively. Files are added to the
/// root's `sources` (shown by their path from the root directory), so that every diagnostic
/// names the file in the module. Only local paths are loaded: a registry or remote source is
/// an error that says what to do.
fn load_modules(
    config: &mut Config,
    root: &Path,
    sources: &mut Sources,
    diags: &mut Diagnostics,
    stack: &mut Vec<PathBuf>,
) {
    let names: Vec<String> = config.modules.keys().cloned().collect();
    for name in names {
        let (source, span) = {
            let call = &config.modules[&name];
            (call.source.clone(), call.span.clone())
        };
        if !(source.starts_with("./") || source.starts_with("../")) {
            diags.push(
                Diagnostic::error(format!(
                    "module.{name}: the source {source:?} is not a local path; skyform loads local modules only (a source starting with ./ or ../)"
                ))
                .named(format!("module.{name}"))
                .at(span)
                .note("vendor the module into this repository (for example under modules/) and give its relative path as the source"),
            );
            continue;
        }
        let dir = config.dir.join(&source);
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if stack.contains(&canonical) || stack.len() >= MAX_MODULE_DEPTH {
            diags.push(
                Diagnostic::error(format!("module.{name}: the module {source:?} calls itself"))
                    .named(format!("module.{name}"))
                    .at(span),
            );
            continue;
        }
        let files = match config_files(&dir) {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                diags.push(
                    Diagnostic::error(format!(
                        "module.{name}: no *.sky.hcl, *.tf or *.tf.json files in {}",
                        dir.display()
                    ))
                    .named(format!("module.{name}"))
                    .at(span),
                );
                continue;
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!(
                        "module.{name}: cannot read the module directory {}: {e}",
                        dir.display()
                    ))
                    .named(format!("module.{name}"))
                    .at(span),
                );
                continue;
            }
        };
        let mut child = Config {
            schemas: config.schemas,
            dir: dir.clone(),
            ..Config::default()
        };
        let mut added = Vec::new();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let display = path
                        .strip_prefix(root)
                        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string());
                    let (file, problem) = add_source(sources, display, path, text, config.schemas);
                    diags.extend(Diagnostics(problem.into_iter().collect()));
                    added.push(file);
                }
                Err(e) => diags.push(
                    Diagnostic::error(format!("{}: {e}", path.display()))
                        .named(format!("module.{name}")),
                ),
            }
        }
        child.sources = sources.clone();
        for file in added {
            parse_file(&mut child, file, diags);
        }
        child.sources = Sources::default();
        stack.push(canonical);
        load_modules(&mut child, root, sources, diags, stack);
        stack.pop();
        if let Some(call) = config.modules.get_mut(&name) {
            *call.config = child;
        }
    }
}

/// Gives every module's configuration the root's sources, so that any of them can name a
/// place in any file.
fn share_sources(config: &mut Config, sources: &Sources) {
    for call in config.modules.values_mut() {
        call.config.sources = sources.clone();
        share_sources(&mut call.config, sources);
    }
}

/// Reads the configuration files of `dir`, each shown by its file name.
pub(crate) fn read_sources(dir: &Path) -> std::io::Result<Sources> {
    let mut sources = Sources::default();
    for path in config_files(dir)? {
        // The bare io error ("stream did not contain valid UTF-8") would not say which file.
        let text = std::fs::read_to_string(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let display = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        sources.add(display, path, text);
    }
    Ok(sources)
}

/// Reads only the `backend` block of the configuration in `dir`: the light way for commands
/// that do not load the configuration. Returns the sources too, so that errors name their
/// place. Files that fail to parse are left to the commands that load them.
pub(crate) fn read_backend(
    dir: &Path,
) -> std::io::Result<(crate::lang::terraform::Backend, Diagnostics, Sources)> {
    let sources = read_sources(dir)?;
    let mut diags = Diagnostics::default();
    let mut found = None;
    for (file, source) in sources.files.iter().enumerate() {
        // A `*.tf.json` file's parsed text is its native rendering; the light read skips
        // those rather than convert them (they rarely hold a backend block).
        if source.json.is_some() {
            continue;
        }
        let Ok(body) = parse_body(&source.text, file) else {
            continue;
        };
        for block in body.blocks().filter(|b| b.ident.as_str() == "terraform") {
            for inner in block.body.blocks() {
                if inner.ident.as_str() == "backend" {
                    crate::lang::terraform::backend_block(inner, file, &mut found, &mut diags);
                }
            }
        }
    }
    Ok((found.map(|(b, _)| b).unwrap_or_default(), diags, sources))
}

/// Parses configuration text directly (for unit tests and fuzzing): no files are read.
#[must_use]
pub fn load_str(files: &[(&str, &str)], schemas: &'static Registry) -> (Config, Diagnostics) {
    let mut config = Config {
        schemas,
        ..Config::default()
    };
    let mut diags = Diagnostics::default();
    for (name, text) in files {
        let file = config.sources.add(
            (*name).to_string(),
            PathBuf::from(name),
            (*text).to_string(),
        );
        parse_file(&mut config, file, &mut diags);
    }
    (config, diags)
}

/// Parses the text of source `file`; a syntax error becomes a diagnostic at its place. `fmt`
/// uses this too, so that it refuses exactly the files that loading would refuse.
pub(crate) fn parse_body(text: &str, file: usize) -> Result<Body, Diagnostic> {
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        Diagnostic::error(format!("syntax error: {}", e.message()))
            .named(e.line().trim().to_string())
            .at(Span {
                file,
                range: loc.offset()..loc.offset() + 1,
            })
    })
}

fn parse_file(config: &mut Config, file: usize, diags: &mut Diagnostics) {
    let text = config.sources.files[file].text.clone();
    let body = match parse_body(&text, file) {
        Ok(body) => body,
        Err(d) => {
            diags.push(d);
            return;
        }
    };
    let mut p = Parser {
        config,
        file,
        diags,
    };
    p.body(&body);
}

struct Parser<'a> {
    config: &'a mut Config,
    file: usize,
    diags: &'a mut Diagnostics,
}

impl Parser<'_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, range)
    }

    fn expr(&self, expr: &Expression) -> Expr {
        Expr {
            expr: Box::new(expr.clone()),
            span: self.span(expr.span()),
        }
    }

    fn body(&mut self, body: &Body) {
        for attr in body.attributes() {
            self.diags.push(
                Diagnostic::error(format!(
                    "unexpected attribute {:?} at the top level; only blocks belong here",
                    attr.key.as_str()
                ))
                .named(attr.key.as_str())
                .at(self.span(attr.key.span())),
            );
        }
        for block in body.blocks() {
            let ident = block.ident.as_str();
            match ident {
                "provider" => self.provider(block),
                "variable" => self.variable(block),
                "locals" => self.locals(block),
                "resource" => self.resource(block, Mode::Managed),
                "data" => self.resource(block, Mode::Data),
                "output" => self.output(block),
                "check" => self.check(block),
                "terraform" => crate::lang::terraform::check_block(
                    block,
                    self.file,
                    &mut self.config.backend,
                    self.diags,
                ),
                "moved" => {
                    let m = crate::lang::refactor::moved(block, self.file, self.diags);
                    self.config.moved.extend(m);
                }
                "removed" => {
                    let r = crate::lang::refactor::removed(block, self.file, self.diags);
                    self.config.removed.extend(r);
                }
                "import" => {
                    let i = crate::lang::refactor::import(block, self.file, self.diags);
                    self.config.imports.extend(i);
                }
                "module" => self.module(block),
                other => {
                    let mut d = Diagnostic::error(format!("unknown block type {other:?}"))
                        .named(other)
                        .at(self.span(block.ident.span()));
                    if let Some(s) = crate::lang::diagnostic::did_you_mean(
                        other,
                        [
                            "provider",
                            "variable",
                            "locals",
                            "resource",
                            "data",
                            "output",
                            "terraform",
                            "moved",
                            "removed",
                            "import",
                            "module",
                            "check",
                        ],
                    ) {
                        d = d.note(format!("did you mean {s:?}?"));
                    }
                    self.diags.push(d);
                }
            }
        }
    }

    /// Checks a block's label count and returns the labels.
    fn labels<'b>(
        &mut self,
        block: &'b Block,
        n: usize,
        what: &str,
    ) -> Option<Vec<(&'b str, Span)>> {
        if block.labels.len() != n {
            self.diags.push(
                Diagnostic::error(format!(
                    "a {} block takes {n} label(s) ({what}), found {}",
                    block.ident.as_str(),
                    block.labels.len()
                ))
                .named(block.ident.as_str())
                .at(self.span(block.ident.span())),
            );
            return None;
        }
        Some(
            block
                .labels
                .iter()
                .map(|l| (l.as_str(), self.span(label_span(l))))
                .collect(),
        )
    }

    fn no_nested_blocks(&mut self, block: &Block, owner: &str) {
        for nested in block.body.blocks() {
            self.unexpected_block(nested, owner);
        }
    }

    fn unexpected_block(&mut self, nested: &Block, owner: &str) {
        let name = nested.ident.as_str();
        let msg = if RESERVED_META.contains(&name) {
            format!("{name:?} blocks are not supported yet, in {owner}")
        } else {
            format!("unexpected block {name:?} in {owner}")
        };
        self.diags.push(
            Diagnostic::error(msg)
                .named(name)
                .at(self.span(nested.ident.span())),
        );
    }

    fn literal_string(
        &mut self,
        attr: &hcl_edit::structure::Attribute,
        owner: &str,
    ) -> Option<String> {
        if let Expression::String(s) = &attr.value {
            Some(s.value().clone())
        } else {
            self.not_literal(attr, owner, "a literal string");
            None
        }
    }

    fn literal_bool(&mut self, attr: &hcl_edit::structure::Attribute, owner: &str) -> bool {
        if let Expression::Bool(b) = &attr.value {
            return *b.value();
        }
        self.not_literal(attr, owner, "true or false");
        false
    }

    /// Reports a meta-argument whose value is not the literal it must be.
    fn not_literal(&mut self, attr: &hcl_edit::structure::Attribute, owner: &str, what: &str) {
        self.diags.push(
            Diagnostic::error(format!("{} in {owner} must be {what}", attr.key.as_str()))
                .named(attr.key.as_str())
                .at(self.span(attr.value.span())),
        );
    }

    fn unknown_attr(&mut self, attr: &hcl_edit::structure::Attribute, owner: &str, known: &[&str]) {
        let key = attr.key.as_str();
        let mut d = Diagnostic::error(format!("unknown attribute {key:?} in {owner}"))
            .named(key)
            .at(self.span(attr.key.span()));
        if let Some(s) = crate::lang::diagnostic::did_you_mean(key, known.iter().copied()) {
            d = d.note(format!("did you mean {s:?}?"));
        }
        self.diags.push(d);
    }

    fn provider(&mut self, block: &Block) {
        let Some(labels) = self.labels(block, 1, "the provider name") else {
            return;
        };
        let (name, span) = &labels[0];
        if *name != "aws" {
            self.diags.push(
                Diagnostic::error(format!(
                    "unknown provider {name:?}; skyform manages AWS only"
                ))
                .named(*name)
                .at(span.clone()),
            );
            return;
        }
        let span = span.clone();
        let mut parsed = ProviderBlock {
            span: Some(span.clone()),
            ..ProviderBlock::default()
        };
        let mut alias = None;
        for nested in block.body.blocks() {
            if nested.ident.as_str() == "default_tags" {
                self.default_tags(nested, &mut parsed);
            } else {
                self.unexpected_block(nested, "provider \"aws\"");
            }
        }
        for attr in block.body.attributes() {
            match attr.key.as_str() {
                "region" => parsed.region = Some(self.expr(&attr.value)),
                "profile" => parsed.profile = Some(self.expr(&attr.value)),
                "alias" => {
                    alias = self
                        .literal_string(attr, "provider \"aws\"")
                        .map(|a| (a, self.span(attr.value.span())));
                }
                _ => self.unknown_attr(attr, "provider \"aws\"", &["alias", "region", "profile"]),
            }
        }
        match alias {
            Some((alias, at)) => {
                if !crate::lang::address::is_ident(&alias) {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "invalid provider alias {alias:?}: an alias must start with a letter or underscore, and may contain only letters, digits, underscores and dashes"
                        ))
                        .named("alias")
                        .at(at),
                    );
                } else if let Some(first) = self
                    .config
                    .aliases
                    .get(&alias)
                    .and_then(|p| p.span.as_ref())
                {
                    let first = self.config.sources.location(first);
                    self.diags.push(duplicate(
                        &format!("provider \"aws\" with alias {alias:?}"),
                        span,
                        &first,
                    ));
                } else {
                    self.config.aliases.insert(alias, parsed);
                }
            }
            None => {
                if let Some(first) = &self.config.provider.span {
                    let first = self.config.sources.location(first);
                    self.diags.push(duplicate("provider \"aws\"", span, &first).note(
                        "a default (non-aliased) provider configuration for \"aws\" was already given; another configuration needs an alias",
                    ));
                } else {
                    self.config.provider = parsed;
                }
            }
        }
    }

    /// `default_tags { tags = { ... } }` inside `provider "aws"`: one block, no labels, only
    /// `tags`, as in Terraform's AWS provider.
    fn default_tags(&mut self, block: &Block, provider: &mut ProviderBlock) {
        const OWNER: &str = "the default_tags of provider \"aws\"";
        if !block.labels.is_empty() || provider.default_tags.is_some() {
            self.diags.push(
                Diagnostic::error("provider \"aws\" takes one default_tags block, without labels")
                    .named("default_tags")
                    .at(self.span(block.ident.span())),
            );
            return;
        }
        self.no_nested_blocks(block, OWNER);
        for attr in block.body.attributes() {
            if attr.key.as_str() == "tags" {
                provider.default_tags = Some(self.expr(&attr.value));
            } else {
                self.unknown_attr(attr, OWNER, &["tags"]);
            }
        }
    }

    /// A provider reference, `aws` or `aws.<alias>`, as `provider` and `providers` take it.
    fn provider_ref(&mut self, expr: &Expression, owner: &str) -> Option<ProviderRef> {
        let at = self.span(expr.span());
        // `aws` alone is a variable, `aws.west` a traversal; a quoted one is Terraform's
        // legacy form, accepted with its warning.
        let text = match expr {
            Expression::Variable(v) => Some(v.as_str().to_string()),
            _ => crate::lang::eval::traversal_text(expr).or_else(|| self.quoted_reference(expr)),
        };
        let alias = match text
            .as_deref()
            .map(|t| t.split('.').collect::<Vec<_>>())
            .as_deref()
        {
            Some(["aws"]) => String::new(),
            Some(["aws", alias]) => (*alias).to_string(),
            Some([other, ..]) if *other != "aws" => {
                self.diags.push(
                    Diagnostic::error(format!(
                        "unknown provider {other:?} in {owner}; skyform manages AWS only"
                    ))
                    .named("provider")
                    .at(at),
                );
                return None;
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(format!(
                        "invalid provider reference in {owner}: expected aws or aws.<alias>, without quotes"
                    ))
                    .named("provider")
                    .at(at),
                );
                return None;
            }
        };
        Some((alias, at))
    }

    /// `providers = { aws = aws.west, aws.east = aws }` of a module call.
    fn providers_map(
        &mut self,
        attr: &hcl_edit::structure::Attribute,
        owner: &str,
    ) -> BTreeMap<String, ProviderRef> {
        let mut out = BTreeMap::new();
        let Expression::Object(items) = &attr.value else {
            self.diags.push(
                Diagnostic::error(format!(
                    "invalid providers in {owner}: expected a map such as {{ aws = aws.west }}"
                ))
                .named("providers")
                .at(self.span(attr.value.span())),
            );
            return out;
        };
        for (key, value) in items {
            let key_expr = match key {
                hcl_edit::expr::ObjectKey::Expression(e) => e.clone(),
                hcl_edit::expr::ObjectKey::Ident(i) => {
                    Expression::Variable(hcl_edit::Decorated::new(i.as_ref().clone()))
                }
            };
            let (Some((local, _)), Some(target)) = (
                self.provider_ref(&key_expr, owner),
                self.provider_ref(value.expr(), owner),
            ) else {
                continue;
            };
            out.insert(local, target);
        }
        out
    }

    fn variable(&mut self, block: &Block) {
        let Some(labels) = self.labels(block, 1, "the variable name") else {
            return;
        };
        let (name, span) = labels[0].clone();
        let owner = format!("variable {name:?}");
        let mut var = VariableBlock {
            name: name.to_string(),
            span: span.clone(),
            type_constraint: None,
            default: None,
            description: None,
            sensitive: false,
            nullable: true,
            validations: Vec::new(),
        };
        for nested in block.body.blocks() {
            if nested.ident.as_str() == "validation" {
                if let Some(v) = self.validation(nested, &owner) {
                    var.validations.push(v);
                }
            } else {
                self.diags.push(
                    Diagnostic::error(format!(
                        "unexpected block {:?} in {owner}; only validation blocks belong here",
                        nested.ident.as_str()
                    ))
                    .named(nested.ident.as_str())
                    .at(self.span(nested.ident.span())),
                );
            }
        }
        for attr in block.body.attributes() {
            match attr.key.as_str() {
                "type" => var.type_constraint = Some(self.expr(&attr.value)),
                "default" => var.default = Some(self.expr(&attr.value)),
                "description" => var.description = self.literal_string(attr, &owner),
                "sensitive" => var.sensitive = self.literal_bool(attr, &owner),
                "nullable" => var.nullable = self.literal_bool(attr, &owner),
                _ => self.unknown_attr(
                    attr,
                    &owner,
                    &["type", "default", "description", "sensitive", "nullable"],
                ),
            }
        }
        if let Some(prev) = self.config.variables.get(name) {
            let first = self.config.sources.location(&prev.span);
            self.diags
                .push(duplicate(&format!("var.{name}"), span, &first));
        } else {
            self.config.variables.insert(name.to_string(), var);
        }
    }

    /// Both attributes are required, as in Terraform; what the condition may refer to is
    /// checked when it is evaluated, against the variable alone.
    fn validation(&mut self, block: &Block, owner: &str) -> Option<Validation> {
        let owner = format!("the validation block of {owner}");
        self.no_nested_blocks(block, &owner);
        let (mut condition, mut error_message) = (None, None);
        for attr in block.body.attributes() {
            match attr.key.as_str() {
                "condition" => condition = Some(self.expr(&attr.value)),
                "error_message" => error_message = Some(self.expr(&attr.value)),
                _ => self.unknown_attr(attr, &owner, &["condition", "error_message"]),
            }
        }
        for (what, present) in [
            ("condition", condition.is_some()),
            ("error_message", error_message.is_some()),
        ] {
            if !present {
                self.diags.push(
                    Diagnostic::error(format!("{owner} needs the attribute {what:?}"))
                        .named(what)
                        .at(self.span(block.ident.span())),
                );
            }
        }
        Some(Validation {
            condition: condition?,
            error_message: error_message?,
        })
    }

    fn locals(&mut self, block: &Block) {
        if !block.labels.is_empty() {
            self.diags.push(
                Diagnostic::error("a locals block takes no labels")
                    .named("locals")
                    .at(self.span(block.ident.span())),
            );
        }
        self.no_nested_blocks(block, "locals");
        for attr in block.body.attributes() {
            let name = attr.key.as_str().to_string();
            let name_span = self.span(attr.key.span());
            if let Some(prev) = self.config.locals.get(&name) {
                let first = self.config.sources.location(&prev.name_span);
                self.diags
                    .push(duplicate(&format!("local.{name}"), name_span, &first));
                continue;
            }
            let value = self.expr(&attr.value);
            self.config
                .locals
                .insert(name, AttrExpr { name_span, value });
        }
    }

    fn resource(&mut self, block: &Block, mode: Mode) {
        let what = if mode == Mode::Data {
            "the data source type and name"
        } else {
            "the resource type and name"
        };
        let Some(labels) = self.labels(block, 2, what) else {
            return;
        };
        let (type_name, type_span) = labels[0].clone();
        let (name, name_span) = labels[1].clone();
        let addr = match mode {
            Mode::Managed => Address::managed(type_name, name),
            Mode::Data => Address::data(type_name, name),
        };
        let span = Span {
            file: self.file,
            range: type_span.range.start..name_span.range.end,
        };
        let owner = addr.to_string();
        let schema = self.config.schemas.get(mode, &addr.type_name);
        let mut timeouts = BTreeMap::new();
        let mut nested_blocks = Vec::new();
        let mut lifecycle: Option<(crate::lang::lifecycle::Lifecycle, Span)> = None;
        for inner in block.body.blocks() {
            let name = inner.ident.as_str();
            let is_block = schema.and_then(|s| s.attr(name)).is_some_and(|a| a.block);
            if name == "timeouts" && !is_block {
                timeouts = self.timeouts(inner, &owner);
                continue;
            }
            if name == "lifecycle" && !is_block {
                let here = self.span(inner.ident.span());
                if let Some((_, first)) = &lifecycle {
                    let first = self.config.sources.location(first);
                    self.diags.push(duplicate(
                        &format!("lifecycle block in {owner}"),
                        here,
                        &first,
                    ));
                } else {
                    let parsed = crate::lang::lifecycle::parse(inner, &addr, self.file, self.diags);
                    lifecycle = Some((parsed, here));
                }
                continue;
            }
            if RESERVED_META.contains(&name) {
                self.diags.push(
                    Diagnostic::error(format!("{name:?} blocks are not supported yet, in {owner}"))
                        .named(name)
                        .at(self.span(inner.ident.span())),
                );
                continue;
            }
            if schema.is_some_and(|s| s.lacks(name)) {
                self.diags.push(
                    crate::lang::diagnostic::not_supported_yet(&addr.type_name, name)
                        .at(self.span(inner.ident.span())),
                );
                continue;
            }
            nested_blocks.push(inner);
        }
        let fields_of = |n: &str| {
            schema
                .and_then(|s| s.attr(n))
                .filter(|a| a.block)
                .and_then(|a| crate::lang::dynamic::object_fields(&a.ty))
        };
        let nested = crate::lang::dynamic::Nested {
            file: self.file,
            diags: self.diags,
        }
        .lists(nested_blocks, &fields_of, &owner);
        let mut res = ResourceBlock {
            addr: addr.clone(),
            span: span.clone(),
            type_span,
            attrs: BTreeMap::new(),
            depends_on: Vec::new(),
            repetition: None,
            timeouts,
            lifecycle: lifecycle.map(|(l, _)| l).unwrap_or_default(),
            provider: None,
        };
        for attr in block.body.attributes() {
            let key = attr.key.as_str();
            if key == "depends_on" {
                self.depends_on(attr, &mut res);
                continue;
            }
            if key == "count" || key == "for_each" {
                self.repetition(attr, &mut res);
                continue;
            }
            if key == "provider" {
                res.provider = self.provider_ref(&attr.value, &owner);
                continue;
            }
            if RESERVED_META.contains(&key) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "the {key:?} meta-argument is not supported yet, in {owner}"
                    ))
                    .named(key)
                    .at(self.span(attr.key.span())),
                );
                continue;
            }
            if nested.contains_key(key) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "{key} is given both as an attribute and as blocks, in {owner}"
                    ))
                    .named(key)
                    .at(self.span(attr.key.span())),
                );
                continue;
            }
            res.attrs.insert(
                key.to_string(),
                AttrExpr {
                    name_span: self.span(attr.key.span()),
                    value: self.expr(&attr.value),
                },
            );
        }
        for (key, (expr, span)) in nested {
            res.attrs.insert(
                key,
                AttrExpr {
                    name_span: span.clone(),
                    value: Expr {
                        expr: Box::new(expr),
                        span,
                    },
                },
            );
        }
        if let Some(prev) = self.config.resources.get(&addr) {
            let first = self.config.sources.location(&prev.span);
            self.diags.push(duplicate(&owner, span, &first));
        } else {
            self.config.resources.insert(addr, res);
        }
    }

    /// `count` or `for_each`; a block takes one of them, as in Terraform.
    fn repetition(&mut self, attr: &hcl_edit::structure::Attribute, res: &mut ResourceBlock) {
        let expr = self.expr(&attr.value);
        if res.repetition.is_some() {
            self.diags.push(
                Diagnostic::error(format!(
                    "invalid combination of \"count\" and \"for_each\" in {}: the \"count\" and \"for_each\" meta-arguments are mutually-exclusive, only one should be used to be explicit about the number of resources to be created",
                    res.addr
                ))
                .named(attr.key.as_str())
                .at(self.span(attr.key.span())),
            );
            return;
        }
        res.repetition = Some(if attr.key.as_str() == "count" {
            Repetition::Count(expr)
        } else {
            Repetition::ForEach(expr)
        });
    }

    fn check(&mut self, block: &Block) {
        let Some(check) = crate::lang::check::parse(block, self.file, self.diags) else {
            return;
        };
        // A scoped data source has a global address, like any data source.
        for inner in block.body.blocks().filter(|b| b.ident.as_str() == "data") {
            if let [t, n] = inner.labels.as_slice() {
                let addr = Address::data(t.as_str(), n.as_str());
                if !self.config.resources.contains_key(&addr) {
                    self.config.check_data.insert(addr, check.name.clone());
                }
            }
            self.resource(inner, Mode::Data);
        }
        if let Some(prev) = self.config.checks.get(&check.name) {
            let first = self.config.sources.location(&prev.span);
            let name = format!("check.{}", check.name);
            self.diags.push(duplicate(&name, check.span, &first));
        } else {
            self.config.checks.insert(check.name.clone(), check);
        }
    }

    fn depends_on(&mut self, attr: &hcl_edit::structure::Attribute, res: &mut ResourceBlock) {
        let found = self.depends_on_list(attr);
        res.depends_on.extend(found);
    }

    /// The references of a `depends_on` list.
    fn depends_on_list(&mut self, attr: &hcl_edit::structure::Attribute) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        let Expression::Array(items) = &attr.value else {
            self.diags.push(
                Diagnostic::error("depends_on must be a list of resource addresses")
                    .named("depends_on")
                    .at(self.span(attr.value.span())),
            );
            return out;
        };
        for item in items {
            let text =
                crate::lang::eval::traversal_text(item).or_else(|| self.quoted_reference(item));
            match text {
                Some(t) => out.push((t, self.span(item.span()))),
                None => self.diags.push(
                    Diagnostic::error(
                        "depends_on entries must be references such as aws_iam_role.r",
                    )
                    .named("depends_on")
                    .at(self.span(item.span())),
                ),
            }
        }
        out
    }

    /// `module "x" { source = "./dir", inputs..., count / for_each, depends_on }`. The
    /// module's own files are loaded once every file of this module is parsed (`load_modules`).
    fn module(&mut self, block: &Block) {
        let Some(labels) = self.labels(block, 1, "the module name") else {
            return;
        };
        let (name, span) = labels[0].clone();
        let owner = format!("module.{name}");
        self.no_nested_blocks(block, &owner);
        let mut source = None;
        let mut as_block = ResourceBlock {
            addr: Address::managed("module", name),
            span: span.clone(),
            type_span: span.clone(),
            attrs: BTreeMap::new(),
            depends_on: Vec::new(),
            repetition: None,
            timeouts: BTreeMap::new(),
            lifecycle: crate::lang::lifecycle::Lifecycle::default(),
            provider: None,
        };
        let mut inputs = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for attr in block.body.attributes() {
            let key = attr.key.as_str();
            match key {
                "source" => source = self.literal_string(attr, &owner),
                "version" => self.diags.push(
                    Diagnostic::error(format!(
                        "invalid argument in {owner}: a version can only be given for a registry module; skyform loads local modules only"
                    ))
                    .named(key)
                    .at(self.span(attr.key.span())),
                ),
                "count" | "for_each" => self.repetition(attr, &mut as_block),
                "depends_on" => self.depends_on(attr, &mut as_block),
                "providers" => providers = self.providers_map(attr, &owner),
                _ => {
                    inputs.insert(
                        key.to_string(),
                        AttrExpr {
                            name_span: self.span(attr.key.span()),
                            value: self.expr(&attr.value),
                        },
                    );
                }
            }
        }
        let Some(source) = source else {
            self.diags.push(
                Diagnostic::error(format!("{owner} needs the attribute \"source\""))
                    .named(owner.clone())
                    .at(span),
            );
            return;
        };
        if let Some(prev) = self.config.modules.get(name) {
            let first = self.config.sources.location(&prev.span);
            self.diags.push(duplicate(&owner, span, &first));
            return;
        }
        self.config.modules.insert(
            name.to_string(),
            ModuleCall {
                name: name.to_string(),
                span,
                source,
                inputs,
                repetition: as_block.repetition,
                depends_on: as_block.depends_on,
                providers,
                config: Box::default(),
            },
        );
    }

    /// A resource's `timeouts { create = "30m" }`, checked as Terraform checks it (Go duration
    /// syntax, only the operations a resource can have). They bound the provider's waits for
    /// that operation (an instance reaching `running`), in place of its default.
    fn timeouts(&mut self, block: &Block, owner: &str) -> BTreeMap<String, std::time::Duration> {
        const OPERATIONS: [&str; 3] = ["create", "update", "delete"];
        let mut out = BTreeMap::new();
        if !block.labels.is_empty() {
            self.diags.push(
                Diagnostic::error(format!("a \"timeouts\" block takes no labels, in {owner}"))
                    .named("timeouts")
                    .at(self.span(block.ident.span())),
            );
        }
        self.no_nested_blocks(block, &format!("the timeouts of {owner}"));
        for attr in block.body.attributes() {
            let key = attr.key.as_str();
            if !OPERATIONS.contains(&key) {
                self.unknown_attr(attr, &format!("the timeouts of {owner}"), &OPERATIONS);
                continue;
            }
            let valid = match &attr.value {
                Expression::String(s) => go_duration(s.value()),
                _ => None,
            };
            if let Some(d) = valid {
                out.insert(key.to_string(), d);
            } else {
                self.diags.push(
                    Diagnostic::error(format!(
                        "timeouts.{key} in {owner} must be a duration such as \"30s\", \"10m\" or \"1h30m\""
                    ))
                    .named(key)
                    .at(self.span(attr.value.span())),
                );
            }
        }
        out
    }

    /// Terraform 0.11's quoted form, `depends_on = ["aws_iam_role.r"]`, which Terraform still
    /// accepts with a warning; the reference inside is checked as an unquoted one would be.
    fn quoted_reference(&mut self, item: &Expression) -> Option<String> {
        let Expression::String(s) = item else {
            return None;
        };
        let parsed = hcl_edit::parser::parse_expr(s.value()).ok()?;
        let text = crate::lang::eval::traversal_text(&parsed)?;
        self.diags.push(
            Diagnostic::warning(
                "Quoted references are deprecated: in this context, references are expected \
                 literally rather than in quotes",
            )
            .named(text.clone())
            .at(self.span(item.span()))
            .note(format!(
                "remove the quotes surrounding this reference to silence this warning: {text}"
            )),
        );
        Some(text)
    }

    fn output(&mut self, block: &Block) {
        let Some(labels) = self.labels(block, 1, "the output name") else {
            return;
        };
        let (name, span) = labels[0].clone();
        let owner = format!("output {name:?}");
        self.no_nested_blocks(block, &owner);
        let mut out = OutputBlock {
            span: span.clone(),
            value: None,
            description: None,
            sensitive: false,
        };
        for attr in block.body.attributes() {
            match attr.key.as_str() {
                "value" => out.value = Some(self.expr(&attr.value)),
                "description" => out.description = self.literal_string(attr, &owner),
                "sensitive" => out.sensitive = self.literal_bool(attr, &owner),
                "depends_on" => {}
                _ => self.unknown_attr(attr, &owner, &["value", "description", "sensitive"]),
            }
        }
        if out.value.is_none() {
            self.diags.push(
                Diagnostic::error(format!("{owner} has no value"))
                    .named(name)
                    .at(span.clone()),
            );
        }
        if let Some(prev) = self.config.outputs.get(name) {
            let first = self.config.sources.location(&prev.span);
            self.diags
                .push(duplicate(&format!("output.{name}"), span, &first));
        } else {
            self.config.outputs.insert(name.to_string(), out);
        }
    }
}

/// A non-negative duration in Go's `time.ParseDuration` syntax, which Terraform's timeouts use:
/// one or more decimal numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), or `0`.
fn go_duration(text: &str) -> Option<std::time::Duration> {
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        seconds += number * scale;
    }
    std::time::Duration::try_from_secs_f64(seconds).ok()
}

fn label_span(label: &BlockLabel) -> Option<std::ops::Range<usize>> {
    match label {
        BlockLabel::Ident(i) => i.span(),
        BlockLabel::String(s) => s.span(),
    }
}

fn duplicate(name: &str, span: Span, first: &str) -> Diagnostic {
    Diagnostic::error(format!("duplicate {name}"))
        .named(name)
        .at(span)
        .note(format!("first declared at {first}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_read_alone_names_the_place_of_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n    key    = \"k\"\n    bukcet = \"c\"\n  }\n}\n",
        )
        .unwrap();
        let (_, diags, sources) = read_backend(dir.path()).unwrap();
        let text = diags.render(&sources, false);
        assert!(text.contains("main.tf:5:5"), "{text}");
        assert!(text.contains("did you mean \"bucket\"?"), "{text}");
    }

    #[test]
    fn blocks_of_every_kind_are_loaded() {
        let (config, diags) = load_str(
            &[(
                "main.sky.hcl",
                r#"
provider "aws" { region = "us-east-1" }
variable "env" { default = "dev" }
locals { prefix = "sky" }
data "aws_caller_identity" "current" {}
resource "aws_iam_role" "r" {
  name = "x"
  assume_role_policy = "{}"
  depends_on = [data.aws_caller_identity.current]
}
output "arn" { value = aws_iam_role.r.arn }
"#,
            )],
            crate::aws::schemas::registry(),
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert!(config.provider.region.is_some());
        assert_eq!(config.variables.len(), 1);
        assert_eq!(config.locals.len(), 1);
        assert_eq!(config.resources.len(), 2);
        let r = &config.resources[&Address::managed("aws_iam_role", "r")];
        assert_eq!(r.depends_on[0].0, "data.aws_caller_identity.current");
        assert_eq!(config.outputs.len(), 1);
    }

    #[test]
    fn timeouts_take_go_durations() {
        assert_eq!(
            go_duration("1h30m"),
            Some(std::time::Duration::from_mins(90))
        );
        assert_eq!(
            go_duration("1.5s"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(go_duration("0"), Some(std::time::Duration::ZERO));
        for bad in ["", "10", "10x", "-5m", "m", "1..2s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_syntax_error_has_a_location() {
        let (config, diags) = load_str(
            &[("bad.sky.hcl", "resource \"a\" \"b\" {\n  x = \n}\n")],
            crate::aws::schemas::registry(),
        );
        assert_eq!(diags.errors(), 1);
        let span = diags.0[0].span.clone().unwrap();
        assert!(
            config.sources.location(&span).starts_with("bad.sky.hcl:"),
            "{diags:?}"
        );
    }

    #[test]
    fn a_second_default_provider_block_is_a_duplicate_and_an_aliased_one_keeps_its_own_settings() {
        let first = "provider \"aws\" { region = \"us-east-1\" }\n";
        let (config, diags) = load_str(
            &[
                ("a.sky.hcl", first),
                ("b.sky.hcl", "provider \"aws\" { region = \"eu-west-1\" }\n"),
            ],
            crate::aws::schemas::registry(),
        );
        assert_eq!(diags.errors(), 1, "{diags:?}");
        assert!(diags.0[0].message.contains("duplicate provider \"aws\""));
        assert!(diags.0[0].notes[0].contains("a.sky.hcl:1:"), "{diags:?}");
        let aliased = "provider \"aws\" {\n  alias  = \"west\"\n  region = \"us-west-2\"\n  default_tags {\n    tags = { Side = \"west\" }\n  }\n}\n";
        let (config2, diags) = load_str(
            &[("a.sky.hcl", first), ("b.sky.hcl", aliased)],
            crate::aws::schemas::registry(),
        );
        assert!(diags.is_empty(), "{diags:?}");
        let west = &config2.aliases["west"];
        let text = |e: &Option<Expr>| e.as_ref().expect("set").expr.to_string();
        assert!(text(&west.region).contains("us-west-2"));
        assert!(text(&west.default_tags).contains("Side"));
        assert!(config2.provider.default_tags.is_none());
        // Neither later block's region replaced the first one's.
        for c in [config, config2] {
            assert!(text(&c.provider.region).contains("us-east-1"));
        }
    }

    #[test]
    fn a_repeated_alias_is_a_duplicate_and_an_alias_must_be_a_name() {
        let west = "provider \"aws\" {\n  alias  = \"west\"\n  region = \"us-west-2\"\n}\n";
        let (config, diags) = load_str(
            &[
                ("a.sky.hcl", west),
                ("b.sky.hcl", &west.replace("us-west-2", "us-west-1")),
                ("c.sky.hcl", "provider \"aws\" { alias = \"1st\" }\n"),
            ],
            crate::aws::schemas::registry(),
        );
        assert_eq!(diags.errors(), 2, "{diags:?}");
        assert!(diags.0[0]
            .message
            .contains("duplicate provider \"aws\" with alias \"west\""));
        assert!(diags.0[1]
            .message
            .contains("invalid provider alias \"1st\""));
        let region = config.aliases["west"].region.as_ref().expect("region");
        assert!(region.expr.to_string().contains("us-west-2"));
        assert_eq!(config.aliases.len(), 1);
    }

    #[test]
    fn provider_references_name_the_alias_and_anything_but_aws_is_refused() {
        let src = "provider \"aws\" {\n  alias = \"west\"\n}\n\
                   resource \"aws_vpc\" \"w\" {\n  provider   = aws.west\n  cidr_block = \"10.0.0.0/16\"\n}\n\
                   resource \"aws_vpc\" \"d\" {\n  provider   = aws\n  cidr_block = \"10.1.0.0/16\"\n}\n\
                   resource \"aws_vpc\" \"g\" {\n  provider   = google.x\n  cidr_block = \"10.2.0.0/16\"\n}\n\
                   resource \"aws_vpc\" \"q\" {\n  provider   = \"aws.west\"\n  cidr_block = \"10.3.0.0/16\"\n}\n\
                   resource \"aws_vpc\" \"n\" {\n  provider   = 3\n  cidr_block = \"10.4.0.0/16\"\n}\n";
        let (config, diags) = load_str(&[("main.sky.hcl", src)], crate::aws::schemas::registry());
        assert_eq!(diags.errors(), 2, "{diags:?}");
        assert!(diags.0[0].message.contains("unknown provider \"google\""));
        // The quoted form of Terraform 0.11 is read, with a warning.
        assert!(diags.0[1]
            .message
            .contains("Quoted references are deprecated"));
        assert!(diags.0[2].message.contains("invalid provider reference"));
        let alias = |n: &str| {
            config.resources[&Address::managed("aws_vpc", n)]
                .provider
                .as_ref()
                .map(|(a, _)| a.clone())
        };
        assert_eq!(alias("w").as_deref(), Some("west"));
        assert_eq!(alias("d").as_deref(), Some(""));
        assert_eq!(alias("q").as_deref(), Some("west"));
        assert_eq!(
            config.provider_of(&Address::managed("aws_vpc", "w")),
            "west"
        );
        assert_eq!(config.provider_of(&Address::managed("aws_vpc", "d")), "");
    }

    #[test]
    fn duplicates_across_files_name_the_first_declaration() {
        let block = "resource \"aws_iam_user\" \"u\" { name = \"a\" }\n";
        let (_, diags) = load_str(
            &[("a.sky.hcl", block), ("b.sky.hcl", block)],
            crate::aws::schemas::registry(),
        );
        assert_eq!(diags.errors(), 1);
        assert!(diags.0[0].message.contains("duplicate aws_iam_user.u"));
        assert!(diags.0[0].notes[0].contains("a.sky.hcl:1:"));
    }

    #[test]
    fn a_variable_takes_validation_blocks_and_nullable_but_no_other_block() {
        let (config, diags) = load_str(
            &[(
                "v.sky.hcl",
                "variable \"x\" {\n  nullable = false\n  validation {\n    condition = true\n  }\n  lifecycle {}\n}\n",
            )],
            crate::aws::schemas::registry(),
        );
        let msgs: Vec<&str> = diags.0.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "the validation block of variable \"x\" needs the attribute \"error_message\"",
                "unexpected block \"lifecycle\" in variable \"x\"; only validation blocks belong here"
            ]
        );
        assert!(!config.variables["x"].nullable);
    }
}
