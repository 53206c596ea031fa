//! The safety promises against moto, each as the defect it guards against: read-only commands
//! make no AWS write and leave the state as it was; an answered create error leaves nothing to
//! recover; recovery deletes or adopts only what it can prove this state made; an instance
//! profile interrupted between its two calls is finished, not wedged; objects tagged with this
//! state's lineage that the configuration does not declare are left alone unless pruned.
//! AWS is checked through its API, writes are counted by the recording proxy.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{block_on, profile_roles, stderr, stdout, Moto, Project};

const USER: &str = "resource \"aws_iam_user\" \"u\" {\n  name = \"alice\"\n}\n";

const USER_AND_KEY: &str = "resource \"aws_iam_user\" \"u\" {\n  name = \"alice\"\n}\n\nresource \"aws_iam_access_key\" \"k\" {\n  user = aws_iam_user.u.name\n}\n";

/// The ids of alice's access keys, from IAM.
fn keys(moto: &Moto) -> Vec<String> {
    let out = block_on(moto.iam().list_access_keys().user_name("alice").send()).expect("keys");
    let mut ids: Vec<String> = out
        .access_key_metadata()
        .iter()
        .filter_map(|k| k.access_key_id().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// Makes an access key for alice by hand, as `aws iam create-access-key` would.
fn hand_made_key(moto: &Moto) -> String {
    let out = block_on(moto.iam().create_access_key().user_name("alice").send()).expect("key");
    out.access_key().expect("key").access_key_id().to_string()
}

/// Everything the state database holds, read row by row: equal dumps mean nothing was written.
fn state_dump(p: &Project) -> String {
    let path = p.path().join(".skyform/state.db");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open state");
    let mut dump = String::new();
    for table in ["meta", "resources", "outputs", "intents", "lock"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .expect("select");
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("rows");
        for row in rows {
            dump.push_str(&format!("{table}: {}\n", row.expect("row").join(" | ")));
        }
    }
    dump
}

/// The state's lineage, read from the database.
fn lineage(p: &Project) -> String {
    let path = p.path().join(".skyform/state.db");
    let conn = rusqlite::Connection::open(path).expect("open state");
    conn.query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
        r.get(0)
    })
    .expect("lineage")
}

/// Runs an apply that is killed (SIGKILL) while the answer to its `k`-th write is held;
/// returns the action that was held.
fn kill_at_write(moto: &Moto, p: &Project, k: usize) -> Option<String> {
    // Numbering of writes starts again here.
    moto.resume();
    moto.faults.hold_at.store(k, Ordering::SeqCst);
    let mut child = moto
        .process(p, &["apply", "--auto-approve"])
        .spawn()
        .expect("spawn skyform");
    let held = moto.wait_held(&mut child, Duration::from_mins(1));
    let _ = child.kill();
    let _ = child.wait();
    assert!(held, "the apply ended before its write {k}");
    moto.quiesce(Duration::from_secs(30));
    let action = moto.held_action();
    moto.resume();
    action
}

#[test]
fn a_plan_after_a_refused_key_create_deletes_no_key_that_skyform_did_not_create() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let theirs = [hand_made_key(&moto), hand_made_key(&moto)];
    p.write("main.sky.hcl", USER_AND_KEY);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("LimitExceeded"), "{}", stderr(&out));
    assert!(
        !state_dump(&p).contains("intents:"),
        "an answered error made nothing, so no intent stays open:\n{}",
        state_dump(&p)
    );

    moto.clear_calls();
    let out = moto.run(&p, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(moto.writes(), Vec::<String>::new(), "plan wrote to AWS");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        !moto.writes().iter().any(|w| w == "DeleteAccessKey"),
        "{:?}",
        moto.writes()
    );
    let mut theirs = theirs.to_vec();
    theirs.sort();
    assert_eq!(keys(&moto), theirs, "both hand-made keys are still there");
}

#[test]
fn read_only_commands_make_no_aws_write_and_leave_the_state_as_it_was() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.sky.hcl",
        &format!(
            "{USER_AND_KEY}\noutput \"key\" {{\n  value = aws_iam_access_key.k.id\n}}\n\nresource \"aws_iam_user\" \"v\" {{\n  name = \"bob\"\n}}\n"
        ),
    )]);
    // Both users first, so that the key's create is the killed apply's only write.
    let out = moto.run(
        &p,
        &[
            "apply",
            "--target",
            "aws_iam_user.u",
            "--target",
            "aws_iam_user.v",
            "--auto-approve",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The most dangerous state for a reader: a key create whose answer was lost, and a
    // hand-made key beside it.
    let theirs = hand_made_key(&moto);
    assert_eq!(
        kill_at_write(&moto, &p, 1).as_deref(),
        Some("CreateAccessKey")
    );
    let keys_before = keys(&moto);
    assert_eq!(keys_before.len(), 2, "the interrupted create made its key");
    assert!(keys_before.contains(&theirs));
    let file = p.path().join("saved.plan").display().to_string();
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = state_dump(&p);
    assert!(
        dump.contains("intents: "),
        "the intent is still open:\n{dump}"
    );
    moto.clear_calls();
    let commands: &[&[&str]] = &[
        &["plan"],
        &["plan", "--json"],
        &["plan", "--markdown"],
        &["plan", "--destroy"],
        &["plan", "--refresh-only"],
        &["plan", "--out", &file],
        &["show", &file],
        &["show", "--json", &file],
        &["validate"],
        &["output"],
        &["state", "list"],
        &["state", "show", "aws_iam_user.u"],
        &["graph"],
        &["policy"],
        &["check"],
        &["check", "-v"],
    ];
    for args in commands {
        let out = moto.run(&p, args);
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(1),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(moto.writes(), Vec::<String>::new(), "{args:?} wrote to AWS");
        assert_eq!(state_dump(&p), dump, "{args:?} changed the state");
    }
    assert_eq!(keys(&moto), keys_before, "no key was touched");
}

#[test]
fn a_key_made_by_an_interrupted_apply_is_replaced_by_a_saved_plan_and_a_hand_made_key_is_kept() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let theirs = hand_made_key(&moto);
    p.write("main.sky.hcl", USER_AND_KEY);
    assert_eq!(
        kill_at_write(&moto, &p, 1).as_deref(),
        Some("CreateAccessKey")
    );
    let lost: Vec<String> = keys(&moto).into_iter().filter(|k| *k != theirs).collect();
    assert_eq!(lost.len(), 1, "the interrupted create made one key");

    moto.clear_calls();
    let out = moto.run(&p, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "aws_iam_access_key.k (id {}) will be replaced: the secret of the key created by an interrupted apply was never recorded",
            lost[0]
        )),
        "{text}"
    );
    assert!(text.contains("must be replaced"), "{text}");
    assert!(moto.writes().is_empty(), "plan wrote {:?}", moto.writes());
    let out = moto.run(&p, &["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(
        json["skyform_recovery"]["adopted"][0]["replace_reason"],
        "the secret of the key created by an interrupted apply was never recorded",
        "{json}"
    );
    // A refresh records what AWS says, but cannot replace the key: it leaves the recovery to
    // an apply instead of recording a key without its secret as if it were usable.
    let out = moto.run(&p, &["refresh"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = moto.run(&p, &["plan"]);
    assert!(
        stdout(&out).contains("will be replaced: the secret of the key created by an interrupted apply was never recorded"),
        "{}",
        stdout(&out)
    );

    // The recovery is part of the saved plan, and `apply FILE` carries it out.
    let file = p.path().join("recover.plan").display().to_string();
    let out = moto.run(&p, &["plan", "--out", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = moto.run(&p, &["apply", &file]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let now = keys(&moto);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&theirs), "the hand-made key is kept");
    assert!(
        !now.contains(&lost[0]),
        "the key with the lost secret is gone"
    );
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The new key's secret was recorded: the output of a real key.
    let out = moto.run(&p, &["state", "show", "aws_iam_access_key.k"]);
    let shown = stdout(&out);
    assert!(shown.contains("(sensitive value)"), "{shown}");
}

#[test]
fn several_keys_that_could_be_the_lost_one_are_all_left_alone_and_named() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    p.write("main.sky.hcl", USER_AND_KEY);
    assert_eq!(
        kill_at_write(&moto, &p, 1).as_deref(),
        Some("CreateAccessKey")
    );
    // Someone makes a key by hand before the next run: now two keys are unknown to the state.
    hand_made_key(&moto);
    let both = keys(&moto);
    assert_eq!(both.len(), 2);
    moto.clear_calls();
    let out = moto.run(&p, &["plan"]);
    let text = stdout(&out);
    assert!(text.contains("Warning:"), "{text}");
    for k in &both {
        assert!(text.contains(k.as_str()), "{k} is named: {text}");
    }
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(
        !moto.writes().iter().any(|w| w == "DeleteAccessKey"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(keys(&moto), both, "neither key was deleted");
}

const PROFILE: &str = r#"
resource "aws_iam_role" "r" {
  name               = "wedge-role"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] })
}

resource "aws_iam_instance_profile" "p" {
  name = "skypilot-v1"
  role = aws_iam_role.r.name
}
"#;

#[test]
fn an_instance_profile_interrupted_between_its_two_calls_is_adopted_and_given_its_role() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", PROFILE)]);
    // Writes: CreateRole, CreateInstanceProfile, AddRoleToInstanceProfile.
    assert_eq!(
        kill_at_write(&moto, &p, 2).as_deref(),
        Some("CreateInstanceProfile")
    );
    assert_eq!(
        block_on(profile_roles(&moto.iam(), "skypilot-v1")),
        Vec::<String>::new(),
        "the profile exists without its role"
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        block_on(profile_roles(&moto.iam(), "skypilot-v1")),
        ["wedge-role"]
    );
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_create_conflict_with_an_object_carrying_this_states_tags_adopts_it_and_a_strangers_does_not() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", USER)]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .expect("tag")
    };
    // A user this state made but never recorded (its intent lost with a wiped disk), and a
    // stranger's user under a name the configuration also wants.
    block_on(
        moto.iam()
            .create_user()
            .user_name("ours")
            .tags(tag("skyform:address", "aws_iam_user.ours"))
            .tags(tag("skyform:lineage", &lineage(&p)))
            .send(),
    )
    .expect("user");
    block_on(moto.iam().create_user().user_name("theirs").send()).expect("user");
    p.write(
        "main.sky.hcl",
        &format!(
            "{USER}\nresource \"aws_iam_user\" \"ours\" {{\n  name = \"ours\"\n  tags = {{ team = \"infra\" }}\n}}\n\nresource \"aws_iam_user\" \"theirs\" {{\n  name = \"theirs\"\n}}\n"
        ),
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("aws_iam_user.ours: an object by this name already existed"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("EntityAlreadyExists"),
        "{}",
        stderr(&out)
    );
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(listed.contains("aws_iam_user.ours"), "{listed}");
    assert!(!listed.contains("aws_iam_user.theirs"), "{listed}");
    // The adopted user was brought to its configuration.
    let tags = block_on(moto.iam().list_user_tags().user_name("ours").send()).expect("tags");
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == "team" && t.value() == "infra"));
    // The stranger's user is untouched.
    let tags = block_on(moto.iam().list_user_tags().user_name("theirs").send()).expect("tags");
    assert!(tags.tags().is_empty());
}

fn vpcs(moto: &Moto) -> Vec<String> {
    let out = block_on(
        moto.ec2()
            .describe_vpcs()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values("stray-test")
                    .build(),
            )
            .send(),
    )
    .expect("vpcs");
    out.vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(String::from))
        .collect()
}

fn vpc(name: &str, cidr: &str) -> String {
    format!(
        "resource \"aws_vpc\" \"{name}\" {{\n  cidr_block = \"{cidr}\"\n  tags       = {{ Name = \"stray-test\" }}\n}}\n"
    )
}

#[test]
fn objects_tagged_with_this_lineage_but_not_configured_are_listed_left_alone_and_pruned_on_request()
{
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.sky.hcl", &vpc("a", "10.1.0.0/16"))]);
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    let db = p.path().join(".skyform/state.db");
    let copy = std::fs::read(&db).expect("state copy");
    p.write(
        "main.sky.hcl",
        &format!("{}\n{}", vpc("a", "10.1.0.0/16"), vpc("b", "10.2.0.0/16")),
    );
    assert!(moto.run(&p, &["apply", "--auto-approve"]).status.success());
    assert_eq!(vpcs(&moto).len(), 2);
    // An old copy of the state comes back, and a configuration without `b`: `b` carries this
    // state's lineage, but nothing says it is not another environment's.
    std::fs::write(&db, &copy).expect("restore");
    p.write("main.sky.hcl", &vpc("a", "10.1.0.0/16"));
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Tagged with this state's lineage, not in state (left alone; --prune-tagged deletes them):"),
        "{text}"
    );
    assert!(text.contains("aws_vpc.b (id vpc-"), "{text}");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(vpcs(&moto).len(), 2, "the stray VPC was left alone");

    let out = moto.run(&p, &["plan", "--prune-tagged"]);
    assert!(
        stdout(&out).contains("aws_vpc.b will be destroyed"),
        "{}",
        stdout(&out)
    );
    let out = moto.run(&p, &["apply", "--prune-tagged", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(vpcs(&moto).len(), 1, "--prune-tagged deleted the stray");
    let out = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_copied_state_given_a_new_lineage_no_longer_sees_the_originals_tagged_objects() {
    let Some(moto) = Moto::start() else { return };
    let original = Project::new(&[("main.sky.hcl", &vpc("a", "10.1.0.0/16"))]);
    assert!(moto
        .run(&original, &["apply", "--auto-approve"])
        .status
        .success());
    // A second environment bootstrapped by copying the first one's empty-of-`b` state.
    let copy = Project::new(&[("main.sky.hcl", &vpc("c", "10.3.0.0/16"))]);
    std::fs::create_dir_all(copy.path().join(".skyform")).expect("dir");
    std::fs::copy(
        original.path().join(".skyform/state.db"),
        copy.path().join(".skyform/state.db"),
    )
    .expect("copy");
    let out = moto.run(&copy, &["state", "rm", "aws_vpc.a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let old = lineage(&copy);
    let out = moto.run(&copy, &["state", "new-lineage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(lineage(&copy), old);
    assert!(moto
        .run(&copy, &["apply", "--auto-approve"])
        .status
        .success());
    // The original now plans clean and lists nothing of the copy's.
    let out = moto.run(&original, &["plan", "--detailed-exitcode"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("Tagged with this state's lineage"), "{text}");
    assert_eq!(vpcs(&moto).len(), 2);
}
