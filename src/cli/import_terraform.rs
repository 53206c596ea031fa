//! `skyform state import-terraform PATH`: moving a Terraform project over. Owns reading a
//! Terraform state (format version 4, the JSON shape Terraform documents), mapping each of its
//! resource instances to a skyform address and id (the table of types whose Terraform id is not
//! skyform's is `skyform_id`), and building the skyform `State` that holds them.
//!
//! Every object is read from AWS by its id, as `skyform import` does, so that its attributes are
//! exactly what a refresh of skyform's own objects records; Terraform's attributes serve only
//! as the prior, which carries what AWS never shows again (an access key's secret) and what a
//! type needs to find its object (a legacy security-group rule's sources). Like `skyform
//! import`, nothing is tagged: the objects were not made by skyform, and the lineage tags only
//! ever prove what skyform created.
//!
//! The entry point takes the state's bytes, not a path, so that a state held by Terraform's S3
//! backend can be fed to it just as a local `terraform.tfstate` is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::engine::provider::{Provider, RefreshRequest};
use crate::error::TerraformImportError;
use crate::lang::address::{Address, InstanceKey};
use crate::lang::schema::Registry;
use crate::state::{Attrs, OutputState, Owner, ResourceState, State};

/// A Terraform state, format version 4: only what the import reads.
#[derive(Debug, Deserialize)]
struct TfState {
    #[serde(default)]
    outputs: BTreeMap<String, TfOutput>,
    #[serde(default)]
    resources: Vec<TfResource>,
}

#[derive(Debug, Deserialize)]
struct TfOutput {
    value: serde_json::Value,
    #[serde(default)]
    sensitive: bool,
}

#[derive(Debug, Deserialize)]
struct TfResource {
    #[serde(default)]
    module: Option<String>,
    mode: String,
    #[serde(rename = "type")]
    type_name: String,
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    instances: Vec<TfInstance>,
}

#[derive(Debug, Deserialize)]
struct TfInstance {
    #[serde(default)]
    index_key: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    deposed: Option<String>,
    #[serde(default)]
    attributes: Attrs,
    /// Attributes in Terraform 0.11's flat form, left by the upgrade to version 4 on objects
    /// Terraform has not refreshed since.
    #[serde(default)]
    attributes_flat: Option<serde_json::Value>,
    /// Paths, each a list of steps (`{"type": "get_attr", "value": "secret"}`).
    #[serde(default)]
    sensitive_attributes: Vec<serde_json::Value>,
}

/// One object of the Terraform state that skyform takes over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Taken {
    pub(crate) addr: Address,
    pub(crate) id: String,
    /// Terraform's attributes that skyform's schema knows, without nulls: the prior of the read.
    pub(crate) prior: Attrs,
    /// The top-level attributes Terraform recorded as sensitive.
    pub(crate) sensitive: BTreeSet<String>,
    /// The provider configuration's alias in Terraform's state (empty for the default).
    pub(crate) provider: String,
}

/// What the Terraform state holds, mapped: what is taken over, and what is left out and why.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    pub(crate) taken: Vec<Taken>,
    /// The address (as Terraform writes it) and why it is left out.
    pub(crate) left_out: Vec<(String, String)>,
    /// The address and what the next plan will show of it although nothing changed.
    pub(crate) notes: Vec<(String, String)>,
    pub(crate) outputs: BTreeMap<String, OutputState>,
}

/// The imported state, what was left out, and what the next plan will show of it.
#[derive(Debug)]
pub(crate) struct Imported {
    pub(crate) state: State,
    pub(crate) left_out: Vec<(String, String)>,
    pub(crate) notes: Vec<(String, String)>,
}

/// Reads a Terraform state and maps it onto skyform's types; touches nothing.
pub(crate) fn map(bytes: &[u8], schemas: &Registry) -> Result<Mapped, TerraformImportError> {
    let raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| TerraformImportError::NotJson(e.to_string()))?;
    let version = raw
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| TerraformImportError::Shape("no numeric \"version\"".into()))?;
    if version != 4 {
        return Err(TerraformImportError::Version(version));
    }
    let tf: TfState =
        serde_json::from_value(raw).map_err(|e| TerraformImportError::Shape(e.to_string()))?;
    let mut mapped = Mapped {
        outputs: tf
            .outputs
            .into_iter()
            .map(|(name, o)| {
                (
                    name,
                    OutputState {
                        value: o.value,
                        sensitive: o.sensitive,
                    },
                )
            })
            .collect(),
        ..Mapped::default()
    };
    for r in &tf.resources {
        let block = block_text(r);
        let base: Address = block
            .parse()
            .map_err(|_| TerraformImportError::Shape(format!("{block:?} is not an address")))?;
        let schema = schemas.resources.get(&r.type_name);
        for i in &r.instances {
            let key = match &i.index_key {
                None => None,
                Some(k) => Some(instance_key(k).ok_or_else(|| {
                    TerraformImportError::Shape(format!("{block} has the index key {k}"))
                })?),
            };
            let addr = base.with_key(key);
            let shown = addr.to_string();
            if i.attributes_flat.is_some() {
                return Err(TerraformImportError::Shape(format!(
                    "{shown} has only Terraform 0.11's flat attributes; let a current Terraform refresh it (`terraform apply -refresh-only`)"
                )));
            }
            if let Some(why) = unsettled(i) {
                return Err(TerraformImportError::Unsettled { addr: shown, why });
            }
            let Some(schema) = schema.filter(|_| r.mode == "managed") else {
                let why = if r.mode == "managed" {
                    "skyform does not support this type"
                } else {
                    "a data source: skyform reads it again from the configuration"
                };
                mapped.left_out.push((shown, why.into()));
                continue;
            };
            if r.type_name == "aws_iam_access_key" && !i.attributes.contains_key("secret") {
                mapped.left_out.push((
                    shown,
                    "its secret is not in the Terraform state (it was encrypted with pgp_key), and AWS never shows it again".into(),
                ));
                continue;
            }
            let Some(id) = skyform_id(&r.type_name, &i.attributes) else {
                return Err(TerraformImportError::Shape(format!(
                    "{shown} has no id in its attributes"
                )));
            };
            let prior: Attrs = i
                .attributes
                .iter()
                .filter(|(k, v)| !v.is_null() && schema.attr(k).is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // An instance's `user_data` is Terraform's SHA-1 of the script: the instance's read
            // (`aws::instance`) sees the hash and reads the script itself from AWS.
            mapped.taken.push(Taken {
                addr,
                id,
                prior,
                sensitive: sensitive_names(&i.sensitive_attributes),
                provider: provider_alias(&r.provider),
            });
        }
    }
    Ok(mapped)
}

/// `module.a.module.b.aws_x.y` (or `data.…`), the block's address as text.
fn block_text(r: &TfResource) -> String {
    let mut text = String::new();
    if let Some(m) = r.module.as_deref().filter(|m| !m.is_empty()) {
        text.push_str(m);
        text.push('.');
    }
    if r.mode == "data" {
        text.push_str("data.");
    }
    text.push_str(&r.type_name);
    text.push('.');
    text.push_str(&r.name);
    text
}

fn instance_key(k: &serde_json::Value) -> Option<InstanceKey> {
    match k {
        serde_json::Value::Number(n) => n.as_u64().map(InstanceKey::Int),
        serde_json::Value::String(s) => Some(InstanceKey::Str(s.clone())),
        _ => None,
    }
}

/// A tainted or deposed object: Terraform would replace it, so its state is no steady state
/// to take over.
fn unsettled(i: &TfInstance) -> Option<&'static str> {
    if i.deposed.is_some() {
        Some("a deposed object")
    } else if i.status.as_deref() == Some("tainted") {
        Some("tainted")
    } else {
        None
    }
}

/// The id skyform keeps for an object (each schema's `id` describes it), from Terraform's
/// attributes. Most types share Terraform's id; the policy attachments do not: Terraform's
/// is a generated unique id (`role-2024…`), skyform's names what is attached to what.
fn skyform_id(type_name: &str, attrs: &Attrs) -> Option<String> {
    let s = |k: &str| attrs.get(k).and_then(serde_json::Value::as_str);
    match type_name {
        "aws_iam_role_policy_attachment" => Some(format!("{}/{}", s("role")?, s("policy_arn")?)),
        "aws_iam_user_policy_attachment" => Some(format!("{}/{}", s("user")?, s("policy_arn")?)),
        _ => s("id").filter(|id| !id.is_empty()).map(str::to_string),
    }
}

/// The top-level names of Terraform's sensitive paths.
fn sensitive_names(paths: &[serde_json::Value]) -> BTreeSet<String> {
    paths
        .iter()
        .filter_map(|path| {
            let step = path.as_array()?.first()?;
            (step.get("type")?.as_str()? == "get_attr")
                .then(|| step.get("value")?.as_str().map(str::to_string))
                .flatten()
        })
        .collect()
}

/// The alias in Terraform's provider reference: `provider["registry.terraform.io/hashicorp/aws"].west`
/// (or Terraform 0.12's `provider.aws.west`) is `west`; without an alias, empty.
fn provider_alias(reference: &str) -> String {
    let rest = match reference.rfind(']') {
        Some(end) => &reference[end + 1..],
        None => reference.strip_prefix("provider.aws").unwrap_or_default(),
    };
    rest.strip_prefix('.').unwrap_or_default().to_string()
}

/// Builds the skyform state that holds what the Terraform state in `bytes` holds: every object
/// of a supported type read from AWS (one batched refresh), the outputs as Terraform recorded
/// them. `current` is skyform's state, which must hold no resources: its lineage is kept and
/// its serial moves on. `owner` is recorded when the state has none. `deps_and_provider` gives
/// an address's dependencies and provider alias from the configuration, when it declares it.
/// All or nothing: an object missing from AWS fails the whole import.
pub(crate) async fn import_terraform<P: Provider>(
    bytes: &[u8],
    provider: &P,
    current: &State,
    owner: Owner,
    configured: impl Fn(&Address) -> Option<(Vec<Address>, String)>,
    region_of: impl Fn(&str) -> String,
) -> Result<Imported, crate::error::Error> {
    if !current.resources.is_empty() {
        return Err(TerraformImportError::NotEmpty(current.resources.len()).into());
    }
    if !current.intents.is_empty() {
        return Err(crate::error::StateEditError::OpenIntents(current.intents.len()).into());
    }
    let mapped = map(bytes, P::schemas())?;
    let placed: Vec<(Taken, Vec<Address>, String)> = mapped
        .taken
        .into_iter()
        .map(|t| {
            let (deps, alias) =
                configured(&t.addr).unwrap_or_else(|| (Vec::new(), t.provider.clone()));
            (t, deps, alias)
        })
        .collect();
    let requests: Vec<RefreshRequest> = placed
        .iter()
        .map(|(t, _, alias)| RefreshRequest {
            addr: t.addr.clone(),
            id: t.id.clone(),
            prior: t.prior.clone(),
            provider: alias.clone(),
        })
        .collect();
    let found = if requests.is_empty() {
        Vec::new()
    } else {
        provider.refresh(&requests).await?
    };
    let mut state = State {
        lineage: if current.lineage.is_empty() {
            crate::state::new_lineage()
        } else {
            current.lineage.clone()
        },
        serial: current.serial + 1,
        owner: current.owner.clone().or(Some(owner)),
        outputs: mapped.outputs,
        forgotten: current.forgotten.clone(),
        ..State::default()
    };
    for ((t, deps, alias), attrs) in placed.into_iter().zip(found) {
        let Some(attrs) = attrs else {
            return Err(TerraformImportError::NotFound {
                region: region_of(&alias),
                addr: t.addr,
                id: t.id,
            }
            .into());
        };
        state.resources.insert(
            t.addr.clone(),
            ResourceState {
                addr: t.addr,
                id: t.id,
                attrs,
                deps,
                provider: alias,
                sensitive: t.sensitive,
            },
        );
    }
    Ok(Imported {
        state,
        left_out: mapped.left_out,
        notes: mapped.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> &'static Registry {
        crate::aws::schemas::registry()
    }

    #[test]
    fn a_version_3_state_is_refused_by_its_version() {
        let err = map(br#"{"version": 3, "modules": []}"#, schemas()).unwrap_err();
        assert!(matches!(err, TerraformImportError::Version(3)), "{err}");
        assert!(err.to_string().contains("only version 4"));
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        let err = map(b"resource \"aws_vpc\" \"v\" {}", schemas()).unwrap_err();
        assert!(matches!(err, TerraformImportError::NotJson(_)), "{err}");
    }

    #[test]
    fn a_resource_without_a_type_is_a_shape_error() {
        let err = map(
            br#"{"version": 4, "resources": [{"mode": "managed", "name": "x"}]}"#,
            schemas(),
        )
        .unwrap_err();
        assert!(matches!(err, TerraformImportError::Shape(_)), "{err}");
    }

    #[test]
    fn attachments_get_skyforms_id_and_other_types_keep_terraforms() {
        let attrs: Attrs = serde_json::from_str(
            r#"{"id": "app-20240121143236117600000009", "role": "app", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}"#,
        )
        .unwrap();
        assert_eq!(
            skyform_id("aws_iam_role_policy_attachment", &attrs).as_deref(),
            Some("app/arn:aws:iam::aws:policy/ReadOnlyAccess")
        );
        let attrs: Attrs = serde_json::from_str(r#"{"id": "vpc-0abc"}"#).unwrap();
        assert_eq!(skyform_id("aws_vpc", &attrs).as_deref(), Some("vpc-0abc"));
    }

    #[test]
    fn provider_aliases_are_read_from_both_reference_spellings() {
        assert_eq!(
            provider_alias(r#"provider["registry.terraform.io/hashicorp/aws"].west"#),
            "west"
        );
        assert_eq!(
            provider_alias(r#"provider["registry.terraform.io/hashicorp/aws"]"#),
            ""
        );
        assert_eq!(provider_alias("provider.aws.east"), "east");
        assert_eq!(provider_alias("provider.aws"), "");
    }

    #[test]
    fn modules_keys_data_sources_and_unsupported_types_are_mapped() {
        let tf = br#"{
          "version": 4, "terraform_version": "1.9.8", "serial": 7,
          "lineage": "3f1c1d59-2b1e-4a45-9d2f-0c8a7e0b5a11",
          "outputs": {"vpc": {"value": "vpc-1", "type": "string"},
                      "pw": {"value": "x", "type": "string", "sensitive": true}},
          "resources": [
            {"module": "module.net[\"a\"].module.inner", "mode": "managed", "type": "aws_subnet",
             "name": "s", "each": "map",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"].west",
             "instances": [{"index_key": "k", "schema_version": 1,
                            "attributes": {"id": "subnet-1", "vpc_id": "vpc-1", "tags": null,
                                           "tags_all": {}, "timeouts": null},
                            "sensitive_attributes": [], "dependencies": ["aws_vpc.v"]}]},
            {"mode": "managed", "type": "aws_iam_user", "name": "u", "each": "list",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
             "instances": [{"index_key": 0, "attributes": {"id": "u0", "name": "u0"}},
                           {"index_key": 1, "attributes": {"id": "u1", "name": "u1"}}]},
            {"mode": "data", "type": "aws_caller_identity", "name": "me",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
             "instances": [{"attributes": {"id": "123456789012"}}]},
            {"mode": "managed", "type": "aws_s3_bucket", "name": "logs",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
             "instances": [{"attributes": {"id": "logs"}}]},
            {"mode": "managed", "type": "aws_iam_access_key", "name": "k",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
             "instances": [{"attributes": {"id": "AKIA1", "user": "u0", "secret": "s3cret"},
                            "sensitive_attributes": [[{"type": "get_attr", "value": "secret"}]]}]}
          ]
        }"#;
        let m = map(tf, schemas()).unwrap();
        let addrs: Vec<String> = m.taken.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                r#"module.net["a"].module.inner.aws_subnet.s["k"]"#,
                "aws_iam_user.u[0]",
                "aws_iam_user.u[1]",
                "aws_iam_access_key.k",
            ]
        );
        let subnet = &m.taken[0];
        assert_eq!(subnet.provider, "west");
        assert_eq!(subnet.id, "subnet-1");
        // Nulls and what skyform's schema does not know are not carried.
        assert!(!subnet.prior.contains_key("tags"));
        assert!(!subnet.prior.contains_key("timeouts"));
        assert_eq!(subnet.prior.get("vpc_id"), Some(&"vpc-1".into()));
        let key = &m.taken[3];
        assert_eq!(key.prior.get("secret"), Some(&"s3cret".into()));
        assert_eq!(key.sensitive, BTreeSet::from(["secret".to_string()]));
        let left: Vec<&str> = m.left_out.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(left, ["data.aws_caller_identity.me", "aws_s3_bucket.logs"]);
        assert!(m.outputs["pw"].sensitive);
        assert_eq!(m.outputs["vpc"].value, "vpc-1");
    }

    const USERS: &[u8] = br#"{"version": 4, "outputs": {"n": {"value": 2, "type": "number"}},
        "resources": [{"mode": "managed", "type": "aws_iam_user", "name": "u",
          "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
          "instances": [{"index_key": 0, "attributes": {"id": "u0", "name": "u0"}},
                        {"index_key": 1, "attributes": {"id": "u1", "name": "u1"}}]}]}"#;

    fn cloud_with(users: &[&str]) -> crate::engine::fake::FakeProvider<crate::aws::AwsProvider> {
        let fake = crate::engine::fake::FakeProvider::default();
        for u in users {
            let attrs: Attrs = serde_json::from_value(serde_json::json!({"name": u})).unwrap();
            fake.cloud
                .borrow_mut()
                .objects
                .insert(("aws_iam_user".into(), (*u).into()), attrs);
        }
        fake
    }

    /// Imports `USERS` into `current` from `cloud`, with nothing configured, in region
    /// `us-east-1`.
    fn import_users(
        cloud: &crate::engine::fake::FakeProvider<crate::aws::AwsProvider>,
        current: &State,
    ) -> Result<Imported, crate::error::Error> {
        run(import_terraform(
            USERS,
            cloud,
            current,
            me(),
            |_| None,
            |_| "us-east-1".into(),
        ))
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn me() -> Owner {
        Owner {
            tenant: "123456789012".into(),
            principal: "arn:aws:iam::123456789012:user/me".into(),
        }
    }

    #[test]
    fn the_new_state_keeps_the_lineage_moves_the_serial_on_and_records_the_owner() {
        let fake = cloud_with(&["u0", "u1"]);
        let current = State {
            lineage: "11111111-2222-3333-4444-555555555555".into(),
            serial: 4,
            ..State::default()
        };
        let deps = vec![Address::managed("aws_iam_group", "g")];
        let imported = run(import_terraform(
            USERS,
            &fake,
            &current,
            me(),
            |_| Some((deps.clone(), "west".into())),
            |_| "us-east-1".into(),
        ))
        .unwrap();
        let state = imported.state;
        assert_eq!(state.lineage, current.lineage);
        assert_eq!(state.serial, 5, "a plan saved before the import is stale");
        assert_eq!(state.owner, Some(me()));
        assert_eq!(state.outputs["n"].value, 2);
        let u1 = &state.resources[&"aws_iam_user.u[1]".parse::<Address>().unwrap()];
        assert_eq!(u1.id, "u1");
        assert_eq!(u1.attrs.get("name"), Some(&"u1".into()));
        assert_eq!(u1.deps, deps);
        assert_eq!(u1.provider, "west");
    }

    #[test]
    fn an_owned_state_keeps_its_owner() {
        let fake = cloud_with(&["u0", "u1"]);
        let first = Owner {
            tenant: "123456789012".into(),
            principal: "arn:aws:iam::123456789012:user/first".into(),
        };
        let current = State {
            lineage: "l".into(),
            owner: Some(first.clone()),
            ..State::default()
        };
        let imported = import_users(&fake, &current).unwrap();
        assert_eq!(imported.state.owner, Some(first));
    }

    #[test]
    fn one_missing_object_fails_the_import_and_a_state_with_resources_is_refused() {
        let fake = cloud_with(&["u0"]);
        let err = import_users(&fake, &State::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("aws_iam_user.u[1] (id \"u1\") from the Terraform state does not exist in AWS (us-east-1)"),
            "{err}"
        );
        let full = cloud_with(&["u0", "u1"]);
        let taken = import_users(&full, &State::default()).unwrap().state;
        let err = import_users(&full, &taken).unwrap_err();
        assert!(
            err.to_string().contains("already holds 2 resource(s)"),
            "{err}"
        );
    }

    #[test]
    fn an_instances_hashed_user_data_is_passed_on_for_its_read_to_replace() {
        let tf = br#"{"version": 4, "resources": [
            {"mode": "managed", "type": "aws_instance", "name": "web",
             "instances": [{"attributes": {"id": "i-1", "ami": "ami-1",
               "user_data": "3c9f4ad1b6e3bd2a3ad1d4e0c3a55a1b8a5d2d4e"}}]}]}"#;
        let m = map(tf, schemas()).unwrap();
        assert_eq!(
            m.taken[0].prior.get("user_data"),
            Some(&"3c9f4ad1b6e3bd2a3ad1d4e0c3a55a1b8a5d2d4e".into())
        );
        assert!(m.notes.is_empty());
    }

    #[test]
    fn a_tainted_object_stops_the_whole_import() {
        let tf = br#"{"version": 4, "resources": [
            {"mode": "managed", "type": "aws_iam_user", "name": "u",
             "instances": [{"status": "tainted", "attributes": {"id": "u"}}]}]}"#;
        let err = map(tf, schemas()).unwrap_err();
        assert!(
            err.to_string().contains("aws_iam_user.u is tainted"),
            "{err}"
        );
    }
}
