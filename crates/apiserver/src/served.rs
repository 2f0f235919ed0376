//! What each logical cluster serves — the built-in and system resources (shared, one copy)
//! plus the CRDs established in that cluster — and which logical clusters exist, by name and
//! by workspace path. An empty logical cluster costs two index entries here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::catalog::{ResourceDesc, builtins};

/// CRD name → its descriptions (one per served version).
type CrdResources = HashMap<String, Vec<Arc<ResourceDesc>>>;

/// The resource descriptions served, per logical cluster, and the cluster index.
pub struct Served {
    builtins: Vec<Arc<ResourceDesc>>,
    crds: RwLock<HashMap<String, CrdResources>>,
    /// Logical clusters that exist: name → canonical path.
    clusters: RwLock<HashMap<String, String>>,
    /// Canonical path → name.
    paths: RwLock<HashMap<String, String>>,
}

impl Default for Served {
    fn default() -> Self {
        Self::new()
    }
}

impl Served {
    pub fn new() -> Self {
        Self {
            builtins: builtins::all()
                .into_iter()
                .chain(crate::tenancy::resources())
                .map(Arc::new)
                .collect(),
            crds: RwLock::default(),
            clusters: RwLock::default(),
            paths: RwLock::default(),
        }
    }

    /// Makes logical cluster `name`, reachable as `path`, servable.
    pub fn add_cluster(&self, name: &str, path: &str) {
        if let Ok(mut c) = self.clusters.write() {
            c.insert(name.to_string(), path.to_string());
        }
        if let Ok(mut p) = self.paths.write() {
            p.insert(path.to_string(), name.to_string());
        }
    }

    pub fn remove_cluster(&self, name: &str) {
        let path = self.clusters.write().ok().and_then(|mut c| c.remove(name));
        if let (Some(path), Ok(mut p)) = (path, self.paths.write())
            && p.get(&path).is_some_and(|n| n == name)
        {
            p.remove(&path);
        }
        if let Ok(mut crds) = self.crds.write() {
            crds.remove(name);
        }
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters
            .read()
            .map(|c| c.contains_key(name))
            .unwrap_or(false)
    }

    /// The logical cluster a `/clusters/<x>` segment names: a workspace path (`root:org:team`,
    /// `user:alice`) or a logical cluster name.
    pub fn resolve(&self, name_or_path: &str) -> Option<String> {
        if let Some(name) = self
            .paths
            .read()
            .ok()
            .and_then(|p| p.get(name_or_path).cloned())
        {
            return Some(name);
        }
        self.has_cluster(name_or_path)
            .then(|| name_or_path.to_string())
    }

    /// The canonical path of logical cluster `name`.
    pub fn path_of(&self, name: &str) -> Option<String> {
        self.clusters.read().ok()?.get(name).cloned()
    }

    pub fn cluster_count(&self) -> usize {
        self.clusters.read().map(|c| c.len()).unwrap_or(0)
    }

    pub fn set_crd(&self, cluster: &str, crd: &str, descs: Vec<ResourceDesc>) {
        if let Ok(mut crds) = self.crds.write() {
            crds.entry(cluster.to_string())
                .or_default()
                .insert(crd.to_string(), descs.into_iter().map(Arc::new).collect());
        }
    }

    pub fn remove_crd(&self, cluster: &str, crd: &str) {
        if let Ok(mut crds) = self.crds.write()
            && let Some(c) = crds.get_mut(cluster)
        {
            c.remove(crd);
            if c.is_empty() {
                crds.remove(cluster);
            }
        }
    }

    pub fn builtins(&self) -> &[Arc<ResourceDesc>] {
        &self.builtins
    }

    /// Everything `cluster` serves (None: what the wildcard view serves — built-ins plus
    /// every cluster's CRDs).
    pub fn resources(&self, cluster: Option<&str>) -> Vec<Arc<ResourceDesc>> {
        let mut out = self.builtins.clone();
        if let Ok(crds) = self.crds.read() {
            match cluster {
                Some(c) => {
                    if let Some(map) = crds.get(c) {
                        out.extend(map.values().flatten().cloned());
                    }
                }
                None => {
                    let mut seen = HashSet::new();
                    for d in crds.values().flat_map(|m| m.values()).flatten() {
                        if seen.insert((d.group.clone(), d.version.clone(), d.plural.clone())) {
                            out.push(d.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// The description serving `group/version/resource` in `cluster`.
    pub fn lookup(
        &self,
        cluster: Option<&str>,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<Arc<ResourceDesc>> {
        if let Some(d) = self
            .builtins
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == resource)
        {
            return Some(d.clone());
        }
        let crds = self.crds.read().ok()?;
        let matches = |d: &&Arc<ResourceDesc>| {
            d.group == group && d.version == version && d.plural == resource
        };
        match cluster {
            Some(c) => crds.get(c)?.values().flatten().find(matches).cloned(),
            None => crds
                .values()
                .flat_map(|m| m.values())
                .flatten()
                .find(matches)
                .cloned(),
        }
    }

    /// The CRD-served resources of one CRD in one cluster (for cleanup).
    pub fn crd_resources(&self, cluster: &str, crd: &str) -> Vec<Arc<ResourceDesc>> {
        self.crds
            .read()
            .ok()
            .and_then(|c| c.get(cluster).and_then(|m| m.get(crd)).cloned())
            .unwrap_or_default()
    }
}
