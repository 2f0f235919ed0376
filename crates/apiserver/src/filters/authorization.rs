//! Authorization: RBAC of the addressed workspace (`kplex_auth::authz`), and around it the
//! features' `AuthorizationHook`s: requests a feature allows without RBAC (home
//! workspaces), conditions it adds once RBAC allowed (the maximal permission policy).

use http::Method;
use kplex_apimachinery::{ApiError, UserInfo};
use kplex_auth::authz::hooks::Attributes;

use crate::request::Target;

use crate::chain::Api;

impl Api {
    /// RBAC of the addressed workspace (see `authz`), for resource and non-resource requests,
    /// with the features' hooks.
    pub(crate) async fn authorize(
        &self,
        cluster: Option<&str>,
        target: &Target,
        method: &Method,
        path: &str,
        user: &UserInfo,
    ) -> Result<(), ApiError> {
        let req = rbac_request(target, method, path, user);
        let attrs = Attributes {
            cluster,
            version: match target {
                Target::Resource(r) => &r.version,
                _ => "",
            },
            request: &req,
        };
        let hooks = &self.authorization_hooks;
        if hooks.iter().any(|h| h.allows_without_rbac(&attrs)) {
            return Ok(());
        }
        let home = crate::serviceaccount::home_cluster(user);
        self.authz.authorize_as(cluster, &req, home).await?;
        for hook in hooks {
            hook.check_after_rbac(&attrs).await?;
        }
        Ok(())
    }
}

/// What RBAC is asked: kube's attributes of a resource request, or the path and the
/// lowercased method of a non-resource one.
fn rbac_request(
    target: &Target,
    method: &Method,
    path: &str,
    user: &UserInfo,
) -> crate::authz::Request {
    let mut req = crate::authz::Request {
        user: user.name.clone(),
        groups: user.groups.clone(),
        ..Default::default()
    };
    match target {
        Target::Resource(r) => {
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
    req
}
