//! Reliability against moto: an apply killed with SIGKILL after the k-th write converges on
//! the next run with no duplicate and no orphan; an apply through a proxy that throttles and
//! cuts connections converges; the state lock admits one writer and releases a dead one's.
//! AWS is checked through its API.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{block_on, stderr, stdout, Moto, Project};

/// 10 roles, 5 users, 5 security groups and a 4-node cluster: 21 resources.
fn big_config() -> String {
    let mut text = String::from("data \"aws_vpc\" \"default\" {\n  default = true\n}\n");
    for i in 0..10 {
        text.push_str(&format!(
            "\nresource \"aws_iam_role\" \"r{i}\" {{\n  name               = \"kill-role-{i}\"\n  assume_role_policy = jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Principal = {{ Service = \"ec2.amazonaws.com\" }}, Action = \"sts:AssumeRole\" }}] }})\n}}\n"
        ));
    }
    for i in 0..5 {
        text.push_str(&format!(
            "\nresource \"aws_iam_user\" \"u{i}\" {{\n  name = \"kill-user-{i}\"\n}}\n"
        ));
        text.push_str(&format!(
            "\nresource \"aws_security_group\" \"g{i}\" {{\n  name   = \"kill-sg-{i}\"\n  vpc_id = data.aws_vpc.default.id\n\n  ingress {{\n    from_port   = {port}\n    to_port     = {port}\n    protocol    = \"tcp\"\n    cidr_blocks = [\"10.0.0.0/8\"]\n  }}\n}}\n",
            port = 8000 + i
        ));
    }
    text.push_str("\nresource \"aws_cluster\" \"c\" {\n  name          = \"kill-cluster\"\n  num_nodes     = 4\n  instance_type = \"t3.micro\"\n  image_id      = \"ami-12c6146b\"\n}\n");
    text
}

fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    moto.ec2()
}

/// (roles, users, groups, live cluster nodes) as AWS reports them.
fn census(moto: &Moto) -> (usize, usize, usize, usize) {
    let iam = moto.iam();
    let ec2 = ec2(moto);
    block_on(async {
        let roles = iam.list_roles().send().await.expect("roles");
        let roles = roles
            .roles()
            .iter()
            .filter(|r| r.role_name().starts_with("kill-role-"))
            .count();
        let users = iam.list_users().send().await.expect("users");
        let users = users
            .users()
            .iter()
            .filter(|u| u.user_name().starts_with("kill-user-"))
            .count();
        let groups = ec2.describe_security_groups().send().await.expect("groups");
        let groups = groups
            .security_groups()
            .iter()
            .filter(|g| g.group_name().unwrap_or_default().starts_with("kill-sg-"))
            .count();
        let nodes = ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:cluster")
                    .values("kill-cluster")
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .expect("instances");
        let nodes = nodes
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum();
        (roles, users, groups, nodes)
    })
}

#[test]
fn an_apply_killed_after_the_kth_write_converges_with_no_duplicate_and_no_orphan() {
    // A full apply makes about 30 writes; kill points spread over the run.
    let mut adopted = 0;
    for k in [1, 5, 10, 15, 21, 27] {
        let Some(moto) = Moto::start() else { return };
        let p = Project::new(&[("main.sky.hcl", &big_config())]);
        moto.faults.hold_at.store(k, Ordering::SeqCst);
        let mut child = moto
            .process(&p, &["apply", "--auto-approve"])
            .spawn()
            .expect("spawn skyform");
        let held = moto.wait_held(&mut child, Duration::from_secs(60));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(held, "k={k}: the run ended before its {k}th write");
        moto.faults.hold_at.store(0, Ordering::SeqCst);

        let out = moto.run(&p, &["apply", "--auto-approve"]);
        assert!(
            out.status.success(),
            "k={k}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(census(&moto), (10, 5, 5, 4), "k={k}: {}", stdout(&out));
        if stdout(&out).contains("Adopted ") {
            adopted += 1;
        }
        let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "k={k}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("No changes."));
    }
    // The write whose answer was lost made something; the next run adopted it.
    assert!(adopted >= 3, "adopted after {adopted} of 6 kills");
}

#[test]
fn an_apply_through_throttling_5xx_answers_and_cut_connections_converges() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &big_config())]);
    moto.faults.throttle_per_mille.store(200, Ordering::SeqCst);
    moto.faults.cut_per_mille.store(30, Ordering::SeqCst);
    moto.faults
        .unavailable_per_mille
        .store(50, Ordering::SeqCst);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        moto.faults.throttled.load(Ordering::SeqCst) > 5,
        "faults were injected"
    );
    assert!(
        moto.faults.cut.load(Ordering::SeqCst) > 0,
        "connections were cut"
    );
    assert!(
        moto.faults.unavailable.load(Ordering::SeqCst) > 0,
        "5xx answers were sent"
    );
    moto.faults.throttle_per_mille.store(0, Ordering::SeqCst);
    moto.faults.cut_per_mille.store(0, Ordering::SeqCst);
    moto.faults.unavailable_per_mille.store(0, Ordering::SeqCst);
    assert_eq!(census(&moto), (10, 5, 5, 4));
}

#[test]
fn a_second_writer_names_the_lock_holder_and_a_killed_holders_lock_is_released() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        "resource \"aws_iam_user\" \"a\" {\n  name = \"locked-a\"\n}\n\nresource \"aws_iam_user\" \"b\" {\n  name = \"locked-b\"\n}\n",
    )]);
    moto.faults.hold_at.store(1, Ordering::SeqCst);
    let mut first = moto
        .process(&p, &["apply", "--auto-approve"])
        .spawn()
        .expect("spawn");
    assert!(moto.wait_held(&mut first, Duration::from_secs(30)));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the state is locked by \"apply\""), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // A read-only plan does not wait for the running apply.
    let out = moto.run(&p, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let _ = first.kill();
    let _ = first.wait();
    moto.faults.hold_at.store(0, Ordering::SeqCst);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("released a stale lock"),
        "{}",
        stderr(&out)
    );
    let users = block_on(moto.iam().list_users().send()).expect("users");
    assert_eq!(
        users
            .users()
            .iter()
            .filter(|u| u.user_name().starts_with("locked-"))
            .count(),
        2
    );
}

#[test]
fn sigterm_during_apply_finishes_what_is_in_flight_and_records_it() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &big_config())]);
    // A slow AWS keeps the apply mid-run when the signal comes.
    moto.faults.write_delay_ms.store(150, Ordering::SeqCst);
    let child = moto
        .process(&p, &["apply", "--auto-approve", "--parallelism", "1"])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while moto.writes().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let writes_at_exit = moto.writes().len();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Interrupt: finishing the operations in flight"),
        "{err}"
    );
    assert!(err.contains("were not started"), "{err}");
    assert!(
        writes_at_exit < 25,
        "no new work started after the signal ({writes_at_exit} writes)"
    );
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(!listed.trim().is_empty(), "what finished is in the state");
    // The next apply completes the rest.
    moto.faults.write_delay_ms.store(0, Ordering::SeqCst);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(census(&moto), (10, 5, 5, 4));
}
