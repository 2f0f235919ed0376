//! Namespace lifecycle: a terminating namespace is emptied, then its `kubernetes`
//! finalizer released.

use std::collections::HashSet;

use kplex_apimachinery::{ApiError, meta};
use kplex_registry::registry::WriteOptions;
use serde_json::Value;

use super::Builtins;

impl Builtins {
    /// Namespace `name` of `cluster` with the scope it was read in (None: gone, or
    /// namespaces not served there).
    pub(super) async fn namespace(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<(kplex_registry::registry::Scope, Value)>, ApiError> {
        let Some(ns_desc) = self.desc(cluster, "", "v1", "namespaces") else {
            return Ok(None);
        };
        let scope = self.scope(cluster, ns_desc, None);
        match self.registry.get(&scope, name).await {
            Ok(s) => Ok(Some((scope, s.decode()?))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Empties a terminating namespace, then releases its `kubernetes` finalizer.
    pub(super) async fn reconcile_namespace(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some((scope, ns)) = self.namespace(cluster, name).await? else {
            return Ok(true);
        };
        if meta::deletion_timestamp(&ns).is_none() {
            return Ok(true);
        }
        let mut remaining = 0;
        let mut seen = HashSet::new();
        for desc in self
            .served
            .resources(Some(cluster))
            .into_iter()
            .filter(|d| d.namespaced)
        {
            // Versions of one resource share storage; empty each storage location once.
            if seen.insert((desc.group.clone(), desc.plural.clone())) {
                remaining += self.delete_all(cluster, desc, Some(name)).await?;
            }
        }
        if remaining > 0 {
            return Ok(false);
        }
        let opts = WriteOptions {
            subresource: Some("finalize".into()),
            ..Default::default()
        };
        let result = self
            .registry
            .update_with(&scope, name, &opts, |cur, _| {
                let mut next = cur.clone();
                let fs: Vec<Value> = cur
                    .get("spec")
                    .and_then(|s| s.get("finalizers"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.as_str() != Some("kubernetes"))
                    .cloned()
                    .collect();
                next["spec"]["finalizers"] = Value::Array(fs);
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        }
    }
}
