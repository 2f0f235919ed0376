//! The syncer virtual workspace, `/services/syncer/<cluster>/<synctarget>/<uid>/clusters/
//! {*|<cluster>}/…` (kcp v0.11's `pkg/virtual/syncer`): what one SyncTarget's agent reads
//! and writes, across every workspace.
//!
//! - `clusters/*`: list and watch the objects scheduled to the target (state label `Sync`)
//!   and those it shows upstream (`Upsync`);
//! - `clusters/<cluster>`: get, update and patch those (status included), and create,
//!   update and delete the objects the agent shows upstream (pods; stamped `Upsync`) in
//!   namespaces scheduled to it.
//!
//! Authorized here, not by the tenants' RBAC: the caller must be allowed to `sync` the
//! SyncTarget in its own workspace (`kubectl kplex workload sync` grants that to the
//! agent's service account), whose service-account tokens therefore authenticate here.

use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, meta};
use kplex_auth::authz::{Authorizer, Request, ResourceAttrs};
use kplex_registry::registry::{Predicate, Registry, Scope};
use kplex_registry::served::Served;
use kplex_registry::virtual_workspace::{
    Authorization, Decision, ResourceRef, Serve, VirtualWorkspace, VirtualWorkspaceRequest,
};
use serde_json::Value;

use crate::{KEY_LABEL, VERSION, WORKLOAD, state_label, sync_target_key};

pub struct SyncerView {
    pub registry: Registry,
    pub served: Arc<Served>,
    pub authz: Authorizer,
}

/// The state an object has for the target with `key` (`Sync`, `Upsync`), if any.
fn state<'a>(obj: &'a Value, label: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(label))
        .and_then(Value::as_str)
}

#[async_trait]
impl VirtualWorkspace for SyncerView {
    fn name(&self) -> &str {
        "syncer"
    }

    fn accepts(&self, prefix: &[String]) -> bool {
        prefix.len() == 3
    }

    fn authorization(&self) -> Authorization {
        Authorization::Own
    }

    fn home_cluster(&self, prefix: &[String]) -> Option<String> {
        let cluster = prefix.first()?;
        Some(
            self.served
                .resolve(cluster)
                .unwrap_or_else(|| cluster.clone()),
        )
    }

    async fn serve(&self, req: &VirtualWorkspaceRequest<'_>) -> Result<Decision, ApiError> {
        let [target_cluster, target, uid] = req.prefix else {
            return Err(ApiError::no_such_path());
        };
        let target_cluster = self
            .served
            .resolve(target_cluster)
            .ok_or_else(ApiError::no_such_path)?;
        let key = self.authorize(&target_cluster, target, uid, req).await?;
        let label = state_label(&key);
        let Some(r) = req.resource else {
            return Ok(Decision::Serve(Serve::default()));
        };
        match req.cluster {
            None if matches!(r.verb, "list" | "watch") => {
                Ok(serve_with(&label, &["Sync", "Upsync"]))
            }
            None => Err(ApiError::method_not_supported(
                r.group,
                r.resource,
                "write across all logical clusters",
            )),
            Some(cluster) => self.in_cluster(cluster, &label, &r).await,
        }
    }
}

/// Serves objects whose state for the target is one of `states`.
fn serve_with(label: &str, states: &'static [&'static str]) -> Decision {
    let label = label.to_string();
    let key = label.clone();
    let predicate: Predicate =
        Arc::new(move |obj: &Value| state(obj, &key).is_some_and(|s| states.contains(&s)));
    Decision::Serve(Serve {
        predicate: Some(predicate),
        trigger: Some(label),
        ..Serve::default()
    })
}

impl SyncerView {
    /// The target exists with that uid and the caller may `sync` it; returns its key.
    async fn authorize(
        &self,
        cluster: &str,
        name: &str,
        uid: &str,
        req: &VirtualWorkspaceRequest<'_>,
    ) -> Result<String, ApiError> {
        let home = kplex_auth::serviceaccount::home_cluster(req.user);
        self.authz
            .authorize_as(
                Some(cluster),
                &Request {
                    user: req.user.name.clone(),
                    groups: req.user.groups.clone(),
                    verb: "sync".into(),
                    resource: Some(ResourceAttrs {
                        group: WORKLOAD.into(),
                        resource: "synctargets".into(),
                        name: Some(name.to_string()),
                        ..Default::default()
                    }),
                    path: None,
                },
                home,
            )
            .await?;
        let desc = self
            .served
            .lookup(Some(cluster), WORKLOAD, VERSION, "synctargets")
            .ok_or_else(ApiError::no_such_path)?;
        let scope = Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: None,
        };
        let target = self.registry.get_parsed(&scope, name).await?;
        if meta::uid(&target) != Some(uid) {
            return Err(ApiError::no_such_path());
        }
        Ok(meta::labels(&target)
            .get(KEY_LABEL)
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| sync_target_key(cluster, name)))
    }

    /// One workspace: the target's objects, and what it shows upstream.
    async fn in_cluster(
        &self,
        cluster: &str,
        label: &str,
        r: &ResourceRef<'_>,
    ) -> Result<Decision, ApiError> {
        match r.verb {
            "get" | "list" | "watch" => Ok(serve_with(label, &["Sync", "Upsync"])),
            "create" => {
                self.check_namespace(cluster, label, r).await?;
                Ok(Decision::Serve(Serve {
                    labels_on_create: Some([(label.to_string(), "Upsync".to_string())].into()),
                    ..Serve::default()
                }))
            }
            "update" | "patch" | "delete" => {
                let obj = self.object(cluster, r).await?;
                match (state(&obj, label), r.verb) {
                    (Some("Upsync"), _) | (Some("Sync"), "update" | "patch") => {
                        Ok(Decision::Serve(Serve::default()))
                    }
                    // Deleting what the tenant placed is the tenant's decision.
                    (Some("Sync"), _) => Err(ApiError::forbidden(
                        r.group,
                        r.resource,
                        r.name.unwrap_or_default(),
                        "a syncer deletes only what it shows upstream",
                    )),
                    _ => Err(self.missing(r)),
                }
            }
            _ => Err(ApiError::method_not_supported(r.group, r.resource, r.verb)),
        }
    }

    fn missing(&self, r: &ResourceRef<'_>) -> ApiError {
        ApiError::not_found(r.group, r.resource, r.name.unwrap_or_default())
    }

    async fn object(&self, cluster: &str, r: &ResourceRef<'_>) -> Result<Arc<Value>, ApiError> {
        let desc = self
            .served
            .lookup(Some(cluster), r.group, r.version, r.resource)
            .ok_or_else(ApiError::no_such_path)?;
        let scope = Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: r.namespace.map(String::from),
        };
        self.registry
            .get_parsed(&scope, r.name.unwrap_or_default())
            .await
            .map_err(|e| if e.code == 404 { self.missing(r) } else { e })
    }

    /// Upsynced objects go only into namespaces scheduled to the target.
    async fn check_namespace(
        &self,
        cluster: &str,
        label: &str,
        r: &ResourceRef<'_>,
    ) -> Result<(), ApiError> {
        let Some(ns) = r.namespace else {
            return Err(ApiError::forbidden(
                r.group,
                r.resource,
                "",
                "a syncer creates only namespaced objects upstream",
            ));
        };
        let ns_ref = ResourceRef {
            verb: "get",
            group: "",
            version: "v1",
            resource: "namespaces",
            namespace: None,
            name: Some(ns),
            subresource: None,
        };
        let namespace = self.object(cluster, &ns_ref).await?;
        if state(&namespace, label) != Some("Sync") {
            return Err(ApiError::forbidden(
                r.group,
                r.resource,
                "",
                &format!("namespace {ns} is not scheduled to this sync target"),
            ));
        }
        Ok(())
    }
}
