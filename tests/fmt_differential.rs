//! `skyform fmt` against Terraform's own formatter, `hclwrite.Format` (the engine of
//! `terraform fmt`, run through the npm package `@cdktf/hcl-tools` by tests/fmt/format.mjs):
//! over the layout corpus of tests/fmt/corpus, the examples and the Terraform-compatibility
//! configurations, skyform's output must be hclwrite's, byte for byte. hcl-tools comes from
//! `$HCL_TOOLS_DIR` or `.node` (scripts/test installs it there, pinned); a missing one fails
//! the test, unless AWS tests are skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{skip_aws, stderr, stdout, Project};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory hcl-tools is installed in, or None when it is missing.
fn hcl_tools() -> Option<PathBuf> {
    let dir = std::env::var_os("HCL_TOOLS_DIR").map_or_else(|| root().join(".node"), PathBuf::from);
    let installed = dir
        .join("node_modules/@cdktf/hcl-tools/package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (installed && node).then_some(dir)
}

/// hclwrite.Format of `text`.
fn hclwrite(tools: &Path, text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("node")
        .arg(root().join("tests/fmt/format.mjs"))
        .env("HCL_TOOLS_DIR", tools)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("node output");
    assert!(out.status.success(), "hcl-tools failed: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The HCL files under `dir` (recursively) whose names end with one of `suffixes`.
fn files(dir: &Path, suffixes: &[&str], out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            files(&path, suffixes, out);
        } else if suffixes.iter().any(|s| name.ends_with(s)) {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&root().join("tests/fmt/corpus"), &[".tf"], &mut out);
    files(&root().join("examples"), &[".sky.hcl", ".tf"], &mut out);
    files(
        &root().join("tests/terraform_compat"),
        &[".tf", ".sky.hcl"],
        &mut out,
    );
    out
}

#[test]
fn fmt_differential_skyform_fmt_writes_what_hclwrite_format_writes_byte_for_byte() {
    let Some(tools) = hcl_tools() else {
        assert!(
            skip_aws(),
            "hcl-tools not found: set HCL_TOOLS_DIR or run scripts/test, which installs @cdktf/hcl-tools@0.21.0 into .node"
        );
        return;
    };
    let corpus = corpus();
    assert!(corpus.len() > 20, "the corpus is there: {corpus:?}");
    let mut differ = Vec::new();
    for path in &corpus {
        let text = std::fs::read_to_string(path).expect("corpus file");
        let want = hclwrite(&tools, &text);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        let p = Project::new(&[(name, &text)]);
        let out = p.offline().arg("fmt").output().expect("skyform fmt");
        if !out.status.success() {
            differ.push(format!(
                "{}: {}{}",
                path.display(),
                stdout(&out),
                stderr(&out)
            ));
            continue;
        }
        let got = std::fs::read_to_string(p.path().join(name)).expect("formatted file");
        if got != want {
            differ.push(format!(
                "{}:\n--- hclwrite\n{want}\n--- skyform\n{got}",
                path.display()
            ));
        }
        // What hclwrite considers canonical, `skyform fmt --check` accepts.
        let canonical = Project::new(&[(name, &want)]);
        let check = canonical
            .offline()
            .args(["fmt", "--check"])
            .output()
            .expect("skyform fmt --check");
        if !check.status.success() {
            differ.push(format!(
                "{}: fmt --check refuses hclwrite's output: {}",
                path.display(),
                stdout(&check)
            ));
        }
    }
    // The figure README quotes: `cargo test --test integration fmt_differential -- --nocapture`.
    eprintln!(
        "fmt agrees with hclwrite.Format on {} files",
        corpus.len() - differ.len()
    );
    assert!(
        differ.is_empty(),
        "{} of {} files differ:\n{}",
        differ.len(),
        corpus.len(),
        differ.join("\n")
    );
}
