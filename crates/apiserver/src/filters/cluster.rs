//! Cluster: `/clusters/<path|name>` → the logical cluster, and what a request's tokens may do there (a service account's token only in
//! its own logical cluster, only while the account exists).

use kplex_apimachinery::ApiError;

use crate::chain::Api;
use crate::request::ClusterTarget;

impl Api {
    pub(crate) fn accounts(&self) -> crate::serviceaccount::Accounts<'_> {
        crate::serviceaccount::Accounts {
            registry: &self.registry,
            served: &self.served,
        }
    }
}

impl Api {
    /// A logical cluster the index misses, found in the store by the features (made a
    /// moment ago through another replica); the index learns it at once.
    async fn look_up_cluster(&self, name_or_path: &str) -> Result<Option<String>, ApiError> {
        for lookup in &self.cluster_lookups {
            if let Some((name, path)) = lookup.lookup(name_or_path).await? {
                self.served.add_cluster(&name, &path);
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// The logical cluster a request addresses (None: the wildcard view; unknown: 404).
    pub(crate) async fn resolve_cluster(
        &self,
        target: &ClusterTarget,
    ) -> Result<Option<String>, ApiError> {
        let cluster = match target {
            ClusterTarget::Named(name) => match self.served.resolve(name) {
                Some(cluster) => Some(cluster),
                None => match self.look_up_cluster(name).await? {
                    Some(cluster) => Some(cluster),
                    None => return Err(ApiError::not_found("", "workspaces", name)),
                },
            },
            ClusterTarget::Wildcard => None,
        };
        Ok(cluster)
    }
}
