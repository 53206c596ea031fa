//! Clusters that find capacity (issue 18), against moto: the proxy answers `RunInstances` with
//! AWS's capacity and quota errors for chosen places (instance type, subnet, market) after
//! letting a given number of launches through, as AWS does when a zone fills up part-way. The
//! nodes are checked through the EC2 API; the order of attempts through what the proxy saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::{block_on, stderr, stdout, Moto, Project};

const NETWORK: &str = r#"
resource "aws_vpc" "gpu" {
  cidr_block = "10.40.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.gpu.id
  cidr_block        = "10.40.1.0/24"
  availability_zone = "us-east-1a"
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.gpu.id
  cidr_block        = "10.40.2.0/24"
  availability_zone = "us-east-1b"
}

resource "aws_subnet" "c" {
  vpc_id            = aws_vpc.gpu.id
  cidr_block        = "10.40.3.0/24"
  availability_zone = "us-east-1c"
}
"#;

/// A cluster over the three subnets; `extra` holds its type and market lines.
fn cluster(num_nodes: usize, extra: &str) -> String {
    format!(
        r#"
resource "aws_cluster" "gpu" {{
  name       = "gpu-failover"
  num_nodes  = {num_nodes}
  image_id   = "ami-12c6146b"
  subnet_ids = [aws_subnet.a.id, aws_subnet.b.id, aws_subnet.c.id]
  {extra}
}}
"#
    )
}

/// One `RunInstances` as the proxy saw it, and the error code it answered with (`None`:
/// forwarded to moto, which launched).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Launch {
    instance_type: String,
    zone: String,
    spot: bool,
    refused: Option<&'static str>,
}

/// A place short of capacity: `room` launches go through, the rest get `code`.
struct Short {
    instance_type: &'static str,
    zone: &'static str,
    spot: bool,
    room: usize,
    code: &'static str,
}

#[derive(Default)]
struct Capacity {
    /// Subnet id to zone, known once the network is applied.
    zones: BTreeMap<String, String>,
    short: Vec<Short>,
    launches: Vec<Launch>,
}

impl Capacity {
    fn answer(&mut self, action: &str, body: &str) -> Option<(u16, String)> {
        if action != "RunInstances" {
            return None;
        }
        let form: BTreeMap<&str, &str> = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let subnet = form
            .get("SubnetId")
            .or_else(|| form.get("NetworkInterface.1.SubnetId"))
            .copied()
            .unwrap_or_default();
        let mut launch = Launch {
            instance_type: form
                .get("InstanceType")
                .copied()
                .unwrap_or_default()
                .to_string(),
            zone: self.zones.get(subnet).cloned().unwrap_or_default(),
            spot: form.get("InstanceMarketOptions.MarketType") == Some(&"spot"),
            refused: None,
        };
        let short = self.short.iter_mut().find(|s| {
            s.instance_type == launch.instance_type
                && s.zone == launch.zone
                && s.spot == launch.spot
        });
        let answer = match short {
            Some(s) if s.room == 0 => {
                launch.refused = Some(s.code);
                // AWS documents the capacity codes as server errors, the rest as client errors.
                let status = if s.code.starts_with("Insufficient") {
                    500
                } else {
                    400
                };
                Some((
                    status,
                    format!(
                        "<Response><Errors><Error><Code>{}</Code><Message>We currently do not have sufficient capacity in the Availability Zone you requested ({}).</Message></Error></Errors><RequestID>r-1</RequestID></Response>",
                        s.code, launch.zone
                    ),
                ))
            }
            Some(s) => {
                s.room -= 1;
                None
            }
            None => None,
        };
        self.launches.push(launch);
        answer
    }

    /// The places tried, in order, each once.
    fn places(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = Vec::new();
        for l in &self.launches {
            let place = (l.instance_type.clone(), l.zone.clone(), l.spot);
            if out.last() != Some(&place) {
                out.push(place);
            }
        }
        out
    }
}

/// Applies the network, then serves `RunInstances` by `short`.
fn network(moto: &Moto, short: Vec<Short>) -> (Project, Arc<Mutex<Capacity>>) {
    let project = Project::new(&[("network.sky.hcl", NETWORK)]);
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let subnets = block_on(moto.ec2().describe_subnets().send()).unwrap();
    let zones = subnets
        .subnets()
        .iter()
        .filter(|s| s.cidr_block().is_some_and(|c| c.starts_with("10.40.")))
        .map(|s| {
            (
                s.subnet_id().unwrap().to_string(),
                s.availability_zone().unwrap().to_string(),
            )
        })
        .collect();
    let capacity = Arc::new(Mutex::new(Capacity {
        zones,
        short,
        launches: Vec::new(),
    }));
    let served = Arc::clone(&capacity);
    moto.answer_with(move |action, body| served.lock().unwrap().answer(action, body));
    (project, capacity)
}

/// Every live instance (any cluster or none) as (zone, instance type), from EC2.
fn live(moto: &Moto) -> Vec<(String, String)> {
    let out = block_on(moto.ec2().describe_instances().send()).unwrap();
    let mut found: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .filter(|i| {
            !matches!(
                i.state()
                    .and_then(|s| s.name())
                    .map(aws_sdk_ec2::types::InstanceStateName::as_str),
                Some("terminated" | "shutting-down")
            )
        })
        .map(|i| {
            (
                i.placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_string(),
                i.instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    found.sort();
    found
}

fn place(ty: &str, zone: &str, spot: bool) -> (String, String, bool) {
    (ty.to_string(), zone.to_string(), spot)
}

#[test]
fn types_are_tried_in_order_then_zones_and_every_partial_launch_is_taken_back() {
    let Some(moto) = Moto::start() else { return };
    let short = vec![
        // Room for one node of three: a partial launch to take back.
        Short {
            instance_type: "p3.16xlarge",
            zone: "us-east-1a",
            spot: false,
            room: 1,
            code: "InsufficientInstanceCapacity",
        },
        Short {
            instance_type: "p3.16xlarge",
            zone: "us-east-1b",
            spot: false,
            room: 0,
            code: "Unsupported",
        },
        Short {
            instance_type: "p3.16xlarge",
            zone: "us-east-1c",
            spot: false,
            room: 0,
            code: "InsufficientInstanceCapacity",
        },
        Short {
            instance_type: "p3.8xlarge",
            zone: "us-east-1a",
            spot: false,
            room: 2,
            code: "InsufficientInstanceCapacity",
        },
    ];
    let (project, capacity) = network(&moto, short);
    let types = r#"instance_types = ["p3.16xlarge", "p3.8xlarge"]"#;
    project.write("cluster.sky.hcl", &cluster(3, types));

    let plan = moto.run(&project, &["plan"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let shown = stdout(&plan);
    assert!(
        shown.contains("p3.16xlarge") && shown.contains("p3.8xlarge"),
        "{shown}"
    );
    assert!(shown.contains("subnet_ids"), "{shown}");

    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    assert!(
        err.contains("aws_cluster.gpu: no p3.16xlarge capacity in us-east-1a (InsufficientInstanceCapacity), trying us-east-1b"),
        "{err}"
    );
    assert!(
        err.contains("no p3.16xlarge capacity in us-east-1c (InsufficientInstanceCapacity), trying p3.8xlarge in us-east-1a"),
        "{err}"
    );
    let c = capacity.lock().unwrap();
    assert_eq!(
        c.places(),
        vec![
            place("p3.16xlarge", "us-east-1a", false),
            place("p3.16xlarge", "us-east-1b", false),
            place("p3.16xlarge", "us-east-1c", false),
            place("p3.8xlarge", "us-east-1a", false),
            place("p3.8xlarge", "us-east-1b", false),
        ]
    );
    // Three nodes per place, each asked once: a capacity answer is not retried by the SDK.
    assert_eq!(c.launches.len(), 15, "{:?}", c.launches);
    drop(c);
    // The two partial launches (one node in 1a, two in 1a) are gone: every live instance is
    // a node in the chosen place.
    let b = ("us-east-1b".to_string(), "p3.8xlarge".to_string());
    assert_eq!(live(&moto), vec![b.clone(), b.clone(), b.clone()]);
    moto.assert_plan_clean(&project);

    // Scaling up adds nodes where the cluster is, without another search.
    project.write("cluster.sky.hcl", &cluster(4, types));
    capacity.lock().unwrap().launches.clear();
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        capacity.lock().unwrap().places(),
        vec![place("p3.8xlarge", "us-east-1b", false)]
    );
    assert_eq!(
        live(&moto),
        vec![b.clone(), b.clone(), b.clone(), b.clone()]
    );
    moto.assert_plan_clean(&project);

    // When the cluster's own place is full, scaling up says so and goes nowhere else.
    {
        let mut c = capacity.lock().unwrap();
        c.launches.clear();
        c.short.push(Short {
            instance_type: "p3.8xlarge",
            zone: "us-east-1b",
            spot: false,
            room: 0,
            code: "InsufficientInstanceCapacity",
        });
    }
    project.write("cluster.sky.hcl", &cluster(5, types));
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(err.contains("no p3.8xlarge capacity in"), "{err}");
    assert!(err.contains("--replace=aws_cluster.gpu"), "{err}");
    assert_eq!(
        capacity.lock().unwrap().places(),
        vec![place("p3.8xlarge", "us-east-1b", false)]
    );
    assert_eq!(live(&moto), vec![b.clone(), b.clone(), b.clone(), b]);
}

#[test]
fn a_quota_error_stops_the_search_at_once_and_leaves_nothing_running() {
    let Some(moto) = Moto::start() else { return };
    let short = vec![Short {
        instance_type: "p3.16xlarge",
        zone: "us-east-1a",
        spot: false,
        room: 1,
        code: "VcpuLimitExceeded",
    }];
    let (project, capacity) = network(&moto, short);
    project.write(
        "cluster.sky.hcl",
        &cluster(2, r#"instance_type = "p3.16xlarge""#),
    );
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(err.contains("VcpuLimitExceeded"), "{err}");
    assert!(err.contains("Service Quotas"), "{err}");
    assert!(
        err.contains("on-demand instances of p3.16xlarge's family"),
        "{err}"
    );
    // Both nodes were asked for in the first place only; no other zone was tried.
    assert_eq!(
        capacity.lock().unwrap().places(),
        vec![place("p3.16xlarge", "us-east-1a", false)]
    );
    assert_eq!(capacity.lock().unwrap().launches.len(), 2);
    // The node that did launch was taken back.
    assert_eq!(live(&moto), Vec::<(String, String)>::new());
}

#[test]
fn spot_falls_back_to_on_demand_after_every_zone_and_the_plan_is_clean() {
    let Some(moto) = Moto::start() else { return };
    let full = |zone| Short {
        instance_type: "g5.xlarge",
        zone,
        spot: true,
        room: 0,
        code: "InsufficientInstanceCapacity",
    };
    let short = vec![full("us-east-1a"), full("us-east-1b"), full("us-east-1c")];
    let (project, capacity) = network(&moto, short);
    let extra = "instance_type = \"g5.xlarge\"\n  use_spot = true\n  on_demand_fallback = true";
    project.write("cluster.sky.hcl", &cluster(2, extra));
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    assert!(
        err.contains("no spot g5.xlarge capacity in us-east-1c (InsufficientInstanceCapacity), trying on-demand g5.xlarge in us-east-1a"),
        "{err}"
    );
    assert_eq!(
        capacity.lock().unwrap().places(),
        vec![
            place("g5.xlarge", "us-east-1a", true),
            place("g5.xlarge", "us-east-1b", true),
            place("g5.xlarge", "us-east-1c", true),
            place("g5.xlarge", "us-east-1a", false),
        ]
    );
    let a = ("us-east-1a".to_string(), "g5.xlarge".to_string());
    assert_eq!(live(&moto), vec![a.clone(), a]);
    moto.assert_plan_clean(&project);
    // State records the choice.
    let show = moto.run(&project, &["state", "show", "aws_cluster.gpu"]);
    let shown = stdout(&show);
    assert!(shown.contains("on-demand"), "{shown}");
    assert!(shown.contains("us-east-1a"), "{shown}");
}

#[test]
fn no_capacity_anywhere_names_every_place_tried_and_leaves_nothing_running() {
    let Some(moto) = Moto::start() else { return };
    let full = |zone, room| Short {
        instance_type: "p4d.24xlarge",
        zone,
        spot: false,
        room,
        code: "InsufficientInstanceCapacity",
    };
    let short = vec![
        full("us-east-1a", 1),
        full("us-east-1b", 0),
        full("us-east-1c", 1),
    ];
    let (project, _capacity) = network(&moto, short);
    project.write(
        "cluster.sky.hcl",
        &cluster(2, r#"instance_type = "p4d.24xlarge""#),
    );
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        assert!(
            err.contains(&format!(
                "on-demand p4d.24xlarge in {zone} (InsufficientInstanceCapacity)"
            )),
            "{err}"
        );
    }
    assert_eq!(live(&moto), Vec::<(String, String)>::new());
}

#[test]
fn a_cluster_names_its_type_one_way_only_and_its_subnet_one_way_only() {
    let check = |body: &str| {
        let config = format!(
            "resource \"aws_cluster\" \"c\" {{\n  name     = \"c\"\n  image_id = \"ami-12c6146b\"\n{body}}}\n"
        );
        let p = Project::new(&[("main.sky.hcl", &config)]);
        let out = p.offline().arg("validate").output().expect("validate");
        (out.status.code(), stderr(&out))
    };
    let (code, err) = check("");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("set instance_type, or instance_types to try several in order"),
        "{err}"
    );
    let (code, err) =
        check("  instance_type  = \"p3.2xlarge\"\n  instance_types = [\"p3.8xlarge\"]\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("conflicts with"), "{err}");
    let (code, err) = check(
        "  instance_types = [\"p3.8xlarge\"]\n  subnet_id      = \"subnet-1\"\n  subnet_ids     = [\"subnet-2\"]\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("aws_cluster.c.subnet_id") && err.contains("subnet_ids"),
        "{err}"
    );
    let (code, err) = check("  instance_types = [\"p3.8xlarge\", \"p3.2xlarge\"]\n");
    assert_eq!(code, Some(0), "{err}");
}

/// Live instances with their subnet and `skyform:node` tag, from EC2.
fn live_nodes(moto: &Moto) -> Vec<(String, String, String)> {
    let out = block_on(moto.ec2().describe_instances().send()).unwrap();
    let mut found: Vec<(String, String, String)> = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .filter(|i| {
            !matches!(
                i.state()
                    .and_then(|s| s.name())
                    .map(aws_sdk_ec2::types::InstanceStateName::as_str),
                Some("terminated" | "shutting-down")
            )
        })
        .map(|i| {
            let node = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("skyform:node"))
                .and_then(|t| t.value())
                .unwrap_or_default();
            (
                i.subnet_id().unwrap_or_default().to_string(),
                node.to_string(),
                i.instance_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn an_apply_killed_at_any_write_of_a_failover_converges_to_one_whole_cluster_in_one_subnet() {
    let Some(moto) = Moto::start() else { return };
    let config = r#"
resource "aws_cluster" "gpu" {
  name          = "gpu-failover"
  num_nodes     = 3
  image_id      = "ami-12c6146b"
  instance_type = "p3.16xlarge"
  subnet_ids    = [aws_subnet.a.id, aws_subnet.b.id]
}
"#;
    let mut k = 1;
    loop {
        moto.resume();
        moto.reset();
        // The first subnet has room for one node of three: the apply fails over part-way.
        let short = vec![Short {
            instance_type: "p3.16xlarge",
            zone: "us-east-1a",
            spot: false,
            room: 1,
            code: "InsufficientInstanceCapacity",
        }];
        let (project, _capacity) = network(&moto, short);
        project.write("cluster.sky.hcl", config);
        // Writes are numbered from the cluster's apply.
        moto.resume();
        let Ok(action) = moto.kill_apply_at_write(&project, k) else {
            // Every write of the apply has been a kill point: three launches in 1a, taking
            // back the one that landed, three in 1b.
            assert!(k > 7, "the apply made only {} writes", k - 1);
            break;
        };
        let out = moto.run(&project, &["apply", "--auto-approve"]);
        assert!(
            out.status.success(),
            "k={k} ({action}): {}{}",
            stdout(&out),
            stderr(&out)
        );
        let nodes = live_nodes(&moto);
        let subnets: std::collections::BTreeSet<&str> =
            nodes.iter().map(|(s, _, _)| s.as_str()).collect();
        let indexes: Vec<&str> = nodes.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(nodes.len(), 3, "k={k} ({action}): {nodes:?}");
        assert_eq!(subnets.len(), 1, "k={k} ({action}): {nodes:?}");
        let mut sorted = indexes.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["0", "1", "2"], "k={k} ({action}): {nodes:?}");
        moto.assert_plan_clean(&project);
        k += 1;
    }
}

#[test]
fn a_reclaimed_spot_node_is_drift_and_comes_back_in_the_cluster_subnet_on_demand_when_spot_is_full()
{
    let Some(moto) = Moto::start() else { return };
    let (project, capacity) = network(&moto, Vec::new());
    let extra = "instance_type = \"g5.xlarge\"\n  use_spot = true\n  on_demand_fallback = true";
    project.write("cluster.sky.hcl", &cluster(3, extra));
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let before = live_nodes(&moto);
    assert_eq!(before.len(), 3, "{before:?}");
    let subnet = before[0].0.clone();
    let shown = stdout(&moto.run(&project, &["state", "show", "aws_cluster.gpu"]));
    assert!(
        shown.contains("market") && shown.contains("\"spot\""),
        "{shown}"
    );

    // AWS reclaims node 1 (moto has no reclaim: it is terminated as AWS would).
    let victim = before
        .iter()
        .find(|(_, n, _)| n == "1")
        .map(|(_, _, id)| id.clone())
        .unwrap();
    block_on(
        moto.ec2()
            .terminate_instances()
            .instance_ids(&victim)
            .send(),
    )
    .unwrap();
    let plan = moto.run(&project, &["plan", "--detailed-exitcode"]);
    let text = stdout(&plan);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(text.contains("# aws_cluster.gpu has changed"), "{text}");
    assert!(text.contains("num_nodes = 3 -> 2"), "{text}");

    // Spot is full in the cluster's zone now: the node comes back on-demand, in its subnet.
    {
        let mut c = capacity.lock().unwrap();
        c.launches.clear();
        c.short.push(Short {
            instance_type: "g5.xlarge",
            zone: "us-east-1a",
            spot: true,
            room: 0,
            code: "InsufficientSpotCapacity",
        });
    }
    let out = moto.run(&project, &["apply", "--auto-approve"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    assert!(
        err.contains("no spot g5.xlarge capacity in us-east-1a, launching on-demand there"),
        "{err}"
    );
    assert_eq!(
        capacity.lock().unwrap().places(),
        vec![
            place("g5.xlarge", "us-east-1a", true),
            place("g5.xlarge", "us-east-1a", false)
        ]
    );
    let after = live_nodes(&moto);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().all(|(s, _, _)| *s == subnet), "{after:?}");
    let healed = after.iter().find(|(_, n, _)| n == "1").unwrap();
    assert_ne!(healed.2, victim, "node 1 is a new instance");
    let shown = stdout(&moto.run(&project, &["state", "show", "aws_cluster.gpu"]));
    assert!(shown.contains("\"mixed\""), "{shown}");
    moto.assert_plan_clean(&project);
}
