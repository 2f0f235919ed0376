//! kube-apiserver's storage gauges: `apiserver_storage_objects{resource}` (objects stored
//! per resource, every workspace together: `pods`, `deployments.apps`) and
//! `apiserver_storage_size_bytes{storage_cluster_id}` (the database's size). Counted from
//! the store when `/metrics` is read, at most every [`STALE_AFTER`] (kube-apiserver refreshes
//! them every minute): one count-only range per stored resource.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kplex_registry::object::keys;
use kplex_registry::served::Served;
use kplex_store::{KeyRange, RangeRequest, Store};
use prometheus_client::encoding::EncodeLabelSet;
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

pub struct StorageMetrics {
    objects: Family<ResourceLabel, Gauge>,
    size: Family<StorageLabel, Gauge>,
    refreshed: Mutex<Option<Instant>>,
}

impl StorageMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            objects: Family::default(),
            size: Family::default(),
            refreshed: Mutex::new(None),
        };
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

    /// Counts again if the last count is older than [`STALE_AFTER`]; a store error leaves
    /// the last figures.
    pub async fn refresh(&self, store: &dyn Store, served: &Served) {
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
    }
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
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for desc in served.resources(cluster) {
        let (group, resource) = (desc.storage_group(), desc.storage_resource());
        let prefix = match cluster {
            Some(cluster) => keys::cluster_prefix(group, &resource, cluster),
            None => keys::resource_prefix(group, &resource),
        };
        if !seen.insert(prefix.clone()) {
            continue;
        }
        let req = RangeRequest::new(KeyRange::prefix(prefix)).count_only();
        let Ok(resp) = store.range(req).await else {
            continue;
        };
        let label = match desc.storage_group() {
            "" => desc.plural.clone(),
            group => format!("{}.{group}", desc.plural),
        };
        *out.entry(label).or_insert(0) += i64::try_from(resp.count).unwrap_or(i64::MAX);
    }
    out
}
