//! Local modules against moto, through the binary: the module example (a VPC module called
//! once per environment with `for_each`, a cluster in one of them) applies, converges and
//! shrinks; a resource moved into a module is renamed, not recreated; and `state mv` takes
//! module addresses.

use std::path::Path;

use crate::support::{block_on, example_dir, stderr, stdout, Moto, Project};

/// A copy of an example directory, subdirectories (the example's modules) included.
pub(crate) fn example_tree(name: &str) -> Project {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("example dir").flatten() {
            let path = entry.path();
            let target = to.join(entry.file_name());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
    let p = Project::new(&[]);
    copy(&example_dir(name), p.path());
    p
}

/// The Name tags among these objects' tags, sorted.
fn name_tags<'a>(tags: impl Iterator<Item = &'a [aws_sdk_ec2::types::Tag]>) -> Vec<String> {
    let mut names: Vec<String> = tags
        .filter_map(|t| {
            t.iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .map(String::from)
        })
        .collect();
    names.sort();
    names
}

/// The Name tags of the VPCs moto holds, sorted.
fn vpc_names(moto: &Moto) -> Vec<String> {
    let ec2 = moto.ec2();
    let out = block_on(async { ec2.describe_vpcs().send().await }).expect("describe vpcs");
    name_tags(out.vpcs().iter().map(aws_sdk_ec2::types::Vpc::tags))
}

fn subnet_names(moto: &Moto) -> Vec<String> {
    let ec2 = moto.ec2();
    let out = block_on(async { ec2.describe_subnets().send().await }).expect("describe subnets");
    name_tags(out.subnets().iter().map(aws_sdk_ec2::types::Subnet::tags))
}

#[test]
fn the_module_example_applies_converges_and_drops_one_module_instance() {
    let Some(moto) = Moto::start() else { return };
    let p = example_tree("skypilot-modules");
    let image = ["--var", "image_id=ami-12c6146b"];
    let plan = moto.run(&p, &[&["plan"], &image[..]].concat());
    let text = stdout(&plan);
    assert!(plan.status.success(), "{text}{}", stderr(&plan));
    for addr in [
        "module.vpc[\"train\"].aws_subnet.this[\"b\"] will be created",
        "module.vpc[\"serve\"].aws_route_table_association.this[\"a\"] will be created",
        "aws_cluster.train will be created",
    ] {
        assert!(text.contains(addr), "{addr} in {text}");
    }
    let out = moto.run(&p, &[&["apply", "--auto-approve"], &image[..]].concat());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(vpc_names(&moto), ["skypilot-serve", "skypilot-train"]);
    assert_eq!(
        subnet_names(&moto),
        ["skypilot-serve-a", "skypilot-train-a", "skypilot-train-b"]
    );
    // The cluster's nodes are in the train VPC's subnet "a", with default tags on them.
    let ec2 = moto.ec2();
    let nodes = block_on(async { ec2.describe_instances().send().await }).expect("instances");
    let subnets = block_on(async {
        ec2.describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values("skypilot-train-a")
                    .build(),
            )
            .send()
            .await
    })
    .expect("subnets");
    let train_a = subnets.subnets()[0]
        .subnet_id()
        .unwrap_or_default()
        .to_string();
    let instances: Vec<_> = nodes
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .filter(|i| {
            i.state()
                .and_then(|s| s.name())
                .map(aws_sdk_ec2::types::InstanceStateName::as_str)
                == Some("running")
        })
        .collect();
    assert_eq!(instances.len(), 2);
    assert!(instances
        .iter()
        .all(|i| i.subnet_id() == Some(train_a.as_str())));
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert!(
        listed.contains("module.vpc[\"train\"].aws_vpc.this"),
        "{listed}"
    );
    let clean = moto.run(&p, &[&["plan"], &image[..]].concat());
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));

    // Without the serve network, its module instance is destroyed and nothing else.
    let main = std::fs::read_to_string(p.path().join("main.tf")).expect("main.tf");
    let start = main.find("    serve = {").expect("serve entry");
    let end = start + main[start..].find("    }\n").expect("end of serve") + "    }\n".len();
    p.write("main.tf", &format!("{}{}", &main[..start], &main[end..]));
    let plan = stdout(&moto.run(&p, &[&["plan"], &image[..]].concat()));
    assert!(
        plan.contains("Plan: 0 to add, 0 to change, 6 to destroy."),
        "{plan}"
    );
    assert!(
        plan.contains("# module.vpc[\"serve\"].aws_vpc.this will be destroyed"),
        "{plan}"
    );
    let out = moto.run(&p, &[&["apply", "--auto-approve"], &image[..]].concat());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(vpc_names(&moto), ["skypilot-train"]);
    let clean = moto.run(&p, &[&["plan"], &image[..]].concat());
    assert!(stdout(&clean).contains("No changes."), "{}", stdout(&clean));
}

#[test]
fn a_resource_moved_into_a_module_is_renamed_not_recreated() {
    let Some(moto) = Moto::start() else { return };
    let p = Project::new(&[(
        "main.tf",
        "resource \"aws_iam_user\" \"ops\" {\n  name = \"ops\"\n}\n",
    )]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    p.write(
        "main.tf",
        "module \"people\" {\n  source = \"./people\"\n  names  = [\"ops\"]\n}\n\nmoved {\n  from = aws_iam_user.ops\n  to   = module.people.aws_iam_user.this[\"ops\"]\n}\n",
    );
    std::fs::create_dir_all(p.path().join("people")).expect("mkdir");
    p.write(
        "people/main.tf",
        "variable \"names\" {\n  type = set(string)\n}\n\nresource \"aws_iam_user\" \"this\" {\n  for_each = var.names\n  name     = each.key\n}\n",
    );
    let out = moto.run(&p, &["plan"]);
    let plan = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        plan.contains("# aws_iam_user.ops has moved to module.people.aws_iam_user.this[\"ops\"]"),
        "{plan}"
    );
    moto.clear_calls();
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        moto.writes().is_empty(),
        "a move writes nothing to AWS: {:?}",
        moto.writes()
    );
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert_eq!(listed.trim(), "module.people.aws_iam_user.this[\"ops\"]");

    // And back out with state mv, the command-line form.
    let out = moto.run(
        &p,
        &[
            "state",
            "mv",
            "module.people.aws_iam_user.this[\"ops\"]",
            "aws_iam_user.ops",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&moto.run(&p, &["state", "list"]));
    assert_eq!(listed.trim(), "aws_iam_user.ops");
}
