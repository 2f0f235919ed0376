//! Admission of the built-in kinds (kube-apiserver's built-in plugins that kplex needs).

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use kplex_registry::registry::admission::{AdmissionPlugin, Attributes, Operation};
use serde_json::Value;

/// The namespaces a cluster is born with, which kube never lets a client delete.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// kube's NamespaceLifecycle plugin, its deletion rule: `default`, `kube-system` and
/// `kube-public` may not be deleted through the API. (Deleting a workspace still empties it:
/// the server's own deletions have no requester.)
pub struct NamespaceLifecycle;

#[async_trait]
impl AdmissionPlugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        _obj: Option<&Value>,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if attrs.operation == Operation::Delete
            && attrs.user.is_some()
            && attrs.is("", "namespaces")
            && IMMORTAL.contains(&attrs.name)
        {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                attrs.name,
                "this namespace may not be deleted",
            ));
        }
        Ok(())
    }
}
