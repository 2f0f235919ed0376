//! Who made a request: kube's `user.Info`, and the groups the server itself gives meaning to.

use std::collections::BTreeMap;

/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Requests no authenticator recognised (when anonymous requests are allowed).
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// Superusers: authorization always allows them.
pub const MASTERS: &str = "system:masters";
/// The user of unauthenticated requests.
pub const ANONYMOUS: &str = "system:anonymous";

/// An authenticated (and possibly impersonated) user, as kube's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// In `system:masters`: past every authorization check.
    pub fn is_master(&self) -> bool {
        self.in_group(MASTERS)
    }
}
