//! `aws_instance`: one EC2 instance, with the node code clusters use.

use super::ec2_common::{arn, filter, string_set, strings, sync_tags, tags_json, ById};
use super::nodes::{self, client_token, describe, profile_name, Spec};
use super::resource::{Read, Recover, Resource};
use super::{after_made, req, s, tags_of, AwsProvider};
use crate::engine::provider::{OpContext, ProviderError};
use crate::state::Attrs;

pub(super) const TYPE: Resource = Resource {
    name: "aws_instance",
    schema: include_str!("../../schemas/aws_instance.json"),
    read: Read::DescribeWithPrior(|p, priors| Box::pin(read_all(p, priors))),
    create: |p, a, ctx| Box::pin(create(p, a, ctx)),
    update: Some(|p, id, prior, a, _| Box::pin(update(p, id, prior, a))),
    delete: |p, id, _| Box::pin(delete(p, id)),
    recover: Recover::Tags,
    describe_tagged: Some(|p, filters| Box::pin(super::cluster::tagged_nodes(p, filters, false))),
    evidence: None,
};

/// Every instance in state, from one `DescribeInstances`; `priors` supply what AWS does not
/// show again (user data).
pub(super) async fn read_all(
    p: &AwsProvider,
    priors: &[(String, Attrs)],
) -> Result<ById, ProviderError> {
    let ids: Vec<String> = priors.iter().map(|(id, _)| id.clone()).collect();
    let found = describe(p, vec![filter("instance-id", &ids)], false).await?;
    let mut out = ById::new();
    for i in found {
        let Some(id) = i.instance_id() else { continue };
        let mut a = priors
            .iter()
            .find(|(pid, _)| pid == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        a.insert("id".into(), id.into());
        a.insert("arn".into(), arn(p, None, "instance", id).into());
        a.insert("ami".into(), i.image_id().unwrap_or_default().into());
        a.insert(
            "instance_type".into(),
            i.instance_type().map_or("", |t| t.as_str()).into(),
        );
        a.insert("subnet_id".into(), i.subnet_id().unwrap_or_default().into());
        a.insert(
            "vpc_security_group_ids".into(),
            string_set(
                i.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from)),
            ),
        );
        match profile_name(&i) {
            Some(n) => a.insert("iam_instance_profile".into(), n.into()),
            None => a.remove("iam_instance_profile"),
        };
        match i.key_name() {
            Some(k) => a.insert("key_name".into(), k.into()),
            None => a.remove("key_name"),
        };
        a.insert(
            "private_ip".into(),
            i.private_ip_address().unwrap_or_default().into(),
        );
        a.insert(
            "public_ip".into(),
            i.public_ip_address().unwrap_or_default().into(),
        );
        a.insert("tags".into(), tags_json(i.tags()));
        out.insert(id.to_string(), a);
    }
    Ok(out)
}

pub(super) async fn create(
    p: &AwsProvider,
    a: &Attrs,
    ctx: &OpContext,
) -> Result<(String, Attrs), ProviderError> {
    let spec = Spec {
        image_id: req(a, "ami")?.to_string(),
        instance_type: req(a, "instance_type")?.to_string(),
        subnet_id: s(a, "subnet_id").map(String::from),
        security_group_ids: strings(a.get("vpc_security_group_ids")),
        iam_instance_profile: s(a, "iam_instance_profile").map(String::from),
        key_name: s(a, "key_name").map(String::from),
        user_data: s(a, "user_data").map(String::from),
        tags: tags_of(a),
        ..Spec::default()
    };
    let token = client_token(&ctx.lineage, &ctx.addr.to_string(), 0, 0);
    let id = nodes::launch(p, &spec, &token).await?;
    after_made(async {
        nodes::wait_for(p, std::slice::from_ref(&id), &["running"]).await?;
        let attrs = read_all(p, &[(id.clone(), a.clone())])
            .await?
            .remove(&id)
            .ok_or_else(|| ProviderError::new("NotFound", format!("{id} vanished after launch")))?;
        Ok((id.clone(), attrs))
    })
    .await
}

pub(super) async fn update(
    p: &AwsProvider,
    id: &str,
    prior: &Attrs,
    a: &Attrs,
) -> Result<Attrs, ProviderError> {
    let want = strings(a.get("vpc_security_group_ids"));
    if !want.is_empty()
        && string_set(want.clone()) != string_set(strings(prior.get("vpc_security_group_ids")))
    {
        nodes::set_groups(p, &[id.to_string()], &want).await?;
    }
    let mut result = read_all(p, &[(id.to_string(), prior.clone())])
        .await?
        .remove(id)
        .unwrap_or_else(|| prior.clone());
    sync_tags(p, id, prior, a, &mut result).await?;
    Ok(result)
}

pub(super) async fn delete(p: &AwsProvider, id: &str) -> Result<(), ProviderError> {
    nodes::terminate(p, &[id.to_string()]).await
}
