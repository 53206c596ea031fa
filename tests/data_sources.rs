//! Data sources against moto: what they find is used by a resource, and the resource as EC2
//! reports it shows that the right object was found.

use crate::support::{block_on, stderr, stdout, Moto, Project};

/// Registers an image named `name` from `instance` and returns its id.
async fn register(ec2: &aws_sdk_ec2::Client, instance: &str, name: &str) -> String {
    ec2.create_image()
        .instance_id(instance)
        .name(name)
        .send()
        .await
        .expect("create image")
        .image_id()
        .expect("image id")
        .to_string()
}

fn ami_config(filter: &str) -> String {
    format!(
        r#"
data "aws_ami" "train" {{
  owners      = ["self"]
  most_recent = true
  name_regex  = "^train-"
  filter {{
    name   = "name"
    values = ["{filter}"]
  }}
}}
resource "aws_instance" "node" {{
  ami           = data.aws_ami.train.id
  instance_type = "t3.micro"
}}
output "ami_name" {{
  value = data.aws_ami.train.name
}}
"#
    )
}

#[test]
fn an_ami_found_by_owner_filter_and_name_regex_is_the_newest_match_and_launches() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = moto.ec2();
    let (older, newer) = block_on(async {
        let run = ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run");
        let builder = run.instances()[0].instance_id().expect("id").to_string();
        let older = register(&ec2, &builder, "train-2024-01").await;
        // moto dates images to the second: the newer one must be a second younger.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let newer = register(&ec2, &builder, "train-2024-02").await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // Newest of all, but its name fails name_regex.
        register(&ec2, &builder, "scratch-2024-03").await;
        (older, newer)
    });
    assert_ne!(older, newer);
    let p = Project::new(&[("main.sky.hcl", &ami_config("*-2024-*"))]);
    let out = moto.run(&p, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ami_name = \"train-2024-02\""),
        "{}",
        stdout(&out)
    );
    let launched: Vec<String> = block_on(async {
        ec2.describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:skyform:address")
                    .values("aws_instance.node")
                    .build(),
            )
            .send()
            .await
            .expect("describe")
            .reservations()
            .iter()
            .flat_map(aws_sdk_ec2::types::Reservation::instances)
            .filter_map(|i| i.image_id().map(String::from))
            .collect()
    });
    assert_eq!(launched, [newer]);
    let plan = moto.run(&p, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );

    p.write("main.sky.hcl", &ami_config("nothing-*"));
    let plan = moto.run(&p, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    let err = stderr(&plan);
    assert!(err.contains("Your query returned no results"), "{err}");
    assert!(err.contains("filter name = [\"nothing-*\"]"), "{err}");
    assert!(err.contains("owners = [\"self\"]"), "{err}");
}
