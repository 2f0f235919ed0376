//! The watch cache: one upstream store watch per resource (across all logical clusters),
//! the resource's current objects and a window of recent events in memory, and a broadcast
//! that fans every event out to all client watches of that resource.
//!
//! Each event is rendered to JSON once and shared by every watcher; watches starting inside
//! the window and lists at `resourceVersion=0` never touch the store. A watch that starts
//! before the window, or a watcher that falls behind the broadcast and out of the window,
//! gets what kube-apiserver gives: the store's own history, or 410 Expired.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream};
use kplex_apimachinery::ApiError;
use kplex_store::{EventKind, KeyRange, RangeRequest, Store, prefix_end};
use serde_json::Value;
use tokio::sync::broadcast;

use super::watch::{WatchEvent, WatchEventKind};
use super::{Selectors, Stored, store_error};
use crate::catalog::ResourceDesc;

/// Events kept per resource for watches that start slightly in the past.
const WINDOW: usize = 4096;
/// Events buffered per watcher before it counts as lagging.
const BROADCAST: usize = 8192;
/// The same for a triggered channel: there are many (one per syncer, say), a broadcast
/// channel allocates its whole buffer up front, and a lagging watcher catches up from the
/// window anyway.
const TRIGGERED_BROADCAST: usize = 256;

/// An object shared by every watcher that receives it: rendered and parsed at most once.
#[derive(Debug)]
pub struct SharedObject {
    pub stored: Stored,
    json: OnceLock<Bytes>,
    parsed: OnceLock<Option<Value>>,
    /// Its label keys, read on first use without parsing the rest: how watches and lists of
    /// one label (a syncer's) skip the objects of every other target cheaply.
    labels: OnceLock<Box<[Box<str>]>>,
}

impl SharedObject {
    pub fn new(stored: Stored) -> Arc<Self> {
        Arc::new(Self {
            stored,
            json: OnceLock::new(),
            parsed: OnceLock::new(),
            labels: OnceLock::new(),
        })
    }

    pub fn label_keys(&self) -> &[Box<str>] {
        self.labels.get_or_init(|| {
            crate::object::label_keys(&self.stored.bytes)
                .into_iter()
                .map(String::into_boxed_str)
                .collect()
        })
    }

    pub fn has_label(&self, key: &str) -> bool {
        self.label_keys().iter().any(|k| &**k == key)
    }

    /// The object's JSON with its resource version.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| Bytes::from(self.stored.render()))
    }

    pub fn parsed(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| self.stored.decode().ok())
            .as_ref()
    }
}

/// One change to the resource.
#[derive(Debug)]
struct CachedEvent {
    kind: EventKind,
    key: String,
    revision: i64,
    /// The new state; for a delete, the last state (at the delete's revision).
    object: Arc<SharedObject>,
    prev: Option<Arc<SharedObject>>,
}

#[derive(Clone, Debug)]
enum Message {
    Event(Arc<CachedEvent>),
    /// Everything up to this revision that concerns the channel was sent (a triggered
    /// channel's watchers skip the rest; their bookmarks advance with this).
    Progress(i64),
    /// The upstream watch ended; watchers end too (clients re-watch).
    Closed,
}

struct State {
    objects: BTreeMap<String, Arc<SharedObject>>,
    window: VecDeque<Arc<CachedEvent>>,
    /// Every event after this revision is in `window`.
    window_start: i64,
    /// Everything up to this revision is applied.
    revision: i64,
    closed: bool,
    /// Per trigger label, the channel of the watches that need it (see
    /// [`Selectors::trigger`]): an event goes there only if its object has (or had) the
    /// label.
    triggered: HashMap<String, broadcast::Sender<Message>>,
    /// A progress tick is scheduled (see [`notify_triggered`]).
    tick_pending: bool,
}

/// How long a consistent list waits for the cache to catch up before reading the store
/// (kube-apiserver waits up to 3 s for its cache). The cache is normally a millisecond
/// behind; it falls further behind only when kplex is saturated — and a store scan then,
/// instead of a wait, would add to the load (after a restart, a fleet of syncers relists).
const FRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How soon after events flow past them triggered channels hear the current revision.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct ResourceCache {
    state: RwLock<State>,
    tx: broadcast::Sender<Message>,
    counters: Arc<CacheCounters>,
}

/// All watch caches, created on first use per resource storage prefix.
pub struct WatchCaches {
    store: Arc<dyn Store>,
    caches: std::sync::Mutex<HashMap<String, Arc<Slot>>>,
    counters: Arc<CacheCounters>,
}

/// One resource's cache, or none yet. Starting a cache reads every object of its resource
/// from the store (100,000 ConfigMaps take a while): that waits on this slot only, so the
/// caches of other resources go on serving — after a restart, every client's watches come
/// back at once, for every resource.
#[derive(Default)]
struct Slot {
    /// The cache, read without waiting for a start in progress.
    cache: RwLock<Option<Arc<ResourceCache>>>,
    /// Held while a cache starts, so that one starts at a time.
    starting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn running(&self) -> Option<Arc<ResourceCache>> {
        self.cache.read().ok()?.clone().filter(|c| !c.is_closed())
    }
}

/// What happened to watchers, over every cache (for `/metrics`).
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Watchers that fell behind the broadcast and caught up from the window.
    pub lagged: AtomicU64,
    /// Watchers that fell behind the window too and were ended with 410 Expired.
    pub expired: AtomicU64,
}

/// One resource's cache as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct CacheWindow {
    /// The storage prefix (`/registry/apps/deployments/`).
    pub prefix: String,
    /// Events held for watches that start in the past.
    pub events: usize,
    /// How many revisions back a watch can start without the store.
    pub revisions: i64,
    /// Watches being served.
    pub watchers: usize,
}

/// Why a request cannot be served from the cache.
pub enum Miss {
    /// The cache has stopped (its store watch ended): use the store.
    Closed,
    /// The requested revision is older than the window; the cache is at `head`. The store's
    /// history may serve it (see [`super::watch`]'s replay limit).
    BeforeWindow {
        head: i64,
    },
    Error(Box<ApiError>),
}

impl WatchCaches {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            caches: std::sync::Mutex::default(),
            counters: Arc::default(),
        }
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// Every running cache's window and watchers (not those still starting).
    pub async fn windows(&self) -> Vec<CacheWindow> {
        let slots: Vec<(String, Arc<Slot>)> = self
            .caches
            .lock()
            .map(|m| m.iter().map(|(p, s)| (p.clone(), s.clone())).collect())
            .unwrap_or_default();
        let caches: Vec<(String, Arc<ResourceCache>)> = slots
            .into_iter()
            .filter_map(|(prefix, slot)| Some((prefix, slot.running()?)))
            .collect();
        let mut out: Vec<CacheWindow> = caches
            .iter()
            .filter_map(|(prefix, c)| {
                let st = c.state.read().ok()?;
                Some(CacheWindow {
                    prefix: prefix.clone(),
                    events: st.window.len(),
                    revisions: st.revision - st.window_start,
                    watchers: c.tx.receiver_count()
                        + st.triggered
                            .values()
                            .map(|t| t.receiver_count())
                            .sum::<usize>(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        out
    }

    /// The slot of the resource stored under `prefix`.
    fn slot(&self, prefix: &str) -> Result<Arc<Slot>, ApiError> {
        Ok(self
            .caches
            .lock()
            .map_err(|_| ApiError::internal("the watch caches' lock is poisoned"))?
            .entry(prefix.to_string())
            .or_default()
            .clone())
    }

    /// The cache of the resource stored under `prefix`, started if needed.
    async fn cache(&self, prefix: &str) -> Result<Arc<ResourceCache>, ApiError> {
        let slot = self.slot(prefix)?;
        fill(&slot, self.store.clone(), self.counters.clone(), prefix).await
    }

    /// The cache for a watch starting at `from` on a resource whose cache is not running:
    /// started, and waited for — unless the store has moved past `from`. A cache started
    /// now would begin after that revision and could not serve the watch anyway (the store
    /// replays it), so it need not wait for the cache to read every object: after a
    /// restart every agent's watches resume at once. The cache starts meanwhile.
    async fn start_for(
        &self,
        slot: Arc<Slot>,
        prefix: &str,
        from: Option<i64>,
    ) -> Result<Arc<ResourceCache>, Miss> {
        let miss = |e: ApiError| Miss::Error(Box::new(e));
        if let Some(from) = from {
            let head = self
                .store
                .status()
                .await
                .map_err(|e| miss(store_error(e)))?
                .revision;
            if from < head {
                let (store, counters) = (self.store.clone(), self.counters.clone());
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    if let Err(e) = fill(&slot, store, counters, &prefix).await {
                        tracing::warn!(%prefix, error = %e, "watch cache did not start");
                    }
                });
                return Err(Miss::BeforeWindow { head });
            }
        }
        fill(&slot, self.store.clone(), self.counters.clone(), prefix)
            .await
            .map_err(miss)
    }

    /// The current objects under `scope_prefix` (a list at resourceVersion 0) that carry
    /// label `trigger` (when given), and the revision they are at.
    pub async fn list(
        &self,
        resource_prefix: &str,
        scope_prefix: &str,
        trigger: Option<&str>,
    ) -> Result<(Vec<Stored>, i64), ApiError> {
        let cache = self.cache(resource_prefix).await?;
        let st = cache
            .state
            .read()
            .map_err(|_| ApiError::internal("watch cache poisoned"))?;
        let items = st
            .objects
            .range(scope_range(scope_prefix))
            .filter(|(_, o)| trigger.is_none_or(|t| o.has_label(t)))
            .map(|(_, o)| o.stored.clone())
            .collect();
        Ok((items, st.revision))
    }

    /// As [`Self::list`], but only once the cache holds every write the store had
    /// committed under `resource_prefix` when asked (a consistent read served from memory,
    /// as kube-apiserver's consistent lists from its cache). None when the store cannot
    /// tell, or the cache has not caught up within [`FRESH_WAIT`]: read the store then.
    pub async fn list_fresh(
        &self,
        resource_prefix: &str,
        scope_prefix: &str,
        trigger: Option<&str>,
    ) -> Result<Option<(Vec<Stored>, i64)>, ApiError> {
        let cache = self.cache(resource_prefix).await?;
        let range = KeyRange::prefix(resource_prefix);
        let deadline = tokio::time::Instant::now() + FRESH_WAIT;
        // The store's revision when the cache was first seen behind: under a steady stream
        // of writes the cache never has *every* write, but it gets past this one.
        let mut target = None;
        loop {
            let at = cache
                .state
                .read()
                .map_err(|_| ApiError::internal("watch cache poisoned"))?
                .revision;
            match self.store.written_since(&range, at + 1) {
                None => return Ok(None),
                Some(false) => break,
                Some(true) => {}
            }
            let target = match target {
                Some(t) => t,
                None => *target.insert(self.store.status().await.map_err(store_error)?.revision),
            };
            if at >= target {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.list(resource_prefix, scope_prefix, trigger)
            .await
            .map(Some)
    }

    /// A watch of `scope_prefix`, from `from` (exclusive; None = current state first).
    pub async fn watch(
        &self,
        desc: Arc<ResourceDesc>,
        resource_prefix: &str,
        scope_prefix: String,
        from: Option<i64>,
        selectors: Selectors,
        progress: Arc<AtomicI64>,
    ) -> Result<
        (
            Vec<WatchEvent>,
            i64,
            impl Stream<Item = WatchEvent> + Send + 'static,
        ),
        Miss,
    > {
        let slot = self
            .slot(resource_prefix)
            .map_err(|e| Miss::Error(Box::new(e)))?;
        let cache = match slot.running() {
            Some(cache) => cache,
            None => self.start_for(slot, resource_prefix, from).await?,
        };
        let trigger = selectors.trigger_label().map(String::from);
        let (head, rx, after) = {
            // A triggered watch subscribes to its label's channel, made on first use.
            let mut st = cache
                .state
                .write()
                .map_err(|_| Miss::Error(Box::new(ApiError::internal("watch cache poisoned"))))?;
            if st.closed {
                return Err(Miss::Closed);
            }
            // Subscribing under the lock: no event is published between the snapshot and
            // the subscription (publishing takes the write lock).
            let rx = cache.subscribe(&mut st, trigger.as_deref());
            let head: Vec<WatchEvent> = match from {
                None => st
                    .objects
                    .range(scope_range(&scope_prefix))
                    .filter(|(_, o)| trigger.as_deref().is_none_or(|t| o.has_label(t)))
                    .filter(|(_, o)| {
                        selectors.is_empty()
                            || o.parsed().is_some_and(|v| selectors.matches(&desc, v))
                    })
                    .map(|(_, o)| WatchEvent::Shared(WatchEventKind::Added, o.clone()))
                    .collect(),
                Some(rv) if rv < st.window_start => {
                    return Err(Miss::BeforeWindow { head: st.revision });
                }
                Some(rv) => st
                    .window
                    .iter()
                    .filter(|e| e.revision > rv && e.key.starts_with(&scope_prefix))
                    .filter_map(|e| convert(&desc, &selectors, e))
                    .collect(),
            };
            (head, rx, st.revision)
        };
        let watcher = Watcher {
            cache: Arc::downgrade(&cache),
            desc,
            selectors,
            trigger,
            scope_prefix,
            rx,
            last: after.max(from.unwrap_or(0)),
            progress,
            done: false,
        };
        Ok((
            head,
            after,
            stream::unfold(watcher, Watcher::next).flat_map(stream::iter),
        ))
    }
}

fn scope_range(prefix: &str) -> (std::ops::Bound<String>, std::ops::Bound<String>) {
    (
        std::ops::Bound::Included(prefix.to_string()),
        std::ops::Bound::Excluded(prefix_end(prefix)),
    )
}

impl ResourceCache {
    /// A receiver of the resource's events, or of one trigger label's (its channel made on
    /// first use). Called under the state's write lock: nothing is published meanwhile.
    fn subscribe(&self, st: &mut State, trigger: Option<&str>) -> broadcast::Receiver<Message> {
        match trigger {
            Some(label) => st
                .triggered
                .entry(label.to_string())
                .or_insert_with(|| broadcast::channel(TRIGGERED_BROADCAST).0)
                .subscribe(),
            None => self.tx.subscribe(),
        }
    }

    fn is_closed(&self) -> bool {
        self.state.read().map(|s| s.closed).unwrap_or(true)
    }

    fn apply(self: &Arc<Self>, event: kplex_store::Event) {
        let Ok(mut st) = self.state.write() else {
            return;
        };
        let revision = event.kv.mod_revision;
        let prev = event.prev.map(|p| {
            SharedObject::new(Stored {
                bytes: p.value,
                resource_version: p.mod_revision,
            })
        });
        let object = match event.kind {
            EventKind::Put => {
                let o = SharedObject::new(Stored {
                    bytes: event.kv.value,
                    resource_version: revision,
                });
                st.objects.insert(event.kv.key.clone(), o.clone());
                o
            }
            EventKind::Delete => {
                st.objects.remove(&event.kv.key);
                // DELETED carries the last state, at the delete's revision.
                let last = prev
                    .as_ref()
                    .map(|p| p.stored.bytes.clone())
                    .unwrap_or_default();
                SharedObject::new(Stored {
                    bytes: last,
                    resource_version: revision,
                })
            }
        };
        let e = Arc::new(CachedEvent {
            kind: event.kind,
            key: event.kv.key,
            revision,
            object,
            prev,
        });
        st.revision = revision;
        st.window.push_back(e.clone());
        if st.window.len() > WINDOW
            && let Some(old) = st.window.pop_front()
        {
            st.window_start = old.revision;
        }
        let _ = self.tx.send(Message::Event(e.clone()));
        if notify_triggered(&mut st, &e) {
            tokio::spawn(tick(Arc::downgrade(self)));
        }
    }

    fn close(&self) {
        if let Ok(mut st) = self.state.write() {
            st.closed = true;
            for tx in st.triggered.values() {
                let _ = tx.send(Message::Closed);
            }
        }
        let _ = self.tx.send(Message::Closed);
    }
}

/// Sends `e` to the triggered channels of the labels its object has or had. Returns whether a progress tick must be scheduled: the others skip
/// `e`, and must still hear, soon, that the revision moved on (their bookmarks say so).
fn notify_triggered(st: &mut State, e: &Arc<CachedEvent>) -> bool {
    if st.triggered.is_empty() {
        return false;
    }
    let mut keys: Vec<&str> = e.object.label_keys().iter().map(|k| &**k).collect();
    if let Some(prev) = &e.prev {
        keys.extend(prev.label_keys().iter().map(|k| &**k));
    }
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        if let Some(tx) = st.triggered.get(key) {
            let _ = tx.send(Message::Event(e.clone()));
        }
    }
    !std::mem::replace(&mut st.tick_pending, true)
}

/// The running cache in `slot`, or a new one started into it.
async fn fill(
    slot: &Slot,
    store: Arc<dyn Store>,
    counters: Arc<CacheCounters>,
    prefix: &str,
) -> Result<Arc<ResourceCache>, ApiError> {
    if let Some(c) = slot.running() {
        return Ok(c);
    }
    let _starting = slot.starting.lock().await;
    if let Some(c) = slot.running() {
        return Ok(c);
    }
    let cache = start(store, counters, prefix).await?;
    *slot
        .cache
        .write()
        .map_err(|_| ApiError::internal("watch cache poisoned"))? = Some(cache.clone());
    Ok(cache)
}

/// A new cache of the resource stored under `prefix`: its objects read from the store,
/// then following the store's changes.
async fn start(
    store: Arc<dyn Store>,
    counters: Arc<CacheCounters>,
    prefix: &str,
) -> Result<Arc<ResourceCache>, ApiError> {
    let list = store
        .range(RangeRequest::prefix(prefix))
        .await
        .map_err(store_error)?;
    let objects = list
        .kvs
        .into_iter()
        .map(|kv| {
            (
                kv.key,
                SharedObject::new(Stored {
                    bytes: kv.value,
                    resource_version: kv.mod_revision,
                }),
            )
        })
        .collect();
    let (tx, _) = broadcast::channel(BROADCAST);
    let cache = Arc::new(ResourceCache {
        state: RwLock::new(State {
            objects,
            window: VecDeque::new(),
            window_start: list.revision,
            revision: list.revision,
            closed: false,
            triggered: HashMap::new(),
            tick_pending: false,
        }),
        tx,
        counters,
    });
    let upstream = store
        .watch(KeyRange::prefix(prefix), list.revision + 1)
        .await
        .map_err(store_error)?;
    tokio::spawn(follow(Arc::downgrade(&cache), upstream));
    Ok(cache)
}

/// A while after events passed, every triggered channel hears the current revision: one
/// wake-up per watch per [`PROGRESS_EVERY`] at most, however many events.
async fn tick(cache: Weak<ResourceCache>) {
    tokio::time::sleep(PROGRESS_EVERY).await;
    let Some(cache) = cache.upgrade() else { return };
    let Ok(mut st) = cache.state.write() else {
        return;
    };
    st.tick_pending = false;
    // Here rather than per event: channels nobody listens to any more go.
    st.triggered.retain(|_, tx| tx.receiver_count() > 0);
    for tx in st.triggered.values() {
        let _ = tx.send(Message::Progress(st.revision));
    }
}

async fn follow(cache: Weak<ResourceCache>, mut upstream: kplex_store::WatchStream) {
    while let Some(item) = upstream.next().await {
        let Some(c) = cache.upgrade() else { return };
        match item {
            Ok(event) => c.apply(event),
            Err(e) => {
                tracing::debug!(error = %e, "watch cache: upstream watch failed");
                c.close();
                return;
            }
        }
    }
    if let Some(c) = cache.upgrade() {
        c.close();
    }
}

/// A store event as seen through `selectors`: an object that stops matching is DELETED, one
/// that starts matching is ADDED.
fn convert(desc: &ResourceDesc, selectors: &Selectors, e: &CachedEvent) -> Option<WatchEvent> {
    let kind = match (e.kind, &e.prev) {
        (EventKind::Delete, _) => WatchEventKind::Deleted,
        (EventKind::Put, None) => WatchEventKind::Added,
        (EventKind::Put, Some(_)) => WatchEventKind::Modified,
    };
    if selectors.is_empty() {
        return Some(WatchEvent::Shared(kind, e.object.clone()));
    }
    let matches = |o: &SharedObject| o.parsed().is_some_and(|v| selectors.matches(desc, v));
    let old = e.prev.as_deref().is_some_and(matches);
    match e.kind {
        EventKind::Delete => {
            old.then(|| WatchEvent::Shared(WatchEventKind::Deleted, e.object.clone()))
        }
        EventKind::Put => match (old, matches(&e.object)) {
            (true, true) => Some(WatchEvent::Shared(
                WatchEventKind::Modified,
                e.object.clone(),
            )),
            (false, true) => Some(WatchEvent::Shared(WatchEventKind::Added, e.object.clone())),
            (true, false) => Some(WatchEvent::Shared(
                WatchEventKind::Deleted,
                e.object.clone(),
            )),
            (false, false) => None,
        },
    }
}

/// One client watch following the broadcast.
struct Watcher {
    cache: Weak<ResourceCache>,
    desc: Arc<ResourceDesc>,
    selectors: Selectors,
    /// The triggered channel it follows, if any (else the resource's own).
    trigger: Option<String>,
    scope_prefix: String,
    rx: broadcast::Receiver<Message>,
    /// The last revision delivered (or skipped).
    last: i64,
    /// Raised past the events this watcher skips (other workspaces, unmatched selectors),
    /// so its bookmarks advance even when nothing it shows changes. Delivered events raise
    /// it as they leave the stream, never ahead of them.
    progress: Arc<AtomicI64>,
    done: bool,
}

impl Watcher {
    /// The next batch of events (usually one); None ends the watch.
    async fn next(mut self) -> Option<(Vec<WatchEvent>, Self)> {
        if self.done {
            return None;
        }
        loop {
            match self.rx.recv().await {
                Ok(Message::Event(e)) => {
                    if e.revision <= self.last {
                        continue;
                    }
                    self.last = e.revision;
                    let event = e
                        .key
                        .starts_with(&self.scope_prefix)
                        .then(|| convert(&self.desc, &self.selectors, &e))
                        .flatten();
                    match event {
                        Some(event) => return Some((vec![event], self)),
                        None => {
                            self.progress.fetch_max(e.revision, Ordering::Relaxed);
                        }
                    }
                }
                Ok(Message::Progress(revision)) => {
                    if revision > self.last {
                        self.last = revision;
                        self.progress.fetch_max(revision, Ordering::Relaxed);
                    }
                }
                Ok(Message::Closed) | Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((self.catch_up(), self));
                }
            }
        }
    }

    /// After falling behind the broadcast: replay from the window, or end with 410.
    fn catch_up(&mut self) -> Vec<WatchEvent> {
        let Some(cache) = self.cache.upgrade() else {
            self.done = true;
            return vec![];
        };
        let Ok(mut st) = cache.state.write() else {
            self.done = true;
            return vec![];
        };
        self.rx = cache.subscribe(&mut st, self.trigger.as_deref());
        cache.counters.lagged.fetch_add(1, Ordering::Relaxed);
        if self.last < st.window_start {
            cache.counters.expired.fetch_add(1, Ordering::Relaxed);
            self.done = true;
            return vec![WatchEvent::Error(ApiError::resource_expired(format!(
                "too old resource version: {} ({})",
                self.last, st.window_start
            )))];
        }
        let events = st
            .window
            .iter()
            .filter(|e| e.revision > self.last && e.key.starts_with(&self.scope_prefix))
            .filter_map(|e| convert(&self.desc, &self.selectors, e))
            .collect();
        self.last = st.revision;
        events
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use kplex_store::{
        EmbeddedOptions, EmbeddedStore, Op, RangeResponse, Revision, StoreStatus, TxnOutcome,
        WatchStream,
    };
    use serde_json::json;
    use tokio::sync::Semaphore;

    use super::*;

    /// The embedded store, but a read of everything under `slow` waits for a permit; and
    /// while `in_flight` is set, a write is always on its way (as under a steady stream).
    struct Gated {
        inner: EmbeddedStore,
        slow: &'static str,
        gate: Semaphore,
        in_flight: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Store for Gated {
        async fn range(&self, req: RangeRequest) -> kplex_store::Result<RangeResponse> {
            if req.range.start.starts_with(self.slow) {
                let _permit = self.gate.acquire().await;
            }
            self.inner.range(req).await
        }
        async fn txn(&self, op: Op) -> kplex_store::Result<TxnOutcome> {
            self.inner.txn(op).await
        }
        async fn watch(
            &self,
            range: KeyRange,
            start: Revision,
        ) -> kplex_store::Result<WatchStream> {
            self.inner.watch(range, start).await
        }
        async fn compact(&self, revision: Revision) -> kplex_store::Result<()> {
            self.inner.compact(revision).await
        }
        async fn status(&self) -> kplex_store::Result<StoreStatus> {
            self.inner.status().await
        }
        fn written_since(&self, range: &KeyRange, revision: Revision) -> Option<bool> {
            if self.in_flight.load(Ordering::Relaxed) {
                return Some(true);
            }
            self.inner.written_since(range, revision)
        }
    }

    /// An embedded store with a ConfigMap and a Secret, whose reads of every ConfigMap wait
    /// for a permit.
    async fn gated() -> (Arc<Gated>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a directory");
        let inner =
            EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).expect("a store");
        for (key, kind) in [
            ("/registry/configmaps/root/default/a", "ConfigMap"),
            ("/registry/secrets/root/default/s", "Secret"),
        ] {
            let obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}});
            let bytes = crate::object::encode(&obj).expect("encodes");
            inner.put(key, bytes).await.expect("written");
        }
        let store = Arc::new(Gated {
            inner,
            slow: "/registry/configmaps/",
            gate: Semaphore::new(0),
            in_flight: Default::default(),
        });
        (store, dir)
    }

    #[tokio::test]
    async fn a_cache_still_starting_holds_up_no_other_resource() {
        let (store, _dir) = gated().await;
        let caches = Arc::new(WatchCaches::new(store.clone()));
        let starting = {
            let caches = caches.clone();
            tokio::spawn(async move {
                let prefix = "/registry/configmaps/";
                caches
                    .list(prefix, prefix, None)
                    .await
                    .map(|(items, _)| items.len())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let prefix = "/registry/secrets/";
        let (secrets, _) =
            tokio::time::timeout(Duration::from_secs(5), caches.list(prefix, prefix, None))
                .await
                .expect("served while the ConfigMaps' cache starts")
                .expect("listed");
        assert_eq!(secrets.len(), 1);
        assert!(
            !starting.is_finished(),
            "the ConfigMaps' cache waits for its store read"
        );
        store.gate.add_permits(1);
        assert_eq!(starting.await.expect("joined").expect("listed"), 1);
    }

    fn caches_desc() -> Arc<ResourceDesc> {
        Arc::new(crate::catalog::system(
            ("", "v1"),
            ("ConfigMap", "configmaps"),
            &[],
            Vec::new(),
            &json!({}),
        ))
    }

    #[tokio::test]
    async fn a_resumed_watch_does_not_wait_for_its_cache_to_start() {
        let (store, _dir) = gated().await;
        let caches = WatchCaches::new(store.clone());
        let desc = caches_desc();
        let selectors = Selectors::parse(&desc, None, None).expect("no selector");
        let prefix = "/registry/configmaps/";
        let resumed = tokio::time::timeout(
            Duration::from_secs(5),
            caches.watch(
                desc,
                prefix,
                prefix.to_string(),
                Some(1),
                selectors,
                Arc::default(),
            ),
        )
        .await
        .expect("answered while the cache reads its objects");
        // The store replays it (the caller's part); the cache is at the store's head.
        assert!(matches!(resumed, Err(Miss::BeforeWindow { head: 2 })));
        store.gate.add_permits(1);
        let (items, revision) = caches.list(prefix, prefix, None).await.expect("listed");
        assert_eq!((items.len(), revision), (1, 2));
        // A watch from the head is the cache's to serve.
        let at_head = caches
            .watch(
                caches_desc(),
                prefix,
                prefix.to_string(),
                Some(2),
                Selectors::parse(&caches_desc(), None, None).expect("no selector"),
                Arc::default(),
            )
            .await;
        assert!(at_head.is_ok());
    }

    /// Under a steady stream of writes some write is always on its way to the cache: a
    /// consistent list waits only for those committed before it was asked, and is still
    /// the cache's to answer (were it not, every such list would scan the store).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consistent_list_is_served_from_the_cache_while_writes_keep_coming() {
        let (store, _dir) = gated().await;
        store.gate.add_permits(1);
        let caches = WatchCaches::new(store.clone());
        let prefix = "/registry/configmaps/";
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("{prefix}root/default/w{w}-{i}");
                        store
                            .inner
                            .put(
                                &key,
                                crate::object::encode(&json!({"metadata": {}})).expect("encodes"),
                            )
                            .await
                            .expect("written");
                        i += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.in_flight.store(true, Ordering::Relaxed);
        for _ in 0..20 {
            let before = store.inner.status().await.expect("status").revision;
            let (_, revision) = caches
                .list_fresh(prefix, prefix, None)
                .await
                .expect("listed")
                .expect("from the cache");
            assert!(
                revision >= before,
                "{revision} misses writes up to {before}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.expect("joined");
        }
    }
}
