//! Admission of the built-in kinds (kube-apiserver's built-in plugins that kplex needs).

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use kplex_registry::registry::admission::{AdmissionPlugin, Attributes, Operation};
use serde_json::{Value, json};

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

/// A CertificateSigningRequest names who asked for it: kube fills `spec.username`, `uid`,
/// `groups` and `extra` from the requester on create, whatever the client sent, so that an
/// approver sees who is asking.
pub struct CsrRequester;

#[async_trait]
impl AdmissionPlugin for CsrRequester {
    fn name(&self) -> &'static str {
        "CertificateSigningRequestRequester"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let Some(user) = attrs.api_create() else {
            return Ok(());
        };
        if !attrs.is("certificates.k8s.io", "certificatesigningrequests") {
            return Ok(());
        }
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        spec.insert("username".into(), json!(user.name));
        if user.uid.is_empty() {
            spec.remove("uid");
        } else {
            spec.insert("uid".into(), json!(user.uid));
        }
        spec.insert("groups".into(), json!(user.groups));
        if user.extra.is_empty() {
            spec.remove("extra");
        } else {
            spec.insert("extra".into(), json!(user.extra));
        }
        Ok(())
    }
}
