//! Garbage collection by ownerReferences, as kube's garbage collector does it: background
//! collection when an owner is gone, and the `foregroundDeletion` and `orphan` finalizers.

use std::collections::HashSet;
use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use kplex_registry::catalog::ResourceDesc;
use kplex_registry::registry::{DeleteOptions, ListOptions, WriteOptions};
use serde_json::Value;

use super::{Builtins, Work};

/// An object being deleted that waits on its dependents (the `foregroundDeletion` or
/// `orphan` finalizer).
pub(super) fn waiting_on_dependents(obj: &Value, cluster: &str) -> Option<Work> {
    meta::deletion_timestamp(obj)?;
    let waits = meta::finalizers(obj)
        .iter()
        .any(|f| f == "foregroundDeletion" || f == "orphan");
    waits.then(|| Work::Dependents {
        cluster: cluster.to_string(),
        api_version: str_field(obj, "apiVersion").to_string(),
        kind: str_field(obj, "kind").to_string(),
        namespace: meta::namespace(obj).map(String::from),
        name: meta::name(obj).unwrap_or("").to_string(),
    })
}

fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get(field).and_then(Value::as_str).unwrap_or("")
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

impl Builtins {
    /// The resource serving `kind` of `api_version` in `cluster` (an ownerReference's
    /// terms).
    fn desc_of_kind(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
    ) -> Option<Arc<ResourceDesc>> {
        let (group, version) = split_api_version(api_version);
        self.served
            .resources(Some(cluster))
            .into_iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
    }

    /// Objects (in the owner's namespace, or anywhere for a cluster-scoped owner) whose
    /// ownerReferences name `uid`, with the resource that serves each.
    async fn dependents(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        uid: &str,
    ) -> Result<Vec<(Arc<ResourceDesc>, Value)>, ApiError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for desc in self.served.resources(Some(cluster)) {
            if !seen.insert((desc.group.clone(), desc.plural.clone())) {
                continue;
            }
            let ns = if desc.namespaced { namespace } else { None };
            if namespace.is_some() && !desc.namespaced {
                // A namespaced owner cannot own cluster-scoped objects.
                continue;
            }
            let list = self
                .registry
                .list(
                    &self.scope(cluster, desc.clone(), ns),
                    &ListOptions::default(),
                )
                .await?;
            for item in list.items {
                let obj = item.decode()?;
                if meta::owner_references(&obj)
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                {
                    out.push((desc.clone(), obj));
                }
            }
        }
        Ok(out)
    }

    /// Background collection: dependents left with no existing owner are deleted; others
    /// lose the dangling reference.
    pub(super) async fn collect_dependents(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        uid: &str,
    ) -> Result<bool, ApiError> {
        if !self.served.has_cluster(cluster) {
            return Ok(true);
        }
        for (desc, dep) in self.dependents(cluster, namespace, uid).await? {
            let scope = self.scope(cluster, desc, meta::namespace(&dep));
            let name = meta::name(&dep).unwrap_or("").to_string();
            let others: Vec<Value> = meta::owner_references(&dep)
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                .collect();
            let mut alive = false;
            for r in &others {
                alive |= self.owner_exists(cluster, meta::namespace(&dep), r).await;
            }
            if alive {
                self.registry
                    .update_with(&scope, &name, &WriteOptions::default(), |cur, _| {
                        let mut next = cur.clone();
                        let refs = meta::owner_references(cur)
                            .into_iter()
                            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                            .collect();
                        meta::set_owner_references(&mut next, refs);
                        Ok(next)
                    })
                    .await?;
            } else {
                match self
                    .registry
                    .delete(&scope, &name, &DeleteOptions::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(true)
    }

    async fn owner_exists(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        owner_ref: &Value,
    ) -> bool {
        let api_version = owner_ref
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = owner_ref.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(desc) = self.desc_of_kind(cluster, api_version, kind) else {
            return false;
        };
        let ns = if desc.namespaced { namespace } else { None };
        let scope = self.scope(cluster, desc, ns);
        match self
            .registry
            .get(
                &scope,
                owner_ref.get("name").and_then(Value::as_str).unwrap_or(""),
            )
            .await
        {
            Ok(s) => {
                s.decode()
                    .ok()
                    .and_then(|o| meta::uid(&o).map(String::from))
                    .as_deref()
                    == owner_ref.get("uid").and_then(Value::as_str)
            }
            Err(_) => false,
        }
    }

    /// Foreground deletion deletes dependents first; orphaning releases them. Then the
    /// owner's finalizer is removed.
    pub(super) async fn reconcile_dependents(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some(desc) = self.desc_of_kind(cluster, api_version, kind) else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc.clone(), namespace);
        let owner = match self.registry.get(&scope, name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e),
        };
        let uid = meta::uid(&owner).unwrap_or("").to_string();
        let finalizers = meta::finalizers(&owner);
        let dependents = self.dependents(cluster, namespace, &uid).await?;
        if finalizers.iter().any(|f| f == "orphan") {
            for (d, dep) in &dependents {
                let dep_scope = self.scope(cluster, d.clone(), meta::namespace(dep));
                let uid = uid.clone();
                self.registry
                    .update_with(
                        &dep_scope,
                        meta::name(dep).unwrap_or(""),
                        &WriteOptions::default(),
                        move |cur, _| {
                            let mut next = cur.clone();
                            let refs = meta::owner_references(cur)
                                .into_iter()
                                .filter(|r| {
                                    r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                                })
                                .collect();
                            meta::set_owner_references(&mut next, refs);
                            Ok(next)
                        },
                    )
                    .await?;
            }
            self.registry
                .remove_finalizer(&scope, name, "orphan")
                .await?;
            return Ok(true);
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            if !dependents.is_empty() {
                for (d, dep) in &dependents {
                    let dep_scope = self.scope(cluster, d.clone(), meta::namespace(dep));
                    let opts = DeleteOptions {
                        propagation_policy: Some("Foreground".into()),
                        ..Default::default()
                    };
                    match self
                        .registry
                        .delete(&dep_scope, meta::name(dep).unwrap_or(""), &opts)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(false);
            }
            self.registry
                .remove_finalizer(&scope, name, "foregroundDeletion")
                .await?;
        }
        Ok(true)
    }
}
