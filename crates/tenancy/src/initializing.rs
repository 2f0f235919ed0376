//! The initializing-workspaces virtual workspace,
//! `/services/initializingworkspaces/<initializer>/clusters/{*|<cluster>}/…` (kcp's
//! `pkg/virtual/initializingworkspaces`): across clusters, the LogicalClusters that still
//! wait on `initializer` (list and watch); inside one of them, its content, and the right to
//! remove `initializer` (and only that) from its LogicalCluster's `status.initializers`.
//! Authorized by the addressed workspace's RBAC, like any request.

use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use kplex_registry::codec;
use kplex_registry::virtual_workspace::{
    Answer, Authorization, Decision, ResourceRef, Serve, VirtualWorkspace, VirtualWorkspaceRequest,
};
use serde_json::Value;

use super::lifecycle::Tenancy;
use super::{CORE, LOGICAL_CLUSTER, VERSION};
use crate::registry::{PatchKind, Predicate, Scope, WriteOptions};

pub struct InitializingWorkspaces(pub Tenancy);

/// Whether a LogicalCluster still waits on `initializer`.
pub fn has_initializer(lc: &Value, initializer: &str) -> bool {
    lc.pointer("/status/initializers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(initializer)))
}

fn is_logical_clusters(r: &ResourceRef<'_>) -> bool {
    r.group == CORE && r.resource == "logicalclusters"
}

#[async_trait::async_trait]
impl VirtualWorkspace for InitializingWorkspaces {
    fn name(&self) -> &str {
        "initializingworkspaces"
    }

    fn accepts(&self, prefix: &[String]) -> bool {
        prefix.len() == 1
    }

    fn authorization(&self) -> Authorization {
        Authorization::Workspace
    }

    async fn serve(&self, req: &VirtualWorkspaceRequest<'_>) -> Result<Decision, ApiError> {
        let [initializer] = req.prefix else {
            return Err(ApiError::no_such_path());
        };
        let Some(cluster) = req.cluster else {
            return across_clusters(initializer, req.resource.as_ref());
        };
        self.in_cluster(initializer, cluster, req).await
    }
}

/// The wildcard view: list and watch the LogicalClusters waiting on `initializer`.
fn across_clusters(initializer: &str, r: Option<&ResourceRef<'_>>) -> Result<Decision, ApiError> {
    if let Some(r) = r
        && !(is_logical_clusters(r) && matches!(r.verb, "list" | "watch"))
    {
        return Err(ApiError::no_such_path());
    }
    let init = initializer.to_string();
    let predicate: Predicate = Arc::new(move |lc: &Value| has_initializer(lc, &init));
    Ok(Decision::Serve(Serve {
        predicate: Some(predicate),
        ..Serve::default()
    }))
}

impl InitializingWorkspaces {
    /// One cluster still waiting on `initializer`: its content as usual, and writes of its
    /// LogicalCluster answered here.
    async fn in_cluster(
        &self,
        initializer: &str,
        cluster: &str,
        req: &VirtualWorkspaceRequest<'_>,
    ) -> Result<Decision, ApiError> {
        let scope = self.logical_cluster_scope(cluster)?;
        let lc = self
            .0
            .registry
            .get(&scope, LOGICAL_CLUSTER)
            .await?
            .decode()?;
        if !has_initializer(&lc, initializer) {
            return Err(ApiError::forbidden(
                "",
                "",
                "",
                &format!("logical cluster {cluster} is not waiting on initializer {initializer}"),
            ));
        }
        match &req.resource {
            Some(r) if is_logical_clusters(r) && matches!(r.verb, "update" | "patch") => {
                let object = self.remove_initializer(&scope, initializer, r, req).await?;
                Ok(Decision::Answer(Answer { code: 200, object }))
            }
            _ => Ok(Decision::Serve(Serve::default())),
        }
    }

    fn logical_cluster_scope(&self, cluster: &str) -> Result<Scope, ApiError> {
        let desc = self
            .0
            .served
            .lookup(Some(cluster), CORE, VERSION, "logicalclusters")
            .ok_or_else(ApiError::no_such_path)?;
        Ok(Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: None,
        })
    }

    /// Writes the LogicalCluster if the update or patch does nothing but remove
    /// `initializer` from its status (as the system: the initializer has no RBAC on it).
    async fn remove_initializer(
        &self,
        scope: &Scope,
        initializer: &str,
        r: &ResourceRef<'_>,
        req: &VirtualWorkspaceRequest<'_>,
    ) -> Result<Value, ApiError> {
        let patch = if r.verb == "patch" {
            Some(PatchKind::of_request(req.content_type)?)
        } else {
            None
        };
        let opts = WriteOptions {
            system: true,
            ..Default::default()
        };
        let (content_type, body) = (req.content_type, req.body);
        let result = self
            .0
            .registry
            .update_with(scope, LOGICAL_CLUSTER, &opts, |cur, _| {
                let new = match patch {
                    Some(kind) => kind.apply_untyped(cur, body)?,
                    None => codec::decode(content_type, body)?,
                };
                let expected = without_initializer(cur, initializer);
                if comparable(&new) != comparable(&expected) {
                    return Err(ApiError::forbidden(
                        CORE,
                        "logicalclusters",
                        LOGICAL_CLUSTER,
                        &format!(
                            "only removing initializer {initializer} from status.initializers is allowed"
                        ),
                    ));
                }
                Ok(expected)
            })
            .await?;
        Ok(result.object)
    }
}

fn without_initializer(lc: &Value, initializer: &str) -> Value {
    let mut lc = lc.clone();
    if let Some(list) = lc
        .pointer_mut("/status/initializers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|i| i.as_str() != Some(initializer));
    }
    lc
}

/// A LogicalCluster as the initializer may have sent it back: what the server maintains
/// does not count as a change.
fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    meta::remove(&mut v, "resourceVersion");
    meta::remove(&mut v, "managedFields");
    v
}
