//! `etcd_request_duration_seconds{operation, type}`, kube-apiserver's storage latency, for
//! both backends: a [`Store`] that times every read and write of the one it wraps. `type` is
//! the first segment of the key after `/registry/` (an API group, or a core resource), so
//! it stays bounded by what is served, never by workspaces or names.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use kplex_store::{
    KeyRange, Op, Precondition, RangeRequest, RangeResponse, Result, Revision, Store, StoreStatus,
    TxnOutcome, WatchStream,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    operation: &'static str,
    r#type: String,
}

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// kube-apiserver's etcd latency buckets (seconds).
fn histogram() -> Histogram {
    Histogram::new([
        0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
        10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    ])
}

/// The wrapped store, timed.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    durations: Histograms,
    /// Histogram handles by type and operation, so a timed call allocates nothing once
    /// its pair was seen.
    handles: RwLock<HashMap<String, HashMap<&'static str, Histogram>>>,
}

impl TimedStore {
    /// Wraps `inner`, registering the histogram in `registry`.
    pub fn new(inner: Arc<dyn Store>, registry: &mut Registry) -> Self {
        let durations: Histograms = Family::new_with_constructor(histogram);
        registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            durations.clone(),
        );
        Self {
            inner,
            durations,
            handles: RwLock::default(),
        }
    }

    /// The histogram of `operation` on `key`'s type (looked up before the call, so the key
    /// need not be copied).
    fn histogram(&self, operation: &'static str, key: &str) -> Histogram {
        let ty = key_type(key);
        let known = self
            .handles
            .read()
            .ok()
            .and_then(|h| h.get(ty)?.get(operation).cloned());
        known.unwrap_or_else(|| {
            let h = self.durations.get_or_create_owned(&Labels {
                operation,
                r#type: ty.to_string(),
            });
            if let Ok(mut handles) = self.handles.write() {
                handles
                    .entry(ty.to_string())
                    .or_default()
                    .insert(operation, h.clone());
            }
            h
        })
    }
}

/// The segment after `/registry/`: the API group, or the core resource.
fn key_type(key: &str) -> &str {
    key.strip_prefix("/registry/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
}

#[async_trait]
impl Store for TimedStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let operation = match (&req.range.end, req.count_only) {
            (_, true) => "count",
            (None, false) => "get",
            (Some(_), false) => "list",
        };
        let histogram = self.histogram(operation, &req.range.start);
        let start = Instant::now();
        let resp = self.inner.range(req).await;
        histogram.observe(start.elapsed().as_secs_f64());
        resp
    }

    async fn txn(&self, op: Op) -> Result<TxnOutcome> {
        let histogram = match &op {
            Op::Put {
                key,
                precondition: Precondition::Absent,
                ..
            } => self.histogram("create", key),
            Op::Put {
                key,
                precondition: Precondition::None,
                ..
            } => self.histogram("put", key),
            Op::Put { key, .. } => self.histogram("update", key),
            Op::Delete { key, .. } => self.histogram("delete", key),
        };
        let start = Instant::now();
        let outcome = self.inner.txn(op).await;
        histogram.observe(start.elapsed().as_secs_f64());
        outcome
    }

    async fn watch(&self, range: KeyRange, start_revision: Revision) -> Result<WatchStream> {
        self.inner.watch(range, start_revision).await
    }

    fn written_since(&self, range: &KeyRange, revision: Revision) -> Option<bool> {
        self.inner.written_since(range, revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let histogram = self.histogram("compact", "");
        let start = Instant::now();
        let done = self.inner.compact(revision).await;
        histogram.observe(start.elapsed().as_secs_f64());
        done
    }

    async fn status(&self) -> Result<StoreStatus> {
        self.inner.status().await
    }
}

/// The embedded store's group commit (`kplex_store_commit_duration_seconds`,
/// `kplex_store_commit_batch_size`): how long a batch takes to be durable and how many
/// writes share it. etcd batches inside etcd; its figures are etcd's own metrics.
pub fn observe_commits(store: &kplex_store::EmbeddedStore, registry: &mut Registry) {
    let durations = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 14,
    ));
    let sizes = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1.0, 2.0, 12,
    ));
    let r = registry.sub_registry_with_prefix("kplex_store_commit");
    r.register(
        "duration_seconds",
        "Time to apply a batch of writes and make it durable (embedded store).",
        durations.clone(),
    );
    r.register(
        "batch_size",
        "Writes made durable together in one commit (embedded store).",
        sizes.clone(),
    );
    store.observe_commits(Box::new(move |size, took| {
        durations.observe(took.as_secs_f64());
        sizes.observe(size as f64);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_groups_or_core_resources() {
        assert_eq!(
            key_type("/registry/apps/deployments/root/default/web"),
            "apps"
        );
        assert_eq!(
            key_type("/registry/configmaps/root/default/c"),
            "configmaps"
        );
        assert_eq!(key_type("/elsewhere"), "");
    }
}
