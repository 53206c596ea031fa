//! The Terraform compatibility corpus: every directory of `tests/terraform_compat/` is a small
//! Terraform project written the way tutorials and module READMEs write them, unchanged
//! `*.tf` files. Each must validate, plan, apply against its own moto server and then plan
//! `No changes.`; its `expect` file names objects that must then exist, checked through the
//! AWS API rather than through skyform's output. Validate and the first plan must write
//! nothing to AWS, and the apply must delete nothing. The files are laid out as `terraform
//! fmt` writes them, so `skyform fmt --check` must pass too.
//!
//! A directory with a `before/` folder is a refactoring: `before/` is applied first, then the
//! directory's own files replace it, and the first plan must show the moves and destroy
//! nothing.

use std::path::{Path, PathBuf};

use crate::support::{block_on, stderr, stdout, Moto, Project};

fn corpus_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terraform_compat");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Copies a corpus directory, modules and templates included (but not its `before/` stage),
/// into a project, since skyform writes its state into the working directory.
fn copy_into(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read corpus dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name");
        let target = to.join(name);
        if name == "before" {
            continue;
        }
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_into(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn ec2_filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// `KEY=VALUE` as an EC2 `tag:KEY` filter.
fn tag_filter(pair: &str) -> aws_sdk_ec2::types::Filter {
    let (key, value) = pair.split_once('=').expect("KEY=VALUE");
    ec2_filter(&format!("tag:{key}"), value)
}

/// The optional count at the end of an expectation line, 1 when absent.
fn count_arg(words: &[&str], at: usize) -> usize {
    words.get(at).map_or(1, |n| n.parse().expect("a count"))
}

/// How many of the attached policies have this name.
fn named(attached: &[aws_sdk_iam::types::AttachedPolicy], name: &str) -> usize {
    attached
        .iter()
        .filter(|p| p.policy_name() == Some(name))
        .count()
}

/// Checks one line of an `expect` file through the AWS API; `Err` says what differs.
///
/// - `iam_role NAME`, `iam_user NAME`, `iam_policy NAME`
/// - `iam_instance_profile NAME ROLE`: the profile exists and holds the role
/// - `iam_access_key USER`: the user has exactly one access key
/// - `iam_role_policy ROLE POLICY` / `iam_user_policy USER POLICY`: a managed policy of
///   that name is attached
/// - `vpc_tag K=V [N]`, `subnet_tag K=V [N]`, `instance_tag K=V [N]` (running instances):
///   exactly N (default 1) objects carry the tag
/// - `security_group NAME [N]`: the group exists with N ingress permissions (default 1)
async fn check(moto: &Moto, line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let iam = moto.iam();
    let ec2 = moto.ec2();
    let found = |n: usize, want: usize| {
        if n == want {
            Ok(())
        } else {
            Err(format!("found {n}, want {want}"))
        }
    };
    match words.as_slice() {
        ["iam_role", name] => iam
            .get_role()
            .role_name(*name)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("{e:?}")),
        ["iam_user", name] => iam
            .get_user()
            .user_name(*name)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("{e:?}")),
        ["iam_policy", name] => {
            let out = iam.list_policies().send().await.expect("list policies");
            let n = out
                .policies()
                .iter()
                .filter(|p| p.policy_name() == Some(*name))
                .count();
            found(n, 1)
        }
        ["iam_instance_profile", name, role] => {
            let roles = crate::support::profile_roles(&iam, name).await;
            found(roles.iter().filter(|r| r == role).count(), 1)
        }
        ["iam_access_key", user] => {
            let out = iam
                .list_access_keys()
                .user_name(*user)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            found(out.access_key_metadata().len(), 1)
        }
        ["iam_role_policy", role, policy] => {
            let out = iam
                .list_attached_role_policies()
                .role_name(*role)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            found(named(out.attached_policies(), policy), 1)
        }
        ["iam_user_policy", user, policy] => {
            let out = iam
                .list_attached_user_policies()
                .user_name(*user)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            found(named(out.attached_policies(), policy), 1)
        }
        ["vpc_tag", pair, ..] => {
            let out = ec2
                .describe_vpcs()
                .filters(tag_filter(pair))
                .send()
                .await
                .expect("describe vpcs");
            found(out.vpcs().len(), count_arg(&words, 2))
        }
        ["subnet_tag", pair, ..] => {
            let out = ec2
                .describe_subnets()
                .filters(tag_filter(pair))
                .send()
                .await
                .expect("describe subnets");
            found(out.subnets().len(), count_arg(&words, 2))
        }
        ["instance_tag", pair, ..] => {
            let out = ec2
                .describe_instances()
                .filters(tag_filter(pair))
                .filters(ec2_filter("instance-state-name", "running"))
                .send()
                .await
                .expect("describe instances");
            let n = out.reservations().iter().map(|r| r.instances().len()).sum();
            found(n, count_arg(&words, 2))
        }
        ["security_group", name, ..] => {
            let out = ec2
                .describe_security_groups()
                .filters(ec2_filter("group-name", name))
                .send()
                .await
                .expect("describe security groups");
            match out.security_groups() {
                [g] => found(g.ip_permissions().len(), count_arg(&words, 2)),
                groups => Err(format!("{} groups named {name}", groups.len())),
            }
        }
        _ => panic!("unknown expectation {line:?}"),
    }
}

/// Runs one corpus directory against a moto server of its own; `Err` says what went wrong.
fn run_one(dir: &Path) -> Result<(), String> {
    let expect = std::fs::read_to_string(dir.join("expect"))
        .map_err(|e| format!("no expect file ({e}): each directory checks an object"))?;
    let lines: Vec<&str> = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if lines.is_empty() {
        return Err("the expect file names no object".into());
    }
    let Some(moto) = Moto::start() else {
        return Ok(());
    };
    let p = Project::new(&[]);
    let before = dir.join("before");
    let refactoring = before.is_dir();
    if refactoring {
        copy_into(&before, p.path());
        let out = moto.run(&p, &["apply", "--auto-approve"]);
        if !out.status.success() {
            return Err(format!(
                "applying before/ failed:\n{}{}",
                stdout(&out),
                stderr(&out)
            ));
        }
        // The refactored files replace the old ones; the state stays.
        for entry in std::fs::read_dir(p.path()).expect("project") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "tf") {
                std::fs::remove_file(&path).expect("remove old file");
            } else if path.is_dir() && path.file_name().is_some_and(|n| n != ".skyform") {
                std::fs::remove_dir_all(&path).expect("remove old module");
            }
        }
        moto.clear_calls();
    }
    copy_into(dir, p.path());
    let succeed = |args: &[&str]| {
        let out = moto.run(&p, args);
        if out.status.success() {
            Ok(stdout(&out))
        } else {
            Err(format!(
                "`skyform {}` failed:\n{}{}",
                args.join(" "),
                stdout(&out),
                stderr(&out)
            ))
        }
    };
    succeed(&["validate"])?;
    // The files are laid out as `terraform fmt` leaves them, so skyform's fmt must agree.
    succeed(&["fmt", "--check"])?;
    let first = succeed(&["plan"])?;
    if refactoring && (!first.contains("has moved to") || !first.contains(" 0 to destroy")) {
        return Err(format!(
            "the plan after the refactoring does not move without destroying:\n{first}"
        ));
    }
    if !moto.writes().is_empty() {
        return Err(format!(
            "validate or plan wrote to AWS: {:?}",
            moto.writes()
        ));
    }
    succeed(&["apply", "--auto-approve"])?;
    let again = succeed(&["plan"])?;
    if !again.contains("No changes.") {
        return Err(format!("a plan after apply is not `No changes.`:\n{again}"));
    }
    let deletes: Vec<String> = moto
        .writes()
        .into_iter()
        .filter(|w| w.starts_with("Delete") || w.starts_with("Terminate"))
        .collect();
    if !deletes.is_empty() {
        return Err(format!("applying destroyed something: {deletes:?}"));
    }
    let mut failed = Vec::new();
    block_on(async {
        for line in &lines {
            if let Err(e) = check(&moto, line).await {
                failed.push(format!("{line}: {e}"));
            }
        }
    });
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("AWS does not hold:\n  {}", failed.join("\n  ")))
    }
}

#[test]
fn every_terraform_corpus_directory_applies_unchanged_and_then_plans_no_changes() {
    let dirs = corpus_dirs();
    assert!(
        dirs.len() >= 10,
        "the corpus has {} directories",
        dirs.len()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            run_one(d).err().map(|e| {
                format!(
                    "{}: {e}",
                    d.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
