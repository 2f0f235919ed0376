//! Admission rules of the `apis.kcp.io` kinds (kcp's `pkg/admission/apibinding`,
//! `apiresourceschema`, `crdnooverlappinggvr`):
//!
//! - binding needs the `bind` verb on `apiexports/<name>` in the export's workspace;
//! - an APIBinding's `spec.reference` and an APIResourceSchema's spec are immutable, and a
//!   schema's name is `<prefix>.<plural>.<group>`;
//! - a schema an export of its workspace references cannot be deleted;
//! - a CRD cannot take a group/resource a binding serves.

use kplex_apimachinery::status::BadValue;
use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::Value;

use super::{GROUP, V2, binding::reference, get, scope};
use crate::authz::{Authorizer, MASTERS, Request, ResourceAttrs};
use crate::registry::admission::{AdmissionPlugin, Attributes, Operation};
use crate::registry::strategy::Strategy;
use crate::registry::{ListOptions, Registry};
use crate::served::Served;

/// An APIResourceSchema's rules: a `<prefix>.<plural>.<group>` name and an immutable spec.
#[derive(Debug)]
pub struct SchemaRules;

impl Strategy for SchemaRules {
    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let name = meta::name(obj).unwrap_or("");
        if !super::schema_name_matches(name, &spec) {
            out.push(StatusCause::invalid(
                "metadata.name",
                BadValue::Str(name),
                "must be of the format <prefix>.<spec.names.plural>.<spec.group>",
            ));
        }
        if let Some(old) = old
            && old.get("spec") != obj.get("spec")
        {
            out.push(StatusCause::invalid(
                "spec",
                BadValue::Json(&spec),
                "field is immutable",
            ));
        }
        out
    }
}

/// An APIBinding's rules: it names an export, and never another one.
#[derive(Debug)]
pub struct BindingRules;

impl Strategy for BindingRules {
    fn counted_by_phase(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = Vec::new();
        if reference(obj).1.is_empty() {
            out.push(StatusCause::required("spec.reference.export.name", ""));
        }
        if let Some(old) = old
            && reference(old) != reference(obj)
        {
            out.push(StatusCause::invalid(
                "spec.reference",
                BadValue::Json(obj.pointer("/spec/reference").unwrap_or(&Value::Null)),
                "APIExport reference must not be changed",
            ));
        }
        out
    }
}

/// A new APIBinding: the creator needs `bind` on the export (masters may bind anything).
pub async fn admit_binding(
    authz: &Authorizer,
    served: &Served,
    cluster: &str,
    user: &kplex_apimachinery::UserInfo,
    binding: &Value,
) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    let (path, export) = reference(binding);
    let export_cluster = if path.is_empty() {
        Some(cluster.to_string())
    } else {
        served.resolve(path)
    };
    let req = Request {
        user: user.name.clone(),
        groups: user.groups.clone(),
        verb: "bind".into(),
        resource: Some(ResourceAttrs {
            group: GROUP.into(),
            resource: "apiexports".into(),
            name: Some(export.to_string()),
            ..Default::default()
        }),
        path: None,
    };
    let allowed = match &export_cluster {
        Some(ec) => authz.rbac_allows(ec, &req).await?,
        None => false,
    };
    if allowed {
        return Ok(());
    }
    let shown = if path.is_empty() {
        export.to_string()
    } else {
        format!("{path}:{export}")
    };
    Err(ApiError::forbidden(
        GROUP,
        "apibindings",
        meta::name(binding).unwrap_or(""),
        &format!("unable to create APIBinding: no permission to bind to export {shown}"),
    ))
}

/// Deleting an APIResourceSchema that an APIExport of its workspace references is refused.
pub async fn admit_schema_delete(
    registry: &Registry,
    served: &Served,
    cluster: &str,
    name: &str,
) -> Result<(), ApiError> {
    let Some(exports) = scope(served, cluster, V2, "apiexports") else {
        return Ok(());
    };
    let list = registry.list(&exports, &ListOptions::default()).await?;
    for item in &list.items {
        let export = item.decode_as(&exports.desc)?;
        let uses = export
            .pointer("/spec/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| r.get("schema").and_then(Value::as_str) == Some(name));
        if uses {
            return Err(ApiError::forbidden(
                GROUP,
                "apiresourceschemas",
                name,
                &format!(
                    "APIResourceSchema is in use by APIExport {}",
                    meta::name(&export).unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

/// A CRD whose group/resource a binding serves in the workspace is refused.
pub fn admit_crd(served: &Served, cluster: &str, crd: &Value) -> Result<(), ApiError> {
    let group = crd.pointer("/spec/group").and_then(Value::as_str);
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str);
    let (Some(group), Some(plural)) = (group, plural) else {
        return Ok(());
    };
    match served.bound_by(cluster, group, plural) {
        Some(binding) => Err(ApiError::forbidden(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            meta::name(crd).unwrap_or(""),
            &format!("cannot create because resource is bound by APIBinding {binding:?}"),
        )),
        None => Ok(()),
    }
}

/// The APIExport behind an export reference, if it exists.
pub async fn export_of(
    registry: &Registry,
    served: &Served,
    export_cluster: &str,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    match scope(served, export_cluster, V2, "apiexports") {
        Some(s) => get(registry, &s, name).await,
        None => Ok(None),
    }
}

/// The `apis.kcp.io` admission plugin: `bind` permission on a new APIBinding's export, no CRD
/// over a bound resource, no deleting a schema an export uses. API requests only: the server's
/// own writes are trusted.
pub struct ApisAdmission {
    pub registry: Registry,
    pub served: std::sync::Arc<Served>,
    pub authz: Authorizer,
}

#[async_trait::async_trait]
impl AdmissionPlugin for ApisAdmission {
    fn name(&self) -> &'static str {
        "apis"
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
        if attrs.is(GROUP, "apibindings") {
            return admit_binding(&self.authz, &self.served, attrs.cluster, user, obj).await;
        }
        if attrs.is("apiextensions.k8s.io", "customresourcedefinitions") {
            return admit_crd(&self.served, attrs.cluster, obj);
        }
        Ok(())
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        _obj: Option<&Value>,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if attrs.user.is_some()
            && attrs.operation == Operation::Delete
            && attrs.is(GROUP, "apiresourceschemas")
        {
            return admit_schema_delete(&self.registry, &self.served, attrs.cluster, attrs.name)
                .await;
        }
        Ok(())
    }
}
