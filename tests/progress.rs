//! Progress on long work: an apply reports every operation still running, in Terraform's
//! words ("Still creating... [10s elapsed]"), as plain lines. The recording proxy delays each
//! write and the interval is shortened for the test.

use std::sync::atomic::Ordering;

use crate::review_workflow::user_exists;
use crate::support::{stderr, stdout, Moto, Project};

const USER: &str = r#"
resource "aws_iam_user" "slow" {
  name = "progress-slow"
}
"#;

fn slow_run(moto: &Moto, p: &Project, args: &[&str]) -> String {
    let out = moto
        .skyform(p)
        .env("SKYFORM_PROGRESS_INTERVAL_MS", "200")
        .args(args)
        .output()
        .expect("run skyform");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    text
}

#[test]
fn a_slow_create_and_destroy_print_still_lines_until_they_finish() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    moto.faults.write_delay_ms.store(1_000, Ordering::SeqCst);
    let text = slow_run(&moto, &p, &["apply", "--auto-approve"]);
    assert!(
        text.contains("aws_iam_user.slow: Still creating... [200ms elapsed]")
            && text.contains("aws_iam_user.slow: Still creating... [400ms elapsed]"),
        "{text}"
    );
    // Plain lines, each after the operation started and before it finished.
    let started = text
        .find("aws_iam_user.slow: Creating...")
        .expect("started");
    let still = text.find("Still creating").expect("still");
    let done = text
        .find("aws_iam_user.slow: Creation complete")
        .expect("done");
    assert!(started < still && still < done, "{text}");
    assert!(!text.contains('\r'), "no terminal redrawing in a log");
    assert!(user_exists(&moto, "progress-slow"));

    let text = slow_run(&moto, &p, &["destroy", "--auto-approve"]);
    assert!(
        text.contains("aws_iam_user.slow: Still destroying... [200ms elapsed]"),
        "{text}"
    );
    assert!(!user_exists(&moto, "progress-slow"));
}

#[test]
fn a_quick_apply_prints_no_still_lines() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("Still"), "{}", stdout(&out));
}

#[test]
fn a_big_plan_says_how_many_resources_it_refreshed_and_a_small_one_does_not() {
    let Some(moto) = Moto::start() else { return };
    let many = r#"
resource "aws_iam_user" "many" {
  count = 100
  name  = "progress-many-${count.index}"
}
"#;
    let p = Project::new(&[("main.sky.hcl", many)]);
    let out = moto.run(&p, &["apply", "--auto-approve", "--parallelism", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Refreshed"),
        "nothing to refresh yet"
    );
    assert!(user_exists(&moto, "progress-many-99"));
    moto.clear_calls();
    let out = moto.run(&p, &["plan", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The request count it gives is what reached AWS, as the proxy counted it.
    let sent = moto.calls.lock().expect("calls").len();
    assert!(
        stderr(&out).contains("Refreshed 100 resources in ")
            && stderr(&out).contains(&format!(
                " ({sent} request{})",
                if sent == 1 { "" } else { "s" }
            )),
        "{sent} requests: {}",
        stderr(&out)
    );
    // stdout stays the JSON plan alone.
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json");

    let small = Project::new(&[("main.sky.hcl", USER)]);
    let out = moto.run(&small, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&small, &["plan"]);
    assert!(!stderr(&out).contains("Refreshed"), "{}", stderr(&out));
}
