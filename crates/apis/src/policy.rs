//! The maximal permission policy: an export with `spec.maximalPermissionPolicy.local` bounds
//! what consumers may do with its bound resources — a request RBAC allowed in the consumer's
//! workspace must also be allowed, for `apis.kcp.io:binding:<user>` (and the groups prefixed
//! alike), by RBAC in the export's workspace.

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use kplex_apimachinery::user::MASTERS;

use super::POLICY_PREFIX;
use crate::authz::hooks::{Attributes, AuthorizationHook};
use crate::authz::{Authorizer, Request, denied};

pub struct MaximalPermissionPolicy(pub Authorizer);

#[async_trait]
impl AuthorizationHook for MaximalPermissionPolicy {
    async fn check_after_rbac(&self, attrs: &Attributes<'_>) -> Result<(), ApiError> {
        let req = attrs.request;
        let (Some(cluster), Some(r)) = (attrs.cluster, &req.resource) else {
            return Ok(());
        };
        if req.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let Some(desc) = self
            .0
            .served
            .lookup(Some(cluster), &r.group, attrs.version, &r.resource)
        else {
            return Ok(());
        };
        let Some(bound) = desc.bound().filter(|b| b.maximal_permission_policy) else {
            return Ok(());
        };
        if self
            .0
            .rbac_allows(&bound.export_cluster, &policy_request(req))
            .await?
        {
            Ok(())
        } else {
            Err(denied(req))
        }
    }
}

/// The maximal permission policy's request: the same request by `apis.kcp.io:binding:<user>`
/// with every group prefixed alike, to be checked in the export's workspace.
pub fn policy_request(req: &Request) -> Request {
    Request {
        user: format!("{POLICY_PREFIX}{}", req.user),
        groups: req
            .groups
            .iter()
            .map(|g| format!("{POLICY_PREFIX}{g}"))
            .collect(),
        ..req.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_prefixes_user_and_groups() {
        let r = policy_request(&Request {
            user: "alice".into(),
            groups: vec!["system:authenticated".into()],
            verb: "update".into(),
            ..Default::default()
        });
        assert_eq!(r.user, "apis.kcp.io:binding:alice");
        assert_eq!(r.groups, vec!["apis.kcp.io:binding:system:authenticated"]);
        assert_eq!(r.verb, "update");
    }
}
