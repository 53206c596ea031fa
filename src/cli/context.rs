//! What every command shares: the settings (`Context`), loading the workspace, connecting to
//! AWS, and how results are shown. The commands, the workflow, `check` and the state commands
//! all use it; it uses none of them.

use std::path::{Path, PathBuf};

use crate::aws::{AwsProvider, AwsSettings};
use crate::cli::args::VarArgs;
use crate::cli::backend::{Selection, Store};
use crate::engine::graph::Graph;
use crate::engine::plan::Workspace;
use crate::engine::provider::Rules as _;
use crate::error::{ConfigError, Error};
use crate::lang::diagnostic::Diagnostics;
use crate::lang::value::Value;
use crate::lang::variables::{resolve, VarInputs};
use crate::render::human::Style;

/// Settings every command shares.
pub(crate) struct Context {
    pub(crate) dir: PathBuf,
    pub(crate) style: Style,
    pub(crate) lock_timeout: Option<std::time::Duration>,
    /// The backend and workspace whose state the commands open.
    pub(crate) selection: Selection,
}

impl Context {
    /// The selected workspace's state, in the configured backend.
    pub(crate) fn state(&self) -> Store {
        self.selection.store(&self.dir)
    }
}

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
    /// With the most characters it may have.
    Markdown(usize),
}

impl Format {
    pub(crate) fn of(json: bool, markdown: bool, limit: u64) -> Format {
        if json {
            Format::Json
        } else if markdown {
            Format::Markdown(
                usize::try_from(limit).unwrap_or(crate::render::markdown::COMMENT_LIMIT),
            )
        } else {
            Format::Human
        }
    }
}

/// Loads, checks and resolves the configuration; every problem is reported at once.
pub(crate) fn workspace(
    dir: &Path,
    vars: &VarArgs,
    require_vars: bool,
) -> Result<(Workspace, Diagnostics), Error> {
    let (mut config, mut diags) = crate::lang::config::load(dir, AwsProvider::schemas())?;
    config.workspace = crate::cli::backend::current_workspace(dir)?;
    diags.extend(crate::lang::validate::check(&config));
    let graph = Graph::build(&config);
    diags.extend(graph.cycles(&config));
    let inputs = VarInputs {
        cli: vars.vars.clone(),
        files: crate::lang::variables::auto_var_files(&config.dir)
            .into_iter()
            .chain(vars.var_files.iter().cloned())
            .collect(),
        env: VarInputs::from_env(),
    };
    let (vars, var_diags) = resolve(&config, &inputs, require_vars);
    diags.extend(var_diags);
    if diags.has_errors() {
        return Err(ConfigError::new(config.sources, diags).into());
    }
    let order = graph.order().unwrap_or_default();
    Ok((
        Workspace {
            config,
            graph,
            order,
            vars,
            files_read: crate::lang::functions::FilesRead::default(),
        },
        diags,
    ))
}

pub(crate) fn print_warnings(ws: &Workspace, diags: &Diagnostics, style: Style) {
    if !diags.is_empty() {
        eprintln!("{}", diags.render(&ws.config.sources, style.color));
    }
}

/// The default `provider "aws"` block's settings, evaluated.
pub(crate) fn provider_settings(ws: &Workspace) -> Result<AwsSettings, Error> {
    block_settings(ws, &ws.config.provider)
}

/// One `provider "aws"` block's settings, evaluated.
fn block_settings(
    ws: &Workspace,
    block: &crate::lang::config::ProviderBlock,
) -> Result<AwsSettings, Error> {
    let ctx = ws.base_ctx();
    let eval = |e: &Option<crate::lang::config::Expr>| -> Result<Option<String>, Error> {
        let Some(e) = e else { return Ok(None) };
        match ctx.eval_top(&e.expr) {
            Ok((Value::Null, _)) => Ok(None),
            Ok((v, _)) => v
                .to_template_string()
                .map(Some)
                .ok_or(Error::ProviderSetting),
            Err(err) => {
                let d = crate::engine::plan::eval_diag(err, &e.span, "provider \"aws\"");
                Err(ConfigError::new(ws.config.sources.clone(), Diagnostics(vec![d])).into())
            }
        }
    };
    Ok(AwsSettings {
        region: eval(&block.region)?,
        profile: eval(&block.profile)?,
    })
}

/// Connects every provider configuration: the default and each alias.
pub(crate) async fn connect(ws: &Workspace) -> Result<AwsProvider, Error> {
    let aliases = ws
        .config
        .aliases
        .iter()
        .map(|(alias, block)| Ok((alias.clone(), block_settings(ws, block)?)))
        .collect::<Result<_, Error>>()?;
    Ok(AwsProvider::connect_all(&provider_settings(ws)?, &aliases).await?)
}

/// Prints `prompt` and reads one line from stdin. The read runs on the blocking pool: the
/// runtime keeps beating the state lock's heartbeat while someone reads the plan.
pub(crate) async fn ask(prompt: &str) -> Result<String, Error> {
    use std::io::{BufRead as _, Write as _};
    print!("{prompt}");
    std::io::stdout().flush()?;
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    Ok(read.await.map_err(std::io::Error::other)??)
}

pub(crate) fn shown(o: &crate::state::OutputState) -> String {
    if o.sensitive {
        "(sensitive value)".into()
    } else {
        Value::from_json(&o.value).to_string()
    }
}

/// Leaves what a command built to the end of the process instead of freeing it piece by
/// piece: dropping the configuration and graph of 100,000 resources was a tenth of
/// `validate`'s time, and the process returns the memory whole a moment later. Only for what
/// a command holds at its very end.
pub(crate) fn leave_to_exit<T>(built: T) {
    std::mem::forget(built);
}
