//! APIs as a service (kcp's `apis.kcp.io`): a provider publishes APIResourceSchemas through an
//! APIExport in its own workspace; an APIBinding in a consumer workspace makes the exported
//! resources served there as if they were the consumer's own CRDs; the provider's controller
//! sees every consumer's objects through the APIExport virtual workspace.
//!
//! - `schemas`/`convert`: the kinds and their v1alpha1 ⇄ v1alpha2 conversion;
//! - `export`: identity (secret → `status.identityHash`) and the default endpoint slice;
//! - `binding`: resolving an export, naming conflicts, serving the bound resources;
//! - `admission`: `bind` permission, immutable specs, CRDs over bound resources;
//! - `view`: what the provider's view serves and how (`/services/apiexport/<cluster>/<export>/
//!   clusters/…`), mounted as the server's virtual workspace by `virtual_workspace`;
//! - `policy`: the maximal permission policy, an authorization hook.
//!
//! Bound objects are stored under `/registry/<group>/<resource>/<identityHash>/<cluster>/…`
//! (see [`ResourceDesc::storage_resource`]), so two exports of one group/resource never share
//! storage and the provider's wildcard view is one prefix.

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod binding;
pub mod controllers;
pub mod convert;
pub mod export;
pub mod feature;
pub mod policy;
mod schemas;
pub mod view;
pub mod virtual_workspace;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use kplex_registry::catalog::{BoundInfo, Column, Origin, ResourceDesc, system};

// The modules of the crates below under the names this crate's code uses.
pub(crate) use kplex_auth::authz;
pub(crate) use kplex_registry::{catalog, crd, registry, served};
pub(crate) use kplex_tenancy as tenancy;

pub const GROUP: &str = "apis.kcp.io";
pub const V1: &str = "v1alpha1";
pub const V2: &str = "v1alpha2";
/// Keeps an APIBinding until the objects of its resources are gone.
pub const BINDING_FINALIZER: &str = "apis.kcp.io/apibinding-finalizer";
/// Where identity secrets live by default.
pub const IDENTITY_NAMESPACE: &str = "kcp-system";
/// Prefix of the user and groups the maximal permission policy checks in the export's
/// workspace.
pub const POLICY_PREFIX: &str = "apis.kcp.io:binding:";

fn kind(
    version: &str,
    (kind, plural): (&str, &str),
    columns: Vec<Column>,
    schema: Value,
    conversion: Option<crate::catalog::Conversion>,
) -> ResourceDesc {
    let mut d = system((GROUP, version), (kind, plural), &[], columns, &schema);
    d.conversion = conversion;
    d
}

/// The `apis.kcp.io` kinds every logical cluster serves (v1alpha2 first: the preferred
/// version of exports and bindings).
pub fn resources() -> Vec<ResourceDesc> {
    let binding_columns = || {
        vec![
            Column::name(),
            Column::path("Export", "string", ".spec.reference.export.name"),
            Column::path("Phase", "string", ".status.phase"),
            Column::age(),
        ]
    };
    vec![
        kind(
            V2,
            ("APIExport", "apiexports"),
            vec![Column::name(), Column::age()],
            schemas::api_export_v2(),
            Some(convert::export),
        ),
        kind(
            V2,
            ("APIBinding", "apibindings"),
            binding_columns(),
            schemas::api_binding_v2(),
            Some(convert::binding),
        ),
        kind(
            V1,
            ("APIResourceSchema", "apiresourceschemas"),
            vec![Column::name(), Column::age()],
            schemas::api_resource_schema(),
            None,
        ),
        kind(
            V1,
            ("APIExport", "apiexports"),
            vec![Column::name(), Column::age()],
            schemas::api_export_v1(),
            Some(convert::export),
        ),
        kind(
            V1,
            ("APIBinding", "apibindings"),
            binding_columns(),
            schemas::api_binding_v1(),
            Some(convert::binding),
        ),
        kind(
            V1,
            ("APIExportEndpointSlice", "apiexportendpointslices"),
            vec![
                Column::name(),
                Column::path("Export", "string", ".spec.export.name"),
                Column::age(),
            ],
            schemas::endpoint_slice(),
            None,
        ),
    ]
    .into_iter()
    .map(|d| match d.plural.as_str() {
        "apiresourceschemas" => d.with_strategy(Arc::new(admission::SchemaRules)),
        "apibindings" => d.with_strategy(Arc::new(admission::BindingRules)),
        _ => d,
    })
    .collect()
}

/// kcp's identity hash: hex(sha256(key)).
pub fn identity_hash(key: &[u8]) -> String {
    Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` has the `<prefix>.<plural>.<group>` shape APIResourceSchemas need.
pub fn schema_name_matches(name: &str, spec: &Value) -> bool {
    let plural = spec.pointer("/names/plural").and_then(Value::as_str);
    let group = spec.get("group").and_then(Value::as_str);
    match (convert::schema_resource(name), plural, group) {
        (Some((p, g)), Some(plural), Some(group)) => p == plural && g == group,
        _ => false,
    }
}

/// The resource descriptions an APIResourceSchema serves through a binding (one per served
/// version): the schema is read as the CRD it stands for.
pub fn bound_descriptions(schema: &Value, info: BoundInfo) -> Vec<ResourceDesc> {
    let mut spec = schema.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(versions) = spec.get_mut("versions").and_then(Value::as_array_mut) {
        for v in versions {
            let s = v.get("schema").cloned().unwrap_or_else(|| json!({}));
            v["schema"] = json!({"openAPIV3Schema": s});
        }
    }
    let crd = json!({"metadata": {"name": info.schema}, "spec": spec});
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let info = Arc::new(BoundInfo {
        storage_version,
        ..info
    });
    crate::crd::descriptions(&crd)
        .into_iter()
        .map(|mut d| {
            d.origin = Origin::Bound(info.clone());
            d
        })
        .collect()
}

/// A permission claim a consumer accepted: what the provider may do with which of the
/// consumer's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedClaim {
    pub group: String,
    pub resource: String,
    pub identity: String,
    /// Export verbs ∩ binding verbs (`*` = all).
    pub verbs: Vec<String>,
    /// `selector.matchLabels` (None: every object).
    pub labels: Option<BTreeMap<String, String>>,
}

impl AcceptedClaim {
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    pub fn selects(&self, obj: &Value) -> bool {
        let Some(want) = &self.labels else {
            return true;
        };
        let labels = obj.pointer("/metadata/labels");
        want.iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str()))
    }
}

/// One consumer of an export: its binding and the claims it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub binding: String,
    pub claims: Vec<AcceptedClaim>,
}

/// What the `apis.kcp.io` controllers and views work with: the registry, the resource and
/// cluster indexes, the server's public URL (endpoint slices), and the export index they keep.
#[derive(Clone)]
pub struct Apis {
    pub registry: crate::registry::Registry,
    pub served: Arc<crate::served::Served>,
    /// `https://host:port`, the base of every virtual workspace URL.
    pub base_url: String,
    pub exports: Arc<Index>,
    /// Whether this replica writes (it leads the controllers): followers only serve what
    /// bindings bind, the leader also writes statuses, finalizers, identities and slices.
    pub leading: Arc<std::sync::atomic::AtomicBool>,
    /// A reconcile went without writing (not leading): the next term queues everything.
    pub skipped: Arc<std::sync::atomic::AtomicBool>,
}

impl Apis {
    /// Whether the controllers may write here (see [`Apis::leading`]); a "no" is
    /// remembered, so a new leader redoes what went without writing.
    pub fn writes(&self) -> bool {
        use std::sync::atomic::Ordering;
        let leading = self.leading.load(Ordering::Acquire);
        if !leading {
            self.skipped.store(true, Ordering::Release);
        }
        leading
    }
}

/// Which logical clusters bind which export: `(export cluster, export)` → consumer cluster →
/// binding. Kept by the binding controller; read by the virtual workspace.
#[derive(Default)]
pub struct Index {
    exports: RwLock<HashMap<(String, String), Consumers>>,
}

/// Consumer logical cluster → its binding to one export.
pub type Consumers = HashMap<String, Arc<Consumer>>;

impl Index {
    /// Records that `consumer` binds the export (or, with None, no longer does); true when
    /// that changed whether the export has consumers at all.
    pub fn set(&self, export: (&str, &str), consumer: &str, state: Option<Consumer>) -> bool {
        let Ok(mut exports) = self.exports.write() else {
            return false;
        };
        let key = (export.0.to_string(), export.1.to_string());
        let consumers = exports.entry(key.clone()).or_default();
        let before = consumers.is_empty();
        match state {
            Some(s) => {
                consumers.insert(consumer.to_string(), Arc::new(s));
            }
            None => {
                consumers.remove(consumer);
            }
        }
        let after = consumers.is_empty();
        if after {
            exports.remove(&key);
        }
        before != after
    }

    pub fn consumer(&self, export: (&str, &str), consumer: &str) -> Option<Arc<Consumer>> {
        let exports = self.exports.read().ok()?;
        exports
            .get(&(export.0.to_string(), export.1.to_string()))?
            .get(consumer)
            .cloned()
    }

    pub fn consumers(&self, export: (&str, &str)) -> Consumers {
        self.exports
            .read()
            .ok()
            .and_then(|e| {
                e.get(&(export.0.to_string(), export.1.to_string()))
                    .cloned()
            })
            .unwrap_or_default()
    }

    /// Forgets every consumer in `cluster` (a deleted logical cluster).
    pub fn remove_consumer_cluster(&self, cluster: &str) {
        if let Ok(mut exports) = self.exports.write() {
            for consumers in exports.values_mut() {
                consumers.remove(cluster);
            }
            exports.retain(|_, c| !c.is_empty());
        }
    }
}

/// A condition to report: (type, status, reason, message).
pub type Cond<'a> = (&'a str, bool, &'a str, String);

/// `status.conditions` from `wanted`, keeping the transition time of those whose status did
/// not change (so an unchanged status writes nothing).
pub fn conditions(prev: &Value, wanted: &[Cond<'_>]) -> Value {
    let old = prev.pointer("/status/conditions").and_then(Value::as_array);
    let now = kplex_apimachinery::meta::now_rfc3339();
    Value::Array(
        wanted
            .iter()
            .map(|(type_, ok, reason, message)| {
                let status = if *ok { "True" } else { "False" };
                let since = old
                    .into_iter()
                    .flatten()
                    .find(|c| {
                        c.get("type").and_then(Value::as_str) == Some(type_)
                            && c.get("status").and_then(Value::as_str) == Some(status)
                    })
                    .and_then(|c| c.get("lastTransitionTime").cloned())
                    .unwrap_or_else(|| Value::String(now.clone()));
                let mut c = json!({"type": type_, "status": status, "lastTransitionTime": since});
                if !ok {
                    c["severity"] = json!("Error");
                }
                if !reason.is_empty() {
                    c["reason"] = json!(reason);
                }
                if !message.is_empty() {
                    c["message"] = json!(message);
                }
                c
            })
            .collect(),
    )
}

/// The scope of an `apis.kcp.io` kind in one logical cluster.
pub fn scope(
    served: &crate::served::Served,
    cluster: &str,
    version: &str,
    plural: &str,
) -> Option<crate::registry::Scope> {
    Some(crate::registry::Scope {
        cluster: Some(cluster.to_string()),
        desc: served.lookup(Some(cluster), GROUP, version, plural)?,
        namespace: None,
    })
}

/// Reads an object, None when it does not exist.
pub async fn get(
    registry: &crate::registry::Registry,
    scope: &crate::registry::Scope,
    name: &str,
) -> Result<Option<Value>, kplex_apimachinery::ApiError> {
    match registry.get(scope, name).await {
        Ok(s) => Ok(Some(s.decode_as(&scope.desc)?)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_compile_and_identity_is_sha256_hex() {
        for d in resources() {
            assert!(d.schema.is_some(), "{} {} compiles", d.kind, d.version);
        }
        assert_eq!(
            identity_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let spec = json!({"group": "example.dev", "names": {"plural": "widgets"}});
        assert!(schema_name_matches("v1.widgets.example.dev", &spec));
        assert!(!schema_name_matches("widgets.example.dev", &spec));
    }

    #[test]
    fn bound_descriptions_store_under_the_identity() {
        let schema = json!({"metadata": {"name": "v1.widgets.example.dev"}, "spec": {
            "group": "example.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}},
                "subresources": {"status": {}}}]}});
        let d = bound_descriptions(
            &schema,
            BoundInfo {
                binding: "widgets".into(),
                export_cluster: "root".into(),
                export: "widgets".into(),
                identity: "abc".into(),
                schema: "v1.widgets.example.dev".into(),
                storage_version: String::new(),
                maximal_permission_policy: false,
            },
        );
        assert_eq!(d.len(), 1);
        assert!(d[0].status && d[0].schema.is_some());
        assert_eq!(d[0].storage_resource(), "widgets/abc");
        assert_eq!(d[0].bound().map(|b| b.storage_version.as_str()), Some("v1"));
    }

    #[test]
    fn index_tracks_whether_an_export_has_consumers() {
        let i = Index::default();
        let c = Consumer {
            binding: "b".into(),
            claims: vec![],
        };
        assert!(i.set(("root", "e"), "c1", Some(c.clone())));
        assert!(!i.set(("root", "e"), "c2", Some(c)));
        assert_eq!(i.consumers(("root", "e")).len(), 2);
        assert!(!i.set(("root", "e"), "c1", None));
        assert!(i.set(("root", "e"), "c2", None));
        assert!(i.consumer(("root", "e"), "c2").is_none());
    }
}
