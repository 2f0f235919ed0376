//! One workspace at a time (`kubectl ws snapshot`, `restore`, `fork`, `export`): its
//! objects, consistent at one store revision, in the snapshot file format
//! (`proto/kplex/snapshot/v1/snapshot.proto`, with `logical_cluster` set), and back.
//!
//! A snapshot reads the workspace's key range of every resource it serves, at one revision,
//! while everything goes on. A restore makes a workspace hold exactly a snapshot's objects:
//! keys and each object's `kcp.io/cluster` are rewritten to the workspace restored into,
//! objects that differ are written, objects the snapshot lacks are deleted — and nothing of
//! any other workspace is touched. Objects keep their uids (owner references stay valid);
//! their resourceVersions are new, so clients re-list, as after etcd's restore. The
//! controllers take the result up from the store's watch like any write (CRDs become served,
//! bindings bound), which is why no in-memory state needs restoring. Because a restore
//! writes below admission, the server lets only cluster administrators send one (see
//! `chain.rs`); its file is trusted as theirs.
//!
//! Not in a workspace's snapshot: the kinds whose strategies say so
//! (`Strategy::in_workspace_snapshot`: the workspace's LogicalCluster, child Workspaces,
//! Leases), and the owner's `workspace-admin` binding — a restore keeps the target's
//! (whoever owns the workspace keeps owning it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use kplex_apimachinery::ApiError;
use kplex_registry::object::{self, CLUSTER_ANNOTATION, keys};
use kplex_registry::served::Served;
use kplex_snapshot::Snapshot;
use kplex_store::{Op, Precondition, Store};
use serde_json::Value;

/// Writes and deletes in flight during a restore.
const CONCURRENCY: usize = 64;

/// The binding that makes a workspace's owner its admin (tenancy's); a restore keeps the
/// target's.
const OWNER_BINDING: &str = "workspace-admin";

/// What a restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub written: usize,
    pub unchanged: usize,
    pub deleted: usize,
}

/// The key prefixes of what `cluster` stores and its snapshot holds (the kinds' strategies
/// say which: `Strategy::in_workspace_snapshot`), once per storage location; and the
/// prefixes (every logical cluster's) of the kinds it leaves out.
fn storage_prefixes(served: &Served, cluster: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut prefixes = BTreeSet::new();
    let mut excluded = BTreeSet::new();
    for desc in served.resources(Some(cluster)) {
        let (group, resource) = (desc.storage_group(), desc.storage_resource());
        if desc.strategy.in_workspace_snapshot() {
            prefixes.insert(keys::cluster_prefix(group, &resource, cluster));
        } else {
            excluded.insert(keys::resource_prefix(group, &resource));
        }
    }
    (prefixes.into_iter().collect(), excluded)
}

/// The workspace `cluster` (at `path`) as a snapshot, online.
pub async fn take(
    store: &dyn Store,
    served: &Served,
    cluster: &str,
    path: &str,
    written_by: &str,
) -> Result<Snapshot, ApiError> {
    let (prefixes, _) = storage_prefixes(served, cluster);
    let mut snapshot =
        kplex_snapshot::take_prefixes(store, &prefixes, "a running kplex", written_by)
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?;
    let owner = owner_binding_key(cluster);
    snapshot.entries.retain(|kv| kv.key != owner);
    snapshot.header.count = snapshot.entries.len() as u64;
    snapshot.header.logical_cluster = cluster.to_string();
    snapshot.header.workspace = path.to_string();
    Ok(snapshot)
}

fn owner_binding_key(cluster: &str) -> String {
    keys::object(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        cluster,
        None,
        OWNER_BINDING,
    )
}

/// `key` of logical cluster `from` as the same key of `to` (None: not a key of `from`).
/// Keys are `/registry/[<group>/]<resource…>/<cluster>/…`: the first segment equal to
/// `from` is the cluster's (logical cluster names never equal a group or resource).
pub fn rewrite_key(key: &str, from: &str, to: &str) -> Option<String> {
    let marker = format!("/{from}/");
    let at = key.strip_prefix("/registry")?.find(&marker)? + "/registry".len();
    Some(format!("{}/{to}/{}", &key[..at], &key[at + marker.len()..]))
}

/// A stored object as it is stored in logical cluster `to`.
pub fn rewrite_value(value: &[u8], to: &str) -> Result<Bytes, ApiError> {
    let mut obj = object::decode(value, 0)?;
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(CLUSTER_ANNOTATION.into(), Value::String(to.into()));
        }
    }
    object::encode(&obj)
}

/// Makes workspace `cluster` hold exactly `snapshot`'s objects (see the module docs).
pub async fn restore(
    store: &Arc<dyn Store>,
    served: &Served,
    cluster: &str,
    snapshot: &Snapshot,
) -> Result<Restored, ApiError> {
    let from = snapshot.header.logical_cluster.as_str();
    if from.is_empty() {
        return Err(ApiError::bad_request(
            "this snapshot holds a whole store, not one workspace: restore it with `kplex snapshot restore`",
        ));
    }
    let owner = owner_binding_key(cluster);
    let (_, excluded) = storage_prefixes(served, cluster);
    let is_excluded = |key: &str| excluded.iter().any(|p| key.starts_with(p.as_str()));
    let mut wanted = BTreeMap::new();
    for kv in &snapshot.entries {
        let key = rewrite_key(&kv.key, from, cluster).ok_or_else(|| {
            ApiError::bad_request(format!(
                "the snapshot's key {} is not one of logical cluster {from}",
                kv.key
            ))
        })?;
        if key != owner && !is_excluded(&key) {
            wanted.insert(key, rewrite_value(&kv.value, cluster)?);
        }
    }
    let current: BTreeMap<String, Bytes> = take(store.as_ref(), served, cluster, "", "")
        .await?
        .entries
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let mut ops = Vec::new();
    let mut restored = Restored::default();
    for (key, value) in &wanted {
        match current.get(key) {
            Some(now) if now == value => restored.unchanged += 1,
            _ => ops.push(Op::put(key.clone(), value.clone(), Precondition::None)),
        }
    }
    restored.written = ops.len();
    for key in current.keys().filter(|k| !wanted.contains_key(*k)) {
        ops.push(Op::delete(key.clone(), Precondition::Exists));
        restored.deleted += 1;
    }
    futures::stream::iter(ops)
        .map(|op| async move { store.txn(op).await })
        .buffer_unordered(CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .map_err(|e| ApiError::internal(&format!("restoring: {e}")))?;
    Ok(restored)
}

/// A workspace's objects as YAML manifests a GitOps repository can hold: what the server
/// set (uid, resourceVersion, timestamps, managed fields, generation, status, the cluster
/// annotation) left out; namespaces and CRDs first (custom resources map once their CRD is
/// established: `kubectl apply -f` the file again, as with any such manifest).
pub fn export(snapshot: &Snapshot) -> Result<String, ApiError> {
    let mut objects = Vec::with_capacity(snapshot.entries.len());
    for kv in &snapshot.entries {
        let mut obj = object::decode(&kv.value, 0)?;
        if is_generated(&obj) {
            continue;
        }
        strip_server_fields(&mut obj);
        objects.push(obj);
    }
    objects.sort_by_key(|o| {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "Namespace" => 0,
            "CustomResourceDefinition" => 1,
            _ => 2,
        }
    });
    let mut out = String::new();
    for obj in &objects {
        out.push_str("---\n");
        out.push_str(
            &serde_saphyr::to_string(obj).map_err(|e| ApiError::internal(&e.to_string()))?,
        );
    }
    Ok(out)
}

/// Objects the server makes by itself in every namespace (a manifest should not carry
/// them: applying it elsewhere makes them anyway).
fn is_generated(obj: &Value) -> bool {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let at = |field: &str| {
        obj.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    object::is_namespace_default(kind, at("namespace"), at("name")) || kind == "Event"
}

fn strip_server_fields(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
    }
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove(CLUSTER_ANNOTATION);
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_move_to_the_other_cluster_and_nothing_else_changes() {
        assert_eq!(
            rewrite_key("/registry/configmaps/abc/default/x", "abc", "xyz").as_deref(),
            Some("/registry/configmaps/xyz/default/x")
        );
        assert_eq!(
            rewrite_key(
                "/registry/example.com/widgets/customresources/abc/ns/abc",
                "abc",
                "xyz"
            )
            .as_deref(),
            Some("/registry/example.com/widgets/customresources/xyz/ns/abc"),
            "only the cluster segment, even when a name repeats it"
        );
        assert_eq!(
            rewrite_key("/registry/configmaps/other/default/x", "abc", "xyz"),
            None
        );
    }

    #[test]
    fn values_carry_the_new_cluster() {
        let stored = object::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "uid": "u1", "annotations": {CLUSTER_ANNOTATION: "abc"}}}))
        .unwrap();
        let moved = object::decode(&rewrite_value(&stored, "xyz").unwrap(), 7).unwrap();
        assert_eq!(moved["metadata"]["annotations"][CLUSTER_ANNOTATION], "xyz");
        assert_eq!(moved["metadata"]["uid"], "u1", "uids are kept");
    }

    #[test]
    fn exports_leave_out_what_the_server_sets() {
        let entry = |obj: Value| kplex_store::KeyValue {
            key: String::new(),
            value: object::encode(&obj).unwrap(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        };
        let snapshot = Snapshot {
            header: Default::default(),
            entries: vec![
                entry(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "app", "namespace": "team", "uid": "u",
                        "managedFields": [], "annotations": {CLUSTER_ANNOTATION: "abc"}},
                    "data": {"a": "1"}})),
                entry(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": "team"}})),
                entry(json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "team"}, "status": {"phase": "Active"}})),
            ],
        };
        let yaml = export(&snapshot).unwrap();
        let docs: Vec<&str> = yaml.split("---\n").filter(|d| !d.is_empty()).collect();
        assert_eq!(docs.len(), 2, "{yaml}");
        assert!(docs[0].contains("kind: Namespace") && !docs[0].contains("status"));
        let app = kplex_registry::codec::decode_yaml(docs[1].as_bytes()).unwrap();
        assert_eq!(app["data"]["a"], "1", "{yaml}");
        for gone in ["uid", "managedFields", CLUSTER_ANNOTATION, "annotations"] {
            assert!(!docs[1].contains(gone), "{gone}: {yaml}");
        }
    }
}
