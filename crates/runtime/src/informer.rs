//! One store watch shared by every feature's controllers.
//!
//! Each feature hands the informer an [`EventHandler`]: the informer lists what the handlers
//! need at start (one revision for all), watches `/registry/` from the next revision, and
//! hands each change to the handlers that want it; a handler enqueues work on its own
//! queue. One watch for the process, and a byte test per handler before any parsing, keeps
//! the cost of a write that concerns no controller (nearly all of them) to a few `memchr`s.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kplex_registry::object;
use kplex_store::{EventKind, KeyRange, RangeRequest, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Where every object is stored.
const ROOT: &str = "/registry/";
/// How long to wait before watching again after the stream ended or failed.
const RETRY: Duration = Duration::from_millis(500);
/// Objects read per page while looking for unfinished work.
const PAGE: usize = 1000;

/// A feature's interest in store changes (client-go's `ResourceEventHandler`, over raw
/// store events). Methods that see a change must be quick: enqueue, do not reconcile.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Key prefixes read at start, before the server serves: each object found is handed to
    /// [`changed`](Self::changed), then all of them to [`started`](Self::started).
    fn start_prefixes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The objects of `start_prefixes`: what they make servable (CRDs, bindings) must be
    /// served once this returns.
    async fn started(&self, _objects: &[Value]) {}

    /// Whether a put of `value` at `key` may concern this handler; a byte test, so most
    /// writes are never parsed. None by default: a set whose events another handler
    /// follows (a leader-only writing half) wants nothing itself.
    fn wants(&self, _key: &str, _value: &[u8]) -> bool {
        false
    }

    /// An object the handler wants was written; `created`: this is its first revision.
    fn changed(&self, _obj: &Value, _created: bool) {}

    /// An object was deleted (its last state); every handler sees every deletion.
    fn deleted(&self, _old: &Value) {}

    /// A key was created (`true`) or deleted at `revision`, before any parsing: for
    /// counters kept from the watch (object quotas). Every handler sees every one.
    fn created_or_deleted(&self, _key: &str, _revision: i64, _created: bool) {}

    /// Whether an object found after a restart may have work left that no event would
    /// bring back (a half-deleted namespace, a workspace mid-scheduling). Objects of
    /// `start_prefixes` were handed over at start already.
    fn unfinished(&self, _key: &str, _value: &[u8]) -> bool {
        false
    }
}

/// The shared watch.
pub struct Informer {
    store: Arc<dyn Store>,
    handlers: Vec<Arc<dyn EventHandler>>,
}

impl Informer {
    pub fn new(store: Arc<dyn Store>, handlers: Vec<Arc<dyn EventHandler>>) -> Self {
        Self { store, handlers }
    }

    /// Hands the handlers their start objects, then follows every change until `cancel`
    /// fires. Returns once the start objects are handled; the watch and the search for
    /// unfinished work go on in the background, so readiness does not wait for a scan of
    /// the store (reconciling twice is harmless).
    pub async fn start(self, cancel: CancellationToken) -> Result<(), kplex_store::Error> {
        let revision = self.hand_over_start_objects().await?;
        let this = Arc::new(self);
        spawn_until(&cancel, this.clone().watch(revision + 1));
        spawn_until(&cancel, this.resume_unfinished());
        Ok(())
    }

    /// Reads every handler's start prefixes at one revision; returns that revision.
    async fn hand_over_start_objects(&self) -> Result<i64, kplex_store::Error> {
        let mut revision = None;
        let mut per_handler = Vec::with_capacity(self.handlers.len());
        for handler in &self.handlers {
            let mut objects = Vec::new();
            for prefix in handler.start_prefixes() {
                let mut request = RangeRequest::prefix(prefix);
                if let Some(rev) = revision {
                    request = request.at_revision(rev);
                }
                let resp = self.store.range(request).await?;
                revision.get_or_insert(resp.revision);
                objects.extend(
                    resp.kvs
                        .iter()
                        .filter_map(|kv| object::decode(&kv.value, kv.mod_revision).ok()),
                );
            }
            per_handler.push(objects);
        }
        let revision = match revision {
            Some(rev) => rev,
            None => self.store.status().await?.revision,
        };
        for (handler, objects) in self.handlers.iter().zip(&per_handler) {
            for obj in objects {
                handler.changed(obj, false);
            }
        }
        futures::future::join_all(
            self.handlers
                .iter()
                .zip(&per_handler)
                .map(|(handler, objects)| handler.started(objects)),
        )
        .await;
        Ok(revision)
    }

    async fn watch(self: Arc<Self>, from: i64) {
        let mut next = from;
        loop {
            let mut events = match self.store.watch(KeyRange::prefix(ROOT), next).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "controllers: watch failed, retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            while let Some(Ok(event)) = events.next().await {
                next = event.kv.mod_revision + 1;
                match event.kind {
                    EventKind::Put => {
                        let created = event.kv.create_revision == event.kv.mod_revision;
                        if created {
                            self.handlers.iter().for_each(|h| {
                                h.created_or_deleted(&event.kv.key, event.kv.mod_revision, true)
                            });
                        }
                        self.put(
                            &event.kv.key,
                            &event.kv.value,
                            event.kv.mod_revision,
                            created,
                        );
                    }
                    EventKind::Delete => {
                        self.handlers.iter().for_each(|h| {
                            h.created_or_deleted(&event.kv.key, event.kv.mod_revision, false)
                        });
                        if let Some(old) = event
                            .prev
                            .as_ref()
                            .and_then(|p| object::decode(&p.value, p.mod_revision).ok())
                        {
                            self.handlers.iter().for_each(|h| h.deleted(&old));
                        }
                    }
                }
            }
            // The stream ended (store restart, compaction): resume where we were.
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Decodes a written object once, if any handler wants it. (`wants` runs twice for a
    /// wanted write rather than collecting the handlers: this runs for every write.)
    fn put(&self, key: &str, value: &[u8], revision: i64, created: bool) {
        if !self.handlers.iter().any(|h| h.wants(key, value)) {
            return;
        }
        if let Ok(obj) = object::decode(value, revision) {
            for handler in self.handlers.iter().filter(|h| h.wants(key, value)) {
                handler.changed(&obj, created);
            }
        }
    }

    /// What a restart left mid-way, found a page at a time; anything changed meanwhile
    /// arrives through the watch as well.
    async fn resume_unfinished(self: Arc<Self>) {
        let mut range = KeyRange::prefix(ROOT);
        loop {
            let page = RangeRequest {
                limit: PAGE,
                skip_count: true,
                ..RangeRequest::new(range.clone())
            };
            let resp = match self.store.range(page).await {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::warn!(error = %e, "controllers: resuming unfinished work failed");
                    return;
                }
            };
            for kv in &resp.kvs {
                let unfinished: Vec<_> = self
                    .handlers
                    .iter()
                    .filter(|h| h.unfinished(&kv.key, &kv.value))
                    .collect();
                if unfinished.is_empty() {
                    continue;
                }
                if let Ok(obj) = object::decode(&kv.value, kv.mod_revision) {
                    unfinished.iter().for_each(|h| h.changed(&obj, false));
                }
            }
            match resp.kvs.last() {
                Some(last) if resp.kvs.len() == PAGE => range.start = format!("{}\0", last.key),
                _ => break,
            }
        }
    }
}

/// Runs `task` until it ends or `cancel` fires.
pub fn spawn_until(
    cancel: &CancellationToken,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = task => {}
        }
    });
}

/// A feature's controllers: the store events they follow ([`EventHandler`]) and the
/// workers that reconcile what those events enqueue.
pub trait ControllerSet: EventHandler {
    /// Starts the workers (and any periodic work); they run until `cancel` fires. A set
    /// that runs only on the leader is started again on each new term, with the same queue:
    /// what its events enqueued while another replica led is reconciled then.
    fn run(self: Arc<Self>, metrics: &crate::Metrics, cancel: &CancellationToken);

    /// Whether the workers run only on the replica holding the controllers' Lease (their
    /// events are followed everywhere, so in-memory state stays derived on every replica).
    /// `false` for sets whose reconcilers also make things servable on this replica.
    fn leader_only(&self) -> bool {
        false
    }
}
