//! Which logical clusters exist, by name and by workspace path: the cluster index. An empty
//! logical cluster costs its two entries here and nothing else.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use tokio::sync::broadcast;

pub struct ClusterIndex {
    /// Logical clusters that exist: name → canonical path.
    paths_by_name: RwLock<HashMap<String, String>>,
    /// Canonical path → name.
    names_by_path: RwLock<HashMap<String, String>>,
    /// Names of logical clusters as they are removed (watches on them end).
    removed: broadcast::Sender<String>,
}

impl Default for ClusterIndex {
    fn default() -> Self {
        Self {
            paths_by_name: RwLock::default(),
            names_by_path: RwLock::default(),
            removed: broadcast::channel(REMOVALS_BUFFER).0,
        }
    }
}

/// Removals a slow subscriber may fall behind by before it must look the cluster up.
const REMOVALS_BUFFER: usize = 256;

impl ClusterIndex {
    /// Records logical cluster `name`, reachable as `path`.
    pub fn add(&self, name: &str, path: &str) {
        if let Ok(mut c) = self.paths_by_name.write() {
            c.insert(name.to_string(), path.to_string());
        }
        if let Ok(mut p) = self.names_by_path.write() {
            p.insert(path.to_string(), name.to_string());
        }
    }

    /// Forgets `name` (and its path, unless another cluster took that path since).
    pub fn remove(&self, name: &str) {
        let path = self
            .paths_by_name
            .write()
            .ok()
            .and_then(|mut c| c.remove(name));
        if let (Some(path), Ok(mut p)) = (path, self.names_by_path.write())
            && p.get(&path).is_some_and(|n| n == name)
        {
            p.remove(&path);
        }
        // Nobody listening is fine.
        let _ = self.removed.send(name.to_string());
    }

    /// Resolves once logical cluster `name` is removed (never, while it exists).
    pub fn removal_of(&self, name: &str) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.removed.subscribe();
        let name = name.to_string();
        async move {
            loop {
                match rx.recv().await {
                    Ok(removed) if removed == name => return,
                    Ok(_) => {}
                    // Fell behind: removals were missed, so end the watch to be safe; the
                    // client's next request finds out whether the cluster is still there.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.paths_by_name
            .read()
            .map(|c| c.contains_key(name))
            .unwrap_or(false)
    }

    /// The logical cluster a `/clusters/<x>` segment names: a workspace path (`root:org:team`,
    /// `user:alice`) or a logical cluster name.
    pub fn resolve(&self, name_or_path: &str) -> Option<String> {
        if let Some(name) = self
            .names_by_path
            .read()
            .ok()
            .and_then(|p| p.get(name_or_path).cloned())
        {
            return Some(name);
        }
        self.contains(name_or_path)
            .then(|| name_or_path.to_string())
    }

    /// The canonical path of logical cluster `name`.
    pub fn path_of(&self, name: &str) -> Option<String> {
        self.paths_by_name.read().ok()?.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.paths_by_name.read().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Finds in the store a logical cluster the index does not know yet — made a moment ago
/// through another replica, whose watch event has not arrived here. The feature that owns
/// logical clusters provides it; the server asks before it answers 404.
#[async_trait]
pub trait ClusterLookup: Send + Sync + 'static {
    /// The name and canonical path of the logical cluster `name_or_path` names, if the store
    /// holds it.
    async fn lookup(&self, name_or_path: &str) -> Result<Option<(String, String)>, ApiError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_and_names_and_forgets_only_its_own_path() {
        let index = ClusterIndex::default();
        index.add("abc", "root:team");
        assert_eq!(index.resolve("root:team").as_deref(), Some("abc"));
        assert_eq!(index.resolve("abc").as_deref(), Some("abc"));
        assert_eq!(index.resolve("root:other"), None);
        // The path moved to a new cluster before the old one was forgotten.
        index.add("def", "root:team");
        index.remove("abc");
        assert_eq!(index.resolve("root:team").as_deref(), Some("def"));
        assert_eq!(index.len(), 1);
    }
}
