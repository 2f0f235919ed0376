//! What each logical cluster serves: the built-in resources (shared, one copy) plus the
//! CRDs established in that cluster. An empty logical cluster costs nothing here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::catalog::{ResourceDesc, builtins};

/// CRD name → its descriptions (one per served version).
type CrdResources = HashMap<String, Vec<Arc<ResourceDesc>>>;

/// The resource descriptions served, per logical cluster.
pub struct Served {
    builtins: Vec<Arc<ResourceDesc>>,
    /// cluster → CRD name → its descriptions (one per served version).
    crds: RwLock<HashMap<String, CrdResources>>,
    /// Logical clusters that exist.
    clusters: RwLock<HashSet<String>>,
}

impl Default for Served {
    fn default() -> Self {
        Self::new()
    }
}

impl Served {
    pub fn new() -> Self {
        Self {
            builtins: builtins::all().into_iter().map(Arc::new).collect(),
            crds: RwLock::new(HashMap::new()),
            clusters: RwLock::new(HashSet::new()),
        }
    }

    pub fn add_cluster(&self, name: &str) {
        if let Ok(mut c) = self.clusters.write() {
            c.insert(name.to_string());
        }
    }

    pub fn remove_cluster(&self, name: &str) {
        if let Ok(mut c) = self.clusters.write() {
            c.remove(name);
        }
        if let Ok(mut crds) = self.crds.write() {
            crds.remove(name);
        }
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters
            .read()
            .map(|c| c.contains(name))
            .unwrap_or(false)
    }

    pub fn clusters(&self) -> Vec<String> {
        self.clusters
            .read()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
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
