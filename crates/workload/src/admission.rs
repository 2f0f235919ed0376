//! Objects written into a scheduled namespace carry its state labels at once
//! (`state.workload.kcp.io/<key>=Sync`), so the syncer sees a new Deployment with its
//! first event instead of after a relabelling write; the scheduling controller labels the
//! objects that were there before the namespace was scheduled.

use async_trait::async_trait;
use kplex_apimachinery::user::MASTERS;
use kplex_apimachinery::{ApiError, meta};
use kplex_auth::authz::{Request, ResourceAttrs};
use kplex_registry::registry::admission::{AdmissionPlugin, Attributes, Operation};
use kplex_registry::registry::{Registry, Scope};
use serde_json::Value;

use crate::scheduling::{apply_sync_labels, is_synced, lacks_sync_labels, placeable, sync_labels};

/// Using another workspace's Locations needs permission there, as in kcp: a Placement whose
/// `spec.locationWorkspace` names another workspace is admitted only if its creator may
/// `bind` `locations.scheduling.kcp.io` in that workspace.
pub struct LocationPermission {
    pub served: std::sync::Arc<kplex_registry::served::Served>,
    pub authz: kplex_auth::authz::Authorizer,
}

#[async_trait]
impl AdmissionPlugin for LocationPermission {
    fn name(&self) -> &'static str {
        "PlacementLocationPermission"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let (Some(user), Some(obj)) = (attrs.user, obj) else {
            return Ok(());
        };
        if !attrs.is(crate::SCHEDULING, "placements") || !attrs.subresource.is_empty() {
            return Ok(());
        }
        let workspace = |o: &Value| {
            o.pointer("/spec/locationWorkspace")
                .and_then(Value::as_str)
                .filter(|w| !w.is_empty())
                .map(String::from)
        };
        let Some(path) = workspace(obj) else {
            return Ok(());
        };
        // Unchanged on an update: it was checked when it was set.
        if old.and_then(workspace).as_deref() == Some(path.as_str()) {
            return Ok(());
        }
        let target = self.served.resolve(&path);
        if target.as_deref() == Some(attrs.cluster) || user.in_group(MASTERS) {
            return Ok(());
        }
        let req = Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            verb: "bind".into(),
            resource: Some(ResourceAttrs {
                group: crate::SCHEDULING.into(),
                resource: "locations".into(),
                ..Default::default()
            }),
            path: None,
        };
        let allowed = match &target {
            Some(cluster) => self.authz.rbac_allows(cluster, &req).await?,
            None => false,
        };
        if allowed {
            return Ok(());
        }
        Err(ApiError::forbidden(
            crate::SCHEDULING,
            "placements",
            attrs.name,
            &format!("no permission to bind locations in workspace {path}"),
        ))
    }
}

pub struct StateLabels {
    /// Workspaces without Placements (nearly all) skip the namespace read.
    pub tenants: crate::scheduling::Tenants,
    pub registry: Registry,
    pub served: std::sync::Arc<kplex_registry::served::Served>,
}

impl StateLabels {
    /// The `Sync` state labels of namespace `ns` (none when it does not exist yet).
    async fn namespace_labels(
        &self,
        cluster: &str,
        ns: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
        let Some(desc) = self.served.lookup(Some(cluster), "", "v1", "namespaces") else {
            return Ok(Default::default());
        };
        let scope = Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: None,
        };
        match self.registry.get_parsed(&scope, ns).await {
            Ok(namespace) => Ok(sync_labels(&meta::labels(&namespace))),
            Err(e) if e.code == 404 => Ok(Default::default()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl AdmissionPlugin for StateLabels {
    fn name(&self) -> &'static str {
        "WorkloadStateLabels"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let desc = &attrs.scope.desc;
        if !self.tenants.contains(attrs.cluster)
            || !is_synced(desc)
            || attrs.operation == Operation::Delete
            || !attrs.subresource.is_empty()
        {
            return Ok(());
        }
        let Some(ns) = attrs.scope.namespace.as_deref() else {
            return Ok(());
        };
        if !placeable(&desc.plural, ns, attrs.name) {
            return Ok(());
        }
        let wanted = self.namespace_labels(attrs.cluster, ns).await?;
        let mut labels = meta::labels(obj);
        if lacks_sync_labels(&labels, &wanted) {
            apply_sync_labels(&mut labels, &wanted);
            meta::set_labels(obj, labels);
        }
        Ok(())
    }
}
