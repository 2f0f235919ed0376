//! kube-apiserver's storage gauges: `apiserver_storage_objects{resource}` (objects stored
//! per resource, every workspace together: `pods`, `deployments.apps`) and
//! `apiserver_storage_size_bytes{storage_cluster_id}` (the database's size). Counted from
//! the store when `/metrics` is read, at most every [`STALE_AFTER`] (kube-apiserver refreshes
//! them every minute): one count-only range per stored resource.
//!
//! And kplex's own, read at the same moments: `kplex_objects_by_phase{resource, phase}` for
//! the kinds whose strategy asks for it (workspaces, logical clusters, API bindings: one
//! read of those objects), and the watch caches' state — `kplex_watch_cache_window_events`
//! and `_window_revisions` (how far back a watch can start without the store),
//! `kplex_watch_cache_watchers`, per resource, and `kplex_watch_cache_lagged_total` /
//! `_expired_total` (watchers that fell behind the broadcast; those that fell out of the
//! window too and got 410). No label names a workspace: the series stay flat as workspaces
//! grow.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kplex_registry::object::keys;
use kplex_registry::served::Served;
use kplex_store::{KeyRange, RangeRequest, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How old the counts may be when `/metrics` is read.
const STALE_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabel {
    storage_cluster_id: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    resource: String,
    phase: String,
}

pub struct StorageMetrics {
    objects: Family<ResourceLabel, Gauge>,
    size: Family<StorageLabel, Gauge>,
    phases: Family<PhaseLabel, Gauge>,
    window_events: Family<ResourceLabel, Gauge>,
    window_revisions: Family<ResourceLabel, Gauge>,
    watchers: Family<ResourceLabel, Gauge>,
    lagged: Counter,
    expired: Counter,
    refreshed: Mutex<Option<Instant>>,
}

impl StorageMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            objects: Family::default(),
            size: Family::default(),
            phases: Family::default(),
            window_events: Family::default(),
            window_revisions: Family::default(),
            watchers: Family::default(),
            lagged: Counter::default(),
            expired: Counter::default(),
            refreshed: Mutex::new(None),
        };
        registry.register(
            "kplex_objects_by_phase",
            "Stored objects of the kinds operators follow by phase (workspaces, logical clusters, API bindings), every workspace together.",
            m.phases.clone(),
        );
        let cache = registry.sub_registry_with_prefix("kplex_watch_cache");
        cache.register(
            "window_events",
            "Recent events a watch cache holds for watches that start in the past.",
            m.window_events.clone(),
        );
        cache.register(
            "window_revisions",
            "How many revisions back a watch can start without reading the store.",
            m.window_revisions.clone(),
        );
        cache.register(
            "watchers",
            "Watches a watch cache is serving.",
            m.watchers.clone(),
        );
        cache.register(
            "lagged",
            "Watchers that fell behind the broadcast and caught up from the window.",
            m.lagged.clone(),
        );
        cache.register(
            "expired",
            "Watchers that fell behind the window too and were ended with 410 Expired.",
            m.expired.clone(),
        );
        let r = registry.sub_registry_with_prefix("apiserver_storage");
        r.register(
            "objects",
            "Number of stored objects at the time of last check split by kind.",
            m.objects.clone(),
        );
        r.register(
            "size_bytes",
            "Size of the storage database file physically allocated in bytes.",
            m.size.clone(),
        );
        m
    }

    /// Reads the watch caches, and counts the store again if the last count is older than
    /// [`STALE_AFTER`]; a store error leaves the last figures.
    pub async fn refresh(&self, registry: &kplex_registry::registry::Registry, served: &Served) {
        let store = registry.store.as_ref();
        let due = self
            .refreshed
            .lock()
            .map(|mut last| {
                let due = last.is_none_or(|t| t.elapsed() >= STALE_AFTER);
                if due {
                    *last = Some(Instant::now());
                }
                due
            })
            .unwrap_or(false);
        // The caches' state is in memory: read at every scrape.
        self.refresh_watch_caches(&registry.caches).await;
        if !due {
            return;
        }
        if let Ok(status) = store.status().await {
            self.size
                .get_or_create(&StorageLabel {
                    storage_cluster_id: "",
                })
                .set(i64::try_from(status.db_size).unwrap_or(i64::MAX));
        }
        for (resource, count) in count_objects(store, served, None).await {
            self.objects
                .get_or_create(&ResourceLabel { resource })
                .set(count);
        }
        let phases = count_phases(store, served).await;
        self.phases.clear();
        for ((resource, phase), count) in phases {
            self.phases
                .get_or_create(&PhaseLabel { resource, phase })
                .set(count);
        }
    }

    async fn refresh_watch_caches(&self, caches: &kplex_registry::registry::cache::WatchCaches) {
        for w in caches.windows().await {
            let label = ResourceLabel {
                resource: resource_of_prefix(&w.prefix),
            };
            let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.window_events
                .get_or_create(&label)
                .set(as_i64(w.events));
            self.window_revisions.get_or_create(&label).set(w.revisions);
            self.watchers.get_or_create(&label).set(as_i64(w.watchers));
        }
        // The caches count; the counters here follow them.
        let counters = caches.counters();
        for (counter, now) in [
            (&self.lagged, counters.lagged.load(Ordering::Relaxed)),
            (&self.expired, counters.expired.load(Ordering::Relaxed)),
        ] {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
    }
}

/// `configmaps` or `deployments.apps` from a storage prefix (`/registry/apps/deployments/`).
fn resource_of_prefix(prefix: &str) -> String {
    let parts: Vec<&str> = prefix
        .trim_start_matches("/registry/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    match parts.as_slice() {
        [resource] => (*resource).to_string(),
        [group, resource] => format!("{resource}.{group}"),
        _ => parts.join("/"),
    }
}

/// Objects per (resource label, `status.phase`) of the kinds counted by phase, in every
/// workspace ("" for objects without a phase yet).
async fn count_phases(store: &dyn Store, served: &Served) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    let counted = storage_locations(served, None, |d| d.strategy.counted_by_phase());
    for (prefix, label) in counted {
        let Ok(resp) = store.range(RangeRequest::prefix(prefix)).await else {
            continue;
        };
        for kv in resp.kvs {
            let phase = kplex_registry::object::decode(&kv.value, kv.mod_revision)
                .ok()
                .and_then(|o| {
                    o.pointer("/status/phase")
                        .and_then(serde_json::Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_default();
            *out.entry((label.clone(), phase)).or_insert(0) += 1;
        }
    }
    out
}

/// `/clusters/<ws>/metrics` for a workspace's admins: `apiserver_storage_objects` of that
/// workspace alone, counted now — nothing of other workspaces or of the process (those
/// are `/metrics` in the root workspace, for the cluster's operators).
pub async fn workspace_exposition(store: &dyn Store, served: &Served, cluster: &str) -> String {
    let mut registry = Registry::default();
    let objects = Family::<ResourceLabel, Gauge>::default();
    registry.register(
        "apiserver_storage_objects",
        "Number of stored objects of this workspace split by kind",
        objects.clone(),
    );
    for (resource, count) in count_objects(store, served, Some(cluster)).await {
        objects
            .get_or_create(&ResourceLabel { resource })
            .set(count);
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// Objects per resource label, over every storage prefix of what is served — in every
/// workspace, or in `cluster` alone (versions and views sharing storage are counted once;
/// bound resources of several exports add up).
async fn count_objects(
    store: &dyn Store,
    served: &Served,
    cluster: Option<&str>,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (prefix, label) in storage_locations(served, cluster, |_| true) {
        let req = RangeRequest::new(KeyRange::prefix(prefix)).count_only();
        let Ok(resp) = store.range(req).await else {
            continue;
        };
        *out.entry(label).or_insert(0) += i64::try_from(resp.count).unwrap_or(i64::MAX);
    }
    out
}

/// Each storage location of the `wanted` kinds `cluster` (or every cluster) serves, once,
/// with its resource label (`configmaps`, `deployments.apps`: the storage group's name).
fn storage_locations(
    served: &Served,
    cluster: Option<&str>,
    wanted: impl Fn(&kplex_registry::catalog::ResourceDesc) -> bool,
) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    served
        .resources(cluster)
        .into_iter()
        .filter(|desc| wanted(desc))
        .filter_map(|desc| {
            let (group, resource) = (desc.storage_group(), desc.storage_resource());
            let prefix = match cluster {
                Some(cluster) => keys::cluster_prefix(group, &resource, cluster),
                None => keys::resource_prefix(group, &resource),
            };
            let label = match group {
                "" => desc.plural.clone(),
                group => format!("{}.{group}", desc.plural),
            };
            seen.insert(prefix.clone()).then_some((prefix, label))
        })
        .collect()
}
