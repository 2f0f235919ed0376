//! What each logical cluster serves — the built-in and system resources (shared, one copy)
//! plus the CRDs and bindings established in that cluster: the resource index — beside
//! which logical clusters exist ([`ClusterIndex`]), which requests resolve against both.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::catalog::ResourceDesc;
pub use crate::clusters::ClusterIndex;

/// Source → its descriptions (one per served version). A source is a CRD (its name) or an
/// APIBinding (`apibinding/<name>`: CRD names never contain a slash).
type CrdResources = HashMap<String, Vec<Arc<ResourceDesc>>>;

fn binding_source(binding: &str) -> String {
    format!("apibinding/{binding}")
}

/// What already serves a resource an APIBinding wants to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    Crd(String),
    Binding(String),
}

/// Whether two descriptions of one group claim a common name (plural, singular, short name,
/// kind or list kind), as kcp's naming conflict checker does.
fn names_collide(a: &ResourceDesc, b: &ResourceDesc) -> bool {
    if a.group != b.group {
        return false;
    }
    let names = |d: &ResourceDesc| -> Vec<String> {
        let mut v = vec![d.plural.clone(), d.singular.clone()];
        v.extend(d.short_names.iter().cloned());
        v
    };
    let (na, nb) = (names(a), names(b));
    na.iter().any(|n| nb.contains(n)) || a.kind == b.kind || a.list_kind() == b.list_kind()
}

/// The resource descriptions served, per logical cluster, and the cluster index.
pub struct Served {
    builtins: Vec<Arc<ResourceDesc>>,
    crds: RwLock<HashMap<String, CrdResources>>,
    clusters: ClusterIndex,
}

impl Served {
    /// Serves `kinds` in every logical cluster (the features' kinds, assembled at start).
    pub fn new(kinds: Vec<ResourceDesc>) -> Self {
        Self {
            builtins: kinds.into_iter().map(Arc::new).collect(),
            crds: RwLock::default(),
            clusters: ClusterIndex::default(),
        }
    }

    /// The logical clusters that exist.
    pub fn clusters(&self) -> &ClusterIndex {
        &self.clusters
    }

    /// Makes logical cluster `name`, reachable as `path`, servable.
    pub fn add_cluster(&self, name: &str, path: &str) {
        self.clusters.add(name, path);
    }

    /// Forgets logical cluster `name` and what it served.
    pub fn remove_cluster(&self, name: &str) {
        self.clusters.remove(name);
        if let Ok(mut crds) = self.crds.write() {
            crds.remove(name);
        }
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters.contains(name)
    }

    /// See [`ClusterIndex::resolve`].
    pub fn resolve(&self, name_or_path: &str) -> Option<String> {
        self.clusters.resolve(name_or_path)
    }

    /// The canonical path of logical cluster `name`.
    pub fn path_of(&self, name: &str) -> Option<String> {
        self.clusters.path_of(name)
    }

    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
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

    /// Serves an APIBinding's resources in `cluster`, unless a CRD or another binding there
    /// already claims one of their names (the first binder wins, as in kcp).
    pub fn bind(
        &self,
        cluster: &str,
        binding: &str,
        descs: Vec<ResourceDesc>,
    ) -> Result<(), Conflict> {
        let Ok(mut crds) = self.crds.write() else {
            return Ok(());
        };
        let own = binding_source(binding);
        let map = crds.entry(cluster.to_string()).or_default();
        for (source, served) in map.iter() {
            if *source == own {
                continue;
            }
            if served
                .iter()
                .any(|s| descs.iter().any(|d| names_collide(s, d)))
            {
                return Err(match source.strip_prefix("apibinding/") {
                    Some(b) => Conflict::Binding(b.to_string()),
                    None => Conflict::Crd(source.clone()),
                });
            }
        }
        if self.builtins.iter().any(|s| {
            descs
                .iter()
                .any(|d| s.group == d.group && s.plural == d.plural)
        }) {
            return Err(Conflict::Crd(String::new()));
        }
        map.insert(own, descs.into_iter().map(Arc::new).collect());
        Ok(())
    }

    /// Stops serving an APIBinding's resources; returns what it served.
    pub fn unbind(&self, cluster: &str, binding: &str) -> Vec<Arc<ResourceDesc>> {
        let Ok(mut crds) = self.crds.write() else {
            return vec![];
        };
        let Some(map) = crds.get_mut(cluster) else {
            return vec![];
        };
        let removed = map.remove(&binding_source(binding)).unwrap_or_default();
        if map.is_empty() {
            crds.remove(cluster);
        }
        removed
    }

    /// What an APIBinding serves in `cluster`.
    pub fn bound_resources(&self, cluster: &str, binding: &str) -> Vec<Arc<ResourceDesc>> {
        self.crd_resources(cluster, &binding_source(binding))
    }

    /// The APIBinding serving `group`/`plural` in `cluster`, if any.
    pub fn bound_by(&self, cluster: &str, group: &str, plural: &str) -> Option<String> {
        let crds = self.crds.read().ok()?;
        crds.get(cluster)?.iter().find_map(|(source, descs)| {
            let binding = source.strip_prefix("apibinding/")?;
            descs
                .iter()
                .any(|d| d.group == group && d.plural == plural)
                .then(|| binding.to_string())
        })
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
        match cluster {
            Some(c) => crds
                .get(c)?
                .values()
                .flatten()
                .find(|d| d.group == group && d.version == version && d.plural == resource)
                .cloned(),
            // Across clusters a bound resource must name its export's identity
            // (`widgets:<identityHash>`): two exports may serve the same group/resource.
            None => {
                let (plural, identity) = match resource.split_once(':') {
                    Some((p, i)) => (p, Some(i)),
                    None => (resource, None),
                };
                crds.values()
                    .flat_map(|m| m.values())
                    .flatten()
                    .find(|d| {
                        d.group == group
                            && d.version == version
                            && d.plural == plural
                            && d.bound().map(|b| b.identity.as_str()) == identity
                    })
                    .cloned()
            }
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
