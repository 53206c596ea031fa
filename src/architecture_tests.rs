//! The layout's rules, checked on the sources so that they stay true: dependencies between the
//! stage folders point one way (the table in `lib.rs`), and no two modules import each other,
//! directly or around a loop.
//!
//! A module is a file (`lang/eval.rs` is `lang::eval`; a folder's `mod.rs` is the folder). Its
//! dependencies are the `crate::…` paths it names, and in a folder's files `super::x`. Test code
//! (`#[cfg(test)] mod tests { … }` at the end of a file, and the test-only modules) may use
//! anything and is left out. A child's use of its own folder's `mod.rs` is not an arrow: the
//! folder declares the child, and that is its facade.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stage folders and the top-level modules, with what each may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("lang", &[]),
    ("state", &["lang"]),
    ("engine", &["lang", "state"]),
    ("render", &["engine", "state", "lang"]),
    ("aws", &["engine", "state", "lang"]),
    ("error", &["lang", "state", "engine"]),
    (
        "cli",
        &["lang", "state", "engine", "render", "aws", "error"],
    ),
];

/// Files that are only compiled for tests.
const TEST_ONLY: &[&str] = &[
    "architecture_tests.rs",
    "fuzz_tests.rs",
    "engine/tests.rs",
    "engine/lifecycle_tests.rs",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `lang/eval.rs` → `lang::eval`; `aws/mod.rs` → `aws`; `error.rs` → `error`.
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    let rel = rel.strip_suffix("/mod").unwrap_or(rel);
    rel.replace('/', "::")
}

fn folder_of(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// The text without its trailing unit-test module.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests {")
        .map_or(text, |at| &text[..at])
}

/// Every module path the text names: `crate::a::b` (as deep as a known module goes) and, in a
/// folder's file, `super::x`.
fn dependencies(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let resolve = |segments: &[&str]| -> Option<String> {
        (1..=segments.len().min(2))
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| known.contains(m))
    };
    let mut deps = BTreeSet::new();
    let folder = folder_of(module);
    let nested = module.contains("::");
    for (marker, prefix) in [("crate::", None), ("super::", Some(folder))] {
        if prefix.is_some() && !nested {
            continue;
        }
        let mut rest = text;
        while let Some(at) = rest.find(marker) {
            let before = rest[..at].chars().last();
            rest = &rest[at + marker.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if let Some(f) = prefix {
                segments.insert(0, f);
            }
            // `crate::a::{b, c::d}` names `a::b` and `a::c` too.
            let mut named = vec![segments.clone()];
            if let Some(group) = rest[path.len()..].strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let first = item.trim().split("::").next().unwrap_or_default();
                    let mut s = segments.clone();
                    s.push(first);
                    named.push(s);
                }
            }
            for s in named {
                if let Some(m) = resolve(&s) {
                    if m != module && m != folder {
                        deps.insert(m);
                    }
                }
            }
        }
    }
    deps
}

/// Every module and what it depends on, from the sources under `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut texts = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if TEST_ONLY.contains(&rel.as_str()) || rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        texts.insert(module_of(&rel), without_tests(&text).to_string());
    }
    let known: BTreeSet<String> = texts.keys().cloned().collect();
    texts
        .iter()
        .map(|(m, text)| (m.clone(), dependencies(m, text, &known)))
        .collect()
}

#[test]
fn dependencies_between_folders_point_only_the_allowed_way() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (m, deps) in graph() {
        let from = folder_of(&m);
        let Some(may) = allowed.get(from) else {
            wrong.push(format!("{m} is in no known folder"));
            continue;
        };
        for d in deps {
            let to = folder_of(&d);
            if to != from && !may.contains(&to) {
                wrong.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows against the layout:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_modules_import_each_other_directly_or_around_a_loop() {
    let mut g: petgraph::graphmap::DiGraphMap<&str, (), std::hash::RandomState> =
        petgraph::graphmap::DiGraphMap::default();
    let deps = graph();
    for (m, ds) in &deps {
        g.add_node(m.as_str());
        for d in ds {
            g.add_edge(m.as_str(), d.as_str(), ());
        }
    }
    let cycles: Vec<String> = petgraph::algo::tarjan_scc(&g)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|mut scc| {
            scc.sort_unstable();
            scc.join(" <-> ")
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn the_engine_names_no_aws_type_or_module() {
    for (m, deps) in graph() {
        if folder_of(&m) == "engine" {
            assert!(
                deps.iter().all(|d| folder_of(d) != "aws"),
                "{m} uses {deps:?}"
            );
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    sources(&root, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains("aws_sdk") && !text.contains("aws_config"),
            "{} names the AWS SDK",
            f.display()
        );
    }
}

#[test]
fn the_checker_sees_an_arrow_and_a_cycle_when_there_is_one() {
    let known: BTreeSet<String> = [
        "lang::eval",
        "lang::functions",
        "aws::policy",
        "engine::diff",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let deps = dependencies(
        "engine::diff",
        "use crate::aws::policy::equivalent;\nlet x = my_crate::lang::eval;",
        &known,
    );
    assert_eq!(deps, BTreeSet::from(["aws::policy".to_string()]));
    let deps = dependencies("lang::eval", "super::functions::call(x)", &known);
    assert_eq!(deps, BTreeSet::from(["lang::functions".to_string()]));
    let deps = dependencies(
        "engine::diff",
        "use crate::lang::{eval, functions::call};",
        &known,
    );
    assert_eq!(
        deps,
        BTreeSet::from(["lang::eval".to_string(), "lang::functions".to_string()])
    );
    assert_eq!(
        without_tests("a\n#[cfg(test)]\nmod tests {\n crate::aws::x\n}"),
        "a\n"
    );
}
