//! Terraform's JSON syntax (`*.tf.json`), read by turning it into the native syntax that the
//! rest of the loader already reads, with a map back to the JSON's own positions.
//!
//! JSON values are HCL expressions as written (HCL's object syntax takes `"key": value`), so
//! every value is copied through as it is, and every diagnostic inside one points at the right
//! byte of the JSON file: `Sources` translates positions with the map built here. What JSON
//! cannot say by itself follows Terraform's rules for its JSON syntax: the nesting of object
//! keys gives block types and labels; a key is a nested block when the block's type has one by
//! that name (the schema's nested blocks, and Terraform's own: `lifecycle`, `validation`,
//! `dynamic`, ...); an array of objects there is several blocks; a string is a template, except
//! where Terraform reads a bare expression (a variable's `type`, `depends_on`, `provider`,
//! `providers`, `ignore_changes`, `replace_triggered_by`, and the addresses of `moved`,
//! `removed` and `import`); and `"//"` keys are comments.

use std::ops::Range;

use crate::lang::address::Mode;
use crate::lang::schema::Registry;

/// Native text made from a JSON file, and where its pieces came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Converted {
    pub(crate) text: String,
    /// `(offset in text, offset in the JSON)` at the start of each copied piece, in order.
    pub(crate) map: Vec<(usize, usize)>,
}

impl Converted {
    /// Nothing converted: every position is shown at `at` (a file whose JSON is invalid).
    pub(crate) fn identity(at: usize) -> Converted {
        Converted {
            text: String::new(),
            map: vec![(0, at)],
        }
    }

    /// The JSON offset of an offset in the native text.
    pub(crate) fn original(&self, offset: usize) -> usize {
        let at = self.map.partition_point(|(gen, _)| *gen <= offset);
        match at.checked_sub(1).and_then(|i| self.map.get(i)) {
            Some((gen, orig)) => orig + (offset - gen),
            None => 0,
        }
    }

    fn mark(&mut self, orig: usize) {
        self.map.push((self.text.len(), orig));
    }

    /// Copies `json[range]` as it is.
    fn copy(&mut self, json: &str, range: &Range<usize>) {
        self.mark(range.start);
        self.text
            .push_str(json.get(range.clone()).unwrap_or("null"));
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

/// What a block's body is, for deciding which keys are nested blocks.
#[derive(Clone, Copy)]
enum Body<'a> {
    Resource(Mode, &'a str),
    Variable,
    Provider,
    Terraform,
    Lifecycle,
    Removed,
    Check,
    Dynamic,
    /// A body whose keys are all attributes.
    Plain,
}

/// The blocks nested in a body of this kind, with their number of labels.
fn nested(kind: Body<'_>, key: &str, schemas: &Registry) -> Option<usize> {
    let labels = match (kind, key) {
        (Body::Resource(..), "lifecycle" | "timeouts" | "provisioner" | "connection")
        | (Body::Variable, "validation")
        | (Body::Provider, "default_tags")
        | (Body::Terraform, "required_providers" | "cloud")
        | (Body::Lifecycle, "precondition" | "postcondition")
        | (Body::Removed, "lifecycle")
        | (Body::Check, "assert")
        | (Body::Dynamic, "content") => 0,
        (Body::Resource(..), "dynamic") | (Body::Terraform, "backend") => 1,
        (Body::Check, "data") => 2,
        (Body::Resource(mode, type_name), _) => {
            let block = schemas
                .get(mode, type_name)
                .and_then(|s| s.attr(key))
                .is_some_and(|a| a.block);
            return block.then_some(0);
        }
        _ => return None,
    };
    Some(labels)
}

/// The body kind of a nested block.
fn inner_kind<'a>(kind: Body<'a>, key: &str) -> Body<'a> {
    match (kind, key) {
        (Body::Resource(..) | Body::Removed, "lifecycle") => Body::Lifecycle,
        (Body::Resource(..), "dynamic") => Body::Dynamic,
        _ => Body::Plain,
    }
}

/// Whether attribute `key` of a body of this kind is read as a bare expression.
fn bare(kind: Body<'_>, block_type: &str, key: &str) -> bool {
    match key {
        "depends_on" | "replace_triggered_by" | "ignore_changes" => true,
        "provider" => matches!(kind, Body::Resource(..)),
        "providers" => block_type == "module",
        "type" => matches!(kind, Body::Variable),
        "from" | "to" => matches!(block_type, "moved" | "removed" | "import"),
        _ => false,
    }
}

/// A JSON value with where it is; the text is known to be valid JSON (checked first).
#[derive(Debug)]
enum Json {
    Object(Vec<(String, Range<usize>, Json)>),
    Array(Vec<Json>),
    String(String, Range<usize>),
    /// A number, `true`, `false` or `null`, copied as it is.
    Other(Range<usize>),
}

impl Json {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Json::String(_, r) | Json::Other(r) => Some(r.clone()),
            Json::Object(_) | Json::Array(_) => None,
        }
    }
}

/// Reads valid JSON into a `Json` tree with spans.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn string(&mut self) -> Option<(String, Range<usize>)> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        let range = start..(i + 1).min(bytes.len());
        self.at = range.end;
        let value = serde_json::from_str(self.text.get(range.clone())?).ok()?;
        Some((value, range))
    }

    fn value(&mut self) -> Option<Json> {
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => {
                            self.at += 1;
                            return Some(Json::Object(items));
                        }
                        b',' => self.at += 1,
                        b'"' => {
                            let (key, span) = self.string()?;
                            self.skip_ws();
                            self.at += 1; // the ':'
                            let v = self.value()?;
                            items.push((key, span, v));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => {
                            self.at += 1;
                            return Some(Json::Array(items));
                        }
                        b',' => self.at += 1,
                        _ => items.push(self.value()?),
                    }
                }
            }
            b'"' => self.string().map(|(v, r)| Json::String(v, r)),
            _ => {
                let start = self.at;
                let rest = &self.text[start..];
                let len = rest
                    .find(|c: char| c == ',' || c == '}' || c == ']' || c.is_whitespace())
                    .unwrap_or(rest.len());
                self.at += len;
                Some(Json::Other(start..start + len))
            }
        }
    }
}

/// A decoded JSON string as an HCL quoted template: its literal parts escaped, its `${...}`
/// and `%{...}` parts (which may hold quoted strings of their own) as they are.
fn template_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = (c == '$' || c == '%') && chars.get(i + 1) == Some(&'{');
        let escaped_marker = opens && i > 0 && chars[i - 1] == c;
        if opens && !escaped_marker {
            // Copy through the matching `}`, minding nested braces and quoted strings.
            let (mut depth, mut quoted, mut j) = (0usize, false, i + 1);
            while j < chars.len() {
                match (quoted, chars[j]) {
                    (true, '\\') => {
                        j += 1;
                    }
                    (true | false, '"') => quoted = !quoted,
                    (false, '{') => depth += 1,
                    (false, '}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
        i += 1;
    }
    out.push('"');
    out
}

struct Writer<'a> {
    json: &'a str,
    schemas: &'static Registry,
    out: Converted,
}

type Problem = (String, Option<Range<usize>>);

/// A block's label or an attribute's name, with where its key is.
type Key = (String, Option<Range<usize>>);

fn object_items(e: &Json) -> Option<Vec<(Key, &Json)>> {
    let Json::Object(items) = e else {
        return None;
    };
    Some(
        items
            .iter()
            .filter(|(k, _, _)| k != "//")
            .map(|(k, span, v)| ((k.clone(), Some(span.clone())), v))
            .collect(),
    )
}

/// One object, or each object of an array: a block's body or several.
fn bodies(e: &Json) -> Vec<&Json> {
    match e {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

impl Writer<'_> {
    fn fail(what: &str, e: &Json) -> Problem {
        (format!("{what} in Terraform's JSON syntax"), e.span())
    }

    fn ident(&mut self, name: &str, span: Option<&Range<usize>>) {
        if let Some(s) = span {
            // The key's text starts after its opening quote.
            self.out.mark(s.start + 1);
        }
        self.out.push(name);
    }

    fn label(&mut self, name: &str, span: Option<&Range<usize>>) {
        self.out.push(" ");
        if let Some(s) = span {
            self.out.mark(s.start);
        }
        self.out.push(&crate::lang::value::quote(name));
    }

    /// `type "l1" "l2" { body }` for each body under `labels` levels of keys.
    fn blocks(
        &mut self,
        block_type: &str,
        type_span: Option<&Range<usize>>,
        value: &Json,
        labels: usize,
        got: &mut Vec<Key>,
        kind: Body<'_>,
    ) -> Result<(), Problem> {
        if got.len() < labels {
            let items = object_items(value).ok_or_else(|| {
                Self::fail(
                    &format!("a {block_type} block's labels must be object keys"),
                    value,
                )
            })?;
            for ((name, span), v) in items {
                got.push((name, span));
                self.blocks(block_type, type_span, v, labels, got, kind)?;
                got.pop();
            }
            return Ok(());
        }
        for body in bodies(value) {
            self.ident(block_type, type_span);
            for (name, span) in got.iter() {
                self.label(name, span.as_ref());
            }
            self.out.push(" {\n");
            self.body(body, block_type, kind)?;
            self.out.push("}\n");
        }
        Ok(())
    }

    fn body(&mut self, e: &Json, block_type: &str, kind: Body<'_>) -> Result<(), Problem> {
        let items =
            object_items(e).ok_or_else(|| Self::fail("a block's body must be an object", e))?;
        for ((key, span), value) in items {
            if let Some(labels) = nested(kind, &key, self.schemas) {
                let inner = inner_kind(kind, &key);
                self.blocks(&key, span.as_ref(), value, labels, &mut Vec::new(), inner)?;
                continue;
            }
            self.ident(&key, span.as_ref());
            self.out.push(" = ");
            if bare(kind, block_type, &key) {
                self.bare(value)?;
            } else {
                self.value(value)?;
            }
            self.out.push("\n");
        }
        Ok(())
    }

    /// A value whose strings are templates, as most of Terraform's JSON syntax reads them.
    fn value(&mut self, e: &Json) -> Result<(), Problem> {
        self.any(e, false)
    }

    /// A value whose strings are expressions, not templates.
    fn bare(&mut self, e: &Json) -> Result<(), Problem> {
        self.any(e, true)
    }

    fn any(&mut self, e: &Json, bare: bool) -> Result<(), Problem> {
        match e {
            Json::String(s, span) => {
                if bare {
                    self.out.mark(span.start + 1);
                    self.out.push(s);
                } else {
                    self.out.mark(span.start);
                    self.out.push(&template_literal(s));
                }
            }
            Json::Array(items) => {
                self.out.push("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(", ");
                    }
                    self.any(item, bare)?;
                }
                self.out.push("]");
            }
            Json::Object(items) => {
                self.out.push("{\n");
                for (key, span, v) in items.iter().filter(|(k, _, _)| k != "//") {
                    self.out.mark(span.start);
                    self.out.push(&crate::lang::value::quote(key));
                    self.out.push(" = ");
                    self.any(v, bare)?;
                    self.out.push("\n");
                }
                self.out.push("}");
            }
            Json::Other(range) => self.out.copy(self.json, range),
        }
        Ok(())
    }

    fn file(&mut self, root: &Json) -> Result<(), Problem> {
        let items = object_items(root)
            .ok_or_else(|| Self::fail("the file must be one object of block types", root))?;
        for ((key, span), value) in items {
            let span = span.as_ref();
            match key.as_str() {
                "resource" | "data" => {
                    let mode = if key == "data" {
                        Mode::Data
                    } else {
                        Mode::Managed
                    };
                    let types = object_items(value)
                        .ok_or_else(|| Self::fail("resource types must be object keys", value))?;
                    for ((type_name, type_span), names) in types {
                        let mut got = vec![(type_name.clone(), type_span)];
                        self.blocks(
                            &key,
                            span,
                            names,
                            2,
                            &mut got,
                            Body::Resource(mode, &type_name),
                        )?;
                    }
                }
                "variable" => self.blocks(&key, span, value, 1, &mut Vec::new(), Body::Variable)?,
                "provider" => self.blocks(&key, span, value, 1, &mut Vec::new(), Body::Provider)?,
                "output" | "module" => {
                    self.blocks(&key, span, value, 1, &mut Vec::new(), Body::Plain)?;
                }
                "check" => self.blocks(&key, span, value, 1, &mut Vec::new(), Body::Check)?,
                "terraform" => {
                    self.blocks(&key, span, value, 0, &mut Vec::new(), Body::Terraform)?;
                }
                "removed" => self.blocks(&key, span, value, 0, &mut Vec::new(), Body::Removed)?,
                "locals" | "moved" | "import" => {
                    self.blocks(&key, span, value, 0, &mut Vec::new(), Body::Plain)?;
                }
                // Anything else is reported by the loader as an unknown block type, by name.
                other => {
                    self.ident(other, span);
                    self.out.push(" {\n}\n");
                }
            }
        }
        Ok(())
    }
}

/// The native text of a `*.tf.json` file, or what is wrong with it and where.
pub(crate) fn convert(json: &str, schemas: &'static Registry) -> Result<Converted, Problem> {
    // Strict JSON first, for JSON's own error messages; HCL then gives the spans.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(json) {
        let offset = json
            .lines()
            .take(e.line().saturating_sub(1))
            .map(|l| l.len() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        return Err((format!("invalid JSON: {e}"), Some(offset..offset + 1)));
    }
    let root = Scanner { text: json, at: 0 }
        .value()
        .ok_or_else(|| ("invalid JSON".to_string(), None))?;
    let mut w = Writer {
        json,
        schemas,
        out: Converted::default(),
    };
    w.file(&root)?;
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraforms_json_syntax_becomes_the_same_blocks_with_positions_in_the_json() {
        let json = r#"{
  "variable": { "names": { "type": "set(string)", "default": ["a", "b"] } },
  "resource": {
    "aws_iam_user": {
      "u": {
        "//": "one user per name",
        "for_each": "${var.names}",
        "name": "user-${each.key}",
        "depends_on": ["aws_iam_role.r"],
        "lifecycle": { "ignore_changes": ["tags"] }
      }
    },
    "aws_security_group": {
      "sg": {
        "name": "sg",
        "ingress": [
          { "from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"] },
          { "from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"] }
        ]
      }
    },
    "aws_iam_role": { "r": { "name": "r", "assume_role_policy": "{}" } }
  },
  "moved": [{ "from": "aws_iam_user.old", "to": "aws_iam_user.u[\"a\"]" }]
}"#;
        let c = convert(json, crate::aws::schemas::registry()).unwrap();
        let body = hcl_edit::parser::parse_body(&c.text).unwrap();
        let blocks: Vec<String> = body
            .blocks()
            .map(|b| {
                let labels: Vec<&str> = b
                    .labels
                    .iter()
                    .map(hcl_edit::structure::BlockLabel::as_str)
                    .collect();
                format!("{} {}", b.ident.as_str(), labels.join(" "))
            })
            .collect();
        assert_eq!(
            blocks,
            [
                "variable names",
                "resource aws_iam_user u",
                "resource aws_security_group sg",
                "resource aws_iam_role r",
                "moved "
            ],
            "{}",
            c.text
        );
        assert!(c.text.contains("type = set(string)"), "{}", c.text);
        assert!(
            c.text.contains("depends_on = [aws_iam_role.r]"),
            "{}",
            c.text
        );
        assert!(c.text.contains("ignore_changes = [tags]"), "{}", c.text);
        assert_eq!(c.text.matches("ingress {").count(), 2, "{}", c.text);
        // A value keeps its place: `user-${each.key}` in the text is where it is in the JSON.
        let at = c.text.find("\"user-").unwrap();
        assert_eq!(c.original(at), json.find("\"user-").unwrap());
    }

    #[test]
    fn malformed_json_is_an_error_at_its_place() {
        let (message, span) =
            convert("{\n  \"resource\": ,\n}", crate::aws::schemas::registry()).unwrap_err();
        assert!(message.starts_with("invalid JSON"), "{message}");
        assert!(span.is_some());
    }
}
