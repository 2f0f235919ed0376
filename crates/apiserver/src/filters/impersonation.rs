//! Impersonation: allowed by the RBAC of the workspace addressed (never in the `*` view).

use kplex_apimachinery::ApiError;

use crate::chain::Api;

impl Api {
    /// 403 unless RBAC of the request's workspace lets the impersonator act as every
    /// impersonated attribute (never in the `*` view).
    pub(crate) async fn authorize_impersonation(
        &self,
        cluster: Option<&str>,
        impersonation: &crate::authn::Impersonation,
    ) -> Result<(), ApiError> {
        if crate::authn::may_impersonate(&impersonation.by) {
            return Ok(());
        }
        for req in impersonation.requests() {
            let allowed = match cluster {
                Some(cluster) => self.authz.rbac_allows(cluster, &req).await?,
                None => false,
            };
            if !allowed {
                return Err(crate::authz::denied(&req));
            }
        }
        Ok(())
    }
}
