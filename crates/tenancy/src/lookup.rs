//! Logical clusters the index does not know yet, found in the store: a workspace created a
//! moment ago through another replica is served at once instead of answering 404 until this
//! replica's watch delivers its LogicalCluster.

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, meta};
use kplex_registry::clusters::ClusterLookup;
use serde_json::Value;

use crate::LOGICAL_CLUSTER;
use crate::lifecycle::Tenancy;

pub struct StoreLookup(pub Tenancy);

impl StoreLookup {
    /// The canonical path of logical cluster `name`, if its LogicalCluster is stored.
    async fn stored_path(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(scope) = self.0.logical_clusters(name) else {
            return Ok(None);
        };
        let lc = self.0.get(&scope, LOGICAL_CLUSTER).await?;
        Ok(lc.map(|lc| {
            meta::annotation(&lc, crate::PATH_ANNOTATION)
                .unwrap_or(name)
                .to_string()
        }))
    }

    /// The logical cluster of Workspace `name` in `parent`, once scheduled.
    async fn scheduled_child(&self, parent: &str, name: &str) -> Result<Option<String>, ApiError> {
        let Some(scope) = self.0.workspaces(parent) else {
            return Ok(None);
        };
        let ws = self.0.get(&scope, name).await?;
        Ok(ws
            .as_ref()
            .and_then(|ws| ws.pointer("/spec/cluster"))
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(String::from))
    }

    /// Walks `path` from its longest prefix the index knows, one Workspace at a time.
    async fn by_path(&self, path: &str) -> Result<Option<String>, ApiError> {
        let segments: Vec<&str> = path.split(':').collect();
        if let ["user", user] = segments.as_slice() {
            return Ok(Some(crate::home::home_cluster_name(user)));
        }
        let Some(known) = (1..=segments.len())
            .rev()
            .find(|n| self.0.served.resolve(&segments[..*n].join(":")).is_some())
        else {
            return Ok(None);
        };
        let Some(mut cluster) = self.0.served.resolve(&segments[..known].join(":")) else {
            return Ok(None);
        };
        for name in &segments[known..] {
            match self.scheduled_child(&cluster, name).await? {
                Some(child) => cluster = child,
                None => return Ok(None),
            }
        }
        Ok(Some(cluster))
    }
}

#[async_trait]
impl ClusterLookup for StoreLookup {
    async fn lookup(&self, name_or_path: &str) -> Result<Option<(String, String)>, ApiError> {
        if !crate::is_path(name_or_path) {
            return Ok(None);
        }
        // A path names a workspace; a single segment may also be a logical cluster's name.
        let candidate = match self.by_path(name_or_path).await? {
            Some(cluster) => cluster,
            None => name_or_path.to_string(),
        };
        Ok(self
            .stored_path(&candidate)
            .await?
            .map(|path| (candidate, path)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use kplex_registry::registry::Registry;
    use kplex_registry::served::Served;
    use kplex_store::{EmbeddedOptions, EmbeddedStore, Store};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn finds_in_the_store_what_the_index_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap());
        let served = Arc::new(Served::new(crate::resources()));
        served.add_cluster("root", "root");
        // What another replica wrote: a scheduled Workspace, its LogicalCluster, and one not
        // scheduled yet.
        for (key, obj) in [
            (
                "/registry/tenancy.kcp.io/workspaces/root/team",
                json!({"kind": "Workspace", "metadata": {"name": "team"}, "spec": {"cluster": "abc"}}),
            ),
            (
                "/registry/core.kcp.io/logicalclusters/abc/cluster",
                json!({"kind": "LogicalCluster", "metadata": {"name": "cluster", "annotations": {"kcp.io/path": "root:team"}}}),
            ),
            (
                "/registry/tenancy.kcp.io/workspaces/root/later",
                json!({"kind": "Workspace", "metadata": {"name": "later"}, "spec": {}}),
            ),
        ] {
            store
                .put(key, bytes::Bytes::from(obj.to_string()))
                .await
                .unwrap();
        }
        let lookup = StoreLookup(Tenancy {
            registry: Registry::new(store),
            served,
            base_url: String::new(),
            scheduling: Default::default(),
        });
        let found = Some(("abc".to_string(), "root:team".to_string()));
        assert_eq!(lookup.lookup("root:team").await.unwrap(), found);
        assert_eq!(lookup.lookup("abc").await.unwrap(), found);
        assert_eq!(lookup.lookup("root:later").await.unwrap(), None);
        assert_eq!(lookup.lookup("root:nope").await.unwrap(), None);
        assert_eq!(lookup.lookup("root:team:deeper").await.unwrap(), None);
        assert_eq!(lookup.lookup("Not a path").await.unwrap(), None);
    }
}
