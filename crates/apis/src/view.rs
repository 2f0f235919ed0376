//! The APIExport virtual workspace — the provider's view:
//! `/services/apiexport/<export-cluster>/<export>/clusters/{*|<consumer>}/…` serves
//!
//! - the exported resources in every workspace that binds the export (one store prefix: the
//!   identity's), with list, watch and writes;
//! - the APIBindings to the export (read only);
//! - the claimed resources, in the workspaces that accepted the claim, limited to the verbs
//!   both sides allow and to the objects the binding's selector picks.
//!
//! Access is RBAC on `apiexports/content` (resourceName = the export) in the export's
//! workspace, with the request's verb (`virtual_workspace.rs` serves it to the server).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use serde_json::Value;

use super::{AcceptedClaim, GROUP, V1, V2, get, scope};
use crate::authz::{Request, ResourceAttrs};
use crate::catalog::{BoundInfo, ResourceDesc};
use crate::registry::{Predicate, Registry};
use crate::served::Served;

/// One export, as its virtual workspace serves it.
pub struct ExportView {
    pub export_cluster: String,
    pub export: String,
    exported: Vec<Arc<ResourceDesc>>,
    /// (group, resource, identityHash) the export claims.
    claims: Vec<(String, String, String)>,
}

/// What the view needs of a request: the resource addressed and the verb (kube's).
#[derive(Clone, Copy, Debug)]
pub struct ViewRequest<'a> {
    pub group: &'a str,
    pub version: &'a str,
    /// The plural, with `:<identityHash>` in the wildcard view of a bound resource.
    pub resource: &'a str,
    pub verb: &'a str,
    pub name: Option<&'a str>,
}

/// How one request through the view is served.
pub struct Plan {
    pub desc: Arc<ResourceDesc>,
    pub predicate: Option<Predicate>,
    /// Labels a claim's selector requires: stamped on objects the provider creates.
    pub labels: Option<BTreeMap<String, String>>,
}

impl ExportView {
    /// Reads the export (by cluster name or path) and its schemas; 404 when it is not there.
    pub async fn load(
        registry: &Registry,
        served: &Served,
        cluster_or_path: &str,
        export: &str,
    ) -> Result<Self, ApiError> {
        let missing = || ApiError::not_found(GROUP, "apiexports", export);
        let ec = served.resolve(cluster_or_path).ok_or_else(missing)?;
        let exports = scope(served, &ec, V2, "apiexports").ok_or_else(missing)?;
        let obj = get(registry, &exports, export).await?.ok_or_else(missing)?;
        let identity = obj
            .pointer("/status/identityHash")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let schemas = scope(served, &ec, V1, "apiresourceschemas").ok_or_else(missing)?;
        let policy = obj.pointer("/spec/maximalPermissionPolicy/local").is_some();
        let mut exported = Vec::new();
        for r in obj
            .pointer("/spec/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = r.get("schema").and_then(Value::as_str).unwrap_or("");
            if identity.is_empty() {
                break;
            }
            if let Some(schema) = get(registry, &schemas, name).await? {
                exported.extend(
                    super::bound_descriptions(
                        &schema,
                        BoundInfo {
                            binding: String::new(),
                            export_cluster: ec.clone(),
                            export: export.to_string(),
                            identity: identity.clone(),
                            schema: name.to_string(),
                            storage_version: String::new(),
                            maximal_permission_policy: policy,
                        },
                    )
                    .into_iter()
                    .map(Arc::new),
                );
            }
        }
        let claims = obj
            .pointer("/spec/permissionClaims")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let s = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                (s("group"), s("resource"), s("identityHash"))
            })
            .collect();
        Ok(Self {
            export_cluster: ec,
            export: export.to_string(),
            exported,
            claims,
        })
    }

    /// The RBAC request the view's access check makes in the export's workspace.
    pub fn content_request(&self, user: &kplex_apimachinery::UserInfo, verb: &str) -> Request {
        Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            verb: verb.to_string(),
            resource: Some(ResourceAttrs {
                group: GROUP.into(),
                resource: "apiexports".into(),
                subresource: Some("content".into()),
                name: Some(self.export.clone()),
                namespace: None,
            }),
            path: None,
        }
    }

    fn claimed_desc(
        served: &Served,
        (group, resource, identity): &(String, String, String),
    ) -> Vec<Arc<ResourceDesc>> {
        let plural = if identity.is_empty() {
            resource.clone()
        } else {
            format!("{resource}:{identity}")
        };
        served
            .resources(None)
            .into_iter()
            .filter(|d| d.group == *group && d.plural == *resource)
            .filter_map(|d| served.lookup(None, group, &d.version, &plural))
            .collect()
    }

    /// What the view serves (discovery, OpenAPI).
    pub fn resources(&self, served: &Served) -> Vec<Arc<ResourceDesc>> {
        let mut out = self.exported.clone();
        let mut seen: HashSet<(String, String, String)> = out
            .iter()
            .map(|d| (d.group.clone(), d.version.clone(), d.plural.clone()))
            .collect();
        let bindings = [V2, V1]
            .into_iter()
            .filter_map(|v| served.lookup(None, GROUP, v, "apibindings"));
        let claimed = self
            .claims
            .iter()
            .flat_map(|c| Self::claimed_desc(served, c));
        for d in bindings.chain(claimed) {
            if seen.insert((d.group.clone(), d.version.clone(), d.plural.clone())) {
                out.push(d);
            }
        }
        out
    }

    /// How to serve `r` in `consumer` (None: across every consumer).
    pub fn plan(
        &self,
        served: &Served,
        exports: &super::Index,
        consumer: Option<&str>,
        r: &ViewRequest<'_>,
    ) -> Result<Plan, ApiError> {
        let export = (self.export_cluster.as_str(), self.export.as_str());
        let plural = r.resource.split(':').next().unwrap_or("");
        // The exported resources: their identity's prefix holds only bound workspaces.
        if let Some(desc) = self
            .exported
            .iter()
            .find(|d| d.group == r.group && d.version == r.version && d.plural == plural)
        {
            if let Some(c) = consumer
                && exports.consumer(export, c).is_none()
            {
                return Err(ApiError::no_such_path());
            }
            return Ok(Plan {
                desc: desc.clone(),
                predicate: None,
                labels: None,
            });
        }
        // The bindings to this export.
        if r.group == GROUP && plural == "apibindings" {
            if !matches!(r.verb, "get" | "list" | "watch") {
                return Err(ApiError::method_not_supported(GROUP, "apibindings", r.verb));
            }
            let desc = served
                .lookup(None, GROUP, r.version, "apibindings")
                .ok_or_else(ApiError::no_such_path)?;
            let (ec, name) = (self.export_cluster.clone(), self.export.clone());
            let predicate: Predicate = Arc::new(move |b: &Value| {
                b.pointer("/status/apiExportClusterName")
                    .and_then(Value::as_str)
                    == Some(ec.as_str())
                    && super::binding::reference(b).1 == name
            });
            return Ok(Plan {
                desc,
                predicate: Some(predicate),
                labels: None,
            });
        }
        // Claimed resources, where accepted.
        let claim = self
            .claims
            .iter()
            .find(|(g, res, _)| *g == r.group && res == plural)
            .ok_or_else(ApiError::no_such_path)?;
        let desc = Self::claimed_desc(served, claim)
            .into_iter()
            .find(|d| d.version == r.version)
            .ok_or_else(ApiError::no_such_path)?;
        let accepted = |c: &super::Consumer| -> Option<AcceptedClaim> {
            c.claims
                .iter()
                .find(|a| a.group == claim.0 && a.resource == claim.1 && a.identity == claim.2)
                .cloned()
        };
        let verb = r.verb;
        let denied = || {
            ApiError::forbidden(
                r.group,
                plural,
                r.name.unwrap_or(""),
                &format!(
                    "the permission claim on {} is not accepted for verb {verb}",
                    desc.qualified()
                ),
            )
        };
        match consumer {
            Some(c) => {
                let accepted = exports
                    .consumer(export, c)
                    .and_then(|c| accepted(&c))
                    .filter(|a| a.allows(verb))
                    .ok_or_else(denied)?;
                let labels = accepted.labels.clone();
                Ok(Plan {
                    desc,
                    predicate: Some(Arc::new(move |o: &Value| accepted.selects(o))),
                    labels,
                })
            }
            None => {
                let clusters: BTreeMap<String, AcceptedClaim> = exports
                    .consumers(export)
                    .into_iter()
                    .filter_map(|(cluster, c)| Some((cluster, accepted(&c)?)))
                    .filter(|(_, a)| a.allows(verb))
                    .collect();
                let predicate: Predicate = Arc::new(move |o: &Value| {
                    meta::annotation(o, kplex_registry::object::CLUSTER_ANNOTATION)
                        .and_then(|c| clusters.get(c))
                        .is_some_and(|a| a.selects(o))
                });
                Ok(Plan {
                    desc,
                    predicate: Some(predicate),
                    labels: None,
                })
            }
        }
    }
}
