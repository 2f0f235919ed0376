//! Authorization: RBAC of the addressed workspace (`kplex_auth::authz`), then, for bound
//! resources, the export's maximal permission policy.

use http::Method;
use kplex_apimachinery::{ApiError, UserInfo};

use crate::request::Target;

use crate::chain::Api;

impl Api {
    /// RBAC of the addressed workspace (see `authz`), for resource and non-resource requests.
    pub(crate) async fn authorize(
        &self,
        cluster: Option<&str>,
        target: &Target,
        method: &Method,
        path: &str,
        user: &UserInfo,
    ) -> Result<(), ApiError> {
        let mut req = crate::authz::Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            ..Default::default()
        };
        match target {
            Target::Resource(r) => {
                // Anyone signed in may ask for (and so create) their home workspace.
                if r.group == crate::tenancy::TENANCY
                    && r.resource == "workspaces"
                    && r.name.as_deref() == Some("~")
                {
                    return Ok(());
                }
                req.verb = r.verb.as_str().to_string();
                let namespace = match (r.group.as_str(), r.resource.as_str()) {
                    ("", "namespaces") => r.name.clone(),
                    _ => r.namespace.clone(),
                };
                req.resource = Some(crate::authz::ResourceAttrs {
                    namespace,
                    group: r.group.clone(),
                    resource: r.resource.clone(),
                    subresource: r.subresource.clone(),
                    name: r.name.clone(),
                });
            }
            _ => {
                req.verb = method.as_str().to_ascii_lowercase();
                req.path = Some(path.to_string());
            }
        }
        self.authz.authorize(cluster, &req).await?;
        self.maximal_permission_policy(cluster, target, &req).await
    }

    /// A bound resource whose export has a maximal permission policy: the request must also
    /// be allowed, for `apis.kcp.io:binding:<user>`, by RBAC in the export's workspace.
    pub(crate) async fn maximal_permission_policy(
        &self,
        cluster: Option<&str>,
        target: &Target,
        req: &crate::authz::Request,
    ) -> Result<(), ApiError> {
        let (Some(cluster), Target::Resource(r)) = (cluster, target) else {
            return Ok(());
        };
        if req
            .groups
            .iter()
            .any(|g| g == kplex_apimachinery::user::MASTERS)
        {
            return Ok(());
        }
        let Some(desc) = self
            .served
            .lookup(Some(cluster), &r.group, &r.version, &r.resource)
        else {
            return Ok(());
        };
        let Some(bound) = desc.bound().filter(|b| b.maximal_permission_policy) else {
            return Ok(());
        };
        let policy = crate::apis::view::policy_request(req);
        if self
            .authz
            .rbac_allows(&bound.export_cluster, &policy)
            .await?
        {
            Ok(())
        } else {
            Err(crate::authz::denied(req))
        }
    }
}
