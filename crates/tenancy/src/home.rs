//! Home workspaces: `GET /clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/~` returns
//! (creating on first use) the caller's own workspace, a parent-less logical cluster reachable
//! as `user:<name>`, named like kcp names it (base36 of the first 8 bytes of sha224(user)).

use kplex_apimachinery::{ApiError, meta};
use serde_json::{Value, json};
use sha2::{Digest, Sha224};

use kplex_auth::authz::hooks::{Attributes, AuthorizationHook};
use kplex_registry::object::CLUSTER_ANNOTATION;
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};

use super::lifecycle::Tenancy;
use super::types::TypeRef;
use super::{TENANCY, VERSION};

pub fn home_cluster_name(user: &str) -> String {
    let digest = Sha224::digest(user.as_bytes());
    let mut n = digest
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = Vec::new();
    while n > 0 {
        let d = (n % 36) as u8;
        out.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

pub fn home_path(user: &str) -> String {
    format!("user:{user}")
}

/// The caller's home Workspace, created if needed.
pub async fn home(t: &Tenancy, user: &str) -> Result<Value, ApiError> {
    let name = home_cluster_name(user);
    let path = home_path(user);
    if !t.served.has_cluster(&name) {
        t.create_logical_cluster(
            &path,
            None,
            &TypeRef::new("root", "home"),
            &[],
            &[],
            Some(&name),
            Some(user),
        )
        .await?;
    }
    Ok(json!({
        "apiVersion": format!("{TENANCY}/{VERSION}"), "kind": "Workspace",
        "metadata": {"name": user, "creationTimestamp": meta::now_rfc3339(), "annotations": {CLUSTER_ANNOTATION: "root"}},
        "spec": {"type": {"name": "home", "path": "root"}, "cluster": name, "URL": t.url_of(&path)},
        "status": {"phase": "Ready"},
    }))
}

/// `GET workspaces/~` in any workspace: the caller's home Workspace.
pub struct HomeWorkspace(pub Tenancy);

#[async_trait::async_trait]
impl VirtualResource for HomeWorkspace {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group == TENANCY
            && req.desc.plural == "workspaces"
            && req.name == Some("~")
            && req.verb == "get"
            && req.subresource.is_none()
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        let object = home(&self.0, &req.user.name).await?;
        Ok(Answer { code: 200, object })
    }
}

/// Anyone signed in may ask for (and so create) their home workspace: `workspaces/~` needs
/// no RBAC.
pub struct HomeWorkspaceAccess;

impl AuthorizationHook for HomeWorkspaceAccess {
    fn allows_without_rbac(&self, attrs: &Attributes<'_>) -> bool {
        attrs.request.resource.as_ref().is_some_and(|r| {
            r.group == TENANCY && r.resource == "workspaces" && r.name.as_deref() == Some("~")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_names_are_stable_base36() {
        let a = home_cluster_name("alice");
        assert_eq!(a, home_cluster_name("alice"));
        assert_ne!(a, home_cluster_name("bob"));
        assert!(
            !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
