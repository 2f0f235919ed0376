//! Features' rules around RBAC: a request some feature allows without asking RBAC (kcp's
//! home workspace, `workspaces/~`), and further conditions once RBAC allowed one (kcp's
//! maximal permission policy of a bound resource). The server asks them for every request
//! it authorizes by the workspace's RBAC; access reviews answer RBAC alone, as before.

use async_trait::async_trait;
use kplex_apimachinery::ApiError;

use super::Request;

/// What a hook sees of a request.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// The logical cluster addressed; `None`: the wildcard view.
    pub cluster: Option<&'a str>,
    /// A resource request's API version ("" otherwise): RBAC ignores it, but the resource
    /// served under a name can differ by version.
    pub version: &'a str,
    pub request: &'a Request,
}

#[async_trait]
pub trait AuthorizationHook: Send + Sync + 'static {
    /// Allowed whatever the workspace's RBAC says (and no further condition applies).
    fn allows_without_rbac(&self, _attrs: &Attributes<'_>) -> bool {
        false
    }

    /// A further condition on a request RBAC allowed; `Err` is the answer (a 403).
    async fn check_after_rbac(&self, _attrs: &Attributes<'_>) -> Result<(), ApiError> {
        Ok(())
    }
}
