//! An in-memory cloud for unit tests of the engine: it behaves like a provider (ids, computed
//! attributes, objects that can vanish or change out of band) and can be told to fail.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::engine::provider::{
    ErrorKind, Found, Identity, Lost, OpContext, Provider, ProviderError, RefreshRequest, Rules,
    Scanned,
};
use crate::lang::schema::{AttrMode, Registry};
use crate::state::Attrs;

#[derive(Debug, Default)]
pub(crate) struct FakeCloud {
    pub(crate) objects: BTreeMap<(String, String), Attrs>,
    pub(crate) next_id: u64,
    /// Every call, as `op type`.
    pub(crate) calls: Vec<String>,
    /// `op type` pairs that fail.
    pub(crate) fail: BTreeSet<String>,
    /// `op type` pairs that are carried out but whose answer is lost (a cut connection).
    pub(crate) lose_answer: BTreeSet<String>,
    /// The wait bound each write was given, as `op address` and the bound.
    pub(crate) timeouts: Vec<(String, Option<std::time::Duration>)>,
    /// Which provider configuration each call went to, as `op address alias` (`-` for the
    /// default); data sources by their type.
    pub(crate) routes: Vec<String>,
}

/// An in-memory cloud for the resource types of `R`, following `R`'s rules: the engine's tests
/// run real configurations of a real provider's types (`FakeProvider<AwsProvider>`) or of a
/// provider of their own, with no network.
#[derive(Debug)]
pub struct FakeProvider<R> {
    pub(crate) cloud: RefCell<FakeCloud>,
    rules: std::marker::PhantomData<R>,
}

impl<R> Default for FakeProvider<R> {
    fn default() -> Self {
        FakeProvider {
            cloud: RefCell::default(),
            rules: std::marker::PhantomData,
        }
    }
}

impl<R: Rules> Rules for FakeProvider<R> {
    fn schemas() -> &'static Registry {
        R::schemas()
    }
    fn check_format(format: &str, value: &str) -> Result<(), String> {
        R::check_format(format, value)
    }
    fn same_document(kind: &str, a: &str, b: &str) -> Option<bool> {
        R::same_document(kind, a, b)
    }
    fn check_plan(
        planned: &[crate::engine::provider::Planned<'_>],
    ) -> Vec<crate::engine::provider::Problem> {
        R::check_plan(planned)
    }
}

impl<R> FakeProvider<R> {
    fn record(&self, op: &str, type_name: &str) -> Result<(), ProviderError> {
        let key = format!("{op} {type_name}");
        let mut cloud = self.cloud.borrow_mut();
        cloud.calls.push(key.clone());
        if cloud.fail.contains(&key) {
            return Err(ProviderError::new("Injected", format!("{key} failed")));
        }
        Ok(())
    }

    fn note_timeout(&self, op: &str, ctx: &OpContext) {
        let key = format!("{op} {}", ctx.addr);
        self.note_route(&key, &ctx.provider);
        self.cloud.borrow_mut().timeouts.push((key, ctx.timeout));
    }

    fn note_route(&self, call: &str, provider: &str) {
        let alias = if provider.is_empty() { "-" } else { provider };
        self.cloud
            .borrow_mut()
            .routes
            .push(format!("{call} {alias}"));
    }

    #[cfg(test)]
    pub(crate) fn writes(&self) -> usize {
        self.cloud
            .borrow()
            .calls
            .iter()
            .filter(|c| {
                !c.starts_with("refresh") && !c.starts_with("read") && !c.starts_with("find")
            })
            .count()
    }
}

impl<R: Rules> Provider for FakeProvider<R> {
    async fn identity(&self) -> Result<Identity, ProviderError> {
        Ok(Identity {
            tenant: "123456789012".into(),
            principal: "arn:aws:iam::123456789012:user/fake".into(),
        })
    }

    async fn refresh(
        &self,
        requests: &[RefreshRequest],
    ) -> Result<Vec<Option<Attrs>>, ProviderError> {
        self.record("refresh", "all")?;
        for r in requests {
            self.note_route(&format!("refresh {}", r.addr), &r.provider);
        }
        let cloud = self.cloud.borrow();
        Ok(requests
            .iter()
            .map(|r| {
                cloud
                    .objects
                    .get(&(r.addr.type_name.clone(), r.id.clone()))
                    .cloned()
            })
            .collect())
    }

    async fn read_data(
        &self,
        type_name: &str,
        args: &Attrs,
        provider: &str,
    ) -> Result<Attrs, ProviderError> {
        self.record("read", type_name)?;
        self.note_route(&format!("read {type_name}"), provider);
        // Every type answers as the caller identity does; what it was asked is echoed, and
        // `json` holds the arguments, so a test can see which values a read was given.
        let mut a = args.clone();
        if !args.is_empty() {
            a.insert(
                "json".into(),
                serde_json::to_string(args).unwrap_or_default().into(),
            );
        }
        a.entry("account_id")
            .or_insert_with(|| "123456789012".into());
        a.entry("arn")
            .or_insert_with(|| "arn:aws:iam::123456789012:user/fake".into());
        a.entry("user_id").or_insert_with(|| "AIDAFAKE".into());
        a.entry("id").or_insert_with(|| "123456789012".into());
        Ok(a)
    }

    async fn create(
        &self,
        type_name: &str,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<(String, Attrs), ProviderError> {
        self.record("create", type_name)?;
        self.note_timeout("create", ctx);
        let mut cloud = self.cloud.borrow_mut();
        cloud.next_id += 1;
        let n = cloud.next_id;
        // Like a cloud, the fake keeps every tag under `tags` (see `Provider`).
        let planned = &crate::engine::default_tags::flatten(planned.clone());
        let mut attrs = planned.clone();
        let id = planned
            .get("name")
            .and_then(|v| v.as_str())
            .map_or_else(|| format!("{type_name}-{n}"), String::from);
        if cloud
            .objects
            .contains_key(&(type_name.to_string(), id.clone()))
        {
            return Err(
                ProviderError::new("EntityAlreadyExists", format!("{id} already exists"))
                    .with_kind(ErrorKind::AlreadyExists),
            );
        }
        if let Some(schema) = R::schemas().resources.get(type_name) {
            for (name, a) in &schema.attributes {
                if a.mode == AttrMode::Computed && name != crate::engine::default_tags::TAGS_ALL {
                    attrs.insert(name.clone(), format!("fake:{type_name}:{name}:{n}").into());
                }
            }
        }
        attrs.insert("id".into(), id.clone().into());
        cloud
            .objects
            .insert((type_name.to_string(), id.clone()), attrs.clone());
        if cloud.lose_answer.contains(&format!("create {type_name}")) {
            return Err(
                ProviderError::new("RequestFailed", "the connection was cut")
                    .with_kind(ErrorKind::Unknown),
            );
        }
        Ok((id, attrs))
    }

    async fn update(
        &self,
        type_name: &str,
        id: &str,
        prior: &Attrs,
        planned: &Attrs,
        ctx: &OpContext,
    ) -> Result<Attrs, ProviderError> {
        self.record("update", type_name)?;
        self.note_timeout("update", ctx);
        let flatten = crate::engine::default_tags::flatten;
        let (prior, planned) = (&flatten(prior.clone()), &flatten(planned.clone()));
        let mut attrs = prior.clone();
        // `planned` leaves out what the configuration no longer sets; the AWS provider clears
        // such attributes (removes the tags, empties the description), so the fake does too.
        // Computed values, and optional ones AWS picks when unset, stay as they were.
        if let Some(schema) = R::schemas().resources.get(type_name) {
            for (name, a) in &schema.attributes {
                if a.settable() && a.mode != AttrMode::OptionalComputed {
                    attrs.remove(name);
                }
            }
        }
        attrs.extend(planned.clone());
        self.cloud
            .borrow_mut()
            .objects
            .insert((type_name.to_string(), id.to_string()), attrs.clone());
        Ok(attrs)
    }

    async fn delete(
        &self,
        type_name: &str,
        id: &str,
        _prior: &Attrs,
        ctx: &OpContext,
    ) -> Result<(), ProviderError> {
        self.record("delete", type_name)?;
        self.note_timeout("delete", ctx);
        self.cloud
            .borrow_mut()
            .objects
            .remove(&(type_name.to_string(), id.to_string()));
        Ok(())
    }

    /// The fake keeps no tags; everything it made is found through intents.
    async fn scan(&self, _lineage: &str, _types: &[&str]) -> Result<Vec<Scanned>, ProviderError> {
        Ok(Vec::new())
    }

    /// The fake names objects by their `name`, so a lost create is found by it.
    async fn find(
        &self,
        type_name: &str,
        lost: Lost<'_>,
        _ctx: &OpContext,
    ) -> Result<Found, ProviderError> {
        self.record("find", type_name)?;
        let Some(name) = lost.planned.get("name").and_then(|v| v.as_str()) else {
            return Ok(Found::Nothing);
        };
        Ok(self
            .cloud
            .borrow()
            .objects
            .get(&(type_name.to_string(), name.to_string()))
            .map_or(Found::Nothing, |a| Found::Adopt {
                id: name.to_string(),
                attrs: a.clone(),
            }))
    }
}
