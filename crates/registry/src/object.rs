//! How objects are kept in the store, and how stored bytes become responses without being
//! parsed again.
//!
//! Objects are stored as compact JSON *without* `metadata.resourceVersion` (the store's
//! mod revision is the resource version), behind a 6-byte header that records where the
//! `metadata` object's body starts. Serving a GET, LIST or watch event splices
//! `"resourceVersion":"N"` in at that offset — no parse, no re-serialisation.

use std::collections::BTreeMap;

use bytes::Bytes;
use kplex_apimachinery::ApiError;
use serde_json::{Map, Value};

/// The annotation that names an object's logical cluster. It is the storage key's, never the
/// client's (the registry stamps it on every write): wildcard views and every controller that
/// routes by it (kcp's, a provider's through its APIExport view) trust it, so a tenant that
/// could set it would act as another.
pub const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";
/// `<prefix><target key>`: one placement target's status of an object placed on several
/// (kcp's annotation). It is status kept in metadata, never the object's intent: kinds whose
/// generation follows their annotations (a Deployment's) do not count it.
pub const STATUS_ANNOTATION_PREFIX: &str = "experimental.status.workload.kcp.io/";

/// An object a control plane makes by itself in namespaces (see [`NAMESPACE_DEFAULTS`]).
#[derive(Clone, Copy, Debug)]
pub struct NamespaceDefault {
    pub resource: &'static str,
    pub kind: &'static str,
    pub name: &'static str,
    /// The one namespace it is made in; `None`: every namespace.
    pub namespace: Option<&'static str>,
}

impl NamespaceDefault {
    /// Whether this is the default of namespace `namespace` named `name`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        name == self.name && self.namespace.is_none_or(|only| only == namespace)
    }
}

/// What a control plane makes by itself in namespaces (kube's serviceaccounts controller,
/// root-CA publisher, and the apiserver's own `default/kubernetes` Service): made by the
/// built-ins, never placed on a cluster (whose namespaces have their own), left out of
/// exports.
pub const NAMESPACE_DEFAULTS: [NamespaceDefault; 3] = [
    NamespaceDefault {
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        name: "default",
        namespace: None,
    },
    NamespaceDefault {
        resource: "configmaps",
        kind: "ConfigMap",
        name: "kube-root-ca.crt",
        namespace: None,
    },
    NamespaceDefault {
        resource: "services",
        kind: "Service",
        name: "kubernetes",
        namespace: Some("default"),
    },
];

/// Whether the object of `kind` named `name` in `namespace` is one of the
/// [`NAMESPACE_DEFAULTS`].
pub fn is_namespace_default(kind: &str, namespace: &str, name: &str) -> bool {
    NAMESPACE_DEFAULTS
        .iter()
        .any(|d| d.kind == kind && d.is(namespace, name))
}

/// The same by resource (plural) instead of kind.
pub fn is_namespace_default_resource(resource: &str, namespace: &str, name: &str) -> bool {
    NAMESPACE_DEFAULTS
        .iter()
        .any(|d| d.resource == resource && d.is(namespace, name))
}

/// An object's annotations other than per-target status reports.
pub fn intent_annotations(obj: &Value) -> Option<Map<String, Value>> {
    let mut a = obj.pointer("/metadata/annotations")?.as_object()?.clone();
    a.retain(|k, _| !k.starts_with(STATUS_ANNOTATION_PREFIX));
    Some(a)
}

const MAGIC: [u8; 2] = [b'k', 1];
const HEADER: usize = 6;

/// Serialises `obj` for storage. `apiVersion`, `kind` and `metadata` go first, then the
/// other fields in their order. `metadata.resourceVersion` is dropped.
pub fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let map = obj
        .as_object()
        .ok_or_else(|| ApiError::internal("object is not a JSON object"))?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.push(b'{');
    let mut first = true;
    let mut offset = 0usize;
    let ordered = ["apiVersion", "kind", "metadata"]
        .into_iter()
        .filter_map(|k| map.get_key_value(k))
        .chain(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")),
        );
    for (key, value) in ordered {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json(&mut out, &Value::String(key.clone()))?;
        out.push(b':');
        match (key.as_str(), value) {
            ("metadata", Value::Object(meta)) => {
                out.push(b'{');
                offset = out.len() - HEADER;
                let mut first_field = true;
                for (k, v) in meta.iter().filter(|(k, _)| k.as_str() != "resourceVersion") {
                    if !first_field {
                        out.push(b',');
                    }
                    first_field = false;
                    write_json(&mut out, &Value::String(k.clone()))?;
                    out.push(b':');
                    write_json(&mut out, v)?;
                }
                out.push(b'}');
            }
            _ => write_json(&mut out, value)?,
        }
    }
    out.push(b'}');
    if offset == 0 {
        return Err(ApiError::internal("object has no metadata"));
    }
    let offset = u32::try_from(offset).map_err(|_| ApiError::internal("object too large"))?;
    out[2..HEADER].copy_from_slice(&offset.to_le_bytes());
    Ok(Bytes::from(out))
}

fn write_json(out: &mut Vec<u8>, v: &Value) -> Result<(), ApiError> {
    serde_json::to_writer(out, v).map_err(|e| ApiError::internal(&e.to_string()))
}

/// The JSON of a stored object with its resource version spliced in.
pub fn render(stored: &[u8], resource_version: i64) -> Vec<u8> {
    let Some((offset, json)) = split(stored) else {
        // Not ours (e.g. written by another tool): serve as is.
        return stored.to_vec();
    };
    let rv = format!("\"resourceVersion\":\"{resource_version}\"");
    let mut out = Vec::with_capacity(json.len() + rv.len() + 1);
    out.extend_from_slice(&json[..offset]);
    out.extend_from_slice(rv.as_bytes());
    if json.get(offset) != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(&json[offset..]);
    out
}

/// Rewrites the leading `"apiVersion"` of a rendered object (stored objects always start
/// with it) to `want`: the `None` conversion between the versions of a CRD.
pub fn with_api_version(mut json: Vec<u8>, want: &str) -> Vec<u8> {
    const KEY: &[u8] = b"{\"apiVersion\":\"";
    if !json.starts_with(KEY) {
        return json;
    }
    let Some(len) = json[KEY.len()..].iter().position(|b| *b == b'"') else {
        return json;
    };
    if &json[KEY.len()..KEY.len() + len] != want.as_bytes() {
        json.splice(KEY.len()..KEY.len() + len, want.bytes());
    }
    json
}

/// Appends the rendered object to `out` (for lists and watch events).
pub fn render_into(out: &mut Vec<u8>, stored: &[u8], resource_version: i64) {
    out.extend_from_slice(&render(stored, resource_version));
}

/// The keys of a stored object's labels, read without building the rest of the object.
pub fn label_keys(stored: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        #[serde(default)]
        labels: Option<BTreeMap<String, serde::de::IgnoredAny>>,
    }
    let json = split(stored).map_or(stored, |(_, json)| json);
    serde_json::from_slice::<Object>(json)
        .ok()
        .and_then(|o| o.metadata?.labels)
        .map(|l| l.into_keys().collect())
        .unwrap_or_default()
}

/// False only when a stored object certainly lacks label `key`: kplex writes JSON with
/// serde_json, which escapes no character a label key may hold, so the label's key appears
/// verbatim, quoted. (Bytes another tool wrote may escape differently: true.) A cheap test
/// that spares parsing the objects a watch of one label skips.
pub fn may_have_label(stored: &[u8], key: &str) -> bool {
    let Some((_, json)) = split(stored) else {
        return true;
    };
    let quoted = format!("\"{key}\"");
    memchr::memmem::find(json, quoted.as_bytes()).is_some()
}

/// Parses a stored object, with its resource version set.
pub fn decode(stored: &[u8], resource_version: i64) -> Result<Value, ApiError> {
    let json = match split(stored) {
        Some((_, json)) => json,
        None => stored,
    };
    let mut obj: Value = serde_json::from_slice(json)
        .map_err(|e| ApiError::internal(&format!("stored object is not valid JSON: {e}")))?;
    set_resource_version(&mut obj, resource_version);
    Ok(obj)
}

pub fn set_resource_version(obj: &mut Value, resource_version: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(resource_version.to_string()),
        );
    }
}

fn split(stored: &[u8]) -> Option<(usize, &[u8])> {
    if stored.len() < HEADER || stored[..2] != MAGIC {
        return None;
    }
    let mut b = [0u8; 4];
    b.copy_from_slice(&stored[2..HEADER]);
    let offset = u32::from_le_bytes(b) as usize;
    let json = &stored[HEADER..];
    (offset <= json.len()).then_some((offset, json))
}

/// Store keys, laid out like kcp's:
/// `/registry/[<group>/]<resource>/<logical-cluster>/[<namespace>/]<name>`.
pub mod keys {
    pub fn resource_prefix(group: &str, resource: &str) -> String {
        if group.is_empty() {
            format!("/registry/{resource}/")
        } else {
            format!("/registry/{group}/{resource}/")
        }
    }

    pub fn cluster_prefix(group: &str, resource: &str, cluster: &str) -> String {
        format!("{}{cluster}/", resource_prefix(group, resource))
    }

    pub fn namespace_prefix(group: &str, resource: &str, cluster: &str, namespace: &str) -> String {
        format!("{}{namespace}/", cluster_prefix(group, resource, cluster))
    }

    pub fn object(
        group: &str,
        resource: &str,
        cluster: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> String {
        match namespace {
            Some(ns) => format!("{}{name}", namespace_prefix(group, resource, cluster, ns)),
            None => format!("{}{name}", cluster_prefix(group, resource, cluster)),
        }
    }
}

/// An empty JSON object map (for building objects).
pub fn object() -> Map<String, Value> {
    Map::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_keys_and_the_quick_label_test() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"state.workload.kcp.io/abc": "Sync", "app": "web"}},
            "data": {"other/label": "a data key, not a label"}});
        let stored = encode(&obj).unwrap();
        assert_eq!(label_keys(&stored), ["app", "state.workload.kcp.io/abc"]);
        assert!(may_have_label(&stored, "state.workload.kcp.io/abc"));
        assert!(!may_have_label(&stored, "state.workload.kcp.io/ab"));
        // A false positive (the key elsewhere) only costs a parse; never a false negative.
        assert!(may_have_label(&stored, "other/label"));
        assert!(!label_keys(&stored).contains(&"other/label".to_string()));
        let bare = encode(&json!({"metadata": {"name": "y"}})).unwrap();
        assert!(label_keys(&bare).is_empty());
        // Bytes not written by kplex are never ruled out.
        assert!(may_have_label(br#"{"metadata":{}}"#, "app"));
    }

    #[test]
    fn splices_resource_version_without_parsing() {
        let obj = json!({"data": {"a": "1"}, "metadata": {"name": "x", "resourceVersion": "5", "labels": {"metadata": "{"}}, "kind": "ConfigMap", "apiVersion": "v1"});
        let stored = encode(&obj).unwrap();
        let out = render(&stored, 42);
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["metadata"]["resourceVersion"], "42");
        assert_eq!(parsed["metadata"]["name"], "x");
        assert_eq!(parsed["data"]["a"], "1");
        assert!(String::from_utf8(out).unwrap().starts_with(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"resourceVersion":"42","name":"x""#
        ));
        assert_eq!(
            decode(&stored, 7).unwrap()["metadata"]["resourceVersion"],
            "7"
        );
    }

    #[test]
    fn empty_metadata_and_foreign_bytes() {
        let stored = encode(&json!({"metadata": {}})).unwrap();
        let out: Value = serde_json::from_slice(&render(&stored, 1)).unwrap();
        assert_eq!(out, json!({"metadata": {"resourceVersion": "1"}}));
        assert_eq!(render(b"{\"a\":1}", 3), b"{\"a\":1}".to_vec());
        assert!(encode(&json!({"kind": "X"})).is_err());
        assert!(decode(b"k\x01\xff\xff\xff\xffnot json", 1).is_err());
    }

    #[test]
    fn converts_api_version_in_place() {
        let stored = encode(
            &json!({"apiVersion": "example.com/v1beta1", "kind": "W", "metadata": {"name": "w"}}),
        )
        .unwrap();
        let out = with_api_version(render(&stored, 3), "example.com/v1");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (
                v["apiVersion"].as_str(),
                v["metadata"]["resourceVersion"].as_str()
            ),
            (Some("example.com/v1"), Some("3"))
        );
        assert_eq!(with_api_version(b"[]".to_vec(), "v1"), b"[]".to_vec());
    }

    #[test]
    fn key_layout() {
        assert_eq!(
            keys::object("", "configmaps", "root", Some("default"), "x"),
            "/registry/configmaps/root/default/x"
        );
        assert_eq!(
            keys::object("apps", "deployments", "abc", Some("ns"), "d"),
            "/registry/apps/deployments/abc/ns/d"
        );
        assert_eq!(
            keys::object("", "namespaces", "root", None, "default"),
            "/registry/namespaces/root/default"
        );
    }
}
