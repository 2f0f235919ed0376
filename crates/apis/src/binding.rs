//! The APIBinding controller: resolve the export, read its schemas, serve the resources in
//! the binding's workspace (unless their names conflict), record the accepted permission
//! claims for the virtual workspace, and report it all in the status as kcp does.
//!
//! Deleting a binding deletes the objects of its resources, then stops serving them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use serde_json::{Value, json};

use super::Apis;
use super::{AcceptedClaim, BINDING_FINALIZER, Consumer, V1, V2, conditions, get, scope};
use crate::catalog::{BoundInfo, ResourceDesc};
use crate::registry::WriteOptions;
use crate::served::Conflict;

/// What a reconcile did, for the controllers.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// false: try again later.
    pub done: bool,
    /// An export whose consumers changed (its endpoint slices need refreshing).
    pub export_changed: Option<(String, String)>,
}

fn done() -> Reconciled {
    Reconciled {
        done: true,
        export_changed: None,
    }
}

/// The export a binding references: (path or "" for its own workspace, name).
pub fn reference(binding: &Value) -> (&str, &str) {
    let s = |p: &str| binding.pointer(p).and_then(Value::as_str).unwrap_or("");
    (
        s("/spec/reference/export/path"),
        s("/spec/reference/export/name"),
    )
}

/// The export a binding resolved to: its cluster, the object, the bound descriptions.
struct Resolved {
    cluster: String,
    export: Value,
    identity: String,
    descs: Vec<ResourceDesc>,
    schemas: Vec<(String, Value)>,
}

/// Why a binding cannot be resolved: (reason, message).
type Unresolved = (&'static str, String);

async fn resolve(
    t: &Apis,
    cluster: &str,
    name: &str,
    binding: &Value,
) -> Result<Result<Resolved, Unresolved>, ApiError> {
    let (path, export_name) = reference(binding);
    let shown = if path.is_empty() {
        export_name.to_string()
    } else {
        format!("{path}:{export_name}")
    };
    let not_found = || ("APIExportNotFound", format!("APIExport {shown} not found"));
    let export_cluster = if path.is_empty() {
        Some(cluster.to_string())
    } else {
        t.served.resolve(path)
    };
    let Some(ec) = export_cluster else {
        return Ok(Err(not_found()));
    };
    let Some(exports) = scope(&t.served, &ec, V2, "apiexports") else {
        return Ok(Err(not_found()));
    };
    let Some(export) = get(&t.registry, &exports, export_name).await? else {
        return Ok(Err(not_found()));
    };
    let identity = export
        .pointer("/status/identityHash")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if identity.is_empty() {
        return Ok(Err((
            "APIExportNotReady",
            format!("APIExport {shown} has no identity yet"),
        )));
    }
    let schemas_scope =
        scope(&t.served, &ec, V1, "apiresourceschemas").ok_or_else(|| ApiError::internal(""))?;
    let policy = export
        .pointer("/spec/maximalPermissionPolicy/local")
        .is_some();
    let mut descs = Vec::new();
    let mut schemas = Vec::new();
    for r in export
        .pointer("/spec/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let schema_name = r.get("schema").and_then(Value::as_str).unwrap_or("");
        let Some(schema) = get(&t.registry, &schemas_scope, schema_name).await? else {
            return Ok(Err((
                "APIResourceSchemaNotFound",
                format!("APIResourceSchema {schema_name} of APIExport {shown} not found"),
            )));
        };
        descs.extend(super::bound_descriptions(
            &schema,
            BoundInfo {
                binding: name.to_string(),
                export_cluster: ec.clone(),
                export: export_name.to_string(),
                identity: identity.clone(),
                schema: schema_name.to_string(),
                storage_version: String::new(),
                maximal_permission_policy: policy,
            },
        ));
        schemas.push((schema_name.to_string(), schema));
    }
    Ok(Ok(Resolved {
        cluster: ec,
        export,
        identity,
        descs,
        schemas,
    }))
}

fn claim_key(c: &Value) -> (String, String, String) {
    let s = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    (s("group"), s("resource"), s("identityHash"))
}

/// Export verbs ∩ binding verbs (`*` on either side defers to the other).
fn intersect(export: &[String], binding: &[String]) -> Vec<String> {
    let star = |v: &[String]| v.iter().any(|x| x == "*");
    match (star(export), star(binding)) {
        (true, _) => binding.to_vec(),
        (_, true) => export.to_vec(),
        _ => export
            .iter()
            .filter(|v| binding.contains(v))
            .cloned()
            .collect(),
    }
}

/// The export's claims the binding accepted, with effective verbs and selector.
pub fn accepted_claims(export: &Value, binding: &Value) -> Vec<AcceptedClaim> {
    let export_claims = export
        .pointer("/spec/permissionClaims")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    binding
        .pointer("/spec/permissionClaims")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("state").and_then(Value::as_str) == Some("Accepted"))
        .filter_map(|c| {
            let key = claim_key(c);
            let offered = export_claims.iter().find(|e| claim_key(e) == key)?;
            let labels = c
                .pointer("/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect::<BTreeMap<_, _>>()
                });
            Some(AcceptedClaim {
                group: key.0,
                resource: key.1,
                identity: key.2,
                verbs: intersect(
                    &meta::strings(offered.get("verbs")),
                    &meta::strings(c.get("verbs")),
                ),
                labels,
            })
        })
        .collect()
}

fn conflict_message(t: &Apis, cluster: &str, conflict: &Conflict) -> String {
    match conflict {
        Conflict::Crd(name) if name.is_empty() => {
            "naming conflict with a built-in resource".to_string()
        }
        Conflict::Crd(name) => format!("naming conflict with CustomResourceDefinition {name}"),
        Conflict::Binding(other) => {
            let export = t
                .served
                .bound_resources(cluster, other)
                .first()
                .and_then(|d| d.bound().cloned())
                .map(|b| {
                    let path = t
                        .served
                        .path_of(&b.export_cluster)
                        .unwrap_or(b.export_cluster.clone());
                    format!("{path}:{}", b.export)
                })
                .unwrap_or_default();
            format!("naming conflict with APIBinding {other} bound to APIExport {export}")
        }
    }
}

/// Reconciles one APIBinding.
pub async fn reconcile(t: &Apis, cluster: &str, name: &str) -> Result<Reconciled, ApiError> {
    let Some(bindings) = scope(&t.served, cluster, V2, "apibindings") else {
        return Ok(done());
    };
    let Some(binding) = get(&t.registry, &bindings, name).await? else {
        return Ok(forget(t, cluster, name, None));
    };
    if meta::deletion_timestamp(&binding).is_some() {
        // A follower serves it until the leader has deleted its objects and let it go.
        if !t.writes() {
            return Ok(done());
        }
        return unbind(t, cluster, name, &binding).await;
    }
    if t.writes()
        && !meta::finalizers(&binding)
            .iter()
            .any(|f| f == BINDING_FINALIZER)
    {
        let opts = WriteOptions {
            system: true,
            ..Default::default()
        };
        t.registry
            .update_with(&bindings, name, &opts, |cur, _| {
                let mut next = cur.clone();
                let mut fs = meta::finalizers(cur);
                fs.push(BINDING_FINALIZER.to_string());
                meta::set_finalizers(&mut next, &fs);
                Ok(next)
            })
            .await?;
        // The write comes back as an event; carry on from the new state then.
        return Ok(done());
    }
    let was_bound = crate::crd::condition_true(&binding, "InitialBindingCompleted");
    let mut status = binding.get("status").cloned().unwrap_or_else(|| json!({}));
    let resolved = match resolve(t, cluster, name, &binding).await? {
        Ok(r) => r,
        Err((reason, message)) => {
            status["phase"] = json!(if was_bound { "Bound" } else { "Binding" });
            status["conditions"] = conditions(
                &binding,
                &[
                    ("APIExportValid", false, reason, message.clone()),
                    ("InitialBindingCompleted", was_bound, "", String::new()),
                    ("Ready", false, reason, message),
                ],
            );
            write_status(t, &bindings, &binding, status).await?;
            if reason == "APIExportNotFound" {
                drop_policy(t, cluster, name);
            }
            // A missing export is waited for (its creation requeues this binding); one that is
            // not ready yet is retried.
            return Ok(Reconciled {
                done: reason == "APIExportNotFound",
                export_changed: None,
            });
        }
    };
    let export_name = reference(&binding).1.to_string();
    if let Err(conflict) = t.served.bind(cluster, name, resolved.descs.clone()) {
        let message = format!(
            "Unable to bind APIs: {}",
            conflict_message(t, cluster, &conflict)
        );
        status["apiExportClusterName"] = json!(resolved.cluster);
        status["phase"] = json!(if was_bound { "Bound" } else { "Binding" });
        status["conditions"] = conditions(
            &binding,
            &[
                ("APIExportValid", true, "", String::new()),
                ("BindingUpToDate", false, "NamingConflicts", message.clone()),
                (
                    "InitialBindingCompleted",
                    was_bound,
                    "NamingConflicts",
                    message.clone(),
                ),
                ("Ready", false, "NamingConflicts", message),
            ],
        );
        write_status(t, &bindings, &binding, status).await?;
        // Retried: the conflicting CRD or binding may go away.
        return Ok(Reconciled {
            done: false,
            export_changed: None,
        });
    }
    let invalid = invalid_claims(t, &resolved.export);
    let consumer = Consumer {
        binding: name.to_string(),
        claims: accepted_claims(&resolved.export, &binding)
            .into_iter()
            .filter(|c| !invalid.contains(&format!("{}.{}", c.resource, c.group)))
            .collect(),
    };
    let flipped = t
        .exports
        .set((&resolved.cluster, &export_name), cluster, Some(consumer));
    status["apiExportClusterName"] = json!(resolved.cluster);
    status["boundResources"] = Value::Array(
        resolved
            .schemas
            .iter()
            .map(|(schema_name, schema)| {
                let spec = schema.get("spec").cloned().unwrap_or(Value::Null);
                let storage: Vec<Value> = spec
                    .get("versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect();
                json!({
                    "group": spec.get("group").cloned().unwrap_or(json!("")),
                    "resource": spec.pointer("/names/plural").cloned().unwrap_or(json!("")),
                    "schema": {"name": schema_name, "UID": meta::uid(schema).unwrap_or(""), "identityHash": resolved.identity},
                    "storageVersions": storage,
                })
            })
            .collect(),
    );
    status["exportPermissionClaims"] = resolved
        .export
        .pointer("/spec/permissionClaims")
        .cloned()
        .unwrap_or_else(|| json!([]));
    status["appliedPermissionClaims"] = Value::Array(
        binding
            .pointer("/spec/permissionClaims")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("state").and_then(Value::as_str) == Some("Accepted"))
            .cloned()
            .collect(),
    );
    status["phase"] = json!("Bound");
    let ok = |t| (t, true, "", String::new());
    status["conditions"] = conditions(
        &binding,
        &[
            ok("APIExportValid"),
            ok("BindingUpToDate"),
            ok("InitialBindingCompleted"),
            ok("PermissionClaimsApplied"),
            (
                "PermissionClaimsValid",
                invalid.is_empty(),
                if invalid.is_empty() {
                    ""
                } else {
                    "InvalidPermissionClaims"
                },
                if invalid.is_empty() {
                    String::new()
                } else {
                    format!(
                        "claims on {} need the identityHash of the APIExport that serves them",
                        invalid.join(", ")
                    )
                },
            ),
            ok("Ready"),
        ],
    );
    write_status(t, &bindings, &binding, status).await?;
    copy_extra_annotations(t, &bindings, &binding, &resolved.export).await?;
    Ok(Reconciled {
        done: true,
        export_changed: flipped.then_some((resolved.cluster, export_name)),
    })
}

/// A binding's status, written by the replica that leads the controllers alone (every
/// replica serves what the binding binds; see [`Apis::writes`]).
async fn write_status(
    t: &Apis,
    bindings: &crate::registry::Scope,
    binding: &Value,
    status: Value,
) -> Result<(), ApiError> {
    if t.writes() {
        t.registry.set_status(bindings, binding, status).await?;
    }
    Ok(())
}

/// Annotations of the export under `extra.apis.kcp.io/` are copied onto its bindings (kcp).
async fn copy_extra_annotations(
    t: &Apis,
    scope: &crate::registry::Scope,
    binding: &Value,
    export: &Value,
) -> Result<(), ApiError> {
    if !t.writes() {
        return Ok(());
    }
    const EXTRA: &str = "extra.apis.kcp.io/";
    let wanted: Vec<(String, Value)> = meta::annotations(export)
        .into_iter()
        .filter(|(k, _)| k.starts_with(EXTRA))
        .collect();
    let current = meta::annotations(binding);
    if wanted.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return Ok(());
    }
    let name = meta::name(binding).unwrap_or("").to_string();
    let opts = WriteOptions {
        system: true,
        ..Default::default()
    };
    t.registry
        .update_with(scope, &name, &opts, |cur, _| {
            let mut next = cur.clone();
            let mut annotations = meta::annotations(&next);
            annotations.extend(wanted.iter().cloned());
            meta::set_annotations(&mut next, annotations);
            Ok(next)
        })
        .await
        .map(|_| ())
}

/// The export's claims on resources that are neither built in nor name an identity hash:
/// an exported resource can only be claimed with its export's identity (`resource.group`).
fn invalid_claims(t: &Apis, export: &Value) -> Vec<String> {
    export
        .pointer("/spec/permissionClaims")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(claim_key)
        .filter(|(group, resource, identity)| {
            identity.is_empty()
                && !t
                    .served
                    .builtins()
                    .iter()
                    .any(|d| d.group == *group && d.plural == *resource)
        })
        .map(|(group, resource, _)| format!("{resource}.{group}"))
        .collect()
}

/// The export is gone: its resources stay served (their objects are the consumer's), but
/// its maximal permission policy no longer applies, as in kcp.
fn drop_policy(t: &Apis, cluster: &str, name: &str) {
    let served = t.served.bound_resources(cluster, name);
    if !served
        .iter()
        .any(|d| d.bound().is_some_and(|b| b.maximal_permission_policy))
    {
        return;
    }
    let descs = served
        .iter()
        .map(|d| {
            let mut d = (**d).clone();
            if let Some(b) = d.bound() {
                d.origin = crate::catalog::Origin::Bound(Arc::new(BoundInfo {
                    maximal_permission_policy: false,
                    ..b.clone()
                }));
            }
            d
        })
        .collect();
    // Replacing its own entry cannot conflict.
    let _ = t.served.bind(cluster, name, descs);
}

/// Forgets a binding that is gone: its served resources and its place in the export index.
fn forget(t: &Apis, cluster: &str, name: &str, export: Option<(String, String)>) -> Reconciled {
    let served = t.served.unbind(cluster, name);
    let export = export.or_else(|| {
        served
            .first()
            .and_then(|d| d.bound())
            .map(|b| (b.export_cluster.clone(), b.export.clone()))
    });
    let flipped = export
        .as_ref()
        .is_some_and(|(ec, e)| t.exports.set((ec, e), cluster, None));
    Reconciled {
        done: true,
        export_changed: export.filter(|_| flipped),
    }
}

/// A deleted binding: delete the objects of its resources, then let it go.
async fn unbind(
    t: &Apis,
    cluster: &str,
    name: &str,
    binding: &Value,
) -> Result<Reconciled, ApiError> {
    let mut descs: Vec<Arc<ResourceDesc>> = t.served.bound_resources(cluster, name);
    if descs.is_empty()
        && let Ok(resolved) = resolve(t, cluster, name, binding).await?
    {
        descs = resolved.descs.into_iter().map(Arc::new).collect();
    }
    // One version per resource is enough: versions share storage.
    descs.dedup_by(|a, b| a.plural == b.plural && a.group == b.group);
    let mut remaining = 0;
    for desc in &descs {
        remaining += t
            .registry
            .delete_all(&crate::registry::Scope {
                cluster: Some(cluster.to_string()),
                desc: desc.clone(),
                namespace: None,
            })
            .await?;
    }
    if remaining > 0 {
        return Ok(Reconciled {
            done: false,
            export_changed: None,
        });
    }
    let export = descs
        .first()
        .and_then(|d| d.bound())
        .map(|b| (b.export_cluster.clone(), b.export.clone()));
    let reconciled = forget(t, cluster, name, export);
    if let Some(bindings) = scope(&t.served, cluster, V2, "apibindings") {
        t.registry
            .remove_finalizer(&bindings, name, BINDING_FINALIZER)
            .await?;
    }
    Ok(reconciled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_take_the_intersection_of_verbs() {
        let export = json!({"spec": {"permissionClaims": [
            {"group": "", "resource": "configmaps", "verbs": ["get", "list", "watch"]},
            {"group": "", "resource": "secrets", "verbs": ["*"]}]}});
        let binding = json!({"spec": {"permissionClaims": [
            {"group": "", "resource": "configmaps", "verbs": ["list", "delete"], "state": "Accepted"},
            {"group": "", "resource": "secrets", "verbs": ["get"], "state": "Accepted",
             "selector": {"matchLabels": {"app": "x"}}},
            {"group": "", "resource": "pods", "verbs": ["*"], "state": "Accepted"}]}});
        let c = accepted_claims(&export, &binding);
        assert_eq!(c.len(), 2, "a claim the export does not make is ignored");
        assert_eq!(c[0].verbs, vec!["list"]);
        assert!(c[0].allows("list") && !c[0].allows("delete"));
        assert_eq!(c[1].verbs, vec!["get"]);
        assert!(c[1].selects(&json!({"metadata": {"labels": {"app": "x"}}})));
        assert!(!c[1].selects(&json!({"metadata": {}})));
    }
}
