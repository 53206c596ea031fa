//! The S3 backend as a team uses it, against moto S3: two runners applying at once, a runner
//! killed with the lock held (taken over once its lease ran out, never force-unlocked), a
//! `kill -9` at every write of an apply (S3's and IAM's) on a runner whose disk is then wiped,
//! and a PR job's saved plan refused once another apply wrote the state. S3 and IAM are checked
//! through their APIs; the proxy's request log says what reached them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::request_counts::{counts, stats_requests};
use crate::s3_backend::{ok, pulled};
use crate::support::{block_on, s3_backend, stderr, stdout, Moto, Project};

const KEY: &str = "ci/team.tfstate";

/// Two users and a role: three AWS creates, so that a kill can fall between any two of them.
const CONFIG: &str = r#"
resource "aws_iam_user" "a" {
  name = "team-a"
}

resource "aws_iam_user" "b" {
  name = "team-b"
}

resource "aws_iam_role" "r" {
  name               = "team-role"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}
"#;

/// A runner's checkout: the configuration and the backend block, nothing else on its disk.
fn runner(bucket: &str) -> Project {
    Project::new(&[
        ("main.tf", CONFIG),
        ("backend.tf", &s3_backend(bucket, KEY, "")),
    ])
}

/// The IAM users and roles AWS holds, as `user NAME` and `role NAME`.
fn iam_census(moto: &Moto) -> BTreeSet<String> {
    block_on(async {
        let iam = moto.iam();
        let users = iam.list_users().send().await.expect("users");
        let roles = iam.list_roles().send().await.expect("roles");
        users
            .users()
            .iter()
            .map(|u| format!("user {}", u.user_name()))
            .chain(
                roles
                    .roles()
                    .iter()
                    .map(|r| format!("role {}", r.role_name())),
            )
            .collect()
    })
}

fn expected_census() -> BTreeSet<String> {
    ["user team-a", "user team-b", "role team-role"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// The objects the state records, in the census's terms (a user's and a role's id is its name).
fn state_census(moto: &Moto, p: &Project) -> BTreeSet<String> {
    let state = pulled(moto, p);
    let resources = state["resources"].as_object().cloned().unwrap_or_default();
    resources
        .iter()
        .map(|(addr, r)| {
            let kind = match addr.split('.').next() {
                Some("aws_iam_user") => "user",
                Some("aws_iam_role") => "role",
                _ => panic!("unexpected resource {addr}"),
            };
            format!("{kind} {}", r["id"].as_str().unwrap_or_default())
        })
        .collect()
}

/// A barrier in the proxy: the first request of `action` waits there, before it reaches moto,
/// until `release`; every other request passes. How a test holds one apply mid-way (with the
/// lock held) while another runs, without sleeping and hoping.
#[derive(Clone)]
struct Barrier {
    arrived: Arc<AtomicBool>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Barrier {
    fn at(moto: &Moto, action: &'static str) -> Barrier {
        let b = Barrier {
            arrived: Arc::new(AtomicBool::new(false)),
            open: Arc::new((Mutex::new(false), Condvar::new())),
        };
        let hook = b.clone();
        moto.answer_with(move |a, _| {
            if a == action && !hook.arrived.swap(true, Ordering::SeqCst) {
                let (open, signal) = &*hook.open;
                let guard = open.lock().expect("barrier");
                let _held = signal
                    .wait_timeout_while(guard, Duration::from_mins(2), |open| !*open)
                    .expect("barrier");
            }
            None
        });
        b
    }

    /// Waits until a request stopped at the barrier, or `child` ended; true when one did.
    fn reached(&self, child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if self.arrived.load(Ordering::SeqCst) {
                return true;
            }
            if matches!(child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn release(&self) {
        let (open, signal) = &*self.open;
        *open.lock().expect("barrier") = true;
        signal.notify_all();
    }
}

#[test]
fn two_runners_applying_at_once_one_proceeds_the_other_names_the_holder_and_nothing_is_lost() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("teams-concurrent");
    let (first, second) = (runner(&bucket), runner(&bucket));
    // The first runner is held at its first CreateUser (before it reaches IAM), holding the
    // lock.
    let barrier = Barrier::at(&moto, "CreateUser");
    let mut held = moto
        .process(&first, &["apply", "--auto-approve"])
        .env("USER", "runner-a")
        .spawn()
        .expect("spawn skyform");
    assert!(barrier.reached(&mut held), "the first apply never wrote");
    assert!(moto.s3_keys(&bucket).contains(&format!("{KEY}.skylock")));

    let out = moto
        .skyform(&second)
        .env("USER", "runner-b")
        .args(["apply", "--auto-approve"])
        .output()
        .expect("run skyform");
    barrier.release();
    let first_out = held.wait_with_output().expect("first apply");
    ok(&first_out);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the state is locked by \"apply\" (user \"runner-a\""),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "on {}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim()
        )),
        "{err}"
    );
    assert!(!stdout(&out).contains("Apply complete"), "{}", stdout(&out));

    // Nothing lost: what AWS holds is what the state records, and a plan (on the refused
    // runner, which never wrote) has nothing to do.
    assert_eq!(iam_census(&moto), expected_census());
    assert_eq!(state_census(&moto, &second), expected_census());
    moto.assert_plan_clean(&second);
    assert!(!moto.s3_keys(&bucket).contains(&format!("{KEY}.skylock")));
}

/// Rewrites the lock object's `host`, as a runner on another machine (a CI runner) would have
/// written it: on this host a dead PID is taken over at once, so the lease would go untested.
fn lock_from_another_host(moto: &Moto, bucket: &str, host: &str) {
    let key = format!("{KEY}.skylock");
    block_on(async {
        let s3 = moto.s3();
        let got = s3.get_object().bucket(bucket).key(&key).send().await;
        let body = got.expect("the lock").body.collect().await.unwrap();
        let mut lock: serde_json::Value = serde_json::from_slice(&body.into_bytes()).unwrap();
        assert!(lock.get("host").is_some(), "{lock}");
        lock["host"] = host.into();
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(lock.to_string().into_bytes().into())
            .send()
            .await
            .expect("rewrite the lock");
    });
}

#[test]
fn a_runner_killed_with_the_lock_held_is_taken_over_once_its_lease_expires_without_force_unlock() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("teams-lease");
    let lease = "10s";
    let barrier = Barrier::at(&moto, "CreateUser");
    let dead = runner(&bucket);
    let mut child = moto
        .process(&dead, &["apply", "--auto-approve", "--lock-lease", lease])
        .env("USER", "runner-a")
        .spawn()
        .expect("spawn skyform");
    assert!(barrier.reached(&mut child), "the apply never wrote");
    let _ = child.kill(); // SIGKILL, with the lock held and a create in flight
    let _ = child.wait();
    lock_from_another_host(&moto, &bucket, "ci-runner-7");
    // The create that was in flight reaches AWS; its answer is lost with the runner.
    barrier.release();
    moto.quiesce(Duration::from_secs(30));

    // Within the lease: refused, naming the holder.
    let early = runner(&bucket);
    moto.clear_calls();
    let out = moto.run(&early, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the state is locked by \"apply\" (user \"runner-a\"")
            && err.contains("on ci-runner-7"),
        "{err}"
    );
    // Its only write was the lock's conditional create, which S3 refused.
    assert_eq!(moto.writes(), ["PutObject"]);

    // A fresh runner waits for the lease to run out and takes the lock over, with a notice.
    let next = runner(&bucket);
    moto.clear_calls();
    let out = moto.run(&next, &["apply", "--auto-approve", "--lock-timeout", "60s"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("Notice: released a stale lock held by")
            && err.contains("ci-runner-7")
            && err.contains("past its lease of 10s"),
        "{err}"
    );
    assert_eq!(iam_census(&moto), expected_census());
    assert_eq!(state_census(&moto, &next), expected_census());
    moto.assert_plan_clean(&next);
    assert!(!moto.s3_keys(&bucket).contains(&format!("{KEY}.skylock")));
}

#[test]
fn a_kill_at_every_write_of_an_apply_on_a_wiped_runner_converges_with_no_duplicate_or_orphan() {
    const BUCKET: &str = "teams-kill";
    let Some(moto) = Moto::start() else { return };
    // Count the writes of the reference apply: S3's (the lock, each intent and outcome, the
    // compaction at unlock) and IAM's, in the order they reach AWS.
    moto.bucket(BUCKET);
    moto.resume();
    moto.clear_calls();
    ok(&moto.run(&runner(BUCKET), &["apply", "--auto-approve"]));
    let writes = moto.writes();
    let puts = writes.iter().filter(|w| *w == "PutObject").count();
    assert!(
        puts > 2 * 3,
        "the lock, and an intent and an outcome PUT for each of the three creates: {writes:?}"
    );
    eprintln!("{} writes: {writes:?}", writes.len());

    let mut failures = Vec::new();
    let mut held = BTreeSet::new();
    for k in 1..=writes.len() {
        moto.resume();
        moto.reset();
        moto.bucket(BUCKET);
        let killed = runner(BUCKET);
        let action = match moto.kill_apply_at_write(&killed, k) {
            Ok(action) => action,
            Err(out) => {
                failures.push(format!(
                    "k={k}: the apply ended before its write:\n{}{}",
                    stdout(&out),
                    stderr(&out)
                ));
                continue;
            }
        };
        held.insert(action.clone());
        // A fresh runner: the killed one's disk is gone, only the bucket remains.
        drop(killed);
        let fresh = runner(BUCKET);
        let out = moto.run(&fresh, &["apply", "--auto-approve"]);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        if !out.status.success() {
            failures.push(format!(
                "k={k} ({action}): the converge apply failed:\n{said}"
            ));
            continue;
        }
        let aws = iam_census(&moto);
        let state = state_census(&moto, &fresh);
        if aws != expected_census() || state != aws {
            failures.push(format!(
                "k={k} ({action}): AWS holds {aws:?}, the state {state:?}:\n{said}"
            ));
            continue;
        }
        let plan = moto.run(&runner(BUCKET), &["plan", "--detailed-exitcode"]);
        if plan.status.code() != Some(0) {
            failures.push(format!(
                "k={k} ({action}): the plan after converging is not empty:\n{}{}",
                stdout(&plan),
                stderr(&plan)
            ));
        }
        if moto.s3_keys(BUCKET).contains(&format!("{KEY}.skylock")) {
            failures.push(format!("k={k} ({action}): the lock was left behind"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} kill points did not converge:\n\n{}",
        failures.len(),
        writes.len(),
        failures.join("\n\n")
    );
    // The kill points fell on S3's writes (the journal, the lock, the compaction) and on the
    // AWS creates between their intent and outcome PUTs (which create comes when varies: they
    // run side by side).
    for action in ["PutObject", "DeleteObjects"] {
        assert!(held.contains(action), "no kill at {action}: {held:?}");
    }
    assert!(
        held.contains("CreateUser") || held.contains("CreateRole"),
        "no kill at an AWS create: {held:?}"
    );
}

#[test]
fn a_saved_plan_from_a_pr_job_takes_no_lock_and_is_refused_after_another_apply_wrote_the_state() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("teams-saved-plan");
    let merged = runner(&bucket);
    ok(&moto.run(&merged, &["apply", "--auto-approve"]));

    // The PR job: a change planned on a runner of its own, saved; it writes nothing anywhere.
    let pr = runner(&bucket);
    pr.write(
        "extra.tf",
        "resource \"aws_iam_user\" \"c\" {\n  name = \"team-c\"\n}\n",
    );
    let before = moto.s3_keys(&bucket);
    moto.clear_calls();
    let file = pr.path().join("pr.plan");
    let out = moto.run(&pr, &["plan", "--out", file.to_str().unwrap()]);
    ok(&out);
    assert_eq!(moto.writes(), Vec::<String>::new(), "the plan wrote");
    assert!(counts(&moto).get("GetObject").is_some_and(|n| *n > 0));
    assert_eq!(moto.s3_keys(&bucket), before);

    // Meanwhile another apply writes the state.
    let other = runner(&bucket);
    other.write(
        "extra.tf",
        "resource \"aws_iam_user\" \"d\" {\n  name = \"team-d\"\n}\n",
    );
    ok(&moto.run(&other, &["apply", "--auto-approve"]));
    let state = pulled(&moto, &other);
    let census = iam_census(&moto);
    let keys_after_apply = moto.s3_keys(&bucket);

    moto.clear_calls();
    let out = moto.run(&pr, &["apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the saved plan is stale: the state changed since it was made"),
        "{}",
        stderr(&out)
    );
    // Nothing written: no IAM call, and of S3 only the lock, taken (a conditional PUT) and
    // released (deleted in one batch request).
    assert_eq!(moto.writes(), ["PutObject", "DeleteObjects"]);
    assert_eq!(moto.s3_keys(&bucket), keys_after_apply);
    assert_eq!(iam_census(&moto), census);
    assert_eq!(pulled(&moto, &other), state);
}

#[test]
fn stats_name_the_s3_backends_requests_as_the_proxy_sees_them() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("teams-stats");
    let p = runner(&bucket);
    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve", "--stats"]);
    ok(&out);
    let err = stderr(&out);
    assert_eq!(stats_requests(&err), counts(&moto), "{err}");
    assert!(!err.contains("(unknown)"), "{err}");
    for action in ["PutObject", "GetObject", "ListObjectsV2"] {
        assert!(err.contains(&format!("  request s3 {action}: ")), "{err}");
    }
    moto.clear_calls();
    let out = moto.run(&p, &["init"]);
    ok(&out);
    assert_eq!(counts(&moto).get("HeadBucket"), Some(&1));
}

#[test]
fn a_workspace_being_applied_to_is_not_deleted_under_its_runner() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("teams-workspace-lock");
    let admin = runner(&bucket);
    ok(&moto.run(&admin, &["workspace", "new", "staging"]));
    ok(&moto.run(&admin, &["workspace", "select", "default"]));
    let barrier = Barrier::at(&moto, "CreateUser");
    let staging = runner(&bucket);
    let mut applying = moto
        .process(&staging, &["apply", "--auto-approve"])
        .env("SKYFORM_WORKSPACE", "staging")
        .env("USER", "runner-s")
        .spawn()
        .expect("spawn skyform");
    assert!(barrier.reached(&mut applying), "the apply never wrote");

    let out = moto.run(&admin, &["workspace", "delete", "staging", "--force"]);
    barrier.release();
    ok(&applying.wait_with_output().expect("apply"));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the state is locked by \"apply\" (user \"runner-s\""),
        "{}",
        stderr(&out)
    );
    let keys = moto.s3_keys(&bucket);
    assert!(
        keys.contains(&format!("env:/staging/{KEY}.skystate")),
        "{keys:?}"
    );
    let out = moto
        .skyform(&staging)
        .env("SKYFORM_WORKSPACE", "staging")
        .args(["state", "list"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    // Once the apply is done, the delete (forced: it still manages them) goes through.
    ok(&moto.run(&admin, &["workspace", "delete", "staging", "--force"]));
    let keys = moto.s3_keys(&bucket);
    assert!(keys.iter().all(|k| !k.starts_with("env:/")), "{keys:?}");
}
