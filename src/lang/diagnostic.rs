//! Diagnostics: every problem found in the configuration, with where it is and what it names.
//!
//! Loading, evaluation and validation never stop at the first problem: they push into a
//! `Diagnostics` list, and the command reports all of them at once. Spans are data (a file id and
//! a byte range), turned into `file:line:col` and a source snippet only when rendered, so the
//! core stays free of formatting concerns.
//!
//! The renderer is skyform's own, about sixty lines. `miette` and `annotate-snippets` were
//! weighed: both render well, but each has its own layout (miette's boxes and arrows, rustc's
//! `-->` gutter), so adopting either would change every diagnostic users and CI logs see, and
//! tests pin that text; neither would remove more code than it adds here. Worth revisiting when
//! diagnostics need multi-span labels, which these do not have yet.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

use owo_colors::OwoColorize;

/// One loaded configuration file.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The path as shown to the user (relative to the working directory when possible).
    pub(crate) display: String,
    pub(crate) path: PathBuf,
    /// What is parsed: the file's text, or for a `*.tf.json` file its native rendering.
    pub(crate) text: String,
    /// A `*.tf.json` file: its own text, and where each piece of `text` came from in it, so
    /// that positions are shown in the file the user wrote.
    pub(crate) json: Option<(String, crate::lang::tf_json::Converted)>,
}

/// All loaded files; a `Span` refers into it by index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub(crate) files: Vec<SourceFile>,
}

/// A region of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) file: usize,
    pub(crate) range: Range<usize>,
}

impl Span {
    pub(crate) fn new(file: usize, range: Option<Range<usize>>) -> Span {
        Span {
            file,
            range: range.unwrap_or(0..0),
        }
    }
}

impl Sources {
    pub(crate) fn add(&mut self, display: String, path: PathBuf, text: String) -> usize {
        self.files.push(SourceFile {
            display,
            path,
            text,
            json: None,
        });
        self.files.len() - 1
    }

    /// Adds a `*.tf.json` file: `json` is what it says, `converted` its native rendering.
    pub(crate) fn add_json(
        &mut self,
        display: String,
        path: PathBuf,
        json: String,
        converted: crate::lang::tf_json::Converted,
    ) -> usize {
        self.files.push(SourceFile {
            display,
            path,
            text: converted.text.clone(),
            json: Some((json, converted)),
        });
        self.files.len() - 1
    }

    /// The text a span is shown in and the span's offset there: the JSON a `*.tf.json`
    /// file holds, or the file's text.
    fn shown(&self, span: &Span) -> Option<(&str, usize)> {
        let file = self.files.get(span.file)?;
        Some(match &file.json {
            Some((json, converted)) => (json.as_str(), converted.original(span.range.start)),
            None => (file.text.as_str(), span.range.start),
        })
    }

    /// One-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, span: &Span) -> (usize, usize) {
        let Some((text, offset)) = self.shown(span) else {
            return (1, 1);
        };
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }

    /// `file:line:col` for a span.
    pub(crate) fn location(&self, span: &Span) -> String {
        let (line, col) = self.line_col(span);
        let name = self
            .files
            .get(span.file)
            .map_or("<unknown>", |f| f.display.as_str());
        format!("{name}:{line}:{col}")
    }

    fn line_text(&self, span: &Span, line: usize) -> Option<&str> {
        self.shown(span)?.0.lines().nth(line - 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// A problem in the configuration or its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) message: String,
    /// The offending name (an attribute, a reference, an address...).
    pub(crate) name: Option<String>,
    pub(crate) span: Option<Span>,
    /// Extra lines: a "did you mean", the members of a cycle.
    pub(crate) notes: Vec<String>,
}

impl Diagnostic {
    pub(crate) fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            name: None,
            span: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    #[must_use]
    pub(crate) fn named(mut self, name: impl Into<String>) -> Diagnostic {
        self.name = Some(name.into());
        self
    }

    #[must_use]
    pub(crate) fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    #[must_use]
    pub(crate) fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Renders the diagnostic with its location and a caret under the offending text.
    pub(crate) fn render(&self, sources: &Sources, color: bool) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let label = match (color, self.severity) {
            (false, _) => label.to_string(),
            (true, Severity::Error) => label.red().bold().to_string(),
            (true, Severity::Warning) => label.yellow().bold().to_string(),
        };
        let _ = writeln!(out, "{label}: {}", self.message);
        if let Some(span) = &self.span {
            let (line, col) = sources.line_col(span);
            let _ = writeln!(out, "  --> {}", sources.location(span));
            if let Some(text) = sources.line_text(span, line) {
                let width = line.to_string().len();
                let len = sources
                    .files
                    .get(span.file)
                    .and_then(|f| f.text.get(span.range.clone()))
                    .map_or(1, |s| {
                        s.lines().next().map_or(1, |l| l.chars().count().max(1))
                    });
                let _ = writeln!(out, "{:width$} |", "");
                let _ = writeln!(out, "{line} | {text}");
                let _ = writeln!(
                    out,
                    "{:width$} | {}{}",
                    "",
                    " ".repeat(col - 1),
                    "^".repeat(len)
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = {note}");
        }
        out
    }
}

/// A collection of diagnostics, in the order they were found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub(crate) Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        // The same problem can be reached twice (a reference evaluated for validation and for
        // the graph); report it once.
        if !self.0.contains(&d) {
            self.0.push(d);
        }
    }

    pub(crate) fn extend(&mut self, other: Diagnostics) {
        for d in other.0 {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub(crate) fn errors(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn render(&self, sources: &Sources, color: bool) -> String {
        self.0
            .iter()
            .map(|d| d.render(sources, color))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The error for an attribute or block Terraform has on `type_name` and skyform does not yet
/// (`Schema::lacks`), worded apart from a typo's "unknown attribute". The caller places it.
pub(crate) fn not_supported_yet(type_name: &str, name: &str) -> Diagnostic {
    Diagnostic::error(format!(
        "attribute {name:?} of {type_name} is not supported yet by skyform"
    ))
    .named(name)
    .note(format!(
        "Terraform's AWS provider has it; `skyform schema {type_name}` lists what skyform supports"
    ))
}

/// The closest candidate to `name` by edit distance, for "did you mean" hints.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1) + 1 && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let mut sources = Sources::default();
        let f = sources.add(
            "a.sky.hcl".into(),
            "a.sky.hcl".into(),
            "x = 1\n  yé = 2\n".into(),
        );
        let span = Span {
            file: f,
            range: 11..12,
        };
        assert_eq!(sources.location(&span), "a.sky.hcl:2:5");
    }

    #[test]
    fn did_you_mean_finds_a_close_name_and_ignores_far_ones() {
        assert_eq!(did_you_mean("nmae", ["name", "path", "tags"]), Some("name"));
        assert_eq!(did_you_mean("zzzzzz", ["name", "path"]), None);
    }

    #[test]
    fn rendering_points_at_the_offending_text() {
        let mut sources = Sources::default();
        let f = sources.add(
            "m.sky.hcl".into(),
            "m.sky.hcl".into(),
            "a = 1\nnmae = 2\n".into(),
        );
        let d = Diagnostic::error("unknown attribute").at(Span {
            file: f,
            range: 6..10,
        });
        let text = d.render(&sources, false);
        assert!(text.contains("m.sky.hcl:2:1"), "{text}");
        assert!(text.contains("^^^^"), "{text}");
    }
}
