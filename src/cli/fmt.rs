//! `skyform fmt [--check] [--diff]`: the command over a directory's files; the layout rules
//! are `lang::fmt`.

use std::path::Path;

use crate::error::{ConfigError, Error, Outcome};
use crate::lang::diagnostic::Diagnostics;
use crate::lang::fmt::{format_text, line_diff, same_meaning};

/// `skyform fmt [--check] [--diff]` over the `*.sky.hcl` and `*.tf` files of `dir`. A file that does not
/// parse is refused with its syntax error before anything is written: the line-based formatter
/// cannot tell what a broken file means, so it must not touch any of it.
pub(crate) fn run(dir: &Path, check: bool, diff: bool) -> Result<Outcome, Error> {
    // Terraform's JSON syntax is not formatted (as `terraform fmt` leaves it alone).
    let mut sources = crate::lang::config::read_sources(dir)?;
    sources.files.retain(|f| !f.display.ends_with(".tf.json"));
    let mut syntax = Diagnostics::default();
    for (file, source) in sources.files.iter().enumerate() {
        if let Err(d) = crate::lang::config::parse_body(&source.text, file) {
            syntax.push(d);
        }
    }
    if syntax.has_errors() {
        return Err(ConfigError::new(sources, syntax).into());
    }
    let mut unformatted = 0;
    let mut unsafe_files = Vec::new();
    for source in &sources.files {
        let (name, text) = (&source.display, &source.text);
        let formatted = format_text(text);
        if &formatted == text {
            continue;
        }
        if !same_meaning(text, &formatted) {
            unsafe_files.push(name.clone());
            continue;
        }
        unformatted += 1;
        println!("{name}");
        if diff {
            print!("{}", line_diff(name, text, &formatted));
        }
        if !check {
            std::fs::write(&source.path, formatted)?;
        }
    }
    if !unsafe_files.is_empty() {
        return Err(Error::Unformattable(unsafe_files));
    }
    // A file `--check` would change is the failure it exists to report.
    Ok(if check && unformatted > 0 {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}
