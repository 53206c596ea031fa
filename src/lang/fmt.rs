//! The canonical layout of `*.sky.hcl` files, as `terraform fmt` writes it (the command itself
//! is `cli::fmt`).
//!
//! It is hclwrite.Format's algorithm (the engine of `terraform fmt`), so that a repository
//! `terraform fmt` keeps canonical is canonical here too, byte for byte: the text is lexed into
//! HCL tokens; each line is indented two spaces per line above it that left brackets open;
//! the spaces between tokens follow hclwrite's rules; the `=` of consecutive one-line
//! attributes, and consecutive trailing comments, are aligned. Only spaces before tokens
//! change: comments, heredoc bodies and blank lines (leading and trailing ones too) are kept.
//! `tests/fmt_differential.rs` checks it against hclwrite itself. The result must parse to the
//! same body as the input; a file for which it would not is reported and left alone, so
//! `fmt` can never change what a configuration means. A file that does not parse at all is
//! refused with its syntax error, and then nothing is written.

/// The kinds of token that hclwrite's layout rules tell apart (hclsyntax's token types, less
/// those the rules treat alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Newline,
    /// A `#`/`//` comment (its newline included, so it ends a line) or a `/* */` one.
    Comment,
    Ident,
    Number,
    OQuote,
    CQuote,
    /// Literal text inside a quoted string.
    QuotedLit,
    /// `<<EOT` with its newline.
    OHeredoc,
    /// Literal text of a heredoc body.
    StringLit,
    /// The heredoc's closing marker line, leading whitespace included.
    CHeredoc,
    /// `${` or `${~`.
    TemplateInterp,
    /// `%{` or `%{~`.
    TemplateControl,
    /// The `}` or `~}` that ends an interpolation or directive.
    TemplateSeqEnd,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    Equal,
    Comma,
    Dot,
    Ellipsis,
    DoubleColon,
    Minus,
    Bang,
    /// An operator after which a `-` is a negation (`+ * / % == != < <= > >= && || ( : ?`).
    Operator,
    /// `:` and `?`, after which a `-` is a negation too.
    Separator,
    Other,
}

struct Token {
    kind: Kind,
    text: String,
    /// The spaces written before it, set by the layout passes.
    spaces: usize,
}

impl Token {
    fn bracket_change(&self) -> i64 {
        match self.kind {
            Kind::OBrace
            | Kind::OBrack
            | Kind::OParen
            | Kind::TemplateInterp
            | Kind::TemplateControl => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen | Kind::TemplateSeqEnd => -1,
            _ => 0,
        }
    }

    /// A newline token, or a line comment (which carries its newline).
    fn ends_line(&self) -> bool {
        self.kind == Kind::Newline || (self.kind == Kind::Comment && self.text.ends_with('\n'))
    }
}

/// What an open `{` belongs to, so that its `}` is lexed as the right token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Brace,
    /// An interpolation inside a quoted string (true) or a heredoc line (false).
    Template(bool),
}

/// A small HCL lexer: enough of hclsyntax's scanner to give every token hclwrite's type.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    stack: Vec<Open>,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn push(&mut self, kind: Kind, len: usize) {
        let end = (self.pos + len).min(self.src.len());
        self.tokens.push(Token {
            kind,
            text: self.src[self.pos..end].to_string(),
            spaces: 0,
        });
        self.pos = end;
    }

    /// The length of the char at the cursor (at least 1 byte, so lexing always advances).
    fn char_len(&self) -> usize {
        self.rest().chars().next().map_or(1, char::len_utf8)
    }

    fn run(mut self) -> Vec<Token> {
        while self.pos < self.src.len() {
            self.code_token();
        }
        self.tokens
    }

    fn code_token(&mut self) {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else { return };
        if c == ' ' || c == '\t' {
            self.pos += 1;
            return;
        }
        let two = rest.get(..2).unwrap_or("");
        let len_to = |pat: &str| rest.find(pat);
        match c {
            '\n' => self.push(Kind::Newline, 1),
            '\r' if two == "\r\n" => self.push(Kind::Newline, 2),
            '#' => self.push(Kind::Comment, len_to("\n").map_or(rest.len(), |n| n + 1)),
            '/' if two == "//" => {
                self.push(Kind::Comment, len_to("\n").map_or(rest.len(), |n| n + 1));
            }
            '/' if two == "/*" => {
                self.push(Kind::Comment, len_to("*/").map_or(rest.len(), |n| n + 2));
            }
            '"' => {
                self.push(Kind::OQuote, 1);
                self.template(true);
            }
            '<' if two == "<<" => self.heredoc(),
            '{' => {
                self.stack.push(Open::Brace);
                self.push(Kind::OBrace, 1);
            }
            '}' | '~'
                if self.stack.last().is_some_and(|o| *o != Open::Brace)
                    && (c == '}' || two == "~}") =>
            {
                let Some(Open::Template(quoted)) = self.stack.pop() else {
                    return;
                };
                self.push(Kind::TemplateSeqEnd, if c == '~' { 2 } else { 1 });
                if quoted {
                    self.template(true);
                }
            }
            '}' => {
                self.stack.pop();
                self.push(Kind::CBrace, 1);
            }
            '[' => self.push(Kind::OBrack, 1),
            ']' => self.push(Kind::CBrack, 1),
            '(' => self.push(Kind::OParen, 1),
            ')' => self.push(Kind::CParen, 1),
            ',' => self.push(Kind::Comma, 1),
            '.' if rest.starts_with("...") => self.push(Kind::Ellipsis, 3),
            '.' => self.push(Kind::Dot, 1),
            ':' if two == "::" => self.push(Kind::DoubleColon, 2),
            ':' | '?' => self.push(Kind::Separator, 1),
            '-' => self.push(Kind::Minus, 1),
            '!' if two == "!=" => self.push(Kind::Operator, 2),
            '!' => self.push(Kind::Bang, 1),
            '=' if two == "==" => self.push(Kind::Operator, 2),
            '=' if two == "=>" => self.push(Kind::Other, 2),
            '=' => self.push(Kind::Equal, 1),
            '<' | '>' if rest[1..].starts_with('=') => self.push(Kind::Operator, 2),
            '&' | '|' if two == "&&" || two == "||" => self.push(Kind::Operator, 2),
            '+' | '*' | '/' | '%' | '<' | '>' => self.push(Kind::Operator, 1),
            c if c.is_ascii_digit() => {
                let mut n = 0;
                let b = rest.as_bytes();
                while n < b.len() {
                    let d = b[n];
                    let exp_sign =
                        (d == b'+' || d == b'-') && n > 0 && matches!(b[n - 1], b'e' | b'E');
                    let frac = d == b'.' && b.get(n + 1).is_some_and(u8::is_ascii_digit);
                    if !(d.is_ascii_digit() || d == b'e' || d == b'E' || exp_sign || frac) {
                        break;
                    }
                    n += 1;
                }
                self.push(Kind::Number, n);
            }
            c if c.is_alphabetic() || c == '_' => {
                let n = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(rest.len());
                self.push(Kind::Ident, n);
            }
            _ => {
                let n = self.char_len();
                self.push(Kind::Other, n);
            }
        }
    }

    /// Lexes template text up to the next interpolation (then back to code) or its end: the
    /// closing quote of a quoted string, or the end of the line in a heredoc.
    fn template(&mut self, quoted: bool) {
        let b = self.rest().as_bytes();
        let mut n = 0;
        while n < b.len() {
            match b[n] {
                b'\\' if quoted => n += 2,
                b'$' | b'%' if b.get(n + 1) == Some(&b'{') => {
                    if n > 0 && b[n - 1] == b[n] && (n < 2 || b[n - 2] != b[n]) {
                        // `$${` and `%%{` are escapes, not interpolations.
                        n += 2;
                        continue;
                    }
                    if n > 0 {
                        self.push(
                            if quoted {
                                Kind::QuotedLit
                            } else {
                                Kind::StringLit
                            },
                            n,
                        );
                    }
                    let control = b[n] == b'%';
                    let len = if b.get(n + 2) == Some(&b'~') { 3 } else { 2 };
                    self.stack.push(Open::Template(quoted));
                    let kind = if control {
                        Kind::TemplateControl
                    } else {
                        Kind::TemplateInterp
                    };
                    self.push(kind, len);
                    return;
                }
                b'"' if quoted => {
                    if n > 0 {
                        self.push(Kind::QuotedLit, n);
                    }
                    self.push(Kind::CQuote, 1);
                    return;
                }
                b'\n' if quoted => break,
                b'\n' => {
                    self.push(Kind::StringLit, n + 1);
                    return;
                }
                _ => n += 1,
            }
        }
        if n > 0 {
            self.push(
                if quoted {
                    Kind::QuotedLit
                } else {
                    Kind::StringLit
                },
                n,
            );
        }
    }

    /// `<<EOT` / `<<-EOT`: the opener with its newline, the body lines kept as they are (their
    /// interpolations lexed as code), and the closing marker.
    fn heredoc(&mut self) {
        let rest = self.rest();
        let after = rest[2..].strip_prefix('-').unwrap_or(&rest[2..]);
        let marker: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let head = rest.len() - after.len() + marker.len();
        if marker.is_empty() || !rest[head..].starts_with('\n') {
            self.push(Kind::Operator, 1);
            return;
        }
        self.push(Kind::OHeredoc, head + 1);
        while self.pos < self.src.len() {
            let line = self.rest().split('\n').next().unwrap_or("");
            if line.trim_start_matches([' ', '\t']).trim_end_matches('\r') == marker {
                let n = line.trim_end_matches('\r').len();
                self.push(Kind::CHeredoc, n);
                return;
            }
            let depth = self.stack.len();
            self.template(false);
            // An interpolation in the body: lex it as code until it closes.
            while self.stack.len() > depth && self.pos < self.src.len() {
                self.code_token();
            }
        }
    }
}

/// One line of tokens, split as hclwrite splits it: `lead`, then `assign` (from the `=` of a
/// one-line attribute on), then a trailing `comment`; each is a range of token indexes.
struct FmtLine {
    start: usize,
    assign: usize,
    comment: usize,
    end: usize,
}

impl FmtLine {
    fn columns(tokens: &[Token], range: std::ops::Range<usize>) -> usize {
        tokens[range]
            .iter()
            .map(|t| t.spaces + t.text.chars().count())
            .sum()
    }
}

fn lines_for_format(tokens: &[Token]) -> Vec<FmtLine> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.ends_line() || i + 1 == tokens.len() {
            lines.push(FmtLine {
                start,
                assign: i + 1,
                comment: i + 1,
                end: i + 1,
            });
            start = i + 1;
        }
    }
    for line in &mut lines {
        let (s, e) = (line.start, line.end);
        if e - s > 1 && tokens[e - 1].kind == Kind::Comment {
            line.comment = e - 1;
            line.assign = e - 1;
        }
        if let Some(eq) = (s + 1..line.comment).find(|&i| tokens[i].kind == Kind::Equal) {
            // Only a whole expression is aligned: a value that opens brackets it does not
            // close on this line (`policy = jsonencode({`) goes on over the next lines.
            if net_brackets(&tokens[eq..line.comment]) == 0 {
                line.assign = eq;
            }
        }
    }
    lines
}

/// The brackets a run of tokens leaves open, counted up to a heredoc opener (its body is text).
fn net_brackets(tokens: &[Token]) -> i64 {
    let mut n = 0;
    for t in tokens {
        n += t.bracket_change();
        if t.kind == Kind::OHeredoc {
            break;
        }
    }
    n
}

/// hclwrite's indentation: a line that opens brackets indents the following lines one level
/// however many it opens, and the lines that close them come back out.
fn format_indent(tokens: &mut [Token], lines: &[FmtLine]) {
    let mut indents: Vec<i64> = Vec::new();
    for line in lines {
        if tokens[line.start].kind == Kind::Newline {
            tokens[line.start].spaces = 0;
            continue;
        }
        let net = net_brackets(&tokens[line.start..line.assign])
            + net_brackets(&tokens[line.assign..line.comment]);
        let level = if net > 0 {
            let level = indents.len();
            indents.push(net);
            level
        } else {
            let mut closed = -net;
            while closed > 0 {
                let Some(top) = indents.last_mut() else { break };
                if closed >= *top {
                    closed -= *top;
                    indents.pop();
                } else {
                    *top -= closed;
                    closed = 0;
                }
            }
            indents.len()
        };
        tokens[line.start].spaces = 2 * level;
    }
}

/// Whether hclwrite puts a space between `subject` and `after`.
fn space_after(subject: &Token, before: Option<&Token>, after: &Token) -> bool {
    use Kind as K;
    let (s, a) = (subject.kind, after.kind);
    match () {
        () if a == K::Newline => false,
        () if s == K::Ident && a == K::OParen => false,
        () if (s == K::Ident && a == K::DoubleColon) || (s == K::DoubleColon && a == K::Ident) => {
            false
        }
        () if s == K::Dot || a == K::Dot => false,
        () if a == K::Comma || a == K::Ellipsis => false,
        () if s == K::Comma => true,
        () if matches!(s, K::QuotedLit | K::StringLit | K::OQuote | K::OHeredoc)
            || matches!(a, K::QuotedLit | K::StringLit | K::CQuote | K::CHeredoc) =>
        {
            false
        }
        () if s == K::Ident
            && subject.text == "in"
            && before.is_some_and(|b| b.kind == K::Ident) =>
        {
            true
        }
        () if a == K::OBrack
            && (s == K::Ident || s == K::Number || subject.bracket_change() < 0) =>
        {
            false
        }
        // After nothing, an opening bracket, a separator or an operator, `-` is a negation.
        () if s == K::Minus => !matches!(
            before.map(|b| b.kind),
            None | Some(
                K::OParen
                    | K::OBrace
                    | K::OBrack
                    | K::Equal
                    | K::Separator
                    | K::Comma
                    | K::Minus
                    | K::Operator
                    | K::Bang
            )
        ),
        () if s == K::Bang => false,
        () if s == K::OBrace || a == K::CBrace => !(s == K::OBrace && a == K::CBrace),
        () if matches!(s, K::TemplateInterp | K::TemplateControl) && a == K::OBrace => true,
        () if s == K::CBrace && a == K::TemplateSeqEnd => true,
        () if s == K::TemplateSeqEnd && matches!(a, K::TemplateInterp | K::TemplateControl) => {
            false
        }
        () if subject.bracket_change() > 0 => false,
        () if after.bracket_change() < 0 => false,
        () => true,
    }
}

fn format_spaces(tokens: &mut [Token], lines: &[FmtLine]) {
    for line in lines {
        for (from, to) in [(line.start, line.assign), (line.assign, line.comment)] {
            if from < to && from == line.assign {
                tokens[from].spaces = 1;
            }
            for i in from..to.saturating_sub(1) {
                let before = (i > from).then(|| &tokens[i - 1]);
                let space = space_after(&tokens[i], before, &tokens[i + 1]);
                tokens[i + 1].spaces = usize::from(space);
            }
        }
    }
}

/// Aligns the `=` of consecutive one-line attributes, then the trailing comments of
/// consecutive lines that have one.
fn format_cells(tokens: &mut [Token], lines: &[FmtLine]) {
    align(tokens, lines, |l| {
        (l.assign < l.comment).then_some(l.assign)
    });
    align(tokens, lines, |l| (l.comment < l.end).then_some(l.comment));
}

/// Pads the cell that `cell` picks (its first token) on each run of consecutive lines that
/// have one, so that they all start one column after the longest text before them.
fn align(tokens: &mut [Token], lines: &[FmtLine], cell: impl Fn(&FmtLine) -> Option<usize>) {
    let mut i = 0;
    while i < lines.len() {
        if cell(&lines[i]).is_none() {
            i += 1;
            continue;
        }
        let j = (i..lines.len())
            .find(|&j| cell(&lines[j]).is_none())
            .unwrap_or(lines.len());
        let run: Vec<(usize, usize)> = lines[i..j]
            .iter()
            .filter_map(|l| cell(l).map(|c| (c, FmtLine::columns(tokens, l.start..c))))
            .collect();
        let width = run.iter().map(|(_, w)| *w).max().unwrap_or(0);
        for (c, w) in run {
            tokens[c].spaces = width - w + 1;
        }
        i = j;
    }
}

/// Formats one file's text exactly as hclwrite.Format (the engine of `terraform fmt`) does.
pub(crate) fn format_text(text: &str) -> String {
    let mut tokens = lex(text);
    let lines = lines_for_format(&tokens);
    format_indent(&mut tokens, &lines);
    format_spaces(&mut tokens, &lines);
    format_cells(&mut tokens, &lines);
    let mut out = String::with_capacity(text.len());
    for t in &tokens {
        for _ in 0..t.spaces {
            out.push(' ');
        }
        out.push_str(&t.text);
    }
    out
}

fn lex(text: &str) -> Vec<Token> {
    Lexer {
        src: text,
        pos: 0,
        tokens: Vec::new(),
        stack: Vec::new(),
    }
    .run()
}

/// Whether two texts are the same configuration: both parse, and they are the same tokens,
/// only the spaces between them differing. (hcl-rs bodies cannot tell: they keep a template's
/// text, so `"${a+1}"` and `"${a + 1}"` would differ there although they mean the same.)
pub(crate) fn same_meaning(a: &str, b: &str) -> bool {
    let same_tokens = lex(a)
        .iter()
        .map(|t| (t.kind, &t.text))
        .eq(lex(b).iter().map(|t| (t.kind, &t.text)));
    same_tokens && hcl::parse(a).is_ok() && hcl::parse(b).is_ok()
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
    fn indentation_spacing_alignment_and_blank_lines_follow_terraform() {
        let input = "resource \"aws_iam_user\" \"u\"{\nname=\"x\"\n    path   =   \"/\"\ntags = {\n a = \"b\"\n  long_key = \"c\"\n}\n}\n\n\n";
        let want = "resource \"aws_iam_user\" \"u\" {\n  name = \"x\"\n  path = \"/\"\n  tags = {\n    a        = \"b\"\n    long_key = \"c\"\n  }\n}\n\n\n";
        assert_eq!(
            format_text(input),
            want,
            "trailing blank lines are kept, as hclwrite keeps them"
        );
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
