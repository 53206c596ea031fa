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
