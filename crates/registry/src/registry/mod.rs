//! The generic registry: Kubernetes REST semantics for any resource, driven by its
//! [`ResourceDesc`]. One code path serves built-ins and CRDs alike (like Kubernetes'
//! `registry/generic`); the few kinds with special rules plug in through [`hooks`].

pub mod admission;
mod apply;
pub mod cache;
pub mod create_hook;
pub mod list;
pub mod strategy;
pub mod watch;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kplex_apimachinery::ApiError;
use kplex_apimachinery::selector::{FieldSelector, LabelSelector};
use kplex_store::Store;
use serde_json::Value;

use crate::catalog::ResourceDesc;
use crate::object::{self, keys};

pub use list::{ListOptions, ListResult};
pub use watch::{WatchEvent, WatchEventKind, WatchOptions, WatchStream};
pub use write::{DeleteOptions, DeleteOutcome, PatchKind, WriteOptions};

/// Which objects a request is about: a resource in one logical cluster (or all of them),
/// optionally one namespace.
#[derive(Clone, Debug)]
pub struct Scope {
    /// `None`: every logical cluster (wildcard list/watch).
    pub cluster: Option<String>,
    pub desc: Arc<ResourceDesc>,
    pub namespace: Option<String>,
}

impl Scope {
    /// The key prefix of the resource's storage (every cluster, every namespace).
    pub fn resource_prefix(&self) -> String {
        keys::resource_prefix(self.desc.storage_group(), &self.desc.storage_resource())
    }

    /// The key prefix covering everything this scope can see.
    pub fn prefix(&self) -> String {
        let (g, r) = (self.desc.storage_group(), &self.desc.storage_resource());
        match (&self.cluster, &self.namespace) {
            (None, _) => keys::resource_prefix(g, r),
            (Some(c), Some(ns)) if self.desc.namespaced => keys::namespace_prefix(g, r, c, ns),
            (Some(c), _) => keys::cluster_prefix(g, r, c),
        }
    }

    pub fn key(&self, name: &str) -> Result<String, ApiError> {
        let cluster = self.cluster.as_deref().ok_or_else(|| {
            ApiError::method_not_supported(
                &self.desc.group,
                &self.desc.plural,
                "write across all logical clusters",
            )
        })?;
        let ns = if self.desc.namespaced {
            Some(
                self.namespace
                    .as_deref()
                    .ok_or_else(|| ApiError::bad_request("a namespace is required"))?,
            )
        } else {
            None
        };
        Ok(keys::object(
            self.desc.storage_group(),
            &self.desc.storage_resource(),
            cluster,
            ns,
            name,
        ))
    }

    /// The kind's shared objects if `name` is one of them and the scope is one logical
    /// cluster (the wildcard view lists only what is stored).
    pub fn shared(&self, name: &str) -> Option<&crate::shared::SharedObjects> {
        self.shared_objects().filter(|s| s.contains(name))
    }

    /// The kind's shared objects, when this scope shows them.
    pub fn shared_objects(&self) -> Option<&crate::shared::SharedObjects> {
        self.cluster.as_ref()?;
        self.desc.shared.as_deref()
    }

    /// Whether a listed item is one of the shared objects (bulk deletions pass over them:
    /// they belong to no workspace).
    pub fn is_shared_item(&self, name: &str, item: &Stored) -> bool {
        item.resource_version == crate::shared::RESOURCE_VERSION && self.shared(name).is_some()
    }

    /// Why a write finds nothing stored under `name`: 403 for a shared object (writes to
    /// one are refused), else 404.
    pub fn missing(&self, name: &str) -> ApiError {
        match self.shared(name) {
            Some(_) => {
                crate::shared::SharedObjects::read_only(&self.desc.group, &self.desc.plural, name)
            }
            None => self.not_found(name),
        }
    }

    pub fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.desc.group, &self.desc.plural, name)
    }
}

/// A stored object and the resource version it was read at.
#[derive(Clone, Debug)]
pub struct Stored {
    pub bytes: Bytes,
    pub resource_version: i64,
}

impl Stored {
    pub fn render(&self) -> Vec<u8> {
        object::render(&self.bytes, self.resource_version)
    }

    /// The object's JSON as `desc`'s version serves it (CRD versions share storage).
    pub fn render_as(&self, desc: &ResourceDesc) -> Vec<u8> {
        if let Some(convert) = desc.conversion {
            // Multi-version system kinds are rare and small: parse, convert, re-serialise.
            return match self.decode() {
                Ok(mut obj) => {
                    convert(&mut obj, &desc.version);
                    serde_json::to_vec(&obj).unwrap_or_else(|_| self.render())
                }
                Err(_) => self.render(),
            };
        }
        let json = self.render();
        if desc.is_custom() {
            object::with_api_version(json, &desc.api_version())
        } else {
            json
        }
    }

    /// The parsed object as `desc`'s version serves it.
    pub fn decode_as(&self, desc: &ResourceDesc) -> Result<Value, ApiError> {
        let mut obj = self.decode()?;
        if let Some(convert) = desc.conversion {
            convert(&mut obj, &desc.version);
        } else if desc.is_custom()
            && let Some(m) = obj.as_object_mut()
        {
            m.insert("apiVersion".into(), Value::String(desc.api_version()));
        }
        Ok(obj)
    }

    pub fn decode(&self) -> Result<Value, ApiError> {
        object::decode(&self.bytes, self.resource_version)
    }
}

/// 504 for a resourceVersion the store has not reached yet, with the cause client-go's
/// reflector looks for (it then waits instead of relisting).
pub fn too_large_resource_version(requested: i64, current: i64) -> ApiError {
    let mut err = ApiError::timeout(
        &format!("Too large resource version: {requested}, current: {current}"),
        1,
    );
    if let Some(d) = err.details.as_mut() {
        d.causes.push(kplex_apimachinery::StatusCause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        });
    }
    err
}

/// Maps store failures to API errors (a compacted revision is 410 Expired).
pub fn store_error(e: kplex_store::Error) -> ApiError {
    match e {
        kplex_store::Error::Compacted {
            requested,
            compacted,
        } => ApiError::resource_expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        kplex_store::Error::FutureRevision { requested, current } => {
            too_large_resource_version(requested, current)
        }
        other => ApiError::internal(&other.to_string()),
    }
}

/// The registry itself: the store plus what the generic code needs around it.
#[derive(Clone)]
pub struct Registry {
    pub store: Arc<dyn Store>,
    pub caches: Arc<cache::WatchCaches>,
    /// The admission plugins of every write (empty: none, as in unit tests).
    pub admission: Arc<admission::AdmissionChain>,
    /// Applies known to change nothing (see `apply.rs`).
    pub noop_applies: Arc<apply::NoopApplies>,
    /// Object-count limits; None: no quotas (embedded uses, unit tests).
    pub quota: Option<Arc<crate::quota::Quota>>,
    /// Other processes write the store (etcd, replicas): a watch without a resourceVersion
    /// starts from a store read, not from a watch cache that may lag it (see `watch.rs`).
    pub shared_store: bool,
    /// Objects the server itself reads again and again (workspace types, parents'
    /// LogicalClusters), kept parsed per resource version.
    decoded: Arc<Decoded>,
}

/// Parsed objects by store key, each valid for exactly one resource version: a lookup still
/// reads the key (a few µs), and only skips the parse when the version is unchanged.
#[derive(Default)]
struct Decoded(std::sync::Mutex<HashMap<String, (i64, Arc<Value>)>>);

/// Entries kept before the memo starts over: far more than the workspace types and parents
/// in use, and enough for the namespaces of the busiest workspaces, while a full memo
/// stays around a few MiB.
const DECODED_CAPACITY: usize = 1024;

impl Decoded {
    fn lookup(&self, key: &str, revision: i64) -> Option<Arc<Value>> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(rv, _)| *rv == revision)
            .map(|(_, v)| v.clone())
    }

    fn remember(&self, key: String, revision: i64, value: Arc<Value>) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= DECODED_CAPACITY {
                map.clear();
            }
            map.insert(key, (revision, value));
        }
    }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            caches: Arc::new(cache::WatchCaches::new(store.clone())),
            store,
            admission: Arc::default(),
            noop_applies: Arc::default(),
            quota: None,
            shared_store: false,
            decoded: Arc::default(),
        }
    }

    /// Like [`Registry::get`], parsed; for objects read far more often than they change.
    pub async fn get_parsed(&self, scope: &Scope, name: &str) -> Result<Arc<Value>, ApiError> {
        self.parsed_key(&scope.key(name)?)
            .await?
            .ok_or_else(|| scope.not_found(name))
    }

    /// The object under `key`, parsed at most once per resource version.
    pub async fn parsed_key(&self, key: &str) -> Result<Option<Arc<Value>>, ApiError> {
        let Some(kv) = self.store.get(key).await.map_err(store_error)? else {
            return Ok(None);
        };
        if let Some(parsed) = self.decoded.lookup(key, kv.mod_revision) {
            return Ok(Some(parsed));
        }
        let parsed = Arc::new(object::decode(&kv.value, kv.mod_revision)?);
        self.decoded
            .remember(key.to_string(), kv.mod_revision, parsed.clone());
        Ok(Some(parsed))
    }

    pub async fn get(&self, scope: &Scope, name: &str) -> Result<Stored, ApiError> {
        let key = scope.key(name)?;
        match self.store.get(&key).await.map_err(store_error)? {
            Some(kv) => Ok(Stored {
                bytes: kv.value,
                resource_version: kv.mod_revision,
            }),
            None => scope
                .shared(name)
                .and_then(|shared| shared.get(name))
                .ok_or_else(|| scope.not_found(name)),
        }
    }
}

/// An extra condition on the objects a request may see (virtual workspaces use it).
pub type Predicate = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// Label and field selectors of a list or watch, checked against the resource.
#[derive(Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub predicate: Option<Predicate>,
    /// A label every object the predicate admits carries: the watch cache then wakes
    /// this watch only for objects with (or losing) that label (kube's watch-cache
    /// "triggers"; a thousand syncers' views cost one wake-up per event, not a thousand).
    pub trigger: Option<String>,
}

impl std::fmt::Debug for Selectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selectors")
            .field("labels", &self.labels)
            .field("fields", &self.fields)
            .field("predicate", &self.predicate.is_some())
            .field("trigger", &self.trigger)
            .finish()
    }
}

impl Selectors {
    pub fn parse(
        desc: &ResourceDesc,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Self, ApiError> {
        let labels =
            LabelSelector::parse(labels.unwrap_or("")).map_err(|e| ApiError::bad_request(e.0))?;
        let fields =
            FieldSelector::parse(fields.unwrap_or("")).map_err(|e| ApiError::bad_request(e.0))?;
        for r in fields.requirements() {
            if !is_field_label(desc, &r.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(Self {
            labels,
            fields,
            predicate: None,
            trigger: None,
        })
    }

    /// The label a matching object must carry, if any: the explicit trigger, else the
    /// key of a label requirement that needs the label (`=`, `==`, `in`, exists).
    pub fn trigger_label(&self) -> Option<&str> {
        use kplex_apimachinery::selector::Operator;
        self.trigger.as_deref().or_else(|| {
            self.labels
                .requirements()
                .iter()
                .find(|r| {
                    matches!(
                        r.operator,
                        Operator::Equals | Operator::DoubleEquals | Operator::In | Operator::Exists
                    )
                })
                .map(|r| r.key.as_str())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty() && self.predicate.is_none()
    }

    pub fn matches(&self, desc: &ResourceDesc, obj: &Value) -> bool {
        self.labels.matches_object(obj)
            && self.fields.matches(|f| field_value(desc, obj, f))
            && self.predicate.as_ref().is_none_or(|p| p(obj))
    }

    /// [`Selectors::matches`] for a stored object, parsed only when it may match: one whose
    /// bytes lack the key of the label it must carry cannot. A list of one label's objects
    /// from the store (a syncer relisting after kplex restarted) reads every object of the
    /// resource; parsing them all was most of its cost.
    pub fn admits(&self, desc: &ResourceDesc, stored: &Stored) -> Result<bool, ApiError> {
        if self
            .trigger_label()
            .is_some_and(|key| !object::may_have_label(&stored.bytes, key))
        {
            return Ok(false);
        }
        Ok(self.matches(desc, &stored.decode()?))
    }
}

fn is_field_label(desc: &ResourceDesc, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || desc.field_labels.iter().any(|(l, _)| l == field)
}

/// The value of a field-selector label on `obj` (scalars rendered as strings, like kube).
pub fn field_value(desc: &ResourceDesc, obj: &Value, field: &str) -> Option<String> {
    let path = match field {
        "metadata.name" => ".metadata.name",
        "metadata.namespace" => ".metadata.namespace",
        _ => desc
            .field_labels
            .iter()
            .find(|(l, _)| l == field)?
            .1
            .as_str(),
    };
    let p = kplex_schema::jsonpath::parse(path).ok()?;
    p.find(obj).first().map(|v| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(obj: &Value) -> Stored {
        Stored {
            bytes: object::encode(obj).expect("encodes"),
            resource_version: 7,
        }
    }

    #[test]
    fn a_stored_object_is_parsed_only_when_it_may_carry_the_selected_label() {
        let desc = crate::catalog::system(
            ("example.dev", "v1"),
            ("Widget", "widgets"),
            &[],
            Vec::new(),
            &json!({}),
        );
        let team_a = Selectors::parse(&desc, Some("team=a"), None).expect("a selector");
        let labelled = |team: &str| json!({"metadata": {"name": "w", "labels": {"team": team}}});
        assert!(
            team_a
                .admits(&desc, &stored(&labelled("a")))
                .expect("parsed")
        );
        assert!(
            !team_a
                .admits(&desc, &stored(&labelled("b")))
                .expect("parsed")
        );
        // Stored bytes without the key are skipped unparsed: even bytes that would not
        // parse are no error.
        let mut unparsable = stored(&json!({"metadata": {"name": "w"}})).bytes.to_vec();
        unparsable.truncate(unparsable.len() - 2);
        let unparsable = Stored {
            bytes: unparsable.into(),
            resource_version: 7,
        };
        assert!(!team_a.admits(&desc, &unparsable).expect("not parsed"));
        // Without a label that must be there (`!=` matches objects without it), every
        // object is parsed.
        let not_b = Selectors::parse(&desc, Some("team!=b"), None).expect("a selector");
        assert!(not_b.admits(&desc, &unparsable).is_err());
        assert!(
            not_b
                .admits(&desc, &stored(&labelled("a")))
                .expect("parsed")
        );
    }
}
