//! `aws_key_pair`, `aws_placement_group`, and `placement_group` on instances and clusters.
//!
//! moto 5.2 does not implement placement groups (`CreatePlacementGroup` answers 500, "not
//! implemented"), so these tests have the recording proxy answer the placement-group actions
//! itself: `Emulation` below keeps the groups and answers Create/Describe/DeletePlacementGroup
//! (and CreateTags/DeleteTags on `pg-` ids) with the responses the EC2 API reference documents.
//! Everything else, key pairs and instances included, is moto's. moto accepts
//! `Placement.GroupName` at `RunInstances` without checking it and never reports it back, so
//! which group the nodes were launched into is checked in the `RunInstances` requests the proxy
//! saw.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::{block_on, stderr, stdout, Moto, Project};

/// One emulated placement group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    id: String,
    pub(crate) strategy: String,
    partition_count: Option<String>,
    spread_level: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
}

/// The placement groups the proxy answers for, and the `RunInstances` bodies it saw.
#[derive(Debug, Default)]
pub(crate) struct Emulation {
    pub(crate) groups: BTreeMap<String, Group>,
    next_id: usize,
    pub(crate) run_instances: Vec<BTreeMap<String, String>>,
}

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// A form value as sent: `+` is a space, `%XX` a byte.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// `prefix.1.suffix`, `prefix.2.suffix`, ... for as long as they are there.
fn numbered(f: &BTreeMap<String, String>, prefix: &str, suffix: &str) -> Vec<String> {
    (1..)
        .map_while(|n| f.get(&format!("{prefix}.{n}{suffix}")).cloned())
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn error(code: &str, message: &str) -> (u16, String) {
    (
        400,
        format!(
            "<Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>emulated</RequestID></Response>",
            escape(message)
        ),
    )
}

impl Group {
    fn xml(&self, name: &str, tag: &str) -> String {
        let mut x = format!(
            "<{tag}><groupName>{}</groupName><groupId>{}</groupId><groupArn>arn:aws:ec2:us-east-1:123456789012:placement-group/{}</groupArn><state>available</state><strategy>{}</strategy>",
            escape(name),
            self.id,
            escape(name),
            self.strategy
        );
        if let Some(n) = &self.partition_count {
            x.push_str(&format!("<partitionCount>{n}</partitionCount>"));
        }
        if let Some(l) = &self.spread_level {
            x.push_str(&format!("<spreadLevel>{l}</spreadLevel>"));
        }
        x.push_str("<tagSet>");
        for (k, v) in &self.tags {
            x.push_str(&format!(
                "<item><key>{}</key><value>{}</value></item>",
                escape(k),
                escape(v)
            ));
        }
        x.push_str(&format!("</tagSet></{tag}>"));
        x
    }
}

impl Emulation {
    /// Forgets every group and launch, as `/moto-api/reset` does for moto's own state.
    pub(crate) fn reset(&mut self) {
        *self = Emulation::default();
    }

    fn answer(&mut self, action: &str, body: &str) -> Option<(u16, String)> {
        let f = form(body);
        match action {
            "CreatePlacementGroup" => Some(self.create(&f)),
            "DescribePlacementGroups" => Some(self.describe(&f)),
            "DeletePlacementGroup" => Some(self.delete(&f)),
            "CreateTags" | "DeleteTags" => self.retag(action, &f),
            "RunInstances" => {
                self.run_instances.push(f);
                None
            }
            _ => None,
        }
    }

    fn create(&mut self, f: &BTreeMap<String, String>) -> (u16, String) {
        let name = f.get("GroupName").cloned().unwrap_or_default();
        if self.groups.contains_key(&name) {
            return error(
                "InvalidPlacementGroup.Duplicate",
                &format!("The Placement Group '{name}' already exists."),
            );
        }
        self.next_id += 1;
        let keys = numbered(f, "TagSpecification.1.Tag", ".Key");
        let values = numbered(f, "TagSpecification.1.Tag", ".Value");
        let strategy = f.get("Strategy").cloned().unwrap_or_default();
        let group = Group {
            id: format!("pg-{:017x}", self.next_id),
            partition_count: f
                .get("PartitionCount")
                .cloned()
                .or_else(|| (strategy == "partition").then(|| "2".to_string())),
            spread_level: f
                .get("SpreadLevel")
                .cloned()
                .or_else(|| (strategy == "spread").then(|| "rack".to_string())),
            strategy,
            tags: keys.into_iter().zip(values).collect(),
        };
        let x = group.xml(&name, "placementGroup");
        self.groups.insert(name, group);
        (
            200,
            format!("<CreatePlacementGroupResponse xmlns=\"{NS}\"><requestId>emulated</requestId>{x}</CreatePlacementGroupResponse>"),
        )
    }

    fn describe(&self, f: &BTreeMap<String, String>) -> (u16, String) {
        let names = numbered(f, "GroupName", "");
        let filters: Vec<(String, Vec<String>)> = numbered(f, "Filter", ".Name")
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, numbered(f, &format!("Filter.{}.Value", i + 1), "")))
            .collect();
        let mut items = String::new();
        for (name, g) in &self.groups {
            let listed = names.is_empty() || names.contains(name);
            let filtered = filters.iter().all(|(filter, values)| {
                let value = match filter.strip_prefix("tag:") {
                    Some(key) => g.tags.get(key).cloned(),
                    None if filter == "group-name" => Some(name.clone()),
                    None if filter == "strategy" => Some(g.strategy.clone()),
                    None => None,
                };
                value.is_some_and(|v| values.contains(&v))
            });
            if listed && filtered {
                items.push_str(&g.xml(name, "item"));
            }
        }
        (
            200,
            format!("<DescribePlacementGroupsResponse xmlns=\"{NS}\"><requestId>emulated</requestId><placementGroupSet>{items}</placementGroupSet></DescribePlacementGroupsResponse>"),
        )
    }

    fn delete(&mut self, f: &BTreeMap<String, String>) -> (u16, String) {
        let name = f.get("GroupName").cloned().unwrap_or_default();
        if self.groups.remove(&name).is_none() {
            return error(
                "InvalidPlacementGroup.Unknown",
                &format!("The Placement Group '{name}' is unknown."),
            );
        }
        (
            200,
            format!("<DeletePlacementGroupResponse xmlns=\"{NS}\"><requestId>emulated</requestId><return>true</return></DeletePlacementGroupResponse>"),
        )
    }

    /// Tags on placement groups; tags on anything else are moto's.
    fn retag(&mut self, action: &str, f: &BTreeMap<String, String>) -> Option<(u16, String)> {
        let ids = numbered(f, "ResourceId", "");
        if ids.is_empty() || !ids.iter().all(|id| id.starts_with("pg-")) {
            return None;
        }
        let keys = numbered(f, "Tag", ".Key");
        let values = numbered(f, "Tag", ".Value");
        for g in self.groups.values_mut().filter(|g| ids.contains(&g.id)) {
            if action == "CreateTags" {
                g.tags
                    .extend(keys.iter().cloned().zip(values.iter().cloned()));
            } else {
                for k in &keys {
                    g.tags.remove(k);
                }
            }
        }
        Some((
            200,
            format!("<{action}Response xmlns=\"{NS}\"><requestId>emulated</requestId><return>true</return></{action}Response>"),
        ))
    }
}

/// Has the proxy answer the placement-group actions from an emulation, and returns it.
pub(crate) fn emulate(moto: &Moto) -> Arc<Mutex<Emulation>> {
    let state = Arc::new(Mutex::new(Emulation::default()));
    let served = Arc::clone(&state);
    moto.answer_with(move |action, body| served.lock().unwrap().answer(action, body));
    state
}

/// A real public key from ssh-keygen: moto parses and fingerprints what it imports.
pub(crate) fn public_key(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@skyform", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen must be installed for the key pair tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

fn config(public_key: &str, team: &str) -> String {
    format!(
        r#"resource "aws_key_pair" "deployer" {{
  key_name   = "deployer"
  public_key = "{public_key}"
  tags       = {{ team = "{team}" }}
}}

resource "aws_placement_group" "gpu" {{
  name     = "gpu-training"
  strategy = "cluster"
  tags     = {{ team = "{team}" }}
}}

resource "aws_instance" "bastion" {{
  ami             = "ami-12c6146b"
  instance_type   = "t3.micro"
  key_name        = aws_key_pair.deployer.key_name
  placement_group = aws_placement_group.gpu.name
}}

resource "aws_cluster" "train" {{
  name            = "train"
  num_nodes       = 2
  instance_type   = "p4d.24xlarge"
  image_id        = "ami-12c6146b"
  key_name        = aws_key_pair.deployer.key_name
  placement_group = aws_placement_group.gpu.name
}}
"#
    )
}

fn key_pairs(moto: &Moto) -> Vec<aws_sdk_ec2::types::KeyPairInfo> {
    let ec2 = moto.ec2();
    block_on(async {
        ec2.describe_key_pairs()
            .include_public_key(true)
            .send()
            .await
    })
    .expect("describe key pairs")
    .key_pairs()
    .to_vec()
}

fn running_key_names(moto: &Moto) -> Vec<String> {
    let ec2 = moto.ec2();
    let out = block_on(async {
        ec2.describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
    })
    .expect("describe instances");
    let mut names: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .map(|i| i.key_name().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[test]
fn a_key_pair_and_a_placement_group_serve_an_instance_and_a_cluster_and_plan_clean() {
    let Some(moto) = Moto::start() else { return };
    let emulation = emulate(&moto);
    let keys = tempfile::tempdir().unwrap();
    let public = public_key(keys.path(), "deployer");
    let p = Project::new(&[("main.sky.hcl", &config(&public, "ml"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The key pair, through EC2: imported under its name with the configured key and tags.
    let pairs = key_pairs(&moto);
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let k = &pairs[0];
    assert_eq!(k.key_name(), Some("deployer"));
    let body = public.split_whitespace().nth(1).unwrap();
    assert!(
        k.public_key().is_some_and(|stored| stored.contains(body)),
        "{k:?}"
    );
    assert_eq!(tag(k.tags(), "team"), Some("ml"));
    assert!(tag(k.tags(), "skyform:lineage").is_some(), "{k:?}");
    // The instance and both cluster nodes carry it.
    assert_eq!(running_key_names(&moto), ["deployer"; 3]);

    // The placement group, in the emulation: made once with its strategy and tags, and every
    // launch (the instance and both nodes) asked for it.
    {
        let e = emulation.lock().unwrap();
        let g = &e.groups["gpu-training"];
        assert_eq!(g.strategy, "cluster");
        assert_eq!(g.tags.get("team").map(String::as_str), Some("ml"));
        assert!(g.tags.contains_key("skyform:address"), "{g:?}");
        assert_eq!(e.run_instances.len(), 3, "{:?}", e.run_instances);
        for run in &e.run_instances {
            assert_eq!(
                run.get("Placement.GroupName").map(String::as_str),
                Some("gpu-training"),
                "{run:?}"
            );
        }
    }
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_key_pair.deployer"]));
    assert!(
        shown.contains("key-"),
        "the key pair id is recorded:\n{shown}"
    );
    let shown = stdout(&moto.run(&p, &["state", "show", "aws_placement_group.gpu"]));
    assert!(shown.contains("pg-"), "the group id is recorded:\n{shown}");

    // A no-op plan shows no changes. The lineage scan's listings serve the refresh: one
    // request each, key pairs included (the scan keeps the listed key pairs, which their
    // refresh reads with the prior public key AWS never shows again).
    moto.clear_calls();
    moto.assert_plan_clean(&p);
    let calls = moto.calls.lock().unwrap().clone();
    for (action, want) in [("DescribeKeyPairs", 1), ("DescribePlacementGroups", 1)] {
        assert_eq!(
            calls.iter().filter(|c| *c == action).count(),
            want,
            "{calls:?}"
        );
    }

    // Tags change in place: nothing is replaced, and no instance is launched again.
    p.write("main.sky.hcl", &config(&public, "research"));
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(tag(key_pairs(&moto)[0].tags(), "team"), Some("research"));
    {
        let e = emulation.lock().unwrap();
        let g = &e.groups["gpu-training"];
        assert_eq!(g.tags.get("team").map(String::as_str), Some("research"));
        assert_eq!(e.run_instances.len(), 3, "nothing was launched again");
    }
    moto.assert_plan_clean(&p);

    let out = moto.run(&p, &["destroy", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(key_pairs(&moto).is_empty());
    assert!(emulation.lock().unwrap().groups.is_empty());
    assert!(running_key_names(&moto).is_empty());
}

#[test]
fn a_placement_group_moto_cannot_serve_fails_clearly_and_the_key_pair_made_before_is_kept() {
    let Some(moto) = Moto::start() else { return };
    let keys = tempfile::tempdir().unwrap();
    let public = public_key(keys.path(), "deployer");
    let key = format!(
        r#"resource "aws_key_pair" "deployer" {{
  key_name   = "deployer"
  public_key = "{public}"
}}
"#
    );
    let p = Project::new(&[("main.sky.hcl", &key)]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Bare moto: no emulation answers for it.
    p.write(
        "main.sky.hcl",
        &format!(
            r#"{key}
resource "aws_placement_group" "gpu" {{
  name     = "gpu-training"
  strategy = "cluster"
}}
"#
        ),
    );
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("aws_placement_group"), "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
    // What was made before is still in the state and in EC2.
    assert_eq!(key_pairs(&moto).len(), 1);
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(listed.contains("aws_key_pair.deployer"), "{listed}");
    assert!(!listed.contains("aws_placement_group.gpu"), "{listed}");
}
