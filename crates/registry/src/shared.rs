//! Objects every logical cluster has without storing them: kube's bootstrap RBAC policy
//! (`cluster-admin`, `view`, …), which kcp keeps in one place (its bootstrap-policy
//! authorizer) instead of copying it into every workspace. GET, LIST and WATCH in each
//! logical cluster serve them as if stored there; writes to them are refused — so an empty
//! workspace still costs only what it stores.
//!
//! A kind opts in through [`ResourceDesc::shared`](crate::catalog::ResourceDesc); the owning
//! feature supplies the objects. Only cluster-scoped kinds have shared objects, and a name a
//! shared object holds cannot be created in any workspace, so stored and shared objects
//! never collide.

use std::collections::BTreeMap;

use bytes::Bytes;
use kplex_apimachinery::{ApiError, meta};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::object;
use crate::registry::Stored;

/// The resourceVersion shared objects carry. They never change, so every watch starts past
/// them and no event is ever sent for them after the initial state.
pub const RESOURCE_VERSION: i64 = 1;

/// When shared objects say they were created (kube's bootstrap roles carry the cluster's
/// first start; shared ones have no such moment, so a fixed one keeps replicas identical).
const CREATED: &str = "2026-01-01T00:00:00Z";

/// A kind's shared objects by name, encoded once as the store would hold them.
#[derive(Debug, Default)]
pub struct SharedObjects {
    by_name: BTreeMap<String, Bytes>,
}

impl SharedObjects {
    /// `objects` are complete but for server-set metadata: each gets a uid derived from its
    /// kind and name (the same on every replica and after restarts) and a creation time.
    /// Objects without a name are skipped.
    pub fn new(objects: impl IntoIterator<Item = Value>) -> Self {
        let mut by_name = BTreeMap::new();
        for mut obj in objects {
            let Some(name) = meta::name(&obj).map(str::to_string) else {
                continue;
            };
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            let uid = stable_uid(kind, &name);
            meta::set_uid(&mut obj, &uid);
            meta::set_creation_timestamp(&mut obj, CREATED);
            if let Ok(bytes) = object::encode(&obj) {
                by_name.insert(name, bytes);
            }
        }
        Self { by_name }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<Stored> {
        self.by_name.get(name).map(stored)
    }

    /// Every shared object in name order (the store's key order within one cluster).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Stored)> {
        self.by_name
            .iter()
            .map(|(name, bytes)| (name.as_str(), stored(bytes)))
    }

    /// The answer to a write of a shared object: 403, as kube answers a write a policy
    /// forbids, saying what to do instead.
    pub fn read_only(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::forbidden(
            group,
            resource,
            name,
            "it is part of the bootstrap policy every workspace shares, which is read-only; \
             create one under another name",
        )
    }
}

fn stored(bytes: &Bytes) -> Stored {
    Stored {
        bytes: bytes.clone(),
        resource_version: RESOURCE_VERSION,
    }
}

/// A version-4-shaped uid from a hash of the kind and name.
fn stable_uid(kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("kplex-shared/{kind}/{name}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_get_stable_metadata_and_name_order() {
        let make = || {
            SharedObjects::new([
                json!({"kind": "ClusterRole", "metadata": {"name": "view"}}),
                json!({"kind": "ClusterRole", "metadata": {"name": "admin"}}),
                json!({"kind": "ClusterRole", "metadata": {}}),
            ])
        };
        let (a, b) = (make(), make());
        let names: Vec<&str> = a.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["admin", "view"]);
        let view = a.get("view").unwrap().decode().unwrap();
        assert_eq!(view["metadata"]["resourceVersion"], "1");
        assert_eq!(view["metadata"]["creationTimestamp"], CREATED);
        let uid = view["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 36);
        assert_eq!(
            b.get("view").unwrap().decode().unwrap()["metadata"]["uid"],
            uid.as_str()
        );
        assert_ne!(
            a.get("admin").unwrap().decode().unwrap()["metadata"]["uid"],
            uid.as_str()
        );
        assert!(!a.contains("edit"));
    }
}
