//! Authorization, per logical cluster: the RBAC objects *of the workspace being addressed*
//! plus one shared bootstrap policy (kcp's bootstrap-policy authorizer) — the default
//! ClusterRoles exist once in memory, not as copies in every workspace, so an empty
//! workspace stays a few kilobytes.
//!
//! Order: `system:masters` may do anything; the wildcard view is theirs alone; otherwise the
//! requester needs the `access` verb on `/` in the workspace (kcp's workspace access rule)
//! and an RBAC rule for the request.

pub mod aggregation;
pub mod bootstrap;
mod escalation;
pub use escalation::EscalationCheck;
pub mod hooks;
pub use hooks::AuthorizationHook;
pub use review::AccessReviews;
pub mod rbac;
pub mod review;

use std::sync::Arc;

use kplex_apimachinery::ApiError;
use serde_json::Value;

use crate::object::keys;
use crate::registry::Registry;
use crate::served::Served;
pub use rbac::{Request, ResourceAttrs};

pub(crate) const RBAC: &str = "rbac.authorization.k8s.io";
pub use kplex_apimachinery::user::MASTERS;

#[derive(Clone)]
pub struct Authorizer {
    pub registry: Registry,
    pub served: Arc<Served>,
}

impl Authorizer {
    /// Objects of an RBAC resource in `cluster` (and namespace), from the watch cache.
    async fn objects(
        &self,
        resource: &str,
        cluster: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let scope_prefix = match namespace {
            Some(ns) => keys::namespace_prefix(RBAC, resource, cluster, ns),
            None => keys::cluster_prefix(RBAC, resource, cluster),
        };
        let (items, _) = self
            .registry
            .caches
            .list(&keys::resource_prefix(RBAC, resource), &scope_prefix, None)
            .await?;
        items.iter().map(|s| s.decode()).collect()
    }

    /// The rules a binding grants: its role from the workspace, else the bootstrap policy.
    async fn role_rules(
        &self,
        cluster: &str,
        binding: &Value,
        cluster_roles: &[Value],
    ) -> Result<Vec<Value>, ApiError> {
        let kind = binding
            .pointer("/roleRef/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = binding
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let by_name = |objs: &[Value]| {
            objs.iter()
                .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
                .cloned()
        };
        let role = match kind {
            "ClusterRole" => {
                let role =
                    by_name(cluster_roles).or_else(|| bootstrap::cluster_role(name).cloned());
                return Ok(role
                    .map(|r| aggregation::effective_rules(&r, &with_bootstrap(cluster_roles)))
                    .unwrap_or_default());
            }
            "Role" => {
                let ns = binding
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str);
                by_name(&self.objects("roles", cluster, ns).await?)
            }
            _ => None,
        };
        Ok(role.map(|r| rbac::rules(&r).to_vec()).unwrap_or_default())
    }

    /// Whether RBAC in `cluster` allows `req`.
    pub async fn rbac_allows(&self, cluster: &str, req: &Request) -> Result<bool, ApiError> {
        let cluster_roles = self.objects("clusterroles", cluster, None).await?;
        let mut bindings = bootstrap::bindings().to_vec();
        bindings.extend(self.objects("clusterrolebindings", cluster, None).await?);
        if let Some(ns) = req.resource.as_ref().and_then(|r| r.namespace.as_deref()) {
            bindings.extend(self.objects("rolebindings", cluster, Some(ns)).await?);
        }
        for binding in bindings.iter().filter(|b| rbac::binding_matches(b, req)) {
            if self
                .role_rules(cluster, binding, &cluster_roles)
                .await?
                .iter()
                .any(|rule| rbac::rule_allows(rule, req))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The decision for one request in `cluster` (None: the wildcard view). Err is a 403.
    pub async fn authorize(&self, cluster: Option<&str>, req: &Request) -> Result<(), ApiError> {
        self.authorize_as(cluster, req, None).await
    }

    /// [`Authorizer::authorize`] for a requester who is a service account of logical cluster
    /// `home` (`serviceaccount::home_cluster`): a workspace's own service accounts may
    /// always enter it, as in kcp; RBAC still decides what they may do there.
    pub async fn authorize_as(
        &self,
        cluster: Option<&str>,
        req: &Request,
        home: Option<&str>,
    ) -> Result<(), ApiError> {
        if req.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let Some(cluster) = cluster else {
            return Err(ApiError::forbidden(
                "",
                "",
                "",
                &format!(
                    "User \"{}\" cannot {} in the `*` logical cluster",
                    req.user, req.verb
                ),
            ));
        };
        let access = Request {
            verb: "access".into(),
            resource: None,
            path: Some("/".into()),
            ..req.clone()
        };
        // `kubectl auth whoami` tells the requester only who they are, nothing of the
        // workspace: anyone signed in may ask it anywhere (kube's system:basic-user).
        let whoami = req.verb == "create"
            && req.resource.as_ref().is_some_and(|r| {
                r.group == "authentication.k8s.io" && r.resource == "selfsubjectreviews"
            });
        let own_service_account = home.is_some() && home == Some(cluster);
        if !whoami && !own_service_account && !self.rbac_allows(cluster, &access).await? {
            let path = self
                .served
                .path_of(cluster)
                .unwrap_or_else(|| cluster.to_string());
            return Err(ApiError::forbidden(
                "",
                "",
                "",
                &format!("User \"{}\" cannot access workspace \"{path}\"", req.user),
            ));
        }
        if self.rbac_allows(cluster, req).await? {
            return Ok(());
        }
        Err(denied(req))
    }
}

/// A workspace's stored ClusterRoles and the shared default ones: what aggregation selects
/// from.
fn with_bootstrap(stored: &[Value]) -> Vec<&Value> {
    let mut all: Vec<&Value> = stored.iter().collect();
    for role in bootstrap::cluster_roles() {
        all.push(role);
    }
    all
}

/// kube-apiserver's 403 for a request RBAC does not allow.
pub fn denied(req: &Request) -> ApiError {
    let reason = rbac::forbidden_message(req);
    match &req.resource {
        Some(r) => {
            let resource = match &r.subresource {
                Some(s) => format!("{}/{s}", r.resource),
                None => r.resource.clone(),
            };
            ApiError::forbidden(
                &r.group,
                &resource,
                r.name.as_deref().unwrap_or(""),
                &reason,
            )
        }
        None => ApiError::forbidden("", "", "", &reason),
    }
}
