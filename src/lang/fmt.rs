//! The canonical layout of `*.sky.hcl` files, as `terraform fmt` writes it (the command itself
//! is `cli::fmt`).
//!
//! Formatting works on lines, with a small lexer that knows strings (and the `${...}` inside
//! them), heredocs and comments, so that only layout changes: two spaces per nesting level,
//! one space around an attribute's `=`, the `=` of consecutive attributes aligned, no
//! trailing whitespace, one newline at the end. Comments and heredoc bodies are kept as they
//! are. The result must parse to the same body as the input; a file for which it would not is
//! reported and left alone, so `fmt` can never change what a configuration means. A file that
//! does not parse at all is refused with its syntax error, and then nothing is written.

/// What the lexer carries from one line to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Carry {
    Code,
    BlockComment,
    /// Inside a heredoc, until a line that is exactly this marker (after trimming).
    Heredoc(String),
}

/// One line, classified.
struct Line {
    text: String,
    /// The indentation level.
    depth: usize,
    /// Kept byte for byte (heredoc body, inside a block comment).
    verbatim: bool,
    /// Leaves more brackets open than it found: its value goes on over the next lines.
    opens: bool,
}

/// Scans one line of code: pushes the brackets it opens (tagged with `line_no`), pops those
/// it closes, and notes the heredoc or comment it leaves open.
fn scan(line: &str, line_no: usize, open: &mut Vec<usize>, carry: &mut Carry) {
    let b = line.as_bytes();
    let mut i = 0;
    // Inside a string: the number of `${` / `%{` braces open within it (0 = plain string).
    let mut in_string = false;
    let mut interp: Vec<usize> = Vec::new();
    while i < b.len() {
        if *carry == Carry::BlockComment {
            if b[i..].starts_with(b"*/") {
                *carry = Carry::Code;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        let c = b[i];
        if in_string && interp.is_empty() {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    interp.push(0);
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' if !interp.is_empty() => {
                // A string inside an interpolation: skip it whole.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'"' => in_string = true,
            b'#' => break,
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                *carry = Carry::BlockComment;
                i += 1;
            }
            b'<' if b.get(i + 1) == Some(&b'<') && interp.is_empty() => {
                let rest = &line[i + 2..];
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                let marker: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !marker.is_empty() {
                    *carry = Carry::Heredoc(marker);
                    return;
                }
            }
            b'{' | b'[' | b'(' => {
                if let Some(n) = interp.last_mut() {
                    *n += 1;
                } else {
                    open.push(line_no);
                }
            }
            b'}' | b']' | b')' => match interp.last_mut() {
                Some(0) => {
                    interp.pop();
                }
                Some(n) => *n -= 1,
                None => {
                    open.pop();
                }
            },
            _ => {}
        }
        i += 1;
    }
}

/// The indentation level for brackets still open: brackets opened on one line (`jsonencode({`)
/// indent once, as `terraform fmt` does.
fn level(open: &[usize]) -> usize {
    let mut n = 0;
    let mut last = None;
    for l in open {
        if last != Some(*l) {
            n += 1;
            last = Some(*l);
        }
    }
    n
}

fn classify(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut carry = Carry::Code;
    for (n, raw) in text.lines().enumerate() {
        match &carry {
            Carry::Heredoc(marker) => {
                if raw.trim() == marker {
                    carry = Carry::Code;
                }
                out.push(Line {
                    text: raw.to_string(),
                    depth: 0,
                    verbatim: true,
                    opens: false,
                });
                continue;
            }
            Carry::BlockComment => {
                scan(raw, n, &mut open, &mut carry);
                out.push(Line {
                    text: raw.trim_end().to_string(),
                    depth: 0,
                    verbatim: true,
                    opens: false,
                });
                continue;
            }
            Carry::Code => {}
        }
        let trimmed = raw.trim();
        let closers = trimmed
            .chars()
            .take_while(|c| matches!(c, '}' | ']' | ')'))
            .count();
        let depth = level(&open[..open.len().saturating_sub(closers)]);
        let before = open.len();
        scan(raw, n, &mut open, &mut carry);
        out.push(Line {
            text: trimmed.to_string(),
            depth,
            verbatim: false,
            opens: open.len() > before,
        });
    }
    out
}

/// The key and value of an attribute line (`key = value`), if it is one.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let key_end = if let Some(rest) = line.strip_prefix('"') {
        rest.find('"')? + 2
    } else {
        line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?
    };
    if key_end == 0 {
        return None;
    }
    let (key, rest) = line.split_at(key_end);
    let rest = rest.trim_start();
    let value = rest.strip_prefix('=')?;
    if value.starts_with(['=', '>']) {
        return None;
    }
    Some((key, value.trim_start()))
}

/// Formats one file's text.
pub(crate) fn format_text(text: &str) -> String {
    // Each line: its text, or for an attribute its (level, indented key, value) to align.
    type Rendered = (String, Option<(usize, String, String)>);
    let lines = classify(text);
    let mut rendered: Vec<Rendered> = Vec::new();
    for l in &lines {
        if l.verbatim {
            rendered.push((l.text.clone(), None));
            continue;
        }
        if l.text.is_empty() {
            rendered.push((String::new(), None));
            continue;
        }
        let level = l.depth;
        let indent = "  ".repeat(level);
        let is_comment =
            l.text.starts_with('#') || l.text.starts_with("//") || l.text.starts_with("/*");
        if let Some((key, value)) = assignment(&l.text).filter(|_| !is_comment) {
            if l.opens {
                // terraform fmt (hclwrite) leaves out of the alignment, and ends the run of
                // aligned lines at, an attribute whose value opens a multi-line expression:
                // `default = {` under `type        = map(string)` keeps its one space.
                rendered.push((format!("{indent}{key} = {value}"), None));
                continue;
            }
            rendered.push((
                String::new(),
                Some((level, format!("{indent}{key}"), value.to_string())),
            ));
        } else {
            let mut t = l.text.clone();
            // `name "a" "b"{` gets its space before the brace.
            if t.ends_with('{') && t.len() > 1 && !t.ends_with(" {") && !t.ends_with("${") {
                t.insert(t.len() - 1, ' ');
            }
            rendered.push((format!("{indent}{t}"), None));
        }
    }
    // Align the `=` of consecutive attribute lines at one level.
    let mut out: Vec<String> = Vec::with_capacity(rendered.len());
    let mut i = 0;
    while i < rendered.len() {
        let Some((level, _, _)) = &rendered[i].1 else {
            out.push(rendered[i].0.clone());
            i += 1;
            continue;
        };
        let level = *level;
        let mut j = i;
        while j < rendered.len() && matches!(&rendered[j].1, Some((l, _, _)) if *l == level) {
            j += 1;
        }
        let width = rendered[i..j]
            .iter()
            .filter_map(|r| r.1.as_ref().map(|(_, k, _)| k.chars().count()))
            .max()
            .unwrap_or(0);
        for r in &rendered[i..j] {
            if let Some((_, key, value)) = &r.1 {
                let pad = width - key.chars().count();
                out.push(format!("{key}{} = {value}", " ".repeat(pad)));
            }
        }
        i = j;
    }
    let mut text: String = out
        .iter()
        .map(|l| l.trim_end_matches([' ', '\t']))
        .collect::<Vec<_>>()
        .join("\n");
    let trimmed = text.trim_matches('\n').len();
    if trimmed == 0 {
        return String::new();
    }
    text = text
        .trim_start_matches('\n')
        .trim_end_matches('\n')
        .to_string();
    text.push('\n');
    text
}

/// Whether two texts are the same configuration (hcl-rs bodies, which carry no layout).
pub(crate) fn same_meaning(a: &str, b: &str) -> bool {
    match (hcl::parse(a), hcl::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A line diff of `old` against `new`, with a little context, for `fmt --diff`.
// `a`, `b`, `n`, `m`, `i`, `j`: the textbook names of the LCS table, kept so it can be checked
// against the textbook.
#[allow(clippy::many_single_char_names)]
pub(crate) fn line_diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|(c, _)| *c != ' ')
    };
    let mut out = format!("--- {name}\n+++ {name} (formatted)\n");
    let mut skipped = false;
    for (k, (c, l)) in ops.iter().enumerate() {
        if *c == ' ' && !near(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("@@\n");
            skipped = false;
        }
        out.push_str(&format!("{c}{l}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indentation_spacing_and_alignment_follow_terraform() {
        let input = "resource \"aws_iam_user\" \"u\"{\nname=\"x\"\n    path   =   \"/\"\ntags = {\n a = \"b\"\n  long_key = \"c\"\n}\n}\n\n\n";
        let want = "resource \"aws_iam_user\" \"u\" {\n  name = \"x\"\n  path = \"/\"\n  tags = {\n    a        = \"b\"\n    long_key = \"c\"\n  }\n}\n";
        assert_eq!(format_text(input), want);
        assert_eq!(format_text(want), want, "formatting is idempotent");
    }

    /// The AWS provider's own `aws_iam_role` example, as `terraform fmt` leaves it: lines that
    /// open a multi-line value are not aligned, and they end the run of aligned lines; a
    /// heredoc opener is aligned.
    #[test]
    fn a_line_opening_a_multi_line_value_is_not_aligned_as_in_terraform_fmt() {
        let want = r#"resource "aws_iam_role" "r" {
  name = "r"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Action = "sts:AssumeRole"
        Effect = "Allow"
        Sid    = ""
        Principal = {
          Service = "ec2.amazonaws.com"
        }
      },
    ]
  })
  description = "x"
}

variable "v" {
  description = "map"
  type        = map(string)
  default = {
    neo = "hero"
  }
  sensitive = false
  nullable  = true
  h         = <<EOT
x
EOT
}
"#;
        assert_eq!(format_text(want), want);
        let squashed = want
            .replace("Sid    =", "Sid =")
            .replace("type        =", "type =");
        assert_eq!(format_text(&squashed), want);
    }

    #[test]
    fn strings_heredocs_and_comments_are_kept() {
        let input = "locals {\n  # a { comment\n  s = \"}{ ${var.x} \"\n  h = <<-EOT\n      keep   this {\n    EOT\n  n = 1\n}\n";
        let out = format_text(input);
        assert!(out.contains("      keep   this {\n"), "{out}");
        assert!(out.contains("  # a { comment\n"), "{out}");
        assert!(out.contains("  n = 1\n}\n"), "{out}");
        assert!(same_meaning(input, &out));
    }

    #[test]
    fn the_examples_are_already_formatted() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            for f in crate::lang::config::config_files(&entry.path()).unwrap_or_default() {
                let text = std::fs::read_to_string(&f).unwrap();
                assert_eq!(format_text(&text), text, "{}", f.display());
            }
        }
    }
}
