//! Admission of workspaces (kcp's `pkg/admission/workspace`): names, types and the parent/child
//! rules are checked when a Workspace is created; the system fields stay the system's.

use kplex_apimachinery::status::BadValue;
use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::{Value, json};

use super::types::{self, TypeRef};
use super::{TENANCY, TYPE_ANNOTATION, WORKSPACE_FINALIZER};
use crate::registry::admission::{AdmissionPlugin, Attributes};
use crate::registry::strategy::Strategy;
use crate::registry::{Registry, Scope};
use crate::served::Served;

fn invalid(name: &str, causes: Vec<StatusCause>) -> ApiError {
    ApiError::invalid(TENANCY, "Workspace", name, causes)
}

/// The type of the workspace that logical cluster `cluster` is (from its LogicalCluster).
pub async fn type_of(
    registry: &Registry,
    served: &Served,
    cluster: &str,
) -> Result<TypeRef, ApiError> {
    let Some(desc) = served.lookup(
        Some(cluster),
        super::CORE,
        super::VERSION,
        "logicalclusters",
    ) else {
        return Ok(TypeRef::root());
    };
    let scope = Scope {
        cluster: Some(cluster.to_string()),
        desc,
        namespace: None,
    };
    let lc = registry.get_parsed(&scope, super::LOGICAL_CLUSTER).await?;
    Ok(meta::annotation(&lc, TYPE_ANNOTATION)
        .and_then(TypeRef::parse_qualified)
        .unwrap_or_else(TypeRef::root))
}

/// Completes and checks a Workspace being created in logical cluster `cluster`: resolves its
/// type (defaulting to the parent type's default child type), enforces both types' limits,
/// and adds the finalizer that keeps it until its logical cluster is gone.
pub async fn admit_create(
    registry: &Registry,
    served: &Served,
    cluster: &str,
    user: &str,
    obj: &mut Value,
) -> Result<TypeRef, ApiError> {
    let name = meta::name(obj).unwrap_or("").to_string();
    if !name.is_empty() && !super::is_path(&name) {
        return Err(invalid(
            &name,
            vec![StatusCause::invalid(
                "metadata.name",
                BadValue::Str(&name),
                "a workspace name must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters",
            )],
        ));
    }
    for field in ["cluster", "URL"] {
        if obj
            .pointer(&format!("/spec/{field}"))
            .is_some_and(|v| !v.is_null() && v != "")
        {
            return Err(invalid(
                &name,
                vec![StatusCause::forbidden(
                    &format!("spec.{field}"),
                    "field is set by the system",
                )],
            ));
        }
    }
    let parent_path = served
        .path_of(cluster)
        .unwrap_or_else(|| cluster.to_string());
    let parent_type = type_of(registry, served, cluster).await?;
    let requested = obj.pointer("/spec/type").and_then(TypeRef::from_json);
    let child_type = match requested {
        None => types::default_child(registry, served, &parent_type).await?,
        Some(t) if !t.path.is_empty() => t,
        Some(t) => match types::find(registry, served, &parent_path, &t.name).await? {
            Some(found) => found,
            None => {
                return Err(invalid(
                    &name,
                    vec![StatusCause::invalid(
                        "spec.type.name",
                        BadValue::Str(&t.name),
                        &format!(
                            "WorkspaceType {:?} not found in {parent_path} or its ancestors",
                            t.name
                        ),
                    )],
                ));
            }
        },
    };
    types::admit_child(registry, served, &parent_type, &child_type, &name).await?;
    let spec = obj
        .as_object_mut()
        .map(|m| m.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::bad_request("spec must be an object"))?;
    spec.insert("type".into(), child_type.to_json());
    let mut finalizers = meta::finalizers(obj);
    if !finalizers.iter().any(|f| f == WORKSPACE_FINALIZER) {
        finalizers.push(WORKSPACE_FINALIZER.to_string());
    }
    meta::set_finalizers(obj, &finalizers);
    let mut annotations = meta::annotations(obj);
    annotations.insert(
        "experimental.tenancy.kcp.io/owner".into(),
        Value::String(json!({"username": user}).to_string()),
    );
    meta::set_annotations(obj, annotations);
    Ok(child_type)
}

/// The system fields of a Workspace (`spec.cluster`, `spec.URL`, `spec.type`) cannot be
/// changed through the API once set.
pub fn check_update(old: &Value, new: &Value) -> Result<(), ApiError> {
    for field in ["cluster", "URL", "type"] {
        let pointer = format!("/spec/{field}");
        let (before, after) = (old.pointer(&pointer), new.pointer(&pointer));
        if before.is_some_and(|b| !b.is_null()) && before != after {
            return Err(invalid(
                meta::name(new).unwrap_or(""),
                vec![StatusCause::invalid(
                    &format!("spec.{field}"),
                    BadValue::Json(after.unwrap_or(&Value::Null)),
                    "field is immutable",
                )],
            ));
        }
    }
    Ok(())
}

/// A Workspace's rules on writes: new ones wait in phase Scheduling until they have a
/// logical cluster (kcp), and an update keeps what the system set ([`check_update`]).
#[derive(Debug)]
pub struct WorkspaceRules;

impl Strategy for WorkspaceRules {
    fn counted_by_phase(&self) -> bool {
        true
    }

    /// A child Workspace names another logical cluster: not part of this one's snapshot.
    fn in_workspace_snapshot(&self) -> bool {
        false
    }

    fn prepare_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        if obj.pointer("/status/phase").is_none_or(Value::is_null) {
            meta::set_path(obj, &["status", "phase"], json!("Scheduling"));
        }
        Ok(())
    }

    fn check_update(&self, old: &Value, obj: &Value, _sub: Option<&str>) -> Result<(), ApiError> {
        check_update(old, obj)
    }
}

/// A LogicalCluster is the workspace's own identity (its name, owner, phase): never copied
/// into another workspace by a restore.
#[derive(Debug)]
pub struct LogicalClusterRules;

impl Strategy for LogicalClusterRules {
    fn counted_by_phase(&self) -> bool {
        true
    }

    fn in_workspace_snapshot(&self) -> bool {
        false
    }
}

/// The tenancy admission plugin (kcp's `pkg/admission/workspace` and `logicalcluster`): a
/// new Workspace gets its type and finalizer and needs `use` on that type; LogicalClusters
/// are the system's to create. API requests only: the server's own writes are trusted.
pub struct TenancyAdmission {
    pub registry: Registry,
    pub served: std::sync::Arc<Served>,
    pub authz: crate::authz::Authorizer,
}

#[async_trait::async_trait]
impl AdmissionPlugin for TenancyAdmission {
    fn name(&self) -> &'static str {
        "tenancy"
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
        if attrs.is(super::CORE, "logicalclusters") {
            return Err(ApiError::forbidden(
                super::CORE,
                "logicalclusters",
                meta::name(obj).unwrap_or(""),
                "logical clusters are created by the system, through workspaces",
            ));
        }
        if !attrs.is(TENANCY, "workspaces") {
            return Ok(());
        }
        let t = admit_create(&self.registry, &self.served, attrs.cluster, &user.name, obj).await?;
        // kcp: creating a workspace of a type needs `use` on that WorkspaceType (every
        // signed-in user may use root:universal).
        if user.is_master() || t == TypeRef::universal() {
            return Ok(());
        }
        let type_cluster = self
            .served
            .resolve(&t.path)
            .unwrap_or_else(|| t.path.clone());
        let req = crate::authz::Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            verb: "use".into(),
            resource: Some(crate::authz::ResourceAttrs {
                group: TENANCY.into(),
                resource: "workspacetypes".into(),
                name: Some(t.name.clone()),
                ..Default::default()
            }),
            path: None,
        };
        if self.authz.rbac_allows(&type_cluster, &req).await? {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                TENANCY,
                "workspaces",
                meta::name(obj).unwrap_or(""),
                &format!("unable to use workspace type {}", t.qualified()),
            ))
        }
    }
}
