//! The S3 backend against moto S3: where the state's objects land (checked through S3's API),
//! encryption, workspaces at Terraform's keys, `init`, `state migrate`, `state pull` and
//! `state push`, the refusal to plan an empty S3 state over a local one, and the backend's
//! statements in `skyform policy`.

use crate::review_workflow::user_exists;
use crate::support::{block_on, s3_backend, stderr, stdout, Moto, Project};

const KEY: &str = "team/skyform.tfstate";

const USER: &str = r#"
resource "aws_iam_user" "u" {
  name = "s3-backend-${terraform.workspace}"
}
"#;

/// A project of `USER` whose state lives in `bucket`, with `extra` backend settings.
fn project(bucket: &str, extra: &str) -> Project {
    Project::new(&[
        ("main.tf", USER),
        ("backend.tf", &s3_backend(bucket, KEY, extra)),
    ])
}

pub(crate) fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

fn head(
    moto: &Moto,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    block_on(moto.s3().head_object().bucket(bucket).key(key).send())
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"))
}

#[test]
fn an_apply_with_the_s3_backend_keeps_the_state_in_the_bucket_and_nothing_local() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-apply");
    let p = project(&bucket, "    encrypt        = true\n");
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    ok(&out);
    assert!(
        stderr(&out).contains(&format!(
            "Using the S3 backend at s3://{bucket}/{KEY} (workspace default)."
        )),
        "{}",
        stderr(&out)
    );
    assert!(user_exists(&moto, "s3-backend-default"));
    let keys = moto.s3_keys(&bucket);
    let snapshot = format!("{KEY}.skystate");
    assert!(keys.contains(&snapshot), "{keys:?}");
    // `<key>` itself is Terraform's state object: skyform never writes it.
    assert!(!keys.contains(&KEY.to_string()), "{keys:?}");
    assert!(
        !p.path().join(".skyform").join("state.db").exists(),
        "the S3 backend wrote a local state"
    );
    assert_eq!(
        head(&moto, &bucket, &snapshot).server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256)
    );
    // A fresh runner: nothing local at all, the state comes from the bucket.
    let _ = std::fs::remove_dir_all(p.path().join(".skyform"));
    moto.assert_plan_clean(&p);
}

#[test]
fn kms_key_id_seals_every_state_object_with_that_key() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-kms");
    let kms = "arn:aws:kms:us-east-1:123456789012:key/state-key";
    let p = project(&bucket, &format!("    kms_key_id     = \"{kms}\"\n"));
    ok(&moto.run(&p, &["apply", "--auto-approve"]));
    let keys = moto.s3_keys(&bucket);
    assert!(!keys.is_empty());
    for key in &keys {
        let h = head(&moto, &bucket, key);
        assert_eq!(
            h.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
            "{key}"
        );
        assert_eq!(h.ssekms_key_id(), Some(kms), "{key}");
    }
}

#[test]
fn workspaces_keep_their_states_at_terraforms_keys() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-workspaces");
    let p = project(&bucket, "");
    ok(&moto.run(&p, &["apply", "--auto-approve"]));
    let out = moto.run(&p, &["workspace", "new", "staging"]);
    ok(&out);
    assert_eq!(
        std::fs::read_to_string(p.path().join(".skyform/environment")).unwrap(),
        "staging\n"
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    ok(&out);
    assert!(stderr(&out).contains(&format!(
        "Using the S3 backend at s3://{bucket}/env:/staging/{KEY} (workspace staging)."
    )));
    // `terraform.workspace` names the selected workspace.
    assert!(user_exists(&moto, "s3-backend-staging"));
    assert!(user_exists(&moto, "s3-backend-default"));
    let keys = moto.s3_keys(&bucket);
    assert!(
        keys.contains(&format!("env:/staging/{KEY}.skystate")),
        "{keys:?}"
    );
    assert!(keys.contains(&format!("{KEY}.skystate")), "{keys:?}");

    let out = moto.run(&p, &["workspace", "list"]);
    ok(&out);
    assert_eq!(stdout(&out), "  default\n* staging\n");
    let out = moto.run(&p, &["workspace", "delete", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is selected"), "{}", stderr(&out));
    // The environment variable wins over the recorded selection.
    let out = moto
        .skyform(&p)
        .env("SKYFORM_WORKSPACE", "default")
        .args(["workspace", "show"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "default\n");
    ok(&moto.run(&p, &["workspace", "select", "default"]));
    let out = moto.run(&p, &["workspace", "delete", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("still manages 1 resource(s)"),
        "{}",
        stderr(&out)
    );
    assert!(moto
        .s3_keys(&bucket)
        .contains(&format!("env:/staging/{KEY}.skystate")));
    ok(&moto.run(&p, &["workspace", "delete", "staging", "--force"]));
    let keys = moto.s3_keys(&bucket);
    assert!(keys.iter().all(|k| !k.starts_with("env:/")), "{keys:?}");
    assert!(keys.contains(&format!("{KEY}.skystate")), "{keys:?}");
    let out = moto.run(&p, &["workspace", "select", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn local_workspaces_live_under_the_skyform_directory() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[("main.tf", USER)]);
    ok(&moto.run(&p, &["workspace", "new", "dev"]));
    ok(&moto.run(&p, &["apply", "--auto-approve"]));
    assert!(user_exists(&moto, "s3-backend-dev"));
    assert!(p.path().join(".skyform/workspaces/dev/state.db").exists());
    assert!(!p.path().join(".skyform/state.db").exists());
    let out = moto.run(&p, &["workspace", "list"]);
    assert_eq!(stdout(&out), "  default\n* dev\n");
}

/// The state as `state pull` prints it.
pub(crate) fn pulled(moto: &Moto, p: &Project) -> serde_json::Value {
    let out = moto.run(p, &["state", "pull"]);
    ok(&out);
    serde_json::from_str(&stdout(&out)).expect("state pull prints JSON")
}

#[test]
fn migrating_local_to_s3_and_back_keeps_lineage_serial_and_resources() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-migrate");
    let p = Project::new(&[("main.tf", USER)]);
    ok(&moto.run(&p, &["apply", "--auto-approve"]));
    let local = pulled(&moto, &p);
    assert!(local["resources"].as_object().is_some_and(|r| r.len() == 1));

    p.write("backend.tf", &s3_backend(&bucket, KEY, ""));
    let out = moto.run(&p, &["plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `skyform state migrate --to s3`"),
        "{}",
        stderr(&out)
    );
    assert!(
        moto.s3_keys(&bucket).is_empty(),
        "a refused plan wrote to S3"
    );

    let out = moto.run(&p, &["state", "migrate", "--to", "s3"]);
    ok(&out);
    assert!(moto.s3_keys(&bucket).contains(&format!("{KEY}.skystate")));
    let remote = pulled(&moto, &p);
    for field in ["lineage", "serial", "resources", "owner"] {
        assert_eq!(remote[field], local[field], "{field}");
    }
    // Again: the target holds this very state, which is fine, and said.
    let out = moto.run(&p, &["state", "migrate", "--to", "s3"]);
    ok(&out);
    assert!(
        stdout(&out).contains("holds an earlier copy of this state (same lineage"),
        "{}",
        stdout(&out)
    );
    let _ = std::fs::remove_dir_all(p.path().join(".skyform"));
    moto.assert_plan_clean(&p);

    ok(&moto.run(&p, &["state", "migrate", "--to", "local"]));
    std::fs::remove_file(p.path().join("backend.tf")).unwrap();
    let back = pulled(&moto, &p);
    for field in ["lineage", "serial", "resources", "owner"] {
        assert_eq!(back[field], local[field], "{field}");
    }
    moto.assert_plan_clean(&p);

    // A state of another lineage in the target is never overwritten.
    p.write("backend.tf", &s3_backend(&bucket, KEY, ""));
    ok(&moto.run(&p, &["state", "new-lineage"]));
    let out = moto.run(&p, &["state", "migrate", "--to", "local"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already holds another state"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn state_push_accepts_only_a_newer_copy_of_the_same_state_unless_forced() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-push");
    let p = project(&bucket, "");
    ok(&moto.run(&p, &["apply", "--auto-approve"]));
    let mut state = pulled(&moto, &p);
    let serial = state["serial"].as_u64().unwrap();
    let file = p.path().join("backup.json");
    let push = |state: &serde_json::Value, force: bool| {
        std::fs::write(&file, state.to_string()).unwrap();
        let mut args = vec!["state", "push", file.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        moto.run(&p, &args)
    };

    let out = push(&state, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not newer"), "{}", stderr(&out));

    let lineage = state["lineage"].clone();
    state["lineage"] = "another".into();
    state["serial"] = (serial + 5).into();
    let out = push(&state, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is another state"),
        "{}",
        stderr(&out)
    );
    assert_eq!(pulled(&moto, &p)["lineage"], lineage);

    state["lineage"] = lineage.clone();
    ok(&push(&state, false));
    assert_eq!(pulled(&moto, &p)["serial"], serial + 5);

    state["serial"] = serial.into();
    ok(&push(&state, true));
    let now = pulled(&moto, &p);
    assert_eq!(
        (now["lineage"].clone(), now["serial"].clone()),
        (lineage, serial.into())
    );
}

#[test]
fn init_says_which_backend_and_checks_the_bucket_without_writing() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-init");
    let p = project(&bucket, "");
    let out = moto.run(&p, &["init"]);
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "Using the S3 backend at s3://{bucket}/{KEY} (workspace default)."
        )),
        "{text}"
    );
    assert!(text.contains("is reachable"), "{text}");
    assert!(text.contains("holds no state yet"), "{text}");
    assert!(moto.s3_keys(&bucket).is_empty(), "init wrote to S3");
    assert!(!p.path().join(".skyform").exists(), "init wrote locally");

    let missing = project("no-such-bucket", "");
    let out = moto.run(&missing, &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the bucket no-such-bucket does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_backend_block_with_an_unknown_setting_is_an_error_at_its_place() {
    let p = Project::new(&[
        ("main.tf", USER),
        (
            "backend.tf",
            &s3_backend(
                "b",
                KEY,
                "    dynamodb_table = \"locks\"\n    endpoint = \"x\"\n",
            ),
        ),
    ]);
    let out = p.offline().args(["state", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("backend.tf:8:5"), "{err}");
    assert!(
        err.contains("\"endpoint\" is not supported in backend \"s3\""),
        "{err}"
    );
    assert!(!p.path().join(".skyform").exists());
}

#[test]
fn the_policy_grants_the_backends_s3_and_kms_actions_scoped_to_the_key() {
    let p = project(
        "team-bucket",
        "    kms_key_id     = \"arn:aws:kms:us-east-1:123456789012:key/k1\"\n",
    );
    let out = p
        .offline()
        .args(["policy", "--account", "123456789012"])
        .output()
        .unwrap();
    ok(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    let with = |resource: &str| {
        statements
            .iter()
            .find(|s| {
                s["Resource"] == resource
                    || s["Resource"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x == resource))
            })
            .unwrap_or_else(|| panic!("no statement on {resource}: {doc:#}"))
    };
    let list = with("arn:aws:s3:::team-bucket");
    assert_eq!(list["Action"], "s3:ListBucket");
    assert_eq!(
        list["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!([format!("{KEY}*"), "env:/*"])
    );
    for resource in [
        format!("arn:aws:s3:::team-bucket/{KEY}*"),
        format!("arn:aws:s3:::team-bucket/env:/*/{KEY}*"),
    ] {
        assert_eq!(
            with(&resource)["Action"],
            serde_json::json!(["s3:DeleteObject", "s3:GetObject", "s3:PutObject"])
        );
    }
    assert_eq!(
        with("arn:aws:kms:us-east-1:123456789012:key/k1")["Action"],
        serde_json::json!(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"])
    );
    // Nothing of the bucket beyond the state's objects.
    let text = stdout(&out);
    assert!(!text.contains("arn:aws:s3:::team-bucket/*\""), "{text}");
    assert!(!text.contains("\"s3:*\""), "{text}");
}

#[test]
fn import_terraform_reads_the_terraform_state_at_the_backends_key_and_leaves_it() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("state-from-terraform");
    block_on(
        moto.iam()
            .create_user()
            .user_name("s3-backend-default")
            .send(),
    )
    .unwrap();
    let tfstate = serde_json::json!({
        "version": 4, "terraform_version": "1.9.8", "serial": 7,
        "lineage": "0b7c6f6e-0000-4000-8000-000000000001", "outputs": {},
        "resources": [{
            "mode": "managed", "type": "aws_iam_user", "name": "u",
            "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
            "instances": [{
                "schema_version": 0, "sensitive_attributes": [], "private": "bnVsbA==",
                "attributes": {
                    "arn": "arn:aws:iam::123456789012:user/s3-backend-default",
                    "force_destroy": false, "id": "s3-backend-default",
                    "name": "s3-backend-default", "path": "/", "permissions_boundary": null,
                    "tags": null, "tags_all": {}, "unique_id": "AIDAEXAMPLE"
                }
            }]
        }]
    })
    .to_string();
    block_on(
        moto.s3()
            .put_object()
            .bucket(&bucket)
            .key(KEY)
            .body(tfstate.clone().into_bytes().into())
            .send(),
    )
    .unwrap();
    let p = project(&bucket, "");
    let out = moto.run(&p, &["state", "import-terraform", "--from-backend"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!("from s3://{bucket}/{KEY}")),
        "{}",
        stdout(&out)
    );
    let state = pulled(&moto, &p);
    assert!(state["resources"]
        .as_object()
        .is_some_and(|r| r.contains_key("aws_iam_user.u")));
    moto.assert_plan_clean(&p);
    // Terraform's object is only read.
    let body = block_on(async {
        let left = moto.s3().get_object().bucket(&bucket).key(KEY).send().await;
        left.unwrap().body.collect().await.unwrap().into_bytes()
    });
    assert_eq!(body.as_ref(), tfstate.as_bytes());

    // Without an S3 backend there is nothing to read it from.
    let local = Project::new(&[("main.tf", USER)]);
    let out = moto.run(&local, &["state", "import-terraform", "--from-backend"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("there is none"), "{}", stderr(&out));
}
