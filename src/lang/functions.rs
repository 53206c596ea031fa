//! The built-in functions: Terraform's names and behaviour for the ones configurations use.
//!
//! A call with any unknown argument returns unknown, so functions never see a value that only
//! exists after apply.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::lang::value::{format_number, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type R = Result<Value, String>;

fn string(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            Ok(v.to_template_string().unwrap_or_default())
        }
        v => Err(format!("{what} must be a string, found {}", v.type_name())),
    }
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{what} must be a number, found {s:?}")),
        v => Err(format!("{what} must be a number, found {}", v.type_name())),
    }
}

fn list(v: &Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(items) => Ok(items.clone()),
        v => Err(format!("{what} must be a list, found {}", v.type_name())),
    }
}

fn object(v: &Value, what: &str) -> Result<BTreeMap<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        v => Err(format!(
            "{what} must be a map or object, found {}",
            v.type_name()
        )),
    }
}

/// Sorts and de-duplicates a list, the canonical form of a set.
pub(crate) fn sort_set(items: &mut Vec<Value>) {
    items.sort_by_key(|v| v.to_json().to_string());
    items.dedup();
}

/// What `FilesRead` holds instead of a digest for a file whose existence alone was asked
/// (`fileexists`); neither can be mistaken for a hex digest.
pub(crate) const FILE_PRESENT: &str = "present";
pub(crate) const FILE_ABSENT: &str = "absent";

/// The files that evaluation read, each with the SHA-256 of its content, by its path relative
/// to the configuration directory. Clones share one record: every context made for one
/// workspace reports into it, however many are made and dropped along the way.
#[derive(Debug, Clone, Default)]
pub struct FilesRead(Arc<Mutex<BTreeMap<String, String>>>);

impl FilesRead {
    /// Notes that `path` (as resolved against `base_dir`) was read with this content.
    pub(crate) fn record(&self, base_dir: &Path, path: &Path, content: &[u8]) {
        let digest = crate::lang::digest::sha256(content);
        self.map().insert(Self::key(base_dir, path), digest);
    }

    /// Notes that only whether `path` exists was asked. A content digest already recorded is
    /// kept: it proves existence too, and more.
    pub(crate) fn record_existence(&self, base_dir: &Path, path: &Path, exists: bool) {
        let marker = if exists { FILE_PRESENT } else { FILE_ABSENT };
        self.map()
            .entry(Self::key(base_dir, path))
            .or_insert_with(|| marker.to_string());
    }

    fn key(base_dir: &Path, path: &Path) -> String {
        path.strip_prefix(base_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still a map.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every file read so far, with its content digest.
    pub(crate) fn digests(&self) -> BTreeMap<String, String> {
        self.map().clone()
    }
}

/// What functions may reach besides their arguments: the configuration's directory, and the
/// record of what they read from it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Files {
    /// The directory `file()` reads relative to.
    pub(crate) base_dir: PathBuf,
    /// Where `file()` reports what it read.
    pub(crate) read: FilesRead,
}

/// One built-in function: its name, how many arguments it takes, what it does, and its
/// implementation. `skyform functions` and the README's list come from this table.
pub(crate) struct Function {
    pub(crate) name: &'static str,
    pub(crate) min_args: usize,
    /// `None`: any number from `min_args` up.
    pub(crate) max_args: Option<usize>,
    pub(crate) doc: &'static str,
    call: fn(&str, &[Value], &Files) -> R,
}

/// Every built-in function, in name order.
pub(crate) const FUNCTIONS: &[Function] = &[
    Function {
        name: "abs",
        min_args: 1,
        max_args: Some(1),
        doc: "The absolute value of a number.",
        call: f_abs,
    },
    Function {
        name: "alltrue",
        min_args: 1,
        max_args: Some(1),
        doc: "Whether every element of a list is true (`true` for an empty list).",
        call: f_alltrue,
    },
    Function {
        name: "anytrue",
        min_args: 1,
        max_args: Some(1),
        doc: "Whether any element of a list is true (`false` for an empty list).",
        call: f_anytrue,
    },
    Function {
        name: "base64decode",
        min_args: 1,
        max_args: Some(1),
        doc: "A Base64 string decoded; the result must be UTF-8 text.",
        call: f_base64decode,
    },
    Function {
        name: "base64encode",
        min_args: 1,
        max_args: Some(1),
        doc: "A string's UTF-8 bytes, Base64-encoded.",
        call: f_base64encode,
    },
    Function {
        name: "can",
        min_args: 1,
        max_args: Some(1),
        doc: "Whether an expression evaluates without an error (evaluated lazily, as Terraform does).",
        call: f_lazy,
    },
    Function {
        name: "chunklist",
        min_args: 2,
        max_args: Some(2),
        doc: "A list split into lists of at most `size` elements: `chunklist(list, size)`.",
        call: f_chunklist,
    },
    Function {
        name: "cidrhost",
        min_args: 2,
        max_args: Some(2),
        doc: "The address numbered `hostnum` in a prefix (negative counts from the end): `cidrhost(prefix, hostnum)`.",
        call: f_cidrhost,
    },
    Function {
        name: "cidrnetmask",
        min_args: 1,
        max_args: Some(1),
        doc: "An IPv4 prefix's netmask, such as `255.255.0.0`.",
        call: f_cidrnetmask,
    },
    Function {
        name: "cidrsubnet",
        min_args: 3,
        max_args: Some(3),
        doc: "A subnet of an IPv4 or IPv6 prefix: `cidrsubnet(prefix, newbits, netnum)`.",
        call: f_cidrsubnet,
    },
    Function {
        name: "cidrsubnets",
        min_args: 1,
        max_args: None,
        doc: "Consecutive subnets of a prefix, one per `newbits`: `cidrsubnets(prefix, newbits...)`.",
        call: f_cidrsubnets,
    },
    Function {
        name: "coalesce",
        min_args: 0,
        max_args: None,
        doc: "The first argument that is neither null nor an empty string.",
        call: f_coalesce,
    },
    Function {
        name: "coalescelist",
        min_args: 0,
        max_args: None,
        doc: "The first argument that is a non-empty list.",
        call: f_coalescelist,
    },
    Function {
        name: "compact",
        min_args: 1,
        max_args: Some(1),
        doc: "A list of strings without its empty strings and nulls.",
        call: f_compact,
    },
    Function {
        name: "concat",
        min_args: 0,
        max_args: None,
        doc: "The lists given, joined into one list.",
        call: f_concat,
    },
    Function {
        name: "contains",
        min_args: 2,
        max_args: Some(2),
        doc: "Whether a list holds a value.",
        call: f_contains,
    },
    Function {
        name: "distinct",
        min_args: 1,
        max_args: Some(1),
        doc: "A list without its repeated elements, in first-seen order.",
        call: f_distinct,
    },
    Function {
        name: "element",
        min_args: 2,
        max_args: Some(2),
        doc: "The element at an index of a list, wrapping around past its end.",
        call: f_element,
    },
    Function {
        name: "endswith",
        min_args: 2,
        max_args: Some(2),
        doc: "Whether a string ends with a suffix.",
        call: f_starts_or_ends_with,
    },
    Function {
        name: "file",
        min_args: 1,
        max_args: Some(1),
        doc: "The text of a file, relative to the configuration directory (recorded for saved plans).",
        call: f_file,
    },
    Function {
        name: "filebase64",
        min_args: 1,
        max_args: Some(1),
        doc: "A file's bytes, Base64-encoded; the path is relative to the configuration directory.",
        call: f_filebase64,
    },
    Function {
        name: "fileexists",
        min_args: 1,
        max_args: Some(1),
        doc: "Whether a regular file exists at a path relative to the configuration directory.",
        call: f_fileexists,
    },
    Function {
        name: "fileset",
        min_args: 2,
        max_args: Some(2),
        doc: "The files under a directory that match a glob (`*`, `**`, `?`, `[...]`, `{a,b}`), relative to it, sorted: `fileset(path, pattern)`.",
        call: f_fileset,
    },
    Function {
        name: "flatten",
        min_args: 1,
        max_args: Some(1),
        doc: "A list of lists (to any depth) as one flat list.",
        call: f_flatten,
    },
    Function {
        name: "format",
        min_args: 0,
        max_args: None,
        doc: "A string from a Go-style format (`%s %d %f %t %q %v %%`) and values.",
        call: f_format,
    },
    Function {
        name: "formatlist",
        min_args: 1,
        max_args: None,
        doc: "`format` applied element by element across lists; other arguments repeat.",
        call: f_formatlist,
    },
    Function {
        name: "index",
        min_args: 2,
        max_args: Some(2),
        doc: "The index of the first element equal to a value: `index(list, value)`.",
        call: f_index,
    },
    Function {
        name: "join",
        min_args: 2,
        max_args: Some(2),
        doc: "The strings of a list joined with a separator.",
        call: f_join,
    },
    Function {
        name: "jsondecode",
        min_args: 1,
        max_args: Some(1),
        doc: "The value a JSON string encodes.",
        call: f_jsondecode,
    },
    Function {
        name: "jsonencode",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as a JSON string.",
        call: f_jsonencode,
    },
    Function {
        name: "keys",
        min_args: 1,
        max_args: Some(1),
        doc: "The keys of a map, sorted.",
        call: f_keys,
    },
    Function {
        name: "length",
        min_args: 1,
        max_args: Some(1),
        doc: "The number of elements of a list or map, or of characters of a string.",
        call: f_length,
    },
    Function {
        name: "lookup",
        min_args: 2,
        max_args: Some(3),
        doc: "The value of a key in a map, or a default when the key is absent.",
        call: f_lookup,
    },
    Function {
        name: "lower",
        min_args: 1,
        max_args: Some(1),
        doc: "A string in lower case.",
        call: f_lower,
    },
    Function {
        name: "max",
        min_args: 0,
        max_args: None,
        doc: "The largest of the numbers given.",
        call: f_max_or_min,
    },
    Function {
        name: "md5",
        min_args: 1,
        max_args: Some(1),
        doc: "The MD5 digest of a string's UTF-8 bytes, as lowercase hex.",
        call: f_md5,
    },
    Function {
        name: "merge",
        min_args: 0,
        max_args: None,
        doc: "The maps given, merged; later keys win.",
        call: f_merge,
    },
    Function {
        name: "min",
        min_args: 0,
        max_args: None,
        doc: "The smallest of the numbers given.",
        call: f_max_or_min,
    },
    Function {
        name: "one",
        min_args: 1,
        max_args: Some(1),
        doc: "The only element of a list, or null if it is empty; more is an error.",
        call: f_one,
    },
    Function {
        name: "range",
        min_args: 1,
        max_args: Some(3),
        doc: "A list of numbers: `range(limit)`, `range(start, limit)`, `range(start, limit, step)`.",
        call: f_range,
    },
    Function {
        name: "regex",
        min_args: 2,
        max_args: Some(2),
        doc: "The first match of a pattern: the text, a list of its groups, or a map of its named groups.",
        call: f_regex,
    },
    Function {
        name: "regexall",
        min_args: 2,
        max_args: Some(2),
        doc: "Every match of a pattern, each as `regex` gives it; an empty list if none.",
        call: f_regexall,
    },
    Function {
        name: "replace",
        min_args: 3,
        max_args: Some(3),
        doc: "A string with every occurrence of a substring replaced.",
        call: f_replace,
    },
    Function {
        name: "reverse",
        min_args: 1,
        max_args: Some(1),
        doc: "A list in reverse order.",
        call: f_reverse,
    },
    Function {
        name: "setintersection",
        min_args: 1,
        max_args: None,
        doc: "The elements that every given set has.",
        call: f_setintersection,
    },
    Function {
        name: "setproduct",
        min_args: 1,
        max_args: None,
        doc: "Every combination of one element from each given list, as lists.",
        call: f_setproduct,
    },
    Function {
        name: "setunion",
        min_args: 1,
        max_args: None,
        doc: "The elements that any given set has.",
        call: f_setunion,
    },
    Function {
        name: "sha256",
        min_args: 1,
        max_args: Some(1),
        doc: "The SHA-256 digest of a string's UTF-8 bytes, as lowercase hex.",
        call: f_sha256,
    },
    Function {
        name: "slice",
        min_args: 3,
        max_args: Some(3),
        doc: "The elements from `start` up to, not including, `end`: `slice(list, start, end)`.",
        call: f_slice,
    },
    Function {
        name: "sort",
        min_args: 1,
        max_args: Some(1),
        doc: "A list of strings, sorted.",
        call: f_sort,
    },
    Function {
        name: "split",
        min_args: 2,
        max_args: Some(2),
        doc: "A string split at a separator into a list.",
        call: f_split,
    },
    Function {
        name: "startswith",
        min_args: 2,
        max_args: Some(2),
        doc: "Whether a string starts with a prefix.",
        call: f_starts_or_ends_with,
    },
    Function {
        name: "strrev",
        min_args: 1,
        max_args: Some(1),
        doc: "A string with its characters in reverse order.",
        call: f_strrev,
    },
    Function {
        name: "substr",
        min_args: 3,
        max_args: Some(3),
        doc: "Part of a string, by offset (negative counts from the end) and length (-1: to the end).",
        call: f_substr,
    },
    Function {
        name: "sum",
        min_args: 1,
        max_args: Some(1),
        doc: "The sum of a non-empty list of numbers.",
        call: f_sum,
    },
    Function {
        name: "templatefile",
        min_args: 2,
        max_args: Some(2),
        doc: "A template file rendered with the given variables, which are all it sees: `templatefile(path, vars)`.",
        call: f_lazy,
    },
    Function {
        name: "title",
        min_args: 1,
        max_args: Some(1),
        doc: "A string with the first letter of each word in upper case.",
        call: f_title,
    },
    Function {
        name: "tolist",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as a list.",
        call: f_tolist,
    },
    Function {
        name: "tomap",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as a map.",
        call: f_tomap,
    },
    Function {
        name: "tonumber",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as a number.",
        call: f_tonumber,
    },
    Function {
        name: "toset",
        min_args: 1,
        max_args: Some(1),
        doc: "A list as a set: sorted, without repeated elements.",
        call: f_toset,
    },
    Function {
        name: "tostring",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as a string.",
        call: f_tostring,
    },
    Function {
        name: "transpose",
        min_args: 1,
        max_args: Some(1),
        doc: "A map of lists of strings turned inside out: each string maps to the keys that listed it.",
        call: f_transpose,
    },
    Function {
        name: "trim",
        min_args: 2,
        max_args: Some(2),
        doc: "A string without the given characters at either end.",
        call: f_trim_family,
    },
    Function {
        name: "trimprefix",
        min_args: 2,
        max_args: Some(2),
        doc: "A string without a prefix, when it has it.",
        call: f_trim_family,
    },
    Function {
        name: "trimspace",
        min_args: 1,
        max_args: Some(1),
        doc: "A string without white space at either end.",
        call: f_trimspace,
    },
    Function {
        name: "trimsuffix",
        min_args: 2,
        max_args: Some(2),
        doc: "A string without a suffix, when it has it.",
        call: f_trim_family,
    },
    Function {
        name: "try",
        min_args: 1,
        max_args: None,
        doc: "The first argument that evaluates without an error (evaluated lazily, as Terraform does).",
        call: f_lazy,
    },
    Function {
        name: "type",
        min_args: 1,
        max_args: Some(1),
        doc: "A value's type in Terraform's notation, such as `object({a: string})` (Terraform offers it in its console only).",
        call: f_type,
    },
    Function {
        name: "upper",
        min_args: 1,
        max_args: Some(1),
        doc: "A string in upper case.",
        call: f_upper,
    },
    Function {
        name: "urlencode",
        min_args: 1,
        max_args: Some(1),
        doc: "A string encoded for a URL query, as Go's `url.QueryEscape` does.",
        call: f_urlencode,
    },
    Function {
        name: "values",
        min_args: 1,
        max_args: Some(1),
        doc: "The values of a map, in key order.",
        call: f_values,
    },
    Function {
        name: "yamldecode",
        min_args: 1,
        max_args: Some(1),
        doc: "A YAML document parsed into a value (one document; an empty string is null).",
        call: f_yamldecode,
    },
    Function {
        name: "yamlencode",
        min_args: 1,
        max_args: Some(1),
        doc: "A value as block-style YAML, every string double-quoted, as Terraform writes it.",
        call: f_yamlencode,
    },
    Function {
        name: "zipmap",
        min_args: 2,
        max_args: Some(2),
        doc: "A map from a list of keys and a list of values: `zipmap(keys, values)`.",
        call: f_zipmap,
    },
];

impl Function {
    /// How many arguments, for the reference: `1`, `2–3`, `1 or more`.
    fn arguments(&self) -> String {
        match self.max_args {
            Some(max) if max == self.min_args => max.to_string(),
            Some(max) => format!("{}–{max}", self.min_args),
            None => format!("{} or more", self.min_args),
        }
    }
}

/// The reference of every function, as a Markdown table: `skyform functions` prints it, and
/// the README holds it (a test keeps the two equal).
pub(crate) fn reference_markdown() -> String {
    let mut out = String::from("| function | arguments | result |\n|---|---|---|\n");
    for f in FUNCTIONS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.name,
            f.arguments(),
            f.doc
        ));
    }
    out
}

/// The function named `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Calls a function: an unknown argument makes the result unknown, and the argument count is
/// checked against the table before the function runs.
pub(crate) fn call(name: &str, args: &[Value], files: &Files) -> R {
    // As in Terraform, the length and keys of a collection are known once the collection
    // is, even while its elements are not: `count = length(aws_iam_user.u)` plans.
    let shape_only = matches!(name, "length" | "keys");
    let unknown = if shape_only {
        args.iter().any(|a| matches!(a, Value::Unknown))
    } else {
        args.iter().any(Value::contains_unknown)
    };
    if unknown {
        return Ok(Value::Unknown);
    }
    let f = lookup(name).ok_or_else(|| format!("there is no function named {name:?}"))?;
    let given = args.len();
    let too_many = f.max_args.is_some_and(|max| given > max);
    if given < f.min_args || too_many {
        return Err(match f.max_args {
            Some(max) if max == f.min_args => {
                format!("takes {max} argument(s), got {given}")
            }
            Some(max) => format!("takes {} to {max} arguments, got {given}", f.min_args),
            None => format!("takes at least {} argument(s), got {given}", f.min_args),
        });
    }
    (f.call)(name, args, files)
}

// The implementations, one per function (a few share one), named `f_` and the function.

fn f_jsonencode(_name: &str, a: &[Value], _files: &Files) -> R {
    serde_json::to_string(&a[0].to_json())
        .map(Value::String)
        .map_err(|e| e.to_string())
}

fn f_jsondecode(_name: &str, a: &[Value], _files: &Files) -> R {
    let s = string(&a[0], "the argument")?;
    serde_json::from_str::<serde_json::Value>(&s)
        .map(|j| Value::from_json(&j))
        .map_err(|e| format!("invalid JSON: {e}"))
}

fn f_file(_name: &str, a: &[Value], files: &Files) -> R {
    let (path, bytes) = read_file(files, &string(&a[0], "the path")?)?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// Reads a file relative to the configuration directory and records that it did, so that a
/// saved plan can prove the file unchanged at apply.
pub(crate) fn read_file(files: &Files, relative: &str) -> Result<(PathBuf, Vec<u8>), String> {
    let path = files.base_dir.join(relative);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    files.read.record(&files.base_dir, &path, &bytes);
    Ok((path, bytes))
}

fn f_format(_name: &str, a: &[Value], _files: &Files) -> R {
    if a.is_empty() {
        return Err("takes a format string and its values".into());
    }
    format(&string(&a[0], "the format")?, &a[1..]).map(Value::String)
}

fn f_join(_name: &str, a: &[Value], _files: &Files) -> R {
    let sep = string(&a[0], "the separator")?;
    let parts = list(&a[1], "the list")?
        .iter()
        .map(|v| string(v, "each element"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::String(parts.join(&sep)))
}

fn f_split(_name: &str, a: &[Value], _files: &Files) -> R {
    let sep = string(&a[0], "the separator")?;
    let s = string(&a[1], "the string")?;
    if sep.is_empty() {
        return Err("the separator must not be empty".into());
    }
    Ok(Value::List(
        s.split(sep.as_str()).map(Value::string).collect(),
    ))
}

fn f_lower(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, str::to_lowercase)
}

fn f_upper(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, str::to_uppercase)
}

fn f_trimspace(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, |s| s.trim().to_string())
}

fn f_title(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, |s| {
        s.split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or(String::new(), |f| {
                    f.to_uppercase().collect::<String>() + c.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn f_replace(_name: &str, a: &[Value], _files: &Files) -> R {
    let (s, from, to) = (
        string(&a[0], "the string")?,
        string(&a[1], "the search")?,
        string(&a[2], "the replacement")?,
    );
    if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
        return Err("regular expressions are not supported; give a plain substring".into());
    }
    Ok(Value::String(s.replace(&from, &to)))
}

fn f_trim_family(name: &str, a: &[Value], _files: &Files) -> R {
    let (s, t) = (
        string(&a[0], "the string")?,
        string(&a[1], "the second argument")?,
    );
    Ok(Value::String(match name {
        "trimprefix" => s.strip_prefix(t.as_str()).unwrap_or(&s).to_string(),
        "trimsuffix" => s.strip_suffix(t.as_str()).unwrap_or(&s).to_string(),
        _ => s.trim_matches(|c| t.contains(c)).to_string(),
    }))
}

fn f_starts_or_ends_with(name: &str, a: &[Value], _files: &Files) -> R {
    let (s, p) = (string(&a[0], "the string")?, string(&a[1], "the affix")?);
    Ok(Value::Bool(if name == "startswith" {
        s.starts_with(&p)
    } else {
        s.ends_with(&p)
    }))
}

fn f_substr(_name: &str, a: &[Value], _files: &Files) -> R {
    let s: Vec<char> = string(&a[0], "the string")?.chars().collect();
    let off = number(&a[1], "the offset")? as i64;
    let len = number(&a[2], "the length")? as i64;
    // A string longer than `i64::MAX` characters cannot be in memory.
    let chars = i64::try_from(s.len()).unwrap_or(i64::MAX);
    let start = if off < 0 {
        (chars + off).max(0)
    } else {
        off.min(chars)
    } as usize;
    let end = if len < 0 {
        s.len()
    } else {
        (start + len as usize).min(s.len())
    };
    Ok(Value::String(s[start..end].iter().collect()))
}

fn f_merge(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out = BTreeMap::new();
    for v in a {
        if !v.is_null() {
            out.extend(object(v, "each argument")?);
        }
    }
    Ok(Value::Object(out))
}

fn f_concat(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out = Vec::new();
    for v in a {
        out.extend(list(v, "each argument")?);
    }
    Ok(Value::List(out))
}

fn f_flatten(_name: &str, a: &[Value], _files: &Files) -> R {
    fn flat(v: Vec<Value>, out: &mut Vec<Value>) {
        for i in v {
            match i {
                Value::List(inner) => flat(inner, out),
                other => out.push(other),
            }
        }
    }
    let mut out = Vec::new();
    flat(list(&a[0], "the argument")?, &mut out);
    Ok(Value::List(out))
}

fn f_length(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::Number(match &a[0] {
        Value::List(i) => i.len(),
        Value::Object(m) => m.len(),
        Value::String(s) => s.chars().count(),
        v => return Err(format!("cannot take the length of a {}", v.type_name())),
    } as f64))
}

fn f_lookup(_name: &str, a: &[Value], _files: &Files) -> R {
    let m = object(&a[0], "the first argument")?;
    let k = string(&a[1], "the key")?;
    match (m.get(&k), a.get(2)) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.clone()),
        (None, None) => Err(format!("no key {k:?} and no default")),
    }
}

fn f_keys(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::List(
        object(&a[0], "the argument")?
            .into_keys()
            .map(Value::String)
            .collect(),
    ))
}

fn f_values(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::List(
        object(&a[0], "the argument")?.into_values().collect(),
    ))
}

fn f_contains(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::Bool(
        list(&a[0], "the first argument")?.contains(&a[1]),
    ))
}

fn f_element(_name: &str, a: &[Value], _files: &Files) -> R {
    let l = list(&a[0], "the first argument")?;
    if l.is_empty() {
        return Err("cannot take an element of an empty list".into());
    }
    let i = number(&a[1], "the index")?;
    if i < 0.0 {
        return Err("the index must not be negative".into());
    }
    Ok(l[(i as usize) % l.len()].clone())
}

fn f_coalesce(_name: &str, a: &[Value], _files: &Files) -> R {
    a.iter()
        .find(|v| !v.is_null() && *v != &Value::string(""))
        .cloned()
        .ok_or_else(|| "no non-null, non-empty argument".into())
}

fn f_distinct(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out: Vec<Value> = Vec::new();
    for v in list(&a[0], "the argument")? {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(Value::List(out))
}

fn f_sort(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut s = list(&a[0], "the argument")?
        .iter()
        .map(|v| string(v, "each element"))
        .collect::<Result<Vec<_>, _>>()?;
    s.sort();
    Ok(Value::List(s.into_iter().map(Value::String).collect()))
}

fn f_toset(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut items = list(&a[0], "the argument")?;
    sort_set(&mut items);
    Ok(Value::List(items))
}

fn f_tolist(_name: &str, a: &[Value], _files: &Files) -> R {
    list(&a[0], "the argument").map(Value::List)
}

fn f_tomap(_name: &str, a: &[Value], _files: &Files) -> R {
    object(&a[0], "the argument").map(Value::Object)
}

fn f_tostring(_name: &str, a: &[Value], _files: &Files) -> R {
    if a[0].is_null() {
        return Ok(Value::Null);
    }
    string(&a[0], "the argument").map(Value::String)
}

fn f_tonumber(_name: &str, a: &[Value], _files: &Files) -> R {
    if a[0].is_null() {
        return Ok(Value::Null);
    }
    number(&a[0], "the argument").map(Value::Number)
}

fn f_abs(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::Number(number(&a[0], "the argument")?.abs()))
}

fn f_max_or_min(name: &str, a: &[Value], _files: &Files) -> R {
    let ns = a
        .iter()
        .map(|v| number(v, "each argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let f = if name == "max" { f64::max } else { f64::min };
    ns.into_iter()
        .reduce(f)
        .map(Value::Number)
        .ok_or_else(|| "takes at least one number".into())
}

fn f_cidrsubnet(_name: &str, a: &[Value], _files: &Files) -> R {
    cidrsubnet(
        &string(&a[0], "the prefix")?,
        number(&a[1], "newbits")?,
        number(&a[2], "netnum")?,
    )
    .map(Value::String)
}

fn f_range(_name: &str, a: &[Value], _files: &Files) -> R {
    let n = a
        .iter()
        .map(|v| number(v, "each argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, limit) = match n[..] {
        [limit] => (0.0, limit),
        [start, limit, ..] => (start, limit),
        [] => return Err("must have one, two, or three arguments".into()),
    };
    // Terraform counts down by default when the limit is below the start.
    let step = n
        .get(2)
        .copied()
        .unwrap_or(if limit < start { -1.0 } else { 1.0 });
    if step == 0.0 {
        return Err("step must not be zero".into());
    }
    let down = step < 0.0;
    if down && limit > start {
        return Err("end must be less than start when step is negative".into());
    }
    if !down && limit < start {
        return Err("end must be greater than start when step is positive".into());
    }
    let mut out = Vec::new();
    let mut v = start;
    while (down && v > limit) || (!down && v < limit) {
        // Terraform's artificial limit, so a typo cannot exhaust memory.
        if out.len() >= 1024 {
            return Err("more than 1024 values were generated; either decrease the difference between start and end or use a smaller step".into());
        }
        out.push(Value::Number(v));
        v += step;
    }
    Ok(Value::List(out))
}

fn f_zipmap(_name: &str, a: &[Value], _files: &Files) -> R {
    let keys = list(&a[0], "the keys")?;
    let values = list(&a[1], "the values")?;
    if keys.len() != values.len() {
        return Err(format!(
            "number of keys ({}) does not match number of values ({})",
            keys.len(),
            values.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in keys.iter().zip(values) {
        out.insert(string(k, "each key")?, v);
    }
    Ok(Value::Object(out))
}

fn f_one(_name: &str, a: &[Value], _files: &Files) -> R {
    let l = list(&a[0], "the argument")?;
    match l.len() {
        0 => Ok(Value::Null),
        1 => Ok(l[0].clone()),
        _ => Err("must be a list, set, or tuple value with either zero or one elements".into()),
    }
}

fn f_compact(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out = Vec::new();
    for v in list(&a[0], "the argument")? {
        if !v.is_null() {
            let s = string(&v, "each element")?;
            if !s.is_empty() {
                out.push(Value::String(s));
            }
        }
    }
    Ok(Value::List(out))
}

fn f_coalescelist(_name: &str, a: &[Value], _files: &Files) -> R {
    for v in a {
        if !v.is_null() && !list(v, "each argument")?.is_empty() {
            return Ok(v.clone());
        }
    }
    Err("no non-null arguments".into())
}

fn f_reverse(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut l = list(&a[0], "the argument")?;
    l.reverse();
    Ok(Value::List(l))
}

/// A whole, non-negative number, as an index or a count.
fn whole(v: &Value, what: &str) -> Result<usize, String> {
    let n = number(v, what)?;
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!("{what} must be a whole, non-negative number"));
    }
    Ok(n as usize)
}

fn f_slice(_name: &str, a: &[Value], _files: &Files) -> R {
    let l = list(&a[0], "the first argument")?;
    let start = whole(&a[1], "the start index")?;
    let end = whole(&a[2], "the end index")?;
    if end > l.len() {
        return Err("end index must not be greater than the length of the list".into());
    }
    if start > end {
        return Err("start index must not be greater than end index".into());
    }
    Ok(Value::List(l[start..end].to_vec()))
}

fn f_index(_name: &str, a: &[Value], _files: &Files) -> R {
    list(&a[0], "the first argument")?
        .iter()
        .position(|v| v == &a[1])
        .map(|i| Value::Number(i as f64))
        .ok_or_else(|| "item not found".into())
}

fn f_chunklist(_name: &str, a: &[Value], _files: &Files) -> R {
    let l = list(&a[0], "the first argument")?;
    if number(&a[1], "the size")? < 0.0 {
        return Err("the size argument must be positive".into());
    }
    let size = whole(&a[1], "the size")?;
    // Size zero means one chunk holding everything, as in Terraform.
    if size == 0 {
        return Ok(Value::List(vec![Value::List(l)]));
    }
    Ok(Value::List(
        l.chunks(size).map(|c| Value::List(c.to_vec())).collect(),
    ))
}

/// Every argument as a set: a sorted, de-duplicated list.
fn sets(a: &[Value]) -> Result<Vec<Vec<Value>>, String> {
    a.iter()
        .map(|v| {
            let mut s = list(v, "each argument")?;
            sort_set(&mut s);
            Ok(s)
        })
        .collect()
}

fn f_setunion(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out: Vec<Value> = sets(a)?.into_iter().flatten().collect();
    sort_set(&mut out);
    Ok(Value::List(out))
}

fn f_setintersection(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut all = sets(a)?.into_iter();
    let first = all.next().unwrap_or_default();
    let rest: Vec<Vec<Value>> = all.collect();
    Ok(Value::List(
        first
            .into_iter()
            .filter(|v| rest.iter().all(|s| s.contains(v)))
            .collect(),
    ))
}

fn f_setproduct(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut product = vec![Vec::new()];
    for l in a {
        let l = list(l, "each argument")?;
        product = product
            .into_iter()
            .flat_map(|prefix: Vec<Value>| {
                l.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    Ok(Value::List(product.into_iter().map(Value::List).collect()))
}

/// A list's elements as bools; Terraform converts the strings "true" and "false".
fn bools(v: &Value) -> Result<Vec<bool>, String> {
    list(v, "the argument")?
        .iter()
        .map(|e| match e {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" => Ok(true),
            Value::String(s) if s == "false" => Ok(false),
            e => Err(format!(
                "each element must be a bool, found {}",
                e.type_name()
            )),
        })
        .collect()
}

fn f_alltrue(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::Bool(bools(&a[0])?.into_iter().all(|b| b)))
}

fn f_anytrue(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::Bool(bools(&a[0])?.into_iter().any(|b| b)))
}

fn f_sum(_name: &str, a: &[Value], _files: &Files) -> R {
    let l = list(&a[0], "the argument")?;
    if l.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    l.iter()
        .map(|v| number(v, "each element"))
        .sum::<Result<f64, _>>()
        .map(Value::Number)
}

fn f_transpose(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, vs) in object(&a[0], "the argument")? {
        for v in list(&vs, "each value")? {
            out.entry(string(&v, "each element")?)
                .or_default()
                .push(Value::String(k.clone()));
        }
    }
    Ok(Value::Object(
        out.into_iter().map(|(k, v)| (k, Value::List(v))).collect(),
    ))
}

fn f_strrev(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, |s| s.chars().rev().collect())
}

fn f_sha256(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, |s| crate::lang::digest::sha256(s.as_bytes()))
}

fn f_formatlist(_name: &str, a: &[Value], _files: &Files) -> R {
    let spec = string(&a[0], "the format")?;
    let args = &a[1..];
    // Lists are iterated in step; any other argument is repeated in every result.
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in args.iter().enumerate() {
        if let Value::List(items) = v {
            match len {
                Some((n, j)) if n != items.len() => {
                    return Err(format!(
                        "argument {} has length {}, which is inconsistent with argument {} of length {n}",
                        i + 1,
                        items.len(),
                        j + 1
                    ))
                }
                None => len = Some((items.len(), i)),
                Some(_) => {}
            }
        }
    }
    let rows = len.map_or(1, |(n, _)| n);
    (0..rows)
        .map(|row| {
            let row_args: Vec<Value> = args
                .iter()
                .map(|v| match v {
                    Value::List(items) => items[row].clone(),
                    v => v.clone(),
                })
                .collect();
            format(&spec, &row_args).map(Value::String)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::List)
}

fn f_base64encode(_name: &str, a: &[Value], _files: &Files) -> R {
    one_string(a, |s| aws_smithy_types::base64::encode(s.as_bytes()))
}

fn f_base64decode(_name: &str, a: &[Value], _files: &Files) -> R {
    let s = string(&a[0], "the argument")?;
    let bytes = aws_smithy_types::base64::decode(&s)
        .map_err(|_| format!("failed to decode base64 data {s:?}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the result of decoding the provided string is not valid UTF-8".into())
}

fn f_urlencode(_name: &str, a: &[Value], _files: &Files) -> R {
    // Go's `url.QueryEscape`, which Terraform uses: unreserved bytes stay, a space becomes
    // `+`, everything else is percent-encoded in upper case.
    one_string(a, |s| {
        s.bytes()
            .fold(String::with_capacity(s.len()), |mut out, b| {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        out.push(char::from(b));
                    }
                    b' ' => out.push('+'),
                    b => out.push_str(&format!("%{b:02X}")),
                }
                out
            })
    })
}

fn f_filebase64(_name: &str, a: &[Value], files: &Files) -> R {
    read_file(files, &string(&a[0], "the path")?)
        .map(|(_, bytes)| Value::String(aws_smithy_types::base64::encode(bytes)))
}

fn f_cidrhost(_name: &str, a: &[Value], _files: &Files) -> R {
    let net = parse_prefix(&string(&a[0], "the prefix")?)?;
    let hostnum = number(&a[1], "hostnum")?;
    if hostnum.fract() != 0.0 {
        return Err("hostnum must be a whole number".into());
    }
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let max_host = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
    let len = net.prefix_len();
    let too_big = |sign: &str| {
        format!(
            "prefix of {len} does not accommodate a host numbered {sign}{}",
            hostnum.abs()
        )
    };
    // A negative hostnum counts back from the last address, as in Terraform.
    let magnitude = hostnum.abs() as u128;
    if hostnum.abs() >= 2f64.powi(128) || magnitude > max_host {
        return Err(too_big(if hostnum < 0.0 { "-" } else { "" }));
    }
    let offset = if hostnum < 0.0 {
        max_host - magnitude + 1
    } else {
        magnitude
    };
    Ok(Value::String(match net.trunc() {
        IpNet::V4(n) => {
            let addr = u128::from(u32::from(n.network())) | offset;
            Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX)).to_string()
        }
        IpNet::V6(n) => Ipv6Addr::from(u128::from(n.network()) | offset).to_string(),
    }))
}

fn f_cidrnetmask(_name: &str, a: &[Value], _files: &Files) -> R {
    let prefix = string(&a[0], "the prefix")?;
    match parse_prefix(&prefix)? {
        IpNet::V4(n) => Ok(Value::String(n.netmask().to_string())),
        IpNet::V6(_) => Err(format!("IPv6 addresses cannot have a netmask: {prefix}")),
    }
}

fn f_cidrsubnets(_name: &str, a: &[Value], _files: &Files) -> R {
    let net = parse_prefix(&string(&a[0], "the prefix")?)?.trunc();
    let (width, family) = match net {
        IpNet::V4(_) => (32u32, 4),
        IpNet::V6(_) => (128, 6),
    };
    let base = u32::from(net.prefix_len());
    let start = match net {
        IpNet::V4(n) => u128::from(u32::from(n.network())),
        IpNet::V6(n) => u128::from(n.network()),
    };
    let all = u128::MAX.checked_shr(128 - width).unwrap_or(0);
    let host = |len: u32| all.checked_shr(len).unwrap_or(0);
    let mut lens = Vec::new();
    for v in &a[1..] {
        let newbits = number(v, "each newbits")?;
        if newbits < 1.0 || newbits.fract() != 0.0 {
            return Err("must extend prefix by at least one bit".into());
        }
        let len = base + newbits.min(256.0) as u32;
        if len > width {
            return Err(format!(
                "would extend prefix to {len} bits, which is too long for an IPv{family} address"
            ));
        }
        lens.push(len);
    }
    // Terraform allocates each subnet right after the previous one, aligned to its own size,
    // starting from the (virtual) subnet that ends just before the prefix.
    let mut current_last = start.wrapping_sub(1) & all;
    let mut after = None;
    let mut out = Vec::new();
    for len in lens {
        let last = (current_last & !host(len)) | host(len);
        let following = last.wrapping_add(1) & all;
        // Wrapping past the top is running out, except for the virtual subnet before 0.0.0.0/0.
        let rolled_over = last == all && after.is_some();
        if rolled_over || (following & !host(base) & all) != start {
            let after = after.unwrap_or_else(|| net.to_string());
            return Err(format!(
                "not enough remaining address space for a subnet with a prefix of {len} bits after {after}"
            ));
        }
        current_last = following | host(len);
        let subnet = match net {
            IpNet::V4(_) => Ipv4Net::new(
                Ipv4Addr::from(u32::try_from(following).unwrap_or(0)),
                len as u8,
            )
            .map(IpNet::V4),
            IpNet::V6(_) => Ipv6Net::new(Ipv6Addr::from(following), len as u8).map(IpNet::V6),
        };
        let subnet = subnet.map_err(|e| e.to_string())?.to_string();
        out.push(Value::string(subnet.clone()));
        after = Some(subnet);
    }
    Ok(Value::List(out))
}

fn f_md5(_name: &str, a: &[Value], _files: &Files) -> R {
    use md5::Digest as _;
    one_string(a, |s| {
        crate::lang::digest::hex(&md5::Md5::digest(s.as_bytes()))
    })
}

/// A compiled pattern, and how a match becomes a value: the matched text when the pattern has
/// no capture group, a list of the groups when they are unnamed, a map when they are named.
fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    let re = regex::Regex::new(pattern)
        .map_err(|e| format!("invalid regular expression pattern: {e}"))?;
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.iter().any(Option::is_some) && names.iter().any(Option::is_none) {
        return Err(
            "invalid regular expression pattern: can't mix both named and unnamed capture groups"
                .into(),
        );
    }
    Ok(re)
}

fn regex_match(re: &regex::Regex, caps: &regex::Captures<'_>) -> Value {
    // An optional group that did not take part in the match is null, as in Terraform.
    let group = |m: Option<regex::Match<'_>>| m.map_or(Value::Null, |m| Value::string(m.as_str()));
    if re.captures_len() == 1 {
        return group(caps.get(0));
    }
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.iter().all(Option::is_some) {
        Value::Object(
            names
                .into_iter()
                .flatten()
                .map(|n| (n.to_string(), group(caps.name(n))))
                .collect(),
        )
    } else {
        Value::List((1..re.captures_len()).map(|i| group(caps.get(i))).collect())
    }
}

fn f_regex(_name: &str, a: &[Value], _files: &Files) -> R {
    let re = compile_regex(&string(&a[0], "the pattern")?)?;
    let s = string(&a[1], "the string")?;
    re.captures(&s)
        .map(|caps| regex_match(&re, &caps))
        .ok_or_else(|| "pattern did not match any part of the given string".into())
}

fn f_regexall(_name: &str, a: &[Value], _files: &Files) -> R {
    let re = compile_regex(&string(&a[0], "the pattern")?)?;
    let s = string(&a[1], "the string")?;
    Ok(Value::List(
        re.captures_iter(&s)
            .map(|caps| regex_match(&re, &caps))
            .collect(),
    ))
}

fn f_yamldecode(_name: &str, a: &[Value], _files: &Files) -> R {
    let s = string(&a[0], "the argument")?;
    let mut docs = serde_yaml_ng::Deserializer::from_str(&s);
    let Some(first) = docs.next() else {
        return Ok(Value::Null);
    };
    // A syntax error also ends the stream of documents, so it is reported before the count.
    let json: serde_json::Value =
        serde::Deserialize::deserialize(first).map_err(|e| format!("invalid YAML: {e}"))?;
    if docs.next().is_some() {
        return Err("only one YAML document is permitted".into());
    }
    Ok(Value::from_json(&json))
}

// Every value encodes, but the table fixes the signature.
#[allow(clippy::unnecessary_wraps)]
fn f_yamlencode(_name: &str, a: &[Value], _files: &Files) -> R {
    let mut out = String::new();
    yaml_block(&a[0], 0, &mut out);
    Ok(Value::String(out))
}

/// A value that YAML writes on one line: Terraform double-quotes every string (JSON's escapes
/// are valid in a double-quoted YAML scalar).
fn yaml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::List(items) if items.is_empty() => Some("[]".into()),
        Value::Object(m) if m.is_empty() => Some("{}".into()),
        Value::List(_) | Value::Object(_) => None,
        Value::Number(n) => Some(format_number(*n)),
        v => Some(v.to_json().to_string()),
    }
}

/// Block-style YAML in Terraform's layout: a sequence under a key is not indented further, a
/// mapping is indented by two, and a collection in a sequence starts on the `- ` line.
fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    if let Some(s) = yaml_scalar(v) {
        out.push_str(&format!("{pad}{s}\n"));
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push_str(&format!("{pad}{}:", Value::string(k.clone()).to_json()));
                if let Some(s) = yaml_scalar(v) {
                    out.push_str(&format!(" {s}\n"));
                } else {
                    out.push('\n');
                    let child = if matches!(v, Value::List(_)) {
                        indent
                    } else {
                        indent + 2
                    };
                    yaml_block(v, child, out);
                }
            }
        }
        Value::List(items) => {
            for item in items {
                let mut child = String::new();
                yaml_block(item, indent + 2, &mut child);
                out.push_str(&format!("{pad}- {}", &child[indent + 2..]));
            }
        }
        _ => {}
    }
}

/// Go's `doublestar` glob, which Terraform's `fileset` uses, as a regular expression over a
/// path with `/` separators: `*` and `?` stay within one name, `**` spans directories,
/// `[...]` is a class, `{a,b}` alternatives.
fn glob_regex(pattern: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut braces = 0usize;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` is zero or more directories; a final `**` is anything.
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:[^/]*/)*");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| format!("invalid pattern {pattern:?}: unclosed [ "))?;
                let class: String = chars[i + 1..i + end].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i += end + 1;
                continue;
            }
            '{' => {
                braces += 1;
                re.push_str("(?:");
            }
            '}' if braces > 0 => {
                braces -= 1;
                re.push(')');
            }
            ',' if braces > 0 => re.push('|'),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

fn f_fileset(_name: &str, a: &[Value], files: &Files) -> R {
    let dir = string(&a[0], "the path")?;
    let pattern = string(&a[1], "the pattern")?;
    let matcher = glob_regex(&pattern)?;
    let root = files.base_dir.join(&dir);
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(at) = stack.pop() {
        let entries =
            std::fs::read_dir(&at).map_err(|e| format!("cannot list {}: {e}", at.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if path.is_file() && matcher.is_match(&relative) {
                // A saved plan proves the matched files are still there.
                files.read.record_existence(&files.base_dir, &path, true);
                found.push(Value::String(relative));
            }
        }
    }
    sort_set(&mut found);
    Ok(Value::List(found))
}

/// A value's type as Terraform writes it.
fn type_text(v: &Value) -> String {
    match v {
        Value::Null | Value::Unknown => "dynamic".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::List(items) => format!(
            "tuple([{}])",
            items.iter().map(type_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "object({{{}}})",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", type_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// Every function has the table's signature, whether or not it can fail.
#[allow(clippy::unnecessary_wraps)]
fn f_type(_name: &str, a: &[Value], _files: &Files) -> R {
    Ok(Value::String(type_text(&a[0])))
}

fn f_fileexists(_name: &str, a: &[Value], files: &Files) -> R {
    let path = files.base_dir.join(string(&a[0], "the path")?);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {
            files.read.record_existence(&files.base_dir, &path, true);
            Ok(Value::Bool(true))
        }
        Ok(meta) => Err(format!(
            "{} is not a regular file, but {}",
            path.display(),
            if meta.is_dir() {
                "a directory"
            } else {
                "another kind of file"
            }
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            files.read.record_existence(&files.base_dir, &path, false);
            Ok(Value::Bool(false))
        }
        Err(e) => Err(format!("failed to stat {}: {e}", path.display())),
    }
}

/// `try` and `can` need their arguments unevaluated, and `templatefile` a context of its own,
/// so the evaluator runs them (`EvalCtx::try_or_can`, `EvalCtx::templatefile`); they are in
/// the table for the reference and name checks only.
fn f_lazy(name: &str, _a: &[Value], _files: &Files) -> R {
    Err(format!(
        "{name} takes expressions, which only the evaluator can give it"
    ))
}

fn one_string(a: &[Value], f: impl Fn(&str) -> String) -> R {
    Ok(Value::String(f(&string(&a[0], "the argument")?)))
}

/// Go-style `format`: `%s %d %f %t %q %v %%`, with an optional precision for `%f`.
fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision = String::new();
        while let Some(&d) = chars.peek() {
            if d == '.' || d.is_ascii_digit() {
                precision.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars.next().ok_or("the format ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(next)
            .ok_or_else(|| format!("not enough arguments for the format {spec:?}"))?;
        next += 1;
        match verb {
            's' => out.push_str(&string(arg, "a %s value")?),
            'd' => out.push_str(&format!("{}", number(arg, "a %d value")?.trunc() as i64)),
            'f' => {
                let n = number(arg, "a %f value")?;
                let p = precision
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .trim_start_matches('.')
                    .parse()
                    .unwrap_or(6);
                out.push_str(&format!("{n:.p$}"));
            }
            't' => match arg {
                Value::Bool(b) => out.push_str(&b.to_string()),
                v => {
                    return Err(format!(
                        "a %t value must be a bool, found {}",
                        v.type_name()
                    ))
                }
            },
            'q' => out.push_str(&crate::lang::value::quote(&string(arg, "a %q value")?)),
            'v' => out.push_str(&match arg {
                Value::Number(n) => format_number(*n),
                v => v
                    .to_template_string()
                    .unwrap_or_else(|| serde_json::to_string(&v.to_json()).unwrap_or_default()),
            }),
            other => return Err(format!("unsupported format verb %{other}")),
        }
    }
    if next < args.len() {
        return Err(format!("too many arguments for the format {spec:?}"));
    }
    Ok(out)
}

/// An IPv4 or IPv6 prefix such as `10.0.0.0/16`; host bits may be set.
fn parse_prefix(prefix: &str) -> Result<IpNet, String> {
    prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a CIDR prefix such as 10.0.0.0/16"))
}

/// Terraform's `cidrsubnet`: the `netnum`-th subnet of `prefix` that is `newbits` longer, for
/// IPv4 and IPv6 alike. Host bits set in `prefix` are ignored, as Terraform does. ipnet parses
/// and truncates; the subnet is the network address with `netnum` in the new bits.
pub(crate) fn cidrsubnet(prefix: &str, newbits: f64, netnum: f64) -> Result<String, String> {
    let net = parse_prefix(prefix)?;
    if newbits < 0.0 || newbits.fract() != 0.0 || netnum < 0.0 || netnum.fract() != 0.0 {
        return Err("newbits and netnum must be whole, non-negative numbers".into());
    }
    let (newbits, netnum) = (newbits as u32, netnum as u128);
    let (len, max) = (u32::from(net.prefix_len()), u32::from(net.max_prefix_len()));
    let newlen = len.saturating_add(newbits);
    if newlen > max {
        return Err(format!("cannot extend a /{len} prefix by {newbits} bits"));
    }
    if newbits < 128 && netnum >= (1u128 << newbits) {
        return Err(format!("netnum {netnum} does not fit in {newbits} bits"));
    }
    let offset = netnum.checked_shl(max - newlen).unwrap_or(0);
    // `newlen` is at most the family's maximum, checked above, so `new` cannot fail.
    let subnet = match net.trunc() {
        IpNet::V4(n) => {
            let base = u128::from(u32::from(n.network()));
            let addr = Ipv4Addr::from(u32::try_from(base | offset).unwrap_or(u32::MAX));
            Ipv4Net::new(addr, newlen as u8).map(IpNet::V4)
        }
        IpNet::V6(n) => {
            let addr = Ipv6Addr::from(u128::from(n.network()) | offset);
            Ipv6Net::new(addr, newlen as u8).map(IpNet::V6)
        }
    };
    subnet
        .map(|s| s.to_string())
        .map_err(|e| format!("cannot extend a /{len} prefix by {newbits} bits: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fileset_matches_doublestar_globs_relative_to_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "policies/a.json",
            "policies/b.json",
            "policies/deep/c.json",
            "policies/x.txt",
        ] {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "{}").unwrap();
        }
        let files = Files {
            base_dir: dir.path().to_path_buf(),
            read: FilesRead::default(),
        };
        let set = |pattern: &str| {
            call(
                "fileset",
                &[Value::string("policies"), Value::string(pattern)],
                &files,
            )
            .unwrap()
            .to_string()
        };
        assert_eq!(set("*.json"), "[\"a.json\", \"b.json\"]");
        assert_eq!(
            set("**/*.json"),
            "[\"a.json\", \"b.json\", \"deep/c.json\"]"
        );
        assert_eq!(set("{a,x}.*"), "[\"a.json\", \"x.txt\"]");
        assert_eq!(set("?.[jt]*"), "[\"a.json\", \"b.json\", \"x.txt\"]");
        assert!(files.read.digests().contains_key("policies/deep/c.json"));
    }

    #[test]
    fn type_names_a_value_as_terraform_does() {
        let files = Files::default();
        let v = Value::Object(BTreeMap::from([
            ("a".to_string(), Value::List(vec![Value::string("x")])),
            ("b".to_string(), Value::Bool(true)),
        ]));
        assert_eq!(
            call("type", &[v], &files).unwrap(),
            Value::string("object({a: tuple([string]), b: bool})")
        );
    }

    #[test]
    fn the_table_is_in_name_order_and_the_readme_lists_exactly_its_functions() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "FUNCTIONS is sorted and has no duplicate");
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"),
        )
        .unwrap();
        let start = readme.find("<!-- functions:begin -->\n").unwrap() + 25;
        let end = readme.find("<!-- functions:end -->").unwrap();
        assert_eq!(
            &readme[start..end],
            reference_markdown(),
            "README's function table is `skyform functions`' output"
        );
    }

    #[test]
    fn a_wrong_number_of_arguments_is_refused_before_the_function_runs() {
        let files = Files::default();
        assert_eq!(
            call("upper", &[], &files),
            Err("takes 1 argument(s), got 0".into())
        );
        assert_eq!(
            call("lookup", &[Value::Null], &files),
            Err("takes 2 to 3 arguments, got 1".into())
        );
        assert!(call("nope", &[], &files).is_err());
    }

    // Takes the `Vec` so that the many cases below read `c("f", vec![..])`.
    #[allow(clippy::needless_pass_by_value)]
    fn c(name: &str, args: Vec<Value>) -> R {
        call(name, &args, &Files::default())
    }

    #[test]
    fn cidrsubnet_matches_terraform() {
        assert_eq!(cidrsubnet("10.0.0.0/16", 8.0, 1.0).unwrap(), "10.0.1.0/24");
        assert_eq!(
            cidrsubnet("172.16.0.0/12", 4.0, 2.0).unwrap(),
            "172.18.0.0/16"
        );
        assert_eq!(
            cidrsubnet("fd00:fd12:3456:7890::/56", 16.0, 162.0).unwrap(),
            "fd00:fd12:3456:7800:a200::/72"
        );
        assert!(cidrsubnet("10.0.0.0/30", 8.0, 1.0).is_err());
        assert!(cidrsubnet("10.0.0.0/16", 2.0, 4.0).is_err());
    }

    #[test]
    fn format_supports_the_common_verbs() {
        let v = c(
            "format",
            vec![
                Value::string("%s-%d-%.2f-%q-%%"),
                Value::string("a"),
                Value::Number(3.7),
                Value::Number(1.0),
                Value::string("q"),
            ],
        );
        assert_eq!(v.unwrap(), Value::string("a-3-1.00-\"q\"-%"));
        assert!(c("format", vec![Value::string("%s")]).is_err());
    }

    #[test]
    fn jsonencode_sorts_keys_and_round_trips() {
        let obj = Value::Object(BTreeMap::from([
            ("b".into(), Value::Number(1.0)),
            ("a".into(), Value::List(vec![Value::Bool(true)])),
        ]));
        let s = c("jsonencode", vec![obj.clone()]).unwrap();
        assert_eq!(s, Value::string(r#"{"a":[true],"b":1}"#));
        assert_eq!(c("jsondecode", vec![s]).unwrap(), obj);
    }

    #[test]
    fn collection_functions_behave() {
        let l = |v: &[&str]| Value::List(v.iter().map(|s| Value::string(*s)).collect());
        assert_eq!(
            c("toset", vec![l(&["b", "a", "b"])]).unwrap(),
            l(&["a", "b"])
        );
        assert_eq!(
            c("concat", vec![l(&["a"]), l(&["b"])]).unwrap(),
            l(&["a", "b"])
        );
        assert_eq!(
            c("join", vec![Value::string(","), l(&["a", "b"])]).unwrap(),
            Value::string("a,b")
        );
        assert_eq!(
            c("split", vec![Value::string(","), Value::string("a,b")]).unwrap(),
            l(&["a", "b"])
        );
        assert_eq!(
            c("length", vec![l(&["a", "b"])]).unwrap(),
            Value::Number(2.0)
        );
        let m = Value::Object(BTreeMap::from([("k".into(), Value::string("v"))]));
        assert_eq!(
            c(
                "lookup",
                vec![m.clone(), Value::string("x"), Value::string("d")]
            )
            .unwrap(),
            Value::string("d")
        );
        assert_eq!(c("keys", vec![m.clone()]).unwrap(), l(&["k"]));
        assert_eq!(c("values", vec![m]).unwrap(), l(&["v"]));
        assert_eq!(
            c(
                "replace",
                vec![Value::string("a-b"), Value::string("-"), Value::string("_")]
            )
            .unwrap(),
            Value::string("a_b")
        );
        assert_eq!(
            c("tonumber", vec![Value::string("42")]).unwrap(),
            Value::Number(42.0)
        );
        assert_eq!(
            c("tostring", vec![Value::Number(42.0)]).unwrap(),
            Value::string("42")
        );
        assert!(c("tonumber", vec![Value::string("x")]).is_err());
    }

    fn n(v: f64) -> Value {
        Value::Number(v)
    }

    fn nums(v: &[f64]) -> Value {
        Value::List(v.iter().map(|x| Value::Number(*x)).collect())
    }

    fn strs(v: &[&str]) -> Value {
        Value::List(v.iter().map(|s| Value::string(*s)).collect())
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn range_counts_as_terraforms_examples_do() {
        assert_eq!(c("range", vec![n(3.0)]).unwrap(), nums(&[0.0, 1.0, 2.0]));
        assert_eq!(
            c("range", vec![n(1.0), n(4.0)]).unwrap(),
            nums(&[1.0, 2.0, 3.0])
        );
        assert_eq!(
            c("range", vec![n(1.0), n(8.0), n(2.0)]).unwrap(),
            nums(&[1.0, 3.0, 5.0, 7.0])
        );
        assert_eq!(
            c("range", vec![n(1.0), n(4.0), n(0.5)]).unwrap(),
            nums(&[1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
        );
        assert_eq!(
            c("range", vec![n(4.0), n(1.0)]).unwrap(),
            nums(&[4.0, 3.0, 2.0])
        );
        assert_eq!(
            c("range", vec![n(10.0), n(5.0), n(-2.0)]).unwrap(),
            nums(&[10.0, 8.0, 6.0])
        );
        assert_eq!(c("range", vec![n(0.0)]).unwrap(), nums(&[]));
        assert_eq!(
            c("range", vec![n(1.0), n(4.0), n(0.0)]),
            Err("step must not be zero".into())
        );
        assert_eq!(
            c("range", vec![n(1.0), n(4.0), n(-1.0)]),
            Err("end must be less than start when step is negative".into())
        );
        assert_eq!(
            c("range", vec![n(4.0), n(1.0), n(1.0)]),
            Err("end must be greater than start when step is positive".into())
        );
        assert_eq!(
            c("range", vec![n(1024.0)]).unwrap(),
            Value::List((0..1024).map(|i| n(f64::from(i))).collect())
        );
        assert!(c("range", vec![n(1025.0)])
            .unwrap_err()
            .starts_with("more than 1024 values were generated"));
    }

    #[test]
    fn zipmap_pairs_keys_with_values_and_refuses_unequal_lengths() {
        assert_eq!(
            c("zipmap", vec![strs(&["a", "b"]), nums(&[1.0, 2.0])]).unwrap(),
            map(&[("a", n(1.0)), ("b", n(2.0))])
        );
        assert_eq!(
            c("zipmap", vec![strs(&["a", "b"]), nums(&[1.0])]),
            Err("number of keys (2) does not match number of values (1)".into())
        );
    }

    #[test]
    fn one_gives_the_only_element_null_for_none_and_refuses_more() {
        assert_eq!(c("one", vec![nums(&[])]).unwrap(), Value::Null);
        assert_eq!(
            c("one", vec![strs(&["hello"])]).unwrap(),
            Value::string("hello")
        );
        assert_eq!(
            c("one", vec![strs(&["hello", "goodbye"])]),
            Err("must be a list, set, or tuple value with either zero or one elements".into())
        );
    }

    #[test]
    fn compact_drops_empty_strings_and_nulls() {
        let l = Value::List(vec![
            Value::string("a"),
            Value::string(""),
            Value::string("b"),
            Value::Null,
            Value::string("c"),
        ]);
        assert_eq!(c("compact", vec![l]).unwrap(), strs(&["a", "b", "c"]));
        assert!(c("compact", vec![Value::List(vec![strs(&["x"])])]).is_err());
    }

    #[test]
    fn coalescelist_gives_the_first_non_empty_list() {
        assert_eq!(
            c("coalescelist", vec![strs(&["a", "b"]), strs(&["c", "d"])]).unwrap(),
            strs(&["a", "b"])
        );
        assert_eq!(
            c("coalescelist", vec![strs(&[]), strs(&["c", "d"])]).unwrap(),
            strs(&["c", "d"])
        );
        assert_eq!(
            c("coalescelist", vec![strs(&[]), Value::Null]),
            Err("no non-null arguments".into())
        );
    }

    #[test]
    fn reverse_and_strrev_reverse_lists_and_characters() {
        assert_eq!(
            c("reverse", vec![nums(&[1.0, 2.0, 3.0])]).unwrap(),
            nums(&[3.0, 2.0, 1.0])
        );
        assert_eq!(
            c("strrev", vec![Value::string("hello")]).unwrap(),
            Value::string("olleh")
        );
        assert_eq!(
            c("strrev", vec![Value::string("a ☃")]).unwrap(),
            Value::string("☃ a")
        );
        assert!(c("reverse", vec![Value::string("abc")]).is_err());
        assert!(c("strrev", vec![strs(&["a"])]).is_err());
    }

    #[test]
    fn slice_takes_start_up_to_end_and_checks_both() {
        let l = strs(&["a", "b", "c", "d"]);
        assert_eq!(
            c("slice", vec![l.clone(), n(1.0), n(3.0)]).unwrap(),
            strs(&["b", "c"])
        );
        assert_eq!(
            c("slice", vec![l.clone(), n(1.0), n(5.0)]),
            Err("end index must not be greater than the length of the list".into())
        );
        assert_eq!(
            c("slice", vec![l, n(3.0), n(1.0)]),
            Err("start index must not be greater than end index".into())
        );
    }

    #[test]
    fn index_finds_the_first_equal_element() {
        let l = strs(&["a", "b", "c"]);
        assert_eq!(
            c("index", vec![l.clone(), Value::string("b")]).unwrap(),
            n(1.0)
        );
        assert_eq!(
            c("index", vec![l, Value::string("z")]),
            Err("item not found".into())
        );
    }

    #[test]
    fn chunklist_splits_into_lists_of_at_most_size() {
        let l = strs(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            c("chunklist", vec![l.clone(), n(2.0)]).unwrap(),
            Value::List(vec![strs(&["a", "b"]), strs(&["c", "d"]), strs(&["e"])])
        );
        assert_eq!(
            c("chunklist", vec![l.clone(), n(1.0)]).unwrap(),
            Value::List(
                ["a", "b", "c", "d", "e"]
                    .iter()
                    .map(|s| strs(&[s]))
                    .collect()
            )
        );
        assert_eq!(
            c("chunklist", vec![l.clone(), n(0.0)]).unwrap(),
            Value::List(vec![l.clone()])
        );
        assert_eq!(
            c("chunklist", vec![l, n(-1.0)]),
            Err("the size argument must be positive".into())
        );
    }

    #[test]
    fn set_functions_combine_sets_as_terraforms_examples_do() {
        assert_eq!(
            c(
                "setunion",
                vec![strs(&["a", "b"]), strs(&["b", "c"]), strs(&["d"])]
            )
            .unwrap(),
            strs(&["a", "b", "c", "d"])
        );
        assert_eq!(
            c(
                "setintersection",
                vec![strs(&["a", "b"]), strs(&["b", "c"]), strs(&["b", "d"])]
            )
            .unwrap(),
            strs(&["b"])
        );
        assert_eq!(
            c(
                "setproduct",
                vec![strs(&["development", "staging"]), strs(&["app1", "app2"])]
            )
            .unwrap(),
            Value::List(vec![
                strs(&["development", "app1"]),
                strs(&["development", "app2"]),
                strs(&["staging", "app1"]),
                strs(&["staging", "app2"]),
            ])
        );
        assert_eq!(
            c("setproduct", vec![strs(&["a"]), strs(&[])]).unwrap(),
            Value::List(vec![])
        );
        assert!(c("setunion", vec![Value::string("a")]).is_err());
    }

    #[test]
    fn alltrue_and_anytrue_read_bools_and_their_strings() {
        let l = |v: Vec<Value>| Value::List(v);
        let t = Value::Bool(true);
        let f = Value::Bool(false);
        assert_eq!(c("alltrue", vec![strs(&["true"])]).unwrap(), t);
        assert_eq!(
            c("alltrue", vec![l(vec![t.clone(), f.clone()])]).unwrap(),
            f
        );
        assert_eq!(c("alltrue", vec![l(vec![])]).unwrap(), t);
        assert_eq!(c("anytrue", vec![strs(&["true"])]).unwrap(), t);
        assert_eq!(
            c("anytrue", vec![l(vec![t.clone(), f.clone()])]).unwrap(),
            t
        );
        assert_eq!(c("anytrue", vec![l(vec![])]).unwrap(), f);
        assert!(c("alltrue", vec![strs(&["yes"])]).is_err());
    }

    #[test]
    fn sum_adds_numbers_and_refuses_an_empty_list() {
        assert_eq!(
            c("sum", vec![nums(&[10.0, 13.0, 6.0, 4.5])]).unwrap(),
            n(33.5)
        );
        assert_eq!(
            c("sum", vec![nums(&[])]),
            Err("cannot sum an empty list".into())
        );
        assert!(c("sum", vec![strs(&["x"])]).is_err());
    }

    #[test]
    fn transpose_turns_a_map_of_lists_inside_out() {
        let m = map(&[("a", strs(&["1", "2"])), ("b", strs(&["2", "3"]))]);
        assert_eq!(
            c("transpose", vec![m]).unwrap(),
            map(&[
                ("1", strs(&["a"])),
                ("2", strs(&["a", "b"])),
                ("3", strs(&["b"])),
            ])
        );
        assert!(c("transpose", vec![map(&[("a", Value::string("1"))])]).is_err());
    }

    #[test]
    fn sha256_hashes_the_utf8_bytes() {
        assert_eq!(
            c("sha256", vec![Value::string("hello world")]).unwrap(),
            Value::string("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
        assert!(c("sha256", vec![strs(&[])]).is_err());
    }

    #[test]
    fn formatlist_formats_lists_in_step_and_repeats_other_arguments() {
        assert_eq!(
            c(
                "formatlist",
                vec![Value::string("Hello, %s!"), strs(&["Valentina", "Ander"])]
            )
            .unwrap(),
            strs(&["Hello, Valentina!", "Hello, Ander!"])
        );
        assert_eq!(
            c(
                "formatlist",
                vec![
                    Value::string("%s, %s!"),
                    Value::string("Salutations"),
                    strs(&["Valentina", "Ander"])
                ]
            )
            .unwrap(),
            strs(&["Salutations, Valentina!", "Salutations, Ander!"])
        );
        assert_eq!(
            c("formatlist", vec![Value::string("%s"), Value::string("x")]).unwrap(),
            strs(&["x"])
        );
        assert_eq!(
            c(
                "formatlist",
                vec![Value::string("%s%s"), strs(&["a", "b"]), strs(&["c"])]
            ),
            Err(
                "argument 2 has length 1, which is inconsistent with argument 1 of length 2".into()
            )
        );
    }

    #[test]
    fn base64_round_trips_text_and_refuses_bad_input() {
        assert_eq!(
            c("base64encode", vec![Value::string("Hello World")]).unwrap(),
            Value::string("SGVsbG8gV29ybGQ=")
        );
        assert_eq!(
            c("base64decode", vec![Value::string("SGVsbG8gV29ybGQ=")]).unwrap(),
            Value::string("Hello World")
        );
        assert_eq!(
            c("base64decode", vec![Value::string("!!")]),
            Err("failed to decode base64 data \"!!\"".into())
        );
        assert_eq!(
            c("base64decode", vec![Value::string("/w==")]),
            Err("the result of decoding the provided string is not valid UTF-8".into())
        );
    }

    #[test]
    fn urlencode_escapes_as_a_query_string() {
        let u = |s: &str| c("urlencode", vec![Value::string(s)]).unwrap();
        assert_eq!(u("Hello World!"), Value::string("Hello+World%21"));
        assert_eq!(u("☃"), Value::string("%E2%98%83"));
        assert_eq!(
            u("foo:bar@localhost?foo=bar&bar=baz"),
            Value::string("foo%3Abar%40localhost%3Ffoo%3Dbar%26bar%3Dbaz")
        );
        assert_eq!(u("a-_.~z"), Value::string("a-_.~z"));
        assert!(c("urlencode", vec![strs(&[])]).is_err());
    }

    #[test]
    fn cidrhost_numbers_hosts_from_either_end() {
        let h = |p: &str, n: f64| c("cidrhost", vec![Value::string(p), Value::Number(n)]);
        assert_eq!(
            h("10.12.112.0/20", 16.0).unwrap(),
            Value::string("10.12.112.16")
        );
        assert_eq!(
            h("10.12.112.0/20", 268.0).unwrap(),
            Value::string("10.12.113.12")
        );
        assert_eq!(
            h("fd00:fd12:3456:7890:00a2::/72", 34.0).unwrap(),
            Value::string("fd00:fd12:3456:7890::22")
        );
        assert_eq!(h("10.0.0.0/30", -1.0).unwrap(), Value::string("10.0.0.3"));
        assert_eq!(h("10.0.0.0/30", -3.0).unwrap(), Value::string("10.0.0.1"));
        assert_eq!(
            h("10.0.0.0/30", 4.0),
            Err("prefix of 30 does not accommodate a host numbered 4".into())
        );
        assert_eq!(
            h("10.0.0.0/30", -4.0),
            Err("prefix of 30 does not accommodate a host numbered -4".into())
        );
        assert!(h("10.0.0.0", 1.0).is_err());
    }

    #[test]
    fn cidrnetmask_gives_ipv4_masks_only() {
        assert_eq!(
            c("cidrnetmask", vec![Value::string("172.16.0.0/12")]).unwrap(),
            Value::string("255.240.0.0")
        );
        assert_eq!(
            c("cidrnetmask", vec![Value::string("fd00::/8")]),
            Err("IPv6 addresses cannot have a netmask: fd00::/8".into())
        );
    }

    #[test]
    fn cidrsubnets_allocates_consecutive_aligned_subnets() {
        let s = |p: &str, bits: &[f64]| {
            let mut args = vec![Value::string(p)];
            args.extend(bits.iter().map(|b| Value::Number(*b)));
            c("cidrsubnets", args)
        };
        assert_eq!(
            s("10.1.0.0/16", &[4.0, 4.0, 8.0, 4.0]).unwrap(),
            strs(&[
                "10.1.0.0/20",
                "10.1.16.0/20",
                "10.1.32.0/24",
                "10.1.48.0/20"
            ])
        );
        assert_eq!(
            s("fd00:fd12:3456:7890::/56", &[16.0, 16.0, 16.0, 32.0]).unwrap(),
            strs(&[
                "fd00:fd12:3456:7800::/72",
                "fd00:fd12:3456:7800:100::/72",
                "fd00:fd12:3456:7800:200::/72",
                "fd00:fd12:3456:7800:300::/88",
            ])
        );
        assert_eq!(
            s("0.0.0.0/0", &[1.0, 1.0]).unwrap(),
            strs(&["0.0.0.0/1", "128.0.0.0/1"])
        );
        assert_eq!(s("10.0.0.0/8", &[]).unwrap(), strs(&[]));
        assert_eq!(
            s("10.0.0.0/30", &[1.0, 1.0, 1.0]),
            Err("not enough remaining address space for a subnet with a prefix of 31 bits after 10.0.0.2/31".into())
        );
        assert_eq!(
            s("10.0.0.0/30", &[3.0]),
            Err("would extend prefix to 33 bits, which is too long for an IPv4 address".into())
        );
        assert_eq!(
            s("10.0.0.0/8", &[0.0]),
            Err("must extend prefix by at least one bit".into())
        );
    }

    #[test]
    fn filebase64_encodes_the_bytes_and_records_the_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blob.bin"), [0xffu8, 0, b'a']).unwrap();
        let files = Files {
            base_dir: dir.path().to_path_buf(),
            read: FilesRead::default(),
        };
        assert_eq!(
            call("filebase64", &[Value::string("blob.bin")], &files).unwrap(),
            Value::string("/wBh")
        );
        assert_eq!(
            files.read.digests(),
            BTreeMap::from([(
                "blob.bin".to_string(),
                crate::lang::digest::sha256(&[0xff, 0, b'a'])
            )])
        );
        assert!(call("filebase64", &[Value::string("missing")], &files)
            .unwrap_err()
            .starts_with("cannot read"));
    }

    #[test]
    fn md5_hashes_the_utf8_bytes() {
        assert_eq!(
            c("md5", vec![Value::string("hello world")]).unwrap(),
            Value::string("5eb63bbbe01eeed093cb22bb8f5acdc3")
        );
        assert!(c("md5", vec![strs(&[])]).is_err());
    }

    #[test]
    fn regex_gives_text_groups_or_named_groups_as_terraforms_examples_do() {
        let r = |p: &str, s: &str| c("regex", vec![Value::string(p), Value::string(s)]);
        assert_eq!(
            r("[a-z]+", "53453453.345345aaabbbccc23454").unwrap(),
            Value::string("aaabbbccc")
        );
        assert_eq!(
            r(r"(\d\d\d\d)-(\d\d)-(\d\d)", "2019-02-01").unwrap(),
            strs(&["2019", "02", "01"])
        );
        assert_eq!(
            r(
                "^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?",
                "https://terraform.io/docs/"
            )
            .unwrap(),
            map(&[
                ("authority", Value::string("terraform.io")),
                ("scheme", Value::string("https"))
            ])
        );
        assert_eq!(
            r("(a)?(b)", "b").unwrap(),
            Value::List(vec![Value::Null, Value::string("b")])
        );
        assert_eq!(
            r("[a-z]+", "53453453.345345"),
            Err("pattern did not match any part of the given string".into())
        );
        assert!(r("(", "x")
            .unwrap_err()
            .starts_with("invalid regular expression pattern"));
        assert!(r("(?P<n>a)(b)", "ab")
            .unwrap_err()
            .ends_with("can't mix both named and unnamed capture groups"));
    }

    #[test]
    fn regexall_gives_every_match_or_an_empty_list() {
        let r = |p: &str, s: &str| c("regexall", vec![Value::string(p), Value::string(s)]);
        assert_eq!(
            r("[a-z]+", "1234abcd5678efgh9").unwrap(),
            strs(&["abcd", "efgh"])
        );
        assert_eq!(r("[a-z]+", "123456789").unwrap(), strs(&[]));
        assert_eq!(
            r("(\\d)([a-z])", "1a2b").unwrap(),
            Value::List(vec![strs(&["1", "a"]), strs(&["2", "b"])])
        );
        assert!(r("[", "x").is_err());
    }

    #[test]
    fn yamlencode_writes_terraforms_layout() {
        let y = |v: Value| c("yamlencode", vec![v]).unwrap();
        assert_eq!(
            y(map(&[("a", Value::string("b")), ("c", Value::string("d"))])),
            Value::string("\"a\": \"b\"\n\"c\": \"d\"\n")
        );
        assert_eq!(
            y(map(&[
                ("foo", nums(&[1.0, 2.0, 3.0])),
                ("bar", Value::string("baz"))
            ])),
            Value::string("\"bar\": \"baz\"\n\"foo\":\n- 1\n- 2\n- 3\n")
        );
        let inner = map(&[("a", Value::string("b")), ("c", Value::string("d"))]);
        assert_eq!(
            y(map(&[
                ("foo", Value::List(vec![n(1.0), inner, n(3.0)])),
                ("bar", Value::string("baz"))
            ])),
            Value::string("\"bar\": \"baz\"\n\"foo\":\n- 1\n- \"a\": \"b\"\n  \"c\": \"d\"\n- 3\n")
        );
        assert_eq!(
            y(map(&[
                ("m", map(&[("k", Value::Bool(true))])),
                ("e", strs(&[]))
            ])),
            Value::string("\"e\": []\n\"m\":\n  \"k\": true\n")
        );
        assert!(c("yamlencode", vec![]).is_err());
    }

    #[test]
    fn yamldecode_reads_one_document_and_round_trips_yamlencode() {
        let d = |s: &str| c("yamldecode", vec![Value::string(s)]);
        assert_eq!(
            d("hello: world").unwrap(),
            map(&[("hello", Value::string("world"))])
        );
        assert_eq!(d("true").unwrap(), Value::Bool(true));
        assert_eq!(
            d("{a: &foo [1, 2, 3], b: *foo}").unwrap(),
            map(&[("a", nums(&[1.0, 2.0, 3.0])), ("b", nums(&[1.0, 2.0, 3.0]))])
        );
        assert_eq!(d("").unwrap(), Value::Null);
        assert_eq!(
            d("a: 1\n---\nb: 2"),
            Err("only one YAML document is permitted".into())
        );
        assert!(d("a: [").unwrap_err().starts_with("invalid YAML"));
        let v = map(&[
            (
                "foo",
                Value::List(vec![n(1.5), strs(&["x\ny"]), Value::Null]),
            ),
            ("bar", map(&[("q", Value::string("\"quoted\": yes"))])),
        ]);
        let encoded = c("yamlencode", vec![v.clone()]).unwrap();
        assert_eq!(c("yamldecode", vec![encoded]).unwrap(), v);
    }

    #[test]
    fn fileexists_answers_for_regular_files_and_records_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let files = Files {
            base_dir: dir.path().to_path_buf(),
            read: FilesRead::default(),
        };
        let e = |p: &str| call("fileexists", &[Value::string(p)], &files);
        assert_eq!(e("here.txt").unwrap(), Value::Bool(true));
        assert_eq!(e("gone.txt").unwrap(), Value::Bool(false));
        assert!(e("sub")
            .unwrap_err()
            .contains("is not a regular file, but a directory"));
        assert_eq!(
            files.read.digests(),
            BTreeMap::from([
                ("gone.txt".to_string(), FILE_ABSENT.to_string()),
                ("here.txt".to_string(), FILE_PRESENT.to_string()),
            ])
        );
        // Reading the content afterwards records its digest, which proves more than presence;
        // asking again does not weaken it.
        call("file", &[Value::string("here.txt")], &files).unwrap();
        e("here.txt").unwrap();
        assert_eq!(
            files.read.digests()["here.txt"],
            crate::lang::digest::sha256(b"x")
        );
    }

    #[test]
    fn an_unknown_argument_makes_the_result_unknown() {
        assert_eq!(c("upper", vec![Value::Unknown]).unwrap(), Value::Unknown);
    }
}
