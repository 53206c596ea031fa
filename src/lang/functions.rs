//! The built-in functions: Terraform's names and behaviour for the ones configurations use.
//!
//! A call with any unknown argument returns unknown, so functions never see a value that only
//! exists after apply.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::lang::value::{format_number, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Every function name, for the "undefined function" check.
pub const NAMES: &[&str] = &[
    "abs",
    "cidrsubnet",
    "coalesce",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "file",
    "flatten",
    "format",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "replace",
    "sort",
    "split",
    "startswith",
    "substr",
    "title",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "upper",
    "values",
];

type R = Result<Value, String>;

fn arity(args: &[Value], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min || args.len() > max {
        return Err(if min == max {
            format!("takes {min} argument(s), got {}", args.len())
        } else {
            format!("takes {min} to {max} arguments, got {}", args.len())
        });
    }
    Ok(())
}

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
pub fn sort_set(items: &mut Vec<Value>) {
    items.sort_by_key(|v| v.to_json().to_string());
    items.dedup();
}

/// The files that evaluation read, each with the SHA-256 of its content, by its path relative
/// to the configuration directory. Clones share one record: every context made for one
/// workspace reports into it, however many are made and dropped along the way.
#[derive(Debug, Clone, Default)]
pub struct FilesRead(Arc<Mutex<BTreeMap<String, String>>>);

impl FilesRead {
    /// Notes that `path` (as resolved against `base_dir`) was read with this content.
    pub fn record(&self, base_dir: &Path, path: &Path, content: &[u8]) {
        let key = path.strip_prefix(base_dir).unwrap_or(path);
        let digest = crate::lang::digest::sha256(content);
        // A poisoned lock only means another thread panicked mid-insert; the map is still a map.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key.display().to_string(), digest);
    }

    /// Every file read so far, with its content digest.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What functions may reach besides their arguments: the configuration's directory, and the
/// record of what they read from it.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// The directory `file()` reads relative to.
    pub base_dir: PathBuf,
    /// Where `file()` reports what it read.
    pub read: FilesRead,
}

pub fn call(name: &str, args: Vec<Value>, files: &Files) -> R {
    if args.iter().any(Value::contains_unknown) {
        return Ok(Value::Unknown);
    }
    let a = &args;
    match name {
        "jsonencode" => {
            arity(a, 1, 1)?;
            serde_json::to_string(&a[0].to_json())
                .map(Value::String)
                .map_err(|e| e.to_string())
        }
        "jsondecode" => {
            arity(a, 1, 1)?;
            let s = string(&a[0], "the argument")?;
            serde_json::from_str::<serde_json::Value>(&s)
                .map(|j| Value::from_json(&j))
                .map_err(|e| format!("invalid JSON: {e}"))
        }
        "file" => {
            arity(a, 1, 1)?;
            let path = files.base_dir.join(string(&a[0], "the path")?);
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            files.read.record(&files.base_dir, &path, &bytes);
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| format!("{} is not UTF-8 text", path.display()))
        }
        "format" => {
            if a.is_empty() {
                return Err("takes a format string and its values".into());
            }
            format(&string(&a[0], "the format")?, &a[1..]).map(Value::String)
        }
        "join" => {
            arity(a, 2, 2)?;
            let sep = string(&a[0], "the separator")?;
            let parts = list(&a[1], "the list")?
                .iter()
                .map(|v| string(v, "each element"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::String(parts.join(&sep)))
        }
        "split" => {
            arity(a, 2, 2)?;
            let sep = string(&a[0], "the separator")?;
            let s = string(&a[1], "the string")?;
            if sep.is_empty() {
                return Err("the separator must not be empty".into());
            }
            Ok(Value::List(
                s.split(sep.as_str()).map(Value::string).collect(),
            ))
        }
        "lower" => one_string(a, |s| s.to_lowercase()),
        "upper" => one_string(a, |s| s.to_uppercase()),
        "trimspace" => one_string(a, |s| s.trim().to_string()),
        "title" => one_string(a, |s| {
            s.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map_or(String::new(), |f| {
                        f.to_uppercase().collect::<String>() + c.as_str()
                    })
                })
                .collect::<Vec<_>>()
                .join(" ")
        }),
        "replace" => {
            arity(a, 3, 3)?;
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
        "trim" | "trimprefix" | "trimsuffix" => {
            arity(a, 2, 2)?;
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
        "startswith" | "endswith" => {
            arity(a, 2, 2)?;
            let (s, p) = (string(&a[0], "the string")?, string(&a[1], "the affix")?);
            Ok(Value::Bool(if name == "startswith" {
                s.starts_with(&p)
            } else {
                s.ends_with(&p)
            }))
        }
        "substr" => {
            arity(a, 3, 3)?;
            let s: Vec<char> = string(&a[0], "the string")?.chars().collect();
            let off = number(&a[1], "the offset")? as i64;
            let len = number(&a[2], "the length")? as i64;
            let start = if off < 0 {
                (s.len() as i64 + off).max(0)
            } else {
                off.min(s.len() as i64)
            } as usize;
            let end = if len < 0 {
                s.len()
            } else {
                (start + len as usize).min(s.len())
            };
            Ok(Value::String(s[start..end].iter().collect()))
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for v in a {
                if !v.is_null() {
                    out.extend(object(v, "each argument")?);
                }
            }
            Ok(Value::Object(out))
        }
        "concat" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(list(v, "each argument")?);
            }
            Ok(Value::List(out))
        }
        "flatten" => {
            arity(a, 1, 1)?;
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
        "length" => {
            arity(a, 1, 1)?;
            Ok(Value::Number(match &a[0] {
                Value::List(i) => i.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                v => return Err(format!("cannot take the length of a {}", v.type_name())),
            } as f64))
        }
        "lookup" => {
            arity(a, 2, 3)?;
            let m = object(&a[0], "the first argument")?;
            let k = string(&a[1], "the key")?;
            match (m.get(&k), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("no key {k:?} and no default")),
            }
        }
        "keys" => {
            arity(a, 1, 1)?;
            Ok(Value::List(
                object(&a[0], "the argument")?
                    .into_keys()
                    .map(Value::String)
                    .collect(),
            ))
        }
        "values" => {
            arity(a, 1, 1)?;
            Ok(Value::List(
                object(&a[0], "the argument")?.into_values().collect(),
            ))
        }
        "contains" => {
            arity(a, 2, 2)?;
            Ok(Value::Bool(
                list(&a[0], "the first argument")?.contains(&a[1]),
            ))
        }
        "element" => {
            arity(a, 2, 2)?;
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
        "coalesce" => a
            .iter()
            .find(|v| !v.is_null() && *v != &Value::string(""))
            .cloned()
            .ok_or_else(|| "no non-null, non-empty argument".into()),
        "distinct" => {
            arity(a, 1, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in list(&a[0], "the argument")? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        }
        "sort" => {
            arity(a, 1, 1)?;
            let mut s = list(&a[0], "the argument")?
                .iter()
                .map(|v| string(v, "each element"))
                .collect::<Result<Vec<_>, _>>()?;
            s.sort();
            Ok(Value::List(s.into_iter().map(Value::String).collect()))
        }
        "toset" => {
            arity(a, 1, 1)?;
            let mut items = list(&a[0], "the argument")?;
            sort_set(&mut items);
            Ok(Value::List(items))
        }
        "tolist" => {
            arity(a, 1, 1)?;
            list(&a[0], "the argument").map(Value::List)
        }
        "tomap" => {
            arity(a, 1, 1)?;
            object(&a[0], "the argument").map(Value::Object)
        }
        "tostring" => {
            arity(a, 1, 1)?;
            if a[0].is_null() {
                return Ok(Value::Null);
            }
            string(&a[0], "the argument").map(Value::String)
        }
        "tonumber" => {
            arity(a, 1, 1)?;
            if a[0].is_null() {
                return Ok(Value::Null);
            }
            number(&a[0], "the argument").map(Value::Number)
        }
        "abs" => {
            arity(a, 1, 1)?;
            Ok(Value::Number(number(&a[0], "the argument")?.abs()))
        }
        "max" | "min" => {
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
        "cidrsubnet" => {
            arity(a, 3, 3)?;
            cidrsubnet(
                &string(&a[0], "the prefix")?,
                number(&a[1], "newbits")?,
                number(&a[2], "netnum")?,
            )
            .map(Value::String)
        }
        other => Err(format!("there is no function named {other:?}")),
    }
}

fn one_string(a: &[Value], f: impl Fn(&str) -> String) -> R {
    arity(a, 1, 1)?;
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

/// Terraform's `cidrsubnet`, for IPv4 and IPv6 prefixes.
pub fn cidrsubnet(prefix: &str, newbits: f64, netnum: f64) -> Result<String, String> {
    let (addr, len) = prefix
        .split_once('/')
        .ok_or_else(|| format!("{prefix:?} is not a CIDR prefix"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("{prefix:?} has an invalid prefix length"))?;
    if newbits < 0.0 || newbits.fract() != 0.0 || netnum < 0.0 || netnum.fract() != 0.0 {
        return Err("newbits and netnum must be whole, non-negative numbers".into());
    }
    let (newbits, netnum) = (newbits as u32, netnum as u128);
    let (bits, base): (u32, u128) = if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        (32, u128::from(u32::from(v4)))
    } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        (128, u128::from(v6))
    } else {
        return Err(format!("{addr:?} is not an IP address"));
    };
    let newlen = len + newbits;
    if len > bits || newlen > bits {
        return Err(format!("cannot extend a /{len} prefix by {newbits} bits"));
    }
    if newbits < 128 && netnum >= (1u128 << newbits) {
        return Err(format!("netnum {netnum} does not fit in {newbits} bits"));
    }
    let host_bits = bits - newlen;
    let mask = if len == 0 {
        0
    } else {
        (!0u128 << (bits - len)) & if bits == 32 { 0xffff_ffff } else { !0 }
    };
    let network = (base & mask) | netnum.checked_shl(host_bits).unwrap_or(0);
    Ok(if bits == 32 {
        format!("{}/{newlen}", Ipv4Addr::from(network as u32))
    } else {
        format!("{}/{newlen}", Ipv6Addr::from(network))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, args: Vec<Value>) -> R {
        call(name, args, &Files::default())
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

    #[test]
    fn an_unknown_argument_makes_the_result_unknown() {
        assert_eq!(c("upper", vec![Value::Unknown]).unwrap(), Value::Unknown);
    }
}
