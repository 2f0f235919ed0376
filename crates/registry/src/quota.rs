//! Quotas on object counts:
//!
//! - **per logical cluster**: at most `--logical-cluster-total-object-limit` objects (0: no
//!   limit), or what the LogicalCluster's `core.kcp.io/max-total-objects` annotation says —
//!   kcp's "poor man's" quota against one tenant filling the shared store;
//! - **per namespace**: ResourceQuota object counts (`count/<resource>[.<group>]`, and the
//!   legacy `configmaps`, `secrets`, `pods`, … names), enforced on create with kube's message,
//!   `status.used` kept by the controllers.
//!
//! A capped cluster's count is read from the store (count-only ranges, at one revision) the
//! first time it is written to, then kept from the store's watch — so it is right whichever
//! replica took the writes — and from this replica's own writes at once (each counted once:
//! the watch skips the revisions they had). Nothing is counted where no limit applies.
//! ResourceQuota usage is counted from the store at each create in a namespace that has
//! quotas, and the namespaces with quotas are learnt from the watch.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use kplex_apimachinery::{ApiError, meta};
use kplex_store::{RangeRequest, Revision, Store};
use serde_json::{Value, json};

use crate::catalog::ResourceDesc;
use crate::registry::Scope;
use crate::served::Served;

/// The LogicalCluster annotation that caps its objects.
pub const MAX_OBJECTS_ANNOTATION: &str = "core.kcp.io/max-total-objects";

/// Core resources a ResourceQuota may count by their bare name (kube's legacy keys).
const LEGACY_COUNTS: &[&str] = &[
    "configmaps",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "services",
];

pub struct Quota {
    served: Arc<Served>,
    /// `--logical-cluster-total-object-limit` (0: none).
    default_limit: u64,
    /// Per-cluster caps from the annotation.
    limits: RwLock<HashMap<String, u64>>,
    /// Objects in each limited cluster, once counted.
    counts: Mutex<HashMap<String, Count>>,
    /// (cluster, namespace) pairs that hold ResourceQuotas.
    quota_namespaces: RwLock<HashSet<(String, String)>>,
}

/// A capped cluster's object count.
#[derive(Debug, Default)]
struct Count {
    /// `None` while the first count is read.
    objects: Option<u64>,
    /// The revision the count was read at: changes up to it are in it.
    at: Revision,
    /// Creates (`true`) and deletes seen from the watch while the first count was read.
    early: Vec<(Revision, bool)>,
    /// Revisions of this replica's own writes, counted before the watch brings them.
    ahead: BTreeSet<Revision>,
    /// The last of this cluster's changes the watch brought: an own write at or before it
    /// was counted by the watch already.
    watched: Revision,
}

impl Count {
    fn apply(&mut self, created: bool) {
        if let Some(n) = self.objects.as_mut() {
            *n = if created { *n + 1 } else { n.saturating_sub(1) };
        }
    }
}

/// The (group, plural) a ResourceQuota `spec.hard` key counts, if it is an object count.
pub fn counted_resource(key: &str) -> Option<(String, String)> {
    if let Some(rest) = key.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    LEGACY_COUNTS
        .contains(&key)
        .then(|| (String::new(), key.to_string()))
}

/// A quantity as an object count ("10", "1k"); None for what is not a whole count.
fn count(q: &Value) -> Option<u64> {
    let s = match q {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.as_u64(),
        _ => return None,
    };
    let (digits, factor) = match s.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match s.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (s, 1),
        },
    };
    digits.parse::<u64>().ok().map(|n| n * factor)
}

impl Quota {
    pub fn new(served: Arc<Served>, default_limit: u64) -> Self {
        Self {
            served,
            default_limit,
            limits: RwLock::default(),
            counts: Mutex::default(),
            quota_namespaces: RwLock::default(),
        }
    }

    /// Records a LogicalCluster's own cap (its annotation), or its absence.
    pub fn observe_logical_cluster(&self, cluster: &str, lc: &Value) {
        let limit = meta::annotation(lc, MAX_OBJECTS_ANNOTATION).and_then(|v| v.parse().ok());
        if let Ok(mut limits) = self.limits.write() {
            match limit {
                Some(l) => limits.insert(cluster.to_string(), l),
                None => limits.remove(cluster),
            };
        }
    }

    fn limit_of(&self, cluster: &str) -> Option<u64> {
        let own = self.limits.read().ok()?.get(cluster).copied();
        own.or((self.default_limit > 0).then_some(self.default_limit))
    }

    /// Notes that `namespace` of `cluster` holds a ResourceQuota.
    pub fn observe_quota(&self, cluster: &str, namespace: &str) {
        if let Ok(mut q) = self.quota_namespaces.write() {
            q.insert((cluster.to_string(), namespace.to_string()));
        }
    }

    /// Every namespace known to hold quotas.
    pub fn quota_namespaces(&self) -> Vec<(String, String)> {
        self.quota_namespaces
            .read()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn has_quotas(&self, cluster: &str, namespace: &str) -> bool {
        self.quota_namespaces
            .read()
            .is_ok_and(|q| q.contains(&(cluster.to_string(), namespace.to_string())))
    }

    /// Objects stored in `cluster`, and the revision they were counted at: one count-only
    /// range per resource it serves, all at the revision of the first.
    async fn count_cluster(
        &self,
        store: &dyn Store,
        cluster: &str,
    ) -> Result<(u64, Revision), ApiError> {
        let mut prefixes = HashSet::new();
        let mut total = 0;
        let mut at = 0;
        for desc in self.served.resources(Some(cluster)) {
            let prefix = Scope {
                cluster: Some(cluster.to_string()),
                desc,
                namespace: None,
            }
            .prefix();
            if prefixes.insert(prefix.clone()) {
                let req = RangeRequest::prefix(prefix).count_only().at_revision(at);
                let counted = store
                    .range(req)
                    .await
                    .map_err(crate::registry::store_error)?;
                at = counted.revision;
                total += counted.count;
            }
        }
        if at == 0 {
            at = store
                .status()
                .await
                .map_err(crate::registry::store_error)?
                .revision;
        }
        Ok((total, at))
    }

    /// The objects in a capped cluster: counted the first time, kept since.
    async fn objects_in(&self, store: &dyn Store, cluster: &str) -> Result<u64, ApiError> {
        let counting = {
            let mut counts = self
                .counts
                .lock()
                .map_err(|_| ApiError::internal("quota counts poisoned"))?;
            match counts.get(cluster) {
                Some(Count {
                    objects: Some(n), ..
                }) => return Ok(*n),
                // Another request is counting: count too, but let it keep its figure.
                Some(_) => false,
                None => {
                    counts.insert(cluster.to_string(), Count::default());
                    true
                }
            }
        };
        let counted = self.count_cluster(store, cluster).await;
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| ApiError::internal("quota counts poisoned"))?;
        let (n, at) = match counted {
            Ok(counted) => counted,
            Err(e) => {
                if counting {
                    counts.remove(cluster);
                }
                return Err(e);
            }
        };
        if !counting {
            return Ok(n);
        }
        let count = counts.entry(cluster.to_string()).or_default();
        count.objects = Some(n);
        count.at = at;
        for (revision, created) in std::mem::take(&mut count.early) {
            if revision > at {
                count.apply(created);
            }
        }
        Ok(count.objects.unwrap_or(n))
    }

    /// Refuses a create that would take a capped cluster over its limit.
    pub async fn admit_cluster(
        &self,
        store: &dyn Store,
        scope: &Scope,
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(cluster) = scope.cluster.as_deref() else {
            return Ok(());
        };
        let Some(limit) = self.limit_of(cluster) else {
            return Ok(());
        };
        let used = self.objects_in(store, cluster).await?;
        if used >= limit {
            return Err(ApiError::forbidden(
                &scope.desc.group,
                &scope.desc.plural,
                name,
                &format!(
                    "the workspace has reached its limit of {limit} objects ({MAX_OBJECTS_ANNOTATION})"
                ),
            ));
        }
        Ok(())
    }

    /// This replica's own create (or delete) in `cluster` at `revision`: counted at once,
    /// so its next create sees it; the watch's copy of it is skipped.
    pub fn counted(&self, cluster: &str, revision: Revision, created: bool) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(count) = counts.get_mut(cluster)
            && count.objects.is_some()
            && revision > count.at.max(count.watched)
            && count.ahead.insert(revision)
        {
            count.apply(created);
        }
    }

    /// A create (or delete) of `key` at `revision` from the store's watch, whichever replica
    /// wrote it. Only capped clusters are counted; nothing happens while none is.
    pub fn observe_change(&self, key: &str, revision: Revision, created: bool) {
        if self.counts.lock().map_or(true, |c| c.is_empty()) {
            return;
        }
        let Some(cluster) = self.cluster_of_key(key) else {
            return;
        };
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let Some(count) = counts.get_mut(cluster) else {
            return;
        };
        if count.objects.is_none() {
            count.early.push((revision, created));
            count.watched = revision;
            return;
        }
        // The watch brings revisions in order: own writes before this one were seen.
        let own = count.ahead.remove(&revision);
        count.ahead.retain(|r| *r > revision);
        count.watched = revision;
        if !own && revision > count.at {
            count.apply(created);
        }
    }

    /// The logical cluster of a store key, `/registry/[<group>/]<resource>/<cluster>/…`:
    /// the second segment when the first is a core resource, else the third.
    fn cluster_of_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        let mut segments = key.strip_prefix("/registry/")?.split('/');
        let first = segments.next()?;
        let second = segments.next()?;
        match self.served.lookup(None, "", "v1", first) {
            Some(_) => Some(second),
            None => segments.next(),
        }
    }

    fn quotas_scope(&self, cluster: &str, namespace: &str) -> Option<Scope> {
        Some(Scope {
            cluster: Some(cluster.to_string()),
            desc: self
                .served
                .lookup(Some(cluster), "", "v1", "resourcequotas")?,
            namespace: Some(namespace.to_string()),
        })
    }

    /// Objects of `desc` in one namespace.
    async fn count_namespace(
        &self,
        store: &dyn Store,
        cluster: &str,
        namespace: &str,
        desc: Arc<ResourceDesc>,
    ) -> Result<u64, ApiError> {
        let mut req = RangeRequest::prefix(
            Scope {
                cluster: Some(cluster.to_string()),
                desc,
                namespace: Some(namespace.to_string()),
            }
            .prefix(),
        );
        req.count_only = true;
        Ok(store
            .range(req)
            .await
            .map_err(crate::registry::store_error)?
            .count as u64)
    }

    /// `status.used` of one ResourceQuota: the current count of every counted resource.
    pub async fn usage(
        &self,
        store: &dyn Store,
        cluster: &str,
        namespace: &str,
        quota: &Value,
    ) -> Result<Value, ApiError> {
        let mut hard = BTreeMap::new();
        let mut used = BTreeMap::new();
        for (key, limit) in quota
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            hard.insert(key.clone(), limit.clone());
            let Some((group, plural)) = counted_resource(key) else {
                continue;
            };
            let n = match self
                .served
                .resources(Some(cluster))
                .into_iter()
                .find(|d| d.group == group && d.plural == plural)
            {
                Some(desc) => {
                    self.count_namespace(store, cluster, namespace, desc)
                        .await?
                }
                None => 0,
            };
            used.insert(key.clone(), Value::String(n.to_string()));
        }
        Ok(json!({"hard": hard, "used": used}))
    }

    /// Refuses a create that would exceed a ResourceQuota of its namespace (kube's message).
    pub async fn admit_namespace(
        &self,
        registry: &crate::registry::Registry,
        scope: &Scope,
        name: &str,
    ) -> Result<(), ApiError> {
        let (Some(cluster), Some(namespace)) =
            (scope.cluster.as_deref(), scope.namespace.as_deref())
        else {
            return Ok(());
        };
        if !scope.desc.namespaced || !self.has_quotas(cluster, namespace) {
            return Ok(());
        }
        let Some(quotas) = self.quotas_scope(cluster, namespace) else {
            return Ok(());
        };
        let list = registry
            .list(&quotas, &crate::registry::ListOptions::default())
            .await?;
        for item in &list.items {
            let quota = item.decode()?;
            for (key, limit) in quota
                .pointer("/spec/hard")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let matches = counted_resource(key)
                    .is_some_and(|(g, p)| g == scope.desc.group && p == scope.desc.plural);
                let Some(limit) = count(limit).filter(|_| matches) else {
                    continue;
                };
                let used = self
                    .count_namespace(
                        registry.store.as_ref(),
                        cluster,
                        namespace,
                        scope.desc.clone(),
                    )
                    .await?;
                if used + 1 > limit {
                    return Err(ApiError::forbidden(
                        &scope.desc.group,
                        &scope.desc.plural,
                        name,
                        &format!(
                            "exceeded quota: {}, requested: {key}=1, used: {key}={used}, limited: {key}={limit}",
                            meta::name(&quota).unwrap_or("")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_keys_name_resources() {
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            counted_resource("count/widgets.example.dev"),
            Some(("example.dev".into(), "widgets".into()))
        );
        assert_eq!(
            counted_resource("configmaps"),
            Some((String::new(), "configmaps".into()))
        );
        assert_eq!(counted_resource("requests.cpu"), None);
        assert_eq!(count(&json!("2")), Some(2));
        assert_eq!(count(&json!("1k")), Some(1000));
        assert_eq!(count(&json!("500m")), None);
    }
}
