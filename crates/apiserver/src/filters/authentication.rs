//! Authentication: the authenticators (`kplex_auth::authn`), then the `Impersonate-*`
//! headers. The result is kept and a 401 answered only after the body is read.

use http::HeaderMap;
use kplex_apimachinery::{ApiError, UserInfo};

use crate::chain::Api;

impl Api {
    /// Authenticators (see `authn`), then the `Impersonate-*` headers.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        conn: &crate::authn::ConnInfo,
        cluster: &str,
    ) -> Result<(UserInfo, Option<crate::authn::Impersonation>), ApiError> {
        let user = self.authn.authenticate(headers, conn, Some(cluster))?;
        crate::authn::impersonate(user, headers)
    }
}
